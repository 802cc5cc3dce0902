//! Periodic reports end to end: a generated day replayed into a state directory gives
//! `hostwatch report` the figures that were put in; a daemon with an overdue report sends it
//! once at start (not once per missed period), through the outbox (a receiver that fails
//! first gets it later); and a report reaches Slack, Teams, e-mail, a webhook and an exec
//! hook in each one's schema.

mod common;

use common::receiver::Receiver;
use common::smtp::Smtp;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// 2026-12-01T00:00:00Z.
const D1: f64 = 1_796_083_200.0;
const DAY: f64 = 86_400.0;

/// A day of samples every minute from `start`: cpu.usage = minute % 60; `/` at 40 %; `/data`
/// at 70 % but 95 % from 10:00 to 12:00; mem.used_percent 50 %, 99 % from 23:00.
fn day(start: f64) -> String {
    let mut out = String::new();
    for i in 0..1440u32 {
        let ts = start + 60.0 * f64::from(i);
        let hour = i / 60;
        let data = if (10..12).contains(&hour) { 95.0 } else { 70.0 };
        let mem = if hour >= 23 { 99.0 } else { 50.0 };
        let line = json!({"ts": ts, "host": "test", "metrics": {
            "cpu.usage": f64::from(i % 60),
            "disk.used_percent{mount=/}": 40.0,
            "disk.used_percent{mount=/data}": data,
            "mem.used_percent": mem,
        }});
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

fn rules() -> Value {
    json!([
        {"name": "disk_full", "metric": "disk.used_percent", "warn": "> 90"},
        {"name": "mem_high", "metric": "mem.used_percent", "crit": "> 95"},
    ])
}

fn write_config(dir: &Path, extra: Value) -> PathBuf {
    let mut c = json!({
        "host": "web-01", "interval": "1s", "state_dir": dir.join("state").display().to_string(),
        "rules": rules(), "history": {"retention": "48h"},
    });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    common::write(dir, "config.json", &c.to_string())
}

fn replay(dir: &Path, config: &Path, start: f64) {
    let data = common::write(dir, "day.jsonl", &day(start));
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let out = common::run(&[
        "replay",
        data.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "replay: {}", common::stderr(&out));
}

fn report(config: &Path, dir: &Path, args: &[&str]) -> String {
    let state = dir.join("state");
    let mut all = vec![
        "report",
        "--config",
        config.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let out = common::run(&all);
    assert!(out.status.success(), "report: {}", common::stderr(&out));
    common::stdout(&out)
}

#[test]
fn a_replayed_day_reports_the_figures_it_was_given() {
    let dir = common::tempdir("report-day");
    let cfg = write_config(&dir, json!({}));
    replay(&dir, &cfg, D1);
    let since = "2026-12-01T00:00:00Z";
    let until = "2026-12-02T00:00:00Z";
    let text = report(&cfg, &dir, &["--since", since, "--until", until, "--format", "json"]);
    let r: Value = serde_json::from_str(&text).expect("report JSON");
    assert_eq!((r["since"].as_f64(), r["until"].as_f64()), (Some(D1), Some(D1 + DAY)));
    assert_eq!(r["host"], "web-01");
    assert_eq!(r["resolution"], 60);
    let metric = |name: &str| -> Value {
        r["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["metrics"].as_array().unwrap().clone())
            .find(|m| m["metric"] == name)
            .unwrap_or_else(|| panic!("{name} in {r:#}"))
    };
    let cpu = metric("cpu.usage");
    assert_eq!(cpu["slots"], 1440);
    // 0..=59 each 24 times: p95 is the 1368th of 1440 sorted averages, 56.
    assert_eq!(
        cpu["figures"],
        json!({"min": 0.0, "avg": 29.5, "p95": 56.0, "max": 59.0, "last": 59.0,
        "text": {"min": "0.0%", "avg": "29.5%", "p95": "56.0%", "max": "59.0%"}})
    );
    let disk = metric("disk.used_percent");
    assert_eq!(disk["series"], 2);
    // (40·1440 + 70·1320 + 95·120) / 2880
    assert_eq!(disk["figures"]["avg"], 56.042);
    assert_eq!(
        (disk["figures"]["min"].as_f64(), disk["figures"]["max"].as_f64()),
        (Some(40.0), Some(95.0))
    );
    assert_eq!(disk["top"][0]["label"], "/data");
    assert_eq!(disk["top"][0]["figures"]["p95"], 95.0);
    assert_eq!(disk["top"][1]["label"], "/");
    let groups: Vec<&str> =
        r["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(groups, ["cpu", "mem", "disk"]);

    let a = &r["alerts"];
    assert_eq!(
        (a["fired"].as_u64(), a["resolved"].as_u64(), a["still_firing"].as_u64()),
        (Some(2), Some(1), Some(1))
    );
    let time: Vec<(String, f64)> = a["time_in_alert"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["rule"].as_str().unwrap().to_string(), t["in_alert_s"].as_f64().unwrap()))
        .collect();
    assert_eq!(time, [("disk_full".to_string(), 7200.0), ("mem_high".to_string(), 3600.0)]);
    let disk_ep =
        a["episodes"].as_array().unwrap().iter().find(|e| e["rule"] == "disk_full").unwrap();
    assert_eq!(
        (disk_ep["started"].as_f64(), disk_ep["ended"].as_f64()),
        (Some(D1 + 36_000.0), Some(D1 + 43_200.0))
    );
    assert_eq!(disk_ep["series"], "disk.used_percent{mount=/data}");
    let mem_ep =
        a["episodes"].as_array().unwrap().iter().find(|e| e["rule"] == "mem_high").unwrap();
    assert_eq!(
        (mem_ep["ended"].clone(), mem_ep["severity"].clone()),
        (Value::Null, json!("critical"))
    );
    assert_eq!(r["delivery_failures"], json!([]));

    // A period that holds only the disk episode: --since as a duration before --until.
    let noon = report(
        &cfg,
        &dir,
        &["--since", "3h", "--until", "2026-12-01T12:30:00Z", "--format", "json"],
    );
    let r: Value = serde_json::from_str(&noon).unwrap();
    assert_eq!(
        (r["alerts"]["fired"].as_u64(), r["alerts"]["resolved"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(r["until"].as_f64().unwrap() - r["since"].as_f64().unwrap(), 3.0 * 3600.0);

    let text = report(&cfg, &dir, &["--since", since, "--until", until]);
    for want in [
        "hostwatch report adhoc for web-01",
        "2026-12-01T00:00:00Z to 2026-12-02T00:00:00Z (1d, UTC)",
        "min 0.0%  avg 29.5%  p95 56.0%  max 59.0%",
        "disk_full",
        "2h in alert",
        "still firing",
    ] {
        assert!(text.contains(want), "{want:?} in\n{text}");
    }
    let html = report(&cfg, &dir, &["--since", since, "--until", until, "--format", "html"]);
    assert!(
        html.starts_with("<!DOCTYPE html>") && html.contains("disk.used_percent (2 series)"),
        "{html}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `hostwatch run` with `config`, killed when dropped.
struct Run(Child);

impl Run {
    fn start(config: &Path) -> Run {
        let child = Command::new(common::bin())
            .args(["run", "--config", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start hostwatch run");
        Run(child)
    }

    fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("hostwatch run did not stop on SIGTERM");
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A reports.json saying `name` was last sent for a period that ended ten days ago.
fn overdue(dir: &Path, name: &str, every_s: u64) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let last = (now / every_s) * every_s - 10 * 86_400;
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let body =
        json!({"reports": {name: {"every_s": every_s, "offset_s": 0, "last_end": last as f64}}});
    common::write(&state, "reports.json", &body.to_string());
}

#[test]
fn an_overdue_report_is_sent_once_at_start_and_a_failed_attempt_is_retried() {
    let dir = common::tempdir("report-overdue");
    let r = Receiver::start();
    // The first attempt fails: the report waits in the outbox and goes again.
    r.script("/report", json!([{"status": 503, "body": "busy"}]));
    let cfg = write_config(
        &dir,
        json!({
            "channels": {"hook": {"type": "webhook", "url": r.url("/report")}},
            "delivery": {"retry_base": "1s", "retry_max": "2s"},
            "reports": [{"name": "quick", "every": "1m", "channels": ["hook"]}],
        }),
    );
    overdue(&dir, "quick", 60);
    let run = Run::start(&cfg);
    let got = r.wait_for(2, Duration::from_secs(60));
    assert_eq!(got.len(), 2, "one failed attempt and its retry: {got:#?}");
    assert_eq!(got[0]["answered"], 503, "{got:#?}");
    assert_eq!(got[0]["json"]["key"], got[1]["json"]["key"], "the same report again");
    let body = &got[1]["json"];
    assert_eq!(body["event"], "report");
    assert_eq!(body["rule"], "hostwatch.report");
    let report = &body["report"];
    assert_eq!(report["name"], "quick");
    let (since, until) = (report["since"].as_f64().unwrap(), report["until"].as_f64().unwrap());
    assert_eq!(until - since, 60.0, "the latest completed minute");
    assert_eq!(until % 60.0, 0.0);
    // Nothing more for the past: ten missed days are not ten thousand reports. (The next
    // minute's report may come due meanwhile if the test started late in a minute: it is for
    // a later period, and there is at most one.)
    std::thread::sleep(Duration::from_secs(3));
    let later: Vec<Value> =
        r.requests().into_iter().filter(|q| q["json"]["key"] != body["key"]).collect();
    assert!(later.len() <= 1, "{later:#?}");
    assert!(later.iter().all(|q| q["json"]["report"]["until"].as_f64() == Some(until + 60.0)));
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state/reports.json")).unwrap())
            .unwrap();
    let last_end = saved["reports"]["quick"]["last_end"].as_f64().unwrap();
    assert!(last_end == until || last_end == until + 60.0, "{saved}");
    run.stop();
    // A restart within the same period sends nothing again.
    let run = Run::start(&cfg);
    std::thread::sleep(Duration::from_secs(3));
    let after: Vec<Value> =
        r.requests().into_iter().filter(|q| q["json"]["key"] != body["key"]).collect();
    assert!(
        after.iter().all(|q| q["json"]["report"]["until"].as_f64() > Some(until)),
        "{after:#?}"
    );
    run.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- Every channel's schema -----------------------------------------------------------------

/// Structural Block Kit check (the block and text types a report uses, Slack's limits).
fn validate_block_kit(body: &Value) {
    let blocks = body["blocks"].as_array().expect("blocks");
    assert!((1..=50).contains(&blocks.len()), "1..=50 blocks");
    let text = body["text"].as_str().unwrap();
    assert!(!text.is_empty() && text.encode_utf16().count() <= 40_000);
    let text_object = |t: &Value, limit: usize, plain_only: bool| {
        let kind = t["type"].as_str().unwrap();
        assert!(kind == "plain_text" || (!plain_only && kind == "mrkdwn"), "text type {kind}");
        let s = t["text"].as_str().unwrap();
        assert!(!s.is_empty() && s.encode_utf16().count() <= limit, "text length {s:?}");
    };
    for b in blocks {
        match b["type"].as_str().unwrap() {
            "header" => text_object(&b["text"], 150, true),
            "section" => text_object(&b["text"], 3000, false),
            "context" => {
                b["elements"].as_array().unwrap().iter().for_each(|e| text_object(e, 3000, false))
            }
            other => panic!("unexpected block {other}"),
        }
    }
}

#[test]
fn a_report_reaches_every_channel_in_its_schema() {
    let dir = common::tempdir("report-channels");
    let r = Receiver::start();
    let smtp = Smtp::start(&dir, &[]);
    let record = dir.join("hook");
    std::fs::create_dir_all(&record).unwrap();
    let hook = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/hook_record.sh");
    // The last completed day is reported: replay that day first so it has figures.
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let midnight = (now / DAY).floor() * DAY;
    let cfg = write_config(
        &dir,
        json!({
            "host": "web-01 <!channel> <@U1> *b* [x](https://evil)",
            "channels": {
                "slack": {"type": "slack", "webhook_url": r.url("/slack")},
                "teams": {"type": "teams", "webhook_url": r.url("/teams")},
                "cards": {"type": "teams", "webhook_url": r.url("/cards"), "format": "messagecard"},
                "hook": {"type": "webhook", "url": r.url("/hook")},
                "mail": {"type": "email", "server": format!("127.0.0.1:{}", smtp.port), "tls": "none",
                         "from": "hostwatch@example.com", "to": ["ops@example.com"], "timeout": "10s"},
                "exec": {"type": "exec", "command": ["/bin/sh", hook, record.to_str().unwrap(), "0"]},
            },
            "reports": [{"every": "24h", "channels": ["slack", "teams", "cards", "hook", "mail", "exec"]}],
        }),
    );
    replay(&dir, &cfg, midnight - DAY);
    overdue(&dir, "daily", 86_400);
    let run = Run::start(&cfg);
    let got = r.wait_for(4, Duration::from_secs(60));
    let end = Instant::now() + Duration::from_secs(60);
    while (smtp.received().is_empty() || !record.join("stdin").exists()) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    run.stop();
    let got_all = r.requests();
    assert_eq!(got_all.len(), 4, "one request per HTTP channel: {got_all:#?}");
    let by_path = |p: &str| {
        got.iter().find(|q| q["path"] == p).unwrap_or_else(|| panic!("{p}: {got:#?}"))["json"]
            .clone()
    };

    let slack = by_path("/slack");
    validate_block_kit(&slack);
    let raw = slack.to_string();
    assert!(!raw.contains("<!channel>") && raw.contains("&lt;!channel&gt;"), "{raw}");
    assert!(
        raw.contains("cpu.usage") && raw.contains("disk_full") && raw.contains("still firing"),
        "{raw}"
    );

    let teams = by_path("/teams");
    assert_eq!(teams["attachments"][0]["contentType"], "application/vnd.microsoft.card.adaptive");
    common::assert_valid_card(&teams["attachments"][0]["content"], "report");
    assert!(teams.to_string().contains("disk.used\\\\_percent \\\\(2 series\\\\)"), "{teams}");
    let cards = by_path("/cards");
    assert_eq!(cards["@type"], "MessageCard");
    assert!(cards["sections"].as_array().unwrap().len() >= 4);

    let hook_body = by_path("/hook");
    assert_eq!(hook_body["event"], "report");
    assert_eq!(hook_body["report"]["since"].as_f64(), Some(midnight - DAY));
    assert_eq!(hook_body["report"]["alerts"]["fired"], 2);

    let mails = smtp.received();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let m = common::smtp::parse_mail(mails[0]["content"].as_str().unwrap());
    assert_eq!(m["defects"], json!([]));
    assert!(
        m["subject"].as_str().unwrap().starts_with("[report] hostwatch report daily for web-01"),
        "{m}"
    );
    let parts = m["parts"].as_array().unwrap();
    let types: Vec<&str> = parts.iter().map(|p| p["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["text/plain", "text/html"]);
    assert!(
        parts[0]["text"]
            .as_str()
            .unwrap()
            .contains("Alerts: 2 alerts fired, 1 resolved, 1 still firing"),
        "{m}"
    );
    let html = parts[1]["text"].as_str().unwrap();
    assert!(
        html.contains("&lt;!channel&gt;")
            && !html.contains("<!channel>")
            && html.contains("width:120px"),
        "{html}"
    );

    let stdin: Value =
        serde_json::from_str(&std::fs::read_to_string(record.join("stdin")).unwrap()).unwrap();
    assert_eq!(
        (stdin["event"].as_str(), stdin["report"]["name"].as_str()),
        (Some("report"), Some("daily"))
    );
    let env = std::fs::read_to_string(record.join("env")).unwrap();
    assert!(env.split('\0').any(|v| v == "HOSTWATCH_EVENT=report"), "{env:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
