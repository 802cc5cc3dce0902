//! Delivery that loses nothing, against a real HTTP receiver on loopback: a receiver down for
//! a while then back gets every notification once and in order; hostwatch killed while the
//! receiver is down delivers after a restart; `Retry-After` is honoured; permanent failures
//! are not retried; old notifications are given up with a record; a hanging receiver does not
//! delay ticks (the jitter is measured and printed); routes and rule channels pick receivers.

mod common;

use common::daemon::Daemon;
use common::receiver::{Receiver, free_port};
use common::{tempdir, write};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A config with always-firing rules (reminders every 2 s) and one webhook channel.
fn config(dir: &Path, url: &str, delivery: Value) -> PathBuf {
    let cfg = json!({
        "host": "delivery-test", "interval": "1s", "state_dir": dir.join("state").display().to_string(),
        "rules": [
            {"name": "mem_any", "metric": "mem.used_percent", "warn": ">= 0"},
            {"name": "load_any", "metric": "load.1", "warn": ">= 0"}
        ],
        "escalation": {"remind_every": "2s"},
        "channels": {"hook": {"type": "webhook", "url": url, "timeout": "2s"}},
        "routes": [{"channels": ["hook"]}],
        "delivery": delivery
    });
    write(dir, "config.json", &cfg.to_string())
}

/// The notifications hostwatch decided on, from its events log.
fn decided(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("state/events.jsonl")).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "notification")
        .collect()
}

fn state(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("state/state.json")).unwrap()).unwrap()
}

fn outbox_keys(dir: &Path) -> BTreeSet<String> {
    state(dir)["delivery"]["outbox"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["event"]["key"].as_str().unwrap().to_string())
        .collect()
}

/// Received events (JSON bodies) in arrival order.
fn received(r: &Receiver) -> Vec<Value> {
    r.requests().into_iter().filter(|q| q["answered"] == 200).map(|q| q["json"].clone()).collect()
}

/// Asserts no key arrived twice and, per episode, sequence numbers arrived in order.
fn assert_once_and_in_order(events: &[Value]) {
    let mut seen = BTreeSet::new();
    let mut last_seq: BTreeMap<String, u64> = BTreeMap::new();
    for e in events {
        let key = e["key"].as_str().unwrap().to_string();
        assert!(seen.insert(key.clone()), "{key} arrived twice");
        let episode = e["episode_key"].as_str().unwrap().to_string();
        let seq = e["seq"].as_u64().unwrap();
        if let Some(prev) = last_seq.insert(episode.clone(), seq) {
            assert!(seq > prev, "episode {episode}: seq {seq} arrived after {prev}");
        }
    }
}

#[test]
fn receiver_down_then_back_gets_everything_once_in_order() {
    let dir = tempdir("delivery-down");
    let port = free_port();
    let cfg = config(
        &dir,
        &format!("http://127.0.0.1:{port}/hook"),
        json!({"retry_base": "1s", "retry_max": "2s"}),
    );
    let mut daemon = Daemon::start(&cfg, false);
    // Down: nothing listens; notifications pile up in the outbox.
    std::thread::sleep(Duration::from_secs(5));
    assert!(!outbox_keys(&dir).is_empty(), "undelivered notifications are kept in the state file");
    let receiver = Receiver::start_on(port);
    std::thread::sleep(Duration::from_secs(6));
    daemon.signal("-TERM");
    assert!(daemon.child.wait().unwrap().success());
    let got = received(&receiver);
    assert_once_and_in_order(&got);
    let got_keys: BTreeSet<String> =
        got.iter().map(|e| e["key"].as_str().unwrap().to_string()).collect();
    let decided_keys: BTreeSet<String> =
        decided(&dir).iter().map(|e| e["key"].as_str().unwrap().to_string()).collect();
    let pending = outbox_keys(&dir);
    assert!(decided_keys.len() >= 4, "{decided_keys:?}");
    let accounted: BTreeSet<String> = got_keys.union(&pending).cloned().collect();
    assert_eq!(
        accounted, decided_keys,
        "every notification was delivered or is still in the outbox"
    );
    assert!(
        got_keys.len() >= decided_keys.len() - 2,
        "most were delivered once the receiver came back"
    );
}

#[test]
fn killed_while_the_receiver_is_down_delivers_after_restart() {
    let dir = tempdir("delivery-kill");
    let port = free_port();
    let cfg = config(
        &dir,
        &format!("http://127.0.0.1:{port}/hook"),
        json!({"retry_base": "1s", "retry_max": "2s"}),
    );
    let mut daemon = Daemon::start(&cfg, false);
    std::thread::sleep(Duration::from_secs(4));
    daemon.signal("-KILL");
    let _ = daemon.child.wait();
    drop(daemon);
    let first_run: BTreeSet<String> =
        decided(&dir).iter().map(|e| e["key"].as_str().unwrap().to_string()).collect();
    assert!(!first_run.is_empty());
    assert_eq!(outbox_keys(&dir), first_run, "everything decided before the kill is in the outbox");
    let receiver = Receiver::start_on(port);
    let mut daemon = Daemon::start(&cfg, false);
    let _ = receiver.wait_for(first_run.len(), Duration::from_secs(20));
    daemon.signal("-TERM");
    let _ = daemon.child.wait();
    let got = received(&receiver);
    assert_once_and_in_order(&got);
    let got_keys: BTreeSet<String> =
        got.iter().map(|e| e["key"].as_str().unwrap().to_string()).collect();
    assert!(
        first_run.is_subset(&got_keys),
        "lost across the restart: {:?}",
        first_run.difference(&got_keys)
    );
    // The restart did not announce the still-firing alerts again.
    let firings = got.iter().filter(|e| e["event"] == "firing").count();
    assert_eq!(firings, 2, "{got:?}");
}

#[test]
fn retry_after_is_honoured_and_permanent_failures_are_not_retried() {
    let dir = tempdir("delivery-429");
    let receiver = Receiver::start();
    receiver.script(
        "/slow",
        json!([{"status": 429, "headers": {"Retry-After": "3"}, "body": "slow down"}]),
    );
    receiver.script("/gone", json!([]));
    let cfg = json!({
        "host": "delivery-test", "interval": "1s", "state_dir": dir.join("state").display().to_string(),
        "rules": [{"name": "mem_any", "metric": "mem.used_percent", "warn": ">= 0"}],
        "channels": {
            "slow": {"type": "webhook", "url": receiver.url("/slow")},
            "gone": {"type": "webhook", "url": receiver.url("/gone")}
        },
        "routes": [{"channels": ["slow", "gone"]}],
        "delivery": {"retry_base": "1s", "retry_max": "2s"}
    });
    let cfg = write(&dir, "config.json", &cfg.to_string());
    // Only /gone answers 404 (its default is the receiver's default 200 otherwise).
    receiver.script(
        "/gone",
        json!([{"status": 404, "body": "no_service"}, {"status": 404, "body": "no_service"}]),
    );
    let mut daemon = Daemon::start(&cfg, false);
    let _ = receiver.wait_for(3, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(3));
    daemon.signal("-TERM");
    let _ = daemon.child.wait();
    let reqs = receiver.requests();
    let slow: Vec<&Value> = reqs.iter().filter(|r| r["path"] == "/slow").collect();
    assert_eq!(slow.len(), 2, "one 429, then the retry: {slow:?}");
    let waited = slow[1]["t"].as_f64().unwrap() - slow[0]["t"].as_f64().unwrap();
    assert!(waited >= 2.9, "the retry came {waited:.2}s after a Retry-After of 3 s");
    let gone: Vec<&Value> = reqs.iter().filter(|r| r["path"] == "/gone").collect();
    assert_eq!(gone.len(), 1, "a 404 is permanent: no retry: {gone:?}");
    let log = std::fs::read_to_string(dir.join("state/events.jsonl")).unwrap();
    let failed: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| v["type"] == "delivery_failed")
        .collect();
    assert_eq!(failed.len(), 1, "{log}");
    assert_eq!(failed[0]["channel"], "gone");
    assert_eq!(failed[0]["gave_up"], false);
    assert!(outbox_keys(&dir).is_empty());
}

#[test]
fn notifications_older_than_give_up_after_are_dropped_with_a_record() {
    let dir = tempdir("delivery-giveup");
    let port = free_port();
    let cfg = config(
        &dir,
        &format!("http://127.0.0.1:{port}/hook"),
        json!({"retry_base": "1s", "retry_max": "1s", "give_up_after": "2s"}),
    );
    let daemon = Daemon::start(&cfg, false);
    let line = daemon.wait_stderr(Duration::from_secs(30), "giving up on a notification");
    assert!(line.is_some(), "an undeliverable notification is given up after give_up_after");
    std::thread::sleep(Duration::from_secs(2));
    daemon.signal("-TERM");
    drop(daemon);
    let log = std::fs::read_to_string(dir.join("state/events.jsonl")).unwrap();
    assert!(
        log.lines().any(|l| l.contains("\"delivery_failed\"") && l.contains("\"gave_up\":true")),
        "{log}"
    );
}

#[test]
fn a_hanging_receiver_does_not_delay_ticks() {
    let dir = tempdir("delivery-hang");
    let receiver = Receiver::start();
    receiver.set_default(json!({"status": 200, "body": "ok", "delay": 30}));
    let cfg = config(&dir, &receiver.url("/hook"), json!({"retry_base": "1s", "retry_max": "2s"}));
    let daemon = Daemon::start_with(&cfg, false, &["--log-format", "json", "--log-level", "debug"]);
    let end = std::time::Instant::now() + Duration::from_secs(10);
    let mut late_ms = Vec::new();
    while let Some(left) = end.checked_duration_since(std::time::Instant::now()) {
        match daemon.stderr.recv_timeout(left) {
            Ok(line) => {
                let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                if v["message"] == "tick" {
                    late_ms.push(v["fields"]["late_ms"].as_f64().unwrap());
                }
            }
            Err(_) => break,
        }
    }
    daemon.signal("-TERM");
    drop(daemon);
    assert!(!receiver.requests().is_empty(), "the receiver was reached (and hung)");
    late_ms.sort_by(f64::total_cmp);
    let p50 = late_ms.get(late_ms.len() / 2).copied().unwrap_or(f64::NAN);
    let max = late_ms.last().copied().unwrap_or(f64::NAN);
    println!(
        "tick jitter with a hanging receiver: {} ticks in 10 s, median {p50:.2} ms late, max {max:.2} ms late",
        late_ms.len()
    );
    // Ticks kept coming while every delivery hung for 30 s (interval 1 s).
    assert!(late_ms.len() >= 7, "only {} ticks in 10 s", late_ms.len());
}

#[test]
fn routes_and_rule_channels_pick_the_receivers() {
    let dir = tempdir("delivery-routes");
    let receiver = Receiver::start();
    let cfg = json!({
        "host": "route-test", "interval": "1s", "state_dir": dir.join("state").display().to_string(),
        "rules": [
            {"name": "mem_warn", "metric": "mem.used_percent", "warn": ">= 0"},
            {"name": "mem_crit", "metric": "mem.used_percent", "crit": ">= 0", "channels": ["own"]}
        ],
        "channels": {
            "warnings": {"type": "webhook", "url": receiver.url("/warnings")},
            "pager": {"type": "webhook", "url": receiver.url("/pager")},
            "own": {"type": "webhook", "url": receiver.url("/own")}
        },
        "routes": [
            {"severity": "warning", "channels": ["warnings"]},
            {"severity": "critical", "channels": ["pager"]}
        ]
    });
    let cfg = write(&dir, "config.json", &cfg.to_string());
    let mut daemon = Daemon::start(&cfg, false);
    let _ = receiver.wait_for(3, Duration::from_secs(20));
    daemon.signal("-TERM");
    let _ = daemon.child.wait();
    let mut got: Vec<(String, String)> = receiver
        .requests()
        .iter()
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_string(),
                r["json"]["rule"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("/own".to_string(), "mem_crit".to_string()),
            ("/pager".to_string(), "mem_crit".to_string()),
            ("/warnings".to_string(), "mem_warn".to_string()),
        ]
    );
}

#[test]
fn a_notification_in_flight_during_repeated_crashes_is_set_aside_with_a_record() {
    let dir = tempdir("delivery-crashloop");
    let cfg = json!({
        "host": "crash-test", "interval": "1s", "state_dir": dir.join("state").display().to_string(),
        "rules": [{"name": "mem_any", "metric": "mem.used_percent", "warn": ">= 0"}],
        // A hook that is still running whenever the process dies: its delivery is in flight.
        "channels": {"slow": {"type": "exec", "command": ["/bin/sleep", "6"], "timeout": "30s"}},
        "routes": [{"channels": ["slow"]}]
    });
    let cfg = write(&dir, "config.json", &cfg.to_string());
    // The attempt in flight, as the crash-loop guard counts it: the last `attempt` record of
    // the outbox journal, else the count the state file carries.
    let in_flight = || -> u64 {
        let journal = std::fs::read_to_string(dir.join("state/outbox.journal")).unwrap_or_default();
        let last = journal
            .lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["op"] == "attempt");
        if let Some(record) = last {
            return record["n"].as_u64().unwrap_or(0);
        }
        let Ok(text) = std::fs::read_to_string(dir.join("state/state.json")) else { return 0 };
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        v["delivery"]["outbox"][0]["crashed"].as_u64().unwrap_or(0)
    };
    for crash in 1..=3u64 {
        let mut daemon = Daemon::start(&cfg, false);
        let end = std::time::Instant::now() + Duration::from_secs(20);
        while in_flight() < crash && std::time::Instant::now() < end {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(in_flight(), crash, "the attempt was recorded before it started");
        daemon.signal("-KILL");
        let _ = daemon.child.wait();
    }
    // The fourth start sets it aside instead of crashing on it again.
    let daemon = Daemon::start(&cfg, false);
    let line = daemon.wait_stderr(Duration::from_secs(20), "set aside");
    assert!(line.is_some(), "the notification was set aside");
    std::thread::sleep(Duration::from_millis(1500));
    daemon.signal("-TERM");
    drop(daemon);
    let log = std::fs::read_to_string(dir.join("state/events.jsonl")).unwrap();
    let record: Value = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["type"] == "delivery_failed")
        .expect("a delivery_failed record");
    assert_eq!(record["gave_up"], true);
    assert_eq!(record["event"]["rule"], "mem_any", "the record keeps the whole event");
    assert!(outbox_keys(&dir).is_empty());
}

#[test]
fn a_clean_stop_does_not_count_as_a_crash() {
    let dir = tempdir("delivery-cleanstop");
    let cfg = json!({
        "host": "crash-test", "interval": "1s", "state_dir": dir.join("state").display().to_string(),
        "rules": [{"name": "mem_any", "metric": "mem.used_percent", "warn": ">= 0"}],
        "channels": {"down": {"type": "webhook", "url": format!("http://127.0.0.1:{}/x", free_port())}},
        "routes": [{"channels": ["down"]}]
    });
    let cfg = write(&dir, "config.json", &cfg.to_string());
    for _ in 0..4 {
        let mut daemon = Daemon::start(&cfg, false);
        assert!(daemon.wait_stderr(Duration::from_secs(20), "will retry").is_some());
        daemon.signal("-TERM");
        assert!(daemon.child.wait().unwrap().success());
    }
    let item = &state(&dir)["delivery"]["outbox"][0];
    assert_eq!(item["event"]["rule"], "mem_any", "still waiting for the receiver: {item}");
    assert!(item["crashed"].is_null(), "clean stops are no crashes: {item}");
}
