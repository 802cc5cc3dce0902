//! Which rules are in effect: a config without a `rules` key keeps the embedded defaults (a
//! config that only adds a channel still watches the host), `"rules": []` means none and says
//! so, and `check` names the rule set. Also the texts that must read honestly: `once`'s
//! summary counts pending alerts, and a resolution without `clear` shows the condition that
//! held (`<= 80`), not the firing threshold.

mod common;

use common::{run, stderr, stdout, tempdir, write};
use serde_json::{Value, json};

#[test]
fn a_config_with_only_channels_keeps_the_default_rules_and_check_says_so() {
    let dir = tempdir("rule-sets-channels");
    let cfg = json!({"state_dir": dir.join("state").display().to_string(),
        "channels": {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}},
        "routes": [{"rule": "disk_*", "channels": ["hook"]}]});
    let path = write(&dir, "config.json", &cfg.to_string());
    let o = run(&["check", "--config", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let effective: Value = serde_json::from_str(&stdout(&o)).expect("check prints JSON");
    let names: Vec<&str> = effective["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(names.len() >= 8, "{names:?}");
    assert!(names.contains(&"disk_used") && names.contains(&"cpu_total"), "{names:?}");
    let disk = effective["rules"].as_array().unwrap().iter().find(|r| r["name"] == "disk_used");
    assert!(
        disk.unwrap().get("match").is_none_or(|m| m.as_object().is_some_and(|o| o.is_empty())),
        "the default disk rule watches every mount: {disk:?}"
    );
    let err = stderr(&o);
    assert!(
        err.contains(&format!("{} rules in effect, from the embedded default rules", names.len())),
        "{err}"
    );
}

#[test]
fn an_empty_rules_list_means_none_and_every_command_warns() {
    let dir = tempdir("rule-sets-empty");
    let cfg = json!({"state_dir": dir.join("state").display().to_string(), "rules": []});
    let path = write(&dir, "config.json", &cfg.to_string());
    let o = run(&["check", "--config", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let effective: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(effective["rules"], json!([]));
    let err = stderr(&o);
    assert!(err.contains("0 rules in effect, from no rules"), "{err}");
    assert!(err.contains("nothing on this host is monitored"), "{err}");
    let o = run(&["once", "--config", path.to_str().unwrap(), "--first-interval", "100ms"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("nothing on this host is monitored"), "{}", stderr(&o));
}

#[test]
fn the_config_s_own_rules_replace_the_defaults() {
    let dir = tempdir("rule-sets-own");
    let cfg = json!({"state_dir": dir.join("state").display().to_string(),
        "rules": [{"name": "mine", "metric": "cpu.usage", "warn": "> 99"}]});
    let path = write(&dir, "config.json", &cfg.to_string());
    let o = run(&["check", "--config", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("1 rule in effect, from the config's rules"), "{}", stderr(&o));
}

#[test]
fn once_counts_pending_alerts_and_a_resolution_shows_the_condition_that_held() {
    let dir = tempdir("rule-sets-once");
    let state = dir.join("state");
    let write_rules = |warn: &str, window: Option<&str>| {
        let mut rule = json!({"name": "mem_any", "metric": "mem.used_percent", "warn": warn});
        if let Some(w) = window {
            rule["for"] = json!(w);
        }
        let cfg = json!({"host": "cron-host", "interval": "1s",
            "state_dir": state.display().to_string(), "rules": [rule]});
        write(&dir, "config.json", &cfg.to_string())
    };
    // Pending: the threshold holds, its `for` window does not yet.
    let path = write_rules(">= 0", Some("1h"));
    let o = run(&["once", "--config", path.to_str().unwrap(), "--first-interval", "100ms"]);
    let text = stdout(&o);
    assert!(text.contains(": 0 firing, 1 pending of 1 series"), "{text}");

    // Firing, then resolved by a threshold nothing meets: the resolution's threshold is the
    // negated condition that held.
    std::fs::remove_dir_all(&state).unwrap();
    let path = write_rules(">= 0", None);
    let o = run(&["once", "--config", path.to_str().unwrap(), "--first-interval", "100ms"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains(": 1 firing, 0 pending of 1 series"), "{}", stdout(&o));
    let path = write_rules("> 100", None);
    let o = run(&[
        "once",
        "--config",
        path.to_str().unwrap(),
        "--first-interval",
        "100ms",
        "--format",
        "json",
    ]);
    let doc: Value = serde_json::from_str(&stdout(&o)).expect("json");
    let n = &doc["notifications"][0];
    assert_eq!(n["event"], "resolved", "{doc}");
    assert_eq!(n["threshold"], "<= 100", "{doc}");
}
