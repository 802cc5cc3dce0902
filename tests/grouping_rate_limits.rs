//! Fewer messages for one event, end to end against the recording HTTP receiver: a burst of
//! ten alerts in one tick reaches Slack as one message listing all ten while the outbox keeps
//! ten keyed items (so hostwatch killed inside the group window loses nothing), and a rate
//! limit of three lets three through, holds seven back with a record each, counts them on
//! `/status` and `/metrics`, and tells the channel once per period; resolutions of announced
//! alerts pass, those of held ones are held too.

mod common;

use common::daemon::Daemon;
use common::receiver::{Receiver, free_port};
use common::{tempdir, write};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Ten rules that fire at the first tick (one series each).
fn ten_rules(threshold: &str) -> Value {
    (0..10)
        .map(|i| json!({"name": format!("burst_{i}"), "metric": "mem.used_percent", "warn": threshold}))
        .collect()
}

fn config(dir: &Path, channel: Value, rules: Value, extra: Value) -> PathBuf {
    let mut cfg = json!({
        "host": "burst-<!channel>-host", "interval": "1s",
        "state_dir": dir.join("state").display().to_string(),
        "rules": rules,
        "channels": {"ops": channel},
        "routes": [{"channels": ["ops"]}],
        "delivery": {"retry_base": "1s", "retry_max": "2s"}
    });
    if let (Value::Object(c), Value::Object(e)) = (&mut cfg, extra) {
        c.extend(e);
    }
    write(dir, "config.json", &cfg.to_string())
}

fn events(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("state/events.jsonl")).unwrap_or_default();
    text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).collect()
}

fn of_type(dir: &Path, kind: &str) -> Vec<Value> {
    events(dir).into_iter().filter(|v| v["type"] == kind).collect()
}

fn outbox_keys(dir: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(dir.join("state/state.json")).unwrap_or_default();
    let state: Value = serde_json::from_str(&text).unwrap_or_default();
    state["delivery"]["outbox"]
        .as_array()
        .map(|items| {
            items.iter().map(|i| i["event"]["key"].as_str().unwrap_or("").to_string()).collect()
        })
        .unwrap_or_default()
}

/// Waits (bounded) until `pred` holds.
fn wait_until(limit: Duration, mut pred: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if pred() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    pred()
}

fn bodies(r: &Receiver) -> Vec<Value> {
    r.requests().into_iter().filter(|q| q["answered"] == 200).map(|q| q["json"].clone()).collect()
}

fn notification_keys(dir: &Path) -> BTreeSet<String> {
    of_type(dir, "notification")
        .iter()
        .filter(|n| n["rule"].as_str().is_some_and(|r| r.starts_with("burst_")))
        .map(|n| n["key"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_burst_of_ten_reaches_slack_as_one_message_and_a_kill_inside_the_window_loses_nothing() {
    let dir = tempdir("group-slack");
    let receiver = Receiver::start();
    let slack = |wait: &str| json!({"type": "slack", "webhook_url": receiver.url("/slack"), "group_wait": wait});
    // A long window: the burst is decided and saved, then hostwatch dies inside the window.
    let cfg = config(&dir, slack("10m"), ten_rules(">= 0"), json!({}));
    let mut daemon = Daemon::start(&cfg, false);
    assert!(
        wait_until(Duration::from_secs(20), || outbox_keys(&dir).len() == 10),
        "ten items in the outbox: {:?}",
        outbox_keys(&dir)
    );
    daemon.signal("-KILL");
    let _ = daemon.child.wait();
    drop(daemon);
    let decided = notification_keys(&dir);
    assert_eq!(decided.len(), 10, "{decided:?}");
    assert_eq!(outbox_keys(&dir), decided, "each notification is its own keyed outbox item");
    assert!(bodies(&receiver).is_empty(), "nothing left inside the group window");

    // Restarted with a short window: the ten leave as one message, nothing announced again.
    let cfg = config(&dir, slack("2s"), ten_rules(">= 0"), json!({}));
    let mut daemon = Daemon::start(&cfg, false);
    let got = receiver.wait_for(1, Duration::from_secs(20));
    assert_eq!(got.len(), 1, "{got:#?}");
    // Nothing else arrives: no second message, no re-announcement.
    std::thread::sleep(Duration::from_secs(4));
    daemon.signal("-TERM");
    let _ = daemon.child.wait();
    let bodies = bodies(&receiver);
    assert_eq!(bodies.len(), 1, "one message for the burst: {bodies:#?}");
    let body = &bodies[0];
    let blocks = body["blocks"].as_array().unwrap();
    let sections: Vec<&str> = blocks
        .iter()
        .filter(|b| b["type"] == "section")
        .map(|b| b["text"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(sections.len(), 10, "one entry per alert: {body:#}");
    for key in &decided {
        assert_eq!(
            sections.iter().filter(|s| s.contains(key.as_str())).count(),
            1,
            "{key} listed once"
        );
    }
    for i in 0..10 {
        assert!(sections.iter().any(|s| s.contains(&format!("burst_{i}"))), "burst_{i}");
    }
    let header = blocks[0]["text"]["text"].as_str().unwrap();
    assert!(header.contains("10 notifications on"), "{header}");
    // Hostile text is escaped in the grouped message too.
    assert!(header.contains("&lt;!channel&gt;") && !header.contains("<!channel>"), "{header}");
    assert!(blocks.len() <= 50, "within Block Kit's block limit");
    assert!(outbox_keys(&dir).is_empty(), "all ten acknowledged");
}

#[test]
fn a_rate_limit_of_three_sends_three_then_one_summary_of_seven_and_records_all_ten() {
    let dir = tempdir("rate-limit");
    let receiver = Receiver::start();
    let port = free_port();
    let hook = json!({"type": "webhook", "url": receiver.url("/hook"),
                      "rate_limit": {"max": 3, "per": "6s"}});
    let api = json!({"api": {"listen": format!("127.0.0.1:{port}")}});
    let cfg = config(&dir, hook.clone(), ten_rules(">= 0"), api.clone());
    let mut daemon = Daemon::start(&cfg, false);
    assert!(
        wait_until(Duration::from_secs(20), || of_type(&dir, "rate_limited").len() == 7),
        "seven held back: {:#?}",
        events(&dir)
    );
    // Delivery runs on the channel's worker: the three arrive independently of the records.
    let _ = receiver.wait_for(3, Duration::from_secs(20));
    // (On a slow machine the period's summary may be there already: it is checked below.)
    let firing: Vec<Value> =
        bodies(&receiver).into_iter().filter(|b| b["event"] == "firing").collect();
    assert_eq!(firing.len(), 3, "three within the budget: {firing:#?}");
    assert_eq!(notification_keys(&dir).len(), 10, "all ten decided and recorded");
    let held: BTreeSet<String> =
        of_type(&dir, "rate_limited").iter().map(|r| r["key"].as_str().unwrap().into()).collect();
    let sent: BTreeSet<String> = firing.iter().map(|b| b["key"].as_str().unwrap().into()).collect();
    assert_eq!(held.len(), 7);
    assert!(held.is_disjoint(&sent));
    assert_eq!(held.union(&sent).cloned().collect::<BTreeSet<_>>(), notification_keys(&dir));
    // Counted where operators look.
    let (status, text) =
        common::http("GET", &format!("http://127.0.0.1:{port}/status"), "").unwrap();
    assert_eq!(status, 200);
    let status: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(status["channels"]["ops"]["held_back"], 7, "{status:#}");
    let (_, metrics) =
        common::http("GET", &format!("http://127.0.0.1:{port}/metrics"), "").unwrap();
    assert!(
        metrics.lines().any(|l| l.starts_with("hostwatch_deliveries_total{")
            && l.contains("channel=\"ops\"")
            && l.ends_with("result=\"held_back\"} 7")),
        "{metrics}"
    );
    // At the period's end, one summary names the seven.
    let got = receiver.wait_for(4, Duration::from_secs(20));
    assert_eq!(got.len(), 4, "{got:#?}");
    std::thread::sleep(Duration::from_secs(2));
    let all = bodies(&receiver);
    assert_eq!(all.len(), 4, "one summary per period: {all:#?}");
    let summary = &all[3];
    assert_eq!(summary["event"], "held_back", "{summary:#}");
    assert_eq!(summary["rule"], "hostwatch.rate_limit");
    let description = summary["description"].as_str().unwrap();
    assert!(description.starts_with("7 more notifications to channel ops"), "{description}");
    assert!(description.contains("limit 3 per 6s"), "{description}");

    // The limit is removed and the alerts clear: the three announced resolutions pass; the
    // seven the channel never heard of stay quiet (recorded), limit or not.
    let mut hook = hook;
    hook.as_object_mut().unwrap().remove("rate_limit");
    let _ = config(&dir, hook, ten_rules("> 100"), api);
    daemon.signal("-HUP");
    assert!(
        wait_until(Duration::from_secs(20), || of_type(&dir, "rate_limited").len() == 14),
        "{:#?}",
        events(&dir)
    );
    let got = receiver.wait_for(7, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(2));
    daemon.signal("-TERM");
    let _ = daemon.child.wait();
    let all = bodies(&receiver);
    assert_eq!(got.len(), 7, "{all:#?}");
    assert_eq!(all.len(), 7, "no summary of quiet resolutions: {all:#?}");
    let quiet = of_type(&dir, "rate_limited");
    assert!(
        quiet[7..].iter().all(|r| r["event"]["event"] == "resolved"
            && r["reason"].as_str().unwrap().contains("firing was held back")),
        "{quiet:#?}"
    );
    let resolved: BTreeSet<String> = all
        .iter()
        .filter(|b| b["event"] == "resolved")
        .map(|b| b["episode_key"].as_str().unwrap().to_string())
        .collect();
    let announced: BTreeSet<String> =
        firing.iter().map(|b| b["episode_key"].as_str().unwrap().to_string()).collect();
    assert_eq!(resolved, announced, "exactly the announced alerts' resolutions were sent");
}

#[test]
fn check_refuses_pacing_that_can_never_work() {
    let dir = tempdir("pacing-check");
    let cases = [
        (
            json!({"type": "alertmanager", "url": "http://127.0.0.1:9093", "group_wait": "30s"}),
            "Alertmanager groups alerts itself",
        ),
        (
            json!({"type": "webhook", "url": "http://127.0.0.1:1/h", "group_wait": "30s"}),
            "add \"group\": true",
        ),
        (
            json!({"type": "webhook", "url": "http://127.0.0.1:1/h", "max_per_hour": 3,
                "rate_limit": {"max": 3}}),
            "either max_per_hour or rate_limit",
        ),
        (
            json!({"type": "slack", "webhook_url": "https://hooks.slack.com/x", "group_wiat": "3s"}),
            "did you mean \"group_wait\"",
        ),
        (
            json!({"type": "slack", "webhook_url": "https://hooks.slack.com/x", "group_wait": "30s",
                "group_interval": "10s"}),
            "at least group_wait",
        ),
        (
            json!({"type": "slack", "webhook_url": "https://hooks.slack.com/x", "max_per_hour": 0}),
            "from 1 to 100000",
        ),
        (
            json!({"type": "slack", "webhook_url": "https://hooks.slack.com/x", "group_wait": "1h"}),
            "at most half of delivery.give_up_after",
        ),
    ];
    for (channel, expected) in cases {
        let extra = json!({"delivery": {"give_up_after": "1h"}});
        let cfg = config(&dir, channel.clone(), ten_rules(">= 0"), extra);
        let out = common::run(&["check", "--config", cfg.to_str().unwrap()]);
        let err = common::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{channel}: {err}");
        assert!(err.contains(expected), "{channel}: expected {expected:?} in {err}");
        assert!(err.contains("config.json:"), "names the file and position: {err}");
    }
}

/// The preload library of libfaketime (Debian `faketime`).
fn libfaketime() -> PathBuf {
    let listed = std::process::Command::new("dpkg").args(["-L", "libfaketime"]).output().ok();
    let lib = listed
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find(|l| l.ends_with("/libfaketime.so.1"))
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"));
    assert!(
        lib.exists(),
        "libfaketime is missing: apt-get install faketime (scripts/test.sh does)"
    );
    lib
}

/// `hostwatch once`, its wall clock `offset` ahead when given (libfaketime).
fn once(cfg: &Path, offset: Option<&str>) -> std::process::Output {
    let mut cmd = std::process::Command::new(common::bin());
    cmd.args(["once", "--config", cfg.to_str().unwrap(), "--max-gap", "2h"]);
    if let Some(offset) = offset {
        cmd.env("LD_PRELOAD", libfaketime())
            .env("FAKETIME", offset)
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    }
    cmd.output().expect("run hostwatch once")
}

#[test]
fn max_per_hour_holds_back_across_cron_runs_and_the_next_hour_tells_how_many() {
    let dir = tempdir("rate-hour");
    let receiver = Receiver::start();
    let hook = json!({"type": "webhook", "url": receiver.url("/hook"), "max_per_hour": 3});
    let cfg = config(&dir, hook, ten_rules(">= 0"), json!({}));
    let first = once(&cfg, None);
    assert_eq!(first.status.code(), Some(1), "{}", common::stderr(&first));
    let sent = bodies(&receiver);
    assert_eq!(sent.len(), 3, "{sent:#?}");
    assert_eq!(of_type(&dir, "rate_limited").len(), 7);
    assert_eq!(notification_keys(&dir).len(), 10);
    // Within the hour, a second run sends nothing new and keeps counting.
    let second = once(&cfg, Some("+30m"));
    assert_eq!(second.status.code(), Some(1), "{}", common::stderr(&second));
    assert_eq!(bodies(&receiver).len(), 3, "the period is still open");
    // The hour is over: one summary of the seven, in the run after it.
    let third = once(&cfg, Some("+61m"));
    assert_eq!(third.status.code(), Some(1), "{}", common::stderr(&third));
    let all = bodies(&receiver);
    assert_eq!(all.len(), 4, "{all:#?}");
    assert_eq!(all[3]["event"], "held_back");
    let text = all[3]["description"].as_str().unwrap();
    assert!(text.starts_with("7 more notifications to channel ops"), "{text}");
    assert!(text.contains("(limit 3 per 1h): 7 firing"), "{text}");
    assert_eq!(of_type(&dir, "rate_limited").len(), 7, "nothing else held");
}

#[test]
fn every_channel_type_carries_a_group_as_one_message_with_each_key_and_hostile_text_inert() {
    let dir = tempdir("group-all");
    let receiver = Receiver::start();
    // A legacy connector accepts with a body of "1"; the others take any 2xx.
    receiver.set_default(json!({"status": 200, "body": "1"}));
    let smtp = common::smtp::Smtp::start(&dir, &[]);
    let hook_dir = dir.join("hook");
    std::fs::create_dir_all(&hook_dir).unwrap();
    let hook = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/hook_record.sh");
    let host = "web-01 </td><script>alert(1)</script> [x](https://evil) &amp;";
    let rules: Value = (0..5)
        .map(
            |i| json!({"name": format!("burst_{i}"), "metric": "mem.used_percent", "warn": ">= 0"}),
        )
        .collect();
    let cfg = json!({
        "host": host, "interval": "1s",
        "state_dir": dir.join("state").display().to_string(),
        "rules": rules,
        "channels": {
            "cards": {"type": "teams", "webhook_url": receiver.url("/cards"), "group_wait": "1s"},
            "legacy": {"type": "teams", "webhook_url": receiver.url("/legacy"),
                       "format": "messagecard", "group_wait": "1s"},
            "mail": {"type": "email", "server": format!("127.0.0.1:{}", smtp.port), "tls": "none",
                     "from": "hostwatch@example.com", "to": ["ops@example.com"], "group_wait": "1s"},
            "hook": {"type": "webhook", "url": receiver.url("/hook"), "group": true,
                     "group_wait": "1s"},
            "am-hook": {"type": "webhook", "url": receiver.url("/am-hook"),
                        "format": "alertmanager-webhook", "group": true, "group_wait": "1s"},
            "exec": {"type": "exec", "command": [hook, hook_dir.display().to_string()],
                     "group": true, "group_wait": "1s"}
        },
        "routes": [{"channels": ["cards", "legacy", "mail", "hook", "am-hook", "exec"]}]
    });
    let cfg = write(&dir, "config.json", &cfg.to_string());
    let mut daemon = Daemon::start(&cfg, false);
    let ok = wait_until(Duration::from_secs(30), || {
        receiver.requests().len() >= 4
            && !smtp.received().is_empty()
            && hook_dir.join("stdin").exists()
    });
    std::thread::sleep(Duration::from_secs(3));
    daemon.signal("-TERM");
    let _ = daemon.child.wait();
    assert!(ok, "every channel delivered: {:#?}", receiver.requests());
    let keys = notification_keys(&dir);
    assert_eq!(keys.len(), 5);
    let by_path = |p: &str| -> Vec<Value> {
        receiver
            .requests()
            .into_iter()
            .filter(|q| q["path"] == p)
            .map(|q| q["json"].clone())
            .collect()
    };
    let contains_all = |what: &str, text: &str| {
        for key in &keys {
            assert!(text.contains(key.as_str()), "{what}: {key} missing in {text}");
        }
    };
    // Teams text is Markdown-escaped (`_` → `\_`), seen here JSON-encoded.
    let contains_all_md = |what: &str, text: &str| {
        for key in &keys {
            let escaped = key.replace('_', "\\\\_");
            assert!(text.contains(&escaped), "{what}: {escaped} missing in {text}");
        }
    };
    // Teams, Workflows: one schema-valid card listing the five.
    let cards = by_path("/cards");
    assert_eq!(cards.len(), 1, "{cards:#?}");
    common::assert_valid_card(&cards[0], "group-all");
    contains_all_md("teams", &cards[0].to_string());
    assert!(!cards[0].to_string().contains("[x](https://evil)"), "markdown escaped");
    // Teams, legacy MessageCard: one card, a section per notification.
    let legacy = by_path("/legacy");
    assert_eq!(legacy.len(), 1);
    assert_eq!(legacy[0]["sections"].as_array().unwrap().len(), 5);
    contains_all_md("messagecard", &legacy[0].to_string());
    // Webhook: one request, every event as the documented object.
    let hooks = by_path("/hook");
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0]["group"], true);
    assert_eq!(hooks[0]["count"], 5);
    let got: BTreeSet<String> = hooks[0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, keys);
    let hook_request = receiver.requests().into_iter().find(|q| q["path"] == "/hook").unwrap();
    assert!(hook_request.to_string().contains("group:5:"), "a group Idempotency-Key");
    // Alertmanager's webhook format: one group of five alerts.
    let am = by_path("/am-hook");
    assert_eq!(am.len(), 1);
    assert_eq!(am[0]["alerts"].as_array().unwrap().len(), 5);
    // E-mail: one well-formed message, one line of subject, the table escaped.
    let mails = smtp.received();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    let m = common::smtp::parse_mail(mails[0]["content"].as_str().unwrap());
    assert_eq!(m["defects"], json!([]), "{m}");
    let subject = m["subject"].as_str().unwrap();
    assert!(subject.starts_with("[WARNING] 5 notifications on web-01"), "{subject}");
    let html = m["parts"][1]["text"].as_str().unwrap();
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "{html}");
    contains_all("mail text", m["parts"][0]["text"].as_str().unwrap());
    // Exec: one call, the group on stdin, its size in the environment.
    let stdin: Value =
        serde_json::from_str(&std::fs::read_to_string(hook_dir.join("stdin")).unwrap()).unwrap();
    assert_eq!(stdin["events"].as_array().unwrap().len(), 5);
    let env = std::fs::read_to_string(hook_dir.join("env")).unwrap();
    assert!(env.split('\0').any(|v| v == "HOSTWATCH_GROUP_SIZE=5"), "{env}");
    assert!(env.split('\0').any(|v| v == "HOSTWATCH_EVENT=group"), "{env}");
    assert!(outbox_keys(&dir).is_empty(), "every item acknowledged");
}

#[test]
fn test_notify_group_sends_and_previews_a_grouped_message() {
    let dir = tempdir("group-test-notify");
    let receiver = Receiver::start();
    let cfg = json!({
        "host": "web-01", "state_dir": dir.join("state").display().to_string(),
        "channels": {
            "ops": {"type": "slack", "webhook_url": receiver.url("/slack"), "group_wait": "30s"},
            "mail": {"type": "email", "server": "127.0.0.1:1", "tls": "none",
                     "from": "hw@example.com", "to": ["ops@example.com"]},
            "am": {"type": "alertmanager", "url": "http://127.0.0.1:1"}
        }
    });
    let cfg = write(&dir, "config.json", &cfg.to_string());
    let cfg = cfg.to_str().unwrap();
    let out = common::run(&["test-notify", "ops", "--group", "3", "--config", cfg]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let got = bodies(&receiver);
    assert_eq!(got.len(), 1, "{got:#?}");
    let blocks = got[0]["blocks"].as_array().unwrap();
    assert_eq!(blocks.iter().filter(|b| b["type"] == "section").count(), 3);
    let header = blocks[0]["text"]["text"].as_str().unwrap();
    assert!(header.contains("TEST: 3 notifications on web-01"), "{header}");
    // A preview of the e-mail: one message, a row per notification, nothing sent.
    let out = common::run(&["test-notify", "mail", "--group", "3", "--dry-run", "--config", cfg]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let text = common::stdout(&out);
    assert_eq!(text.matches("<tr style=").count(), 3, "{text}");
    // What can never be grouped says so.
    for (channel, n) in [("am", "2"), ("ops", "1"), ("ops", "46")] {
        let out = common::run(&["test-notify", channel, "--group", n, "--config", cfg]);
        assert_eq!(out.status.code(), Some(2), "{channel} {n}: {}", common::stderr(&out));
    }
}
