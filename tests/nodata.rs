//! No data is not "resolved": a real tmpfs filled past a rule's threshold fires through
//! `once`; unmounted, the next run sends one `nodata` ("mount disappeared") and the alert
//! stays open across runs; mounted again and healthy, the same episode resolves with "data is
//! back". An `absent` rule fires when its mount is missing. Needs root for `mount -t tmpfs`.

mod common;

use common::tmpfs::Tmpfs;
use common::{run, stderr, stdout, tempdir, write};
use serde_json::{Value, json};
use std::path::Path;

fn once(config: &Path) -> (Option<i32>, Value) {
    let o = run(&[
        "once",
        "--config",
        config.to_str().unwrap(),
        "--format",
        "json",
        "--first-interval",
        "200ms",
    ]);
    let doc: Value = serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("once printed no JSON ({e}): {}", stderr(&o)));
    (o.status.code(), doc)
}

/// The notifications of `rule` in a `once` document.
fn of<'a>(doc: &'a Value, rule: &str) -> Vec<&'a Value> {
    doc["notifications"].as_array().unwrap().iter().filter(|n| n["rule"] == rule).collect()
}

#[test]
fn a_mount_that_disappears_while_firing_has_no_data_then_resolves_when_back_and_healthy() {
    let path = std::env::temp_dir().join(format!("hostwatch-nodata-{}", std::process::id()));
    let fs = Tmpfs::mount_with(&path, "size=4m");
    if !fs.mounted {
        eprintln!("!!!!! SKIPPED nodata: mount -t tmpfs failed (not root?)");
        return;
    }
    std::fs::write(path.join("fill"), vec![1u8; 3 << 20]).expect("fill the tmpfs");
    let mount = path.display().to_string();
    let dir = tempdir("nodata-once");
    let cfg = json!({"host": "nodata-host", "interval": "1s",
        "state_dir": dir.join("state").display().to_string(),
        "collect": {"include": {"mount": [mount]}},
        "rules": [
            {"name": "scratch", "metric": "disk.used_percent", "match": {"mount": mount},
             "warn": "> 50"},
            {"name": "scratch_mounted", "metric": "disk.used_percent",
             "match": {"mount": mount}, "absent": "1s"}]});
    let config = write(&dir, "config.json", &cfg.to_string());
    let series = format!("disk.used_percent{{mount={mount}}}");

    let (code, doc) = once(&config);
    assert_eq!(code, Some(1), "warning: {doc}");
    let fired = of(&doc, "scratch");
    assert_eq!((fired.len(), &fired[0]["event"]), (1, &json!("firing")), "{doc}");
    let episode = fired[0]["episode_key"].clone();

    // Unmounted while firing: one `nodata`, never "resolved"; the alert stays open.
    drop(fs);
    let (code, doc) = once(&config);
    let lost = of(&doc, "scratch");
    assert_eq!(lost.len(), 1, "{doc}");
    let n = lost[0];
    assert_eq!(
        (&n["event"], &n["series"], &n["reason"]),
        (&json!("nodata"), &json!(series), &json!("mount disappeared")),
        "{doc}"
    );
    assert_eq!(n["episode_key"], episode, "the same episode");
    assert!(n["last_seen"].as_f64().is_some(), "{n}");
    assert!(code.is_some_and(|c| c >= 1), "still a problem, not OK: {doc}");
    // The mount must exist: missing for its `absent` (1 s), the absent rule fires (critical:
    // it has no thresholds).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (code, doc) = once(&config);
    assert!(of(&doc, "scratch").is_empty(), "nodata is said once: {doc}");
    let absent = of(&doc, "scratch_mounted");
    assert_eq!(absent.len(), 1, "{doc}");
    assert_eq!(absent[0]["series"], format!("absent({series})"));
    assert_eq!(
        (&absent[0]["event"], &absent[0]["severity"]),
        (&json!("firing"), &json!("critical"))
    );
    assert_eq!(code, Some(2), "{doc}");

    // Mounted again and healthy: the same episode resolves, saying why.
    let fs = Tmpfs::mount_with(&path, "size=4m");
    assert!(fs.mounted);
    let (code, doc) = once(&config);
    let back = of(&doc, "scratch");
    assert_eq!(back.len(), 1, "{doc}");
    assert_eq!(
        (&back[0]["event"], &back[0]["reason"]),
        (&json!("resolved"), &json!("data is back"))
    );
    assert_eq!(back[0]["episode_key"], episode);
    assert_eq!(back[0]["threshold"], "<= 50", "the clear condition that held");
    let absent = of(&doc, "scratch_mounted");
    assert_eq!(absent.len(), 1, "{doc}");
    assert_eq!(absent[0]["event"], "resolved");
    assert_eq!(code, Some(0), "{doc}");
}
