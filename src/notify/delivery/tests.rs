//! Tests of the dispatcher: routing into the outbox, failed saves at stop, items in flight on removed channels, the cost of its health figures.
use super::*;

#[test]
fn a_resolution_goes_wherever_its_episode_was_announced() {
    let dir = std::env::temp_dir().join(format!("hostwatch-unit-routes-{}", std::process::id()));
    let text = format!(
        r#"{{"state_dir": "{}", "rules": [{{"name": "r", "metric": "cpu.usage", "warn": "> 1", "crit": "> 2"}}],
        "channels": {{"warnings": {{"type": "exec", "command": ["/bin/true"]}}, "pager": {{"type": "exec", "command": ["/bin/true"]}}}},
        "routes": [{{"severity": "warning", "channels": ["warnings"]}}, {{"severity": "critical", "channels": ["pager"]}}]}}"#,
        dir.display()
    );
    let config = crate::config::load_str(&text, "t.json", &|_| None).unwrap();
    let mut d = Dispatcher::start(
        &Config { channels: BTreeMap::new(), ..config },
        DeliveryState::default(),
    );
    let mut e = AlertEvent::test_event("h", Severity::Warning, 1.0);
    d.enqueue(e.clone());
    e.event = EventKind::Escalated;
    e.severity = Severity::Critical;
    d.enqueue(e.clone());
    e.event = EventKind::Resolved;
    d.enqueue(e.clone());
    let channels: Vec<String> = d.state().outbox.into_iter().map(|i| i.channel).collect();
    assert_eq!(channels, vec!["warnings", "pager", "pager", "warnings"]);
    assert!(d.state().notified.is_empty(), "the episode is forgotten once resolved");
    assert!(d.needs_commit());
    let _ = std::fs::remove_dir_all(&dir);
}

fn exec_config(dir: &std::path::Path, channel: &str, command: &str, extra: &str) -> Config {
    let text = format!(
        r#"{{"state_dir": "{}", "rules": [],
        "channels": {{"{channel}": {{"type": "exec", "command": ["{command}"], "timeout": "10s"}}}},
        "routes": [{{"channels": ["{channel}"]}}] {extra}}}"#,
        dir.display()
    );
    crate::config::load_str(&text, "t.json", &|_| None).unwrap()
}

#[test]
fn a_failed_save_at_stop_records_what_it_loses_and_announces_nothing_it_cannot_send() {
    let dir = crate::testutil::tempdir("dispatch", "stop-fail");
    let config = exec_config(&dir, "hook", "/bin/false", "");
    let mut d = Dispatcher::start(&config, DeliveryState::default());
    let mut state = State::default();
    assert!(d.commit(&mut state));
    let path = crate::state::state_path(&dir);
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir_all(path.join("x")).unwrap();
    // Decided, never saved, and (the channel refuses it) never accepted.
    d.outbox.push("hook", AlertEvent::test_event("h", Severity::Warning, 1.0));
    assert!(!d.shutdown(&mut state, Instant::now() + Duration::from_secs(2)));
    let log = std::fs::read_to_string(dir.join("events.jsonl")).unwrap_or_default();
    assert!(!log.contains(PERSIST_RULE), "announced with no worker left to send it:\n{log}");
    assert!(log.contains("delivery_failed"), "the lost item has its record:\n{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_item_in_flight_on_a_removed_channel_is_not_given_up_under_its_worker() {
    let dir = crate::testutil::tempdir("dispatch", "orphan");
    let hook = dir.join("hook.sh");
    let accepted = dir.join("accepted");
    std::fs::write(&hook, format!("#!/bin/sh\nsleep 3\necho ok >> {}\n", accepted.display()))
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let extra = r#", "delivery": {"give_up_after": "2s"}"#;
    let with = exec_config(&dir, "hook", hook.to_str().unwrap(), extra);
    let without = exec_config(&dir, "other", "/bin/true", extra);
    let mut d = Dispatcher::start(&with, DeliveryState::default());
    let mut state = State::default();
    d.enqueue(AlertEvent::test_event("h", Severity::Warning, 1.0));
    d.commit(&mut state);
    std::thread::sleep(Duration::from_millis(500)); // the hook is running
    d.reload(&without); // its worker retires after the attempt in progress
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until && !(accepted.exists() && d.outbox.items().is_empty()) {
        d.process_acks();
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(dir.join("events.jsonl")).unwrap_or_default();
    assert!(accepted.exists(), "the receiver accepted it");
    assert!(!log.contains("delivery_failed"), "a false delivery_failed record:\n{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn channel_health_costs_no_allocation_per_outbox_item() {
    let dir = crate::testutil::tempdir("dispatch", "health-allocs");
    let config = exec_config(&dir, "hook", "/bin/false", "");
    let mut d = Dispatcher::start(&config, DeliveryState::default());
    d.outbox.push("hook", AlertEvent::test_event("h", Severity::Warning, 1.0));
    let mut h = BTreeMap::new();
    let one = crate::testutil::allocations(|| h = d.health());
    assert_eq!(h["hook"].pending, 1);
    for _ in 0..500 {
        d.outbox.push("hook", AlertEvent::test_event("h", Severity::Warning, 1.0));
    }
    let many = crate::testutil::allocations(|| h = d.health());
    assert_eq!(h["hook"].pending, 501);
    assert_eq!(many, one, "allocations grew with the outbox");
    let _ = std::fs::remove_dir_all(&dir);
}
