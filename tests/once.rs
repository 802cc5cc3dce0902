//! `hostwatch once`, the cron watchdog: Nagios exit codes, the three output formats, windows
//! that span runs through the state file, and a corrupt state file set aside.

mod common;

use common::{run, stderr, stdout, tempdir, write};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn config(dir: &Path, rules: Value) -> PathBuf {
    let cfg = json!({"host": "cron-host", "interval": "1s", "state_dir": dir.join("state").display().to_string(), "rules": rules});
    write(dir, "config.json", &cfg.to_string())
}

fn once(cfg: &Path, format: &str) -> std::process::Output {
    run(&[
        "once",
        "--config",
        cfg.to_str().unwrap(),
        "--format",
        format,
        "--first-interval",
        "200ms",
    ])
}

#[test]
fn exit_codes_follow_nagios() {
    let dir = tempdir("once-codes");
    let ok =
        config(&dir, json!([{"name": "conns", "metric": "tcp.established", "warn": "> 1000000"}]));
    let o = once(&ok, "nagios");
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).starts_with("HOSTWATCH OK - "), "{}", stdout(&o));

    let dir = tempdir("once-warn");
    let warn = config(&dir, json!([{"name": "load_any", "metric": "load.1", "warn": ">= 0"}]));
    let o = once(&warn, "nagios");
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).starts_with("HOSTWATCH WARNING - load_any "), "{}", stdout(&o));

    let dir = tempdir("once-crit");
    let crit = config(
        &dir,
        json!([
            {"name": "load_any", "metric": "load.1", "warn": ">= 0"},
            {"name": "disk_root", "metric": "disk.used_percent", "match": {"mount": "/"}, "warn": ">= 0", "crit": ">= 0"}
        ]),
    );
    let o = once(&crit, "nagios");
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let line = stdout(&o);
    // Critical first, then the warning; perfdata with warn;crit per series.
    assert!(line.starts_with("HOSTWATCH CRITICAL - disk_root / "), "{line}");
    assert!(line.contains(">= 0, load_any "), "{line}");
    assert!(
        line.contains(" | ") && line.contains("'disk_root'=") && line.contains("%;0;0"),
        "{line}"
    );

    let dir = tempdir("once-unknown");
    let broken = write(&dir, "broken.json", "{\"rules\": [}");
    let o = once(&broken, "nagios");
    assert_eq!(o.status.code(), Some(3));
    assert!(stdout(&o).starts_with("HOSTWATCH UNKNOWN - invalid config"), "{}", stdout(&o));
    assert!(stderr(&o).contains("broken.json:1:"), "{}", stderr(&o));
}

#[test]
fn text_and_json_formats() {
    let dir = tempdir("once-formats");
    let cfg =
        config(&dir, json!([{"name": "mem_any", "metric": "mem.used_percent", "crit": ">= 0"}]));
    let o = once(&cfg, "text");
    assert_eq!(o.status.code(), Some(2));
    let text = stdout(&o);
    assert!(text.starts_with("CRITICAL on cron-host: 1 firing"), "{text}");
    assert!(text.contains("mem_any") && text.contains("(mem.used_percent)"), "{text}");

    let o = once(&cfg, "json");
    assert_eq!(o.status.code(), Some(2));
    let doc: Value = serde_json::from_str(&stdout(&o)).expect("json output");
    assert_eq!(doc["status"], "critical");
    assert_eq!(doc["exit_code"], 2);
    assert_eq!(doc["host"], "cron-host");
    assert_eq!(doc["alerts"][0]["rule"], "mem_any");
    assert_eq!(doc["alerts"][0]["state"]["phase"], "firing");
    // The first run announced it; the second run (same episode) does not announce it again.
    assert_eq!(doc["notifications"].as_array().unwrap().len(), 0, "{doc}");
}

#[test]
fn a_for_window_spans_cron_runs() {
    let dir = tempdir("once-for");
    // The same shape as `for: 2m` under a cron minute, scaled down: for 4s, runs 2 s apart.
    let cfg = config(
        &dir,
        json!([{"name": "held", "metric": "mem.used_percent", "warn": ">= 0", "for": "4s"}]),
    );
    let mut codes = Vec::new();
    for _ in 0..4 {
        let o = once(&cfg, "json");
        let doc: Value = serde_json::from_str(&stdout(&o)).expect("json output");
        codes.push((
            o.status.code().unwrap(),
            doc["alerts"][0]["state"]["phase"].as_str().unwrap().to_string(),
        ));
        std::thread::sleep(std::time::Duration::from_millis(1800));
    }
    // Pending on the runs before the condition has held for 4 s, firing on the one after.
    assert_eq!(codes[0], (0, "pending".to_string()), "{codes:?}");
    assert_eq!(codes[1], (0, "pending".to_string()), "{codes:?}");
    assert!(codes[2..].iter().any(|c| c == &(1, "firing".to_string())), "{codes:?}");
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state/state.json")).unwrap())
            .unwrap();
    let ring = &state["once"]["rings"][0];
    assert_eq!(ring["series"], "mem.used_percent");
    assert!(
        ring["entries"].as_array().unwrap().len() >= 3,
        "windows keep samples across runs: {ring}"
    );
    assert!(!state["once"]["counters"].is_null(), "raw counters are kept for the next run's rates");
}

#[test]
fn a_corrupt_state_file_is_set_aside() {
    let dir = tempdir("once-corrupt");
    let cfg =
        config(&dir, json!([{"name": "mem_any", "metric": "mem.used_percent", "crit": ">= 0"}]));
    std::fs::create_dir_all(dir.join("state")).unwrap();
    std::fs::write(dir.join("state/state.json"), b"{\"version\": 1, \"alerts\": [tru").unwrap();
    let o = once(&cfg, "nagios");
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("state file is not valid"), "{}", stderr(&o));
    let names: Vec<String> = std::fs::read_dir(dir.join("state"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n.starts_with("state.json.broken-")), "{names:?}");
    assert!(names.iter().any(|n| n == "state.json"), "a fresh state was written: {names:?}");
}

#[test]
fn a_channel_down_during_one_cron_run_gets_its_notification_on_the_next() {
    let dir = tempdir("once-outbox");
    let port = common::receiver::free_port();
    let cfg = json!({
        "host": "cron-host", "interval": "1s", "state_dir": dir.join("state").display().to_string(),
        "rules": [{"name": "mem_any", "metric": "mem.used_percent", "crit": ">= 0"}],
        "channels": {"hook": {"type": "webhook", "url": format!("http://127.0.0.1:{port}/hook"), "timeout": "2s"}},
        "routes": [{"channels": ["hook"]}]
    });
    let cfg = write(&dir, "config.json", &cfg.to_string());
    // First run: the receiver is down; the notification stays in the outbox.
    let o = once(&cfg, "nagios");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("will retry"), "{}", stderr(&o));
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state/state.json")).unwrap())
            .unwrap();
    let outbox = state["delivery"]["outbox"].as_array().unwrap();
    assert_eq!(outbox.len(), 1, "{state}");
    let key = outbox[0]["event"]["key"].as_str().unwrap().to_string();
    // Second run: the receiver is back; the pending notification is delivered, once.
    let receiver = common::receiver::Receiver::start_on(port);
    let o = once(&cfg, "nagios");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let got = receiver.requests();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["json"]["key"], key.as_str());
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state/state.json")).unwrap())
            .unwrap();
    assert!(state["delivery"]["outbox"].as_array().unwrap().is_empty(), "{state}");
}

#[test]
fn an_alert_on_a_series_that_vanished_between_runs_has_no_data_then_resolves_after_the_limit() {
    let dir = tempdir("once-vanished");
    let rules = json!([{"name": "disk", "metric": "disk.used_percent", "warn": "> 99.9",
                        "nodata_resolve_after": "3s"}]);
    let cfg = config(&dir, rules);
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let series = "disk.used_percent{mount=/hostwatch-test-gone}";
    let state = json!({
        "version": 1, "saved_at": now - 60.0,
        "alerts": [{"rule": "disk", "series": series, "state": {
            "phase": "firing", "severity": "warning", "since": now - 600.0, "last_notified": now - 600.0,
            "seq": 1, "announced": true, "told": "warning", "value": 99.95}}],
        "once": {"counters": null, "rings": [{"series": series, "entries": [[now - 60.0, 99.95]]}]}
    });
    std::fs::create_dir_all(dir.join("state")).unwrap();
    std::fs::write(dir.join("state/state.json"), state.to_string()).unwrap();
    let saved = || -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("state/state.json")).unwrap())
            .unwrap()
    };
    // The series is not there: no data, never "resolved"; the alert stays open.
    let o = once(&cfg, "json");
    let doc: Value = serde_json::from_str(&stdout(&o)).expect("json output");
    assert_eq!(o.status.code(), Some(1), "still a warning: {doc}");
    let n = &doc["notifications"][0];
    assert_eq!(
        (n["event"].as_str(), n["series"].as_str(), n["reason"].as_str()),
        (Some("nodata"), Some(series), Some("mount disappeared")),
        "{doc}"
    );
    assert_eq!(doc["notifications"].as_array().unwrap().len(), 1, "{doc}");
    let state = saved();
    assert_eq!(state["alerts"][0]["state"]["nodata"]["reason"], "series_gone", "{state}");
    // Cron runs go on: said once; after 3 s of elapsed time without data, resolved, saying so.
    let mut resolved = None;
    for _ in 0..8 {
        std::thread::sleep(std::time::Duration::from_millis(600));
        let o = once(&cfg, "json");
        let doc: Value = serde_json::from_str(&stdout(&o)).expect("json output");
        let told = doc["notifications"].as_array().unwrap().clone();
        assert!(told.iter().all(|n| n["event"] == "resolved"), "{doc}");
        if let Some(n) = told.first() {
            assert_eq!(o.status.code(), Some(0), "{doc}");
            resolved = Some(n.clone());
            break;
        }
    }
    let n = resolved.expect("resolved within 8 runs");
    assert_eq!(n["threshold"], "no data for 3s", "{n}");
    assert_eq!(
        n["reason"], "no data for 3s (nodata_resolve_after); resolved without a current value",
        "{n}"
    );
    let state = saved();
    assert!(state["alerts"].as_array().unwrap().is_empty(), "{state}");
    assert!(
        !state.to_string().contains("hostwatch-test-gone"),
        "the vanished ring is not kept: {state}"
    );
}
