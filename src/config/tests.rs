//! Tests of loading as a whole: the embedded default, the documented example, the broken
//! fixtures shared with `tests/config_check.rs`, and checks that span several modules.

use super::channels::{EmailTls, SlackTarget, TeamsFormat, WebhookFormat};
use super::*;
use std::path::Path;

fn no_env(_: &str) -> Option<String> {
    None
}

fn load_ok(text: &str) -> Config {
    match load_str(text, "t.json", &no_env) {
        Ok(c) => c,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

/// Every error line for `text`, without the `t.json:` prefix.
fn errors(text: &str) -> Vec<String> {
    let e = load_str(text, "t.json", &no_env).expect_err("expected errors");
    e.0.iter().map(|e| e.to_string().trim_start_matches("t.json:").to_owned()).collect()
}

fn one_error(text: &str) -> String {
    let all = errors(text);
    assert_eq!(all.len(), 1, "expected one error, got {all:#?}");
    all.into_iter().next().unwrap()
}

/// A config with one rule written as `rule`.
fn rule(rule: &str) -> String {
    format!("{{\"rules\": [{rule}]}}")
}

#[test]
fn the_embedded_default_loads_with_the_seed_thresholds() {
    let c = load_str(DEFAULT_JSON, EMBEDDED_SOURCE, &no_env).unwrap();
    assert_eq!(c.source, "<embedded default>");
    assert_eq!(c.interval, Duration::from_secs(5));
    assert_eq!(c.state_dir, Path::new("/var/lib/hostwatch"));
    assert!(!c.host.is_empty());
    let names: Vec<&str> = c.rules.iter().map(|r| r.name.as_str()).collect();
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
    let cpu = &c.rules[0];
    assert_eq!((cpu.metric, cpu.window), (Metric::CpuUsage, Window::For(Duration::from_secs(120))));
    assert_eq!(cpu.warn.as_ref().map(|t| (t.op, t.value)), Some((Op::Gt, 85.0)));
    assert_eq!(cpu.crit.as_ref().map(|t| (t.op, t.value)), Some((Op::Gt, 95.0)));
    assert_eq!(c.rules[1].window, Window::For(Duration::from_secs(60)));
    assert_eq!(c.rules[3].crit.as_ref().map(|t| (t.op, t.value)), Some((Op::Lt, 500e6)));
    let disk = &c.rules[5];
    assert!(disk.matchers.is_empty(), "the default disk rule watches every mount");
    assert_eq!(disk.clear.as_ref().map(|t| t.value), Some(85.0));
    assert_eq!(disk.crit.as_ref().map(|t| t.value), Some(95.0));
    assert_eq!(c.rules[6].metric, Metric::DiskInodesUsedPercent);
    assert!(c.rules[6].matchers.is_empty(), "the default inode rule watches every mount");
    assert_eq!(c.rules[7].window, Window::Avg(Duration::from_secs(60)));
    assert_eq!(c.rules[8].window, Window::Occurrences { n: 3, m: 5 });
    assert_eq!(
        c.escalation,
        Escalation {
            remind_every: Some(Duration::from_secs(1800)),
            critical_after: Some(Duration::from_secs(900)),
        }
    );
    assert!(c.channels.is_empty() && c.routes.is_empty());
}

#[test]
fn the_documented_example_loads_and_redacts_its_secrets() {
    let c = load_str(include_str!("../../config.json"), "config.json", &no_env).unwrap();
    let types: Vec<&str> = c.channels.values().map(|ch| ch.kind.type_name()).collect();
    for t in channels::CHANNEL_TYPES {
        assert!(types.contains(t), "config.json has no {t} channel");
    }
    let forms: Vec<Window> = c.rules.iter().map(|r| r.window).collect();
    for form in ["For", "Avg", "Max", "Min", "Occurrences", "Latest"] {
        assert!(forms.iter().any(|w| format!("{w:?}").starts_with(form)), "no {form} window");
    }
    let text = serde_json::to_string_pretty(&c.to_effective_json()).unwrap();
    assert!(text.contains("\"https://hooks.slack.com/<redacted>\""));
    for secret in ["T000/B000", "xoxb-", "sig=XXXX", "change-me", "token=XXXX", "Bearer"] {
        assert!(!text.contains(secret), "{secret} leaked into:\n{text}");
    }
}

#[test]
fn the_example_takes_secrets_from_the_environment() {
    let env = |name: &str| match name {
        "SLACK_WEBHOOK_URL" => Some("https://hooks.slack.com/services/REAL/ONE".to_owned()),
        "SMTP_PASSWORD" => Some("hunter2".to_owned()),
        _ => None,
    };
    let c = load_str(include_str!("../../config.json"), "config.json", &env).unwrap();
    let ChannelKind::Slack(slack) = &c.channels["ops"].kind else { panic!("ops is not slack") };
    assert_eq!(
        slack.target,
        SlackTarget::Webhook { url: "https://hooks.slack.com/services/REAL/ONE".into() }
    );
    let ChannelKind::Email(mail) = &c.channels["oncall"].kind else { panic!("not email") };
    assert_eq!(mail.password.as_ref().map(Secret::expose), Some("hunter2"));
    let text = c.to_effective_json().to_string();
    assert!(!text.contains("REAL/ONE") && !text.contains("hunter2"));
}

#[test]
fn broken_fixtures_fail_with_their_expected_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config");
    let (mut json, mut yaml) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // `x.json` expects `x.expected`; its YAML twin `x.yaml` expects `x.yaml.expected`.
        let expected = match path.extension().and_then(|e| e.to_str()) {
            Some("json") => path.with_extension("expected"),
            Some("yaml") => dir.join(format!("{name}.expected")),
            _ => continue,
        };
        let source = format!("tests/fixtures/config/{name}");
        let text = std::fs::read_to_string(&path).unwrap();
        let expected = std::fs::read_to_string(&expected)
            .unwrap_or_else(|e| panic!("{name} has no expected errors file: {e}"));
        let got = load_str(&text, &source, &no_env).expect_err(&name).to_string();
        assert_eq!(got, expected.trim_end(), "{name}");
        let stem = name.rsplit_once('.').unwrap().0.to_owned();
        if name.ends_with(".json") { json.push(stem) } else { yaml.push(stem) }
    }
    json.sort();
    yaml.sort();
    assert!(json.len() >= 12, "only {} fixtures", json.len());
    assert_eq!(json, yaml, "every JSON fixture has a YAML twin, and only those");
}

#[test]
fn the_yaml_example_is_the_json_example() {
    let env = |name: &str| (name == "SMTP_PASSWORD").then(|| "hunter2".to_owned());
    let json = load_str(include_str!("../../config.json"), "config.json", &env).unwrap();
    let yaml = load_str(include_str!("../../config.yaml"), "config.yaml", &env).unwrap();
    assert_eq!(yaml.to_effective_json(), json.to_effective_json());
    assert_eq!(format!("{:?}", yaml.rules), format!("{:?}", json.rules));
}

#[test]
fn yaml_substitutes_variables_like_json_at_yaml_positions() {
    let env = |name: &str| match name {
        "HOOK" => Some("https://hooks.example.com/x".to_owned()),
        "HOSTWATCH_HOST" => Some("from-env".to_owned()),
        _ => None,
    };
    let text = "host: h\nchannels:\n  a: {type: webhook, url: \"${HOOK}\"}\n  b:\n    type: slack\n    webhook_url: ${NOPE}\n";
    let e = load_str(text, "t.yaml", &env).unwrap_err().to_string();
    assert_eq!(e, "t.yaml:6:18: channels.b.webhook_url: environment variable NOPE is not set");
    let ok = load_str("host: h\nstate_dir: ${DIR:-/tmp/x}$$\n", "t.yml", &env).unwrap();
    assert_eq!((ok.host.as_str(), ok.state_dir.to_str()), ("from-env", Some("/tmp/x$")));
}

#[test]
fn the_default_search_reads_json_first_then_yaml() {
    let dir = crate::testutil::tempdir("config", "default-search");
    let (json, yaml) = (dir.join("config.json"), dir.join("config.yaml"));
    assert!(first_existing(&[&json, &yaml]).is_none());
    std::fs::write(&yaml, "{}").unwrap();
    assert_eq!(first_existing(&[&json, &yaml]), Some((yaml.as_path(), vec![])));
    std::fs::write(&json, "{}").unwrap();
    assert_eq!(first_existing(&[&json, &yaml]), Some((json.as_path(), vec![yaml.as_path()])));
}

#[test]
fn an_unreadable_file_names_the_file_and_the_os_error() {
    let e = load(Some(Path::new("/nonexistent/hostwatch.json"))).unwrap_err().to_string();
    assert!(
        e.starts_with("/nonexistent/hostwatch.json: cannot read the config file: No such file"),
        "{e}"
    );
}

#[test]
fn missing_keys_take_their_defaults() {
    let c = load_ok("{}");
    assert_eq!(c.interval, DEFAULT_INTERVAL);
    assert_eq!(c.state_dir, default_state_dir());
    assert_eq!(c.host, system_host_name());
    assert_eq!(c.collect, CollectConfig::default());
    assert_eq!(c.escalation, Escalation::default());
    assert!(c.silences.is_empty());
    // No `rules` key: the embedded default rules, decoded with this config's interval.
    let defaults = load_ok(super::DEFAULT_JSON);
    let names = |c: &Config| c.rules.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&c), names(&defaults));
    assert_eq!(c.rule_set, RuleSet::Embedded);
    let none = load_ok("{\"rules\": []}");
    assert!(none.rules.is_empty());
    assert_eq!(none.rule_set, RuleSet::None);
}

#[test]
fn default_rules_that_cannot_work_at_this_interval_say_how_to_replace_them() {
    let errors = load_str("{\"interval\": \"10m\"}", "long.json", &|_| None).unwrap_err();
    let text = errors.to_string();
    assert!(text.contains("<embedded default rules>:"), "{text}");
    assert!(text.contains("add \"rules\" to replace them"), "{text}");
    // Routes may name a default rule.
    let c = load_ok(
        "{\"channels\": {\"x\": {\"type\": \"exec\", \"command\": [\"/bin/true\"]}}, \
         \"routes\": [{\"rule\": \"disk_used\", \"channels\": [\"x\"]}]}",
    );
    assert_eq!(c.routes.len(), 1);
}

#[test]
fn hostwatch_variables_override_top_level_keys() {
    let env = |name: &str| match name {
        "HOSTWATCH_HOST" => Some("db-7".to_owned()),
        "HOSTWATCH_INTERVAL" => Some("1m".to_owned()),
        "HOSTWATCH_STATE_DIR" => Some("/srv/hw".to_owned()),
        _ => None,
    };
    let c = load_str("{\"host\": \"web-01\", \"interval\": \"5s\"}", "t.json", &env).unwrap();
    assert_eq!(
        (c.host.as_str(), c.interval, c.state_dir.as_path()),
        ("db-7", Duration::from_secs(60), Path::new("/srv/hw"))
    );
}

#[test]
fn a_bad_override_is_reported_against_the_variable() {
    let env = |name: &str| (name == "HOSTWATCH_INTERVAL").then(|| "5 mins".to_owned());
    let e = load_str("{}", "t.json", &env).unwrap_err().to_string();
    assert_eq!(
        e,
        "environment HOSTWATCH_INTERVAL: invalid duration \"5 mins\": unknown unit \"mins\" (expected ms, s, m, h or d)"
    );
    // An overridden interval also bounds the windows.
    let env = |name: &str| (name == "HOSTWATCH_INTERVAL").then(|| "2m".to_owned());
    let text =
        rule("{\"name\": \"r\", \"metric\": \"cpu.usage\", \"warn\": \"> 1\", \"for\": \"1m\"}");
    let e = load_str(&text, "t.json", &env).unwrap_err().to_string();
    assert!(
        e.ends_with(
            "window 1m is shorter than the interval 2m (a window must span at least one interval)"
        ),
        "{e}"
    );
}

#[test]
fn a_missing_variable_hides_the_errors_it_causes() {
    let text = "{\"channels\": {\"x\": {\"type\": \"webhook\", \"url\": \"${NOPE}\"}}}";
    assert_eq!(one_error(text), "1:47: channels.x.url: environment variable NOPE is not set");
}

#[test]
fn unknown_keys_are_reported_at_every_level() {
    let text = r#"{
  "collect": {"backnd": "auto"},
  "rules": [{"name": "r", "metric": "cpu.usage", "warn": "> 1", "discription": "x"}],
  "escalation": {"critical_afer": "1m"},
  "channels": {"c": {"type": "exec", "command": ["x"], "timout": "1s"}},
  "routes": [{"channels": ["c"], "severty": "warning", "match": {"mnt": "/"}}],
  "silences": [{"until": "2030-01-01T00:00:00Z", "coment": "x"}]
}"#;
    assert_eq!(
        errors(text),
        [
            "2:15: collect.backnd: unknown key (did you mean \"backend\"?)",
            "3:65: rules[0].discription: unknown key (did you mean \"description\"?)",
            "4:18: escalation.critical_afer: unknown key (did you mean \"critical_after\"?)",
            "5:56: channels.c.timout: unknown key (did you mean \"timeout\"?)",
            "6:34: routes[0].severty: unknown key (did you mean \"severity\"?)",
            "6:66: routes[0].match.mnt: unknown label \"mnt\" (did you mean \"mount\"?)",
            "7:50: silences[0].coment: unknown key (did you mean \"comment\"?)",
        ]
    );
    assert_eq!(
        one_error("{\"zzz\": 1}"),
        "1:2: zzz: unknown key (expected one of host, interval, state_dir, state, collect, rules, escalation, nodata_resolve_after, flap, channels, routes, silences, delivery, api, heartbeat, history, reports, display)"
    );
}

#[test]
fn wrong_json_types_say_what_was_expected() {
    assert_eq!(
        one_error("[]"),
        "1:1: expected an object like {\"interval\": \"5s\", \"rules\": [...]}, found an array"
    );
    assert_eq!(
        one_error("{\"rules\": {}}").split_once(": ").unwrap().1,
        "rules: expected an array like [{\"name\": \"cpu_total\", \"metric\": \"cpu.usage\", \"warn\": \"> 85\"}], found an object"
    );
    assert_eq!(one_error("{\"host\": \"\"}"), "1:10: host: the host name must not be empty");
    assert_eq!(
        one_error("{\"state_dir\": null}"),
        "1:15: state_dir: expected a string like \"/var/lib/hostwatch\", found null"
    );
    let text = "{\"channels\": {\"c\": {\"type\": \"email\", \"server\": \"h:25\", \"from\": \"a@b\", \"to\": [\"c@d\"], \"insecure_skip_verify\": \"yes\"}}}";
    assert_eq!(
        one_error(text),
        "1:110: channels.c.insecure_skip_verify: expected true or false, found a string"
    );
}

#[test]
fn rules_check_names_metrics_and_matchers() {
    let r = |body: &str| one_error(&rule(body));
    assert_eq!(
        r("{\"metric\": \"cpu.usage\", \"warn\": \"> 1\"}"),
        "1:12: rules[0]: missing required key \"name\""
    );
    assert_eq!(
        r("{\"name\": \"\", \"metric\": \"cpu.usage\", \"warn\": \"> 1\"}"),
        "1:21: rules[0].name: must not be empty (expected something like \"cpu_total\")"
    );
    assert!(
        r("{\"name\": \"r\", \"metric\": \"bogus\", \"warn\": \"> 1\"}")
            .contains("unknown metric \"bogus\" (expected one of cpu.usage, cpu.iowait,")
    );
    assert_eq!(
        r("{\"name\": \"r\", \"metric\": \"cpu.usage\"}"),
        "1:12: rules[0]: a rule needs \"warn\", \"crit\" or both (or \"absent\")"
    );
    assert_eq!(
        r(
            "{\"name\": \"r\", \"metric\": \"net.rx_rate\", \"match\": {\"iface\": \"\"}, \"warn\": \"> 1B/s\"}"
        ),
        "1:70: rules[0].match.iface: empty pattern (use \"*\" to match every value)"
    );
    let c = load_ok(&rule(
        "{\"name\": \"a.b-c_1\", \"metric\": \"cpu.core.usage\", \"match\": {\"core\": \"1*\"}, \"crit\": \">= 99\", \"channels\": [], \"description\": \"d\"}",
    ));
    assert_eq!(c.rules[0].matchers, [(LabelKey::Core, "1*".to_owned())]);
    assert_eq!(c.rules[0].channels, Some(Vec::new()));
    assert_eq!(c.rules[0].window, Window::Latest);
}

#[test]
fn warn_and_crit_point_the_same_way_with_crit_at_least_as_severe() {
    let r = |w: &str, c: &str| {
        let text = rule(&format!(
            "{{\"name\": \"r\", \"metric\": \"mem.available\", \"warn\": \"{w}\", \"crit\": \"{c}\"}}"
        ));
        load_str(&text, "t.json", &no_env).err().map(|e| e.0[0].message.clone())
    };
    assert_eq!(r("< 1GB", "< 500MB"), None);
    assert_eq!(r("<= 1GB", "<= 1GB"), None);
    assert_eq!(r("<= 1GB", "< 1GB"), None);
    assert_eq!(
        r("< 1GB", "<= 1GB"),
        Some(
            "crit \"<= 1GB\" is less severe than warn \"< 1GB\" (crit must be at or below warn)"
                .into()
        )
    );
    assert_eq!(
        r("< 500MB", "< 1GB"),
        Some(
            "crit \"< 1GB\" is less severe than warn \"< 500MB\" (crit must be at or below warn)"
                .into()
        )
    );
    assert_eq!(r("< 1GB", "> 10GB"), Some("crit \"> 10GB\" and warn \"< 1GB\" point in opposite directions (use > or >= in both, or < or <= in both)".into()));
    let up = |w: &str, c: &str| {
        let text = rule(&format!(
            "{{\"name\": \"r\", \"metric\": \"cpu.usage\", \"warn\": \"{w}\", \"crit\": \"{c}\"}}"
        ));
        load_str(&text, "t.json", &no_env).is_ok()
    };
    assert!(up("> 90", "> 90") && up("> 90", "> 95") && up(">= 90", "> 90"));
    assert!(!up("> 90", ">= 90") && !up("> 90", "> 80"));
}

#[test]
fn clear_sits_on_the_recovery_side() {
    let r = |fields: &str| {
        let text = rule(&format!("{{\"name\": \"r\", \"metric\": \"cpu.usage\", {fields}}}"));
        load_str(&text, "t.json", &no_env).err().map(|e| e.0[0].message.clone())
    };
    assert_eq!(r("\"warn\": \"> 90\", \"clear\": \"< 85\""), None);
    assert_eq!(r("\"warn\": \"> 90\", \"clear\": \"<= 90\""), None);
    assert_eq!(r("\"warn\": \">= 90\", \"clear\": \"< 90\""), None);
    assert_eq!(r("\"crit\": \"> 95\", \"clear\": \"< 90\""), None);
    assert_eq!(
        r("\"warn\": \">= 90\", \"clear\": \"<= 90\""),
        Some("clear \"<= 90\" overlaps warn \">= 90\": a value could fire and clear at once (clear must be below warn)".into())
    );
    assert_eq!(
        r("\"warn\": \"> 90\", \"clear\": \"> 80\""),
        Some("clear \"> 80\" must point the other way from warn \"> 90\" (use < or <=)".into())
    );
    assert_eq!(
        r("\"crit\": \"> 95\", \"clear\": \"< 97\""),
        Some("clear \"< 97\" overlaps crit \"> 95\": a value could fire and clear at once (clear must be below crit)".into())
    );
}

#[test]
fn every_window_form_decodes_and_only_one_is_allowed() {
    let w = |form: &str| {
        let text = rule(&format!(
            "{{\"name\": \"r\", \"metric\": \"load.1\", \"warn\": \"> 4\", {form}}}"
        ));
        load_ok(&text).rules[0].window
    };
    let m = Duration::from_secs(60);
    assert_eq!(w("\"for\": \"1m\""), Window::For(m));
    assert_eq!(w("\"avg\": \"1m\""), Window::Avg(m));
    assert_eq!(w("\"max\": \"1m\""), Window::Max(m));
    assert_eq!(w("\"min\": \"1m\""), Window::Min(m));
    assert_eq!(w("\"occurrences\": \"2/3\""), Window::Occurrences { n: 2, m: 3 });
    assert_eq!(w("\"for\": \"5s\""), Window::For(Duration::from_secs(5)));
    let text = rule(
        "{\"name\": \"r\", \"metric\": \"load.1\", \"warn\": \"> 4\", \"max\": \"1m\", \"occurrences\": \"1/2\"}",
    );
    assert_eq!(
        one_error(&text),
        "1:74: rules[0].occurrences: a rule takes one window form, and \"max\" is already set"
    );
}

#[test]
fn channel_references_must_exist() {
    let text = "{\"rules\": [{\"name\": \"r\", \"metric\": \"load.1\", \"warn\": \"> 4\", \"channels\": [\"ops\"]}]}";
    assert_eq!(
        one_error(text),
        "1:74: rules[0].channels[0]: unknown channel \"ops\" (no channels are defined under \"channels\")"
    );
    let text = "{\"channels\": {\"a\": {\"type\": \"exec\", \"command\": [\"x\"]}}, \"routes\": [{\"channels\": []}]}";
    assert_eq!(one_error(text), "1:81: routes[0].channels: a route needs at least one channel");
    let text = "{\"routes\": [{\"severity\": \"warning\"}]}";
    assert_eq!(one_error(text), "1:13: routes[0]: missing required key \"channels\"");
}

#[test]
fn routes_decode_and_check_their_rule_patterns() {
    let base = "\"channels\": {\"a\": {\"type\": \"exec\", \"command\": [\"x\"]}}, \"rules\": [{\"name\": \"disk_root\", \"metric\": \"disk.free\", \"crit\": \"< 1GB\"}]";
    let c = load_ok(&format!(
        "{{{base}, \"routes\": [{{\"severity\": \"critical\", \"rule\": \"disk_*\", \"match\": {{\"mount\": \"/\"}}, \"channels\": [\"a\"]}}]}}"
    ));
    let r = &c.routes[0];
    assert_eq!((r.severity, r.rule.as_deref()), (Some(Severity::Critical), Some("disk_*")));
    assert_eq!(
        (r.matchers.clone(), r.channels.clone()),
        (vec![("mount".to_owned(), "/".to_owned())], vec!["a".to_owned()])
    );
    let e = errors(&format!(
        "{{{base}, \"routes\": [{{\"rule\": \"cpu_*\", \"channels\": [\"a\"]}}, {{\"rule\": \"disk_rot\", \"channels\": [\"a\"]}}]}}"
    ));
    assert!(e[0].ends_with("routes[0].rule: pattern \"cpu_*\" matches no rule"), "{e:?}");
    assert!(
        e[1].ends_with(
            "routes[1].rule: no rule is named \"disk_rot\" (did you mean \"disk_root\"?)"
        ),
        "{e:?}"
    );
}

#[test]
fn collect_settings_decode() {
    let c = load_ok(
        "{\"collect\": {\"backend\": \"sysinfo\", \"include\": {\"iface\": [\"eth*\"]}, \"exclude\": {\"mount\": [\"/snap/*\", \"/run/*\"]}}}",
    );
    assert_eq!(c.collect.backend, CollectBackend::Sysinfo);
    assert_eq!(c.collect.include[&LabelKey::Iface], ["eth*"]);
    assert_eq!(c.collect.exclude[&LabelKey::Mount], ["/snap/*", "/run/*"]);
    assert_eq!(
        one_error("{\"collect\": {\"backend\": \"procfs\"}}"),
        "1:25: collect.backend: unknown backend \"procfs\" (did you mean \"proc\"?)"
    );
    assert_eq!(
        one_error("{\"collect\": {\"exclude\": {\"mount\": \"/snap\"}}}"),
        "1:35: collect.exclude.mount: expected an array like [\"/snap/*\"], found a string"
    );
}

#[test]
fn collect_root_is_a_directory_kept_without_its_trailing_slash() {
    let dir = std::env::temp_dir();
    let dir = dir.to_str().expect("a UTF-8 temp dir").trim_end_matches('/');
    let c = load_ok(&format!("{{\"collect\": {{\"root\": \"{dir}/\"}}}}"));
    assert_eq!(c.collect.root.as_deref(), Some(std::path::Path::new(dir)));
    assert_eq!(c.to_effective_json()["collect"]["root"], dir);
    let c = load_ok("{\"collect\": {\"root\": \"/\"}}");
    assert_eq!(c.collect.root, None, "/ is this process's own root");
    assert_eq!(c.to_effective_json()["collect"]["root"], "/");
    assert_eq!(
        one_error("{\"collect\": {\"root\": \"/etc/hostname-no-such\"}}"),
        "1:22: collect.root: /etc/hostname-no-such: No such file or directory (os error 2)"
    );
    let file = tempfile_path();
    assert_eq!(
        one_error(&format!("{{\"collect\": {{\"root\": \"{file}\"}}}}")),
        format!("1:22: collect.root: {file} is not a directory")
    );
    assert_eq!(
        one_error("{\"collect\": {\"root\": \"host\"}}"),
        "1:22: collect.root: \"host\" is not an absolute path (the host's / as mounted here, like \"/host\")"
    );
    assert_eq!(
        one_error(&format!("{{\"collect\": {{\"backend\": \"sysinfo\", \"root\": \"{dir}\"}}}}")),
        "1:44: collect.root: a root other than \"/\" needs the proc backend (Linux /proc)"
    );
}

/// A regular file that exists while the test runs (this test binary itself).
fn tempfile_path() -> String {
    std::env::current_exe().expect("the test binary").to_str().expect("UTF-8").to_owned()
}

#[test]
fn silences_decode_with_an_rfc3339_expiry() {
    let c = load_ok(
        "{\"silences\": [{\"rule\": \"disk_*\", \"match\": {\"mount\": \"/data\"}, \"until\": \"2023-11-14T22:13:20Z\", \"comment\": \"swap\"}, {\"id\": \"x\", \"until\": \"2023-11-14T22:13:20Z\"}]}",
    );
    let s = &c.silences[0];
    assert_eq!(
        (s.id.as_str(), s.rule.as_deref(), s.until, s.comment.as_str()),
        ("config-1", Some("disk_*"), 1_700_000_000.0, "swap")
    );
    assert_eq!(s.matchers.get("mount").map(String::as_str), Some("/data"));
    assert_eq!(c.silences[1].id, "x");
    assert_eq!(c.to_effective_json()["silences"][0]["until"], "2023-11-14T22:13:20Z");
    assert_eq!(
        one_error("{\"silences\": [{\"rule\": \"x\"}]}"),
        "1:15: silences[0]: missing required key \"until\" (or a \"schedule\")"
    );
    assert!(
        one_error("{\"silences\": [{\"until\": \"tomorrow\"}]}").ends_with(
            "invalid time \"tomorrow\" (expected RFC 3339 like \"2026-01-10T06:00:00Z\")"
        )
    );
}

#[test]
fn every_channel_type_decodes_with_its_defaults() {
    let text = r#"{"channels": {
      "s": {"type": "slack", "token": "xoxb-1", "channel": "C1"},
      "t": {"type": "teams", "webhook_url": "https://x.logic.azure.com/workflows/1?sig=2", "format": "messagecard"},
      "e": {"type": "email", "server": "[::1]:465", "tls": "tls", "from": "Hostwatch <hw@example.com>", "to": ["a@example.com"]},
      "w": {"type": "webhook", "url": "http://127.0.0.1:9000/hook", "format": "alertmanager-webhook", "headers": {"X-Key": "k"}},
      "a": {"type": "alertmanager", "url": "http://am:9093"},
      "x": {"type": "exec", "command": ["/bin/true"]},
      "p": {"type": "plugin", "path": "/usr/lib/p.so"}
    }}"#;
    let c = load_ok(text);
    let kind = |n: &str| c.channels[n].kind.clone();
    let ChannelKind::Slack(s) = kind("s") else { panic!() };
    assert_eq!(s.target, SlackTarget::Bot { token: "xoxb-1".into(), channel: "C1".into() });
    let ChannelKind::Teams(t) = kind("t") else { panic!() };
    assert_eq!(t.format, TeamsFormat::MessageCard);
    let ChannelKind::Email(e) = kind("e") else { panic!() };
    assert_eq!(
        (e.host.as_str(), e.port, e.tls, e.server()),
        ("::1", 465, EmailTls::Tls, "[::1]:465".to_owned())
    );
    assert!(!e.insecure_skip_verify && e.timeout.is_none() && e.username.is_none());
    let ChannelKind::Webhook(w) = kind("w") else { panic!() };
    assert_eq!(
        (w.format, w.headers.clone()),
        (WebhookFormat::AlertmanagerWebhook, vec![("X-Key".into(), "k".into())])
    );
    let ChannelKind::Alertmanager(a) = kind("a") else { panic!() };
    assert_eq!(a.resend_every, Duration::from_secs(60));
    let ChannelKind::Exec(x) = kind("x") else { panic!() };
    assert_eq!((x.timeout, x.env.len(), x.cwd.is_none()), (Duration::from_secs(10), 0, true));
    let ChannelKind::Plugin(p) = kind("p") else { panic!() };
    assert_eq!(p.config, serde_json::json!({}));
    let eff = c.to_effective_json();
    assert_eq!(eff["channels"]["s"]["token"], "<redacted>");
    assert_eq!(eff["channels"]["t"]["webhook_url"], "https://x.logic.azure.com/<redacted>");
    assert_eq!(eff["channels"]["w"]["headers"]["X-Key"], "<redacted>");
    assert_eq!(eff["channels"]["x"]["timeout"], "10s");
}

#[test]
fn channel_settings_are_checked() {
    let ch = |body: &str| one_error(&format!("{{\"channels\": {{\"c\": {body}}}}}"));
    assert_eq!(
        ch("{\"type\": \"slack\"}"),
        "1:20: channels.c: a slack channel needs \"webhook_url\", or \"token\" and \"channel\""
    );
    assert_eq!(
        ch("{\"type\": \"slack\", \"webhook_url\": \"https://h/x\", \"token\": \"t\"}"),
        "1:77: channels.c.token: use either \"webhook_url\" or \"token\" with \"channel\", not both"
    );
    assert_eq!(
        ch("{\"type\": \"slack\", \"token\": \"t\"}"),
        "1:20: channels.c: missing required key \"channel\""
    );
    assert_eq!(
        ch("{\"type\": \"slack\", \"webhook_url\": \"hooks.slack.com/services/X\"}"),
        "1:53: channels.c.webhook_url: expected a URL starting with http:// or https://"
    );
    assert_eq!(
        ch("{\"type\": \"webhook\", \"url\": \"https:///x\"}"),
        "1:47: channels.c.url: the URL has no host"
    );
    // The client's own parser decides: a password with an unescaped `/` and a port out of
    // range are refused, and the message quotes no piece of the URL.
    let slash = ch("{\"type\": \"webhook\", \"url\": \"https://alice:hunter2/x@127.0.0.1:1/p\"}");
    assert!(slash.contains("channels.c.url: the URL is ambiguous"), "{slash}");
    assert!(!slash.contains("hunter2") && !slash.contains("alice"), "{slash}");
    let port = ch("{\"type\": \"alertmanager\", \"url\": \"http://u:hunter2@127.0.0.1:99999\"}");
    assert!(port.contains("channels.c.url: the URL's port is out of range"), "{port}");
    assert!(!port.contains("hunter2"), "{port}");
    let port = ch("{\"type\": \"webhook\", \"url\": \"http://h:8x/\"}");
    assert!(port.contains("channels.c.url: bad port in the URL"), "{port}");
    assert!(ch("{\"type\": \"teams\", \"webhook_url\": \"https://acme.webhook.office.com/webhookb2/x\"}").contains("retired by Microsoft"));
    assert_eq!(
        ch("{\"type\": \"exec\", \"command\": \"page --team infra\"}"),
        "1:48: channels.c.command: expected an array like [\"/usr/local/bin/page\", \"--team\", \"infra\"] (a program and its arguments; no shell is used)"
    );
    assert_eq!(
        ch("{\"type\": \"exec\", \"command\": []}"),
        "1:48: channels.c.command: the command must not be empty (expected something like [\"/usr/local/bin/page\", \"--team\", \"infra\"])"
    );
    let mail = "\"type\": \"email\", \"server\": \"h:25\", \"from\": \"a@b\", \"to\": [\"c@d\"]";
    assert_eq!(
        ch(&format!("{{{mail}, \"username\": \"u\"}}")),
        "1:20: channels.c: \"username\" needs \"password\""
    );
    assert!(
        ch(&format!("{{{mail}, \"tls\": \"none\", \"username\": \"u\", \"password\": \"p\"}}"))
            .contains("refusing to send a password without TLS")
    );
    assert!(load_str(&format!("{{\"channels\": {{\"c\": {{{mail}, \"tls\": \"none\", \"username\": \"u\", \"password\": \"p\", \"allow_plaintext_auth\": true}}}}}}"), "t", &no_env).is_ok());
    assert_eq!(
        ch(&format!("{{{mail}, \"to\": [\"nobody\"]}}").replace("\"to\": [\"c@d\"], ", "")),
        "1:78: channels.c.to[0]: \"nobody\" is not an e-mail address (expected something like \"oncall@example.com\")"
    );
    assert_eq!(
        ch("{\"type\": \"email\", \"server\": \"h:0\", \"from\": \"a@b\", \"to\": [\"c@d\"]}"),
        "1:48: channels.c.server: invalid port \"0\" (expected \"host:port\" like \"smtp.example.com:587\")"
    );
    assert_eq!(
        ch("{\"type\": \"webhook\", \"url\": \"http://h\", \"headers\": {\"Bad Header\": \"v\"}}"),
        "1:71: channels.c.headers[\"Bad Header\"]: invalid header name \"Bad Header\""
    );
    assert_eq!(ch("{\"url\": \"http://h\"}"), "1:20: channels.c: missing required key \"type\"");
    assert_eq!(
        one_error("{\"channels\": {\"a b\": {\"type\": \"exec\", \"command\": [\"x\"]}}}"),
        "1:15: channels[\"a b\"]: invalid channel name \"a b\" (use letters, digits, '_', '.' and '-')"
    );
}

#[test]
fn api_and_heartbeat_decode_with_defaults_and_every_error_at_once() {
    let c = load_ok(
        r#"{"api": {"listen": "localhost:9184", "token": "0123456789abcdef"},
            "heartbeat": {"url": "https://hc-ping.com/uuid-1"}}"#,
    );
    let api = c.api.unwrap();
    assert_eq!(api.listen.to_string(), "127.0.0.1:9184");
    assert_eq!(api.token.unwrap().expose(), "0123456789abcdef");
    let hb = c.heartbeat.unwrap();
    assert_eq!(
        (hb.every, hb.method, hb.timeout),
        (Duration::from_secs(60), HeartbeatMethod::Get, None)
    );
    assert!(!format!("{hb:?}").contains("uuid-1"), "the heartbeat URL is a secret");
    assert_eq!(load_ok(r#"{"api": {"listen": "[::1]:1"}}"#).api.unwrap().token, None);
    assert!(load_ok("{}").api.is_none());

    let e = errors(
        r#"{"api": {"listen": "nope", "token": "short"},
            "heartbeat": {"url": "ftp://x", "every": "500ms", "method": "put", "extra": 1}}"#,
    );
    let joined = e.join("\n");
    for needle in [
        "api.listen: expected an address and port",
        "api.token: a token must be at least 16 characters",
        "heartbeat.url: expected a URL",
        "heartbeat.every: a heartbeat period must be at least 1s",
        "heartbeat.method: unknown method \"put\"",
        "heartbeat.extra: unknown key",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
    assert!(one_error(r#"{"api": {}}"#).contains("listen"));
}

#[test]
fn the_state_load_resolves_no_secret_and_the_full_load_still_refuses_a_missing_one() {
    let text = r#"{
  "state_dir": "${STATE}/hw",
  "channels": {"chat": {"type": "slack", "webhook_url": "${SLACK_WEBHOOK_URL}"},
               "mail": {"type": "email", "server": "smtp.example.com:465", "tls": "tls",
                        "from": "hw@example.com", "to": ["ops@example.com"],
                        "username": "hw", "password": "${SMTP_PASSWORD}"}},
  "rules": [{"name": "disk_root", "metric": "disk.used_percent", "warn": "> 90",
             "channels": ["chat"]}],
  "routes": [{"channels": ["mail"]}],
  "api": {"listen": "127.0.0.1:9184", "token": "${API_TOKEN}"},
  "heartbeat": {"url": "${HEARTBEAT_URL}"},
  "silences": [{"rule": "disk_*", "until": "2099-01-01T00:00:00Z", "comment": "${WHO:-ops}"}]
}"#;
    let env = |name: &str| (name == "STATE").then(|| "/srv".to_owned());
    let full = load_str(text, "t.json", &env).expect_err("secrets are unset");
    for var in ["SLACK_WEBHOOK_URL", "SMTP_PASSWORD", "API_TOKEN", "HEARTBEAT_URL"] {
        assert!(full.to_string().contains(&format!("{var} is not set")), "{full}");
    }
    let state = load_state_str(text, "t.json", &env).unwrap();
    assert_eq!(state.state_dir, Path::new("/srv/hw"));
    assert_eq!(
        (state.rule_names.as_slice(), state.rule_set),
        (&["disk_root".into()][..], RuleSet::File)
    );
    assert_eq!(state.silences[0].comment, "ops");
    // What it does read is still checked, and the overrides still apply.
    let e = load_state_str(text, "t.json", &no_env).unwrap_err().to_string();
    assert_eq!(e, "t.json:2:16: state_dir: environment variable STATE is not set");
    // JSON is YAML too: read as YAML, the same values at the same positions.
    assert_eq!(load_state_str(text, "t.yaml", &env).unwrap().state_dir, Path::new("/srv/hw"));
    let e = load_state_str(text, "t.yaml", &no_env).unwrap_err().to_string();
    assert_eq!(e, "t.yaml:2:16: state_dir: environment variable STATE is not set");
    let env = |name: &str| match name {
        "STATE" => Some("/srv".to_owned()),
        "HOSTWATCH_STATE_DIR" => Some("/elsewhere".to_owned()),
        _ => None,
    };
    assert_eq!(load_state_str(text, "t.json", &env).unwrap().state_dir, Path::new("/elsewhere"));
    let e = load_state_str(
        r#"{"rules": [{"name": "r", "metric": "cpu.usage", "warn": "> 1", "channels": ["nope"]}]}"#,
        "t.json",
        &no_env,
    )
    .unwrap_err();
    assert!(e.to_string().contains("unknown channel \"nope\""), "{e}");
    let embedded = load_state_str("{}", "t.json", &no_env).unwrap();
    assert_eq!(embedded.rule_set, RuleSet::Embedded);
    assert_eq!(
        embedded.rule_names,
        load_ok("{}").rules.iter().map(|r| r.name.clone()).collect::<Vec<_>>()
    );
}

#[test]
fn rules_take_a_summary_a_runbook_and_static_labels() {
    let c = load_ok(&rule(
        r#"{"name": "disk_root", "metric": "disk.used_percent", "warn": "> 90",
            "summary": "Root file system almost full",
            "runbook_url": "https://wiki.example.com/runbooks/disk?x=1&y=2",
            "labels": {"team": "db", "service_name": "pg"}}"#,
    ));
    let r = &c.rules[0];
    assert_eq!(r.summary.as_deref(), Some("Root file system almost full"));
    assert_eq!(r.runbook_url.as_deref(), Some("https://wiki.example.com/runbooks/disk?x=1&y=2"));
    assert_eq!(r.labels["team"], "db");
    let shown = c.to_effective_json();
    assert_eq!(shown["rules"][0]["labels"]["service_name"], "pg");
    assert_eq!(shown["rules"][0]["summary"], "Root file system almost full");
    let text = r#"{"rules": [{"name": "d", "metric": "disk.used_percent", "warn": "> 90",
  "runbook_url": "ftp://x", "summary": "a\nb",
  "labels": {"mount": "/x", "1team": "a", "team": "", "ok": 3}}]}"#;
    assert_eq!(
        errors(text),
        [
            "2:18: rules[0].runbook_url: expected a URL starting with http:// or https://",
            "2:40: rules[0].summary: a summary is one line of text (no line breaks or control characters)",
            "3:14: rules[0].labels.mount: \"mount\" is the series' own label of disk.used_percent; a static label needs another name",
            "3:29: rules[0].labels.1team: invalid label name \"1team\" (letters, digits and '_', not starting with a digit)",
            "3:51: rules[0].labels.team: must not be empty (expected something like \"db\")",
            "3:61: rules[0].labels.ok: expected a string like \"db\", found a number",
        ]
    );
    assert!(
        one_error(&rule(
            r#"{"name": "d", "metric": "cpu.usage", "warn": "> 1", "runbook_url": "https://w/a|b"}"#
        ))
        .ends_with("rules[0].runbook_url: write '|' percent-encoded in a URL")
    );
    let e = one_error(&rule(
        r#"{"name": "d", "metric": "cpu.usage", "warn": "> 1", "labels": {"severity": "x"}}"#,
    ));
    assert!(
        e.ends_with("\"severity\" is set by hostwatch on every alert; choose another name"),
        "{e}"
    );
}

#[test]
fn routes_match_static_labels_that_some_rule_declares() {
    let base = r#""channels": {"a": {"type": "exec", "command": ["x"]}},
  "rules": [{"name": "r", "metric": "cpu.usage", "warn": "> 1", "labels": {"team": "db"}}]"#;
    let c = load_ok(&format!(
        r#"{{{base}, "routes": [{{"match": {{"team": "db", "core": "1"}}, "channels": ["a"]}}]}}"#
    ));
    assert_eq!(
        c.routes[0].matchers,
        [("team".to_owned(), "db".to_owned()), ("core".to_owned(), "1".to_owned())]
    );
    assert_eq!(c.to_effective_json()["routes"][0]["match"]["team"], "db");
    let e = one_error(&format!(
        r#"{{{base}, "routes": [{{"match": {{"teem": "db"}}, "channels": ["a"]}}]}}"#
    ));
    assert!(
        e.ends_with("routes[0].match.teem: unknown label \"teem\" (did you mean \"team\"?)"),
        "{e}"
    );
}

#[test]
fn channel_templates_compile_at_load_and_errors_point_into_the_string() {
    let c = load_ok(
        r#"{"channels": {"s": {"type": "slack", "webhook_url": "https://hooks.slack.com/x",
  "title": "{{severity}} {{rule}}", "text": "{{summary|no summary}} {{labels.team}}"}}}"#,
    );
    let shown = c.to_effective_json();
    assert_eq!(shown["channels"]["s"]["title"], "{{severity}} {{rule}}");
    assert_eq!(shown["channels"]["s"]["text"], "{{summary|no summary}} {{labels.team}}");
    let text = r#"{"channels": {
  "e": {"type": "exec", "command": ["x"], "title": "ab {{rul}}",
        "text": "{{host"},
  "t": {"type": "teams", "webhook_url": "https://x.logic.azure.com/y", "title": "{{labels.a-b}}"}}}"#;
    assert_eq!(
        errors(text),
        [
            "2:58: channels.e.title: unknown field \"rul\" (did you mean \"rule\"?)",
            "3:18: channels.e.text: unterminated \"{{\" (a field is written {{name}})",
            "4:84: channels.t.title: invalid label name \"a-b\" in {{labels.a-b}} (a label name is letters, digits and '_', not starting with a digit)",
        ]
    );
}

#[test]
fn yaml_template_errors_point_into_the_scalar_as_it_is_written() {
    let yaml_errors = |text: &str| -> Vec<String> {
        let e = load_str(text, "t.yaml", &no_env).expect_err("expected errors");
        e.0.iter().map(|e| e.to_string().trim_start_matches("t.yaml:").to_owned()).collect()
    };
    let head = "channels:\n  e:\n    type: exec\n    command: [x]\n";
    let rul = "unknown field \"rul\" (did you mean \"rule\"?)";
    for (body, at) in [
        // Plain: the text starts at the node.
        ("    title: ab {{rul}}\n", "5:17"),
        // Quoted: one column after the quote (an escape before it shifts it, as in JSON).
        ("    title: \"ab {{rul}}\"\n", "5:18"),
        ("    title: 'ab {{rul}}'\n", "5:18"),
        // Literal block: the line and column inside the block, lines kept.
        ("    title: |\n      first\n        ab {{rul}}\n", "7:14"),
        ("    title: |-\n      ab {{rul}}\n", "6:12"),
        // Folded, or plain on two lines: the scalar's own position.
        ("    title: >\n      first\n      ab {{rul}}\n", "6:7"),
        ("    title: first\n      ab {{rul}}\n", "5:12"),
    ] {
        if at.is_empty() {
            continue;
        }
        let text = format!("{head}{body}");
        assert_eq!(yaml_errors(&text), [format!("{at}: channels.e.title: {rul}")], "{body}");
    }
    // An alias points at the alias.
    let text = format!("t: &t ab {{{{rul}}}}\n{head}    title: *t\n");
    assert!(yaml_errors(&text).iter().any(|e| e == &format!("6:12: channels.e.title: {rul}")));
}

#[test]
fn json_fixtures_read_as_yaml_give_the_same_errors_at_the_same_positions() {
    // JSON is YAML 1.2 (flow style): both front-ends must put every value at one place.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config");
    let mut compared = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        // JSON syntax errors are not YAML's: YAML takes a trailing comma, and finds a missing
        // one later (the twins in `*.yaml` cover them).
        if path.extension().is_none_or(|e| e != "json")
            || name.starts_with("syntax_")
            || name == "trailing_comma"
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let as_json = load_str(&text, "f.json", &no_env).expect_err(&name).to_string();
        let as_yaml = load_str(&text, "f.yaml", &no_env).expect_err(&name).to_string();
        assert_eq!(as_yaml.replace("f.yaml:", "f.json:"), as_json, "{name}");
        compared += 1;
    }
    assert!(compared >= 17, "only {compared} fixtures");
}
