//! Exec hooks (`type: "exec"`): what a hook receives (environment, stdin, argv, working
//! directory), how its exit is read (0 delivered, 75 retry later, else failed with the first
//! lines of stderr), that the timeout kills its whole process group, and that hostile alert
//! text reaches it only as inert data. The scripts are `tests/support/hook_*.sh`.

mod common;

use common::{run, stderr, stdout, tempdir, write};
use hostwatch::config::Severity;
use hostwatch::config::channels::ExecConfig;
use hostwatch::event::AlertEvent;
use hostwatch::notify::exec::ExecSender;
use hostwatch::notify::{SendError, Sender};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn script(name: &str) -> String {
    format!("{}/tests/support/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A hook running `sh tests/support/<name> args…` (no exec bit needed on the script).
fn hook(name: &str, args: &[&str], timeout: Duration) -> ExecSender {
    let mut command = vec!["/bin/sh".to_string(), script(name)];
    command.extend(args.iter().map(|a| a.to_string()));
    let config = ExecConfig {
        command,
        timeout,
        env: BTreeMap::new(),
        cwd: None,
        templates: Default::default(),
    };
    ExecSender::new("hook", &config).expect("build the exec sender")
}

/// The `env -0` dump a hook wrote, as a map.
fn recorded_env(dir: &Path) -> BTreeMap<String, String> {
    let bytes = std::fs::read(dir.join("env")).expect("the hook wrote its environment");
    bytes
        .split(|&b| b == 0)
        .filter(|entry| !entry.is_empty())
        .filter_map(|entry| {
            let text = String::from_utf8(entry.to_vec()).expect("UTF-8 environment");
            text.split_once('=').map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

fn recorded_argv(dir: &Path) -> Vec<String> {
    let bytes = std::fs::read(dir.join("argv")).expect("the hook wrote its argv");
    let text = String::from_utf8(bytes).unwrap();
    text.split_terminator('\0').map(str::to_string).collect()
}

fn recorded_stdin(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("stdin")).expect("the hook wrote its stdin")
}

#[test]
fn a_hook_gets_the_alert_as_environment_and_json_on_stdin() {
    let dir = tempdir("exec-record");
    let record = dir.join("record");
    std::fs::create_dir(&record).unwrap();
    let config = json!({
        "host": "web-01",
        "channels": {"pager": {
            "type": "exec",
            "command": ["/bin/sh", script("hook_record.sh"), record, "0"],
            "timeout": "30s",
            "env": {"PAGER_TEAM": "infra"},
            "cwd": dir,
        }},
    });
    let config = write(&dir, "config.json", &config.to_string());
    // A secret in hostwatch's environment (as `${SMTP_PASSWORD}` in a config would need).
    let out = std::process::Command::new(common::bin())
        .args(["test-notify", "pager", "--config", config.to_str().unwrap()])
        .env("SMTP_PASSWORD", "hunter2-secret")
        .output()
        .expect("run hostwatch");
    assert!(out.status.success(), "stdout {}\nstderr {}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("pager: accepted: hook exited 0: recorded"), "{}", stdout(&out));

    let env = recorded_env(&record);
    assert_eq!(env["HOSTWATCH_CHANNEL"], "pager");
    assert_eq!(env["HOSTWATCH_HOST"], "web-01");
    assert_eq!(env["HOSTWATCH_RULE"], "hostwatch_test");
    assert_eq!(env["HOSTWATCH_SERIES"], "cpu.usage");
    assert_eq!(env["HOSTWATCH_SEVERITY"], "warning");
    assert_eq!(env["HOSTWATCH_EVENT"], "firing");
    assert_eq!(env["HOSTWATCH_VALUE"], "99.9");
    assert_eq!(env["HOSTWATCH_THRESHOLD"], "> 95");
    assert_eq!(env["HOSTWATCH_TEST"], "1");
    assert_eq!(env["PAGER_TEAM"], "infra");
    assert!(env.contains_key("PATH"), "the hook inherits the basics (PATH, HOME, locale)");
    assert!(!env.contains_key("SMTP_PASSWORD"), "hostwatch's secrets stay out of hooks: {env:?}");

    let stdin = recorded_stdin(&record);
    assert!(stdin.ends_with("}\n"), "one JSON document and a newline: {stdin:?}");
    let event: Value = serde_json::from_str(&stdin).unwrap();
    assert_eq!(event["rule"], "hostwatch_test");
    assert_eq!(event["host"], "web-01");
    assert_eq!(event["test"], true);
    assert_eq!(env["HOSTWATCH_KEY"], event["key"].as_str().unwrap());
    assert_eq!(env["HOSTWATCH_SINCE"], event["since"].to_string());

    assert_eq!(recorded_argv(&record), [record.to_str().unwrap(), "0"]);
    let cwd = std::fs::read_to_string(record.join("cwd")).unwrap();
    assert_eq!(Path::new(cwd.trim()), dir);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn hostile_alert_text_reaches_the_hook_only_as_inert_data() {
    let dir = tempdir("exec-hostile");
    let record = dir.join("record");
    std::fs::create_dir(&record).unwrap();
    let marker = dir.join("pwned");
    let m = marker.display();
    let mut event = AlertEvent::test_event("web-01", Severity::Critical, 1_700_000_000.0);
    event.rule = format!("$(touch {m})");
    event.series = format!("disk.used_percent{{mount=`touch {m}`}}");
    event.host = format!("web-01; touch {m}");
    event.labels.insert("mount".into(), format!("$(touch {m})"));
    event.labels.insert("device".into(), "; rm -rf / ; x".into());
    event.labels.insert("iface".into(), format!("'\"\n`touch {m}` && touch {m} | touch {m}"));
    event.labels.insert("$(touch x)".into(), "label name too".into());

    let mut sender =
        hook("hook_record.sh", &[record.to_str().unwrap(), "0"], Duration::from_secs(30));
    sender.send(&event).expect("the hook accepts the event");

    assert!(!marker.exists(), "alert text was executed");
    assert_eq!(
        recorded_argv(&record),
        [record.to_str().unwrap(), "0"],
        "argv is only the config's"
    );
    let env = recorded_env(&record);
    assert_eq!(env["HOSTWATCH_RULE"], event.rule);
    assert_eq!(env["HOSTWATCH_SERIES"], event.series);
    assert_eq!(env["HOSTWATCH_HOST"], event.host);
    assert_eq!(env["HOSTWATCH_LABEL_MOUNT"], event.labels["mount"]);
    assert_eq!(env["HOSTWATCH_LABEL_DEVICE"], "; rm -rf / ; x");
    assert_eq!(env["HOSTWATCH_LABEL_IFACE"], event.labels["iface"]);
    assert_eq!(env["HOSTWATCH_LABEL___TOUCH_X_"], "label name too");
    let received: AlertEvent = serde_json::from_str(&recorded_stdin(&record)).unwrap();
    assert_eq!(received, event, "stdin carries the exact event");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn exit_75_asks_for_a_retry_later() {
    let mut sender = hook("hook_fail.sh", &["75"], Duration::from_secs(30));
    let event = AlertEvent::test_event("web-01", Severity::Warning, 1_700_000_000.0);
    match sender.send(&event) {
        Err(SendError::Transient { reason, .. }) => {
            assert!(reason.contains("exited with 75 (EX_TEMPFAIL: retry later)"), "{reason}");
            assert!(reason.contains("stderr line 1"), "{reason}");
        }
        other => panic!("expected a temporary failure, got {other:?}"),
    }
}

#[test]
fn other_exit_codes_fail_with_the_first_lines_of_stderr() {
    let mut sender = hook("hook_fail.sh", &["3"], Duration::from_secs(30));
    let event = AlertEvent::test_event("web-01", Severity::Warning, 1_700_000_000.0);
    match sender.send(&event) {
        Err(SendError::Permanent { reason }) => {
            assert!(reason.contains("exited with 3"), "{reason}");
            for i in 1..=5 {
                assert!(reason.contains(&format!("stderr line {i}")), "{reason}");
            }
            assert!(!reason.contains("stderr line 6"), "{reason}");
            assert!(reason.contains("(3 more lines)"), "{reason}");
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

/// True once `pid` has exited (gone, or a zombie waiting for a reaper).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        }
    }
}

#[test]
fn a_hook_past_its_timeout_is_killed_with_its_whole_process_group() {
    let dir = tempdir("exec-timeout");
    let pid_file = dir.join("grandchild.pid");
    let mut sender = hook("hook_sleepy.sh", &[pid_file.to_str().unwrap()], Duration::from_secs(2));
    let event = AlertEvent::test_event("web-01", Severity::Warning, 1_700_000_000.0);
    match sender.send(&event) {
        Err(SendError::Transient { reason, .. }) => {
            assert!(
                reason.contains("timed out after 2s; its process group was killed"),
                "{reason}"
            );
        }
        other => panic!("expected a temporary failure, got {other:?}"),
    }
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("the hook started its grandchild before the timeout")
        .trim()
        .parse()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    while !gone(pid) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(gone(pid), "the grandchild sleep {pid} survived the timeout");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn dry_run_shows_what_the_hook_would_get_and_runs_nothing() {
    let dir = tempdir("exec-dry-run");
    let record = dir.join("record");
    std::fs::create_dir(&record).unwrap();
    let config = json!({
        "host": "web-01",
        "channels": {"pager": {
            "type": "exec",
            "command": ["/bin/sh", script("hook_record.sh"), record],
            "env": {"PAGER_TOKEN": "s3cret"},
        }},
    });
    let config = write(&dir, "config.json", &config.to_string());
    let out = run(&["test-notify", "pager", "--config", config.to_str().unwrap(), "--dry-run"]);
    assert!(out.status.success(), "stderr {}", stderr(&out));
    let shown: Value = serde_json::from_str(&stdout(&out)).expect("dry-run prints JSON");
    assert_eq!(shown["command"], json!(["/bin/sh", script("hook_record.sh"), record]));
    assert_eq!(shown["env"]["HOSTWATCH_RULE"], "hostwatch_test");
    assert_eq!(shown["env"]["PAGER_TOKEN"], "<redacted>");
    assert_eq!(shown["stdin"]["host"], "web-01");
    assert!(!stdout(&out).contains("s3cret"));
    assert!(!record.join("env").exists(), "--dry-run ran the hook");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_missing_program_is_refused_at_start_up() {
    let config = ExecConfig {
        command: vec!["/nonexistent/page".into(), "--team".into()],
        timeout: Duration::from_secs(1),
        env: BTreeMap::new(),
        cwd: None,
        templates: Default::default(),
    };
    let e = ExecSender::new("pager", &config).unwrap_err();
    assert!(e.starts_with("channel pager: exec hook: program /nonexistent/page"), "{e}");
    let config = ExecConfig { command: vec!["no-such-hook-anywhere".into()], ..config };
    let e = ExecSender::new("pager", &config).unwrap_err();
    assert!(e.contains("program no-such-hook-anywhere: not found in the hook's PATH"), "{e}");
    let config = ExecConfig {
        command: vec!["/bin/true".into()],
        cwd: Some(PathBuf::from("/nonexistent/dir")),
        ..config
    };
    let e = ExecSender::new("pager", &config).unwrap_err();
    assert!(e.contains("cwd /nonexistent/dir: not a directory"), "{e}");
}

#[test]
fn a_hook_repeating_its_env_secrets_on_stderr_has_them_scrubbed_from_the_reason() {
    // The reason reaches the log, the events log and an unauthenticated `GET /status`.
    let config = ExecConfig {
        command: vec![
            "/bin/sh".into(),
            "-c".into(),
            "echo \"+ curl -H 'Authorization: Bearer $PAGER_TOKEN' $PAGER_URL\" >&2; exit 3".into(),
        ],
        timeout: Duration::from_secs(30),
        env: [
            ("PAGER_TOKEN".to_string(), hostwatch::config::Secret::from("tok-s3cret")),
            ("PAGER_URL".to_string(), "https://pager.example/hook/url-s3cret".into()),
        ]
        .into(),
        cwd: None,
        templates: Default::default(),
    };
    let mut sender = ExecSender::new("hook", &config).expect("build the exec sender");
    let event = AlertEvent::test_event("web-01", Severity::Warning, 1_700_000_000.0);
    match sender.send(&event) {
        Err(SendError::Permanent { reason }) => {
            assert!(!reason.contains("s3cret"), "{reason}");
            assert!(reason.contains("Authorization: Bearer <redacted>"), "{reason}");
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}
