//! Alert state, outbox and shared silences in Redis (`state.store`), against a real
//! `redis-server` (Debian `redis-server`) started per test on a free loopback port with
//! nothing saved to disk, and a recording HTTP receiver as the webhook:
//! - an agent killed with SIGKILL whose state_dir is deleted starts again from Redis: no
//!   firing announced twice, the pending outbox item delivered;
//! - Redis killed (its data gone) while reminders keep changing the state, then started
//!   again: every notification delivered, the outage logged once and its end once, and
//!   Redis brought up to date (its copy equals the local file after the stop). The outage
//!   lasts `HOSTWATCH_TEST_REDIS_OUTAGE` seconds (default 10; `scripts/redis-outage.sh`
//!   runs the 30 s);
//! - a silence added with `--host 'web-*'` mutes agents web-1 and web-2, not db-1;
//! - a password in the store URL never shows in `check` output or the agent's log.

#![cfg(feature = "redis")]

mod common;

use common::daemon::Daemon;
use common::receiver::Receiver;
use common::redis::Redis;
use common::{tempdir, write};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A config for host `host` with its own state_dir under `dir`, the store, and one webhook.
fn config(dir: &Path, host: &str, store: &str, hook: &str, rules: Value, extra: Value) -> PathBuf {
    let mut cfg = json!({
        "host": host, "interval": "1s",
        "state_dir": state_dir(dir, host).display().to_string(),
        "state": {"store": store, "key_prefix": "hwtest"},
        "rules": rules,
        "channels": {"hook": {"type": "webhook", "url": hook, "timeout": "2s"}},
        "routes": [{"channels": ["hook"]}],
        "delivery": {"retry_base": "1s", "retry_max": "2s"},
        "history": false
    });
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    write(dir, &format!("{host}.json"), &cfg.to_string())
}

fn state_dir(dir: &Path, host: &str) -> PathBuf {
    dir.join(format!("state-{host}"))
}

/// Events the receiver accepted (answered 200), in arrival order.
fn accepted(r: &Receiver) -> Vec<Value> {
    r.requests().into_iter().filter(|q| q["answered"] == 200).map(|q| q["json"].clone()).collect()
}

/// Polls `what` every 100 ms until it is true or `limit` passed; returns whether it became true.
fn wait_until(limit: Duration, what: impl Fn() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if what() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    what()
}

/// Stops the agent with SIGTERM and returns every stderr line it printed that `seen` does
/// not already hold.
fn stop(mut d: Daemon, mut seen: Vec<String>) -> Vec<String> {
    d.signal("-TERM");
    assert!(d.child.wait().unwrap().success(), "the agent did not stop cleanly");
    while let Ok(line) = d.stderr.recv_timeout(Duration::from_secs(5)) {
        seen.push(line);
    }
    seen
}

#[test]
fn a_restart_without_the_state_dir_takes_the_state_from_redis() {
    let dir = tempdir("redis-restart");
    let redis = Redis::start(&dir);
    let receiver = Receiver::start();
    let rules = json!([
        {"name": "at_once", "metric": "mem.used_percent", "warn": ">= 0"},
        {"name": "later", "metric": "load.1", "warn": ">= 0", "for": "4s"}
    ]);
    let cfg = config(&dir, "box-1", &redis.url(), &receiver.url("/hook"), rules, json!({}));
    let d = Daemon::start(&cfg, false);
    let got_first = wait_until(Duration::from_secs(20), || {
        accepted(&receiver).iter().any(|e| e["rule"] == "at_once")
    });
    assert!(got_first, "the first firing was not delivered");
    // The receiver fails from now on: the second rule's firing stays in the outbox.
    receiver.set_default(json!({"status": 503, "body": "down"}));
    let key = "hwtest:box-1:state";
    let pending_in_redis = wait_until(Duration::from_secs(20), || {
        redis.get_json(key).is_some_and(|s| {
            s["delivery"]["outbox"]
                .as_array()
                .is_some_and(|o| o.iter().any(|i| i["event"]["rule"] == "later"))
        })
    });
    assert!(pending_in_redis, "Redis never held the pending item: {:?}", redis.get_json(key));
    d.signal("-KILL");
    drop(d);
    // A container without a volume: the state_dir is gone.
    std::fs::remove_dir_all(state_dir(&dir, "box-1")).unwrap();
    receiver.set_default(json!({"status": 200, "body": "ok"}));
    let d = Daemon::start(&cfg, false);
    let restored = d.wait_stderr(Duration::from_secs(20), "state restored from Redis");
    assert!(restored.is_some(), "the agent did not say it took the state from Redis");
    let delivered = wait_until(Duration::from_secs(20), || {
        accepted(&receiver).iter().any(|e| e["rule"] == "later")
    });
    assert!(delivered, "the pending outbox item was not delivered after the restart");
    // A re-announce would come at the first ticks.
    std::thread::sleep(Duration::from_secs(3));
    stop(d, Vec::new());
    let got = accepted(&receiver);
    for rule in ["at_once", "later"] {
        let firings = got.iter().filter(|e| e["rule"] == rule && e["event"] == "firing").count();
        assert_eq!(firings, 1, "{rule} announced {firings} times: {got:?}");
    }
    let local: Value = serde_json::from_slice(
        &std::fs::read(state_dir(&dir, "box-1").join("state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(local["alerts"].as_array().map(Vec::len), Some(2), "{local}");
}
