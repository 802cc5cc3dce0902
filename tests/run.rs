//! `hostwatch run`: the poll loop under real CPU load from stress-ng (fires, then resolves),
//! SIGHUP with a broken config (keeps running), SIGTERM (saves the state and stops).

mod common;

use common::daemon::Daemon;
use common::{tempdir, write};
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

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

#[test]
fn dry_run_prints_each_channels_payload_and_sends_nothing() {
    let dir = tempdir("run-dry-payloads");
    let receiver = common::receiver::Receiver::start();
    let hook_marker = dir.join("hook-ran");
    let cfg = json!({
        "host": "dry-host", "interval": "1s", "state_dir": dir.join("state").display().to_string(),
        "rules": [{"name": "mem_any", "metric": "mem.used_percent", "crit": ">= 0"}],
        "channels": {
            "hook": {"type": "webhook", "url": receiver.url("/hook")},
            "chat": {"type": "slack", "webhook_url": receiver.url("/slack")},
            "script": {"type": "exec", "command": ["/usr/bin/touch", hook_marker.display().to_string()]}
        },
        "routes": [{"severity": "critical", "channels": ["hook", "chat", "script"]}]
    });
    let cfg = write(&dir, "config.json", &cfg.to_string());
    let daemon = Daemon::start(&cfg, true);
    let line = daemon
        .wait_stdout(Duration::from_secs(20), |v| v["event"]["event"] == "firing")
        .expect("a notification");
    std::thread::sleep(Duration::from_millis(1500));
    daemon.signal("-TERM");
    drop(daemon);
    let deliveries = line["deliveries"].as_array().expect("deliveries");
    let by_channel =
        |name: &str| deliveries.iter().find(|d| d["channel"] == name).cloned().expect(name);
    assert_eq!(by_channel("hook")["payload"]["body"]["rule"], "mem_any");
    assert!(by_channel("chat")["payload"]["body"]["blocks"].is_array(), "{line}");
    assert_eq!(by_channel("script")["type"], "exec");
    assert!(receiver.requests().is_empty(), "a dry run sent something");
    assert!(!hook_marker.exists(), "a dry run ran the hook");
}
