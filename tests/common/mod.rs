//! Helpers shared by the integration tests: the built binary, temporary directories, and
//! running hostwatch with a config written by the test.
#![allow(dead_code)]

pub mod alertmanager;
pub mod daemon;
pub mod influx;
pub mod receiver;
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
