//! `display.timezone` end to end: the real binary renders times for people in the configured
//! zone (a Slack message and an e-mail through `hostwatch test-notify` to the recording HTTP
//! receiver and the test SMTP server, `report`'s text, the `silence list` table, the status
//! page before and after a reload), `local` follows `TZ`, machine formats stay UTC, and an
//! unknown zone is refused by `hostwatch check` at its position. Needs tzdata in
//! /usr/share/zoneinfo (scripts/test.sh installs it).
// The channels and the API it drives are features (all in the default build).
#![cfg(all(feature = "slack", feature = "webhook", feature = "email", feature = "api"))]

mod common;

use common::daemon::Daemon;
use common::receiver::{Receiver, free_port};
use common::smtp::Smtp;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn write_config(dir: &Path, cfg: &Value) -> String {
    common::write(dir, "config.json", &cfg.to_string()).to_str().unwrap().to_string()
}

fn hostwatch(args: &[&str], tz: Option<&str>) -> Output {
    let mut cmd = Command::new(common::bin());
    cmd.args(args).env_remove("HOSTWATCH_INTERVAL").env_remove("HOSTWATCH_HOST");
    cmd.env_remove("HOSTWATCH_STATE_DIR").env_remove("TZDIR");
    match tz {
        Some(tz) => cmd.env("TZ", tz),
        None => cmd.env_remove("TZ"),
    };
    cmd.output().expect("run hostwatch")
}

/// The Slack message's `Since` field after `test-notify` with `display`, `TZ` set to `tz`.
fn slack_since(name: &str, display: Value, tz: Option<&str>) -> String {
    assert!(Path::new("/usr/share/zoneinfo/Asia/Kolkata").exists(), "tzdata is not installed");
    let r = Receiver::start();
    let dir = common::tempdir(name);
    let cfg = json!({
        "host": "web-01",
        "state_dir": dir.join("state"),
        "channels": {"ops": {"type": "slack", "webhook_url": r.url("/services/T/B/X")}},
        "delivery": {"timeout": "5s"},
        "display": display,
    });
    let cfg = write_config(&dir, &cfg);
    let o = hostwatch(&["test-notify", "ops", "--config", &cfg], tz);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let got = r.requests();
    assert_eq!(got.len(), 1, "one request: {got:#?}");
    let body = got[0]["json"].to_string();
    let at = body.find("*Since*\\n").unwrap_or_else(|| panic!("no Since field: {body}"));
    let rest = &body[at + "*Since*\\n".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// `YYYY-MM-DD HH:MM:SS ` followed by the zone's name.
fn assert_local_format(shown: &str, zone_names: &[&str]) {
    let (stamp, zone) = shown.rsplit_once(' ').unwrap_or_else(|| panic!("{shown:?}"));
    assert!(zone_names.contains(&zone), "{shown:?} is not in {zone_names:?}");
    let b = stamp.as_bytes();
    assert_eq!(b.len(), 19, "{shown:?}");
    for (i, c) in b.iter().enumerate() {
        let want_sep = match i {
            4 | 7 => Some(b'-'),
            10 => Some(b' '),
            13 | 16 => Some(b':'),
            _ => None,
        };
        match want_sep {
            Some(sep) => assert_eq!(*c, sep, "{shown:?}"),
            None => assert!(c.is_ascii_digit(), "{shown:?}"),
        }
    }
}

#[test]
fn slack_messages_show_the_configured_zone() {
    let since = slack_since("tz-kolkata", json!({"timezone": "Asia/Kolkata"}), None);
    assert_local_format(&since, &["IST"]);
    // The default is UTC, in RFC 3339 as before.
    let since = slack_since("tz-default", json!({}), Some("Asia/Kolkata"));
    assert!(since.ends_with('Z') && since.contains('T'), "{since:?}");
}

#[test]
fn local_is_the_zone_tz_names() {
    let since = slack_since("tz-local", json!({"timezone": "local"}), Some("America/New_York"));
    assert_local_format(&since, &["EST", "EDT"]);
    let since = slack_since("tz-local-posix", json!({"timezone": "local"}), Some("<+0330>-3:30"));
    assert_local_format(&since, &["+03:30"]);
}

#[test]
fn silence_list_shows_the_zone_and_check_keeps_the_name() {
    let dir = common::tempdir("tz-silence");
    let cfg = json!({
        "state_dir": dir.join("state"),
        "rules": [],
        "silences": [{"rule": "disk_*", "until": "2099-07-01T12:00:00Z", "comment": "planned"}],
        "display": {"timezone": "Europe/Berlin"},
    });
    let cfg = write_config(&dir, &cfg);
    let o = hostwatch(&["--config", &cfg, "silence", "list"], None);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let out = common::stdout(&o);
    assert!(out.contains("2099-07-01 14:00:00 CEST"), "{out}");
    let o = hostwatch(&["check", "--config", &cfg, "--syntax-only"], None);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let effective: Value = serde_json::from_str(&common::stdout(&o)).unwrap();
    assert_eq!(effective["display"], json!({"timezone": "Europe/Berlin"}));
}

#[test]
fn an_unknown_zone_is_refused_at_its_position() {
    let dir = common::tempdir("tz-unknown");
    let text = "{\"rules\": [],\n \"display\": {\"timezone\": \"America/New_Yrok\"}}\n";
    let cfg = common::write(&dir, "config.json", text);
    let o = hostwatch(&["check", "--config", cfg.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(2), "{}", common::stderr(&o));
    let err = common::stderr(&o);
    let want = format!(
        "{}:2:26: display.timezone: unknown time zone \"America/New_Yrok\" (did you mean \"America/New_York\"?)",
        cfg.display()
    );
    assert!(err.contains(&want), "{err}");
}

#[test]
fn machine_formats_stay_utc() {
    let r = Receiver::start();
    let dir = common::tempdir("tz-webhook");
    let hook = |format: &str| json!({"type": "webhook", "url": r.url("/hook"), "format": format});
    let cfg = json!({
        "host": "web-01",
        "state_dir": dir.join("state"),
        "channels": {"json": hook("json"), "am": hook("alertmanager-webhook")},
        "delivery": {"timeout": "5s"},
        "display": {"timezone": "Asia/Kolkata"},
    });
    let cfg = write_config(&dir, &cfg);
    for channel in ["json", "am"] {
        let o = hostwatch(&["test-notify", channel, "--config", &cfg], None);
        assert!(o.status.success(), "{}", common::stderr(&o));
    }
    let got = r.requests();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(got[0]["json"]["ts"].is_number(), "{}", got[0]["json"]);
    let starts = got[1]["json"]["alerts"][0]["startsAt"].as_str().unwrap();
    assert!(starts.ends_with('Z'), "{starts}");
    for g in &got {
        assert!(!g["json"].to_string().contains("IST"), "{}", g["json"]);
    }
}

#[test]
fn report_text_shows_the_zone_and_json_keeps_unix_seconds() {
    let dir = common::tempdir("tz-report");
    let cfg = json!({
        "state_dir": dir.join("state"),
        "rules": [],
        "display": {"timezone": "America/New_York"},
    });
    let cfg = write_config(&dir, &cfg);
    let period = ["--since", "3h", "--until", "2026-07-01T12:30:00Z"];
    let o = hostwatch(&[&["report", "--config", &cfg][..], &period].concat(), None);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let out = common::stdout(&o);
    assert!(out.contains("2026-07-01 05:30:00 EDT to 2026-07-01 08:30:00 EDT (3h)\n"), "{out}");
    let o =
        hostwatch(&[&["report", "--config", &cfg, "--format", "json"][..], &period].concat(), None);
    let r: Value = serde_json::from_str(&common::stdout(&o)).unwrap();
    assert_eq!(r["until"], json!(1_782_909_000.0));
}

#[test]
fn email_body_and_date_header_use_the_zone() {
    let dir = common::tempdir("tz-email");
    let smtp = Smtp::start(&dir, &[]);
    let mail = json!({
        "type": "email", "tls": "none", "server": format!("127.0.0.1:{}", smtp.port),
        "from": "hostwatch@example.com", "to": ["oncall@example.com"], "timeout": "5s",
    });
    let cfg = json!({
        "host": "web-01",
        "state_dir": dir.join("state"),
        "channels": {"mail": mail},
        "display": {"timezone": "Asia/Kolkata"},
    });
    let cfg = write_config(&dir, &cfg);
    let o = hostwatch(&["test-notify", "mail", "--config", &cfg], None);
    assert!(o.status.success(), "{}", common::stderr(&o));
    let got = smtp.received();
    assert_eq!(got.len(), 1, "{got:?}");
    let raw = got[0]["content"].as_str().unwrap();
    let date = raw.lines().find(|l| l.starts_with("Date: ")).unwrap_or_else(|| panic!("{raw}"));
    assert!(date.ends_with(" +0530"), "{date}");
    let since = raw.lines().find(|l| l.starts_with("Since:")).unwrap_or_else(|| panic!("{raw}"));
    assert_local_format(since.trim_start_matches("Since:").trim(), &["IST"]);
}

/// Polls the status page until it contains `needle` (bounded); the last page on failure.
fn wait_page(base: &str, needle: &str) -> Result<(), String> {
    let end = Instant::now() + Duration::from_secs(30);
    let mut last = String::new();
    while Instant::now() < end {
        if let Ok((200, page)) = common::http("GET", &format!("{base}/"), "") {
            if page.contains(needle) {
                return Ok(());
            }
            last = page;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(last)
}

#[test]
fn the_status_page_follows_the_zone_across_a_reload() {
    let dir = common::tempdir("tz-reload");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = |display: Value| {
        json!({
            "interval": "1s",
            "state_dir": dir.join("state"),
            "rules": [],
            "api": {"listen": format!("127.0.0.1:{port}")},
            "silences": [{"rule": "disk_*", "until": "2099-07-01T12:00:00Z"}],
            "display": display,
        })
    };
    let path = common::write(&dir, "config.json", &config(json!({})).to_string());
    let mut daemon = Daemon::start(&path, false);
    let before = wait_page(&base, "until 2099-07-01T12:00:00Z");
    common::write(&dir, "config.json", &config(json!({"timezone": "Europe/Berlin"})).to_string());
    daemon.signal("-HUP");
    let after = wait_page(&base, "until 2099-07-01 14:00:00 CEST");
    // The machine-readable attribute stays UTC.
    let (_, page) = common::http("GET", &format!("{base}/"), "").unwrap();
    daemon.signal("-TERM");
    let _ = daemon.child.wait();
    before.unwrap_or_else(|page| panic!("UTC never shown: {page}"));
    after.unwrap_or_else(|page| panic!("the reload did not change the zone: {page}"));
    assert!(page.contains("datetime=\"2099-07-01T12:00:00Z\""), "{page}");
}
