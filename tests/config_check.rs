//! `hostwatch check --config FILE` on real files: the documented `config.json` passes with its
//! secrets redacted, `config.yaml` gives the same effective config, `--format yaml` prints
//! one that reads back to the JSON output, and every broken fixture in
//! `tests/fixtures/config/` (JSON and its YAML twin) fails with exit 2 and exactly the errors
//! in its `.expected` (`.yaml.expected`) file (one line each, on stderr).

use std::path::Path;
use std::process::{Command, Output};

/// Variables the fixtures and the example read; removed so the host's environment cannot
/// change the outcome.
const ENV_VARS: &[&str] = &[
    "HOSTWATCH_HOST",
    "HOSTWATCH_INTERVAL",
    "HOSTWATCH_STATE_DIR",
    "HOSTWATCH_TEST_UNSET_WEBHOOK_URL",
    "SLACK_WEBHOOK_URL",
    "SLACK_BOT_TOKEN",
    "TEAMS_WEBHOOK_URL",
    "SMTP_PASSWORD",
    "HOOK_TOKEN",
    "CUSTOM_API_KEY",
];

/// Each broken fixture and what it proves.
const FIXTURES: &[(&str, &str)] = &[
    ("window_too_long", "a window whose ring would be absurdly large"),
    ("syntax_missing_comma", "a JSON syntax error names line and column"),
    ("trailing_comma", "a trailing comma is a syntax error"),
    ("duplicate_json_key", "a key written twice is an error"),
    ("unknown_top_key", "an unknown top-level key gets a did-you-mean"),
    ("unknown_rule_key", "an unknown rule key gets a did-you-mean"),
    ("bad_unit", "an unknown unit lists the units the metric takes"),
    ("bad_operator", "a threshold operator must be >, >=, < or <="),
    ("missing_env_var", "a ${VAR} that is not set is an error naming it"),
    ("unknown_metric", "an unknown metric gets a did-you-mean"),
    ("bad_duration", "a duration with an unknown unit"),
    ("window_shorter_than_interval", "a window shorter than the interval"),
    ("occurrences_n_above_m", "occurrences N/M with N > M"),
    ("clear_wrong_side", "clear overlapping warn"),
    ("route_unknown_channel", "a route naming a channel that does not exist"),
    ("match_wrong_label", "match on a label the metric lacks, or on a metric without labels"),
    ("duplicate_rule_name", "two rules with one name"),
    ("wrong_type", "a value of the wrong JSON type says what was expected"),
    ("unknown_channel_type", "an unknown channel type lists the known ones"),
    ("many_errors", "every error of a file is reported, in file order"),
];

fn check(config: &str) -> Output {
    check_args(&["--config", config])
}

/// `hostwatch check ARGS…` in the repository, without the variables of [`ENV_VARS`].
fn check_args(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hostwatch"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).arg("check").args(args);
    for var in ENV_VARS {
        cmd.env_remove(var);
    }
    cmd.output().expect("run hostwatch")
}

/// `check --syntax-only`: the file, not its plugin files and exec programs.
fn check_syntax_only(config: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hostwatch"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args([
        "check",
        "--syntax-only",
        "--config",
        config,
    ]);
    for var in ENV_VARS {
        cmd.env_remove(var);
    }
    cmd.output().expect("run hostwatch")
}

#[test]
fn the_documented_example_passes_with_secrets_redacted() {
    // The example names a plugin and a hook this host does not have.
    let out = check_syntax_only("config.json");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let effective: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is JSON");
    assert!(stdout.contains("<redacted>"));
    assert_eq!(effective["channels"]["ops"]["webhook_url"], "https://hooks.slack.com/<redacted>");
    assert_eq!(effective["channels"]["oncall"]["password"], "<redacted>");
    for secret in ["/services/T000/B000/XXXX", "xoxb-", "sig=XXXX", "change-me", "Bearer"] {
        assert!(!stdout.contains(secret), "{secret:?} leaked into:\n{stdout}");
    }
    assert_eq!(effective["rules"][0]["for"], "2m");
    assert_eq!(effective["rules"][0]["warn"], "> 85");
}

#[test]
fn every_broken_fixture_fails_with_its_exact_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixture directory")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".json").map(str::to_owned)
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = FIXTURES.iter().map(|(n, _)| (*n).to_owned()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "every fixture is listed in FIXTURES, and only those");

    let mut failures = Vec::new();
    let twins = FIXTURES.iter().flat_map(|(name, proves)| {
        [
            (format!("{name}.json"), format!("{name}.expected"), *proves),
            (format!("{name}.yaml"), format!("{name}.yaml.expected"), *proves),
        ]
    });
    for (name, expected, proves) in twins {
        let config = format!("tests/fixtures/config/{name}");
        let expected = std::fs::read_to_string(dir.join(&expected))
            .unwrap_or_else(|e| panic!("{expected}: {e}"));
        let out = check(&config);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Every expected line, in order, and no other line about this file.
        let got: Vec<&str> = stderr.lines().filter(|l| l.starts_with(&config)).collect();
        let want: Vec<&str> = expected.lines().collect();
        if out.status.code() != Some(2) || got != want {
            failures.push(format!(
                "{name} ({proves}): exit {:?}\n  expected:\n    {}\n  stderr:\n    {}",
                out.status.code(),
                want.join("\n    "),
                stderr.lines().collect::<Vec<_>>().join("\n    ")
            ));
        }
        assert!(out.stdout.is_empty(), "{name}: nothing on stdout when the config is invalid");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_missing_config_file_is_named_with_the_os_error() {
    let out = check("tests/fixtures/config/does-not-exist.json");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.lines().any(|l| l.starts_with(
            "tests/fixtures/config/does-not-exist.json: cannot read the config file: No such file or directory"
        )),
        "{stderr}"
    );
}

#[test]
fn the_yaml_example_gives_the_json_examples_effective_config() {
    let json = check_syntax_only("config.json");
    let yaml = check_syntax_only("config.yaml");
    assert_eq!((json.status.code(), yaml.status.code()), (Some(0), Some(0)));
    let (json, yaml) =
        (String::from_utf8_lossy(&json.stdout), String::from_utf8_lossy(&yaml.stdout));
    assert!(json.len() > 1000, "{json}");
    assert_eq!(yaml, json);
}

#[test]
fn check_format_yaml_prints_the_effective_config_that_reads_back_the_same() {
    for config in ["config.json", "config.yaml"] {
        let json = check_args(&["--syntax-only", "--config", config]);
        let yaml = check_args(&["--syntax-only", "--format", "yaml", "--config", config]);
        assert_eq!(yaml.status.code(), Some(0), "{}", String::from_utf8_lossy(&yaml.stderr));
        let (json, yaml) =
            (String::from_utf8(json.stdout).unwrap(), String::from_utf8(yaml.stdout).unwrap());
        assert!(yaml.contains("\nrules:\n  - crit: \"> 95\"\n"), "{yaml}");
        for secret in ["/services/T000/B000/XXXX", "xoxb-", "sig=XXXX", "change-me", "Bearer"] {
            assert!(!yaml.contains(secret), "{secret:?} leaked into:\n{yaml}");
        }
        let from_yaml = hostwatch::config::yaml::parse(&yaml).expect("the YAML output parses");
        let from_json = hostwatch::config::json::parse(&json).expect("the JSON output parses");
        assert_eq!(from_yaml.to_value(), from_json.to_value(), "{config}");
    }
    let out = check_args(&["--format", "toml", "--config", "config.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--format: unknown format \"toml\" (expected json or yaml)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
