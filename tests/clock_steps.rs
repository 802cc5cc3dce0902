//! Wall-clock steps under a running `hostwatch run`: libfaketime (Debian `faketime`) moves
//! CLOCK_REALTIME through a timestamp file the test rewrites while the daemon runs, and leaves
//! the monotonic clock alone. An always-firing rule with `remind_every: 3s` must keep
//! reminding at about that cadence after a step of −1 h and one of +25 h, in one episode,
//! with nothing resolved and no notification lost. A second test keeps notifications waiting
//! in the outbox (the receiver answers 500) across steps of +25 h and −25 h: with
//! `give_up_after: 24h` counted on the monotonic clock, nothing is given up, and all of it
//! arrives once the receiver is back.

mod common;

use common::receiver::Receiver;
use common::{tempdir, write};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The preload library of libfaketime, from the package's file list.
fn libfaketime() -> PathBuf {
    let listed = Command::new("dpkg").args(["-L", "libfaketime"]).output().ok();
    let from_dpkg = listed.and_then(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .find(|l| l.ends_with("/libfaketime.so.1"))
            .map(PathBuf::from)
    });
    let lib = from_dpkg
        .unwrap_or_else(|| PathBuf::from("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"));
    assert!(
        lib.exists(),
        "libfaketime is missing: install it (apt-get install faketime); scripts/test.sh does"
    );
    lib
}

/// Starts `hostwatch run` under libfaketime, its wall clock read from the file `clock`.
fn spawn_faked(lib: &Path, cfg: &Path, clock: &Path, dir: &Path) -> Running {
    let child = Command::new(common::bin())
        .args(["run", "--config", cfg.to_str().unwrap()])
        .env("LD_PRELOAD", lib)
        .env("FAKETIME_TIMESTAMP_FILE", clock)
        .env("FAKETIME_NO_CACHE", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .env_remove("FAKETIME")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
        .spawn()
        .expect("start hostwatch run under libfaketime");
    Running(child)
}

/// Kills the daemon when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The notifications the hook recorded so far (complete lines only).
fn recorded(file: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Waits (bounded) until the hook has recorded more than `n` notifications with `pred`.
fn wait_for(file: &Path, limit: Duration, n: usize, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
    let end = Instant::now() + limit;
    loop {
        let got: Vec<Value> = recorded(file).into_iter().filter(|v| pred(v)).collect();
        if got.len() > n || Instant::now() >= end {
            return got;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn ts(v: &Value) -> f64 {
    v["ts"].as_f64().unwrap_or(f64::NAN)
}

#[test]
fn reminders_keep_their_cadence_across_wall_clock_steps_of_minus_1h_and_plus_25h() {
    let lib = libfaketime();
    let dir = tempdir("clock-steps");
    let out = dir.join("hook.jsonl");
    let clock = write(&dir, "faketime", "+0\n");
    let cfg = json!({
        "host": "clock-test", "interval": "1s", "state_dir": dir.join("state").display().to_string(),
        "rules": [{"name": "mem_any", "metric": "mem.used_percent", "warn": ">= 0"}],
        "escalation": {"remind_every": "3s"},
        "channels": {"hook": {"type": "exec",
            "command": ["/bin/sh", "-c", format!("cat >> '{}'", out.display())]}},
        "routes": [{"channels": ["hook"]}]
    });
    let cfg = write(&dir, "config.json", &cfg.to_string());
    let mut daemon = spawn_faked(&lib, &cfg, &clock, &dir);
    let is = |event: &'static str| move |v: &Value| v["event"] == event;

    let firing = wait_for(&out, Duration::from_secs(20), 0, is("firing"));
    assert_eq!(firing.len(), 1, "the rule fired once: {firing:?}");
    let before = wait_for(&out, Duration::from_secs(12), 1, is("reminder"));
    assert!(before.len() >= 2, "reminders before any step: {before:?}");
    let last_before = ts(before.last().unwrap());

    // Step the wall clock back one hour.
    std::fs::write(&clock, "-1h\n").unwrap();
    let seen = recorded(&out).len();
    let after_back = wait_for(&out, Duration::from_secs(12), 1, |v| {
        v["event"] == "reminder" && ts(v) < last_before - 3000.0
    });
    assert!(
        after_back.len() >= 2,
        "at least 2 reminders within 12 s after a −1 h step, got {after_back:?} (of {:?})",
        &recorded(&out)[seen..]
    );
    let last_back = ts(after_back.last().unwrap());

    // Then forward by 25 hours (an offset of +24 h from the real time).
    std::fs::write(&clock, "+24h\n").unwrap();
    let after_fwd = wait_for(&out, Duration::from_secs(12), 1, |v| {
        v["event"] == "reminder" && ts(v) > last_back + 80_000.0
    });
    assert!(
        after_fwd.len() >= 2,
        "at least 2 reminders within 12 s after a +25 h step, got {after_fwd:?}"
    );
    assert!(after_fwd.len() <= 8, "a burst, not a cadence: {after_fwd:?}");

    // One episode from start to end: never resolved, never escalated by the jump, and every
    // notification of it received (sequence numbers without holes).
    let all = recorded(&out);
    assert!(all.iter().all(|v| v["event"] != "resolved"), "resolved by a clock step: {all:?}");
    assert!(all.iter().all(|v| v["event"] != "escalated"), "{all:?}");
    assert!(all.iter().all(|v| v["since"] == firing[0]["since"]), "a new episode: {all:?}");
    let seqs: Vec<u64> = all.iter().filter_map(|v| v["seq"].as_u64()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "a notification was lost");

    // SIGTERM saves the state: the elapsed counters are in it for the next process.
    let pid = daemon.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = daemon.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state/state.json")).unwrap())
            .unwrap();
    let alert = &state["alerts"][0]["state"];
    assert_eq!(alert["phase"], "firing", "{state}");
    let firing_s = alert["firing_s"].as_f64().expect("firing_s saved");
    assert!(firing_s > 10.0 && firing_s < 120.0, "elapsed, not wall, time: {alert}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn notifications_waiting_in_the_outbox_survive_wall_clock_steps_of_25h() {
    let lib = libfaketime();
    let dir = tempdir("clock-steps-outbox");
    let clock = write(&dir, "faketime", "+0\n");
    let receiver = Receiver::start();
    receiver.set_default(json!({"status": 500, "body": "down"}));
    let cfg = json!({
        "host": "clock-test", "interval": "1s", "state_dir": dir.join("state").display().to_string(),
        "rules": [{"name": "mem_any", "metric": "mem.used_percent", "warn": ">= 0"}],
        "escalation": {"remind_every": "2s"},
        "channels": {"hook": {"type": "webhook", "url": receiver.url("/hook"), "timeout": "2s"}},
        "routes": [{"channels": ["hook"]}],
        "delivery": {"retry_base": "200ms", "retry_max": "1s", "give_up_after": "24h"}
    });
    let cfg = write(&dir, "config.json", &cfg.to_string());
    let mut daemon = spawn_faked(&lib, &cfg, &clock, &dir);
    assert!(!receiver.wait_for(2, Duration::from_secs(20)).is_empty(), "attempts are made");
    std::fs::write(&clock, "+25h\n").unwrap();
    std::thread::sleep(Duration::from_secs(4));
    std::fs::write(&clock, "-25h\n").unwrap();
    std::thread::sleep(Duration::from_secs(4));
    receiver.set_default(json!({"status": 200, "body": "ok"}));
    // Stop deciding new notifications once the receiver is back, then let the outbox drain.
    std::thread::sleep(Duration::from_secs(4));
    let pid = daemon.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(daemon.0.wait().unwrap().success());
    let log = std::fs::read_to_string(dir.join("state/events.jsonl")).unwrap_or_default();
    let records: Vec<Value> = log.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let failed: Vec<&Value> = records.iter().filter(|r| r["type"] == "delivery_failed").collect();
    assert!(failed.is_empty(), "given up because the wall clock jumped: {failed:?}");
    let decided: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "notification")
        .filter_map(|r| r["key"].as_str())
        .collect();
    let accepted: std::collections::BTreeSet<String> = receiver
        .requests()
        .into_iter()
        .filter(|q| q["answered"] == 200)
        .filter_map(|q| q["json"]["key"].as_str().map(str::to_string))
        .collect();
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state/state.json")).unwrap())
            .unwrap();
    let waiting: Vec<&str> = state["delivery"]["outbox"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["event"]["key"].as_str()).collect())
        .unwrap_or_default();
    println!(
        "decided {}, accepted {}, still waiting {}, given up {}",
        decided.len(),
        accepted.len(),
        waiting.len(),
        failed.len()
    );
    assert!(decided.len() >= 4, "{decided:?}");
    for key in &decided {
        assert!(
            accepted.contains(*key) || waiting.contains(key),
            "{key} was neither delivered nor kept in the outbox"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
