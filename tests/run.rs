//! `hostwatch run`: the poll loop under real CPU load from stress-ng (fires, then resolves),
//! SIGHUP with a broken config (keeps running), SIGTERM (saves the state and stops).

mod common;

use common::{bin, tempdir, write};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// A running `hostwatch run` whose stdout and stderr lines arrive on channels.
struct Daemon {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

impl Daemon {
    fn start(config: &Path, dry_run: bool) -> Daemon {
        let mut cmd = Command::new(bin());
        cmd.args(["run", "--config", config.to_str().unwrap()]);
        if dry_run {
            cmd.arg("--dry-run");
        }
        let mut child =
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start hostwatch run");
        let stdout = lines(child.stdout.take().unwrap());
        let stderr = lines(child.stderr.take().unwrap());
        Daemon { child, stdout, stderr }
    }

    /// Waits (bounded, so a broken build cannot hang CI) for a stdout line satisfying `pred`.
    fn wait_stdout(&self, limit: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
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

    fn wait_stderr(&self, limit: Duration, needle: &str) -> Option<String> {
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

    fn signal(&self, sig: &str) {
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

fn require_stress_ng() {
    let found =
        Command::new("stress-ng").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(
        found,
        "stress-ng is missing: install it (apt-get install stress-ng); scripts/test.sh does"
    );
}

#[test]
fn dry_run_fires_under_real_cpu_load_and_resolves_after_it() {
    require_stress_ng();
    let dir = tempdir("run-stress");
    let cfg = json!({
        "host": "load-test", "interval": "1s", "state_dir": dir.join("state").display().to_string(),
        "rules": [{"name": "cpu_busy", "metric": "cpu.usage", "warn": "> 70", "for": "3s"}]
    });
    let cfg = write(&dir, "config.json", &cfg.to_string());
    let daemon = Daemon::start(&cfg, true);
    // Quiet machine first: nothing fires before the load (a notification now would mean the
    // rule fires without load, and the test proves nothing).
    assert!(
        daemon.wait_stdout(Duration::from_secs(3), |_| true).is_none(),
        "fired before any load"
    );
    let mut stress = Command::new("stress-ng")
        .args(["--cpu", "0", "--cpu-load", "100", "--timeout", "15s", "--quiet"])
        .spawn()
        .expect("start stress-ng");
    let firing = daemon.wait_stdout(Duration::from_secs(30), |v| v["event"]["event"] == "firing");
    let _ = stress.kill();
    let _ = stress.wait();
    let firing = firing.expect("cpu_busy fired under stress-ng");
    assert_eq!(firing["dry_run"], true);
    assert_eq!(firing["event"]["rule"], "cpu_busy");
    assert!(firing["event"]["value"].as_f64().unwrap() > 70.0, "{firing}");
    let resolved =
        daemon.wait_stdout(Duration::from_secs(30), |v| v["event"]["event"] == "resolved");
    let resolved = resolved.expect("cpu_busy resolved after the load ended");
    assert_eq!(resolved["event"]["key"].as_str().unwrap().rsplit(':').next(), Some("2"));
    assert!(!dir.join("state/state.json").exists(), "a dry run never writes the state");
}

#[test]
fn sighup_with_a_broken_config_keeps_running_and_sigterm_saves_state() {
    let dir = tempdir("run-hup");
    let state_dir = dir.join("state");
    let good = json!({
        "host": "hup-test", "interval": "1s", "state_dir": state_dir.display().to_string(),
        "rules": [{"name": "mem_any", "metric": "mem.used_percent", "warn": ">= 0"}]
    });
    let cfg = write(&dir, "config.json", &good.to_string());
    let daemon = Daemon::start(&cfg, false);
    assert!(
        daemon.wait_stderr(Duration::from_secs(20), "mem_any").is_some(),
        "the alert fired and was logged"
    );
    std::fs::write(&cfg, "{\"interval\": \"1s\", \"rules\": [").unwrap();
    daemon.signal("-HUP");
    let error = daemon
        .wait_stderr(Duration::from_secs(20), "config reload failed, keeping the running config");
    let error = error.expect("the failed reload is logged");
    assert!(error.contains("config.json:1:"), "the error names the file and position: {error}");
    // Still alive and ticking after the failed reload.
    std::thread::sleep(Duration::from_millis(1500));
    let mut daemon = daemon;
    assert!(daemon.child.try_wait().unwrap().is_none(), "hostwatch died after a bad reload");
    daemon.signal("-TERM");
    let status = daemon.child.wait().unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(state_dir.join("state.json")).unwrap())
            .unwrap();
    assert_eq!(state["alerts"][0]["rule"], "mem_any");
    assert_eq!(state["alerts"][0]["state"]["phase"], "firing");
    let events = std::fs::read_to_string(state_dir.join("events.jsonl")).unwrap();
    assert_eq!(events.lines().count(), 1, "one firing in the events log: {events}");

    // A restart does not announce it again.
    std::fs::write(&cfg, good.to_string()).unwrap();
    let daemon = Daemon::start(&cfg, false);
    assert!(daemon.wait_stderr(Duration::from_secs(20), "hostwatch started").is_some());
    std::thread::sleep(Duration::from_millis(2500));
    daemon.signal("-TERM");
    drop(daemon);
    let events = std::fs::read_to_string(state_dir.join("events.jsonl")).unwrap();
    assert_eq!(events.lines().count(), 1, "no re-announcement after restart: {events}");
}
