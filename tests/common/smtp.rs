//! The test SMTP server (tests/support/smtp_server.py, aiosmtpd) on loopback: started with
//! its options, the messages it accepted read back as JSON lines, killed when dropped.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_server.py");

/// A running smtp_server.py; killed when dropped.
pub struct Smtp {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    out: PathBuf,
}

impl Smtp {
    /// Starts `smtp_server.py serve` with `args` and waits (bounded) until it listens.
    pub fn start(dir: &Path, args: &[&str]) -> Smtp {
        let port_file = dir.join("port");
        let out = dir.join("received.jsonl");
        let _ = std::fs::remove_file(&port_file);
        let mut child = Command::new("python3")
            .arg(SERVER)
            .arg("serve")
            .arg("--port-file")
            .arg(&port_file)
            .arg("--out")
            .arg(&out)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 is needed to run the test SMTP server");
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(text) = std::fs::read_to_string(&port_file)
                && let Ok(port) = text.trim().parse()
            {
                return Smtp { child, port, out };
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                use std::io::Read;
                let _ = child.stderr.take().map(|mut s| s.read_to_string(&mut err));
                panic!("the test SMTP server exited ({status}) before listening:\n{err}");
            }
            assert!(Instant::now() < end, "the test SMTP server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The messages the server accepted, in order.
    pub fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out).map(|t| super::json_lines(&t)).unwrap_or_default()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses a raw message with Python's `email` package: every header (name, decoded value)
/// in order, the subject, the top content type, the leaf parts (content type, decoded text)
/// and the defects Python found.
pub fn parse_mail(raw: &str) -> Value {
    let script = r#"
import email, email.policy, json, sys
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
parts = [{"type": p.get_content_type(), "text": p.get_content()}
         for p in m.walk() if not p.is_multipart()]
print(json.dumps({"headers": [[k, str(v)] for k, v in m.items()], "subject": str(m["Subject"]),
                  "type": m.get_content_type(), "parts": parts,
                  "defects": [str(d) for d in m.defects]}))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(raw.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python could not parse the message");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The values of header `name` (case-insensitive) in what [`parse_mail`] returned.
pub fn header<'a>(parsed: &'a Value, name: &str) -> Vec<&'a str> {
    parsed["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .map(|h| h[1].as_str().unwrap())
        .collect()
}
