//! `hostwatch test-rules`: the shipped rule tests (tests/rules/) pass through the binary; a
//! broken expectation fails with a diff naming what was expected and what came; an invalid
//! test file is a config error at its line and column; inline rules, recorded samples and
//! the environment's overrides behave as documented.

mod common;

use common::{bin, run, stderr, stdout, tempdir, write};
use std::path::{Path, PathBuf};
use std::process::Command;

fn shipped() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rules");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/rules")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "expected the shipped rule tests in {}", dir.display());
    files
}

fn test_rules(files: &[&Path]) -> std::process::Output {
    let mut args = vec!["test-rules"];
    args.extend(files.iter().map(|p| p.to_str().unwrap()));
    run(&args)
}

#[test]
fn the_shipped_rule_tests_pass() {
    for file in shipped() {
        let o = test_rules(&[&file]);
        assert_eq!(o.status.code(), Some(0), "{}: {}{}", file.display(), stdout(&o), stderr(&o));
        let summary = format!("tests passed in {}", file.display());
        assert!(stdout(&o).contains(&summary), "{}", stdout(&o));
    }
}

#[test]
fn a_wrong_severity_or_offset_fails_with_a_diff() {
    let original = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rules/default_rules.json");
    let text = std::fs::read_to_string(&original).unwrap();
    let firing = r#"{"at": "2m5s", "rule": "cpu_total", "event": "firing", "severity": "warning"}"#;
    let resolved =
        r#"{"at": "5m45s", "rule": "cpu_total", "event": "resolved", "severity": "critical"}"#;
    assert!(text.contains(firing) && text.contains(resolved), "default_rules.json changed");
    let broken = text
        .replace(firing, &firing.replace("warning", "critical"))
        .replace(resolved, &resolved.replace("5m45s", "5m50s"));
    let dir = tempdir("test-rules-broken");
    let file = write(&dir, "default_rules.json", &broken);
    let o = test_rules(&[&file]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{}", stderr(&o));
    assert!(out.contains("FAIL ") && out.contains("(tests[0])"), "{out}");
    for line in [
        "  - expected at 2m5s: cpu_total firing critical\n",
        "  + got at 2m5s: cpu_total firing warning cpu.usage (value 90.0%)\n",
        "    at 4m40s: cpu_total escalated critical cpu.usage (value 97.0%)\n",
        "  + got at 5m45s: cpu_total resolved critical cpu.usage (value 50.0%)\n",
        "  - expected at 5m50s: cpu_total resolved critical\n",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    assert!(out.contains(&format!("1 of 13 tests failed in {}", file.display())), "{out}");
    // Every file runs; the exit code says the worst.
    let good = shipped();
    let o = test_rules(&[&good[0], &file]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stdout(&o).contains(&format!("passed in {}", good[0].display())), "{}", stdout(&o));
}

#[test]
fn an_invalid_test_file_is_a_config_error_at_its_place() {
    let dir = tempdir("test-rules-invalid");
    let text = r#"{
  "tests": [
    {"name": "typo", "series": {"cpu.usge": "10 95x30"},
     "expect": [{"at": "2m", "rule": "cpu_totl", "event": "firing", "severity": "warning",
                 "sevrity": "x"}]}
  ]
}
"#;
    let file = write(&dir, "bad.json", text);
    let o = test_rules(&[&file]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{}{err}", stdout(&o));
    let name = file.display();
    for line in [
        format!(
            "{name}:3:33: tests[0].series[\"cpu.usge\"]: unknown metric \"cpu.usge\" (did you \
             mean \"cpu.usage\"?)"
        ),
        format!(
            "{name}:4:38: tests[0].expect[0].rule: no rule named \"cpu_totl\" (did you mean \
             \"cpu_total\"?)"
        ),
        format!(
            "{name}:5:18: tests[0].expect[0].sevrity: unknown key (did you mean \"severity\"?)"
        ),
    ] {
        assert!(err.lines().any(|l| l == line), "missing {line:?} in:\n{err}");
    }
    for (text, needle) in [
        ("{\"tests\": [], \"bogus\": 1}", ":1:15: bogus: unknown key"),
        ("{\"tests\": [}", ":1:12: "),
        (
            "{\"tests\": [{\"series\": {\"cpu.usage\": \"1 2x\"}, \"expect\": []}]}",
            "tests[0].series[\"cpu.usage\"]: \"2x\": expected a whole number after 'x'",
        ),
        (
            "{\"tests\": [{\"series\": {\"cpu.usage\": \"1\"}, \"expect\": [{\"at\": \"7s\", \
             \"rule\": \"cpu_total\", \"event\": \"firing\", \"severity\": \"warning\"}]}]}",
            "tests[0].expect[0].at: \"7s\" is not a multiple of the interval 5s",
        ),
        (
            "{\"tests\": [{\"series\": {\"cpu.usage\": \"1\"}, \"expect\": [{\"at\": \"0s\", \
             \"rule\": \"cpu_total\", \"event\": \"paging\", \"severity\": \"warning\"}]}]}",
            "tests[0].expect[0].event: unknown event \"paging\" (expected one of firing,",
        ),
        (
            "{\"config\": \"missing.json\", \"tests\": []}",
            ":1:12: config: cannot read the config file",
        ),
    ] {
        let file = write(&dir, "bad.json", text);
        let o = test_rules(&[&file]);
        assert_eq!(o.status.code(), Some(2), "{text}: {}", stderr(&o));
        let want = format!(
            "{}{needle}",
            if needle.starts_with(':') { name.to_string() } else { String::new() }
        );
        assert!(stderr(&o).contains(&want), "{text}: wanted {want:?} in {}", stderr(&o));
    }
    let o = run(&["test-rules", dir.join("nope.json").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nope.json: cannot read the test file: "), "{}", stderr(&o));
    let o = run(&["test-rules", "--bogus"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn inline_rules_run_with_their_own_interval_and_their_errors_point_into_the_test_file() {
    let dir = tempdir("test-rules-inline");
    let text = r#"{
  "interval": "1m",
  "rules": [{"name": "root_full", "metric": "disk.used_percent", "match": {"mount": "/"},
             "warn": "> 90", "for": "3m"}],
  "tests": [
    {"series": {"disk.used_percent{mount=/}": "50 95x3 50", "disk.used_percent{mount=/var}": "95x5"},
     "expect": [
       {"at": "4m", "rule": "root_full", "series": "disk.used_percent{mount=/}", "event": "firing", "severity": "warning"},
       {"at": "5m", "rule": "root_full", "event": "resolved", "severity": "warning"}
     ]}
  ]
}
"#;
    let file = write(&dir, "inline.json", text);
    let o = test_rules(&[&file]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("1 test passed in "), "{}", stdout(&o));
    // The environment's interval override does not apply to a rule test.
    let o = Command::new(bin())
        .args(["test-rules", file.to_str().unwrap()])
        .env("HOSTWATCH_INTERVAL", "5s")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));

    let file = write(&dir, "inline.json", &text.replace("\"for\": \"3m\"", "\"for\": \"30s\""));
    let o = test_rules(&[&file]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let want = format!(
        "{}:4:37: rules[0].for: window 30s is shorter than the interval 1m",
        file.display()
    );
    assert!(stderr(&o).contains(&want), "wanted {want:?} in {}", stderr(&o));
}

#[test]
fn recorded_samples_run_on_their_own_times_from_the_first_record() {
    let dir = tempdir("test-rules-samples");
    let mut lines = String::new();
    for k in 0..8 {
        // A little late or early, as a recording is.
        let ts = 1_764_680_000.0 + 5.0 * f64::from(k) + [0.02, -0.03][k as usize % 2];
        let used = if (2..6).contains(&k) { 97.0 } else { 50.0 };
        lines.push_str(&format!(
            "{{\"ts\": {ts}, \"host\": \"h\", \"metrics\": {{\"disk.used_percent{{mount=/}}\": {used}, \"cpu.usage\": null}}}}\n"
        ));
    }
    write(&dir, "rec.jsonl", &lines);
    let text = r#"{"tests": [{"samples": "rec.jsonl", "expect": [
      {"at": "10s", "rule": "disk_used", "event": "firing", "severity": "critical"},
      {"at": "30s", "rule": "disk_used", "event": "resolved", "severity": "critical"}]}]}"#;
    let file = write(&dir, "rec.json", text);
    let o = test_rules(&[&file]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));

    write(&dir, "rec.jsonl", "{\"ts\": 1, \"metrics\": {\"cpu.usage\": \"high\"}}\n");
    let o = test_rules(&[&file]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("rec.jsonl:1: metrics.\"cpu.usage\": expected a number"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_production_config_tests_without_its_secrets_and_huge_series_are_refused() {
    let dir = tempdir("test-rules-secrets");
    let config = r#"{"interval": "10s",
  "rules": [{"name": "root_full", "metric": "disk.used_percent", "match": {"mount": "/"},
             "warn": "> 90", "channels": ["ops"]}],
  "channels": {"ops": {"type": "slack", "webhook_url": "${HOSTWATCH_IT_UNSET_SLACK_URL}"}},
  "routes": [{"channels": ["ops"]}],
  "api": {"listen": "127.0.0.1:9184", "token": "${HOSTWATCH_IT_UNSET_TOKEN}"}}"#;
    write(&dir, "config.json", config);
    let text = r#"{"config": "config.json", "tests": [
    {"series": {"disk.used_percent{mount=/}": "50 95"},
     "expect": [{"at": "10s", "rule": "root_full", "event": "firing", "severity": "warning"}]}]}"#;
    let file = write(&dir, "prod.json", text);
    let o = Command::new(bin())
        .args(["test-rules", file.to_str().unwrap()])
        .env_remove("HOSTWATCH_IT_UNSET_SLACK_URL")
        .env_remove("HOSTWATCH_IT_UNSET_TOKEN")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    // Many series of a million values each: refused with a config error, not gigabytes.
    let series: Vec<String> =
        (0..300).map(|i| format!("\"disk.used_percent{{mount=/m{i}}}\": \"1x999999\"")).collect();
    let text =
        format!("{{\"tests\": [{{\"series\": {{{}}}, \"expect\": []}}]}}", series.join(", "));
    let file = write(&dir, "huge.json", &text);
    let o = test_rules(&[&file]);
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("of one file may have at most 4000000 values together"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_test_file_may_name_a_yaml_config() {
    let dir = tempdir("test-rules-yaml");
    let config = "interval: 10s\nrules:\n  - name: root_full\n    metric: disk.used_percent\n    match: {mount: /}\n    warn: \"> 90\"\n";
    write(&dir, "config.yaml", config);
    let text = r#"{"config": "config.yaml", "tests": [
    {"series": {"disk.used_percent{mount=/}": "50 95"},
     "expect": [{"at": "10s", "rule": "root_full", "event": "firing", "severity": "warning"}]}]}"#;
    let file = write(&dir, "t.json", text);
    let o = test_rules(&[&file]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    // Its errors are the YAML file's, at their YAML positions.
    write(&dir, "config.yaml", &config.replace("\"> 90\"", "90"));
    let o = test_rules(&[&file]);
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains(
            "config.yaml:6:11: rules[0].warn: expected a string like \"> 85\", found a number"
        ),
        "{}",
        stderr(&o)
    );
}
