//! Silences that behave, end to end: `hostwatch silence` works where the variables holding
//! channel secrets are unset (while `check` still refuses them), `add --rule` refuses a glob
//! that matches no rule unless `--force`, and a notification a silence holds back reaches no
//! receiver but leaves a `silenced` record in `events.jsonl` naming the silence (`once`,
//! `replay --state-dir`, and `run`, which records a held-back episode once and announces it
//! when the silence is removed).

mod common;

use common::daemon::Daemon;
use common::receiver::Receiver;
use common::{bin, json_lines, stderr, stdout, tempdir, write};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The variables the config's secrets come from; never set for these tests.
const SECRET_VARS: [&str; 3] =
    ["HW_SILENCE_TEST_SLACK_WEBHOOK_URL", "HW_SILENCE_TEST_SMTP_PASSWORD", "HW_SILENCE_TEST_TOKEN"];

/// Runs hostwatch with every secret variable removed from its environment.
fn run(args: &[&str]) -> Output {
    let mut c = Command::new(bin());
    c.args(args).env_remove("HOSTWATCH_INTERVAL").env_remove("HOSTWATCH_STATE_DIR");
    for var in SECRET_VARS {
        c.env_remove(var);
    }
    c.output().expect("run hostwatch")
}

/// A config whose Slack webhook, SMTP password and API token come from unset variables.
fn secret_config(dir: &Path) -> String {
    let cfg = json!({
        "host": "silence-host",
        "state_dir": dir.join("state").display().to_string(),
        "channels": {
            "chat": {"type": "slack", "webhook_url": "${HW_SILENCE_TEST_SLACK_WEBHOOK_URL}"},
            "mail": {"type": "email", "server": "smtp.example.com:465", "tls": "tls",
                     "from": "hw@example.com", "to": ["ops@example.com"],
                     "username": "hw", "password": "${HW_SILENCE_TEST_SMTP_PASSWORD}"}
        },
        "rules": [
            {"name": "disk_root", "metric": "disk.used_percent", "match": {"mount": "/"}, "warn": "> 90"},
            {"name": "disk_data", "metric": "disk.used_percent", "match": {"mount": "/data"}, "warn": "> 90"},
            {"name": "load_high", "metric": "load.1", "warn": "> 50", "channels": ["chat"]}
        ],
        "routes": [{"channels": ["mail"]}],
        "api": {"listen": "127.0.0.1:9", "token": "${HW_SILENCE_TEST_TOKEN}"}
    });
    write(dir, "config.json", &cfg.to_string()).display().to_string()
}

fn silences_file(dir: &Path) -> Vec<Value> {
    match std::fs::read_to_string(dir.join("state/silences.json")) {
        Ok(text) => serde_json::from_str::<Value>(&text).unwrap()["silences"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn silence_commands_work_while_channel_secrets_are_unset_and_check_still_refuses() {
    let dir = tempdir("silences-secrets");
    let cfg = secret_config(&dir);
    let o = run(&[
        "silence",
        "--config",
        &cfg,
        "add",
        "--rule",
        "disk_*",
        "--for",
        "1h",
        "--comment",
        "disk swap",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    assert!(id.starts_with('s'), "{id}");
    assert!(!stderr(&o).contains("not set"), "{}", stderr(&o));

    let o = run(&["silence", "--config", &cfg, "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(&id) && stdout(&o).contains("disk swap"), "{}", stdout(&o));
    let o = run(&["--config", &cfg, "silence", "list", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let listed: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["rule"], "disk_*");

    let o = run(&["silence", "--config", &cfg, "remove", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), format!("removed {id}"));
    assert!(silences_file(&dir).is_empty());

    // The commands that deliver still refuse the same config at start-up.
    let o = run(&["check", "--config", &cfg]);
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    for var in SECRET_VARS {
        assert!(
            stderr(&o).contains(&format!("environment variable {var} is not set")),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn a_rule_glob_that_matches_no_rule_is_refused_with_the_closest_names_unless_forced() {
    let dir = tempdir("silences-rule");
    let cfg = secret_config(&dir);
    let o = run(&["silence", "--config", &cfg, "add", "--rule", "nope_*", "--for", "1h"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("--rule \"nope_*\" matches no configured rule (did you mean "), "{e}");
    assert!(e.contains("\"disk_root\"") && e.contains("--force"), "{e}");
    assert!(silences_file(&dir).is_empty(), "a refused silence was kept");

    let o = run(&["silence", "--config", &cfg, "add", "--rule", "disk_rot", "--for", "1h"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("(did you mean \"disk_root\", "), "{}", stderr(&o));

    let o =
        run(&["silence", "--config", &cfg, "add", "--rule", "nope_*", "--for", "1h", "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: --rule \"nope_*\" matches no configured rule"),
        "{}",
        stderr(&o)
    );
    let kept = silences_file(&dir);
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (kept[0]["id"].as_str(), kept[0]["rule"].as_str()),
        (Some(stdout(&o).trim()), Some("nope_*"))
    );
}

#[test]
fn a_silenced_firing_alert_reaches_no_receiver_and_leaves_a_silenced_record() {
    let dir = tempdir("silences-record");
    let receiver = Receiver::start();
    let cfg = json!({
        "host": "cron-host", "interval": "1s", "state_dir": dir.join("state").display().to_string(),
        "rules": [{"name": "load_any", "metric": "load.1", "warn": ">= 0"},
                  {"name": "mem_any", "metric": "mem.used_percent", "crit": ">= 0"}],
        "channels": {"hook": {"type": "webhook", "url": receiver.url("/hook"), "timeout": "5s"}},
        "routes": [{"channels": ["hook"]}]
    });
    let cfg = write(&dir, "config.json", &cfg.to_string()).display().to_string();
    let o = run(&[
        "silence",
        "--config",
        &cfg,
        "add",
        "--rule",
        "load_*",
        "--for",
        "1h",
        "--comment",
        "load test, ops",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();

    let o = run(&["once", "--config", &cfg, "--first-interval", "200ms"]);
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    // `once` waits for its deliveries: what the receiver has now is all it gets.
    let got = receiver.requests();
    let rules: Vec<&str> = got.iter().filter_map(|r| r["json"]["rule"].as_str()).collect();
    assert_eq!(rules, ["mem_any"], "{got:?}");

    let records = json_lines(&std::fs::read_to_string(dir.join("state/events.jsonl")).unwrap());
    let silenced: Vec<&Value> = records.iter().filter(|r| r["type"] == "silenced").collect();
    assert_eq!(silenced.len(), 1, "{records:?}");
    let r = silenced[0];
    assert_eq!(r["silence_id"], id.as_str());
    assert_eq!(r["silence_comment"], "load test, ops");
    assert!(r["silence_until"].as_f64().unwrap() > r["ts"].as_f64().unwrap());
    assert_eq!((r["rule"].as_str(), r["series"].as_str()), (Some("load_any"), Some("load.1")));
    assert_eq!((r["event"].as_str(), r["severity"].as_str()), (Some("firing"), Some("warning")));
    assert_eq!(r["host"], "cron-host");
    assert!(r["labels"].is_object() && r["episode_key"].is_string(), "{r}");
    let notified: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "notification")
        .filter_map(|r| r["rule"].as_str())
        .collect();
    assert_eq!(notified, ["mem_any"], "{records:?}");
    // The next cron runs: the episode is still held back, and not recorded again.
    for _ in 0..2 {
        let o = run(&["once", "--config", &cfg, "--first-interval", "200ms"]);
        assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    }
    let records = json_lines(&std::fs::read_to_string(dir.join("state/events.jsonl")).unwrap());
    let silenced = records.iter().filter(|r| r["type"] == "silenced").count();
    assert_eq!(silenced, 1, "recorded once across runs: {records:?}");
}

#[test]
fn a_replay_with_a_state_dir_records_what_the_configs_silences_held_back() {
    let dir = tempdir("silences-replay");
    let cfg = json!({
        "host": "test", "interval": "5s", "state_dir": dir.join("unused").display().to_string(),
        "rules": [{"name": "disk_data", "metric": "disk.used_percent", "warn": "> 90"}],
        "silences": [{"id": "resize", "rule": "disk_*", "match": {"mount": "/data*"},
                      "until": "1970-01-01T00:17:00Z", "comment": "resizing"}]
    });
    let cfg = write(&dir, "config.json", &cfg.to_string()).display().to_string();
    let mut samples = String::new();
    for i in 0..6 {
        let ts = 1000.0 + 5.0 * f64::from(i);
        let metrics =
            json!({"disk.used_percent{mount=/data}": 95.0, "disk.used_percent{mount=/}": 95.0});
        samples += &format!("{}\n", json!({"ts": ts, "host": "test", "metrics": metrics}));
    }
    let data = write(&dir, "samples.jsonl", &samples).display().to_string();
    let state = dir.join("state").display().to_string();
    let o = run(&["replay", &data, "--config", &cfg, "--state-dir", &state]);
    assert!(o.status.success(), "{}", stderr(&o));
    let printed: Vec<(String, f64)> = json_lines(&stdout(&o))
        .iter()
        .map(|n| (n["series"].as_str().unwrap().to_string(), n["ts"].as_f64().unwrap()))
        .collect();
    // `/` fires at once; `/data` is announced when the silence ends at t=1020.
    assert_eq!(
        printed,
        [
            ("disk.used_percent{mount=/}".to_string(), 1000.0),
            ("disk.used_percent{mount=/data}".to_string(), 1020.0)
        ]
    );
    let records = json_lines(&std::fs::read_to_string(dir.join("state/events.jsonl")).unwrap());
    let silenced: Vec<(f64, &str, &str)> = records
        .iter()
        .filter(|r| r["type"] == "silenced")
        .map(|r| {
            (
                r["ts"].as_f64().unwrap(),
                r["series"].as_str().unwrap(),
                r["silence_id"].as_str().unwrap(),
            )
        })
        .collect();
    // Held back at 1000, 1005, 1010 and 1015, recorded once.
    assert_eq!(silenced, [(1000.0, "disk.used_percent{mount=/data}", "resize")], "{records:?}");
    let labels = &records.iter().find(|r| r["type"] == "silenced").unwrap()["labels"];
    assert_eq!(labels, &json!({"mount": "/data"}));
}

/// The `events.jsonl` records of `type`, waiting (bounded) until there are at least `n`.
fn wait_records(dir: &Path, kind: &str, n: usize, limit: Duration) -> Vec<Value> {
    let end = Instant::now() + limit;
    loop {
        let text = std::fs::read_to_string(dir.join("state/events.jsonl")).unwrap_or_default();
        let got: Vec<Value> = json_lines(&text).into_iter().filter(|r| r["type"] == kind).collect();
        if got.len() >= n || Instant::now() > end {
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn rules_received(receiver: &Receiver) -> Vec<String> {
    let got = receiver.requests();
    got.iter().filter_map(|r| r["json"]["rule"].as_str().map(str::to_string)).collect()
}

#[test]
fn the_daemon_records_a_held_back_episode_once_and_announces_it_when_the_silence_goes() {
    let dir = tempdir("silences-daemon");
    let receiver = Receiver::start();
    let cfg = json!({
        "host": "run-host", "interval": "1s", "state_dir": dir.join("state").display().to_string(),
        "rules": [{"name": "load_any", "metric": "load.1", "warn": ">= 0"},
                  {"name": "mem_any", "metric": "mem.used_percent", "crit": ">= 0"}],
        "escalation": {"remind_every": "1s"},
        "channels": {"hook": {"type": "webhook", "url": receiver.url("/hook")}},
        "routes": [{"channels": ["hook"]}]
    });
    let cfg = write(&dir, "config.json", &cfg.to_string());
    let cfg_text = cfg.display().to_string();
    let o = run(&["silence", "--config", &cfg_text, "add", "--rule", "load_*", "--for", "1h"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    let _d = Daemon::start(&cfg, false);

    let held = wait_records(&dir, "silenced", 1, Duration::from_secs(20));
    assert_eq!(held.len(), 1, "no silenced record");
    assert_eq!(
        (held[0]["rule"].as_str(), held[0]["silence_id"].as_str()),
        (Some("load_any"), Some(id.as_str()))
    );
    assert!(held[0].get("silence_comment").is_none(), "{}", held[0]);
    // mem_any keeps reminding every second; load_any stays held back, recorded once.
    let mem = receiver.wait_for(4, Duration::from_secs(20));
    assert!(mem.len() >= 4, "{mem:?}");
    assert!(
        rules_received(&receiver).iter().all(|r| r == "mem_any"),
        "{:?}",
        rules_received(&receiver)
    );
    assert_eq!(wait_records(&dir, "silenced", 2, Duration::ZERO).len(), 1, "recorded again");

    let o = run(&["silence", "--config", &cfg_text, "remove", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    let end = Instant::now() + Duration::from_secs(20);
    while !rules_received(&receiver).iter().any(|r| r == "load_any") {
        assert!(Instant::now() < end, "load_any was not announced after the silence went");
        std::thread::sleep(Duration::from_millis(100));
    }
    let firing: Vec<Value> =
        receiver.requests().into_iter().filter(|r| r["json"]["rule"] == "load_any").collect();
    assert_eq!(firing[0]["json"]["event"], "firing");
    assert_eq!(firing[0]["json"]["episode_key"], held[0]["episode_key"]);
}
