//! A running `hostwatch run` whose output lines arrive on channels, for end-to-end tests.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// A running `hostwatch run` whose stdout and stderr lines arrive on channels.
pub struct Daemon {
    /// The process.
    pub child: Child,
    /// Standard output lines.
    pub stdout: Receiver<String>,
    /// Standard error lines.
    pub stderr: Receiver<String>,
}

impl Daemon {
    /// Starts `hostwatch run --config CONFIG [--dry-run]` with extra global arguments.
    pub fn start(config: &Path, dry_run: bool) -> Daemon {
        Daemon::start_with(config, dry_run, &[])
    }

    /// Like [`Daemon::start`], with global arguments before `run` (`--log-format json`).
    pub fn start_with(config: &Path, dry_run: bool, global: &[&str]) -> Daemon {
        Daemon::start_env(config, dry_run, global, &[])
    }

    /// Like [`Daemon::start_with`], with extra environment variables (`NOTIFY_SOCKET`).
    pub fn start_env(
        config: &Path,
        dry_run: bool,
        global: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Daemon {
        let mut cmd = Command::new(super::bin());
        cmd.args(global).args(["run", "--config", config.to_str().unwrap()]);
        if dry_run {
            cmd.arg("--dry-run");
        }
        cmd.envs(env.iter().copied());
        let mut child =
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start hostwatch run");
        let stdout = lines(child.stdout.take().unwrap());
        let stderr = lines(child.stderr.take().unwrap());
        Daemon { child, stdout, stderr }
    }

    /// Waits (bounded) for a stdout JSON line satisfying `pred`.
    pub fn wait_stdout(&self, limit: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let end = Instant::now() + limit;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.stdout.recv_timeout(left) {
                Ok(line) => {
                    let v: Value = serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("bad line {line:?}: {e}"));
                    if pred(&v) {
                        return Some(v);
                    }
                }
                Err(_) => return None,
            }
        }
        None
    }

    /// Waits (bounded) for a stderr line containing `needle`.
    pub fn wait_stderr(&self, limit: Duration, needle: &str) -> Option<String> {
        let end = Instant::now() + limit;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Sends a signal (`-TERM`, `-HUP`, `-KILL`).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(stream: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}
