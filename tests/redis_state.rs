//! Alert state, outbox and shared silences in Redis (`state.store`), against a real
//! `redis-server` (Debian `redis-server`) started per test on a free loopback port with
//! nothing saved to disk, and a recording HTTP receiver as the webhook:
//! - an agent killed with SIGKILL whose state_dir is deleted starts again from Redis: no
//!   firing announced twice (checked once a rule with a 3 s `for` fired after the restart),
//!   the very outbox item Redis held delivered;
//! - the same restart while Redis does not answer (SIGSTOP): the start-up read is retried
//!   and the Redis copy adopted once it answers, nothing overwritten;
//! - a Redis copy of another lineage is kept under a `:conflict:` key, and a second writer
//!   of the key is named once and not overwritten;
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
use common::{run, stderr, stdout, tempdir, write};
use serde_json::{Value, json};
use std::collections::BTreeSet;
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

/// Keys of the notifications an agent decided on, from its events log.
fn decided(state_dir: &Path) -> BTreeSet<String> {
    records(state_dir, "notification")
        .iter()
        .map(|v| v["key"].as_str().unwrap().to_string())
        .collect()
}

/// The events log's records of type `kind`.
fn records(state_dir: &Path, kind: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(state_dir.join("events.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == kind)
        .collect()
}

/// How long the test keeps Redis down (`HOSTWATCH_TEST_REDIS_OUTAGE` seconds, default 10).
fn outage() -> Duration {
    let secs = std::env::var("HOSTWATCH_TEST_REDIS_OUTAGE").ok().and_then(|v| v.parse().ok());
    Duration::from_secs(secs.unwrap_or(10))
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
    let (cfg, item) = pending_in_redis_then_lost_state_dir(&dir, &redis, &receiver, "box-1");
    // The restart adds a rule that fires only after 3 s: once it is delivered, the first
    // ticks (where a re-announce would come) are over.
    let mut restarted: Value = serde_json::from_slice(&std::fs::read(&cfg).unwrap()).unwrap();
    restarted["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "marker", "metric": "mem.used_percent", "warn": ">= 0", "for": "3s"}));
    let cfg = write(&dir, "box-1-again.json", &restarted.to_string());
    let d = Daemon::start(&cfg, false);
    let restored = d.wait_stderr(Duration::from_secs(20), "state restored from Redis");
    assert!(restored.is_some(), "the agent did not say it took the state from Redis");
    // The very item Redis held (its key), not a new firing of `later` after a lost state.
    let delivered = wait_until(Duration::from_secs(20), || {
        accepted(&receiver).iter().any(|e| e["key"] == item["event"]["key"])
    });
    assert!(delivered, "the pending outbox item {item} was not delivered after the restart");
    let marked = wait_until(Duration::from_secs(20), || {
        accepted(&receiver).iter().any(|e| e["rule"] == "marker")
    });
    assert!(marked, "the marker rule never fired after the restart");
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
    assert_eq!(local["alerts"].as_array().map(Vec::len), Some(3), "{local}");
}

/// Runs `box-1`'s first part: a firing delivered, then a second one pending in Redis while
/// the receiver fails; the agent killed and its state_dir deleted. Returns the config and
/// the pending item as Redis holds it.
fn pending_in_redis_then_lost_state_dir(
    dir: &Path,
    redis: &Redis,
    receiver: &Receiver,
    host: &str,
) -> (PathBuf, Value) {
    let rules = json!([
        {"name": "at_once", "metric": "mem.used_percent", "warn": ">= 0"},
        {"name": "later", "metric": "load.1", "warn": ">= 0", "for": "4s"}
    ]);
    let cfg = config(dir, host, &redis.url(), &receiver.url("/hook"), rules, json!({}));
    let d = Daemon::start(&cfg, false);
    let got_first = wait_until(Duration::from_secs(20), || {
        accepted(receiver).iter().any(|e| e["rule"] == "at_once")
    });
    assert!(got_first, "the first firing was not delivered");
    receiver.set_default(json!({"status": 503, "body": "down"}));
    let key = format!("hwtest:{host}:state");
    let item = |s: &Value| {
        s["delivery"]["outbox"]
            .as_array()
            .and_then(|o| o.iter().find(|i| i["event"]["rule"] == "later").cloned())
    };
    let pending = wait_until(Duration::from_secs(20), || {
        redis.get_json(&key).as_ref().and_then(item).is_some()
    });
    assert!(pending, "Redis never held the pending item: {:?}", redis.get_json(&key));
    d.signal("-KILL");
    drop(d);
    let item = redis.get_json(&key).as_ref().and_then(item).unwrap();
    std::fs::remove_dir_all(state_dir(dir, host)).unwrap();
    receiver.set_default(json!({"status": 200, "body": "ok"}));
    (cfg, item)
}

#[test]
fn a_start_while_redis_does_not_answer_waits_for_its_copy_and_overwrites_nothing() {
    let dir = tempdir("redis-frozen");
    let redis = Redis::start(&dir);
    let receiver = Receiver::start();
    let (cfg, item) = pending_in_redis_then_lost_state_dir(&dir, &redis, &receiver, "box-7");
    redis.pause();
    let d = Daemon::start(&cfg, false);
    let retried = d.wait_stderr(Duration::from_secs(20), "reading the state from Redis again");
    redis.resume();
    assert!(retried.is_some(), "the agent did not retry the start-up read");
    let restored = d.wait_stderr(Duration::from_secs(30), "state restored from Redis");
    assert!(restored.is_some(), "the agent did not take the state from Redis");
    let delivered = wait_until(Duration::from_secs(20), || {
        accepted(&receiver).iter().any(|e| e["key"] == item["event"]["key"])
    });
    assert!(delivered, "the pending outbox item {item} was not delivered");
    stop(d, Vec::new());
    let got = accepted(&receiver);
    let firings = got.iter().filter(|e| e["rule"] == "at_once" && e["event"] == "firing").count();
    assert_eq!(firings, 1, "at_once announced {firings} times: {got:?}");
}

#[test]
fn a_redis_copy_of_another_lineage_is_kept_aside_and_a_second_writer_is_named() {
    let dir = tempdir("redis-lineage");
    let redis = Redis::start(&dir);
    let receiver = Receiver::start();
    let rules = json!([{"name": "at_once", "metric": "mem.used_percent", "warn": ">= 0"}]);
    let cfg = config(&dir, "box-6", &redis.url(), &receiver.url("/hook"), rules, json!({}));
    let key = "hwtest:box-6:state";
    let d = Daemon::start(&cfg, false);
    assert!(wait_until(Duration::from_secs(20), || redis.get_json(key).is_some()));
    stop(d, Vec::new());
    let foreign = json!({"version": 1, "saved_at": 1.0, "generation": 1000, "lineage": "0123456789abcdef",
        "alerts": [], "delivery": {"outbox": [], "next_id": 1}});
    redis.cli(&["SET", key, &foreign.to_string()]);
    let d = Daemon::start(&cfg, false);
    let warned =
        d.wait_stderr(Duration::from_secs(20), "of another history (lineage 0123456789abcdef)");
    assert!(warned.is_some(), "the start did not name the other lineage");
    let kept = d.wait_stderr(Duration::from_secs(20), "not overwritten");
    assert!(kept.is_some(), "the mirror did not say it kept the other copy");
    let conflicts = redis.cli(&["KEYS", "hwtest:box-6:state:conflict:*"]);
    let conflict = conflicts.lines().next().expect("a conflict key");
    assert_eq!(redis.get_json(conflict), Some(foreign.clone()));
    // A second writer of the key: named once, never overwritten.
    redis.cli(&["SET", key, &foreign.to_string()]);
    let named = d.wait_stderr(Duration::from_secs(20), "another agent writes hwtest:box-6:state");
    assert!(named.is_some(), "the second writer was not named");
    let lines = stop(d, Vec::new());
    assert_eq!(redis.get_json(key), Some(foreign), "the other agent's copy was overwritten");
    let twice = lines.iter().filter(|l| l.contains("another agent writes")).count();
    assert_eq!(twice, 0, "named more than once: {lines:#?}");
}

#[test]
fn a_redis_outage_loses_nothing_and_redis_is_brought_up_to_date() {
    let dir = tempdir("redis-outage");
    let mut redis = Redis::start(&dir);
    let receiver = Receiver::start();
    let rules = json!([
        {"name": "mem_any", "metric": "mem.used_percent", "warn": ">= 0"},
        {"name": "load_any", "metric": "load.1", "warn": ">= 0"}
    ]);
    // Reminders every 2 s: the state keeps changing through the outage.
    let extra = json!({"escalation": {"remind_every": "2s"}});
    let cfg = config(&dir, "box-2", &redis.url(), &receiver.url("/hook"), rules, extra);
    let d = Daemon::start(&cfg, false);
    let key = "hwtest:box-2:state";
    assert!(wait_until(Duration::from_secs(20), || redis.get_json(key).is_some()));
    redis.kill();
    let outage = outage();
    let went = Instant::now();
    let before = decided(&state_dir(&dir, "box-2")).len();
    // The state changes during the outage: two more reminders decided while Redis is away.
    let changed = wait_until(outage + Duration::from_secs(20), || {
        decided(&state_dir(&dir, "box-2")).len() >= before + 2
    });
    assert!(changed, "no reminders decided during the outage");
    std::thread::sleep(outage.saturating_sub(went.elapsed()));
    // Back, and empty (nothing was saved): the agent must bring it up to date.
    redis.restart();
    let caught_up = wait_until(Duration::from_secs(20), || redis.get_json(key).is_some());
    assert!(caught_up, "Redis was not brought up to date after the outage");
    let lines = stop(d, Vec::new());
    let local: Value = serde_json::from_slice(
        &std::fs::read(state_dir(&dir, "box-2").join("state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(redis.get_json(key), Some(local.clone()), "Redis differs from the local file");
    let count = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(count("Redis is unreachable"), 1, "the outage is logged once: {lines:#?}");
    assert_eq!(count("brought up to date"), 1, "its end is logged once: {lines:#?}");
    // Nothing lost: every notification decided was delivered (or waits in the outbox).
    let decided = decided(&state_dir(&dir, "box-2"));
    let got: BTreeSet<String> =
        accepted(&receiver).iter().map(|e| e["key"].as_str().unwrap().to_string()).collect();
    let pending: BTreeSet<String> = local["delivery"]["outbox"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["event"]["key"].as_str().unwrap().to_string())
        .collect();
    let lost: Vec<&String> =
        decided.iter().filter(|k| !got.contains(*k) && !pending.contains(*k)).collect();
    assert!(lost.is_empty(), "lost: {lost:?}");
}

#[test]
fn a_silence_for_web_hosts_mutes_web_1_and_web_2_and_not_db_1() {
    let dir = tempdir("redis-silences");
    let redis = Redis::start(&dir);
    let receiver = Receiver::start();
    let rules = json!([{"name": "mem_any", "metric": "mem.used_percent", "warn": ">= 0"}]);
    let extra = json!({"escalation": {"remind_every": "2s"}});
    let hosts = ["web-1", "web-2", "db-1"];
    let cfgs: Vec<PathBuf> = hosts
        .iter()
        .map(|h| {
            config(&dir, h, &redis.url(), &receiver.url("/hook"), rules.clone(), extra.clone())
        })
        .collect();
    let agents: Vec<Daemon> = cfgs.iter().map(|c| Daemon::start(c, false)).collect();
    let per_host = |h: &str| accepted(&receiver).iter().filter(|e| e["host"] == h).count();
    let all_fired = wait_until(Duration::from_secs(30), || hosts.iter().all(|h| per_host(h) > 0));
    assert!(all_fired, "not every agent announced: {:?}", accepted(&receiver));
    let cfg = cfgs[2].to_str().unwrap();
    let o = run(&["silence", "--config", cfg, "add", "--host", "web-*", "--rule", "mem_any"]);
    assert!(!o.status.success(), "a silence needs --for");
    let o = run(&[
        "silence",
        "--config",
        cfg,
        "add",
        "--host",
        "web-*",
        "--rule",
        "mem_any",
        "--for",
        "1h",
        "--comment",
        "deploy",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    assert!(id.starts_with('r'), "{id}");
    // Each web agent picks the silence up at a tick and holds its next reminder back.
    let held = wait_until(Duration::from_secs(20), || {
        hosts[..2].iter().all(|h| !records(&state_dir(&dir, h), "silenced").is_empty())
    });
    assert!(held, "the web agents did not apply the shared silence");
    // Notifications decided (the events log, not deliveries still in flight).
    let decided_by = |h: &str| records(&state_dir(&dir, h), "notification").len();
    let before: Vec<usize> = hosts.iter().map(|h| decided_by(h)).collect();
    // db-1's next two reminders: the web agents' would have come meanwhile.
    let db_on = wait_until(Duration::from_secs(30), || decided_by(hosts[2]) >= before[2] + 2);
    assert!(db_on, "db-1 was muted too");
    let after: Vec<usize> = hosts.iter().map(|h| decided_by(h)).collect();
    assert_eq!((after[0], after[1]), (before[0], before[1]), "a web agent still notified");
    assert!(records(&state_dir(&dir, "db-1"), "silenced").is_empty());
    // `list` says where it lives; `remove` finds it there.
    let o = run(&["silence", "--config", cfg, "list", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let listed: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let ours = listed.as_array().unwrap().iter().find(|s| s["id"] == id.as_str()).unwrap();
    assert_eq!((ours["where"].as_str(), ours["host"].as_str()), (Some("redis"), Some("web-*")));
    let o = run(&["silence", "--config", cfg, "list"]);
    assert!(
        stdout(&o).lines().any(|l| l.starts_with(&id) && l.contains(" redis ")),
        "{}",
        stdout(&o)
    );
    let o = run(&["silence", "--config", cfg, "remove", &id]);
    assert_eq!(stdout(&o).trim(), format!("removed {id}"), "{}", stderr(&o));
    assert_eq!(redis.cli(&["HLEN", "hwtest:silences"]).trim(), "0");
    for a in agents {
        stop(a, Vec::new());
    }
}

#[test]
fn a_password_in_the_store_url_never_shows() {
    let dir = tempdir("redis-secret");
    let password = "s3cret-Pa55word";
    let redis = Redis::start_with(&dir, Some(password));
    let receiver = Receiver::start();
    let rules = json!([{"name": "mem_any", "metric": "mem.used_percent", "warn": ">= 0"}]);
    let good =
        config(&dir, "box-3", &redis.url(), &receiver.url("/hook"), rules.clone(), json!({}));
    let o = run(&["check", "--config", good.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let shown = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!shown.contains(password), "check showed the password: {shown}");
    assert!(shown.contains("redis://<redacted>@127.0.0.1"), "{shown}");
    // One agent with the right password writes its state; one with a wrong one is refused.
    let wrong = "wr0ng-Pa55word";
    let bad_url = format!("redis://:{wrong}@127.0.0.1:{}/0", redis.port);
    let bad = config(&dir, "box-4", &bad_url, &receiver.url("/hook"), rules, json!({}));
    let a = Daemon::start(&good, false);
    let b = Daemon::start(&bad, false);
    let key = "hwtest:box-3:state";
    assert!(wait_until(Duration::from_secs(20), || redis.get_json(key).is_some()));
    std::thread::sleep(Duration::from_secs(2));
    let mut lines = stop(a, Vec::new());
    let refused = stop(b, Vec::new());
    assert!(refused.iter().any(|l| l.contains("Redis")), "no Redis error logged: {refused:#?}");
    assert!(redis.get_json("hwtest:box-4:state").is_none());
    lines.extend(refused);
    let leaked: Vec<&String> =
        lines.iter().filter(|l| l.contains(password) || l.contains(wrong)).collect();
    assert!(leaked.is_empty(), "a password reached the log: {leaked:#?}");
}

#[test]
fn a_redis_restarted_empty_gets_the_state_again_when_nothing_changed() {
    let dir = tempdir("redis-empty");
    let mut redis = Redis::start(&dir);
    let receiver = Receiver::start();
    // One firing, no reminders: the state does not change after the first ticks.
    let rules = json!([{"name": "mem_any", "metric": "mem.used_percent", "warn": ">= 0"}]);
    let cfg = config(&dir, "box-5", &redis.url(), &receiver.url("/hook"), rules, json!({}));
    let d = Daemon::start(&cfg, false);
    let key = "hwtest:box-5:state";
    assert!(wait_until(Duration::from_secs(20), || redis.get_json(key).is_some()));
    std::thread::sleep(Duration::from_secs(2));
    redis.kill();
    std::thread::sleep(Duration::from_secs(3));
    redis.restart();
    let again = wait_until(Duration::from_secs(20), || redis.get_json(key).is_some());
    assert!(again, "a Redis that came back empty was not given the state again");
    stop(d, Vec::new());
}
