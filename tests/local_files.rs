//! Locks and local files, end to end: concurrent `silence add` keep every silence, deleting
//! `state_dir/lock` does not let a second daemon in, hostile state files never make `once`
//! panic, non-regular config files are refused by name, and a closed stdout or stderr ends a
//! command quietly with its normal exit code. None of these needs root.

mod common;

use common::daemon::Daemon;
use common::{bin, tempdir, write};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn config(dir: &Path) -> std::path::PathBuf {
    let cfg = json!({
        "host": "files-test", "interval": "1s", "state_dir": dir.join("state").display().to_string(),
        "rules": [{"name": "cpu_any", "metric": "cpu.usage", "warn": ">= 0"}]
    });
    write(dir, "config.json", &cfg.to_string())
}

#[test]
fn twenty_concurrent_silence_adds_keep_twenty_silences() {
    let dir = tempdir("files-silences");
    let cfg = config(&dir);
    let children: Vec<_> = (0..20)
        .map(|i| {
            Command::new(bin())
                .args(["silence", "--config", cfg.to_str().unwrap(), "add", "--for", "1h"])
                .args(["--comment", &format!("n{i}")])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start silence add")
        })
        .collect();
    let mut ids = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        ids.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    let text = std::fs::read_to_string(dir.join("state/silences.json")).unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let kept = file["silences"].as_array().unwrap();
    assert_eq!(kept.len(), 20, "{text}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 20, "ids are unique: {ids:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn deleting_the_lock_file_does_not_let_a_second_daemon_in() {
    let dir = tempdir("files-lock");
    let cfg = config(&dir);
    let first = Daemon::start(&cfg, false);
    assert!(first.wait_stderr(Duration::from_secs(20), "hostwatch started").is_some());
    let lock = dir.join("state/lock");
    if lock.exists() {
        std::fs::remove_file(&lock).unwrap();
    }
    let second =
        Command::new(bin()).args(["run", "--config", cfg.to_str().unwrap()]).output().unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("another hostwatch is running with this state_dir"), "{err}");
    assert!(err.contains(&dir.join("state").display().to_string()), "{err}");
    drop(first);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Hostile state files: `once` may warn and start afresh, but never panics (exit 101).
#[test]
fn hostile_state_files_never_make_once_panic() {
    let dir = tempdir("files-hostile");
    let cfg = config(&dir);
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let counters = |ts: &str| {
        format!(
            r#"{{"version": 1, "saved_at": {ts}, "once": {{"counters": {{"version": 1, "ts": {ts},
            "cpu": {{"all": [1,2,3,4,5,6,7,8]}}, "net": {{"lo": [18446744073709551615, 0, 0, 0, 0, 0]}}}},
            "rings": [{{"series": "cpu.usage", "entries": [[{ts}, 1e300], [-5, 3]]}}]}}}}"#
        )
    };
    let cases: Vec<(&str, String)> = vec![
        ("ts -1e300", counters("-1e300")),
        ("ts 1e300", counters("1e300")),
        ("ts 0", counters("0")),
        ("truncated", counters("1")[..60].to_string()),
        ("not json", "\u{0}\u{1}garbage".to_string()),
        ("alert with hostile times", r#"{"version": 1, "saved_at": 1, "alerts": [{"rule": "cpu_any",
            "series": "cpu.usage", "state": {"phase": "firing", "severity": "warning", "since": -1e300,
            "last_notified": 1e300, "seq": 4294967295, "announced": true, "value": 1e308}}]}"#.to_string()),
        ("outbox junk", r#"{"version": 1, "saved_at": 1, "delivery": {"outbox": [{"id": 1}, 7, null], "next_id": 18446744073709551615}}"#.to_string()),
        ("version 99", r#"{"version": 99}"#.to_string()),
    ];
    for (name, text) in cases {
        let _ = std::fs::remove_file(state.join("state.json"));
        write(&state, "state.json", &text);
        let out = Command::new(bin())
            .args(["once", "--config", cfg.to_str().unwrap(), "--first-interval", "100ms"])
            .output()
            .unwrap();
        assert_ne!(
            out.status.code(),
            Some(101),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.code().is_some(), "{name}: killed by a signal");
    }
    // A FIFO and a link to /dev/zero: refused by name, no hang, no 8 GB read.
    for (name, make) in [("fifo", true), ("/dev/zero", false)] {
        let p = state.join("state.json");
        let _ = std::fs::remove_file(&p);
        if make {
            assert!(Command::new("mkfifo").arg(&p).status().unwrap().success());
        } else {
            std::os::unix::fs::symlink("/dev/zero", &p).unwrap();
        }
        let out = Command::new(bin())
            .args(["once", "--config", cfg.to_str().unwrap(), "--first-interval", "100ms"])
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(101), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not a regular file"), "{name}: {err}");
    }
    let events = std::fs::read_to_string(state.join("events.jsonl")).unwrap_or_default();
    assert!(events.contains("state_set_aside"), "{events}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_config_that_is_not_a_regular_file_is_refused_by_name() {
    let out = Command::new(bin()).args(["check", "--config", "/dev/zero"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "/dev/zero: cannot read the config file: it is a character device, not a regular file"
    );
    let dir = tempdir("files-bigconfig");
    let big = write(&dir, "big.json", &" ".repeat(4 * 1024 * 1024 + 1));
    let out =
        Command::new(bin()).args(["check", "--config", big.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("big.json: cannot read the config file: it is larger than 4 MiB"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `hostwatch ARGS` with stdout (and with `both`, stderr) a pipe closed before it
/// writes; returns the exit code.
fn with_closed_pipe(args: &[&str], both: bool) -> Option<i32> {
    let mut cmd = Command::new(bin());
    cmd.args(args).stdout(Stdio::piped());
    cmd.stderr(if both { Stdio::piped() } else { Stdio::null() });
    let mut child = cmd.spawn().unwrap();
    // Closing our ends makes every write of the child fail with EPIPE.
    drop(child.stdout.take());
    drop(child.stderr.take());
    child.wait().unwrap().code()
}

#[test]
fn a_closed_stdout_or_stderr_ends_commands_quietly() {
    let dir = tempdir("files-pipe");
    let cfg = config(&dir);
    let cfg = cfg.to_str().unwrap();
    assert_eq!(with_closed_pipe(&["check", "--config", cfg], true), Some(0));
    assert_eq!(with_closed_pipe(&["sample"], true), Some(0));
    assert_eq!(with_closed_pipe(&["silence", "--config", cfg, "list"], true), Some(0));
    assert_eq!(with_closed_pipe(&["--version"], true), Some(0));
    assert_eq!(with_closed_pipe(&["--help"], true), Some(0));
    assert_eq!(with_closed_pipe(&["--no-such-flag"], true), Some(1));
    let bad = write(&dir, "bad.json", "{\"interval\": ");
    assert_eq!(with_closed_pipe(&["--config", bad.to_str().unwrap(), "run"], true), Some(2));
    assert_eq!(with_closed_pipe(&["check", "--config", "/nonexistent.json"], true), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The names and contents of the files in `dir`.
fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect();
    v.sort();
    v
}

#[test]
fn dry_runs_never_set_a_corrupt_state_file_aside() {
    let dir = tempdir("files-dry-run");
    let cfg = config(&dir);
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    write(
        &state,
        "state.json",
        r#"{"version": 1, "saved_at": "yesterday", "delivery": {"outbox": [7]}}"#,
    );
    let before = listing(&state);
    let out = Command::new(bin())
        .args(["once", "--dry-run", "--config", cfg.to_str().unwrap(), "--first-interval", "100ms"])
        .output()
        .unwrap();
    assert!(
        out.status.code().is_some_and(|c| c != 101),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(listing(&state), before, "once --dry-run wrote in the state_dir");
    let d = Daemon::start(&cfg, true);
    assert!(
        d.wait_stderr(Duration::from_secs(10), "dry run: starting with what could be salvaged")
            .is_some()
    );
    std::thread::sleep(Duration::from_millis(1500));
    drop(d);
    assert_eq!(listing(&state), before, "run --dry-run wrote in the state_dir");
    // A real run salvages: the copy is kept aside and the salvaged state saved in its place.
    let out = Command::new(bin())
        .args(["once", "--config", cfg.to_str().unwrap(), "--first-interval", "100ms"])
        .output()
        .unwrap();
    assert!(out.status.code().is_some_and(|c| c != 101));
    let names: Vec<String> = listing(&state).into_iter().map(|(n, _)| n).collect();
    assert!(names.iter().any(|n| n.starts_with("state.json.broken-")), "{names:?}");
    assert!(names.iter().any(|n| n == "state.json"), "{names:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_replaced_state_dir_is_never_shared_by_two_daemons() {
    let dir = tempdir("lf-replaced-dir");
    let state = dir.join("state");
    let cfg = json!({
        "interval": "1s", "state_dir": state.display().to_string(),
        "rules": [{"name": "mem_any", "metric": "mem.used_percent", "warn": ">= 0"}]
    });
    let cfg = write(&dir, "config.json", &cfg.to_string());
    let mut first = Daemon::start(&cfg, false);
    assert!(first.wait_stderr(Duration::from_secs(20), "hostwatch started").is_some());
    std::fs::rename(&state, dir.join("state.old")).unwrap();
    // The first daemon may notice at once and adopt the new directory itself; either way
    // exactly one of the two may go on.
    std::fs::create_dir_all(&state).unwrap();
    let mut second = Daemon::start(&cfg, false);
    let end = std::time::Instant::now() + Duration::from_secs(20);
    let mut exited = None;
    while exited.is_none() && std::time::Instant::now() < end {
        if let Some(s) = first.child.try_wait().unwrap() {
            exited = Some(("first", s));
        } else if let Some(s) = second.child.try_wait().unwrap() {
            exited = Some(("second", s));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (who, status) = exited.expect("one of the two daemons gave way");
    assert!(!status.success(), "the {who} daemon stops with an error: {status:?}");
    std::thread::sleep(Duration::from_secs(3));
    let alive = [&mut first, &mut second]
        .into_iter()
        .filter_map(|d| d.child.try_wait().unwrap().is_none().then_some(()))
        .count();
    assert_eq!(alive, 1, "exactly one daemon owns the state_dir");
}
