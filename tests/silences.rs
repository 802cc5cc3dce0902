//! Silences that behave, end to end: `hostwatch silence` works where the variables holding
//! channel secrets are unset (while `check` still refuses them), `add --rule` refuses a glob
//! that matches no rule unless `--force`, and a notification a silence holds back reaches no
//! receiver but leaves a `silenced` record in `events.jsonl` naming the silence (`once`,
//! `replay --state-dir`, and `run`, which records a held-back episode once and announces it
//! when the silence is removed). Recurring windows: `silence add --every` and its refusals,
//! `silence list` under a faked clock, `replay` across both Lisbon DST switches of 2027 (held
//! back exactly inside the local window) and `once` under libfaketime around the spring one.

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

/// Replays cpu and memory at 90 and 10 in turn every 10 minutes over `[from, to)` (RFC 3339
/// UTC) with `silences` in the config: the `(ts, event)` of each rule's notifications, and
/// the `(ts, silence_id, silence_until)` of each `silenced` record.
#[allow(clippy::type_complexity)]
fn replay_square_wave(
    name: &str,
    silences: Value,
    from: &str,
    to: &str,
) -> (Vec<(String, String)>, Vec<(String, String)>, Vec<(String, String, String)>) {
    let dir = tempdir(name);
    let cfg = json!({
        "host": "test", "interval": "10m", "state_dir": dir.join("unused").display().to_string(),
        // The wave would flap (flap detection is on by default): these tests are about the
        // silence's window, so every firing and resolved is kept.
        "flap": false,
        "rules": [{"name": "cpu_hi", "metric": "cpu.usage", "warn": "> 80"},
                  {"name": "mem_hi", "metric": "mem.used_percent", "warn": "> 80"}],
        "silences": silences
    });
    let cfg = write(&dir, "config.json", &cfg.to_string()).display().to_string();
    let unix = |t: &str| {
        let o = Command::new("date").args(["-u", "-d", t, "+%s"]).output().unwrap();
        String::from_utf8(o.stdout).unwrap().trim().parse::<i64>().unwrap()
    };
    let (start, end) = (unix(from), unix(to));
    let mut samples = String::new();
    for (i, ts) in (start..end).step_by(600).enumerate() {
        let v = if i % 2 == 0 { 90.0 } else { 10.0 };
        let metrics = json!({"cpu.usage": v, "mem.used_percent": v});
        samples += &format!("{}\n", json!({"ts": ts, "host": "test", "metrics": metrics}));
    }
    let data = write(&dir, "samples.jsonl", &samples).display().to_string();
    let state = dir.join("state").display().to_string();
    let o = run(&["replay", &data, "--config", &cfg, "--state-dir", &state]);
    assert!(o.status.success(), "{}", stderr(&o));
    let utc = |ts: f64| {
        let o =
            Command::new("date").args(["-u", "-d", &format!("@{ts}"), "+%H:%M"]).output().unwrap();
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    };
    let printed = json_lines(&stdout(&o));
    let of = |rule: &str| -> Vec<(String, String)> {
        printed
            .iter()
            .filter(|n| n["rule"] == rule)
            .map(|n| (utc(n["ts"].as_f64().unwrap()), n["event"].as_str().unwrap().to_string()))
            .collect()
    };
    let records = json_lines(&std::fs::read_to_string(dir.join("state/events.jsonl")).unwrap());
    let silenced = records
        .iter()
        .filter(|r| r["type"] == "silenced")
        .map(|r| {
            assert_eq!(r["rule"], "cpu_hi", "{r}");
            (
                utc(r["ts"].as_f64().unwrap()),
                r["silence_id"].as_str().unwrap().to_string(),
                utc(r["silence_until"].as_f64().unwrap()),
            )
        })
        .collect();
    (of("cpu_hi"), of("mem_hi"), silenced)
}

/// `(HH:MM, event)` pairs.
fn at(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(t, e)| (t.to_string(), e.to_string())).collect()
}

#[test]
fn a_schedule_across_the_spring_switch_holds_back_exactly_inside_its_local_window() {
    // Lisbon, 2027-03-28: 01:00 WET becomes 02:00 WEST at 01:00 UTC. The window 00:30 WET
    // to 03:00 WEST is 00:30 to 02:00 UTC.
    let silences = json!([{"id": "backup", "rule": "cpu_*", "comment": "weekly backup",
        "schedule": {"days": ["sun"], "from": "00:30", "to": "03:00", "tz": "Europe/Lisbon"}}]);
    let (cpu, mem, silenced) = replay_square_wave(
        "silences-spring",
        silences,
        "2027-03-27T23:40:00Z",
        "2027-03-28T02:30:00Z",
    );
    let pairs = |times: &[&str]| -> Vec<(String, String)> {
        times
            .iter()
            .enumerate()
            .map(|(i, t)| (t.to_string(), if i % 2 == 0 { "firing" } else { "resolved" }.into()))
            .collect()
    };
    // The unsilenced rule fires every 20 minutes and resolves 10 minutes later.
    assert_eq!(
        mem,
        pairs(&[
            "23:40", "23:50", "00:00", "00:10", "00:20", "00:30", "00:40", "00:50", "01:00",
            "01:10", "01:20", "01:30", "01:40", "01:50", "02:00", "02:10", "02:20"
        ])
    );
    // cpu_hi: no firing in [00:30, 02:00) UTC; the 00:20 episode, announced, still resolves
    // (as under any silence), an episode never announced never does.
    assert_eq!(
        cpu,
        at(&[
            ("23:40", "firing"),
            ("23:50", "resolved"),
            ("00:00", "firing"),
            ("00:10", "resolved"),
            ("00:20", "firing"),
            ("00:30", "resolved"),
            ("02:00", "firing"),
            ("02:10", "resolved"),
            ("02:20", "firing")
        ])
    );
    // Each episode held back is recorded once, naming the silence and the window's end.
    let backup = |t: &str| (t.to_string(), "backup".to_string(), "02:00".to_string());
    assert_eq!(silenced, [backup("00:40"), backup("01:00"), backup("01:20"), backup("01:40")]);
}

#[test]
fn a_schedule_across_the_autumn_switch_covers_the_repeated_hour_without_a_hole() {
    // Lisbon, 2027-10-31: 02:00 WEST becomes 01:00 WET at 01:00 UTC. The window 00:30 to
    // 01:30 ends at the second 01:30 (WET): 23:30 to 01:30 UTC, two hours; a wall-clock test
    // would have let 00:40 UTC (01:40 WEST) through.
    let silences = json!([{"id": "nightly", "rule": "cpu_*",
        "schedule": {"days": ["sun"], "from": "00:30", "to": "01:30", "tz": "Europe/Lisbon"}}]);
    let (cpu, _, silenced) = replay_square_wave(
        "silences-autumn",
        silences,
        "2027-10-30T23:00:00Z",
        "2027-10-31T02:00:00Z",
    );
    assert_eq!(
        cpu,
        at(&[
            ("23:00", "firing"),
            ("23:10", "resolved"),
            ("23:20", "firing"),
            ("23:30", "resolved"),
            ("01:40", "firing"),
            ("01:50", "resolved")
        ])
    );
    let nightly = |t: &str| (t.to_string(), "nightly".to_string(), "01:30".to_string());
    assert_eq!(
        silenced,
        [
            nightly("23:40"),
            nightly("00:00"),
            nightly("00:20"),
            nightly("00:40"),
            nightly("01:00"),
            nightly("01:20")
        ]
    );
}

#[test]
fn silence_add_every_keeps_a_recurring_window_and_list_shows_the_next_one() {
    let dir = tempdir("silences-every");
    let cfg = secret_config(&dir);
    let add = |extra: &[&str]| {
        let mut args = vec!["silence", "--config", &cfg, "add", "--rule", "disk_*"];
        args.extend_from_slice(extra);
        run(&args)
    };
    let o = add(&["--every", "Sun 02:00-04:00", "--tz", "Europe/Lisbon", "--comment", "backup"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    // Without --tz: the display zone (UTC here), written into the file; --for ends it.
    let o = add(&["--every", "mon-fri 22:00-06:00", "--for", "365d"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let kept = silences_file(&dir);
    assert_eq!(
        kept[0]["schedule"],
        json!({"days": ["sun"], "from": "02:00", "to": "04:00", "tz": "Europe/Lisbon"})
    );
    assert!(kept[0].get("until").is_none(), "{}", kept[0]);
    assert_eq!(kept[1]["schedule"]["tz"], "UTC");
    assert_eq!(kept[1]["schedule"]["days"], json!(["mon", "tue", "wed", "thu", "fri"]));
    assert!(kept[1]["until"].as_f64().is_some());

    // The list shows the schedule and its next window in the zone and in UTC, under a clock
    // set to Wednesday 2027-03-24 (faketime): the next Sunday is the spring switch.
    let o = Command::new("faketime")
        .args(["2027-03-24 12:00:00", bin(), "silence", "--config", &cfg, "list"])
        .output()
        .expect("faketime is installed");
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("every sun 02:00-04:00 Europe/Lisbon, next 2027-03-28 02:00:00 WEST to 2027-03-28 04:00:00 WEST (2027-03-28T01:00:00Z to 2027-03-28T03:00:00Z)"),
        "{text}"
    );
    assert!(text.contains(&id) && text.contains("no end"), "{text}");
    let o = Command::new("faketime")
        .args(["2027-03-24 12:00:00", bin(), "silence", "--config", &cfg])
        .args(["list", "--json"])
        .output()
        .unwrap();
    let listed: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let s = &listed[0]["schedule"];
    assert_eq!((s["days"].clone(), s["tz"].clone()), (json!(["sun"]), json!("Europe/Lisbon")));
    assert_eq!(
        (s["next_start"].as_str(), s["next_end"].as_str()),
        (Some("2027-03-28T01:00:00Z"), Some("2027-03-28T03:00:00Z"))
    );
    assert_eq!(listed[1]["schedule"]["text"], "mon-fri 22:00-06:00 UTC");
}

#[test]
fn silence_add_every_refuses_what_it_cannot_keep() {
    let dir = tempdir("silences-every-bad");
    let cfg = secret_config(&dir);
    for (args, why) in [
        (&["--every", "sun 02:00-02:00"][..], "--every: from and to are both 02:00"),
        (&["--every", "sundy 02:00-04:00"], "--every: unknown day \"sundy\""),
        (&["--every", "sun 2am-4am"], "--every: invalid time \"2am\""),
        (
            &["--every", "sun 02:00-04:00", "--tz", "Europe/Lisbn"],
            "--tz: unknown time zone \"Europe/Lisbn\" (did you mean \"Europe/Lisbon\"?)",
        ),
        (&["--tz", "Europe/Lisbon", "--for", "1h"], "--tz needs --every"),
        (&[], "give --for (like 2h) or --every"),
    ] {
        let mut all = vec!["silence", "--config", &cfg, "add", "--rule", "disk_*"];
        all.extend_from_slice(args);
        let o = run(&all);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(why), "{args:?}: {}", stderr(&o));
    }
    assert!(silences_file(&dir).is_empty(), "a refused silence was kept");
}

/// Runs `once` with the wall clock starting at `when` (UTC, libfaketime; the monotonic clock
/// left alone) and a config silence `sun 02:00-04:00` in Lisbon on an always-firing rule:
/// the rule names notified and the `silenced` records of the events log.
fn once_at(when: &str) -> (Vec<String>, Vec<Value>) {
    let dir = tempdir("silences-once-at");
    let cfg = json!({
        "host": "cron-host", "interval": "1s", "state_dir": dir.join("state").display().to_string(),
        "rules": [{"name": "load_any", "metric": "load.1", "warn": ">= 0"}],
        "silences": [{"id": "backup", "comment": "weekly backup",
            "schedule": {"days": ["sun"], "from": "02:00", "to": "04:00", "tz": "Europe/Lisbon"}}]
    });
    let cfg = write(&dir, "config.json", &cfg.to_string()).display().to_string();
    let o = Command::new("faketime")
        .args(["-f", &format!("@{when}"), bin(), "once", "--config", &cfg])
        .args(["--first-interval", "200ms"])
        .env("TZ", "UTC")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .output()
        .expect("faketime is installed");
    assert!(matches!(o.status.code(), Some(1 | 2)), "{}{}", stdout(&o), stderr(&o));
    let records = json_lines(&std::fs::read_to_string(dir.join("state/events.jsonl")).unwrap());
    let notified = records
        .iter()
        .filter(|r| r["type"] == "notification")
        .map(|r| r["rule"].as_str().unwrap().to_string())
        .collect();
    (notified, records.into_iter().filter(|r| r["type"] == "silenced").collect())
}

#[test]
fn once_consults_a_schedule_on_the_sample_time_across_the_spring_switch() {
    // 2027-03-28 01:30 UTC is 02:30 WEST, inside; the window ends at 04:00 WEST, 03:00 UTC.
    let (notified, silenced) = once_at("2027-03-28 01:30:00");
    assert!(notified.is_empty(), "{notified:?}");
    assert_eq!(silenced.len(), 1, "{silenced:?}");
    let r = &silenced[0];
    assert_eq!((r["silence_id"].as_str(), r["rule"].as_str()), (Some("backup"), Some("load_any")));
    assert_eq!(r["silence_until"].as_f64(), Some(1_806_202_800.0), "2027-03-28T03:00:00Z");
    assert_eq!(r["silence_schedule"], "sun 02:00-04:00 Europe/Lisbon");
    assert_eq!(r["silence_comment"], "weekly backup");
    // 00:50 UTC is 00:50 WET and 03:10 UTC is 04:10 WEST: outside, though 02:00-04:00 UTC
    // would have held both.
    for outside in ["2027-03-28 00:50:00", "2027-03-28 03:10:00"] {
        let (notified, silenced) = once_at(outside);
        assert_eq!(notified, ["load_any"], "{outside}");
        assert!(silenced.is_empty(), "{outside}: {silenced:?}");
    }
}

/// uid and gid of `nobody`/`nogroup` as `id` reports them.
fn nobody_ids() -> Option<(u32, u32)> {
    let id = |flag: &str| {
        let o = Command::new("id").args([flag, "nobody"]).output().ok()?;
        String::from_utf8_lossy(&o.stdout).trim().parse::<u32>().ok()
    };
    Some((id("-u")?, id("-g")?))
}

/// Runs hostwatch as `nobody` (setpriv, util-linux) with `args`.
fn run_as_nobody(args: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", bin()])
        .args(args)
        .env_remove("HOSTWATCH_STATE_DIR")
        .env_remove("HOSTWATCH_INTERVAL")
        .output()
        .expect("run setpriv")
}

#[test]
fn a_silence_root_adds_stays_usable_by_the_daemons_user() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("silences: root_and_daemon_user test skipped: needs root (chown, setpriv)");
        return;
    }
    let Some((uid, gid)) = nobody_ids() else {
        eprintln!("silences: root_and_daemon_user test skipped: no user nobody");
        return;
    };
    let dir = tempdir("silences-owner");
    let state = dir.join("state");
    std::fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o750)).unwrap();
    let cfg = write(
        &dir,
        "config.json",
        &json!({"state_dir": state.display().to_string(), "rules": [
            {"name": "disk_root", "metric": "disk.used_percent", "match": {"mount": "/"}, "warn": "> 90"}
        ]})
        .to_string(),
    );
    let cfg = cfg.to_str().unwrap();
    // Root with a strict umask, as an operator's shell may have.
    let o = Command::new("sh")
        .args(["-c", "umask 077; exec \"$0\" \"$@\"", bin(), "silence", "--config", cfg])
        .args(["add", "--rule", "disk_*", "--for", "1h", "--comment", "by root"])
        .env_remove("HOSTWATCH_STATE_DIR")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    for name in ["silences.lock", "silences.json"] {
        let m = std::fs::metadata(state.join(name)).unwrap();
        assert_eq!((m.uid(), m.gid()), (uid, gid), "{name} belongs to the state dir's owner");
    }
    let mode = std::fs::metadata(state.join("silences.json")).unwrap().mode() & 0o777;
    assert_eq!(mode, 0o640, "whatever root's umask");

    // The daemon's user can take the lock, read and change the silences.
    let o = run_as_nobody(&["silence", "--config", cfg, "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(&id) && stdout(&o).contains("by root"), "{}", stdout(&o));
    let o = run_as_nobody(&["silence", "--config", cfg, "add", "--rule", "disk_*", "--for", "1h"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run_as_nobody(&["silence", "--config", cfg, "remove", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), format!("removed {id}"));
    assert_eq!(silences_file(&dir).len(), 1, "the one nobody added is left");

    // A lock file the daemon's user cannot open (left by an older version) is reported as the
    // permission problem it is.
    let lock = state.join("silences.lock");
    std::os::unix::fs::chown(&lock, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = run_as_nobody(&["silence", "--config", cfg, "remove", "s1"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains(&format!("{}: permission denied for uid {uid} (nobody)", lock.display())),
        "{e}"
    );
    assert!(!e.contains("held by another"), "{e}");
    // Root's next change gives it back.
    let o = run(&["silence", "--config", cfg, "remove", "s1"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let m = std::fs::metadata(&lock).unwrap();
    assert_eq!((m.uid(), m.gid()), (uid, gid));
    let _ = std::fs::remove_dir_all(&dir);
}
