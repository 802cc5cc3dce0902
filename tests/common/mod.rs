//! Helpers shared by the integration tests: the built binary, temporary directories, and
//! running hostwatch with a config written by the test.
#![allow(dead_code)]

pub mod daemon;
pub mod receiver;

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
