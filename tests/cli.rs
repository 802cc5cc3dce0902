//! The command line itself: `--version`, JSON logging, usage errors, the embedded default
//! config, and `sample` in its three formats.

mod common;

use common::{run, stderr, stdout};
use serde_json::Value;

#[test]
fn version_names_revision_linkage_and_features() {
    let o = run(&["--version"]);
    assert!(o.status.success());
    let text = stdout(&o);
    assert!(text.starts_with(&format!("hostwatch {} (rev ", env!("CARGO_PKG_VERSION"))), "{text}");
    assert!(text.contains("dynamic build") || text.contains("static build"), "{text}");
    let features = text.lines().nth(1).unwrap_or("");
    assert!(features.starts_with("features: "), "{text}");
    #[cfg(feature = "slack")]
    assert!(features.contains("slack"), "{text}");
}

#[test]
fn json_logs_are_one_object_per_line_with_fields() {
    let o = run(&["--log-format", "json", "--log-level", "info", "check"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let line = stderr(&o)
        .lines()
        .find(|l| l.contains("config is valid"))
        .map(str::to_string)
        .expect("a log line");
    let v: Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(v["level"], "INFO");
    assert!(v["ts"].as_str().unwrap().ends_with('Z'));
    assert!(v["target"].as_str().unwrap().starts_with("hostwatch"));
    assert_eq!(v["message"], "config is valid");
    assert_eq!(v["fields"]["source"], "<embedded default>");
    assert_eq!(v["fields"]["rules"], 9);
}

#[test]
fn bad_flag_values_are_usage_errors() {
    for (args, needle) in [
        (vec!["--log-format", "xml", "check"], "unknown log format \"xml\""),
        (vec!["--log-level", "loud", "check"], "unknown log level \"loud\""),
        (vec!["sample", "--format", "csv"], "--format: unknown format \"csv\""),
        (vec!["sample", "--every", "5 parsecs"], "--every: "),
        (vec!["test-notify", "nope"], "no channel named \"nope\""),
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn a_command_line_that_cannot_be_parsed_is_unknown_for_the_nagios_commands() {
    for args in [
        vec!["once", "--no-such-flag"],
        vec!["--log-level", "info", "status", "--bogus"],
        vec!["-c", "/nonexistent.json", "once", "extra"],
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stderr(&o));
    }
    let o = run(&["sample", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

#[test]
fn the_embedded_default_config_is_valid_and_carries_the_seed_rules() {
    let o = run(&["check"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).expect("effective config JSON");
    let names: Vec<&str> =
        v["rules"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "cpu_total",
            "cpu_core",
            "mem_used",
            "mem_available",
            "swap_used",
            "disk_used",
            "disk_inodes",
            "iowait",
            "tcp_established"
        ]
    );
    assert_eq!(v["interval"], "5s");
}

#[test]
fn sample_prints_a_table_json_and_json_lines() {
    let table = run(&["sample", "--over", "200ms"]);
    assert!(table.status.success(), "{}", stderr(&table));
    let text = stdout(&table);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("METRIC") && lines[0].ends_with("VALUE"), "{text}");
    let width = lines[0].len();
    assert!(lines.iter().all(|l| l.chars().count() == width), "columns are aligned:\n{text}");
    assert!(lines.iter().any(|l| l.starts_with("cpu.usage ") && l.ends_with('%')), "{text}");
    assert!(lines.iter().any(|l| l.starts_with("mem.available ") && l.ends_with("iB")), "{text}");

    let json = run(&["sample", "--format", "json", "--over", "200ms"]);
    let v: Value = serde_json::from_str(&stdout(&json)).expect("one JSON document");
    assert!(v["ts"].as_f64().unwrap() > 1.6e9);
    assert!(v["metrics"]["cpu.usage"].is_number());
    assert!(v["unsupported"].is_array());

    let jsonl = run(&["sample", "--format", "jsonl", "--every", "200ms", "--count", "2"]);
    let docs = common::json_lines(&stdout(&jsonl));
    assert_eq!(docs.len(), 2);
    assert!(docs[1]["ts"].as_f64().unwrap() > docs[0]["ts"].as_f64().unwrap());
    assert!(docs.iter().all(|d| d["metrics"]["mem.used_percent"].is_number()));
}
