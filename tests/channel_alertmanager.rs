//! The Alertmanager channel end to end. Against a real Alertmanager (Debian package
//! `prometheus-alertmanager`, started per test on a free loopback port with clustering off):
//! `hostwatch test-notify am` makes an active alert with the right labels and annotations,
//! and the sender driven as a library fires, refreshes, escalates and resolves an alert the
//! way Alertmanager's API then reports. Against the recording receiver: `refresh()` re-posts
//! every active alert with a future `endsAt`, `remember()` sends nothing by itself, answers
//! are classified, and user info in the URL becomes basic authentication.

mod common;

use common::alertmanager::Alertmanager;

use common::receiver::Receiver;
use hostwatch::alerts::EventKind;
use hostwatch::config::Severity;
use hostwatch::config::channels::AlertmanagerConfig;
use hostwatch::event::AlertEvent;
use hostwatch::notify::alertmanager::{AlertmanagerSender, LabelSet, fingerprint};
use hostwatch::notify::{SendError, Sender};
use hostwatch::timefmt::{now_unix, rfc3339};
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

/// Unix seconds of an RFC 3339 time from an API answer.
fn time(v: &Value) -> f64 {
    hostwatch::config::parse_rfc3339(v.as_str().expect("a time string")).expect("RFC 3339")
}

fn is_active(a: &Value) -> bool {
    a["status"]["state"] == "active"
}

/// A `disk_data` event on `/data` of host `it-host`.
fn event(rule: &str, severity: Severity, kind: EventKind, since: f64) -> AlertEvent {
    let mut e = AlertEvent::test_event("it-host", severity, since);
    e.test = false;
    e.rule = rule.to_string();
    e.series = "disk.used_percent{mount=/data}".to_string();
    e.metric = "disk.used_percent".to_string();
    e.labels = [("mount".to_string(), "/data".to_string())].into();
    e.event = kind;
    e.ts = now_unix();
    e.value_text = "93.5%".to_string();
    e.threshold = "> 90".to_string();
    e.description = Some("The data disk is filling up".to_string());
    e
}

fn sender(url: &str, resend_every: Duration) -> AlertmanagerSender {
    let config = AlertmanagerConfig {
        url: url.to_string().into(),
        timeout: None,
        resend_every,
        watchdog: false,
    };
    AlertmanagerSender::new("am", &config, Duration::from_secs(5)).expect("build the sender")
}

fn label_set(v: &Value) -> LabelSet {
    serde_json::from_value(v.clone()).expect("a label set")
}

#[test]
fn test_notify_makes_an_active_alert() {
    let am = Alertmanager::start("cli");
    let dir = common::tempdir("am-cli-config");
    let am_channel = json!({"type": "alertmanager", "url": am.base(), "timeout": "5s",
                            "resend_every": "1m"});
    let config = json!({"host": "am-host", "channels": {"am": am_channel}});
    let config = common::write(&dir, "hostwatch.json", &config.to_string());
    let before = now_unix();
    let out = Command::new(common::bin())
        .args(["test-notify", "am", "--severity", "critical", "--config"])
        .arg(&config)
        .env_remove("HOSTWATCH_HOST")
        .output()
        .expect("run hostwatch");
    assert!(out.status.success(), "stderr: {}", common::stderr(&out));
    assert!(common::stdout(&out).starts_with("am: accepted: HTTP 200"), "{}", common::stdout(&out));

    let alerts =
        am.wait_until("hostwatch_test", "an active alert", |a| a.len() == 1 && is_active(&a[0]));
    let alert = &alerts[0];
    let labels = json!({"alertname": "hostwatch_test", "host": "am-host", "severity": "critical"});
    assert_eq!(alert["labels"], labels);
    let annotations = &alert["annotations"];
    assert_eq!(annotations["summary"], "hostwatch_test on am-host: cpu.usage = 99.9% (> 95)");
    assert_eq!(annotations["value"], "99.9%");
    assert_eq!(annotations["threshold"], "> 95");
    assert!(annotations["description"].as_str().unwrap().contains("test notification"));
    // Our fingerprint is Alertmanager's.
    assert_eq!(alert["fingerprint"], fingerprint(&label_set(&labels)));
    // Started about now; ends four resend periods (4 × 1m) later unless re-sent.
    let starts = time(&alert["startsAt"]);
    assert!(starts > before - 2.0 && starts <= now_unix(), "{alert}");
    let ends = time(&alert["endsAt"]);
    assert!(ends > before + 230.0 && ends < now_unix() + 241.0, "{alert}");
}

#[test]
fn sender_fires_refreshes_escalates_and_resolves() {
    let am = Alertmanager::start("lib");
    let mut s = sender(&am.base(), Duration::from_secs(60));
    let since = now_unix() - 120.0;

    let firing = event("disk_data", Severity::Warning, EventKind::Firing, since);
    s.send(&firing).expect("firing accepted");
    let alerts =
        am.wait_until("disk_data", "the firing alert", |a| a.len() == 1 && is_active(&a[0]));
    let want = json!({"alertname": "disk_data", "host": "it-host", "mount": "/data",
                      "severity": "warning"});
    assert_eq!(alerts[0]["labels"], want);
    assert_eq!(alerts[0]["annotations"]["description"], "The data disk is filling up");
    assert_eq!(time(&alerts[0]["startsAt"]), since.floor());
    let first_end = time(&alerts[0]["endsAt"]);

    std::thread::sleep(Duration::from_millis(1100));
    s.refresh().expect("refresh accepted");
    am.wait_until("disk_data", "the end moved on by the refresh", |a| {
        a.len() == 1 && is_active(&a[0]) && time(&a[0]["endsAt"]) > first_end
    });

    // Escalation: the critical alert replaces the warning one, which Alertmanager resolves.
    let escalated = event("disk_data", Severity::Critical, EventKind::Escalated, since);
    s.send(&escalated).expect("escalation accepted");
    let alerts = am.wait_until("disk_data", "only the critical alert", |a| {
        a.len() == 1 && a[0]["labels"]["severity"] == "critical" && is_active(&a[0])
    });
    assert_eq!(time(&alerts[0]["startsAt"]), since.floor());
    assert_eq!(s.active_len(), 1);

    let resolved = event("disk_data", Severity::Critical, EventKind::Resolved, since);
    s.send(&resolved).expect("resolution accepted");
    // A resolved alert is no longer listed (or, if it is, it ended in the past).
    am.wait_until("disk_data", "the alert resolved", |a| {
        a.iter().all(|x| time(&x["endsAt"]) <= now_unix())
    });
    assert_eq!(s.active_len(), 0);
    s.refresh().expect("nothing to refresh");
    std::thread::sleep(Duration::from_millis(500));
    assert!(am.alerts("disk_data").iter().all(|x| time(&x["endsAt"]) <= now_unix()));
}

#[test]
fn a_flapping_alert_is_active_saying_so_and_an_ok_flap_end_resolves_it() {
    let am = Alertmanager::start("flap");
    let mut s = sender(&am.base(), Duration::from_secs(60));
    let since = now_unix() - 60.0;
    let mut flapping = event("disk_flap", Severity::Warning, EventKind::Flapping, since);
    flapping.context.flap_percent = Some(55.3);
    s.send(&flapping).expect("flapping accepted");
    let alerts =
        am.wait_until("disk_flap", "the flapping alert", |a| a.len() == 1 && is_active(&a[0]));
    assert_eq!(
        alerts[0]["annotations"]["flapping"],
        "55.3% of the last 21 evaluations changed state"
    );
    assert_eq!(time(&alerts[0]["startsAt"]), since.floor());

    // Still firing when the flapping stops: active, the flapping annotation gone.
    let mut firing = event("disk_flap", Severity::Warning, EventKind::FlapEnd, since);
    firing.context.state = Some(hostwatch::event::CurrentState::Firing);
    s.send(&firing).expect("flap_end accepted");
    am.wait_until("disk_flap", "active without the flapping annotation", |a| {
        a.len() == 1 && is_active(&a[0]) && a[0]["annotations"].get("flapping").is_none()
    });

    // A flap_end that says ok resolves it.
    let mut ok = event("disk_flap", Severity::Warning, EventKind::FlapEnd, since);
    ok.context.state = Some(hostwatch::event::CurrentState::Ok);
    s.send(&flapping).expect("flapping again");
    s.send(&ok).expect("ok flap_end accepted");
    am.wait_until("disk_flap", "the alert resolved", |a| {
        a.iter().all(|x| time(&x["endsAt"]) <= now_unix())
    });
    assert_eq!(s.active_len(), 0);
}

#[test]
fn a_rules_summary_runbook_and_static_labels_reach_alertmanager() {
    let am = Alertmanager::start("context");
    let mut s = sender(&am.base(), Duration::from_secs(60));
    let mut firing = event("disk_ctx", Severity::Warning, EventKind::Firing, now_unix() - 60.0);
    firing.context.summary = Some("Data disk almost full".to_string());
    firing.context.runbook_url = Some("https://wiki.example.com/runbooks/disk".to_string());
    firing.context.rule_labels =
        [("team".to_string(), "db".to_string()), ("host".to_string(), "clash".to_string())].into();
    s.send(&firing).expect("firing accepted");
    let alerts = am.wait_until("disk_ctx", "the alert with its context", |a| a.len() == 1);
    assert_eq!(alerts[0]["annotations"]["summary"], "Data disk almost full");
    assert_eq!(alerts[0]["annotations"]["runbook_url"], "https://wiki.example.com/runbooks/disk");
    // A static label never replaces one hostwatch sets: it is prefixed.
    let want = json!({"alertname": "disk_ctx", "host": "it-host", "mount": "/data",
                      "severity": "warning", "team": "db", "label_host": "clash"});
    assert_eq!(alerts[0]["labels"], want);
}

#[test]
fn refresh_reposts_active_alerts_with_a_future_end() {
    let receiver = Receiver::start();
    let mut s = sender(&receiver.url("/am/"), Duration::from_secs(10));
    let since = now_unix() - 60.0;
    let root = event("disk_root", Severity::Warning, EventKind::Firing, since);
    let data = event("disk_data", Severity::Critical, EventKind::Firing, since);
    s.send(&root).unwrap();
    s.send(&data).unwrap();
    assert_eq!(receiver.wait_for(2, Duration::from_secs(5)).len(), 2);

    let before = now_unix();
    s.refresh().unwrap();
    let requests = receiver.wait_for(3, Duration::from_secs(5));
    let last = &requests[2];
    assert_eq!(last["method"], "POST");
    assert_eq!(last["path"], "/am/api/v2/alerts");
    assert_eq!(last["headers"]["content-type"], "application/json");
    assert!(last["headers"]["user-agent"].as_str().unwrap().starts_with("hostwatch/"));
    let alerts = last["json"].as_array().expect("a JSON array");
    let mut names: Vec<&str> =
        alerts.iter().filter_map(|a| a["labels"]["alertname"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["disk_data", "disk_root"]);
    for a in alerts {
        // endsAt = now + 4 × 10 s.
        let ends = time(&a["endsAt"]);
        assert!(ends >= before.floor() + 40.0 && ends <= now_unix() + 40.0, "{a}");
        assert_eq!(a["startsAt"], rfc3339(since));
        assert_eq!(a["generatorURL"], "");
        assert_eq!(a["annotations"]["value"], "93.5%");
    }

    // Resolving one: it ends now, and the next refresh carries only the other.
    let resolved = event("disk_root", Severity::Warning, EventKind::Resolved, since);
    s.send(&resolved).unwrap();
    let requests = receiver.wait_for(4, Duration::from_secs(5));
    let sent = requests[3]["json"].as_array().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert!(time(&sent[0]["endsAt"]) <= now_unix(), "{}", sent[0]);
    s.refresh().unwrap();
    let requests = receiver.wait_for(5, Duration::from_secs(5));
    let refreshed = requests[4]["json"].as_array().unwrap();
    assert_eq!(refreshed.len(), 1);
    assert_eq!(refreshed[0]["labels"]["alertname"], "disk_data");

    // Nothing active: a refresh sends nothing.
    s.send(&event("disk_data", Severity::Critical, EventKind::Resolved, since)).unwrap();
    s.refresh().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(receiver.requests().len(), 6);
}

#[test]
fn remember_sends_nothing_until_the_refresh() {
    let receiver = Receiver::start();
    let mut s = sender(&receiver.url(""), Duration::from_secs(60));
    let since = now_unix() - 3600.0;
    s.remember(&event("disk_data", Severity::Critical, EventKind::Reminder, since));
    std::thread::sleep(Duration::from_millis(300));
    assert!(receiver.requests().is_empty());
    s.refresh().unwrap();
    let requests = receiver.wait_for(1, Duration::from_secs(5));
    assert_eq!(requests[0]["path"], "/api/v2/alerts");
    let alerts = requests[0]["json"].as_array().unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["startsAt"], rfc3339(since));
    assert!(time(&alerts[0]["endsAt"]) > now_unix() + 200.0);
}

#[test]
fn answers_are_classified() {
    let receiver = Receiver::start();
    receiver.script(
        "/api/v2/alerts",
        json!([
            {"status": 400, "body": "\"invalid label set\""},
            {"status": 503, "body": "overloaded"},
            {"status": 429, "headers": {"Retry-After": "9"}},
        ]),
    );
    let mut s = sender(&receiver.url(""), Duration::from_secs(60));
    let e = event("disk_data", Severity::Warning, EventKind::Firing, now_unix());
    match s.send(&e) {
        Err(SendError::Permanent { reason }) => {
            assert!(reason.contains("alertmanager am") && reason.contains("HTTP 400"), "{reason}");
        }
        other => panic!("400 must be permanent: {other:?}"),
    }
    assert!(matches!(s.refresh(), Err(SendError::Transient { retry_after: None, .. })));
    match s.refresh() {
        Err(SendError::Transient { retry_after, .. }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(9)));
        }
        other => panic!("429 must be transient: {other:?}"),
    }
    assert!(s.refresh().is_ok());
}

#[test]
fn user_info_in_the_url_becomes_basic_auth() {
    let receiver = Receiver::start();
    let url = format!("http://ops:p%40ss@127.0.0.1:{}/prefix", receiver.port);
    let mut s = sender(&url, Duration::from_secs(60));
    s.send(&event("disk_data", Severity::Warning, EventKind::Firing, now_unix())).unwrap();
    let requests = receiver.wait_for(1, Duration::from_secs(5));
    assert_eq!(requests[0]["path"], "/prefix/api/v2/alerts");
    // base64("ops:p@ss")
    assert_eq!(requests[0]["headers"]["authorization"], "Basic b3BzOnBAc3M=");
}

/// `hostwatch run` forwarding to a real Alertmanager: the alert is kept alive by re-sends,
/// also across a restart (which announces nothing again but remembers what is firing).
#[test]
fn run_keeps_a_firing_alert_alive_across_a_restart() {
    let am = Alertmanager::start("run-restart");
    let dir = common::tempdir("am-run-restart");
    let cfg = json!({
        "host": "am-run-host", "interval": "1s", "state_dir": dir.join("state").display().to_string(),
        "rules": [{"name": "am_mem_any", "metric": "mem.used_percent", "crit": ">= 0"}],
        "channels": {"am": {"type": "alertmanager", "url": am.base(), "resend_every": "2s"}},
        "routes": [{"channels": ["am"]}]
    });
    let cfg = common::write(&dir, "config.json", &cfg.to_string());
    let mut daemon = common::daemon::Daemon::start(&cfg, false);
    let first =
        am.wait_until("am_mem_any", "the forwarded alert", |a| a.len() == 1 && is_active(&a[0]));
    daemon.signal("-TERM");
    assert!(daemon.child.wait().unwrap().success());
    drop(daemon);
    // The last end the first process set (it may have re-sent once more before it stopped).
    let ends_before = time(&am.alerts("am_mem_any")[0]["endsAt"]);
    // Restarted: the alert is still firing and was announced, so it is not announced again,
    // but the channel remembers it and its re-sends push endsAt further out.
    let mut daemon = common::daemon::Daemon::start(&cfg, false);
    let later = am.wait_until("am_mem_any", "a re-sent alert after the restart", |a| {
        a.len() == 1 && is_active(&a[0]) && time(&a[0]["endsAt"]) > ends_before + 1.0
    });
    daemon.signal("-TERM");
    let _ = daemon.child.wait();
    assert_eq!(later[0]["labels"]["host"], "am-run-host");
    assert_eq!(later[0]["startsAt"], first[0]["startsAt"], "the same episode");
    let events = std::fs::read_to_string(dir.join("state/events.jsonl")).unwrap();
    let firings = events.lines().filter(|l| l.contains("\"event\":\"firing\"")).count();
    assert_eq!(firings, 1, "announced once: {events}");
}
