//! `hostwatch status` against a real `hostwatch run` with its API on a free loopback port:
//! the exit code follows the worst firing alert (1 warning, 2 critical, 0 nothing), the text
//! names the rule and the JSON is the `/status` document; after the daemon stopped, the
//! state file answers (and the output says so); with neither, exit 3.

mod common;

use common::daemon::Daemon;
use common::receiver::free_port;
use common::{tempdir, write};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A config with one rule, `interval: 1s`, the API on `listen`.
fn config(dir: &Path, rule: Value, listen: &str) -> PathBuf {
    let cfg = json!({
        "host": "status-host", "interval": "1s",
        "state_dir": dir.join("state").display().to_string(),
        "rules": [rule],
        "api": {"listen": listen},
    });
    write(dir, "config.json", &cfg.to_string())
}

/// `hostwatch status --config CFG ARGS…`: exit code and stdout.
fn status(cfg: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(common::bin())
        .args(["status", "--config", cfg.to_str().unwrap()])
        .args(args)
        .output()
        .expect("run hostwatch status");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), text)
}

/// Polls `status` (bounded) until it exits with `code` through the API; returns its text.
fn wait_for_code(cfg: &Path, code: i32) -> String {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let (got, text) = status(cfg, &[]);
        if got == code && text.contains("from the daemon's API") {
            return text;
        }
        assert!(Instant::now() < end, "status never exited {code} from the API: {got}\n{text}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// SIGTERM, then waits (bounded) until the daemon has exited.
fn stop(mut daemon: Daemon) {
    daemon.signal("-TERM");
    let end = Instant::now() + Duration::from_secs(30);
    while daemon.child.try_wait().expect("try_wait").is_none() {
        assert!(Instant::now() < end, "the daemon did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_warning_from_the_api_then_from_the_state_file_once_the_daemon_stopped() {
    let dir = tempdir("status-warning");
    let port = free_port();
    let rule = json!({"name": "load_any", "metric": "load.1", "warn": ">= 0"});
    let cfg = config(&dir, rule, &format!("127.0.0.1:{port}"));
    let daemon = Daemon::start(&cfg, false);

    let text = wait_for_code(&cfg, 1);
    println!("{text}");
    assert!(text.lines().any(|l| l.starts_with("WARNING") && l.contains("load_any")), "{text}");
    assert!(text.contains("WARNING on status-host: 0 critical and 1 warning firing"), "{text}");

    let (code, json_text) = status(&cfg, &["--format", "json"]);
    assert_eq!(code, 1, "{json_text}");
    let doc: Value = serde_json::from_str(&json_text).expect("status --format json is JSON");
    assert_eq!(doc["source"], "api");
    assert_eq!(doc["exit_code"], 1);
    assert_eq!(doc["host"], "status-host");
    assert_eq!(doc["healthy"], true);
    let alert = doc["alerts"].as_array().unwrap().iter().find(|a| a["rule"] == "load_any");
    let alert = alert.unwrap_or_else(|| panic!("no load_any alert: {doc:#}"));
    assert_eq!((&alert["state"], &alert["severity"]), (&json!("firing"), &json!("warning")));

    // The same through --url (the config's api removed from the picture).
    let (code, text) = status(&cfg, &["--url", &format!("http://127.0.0.1:{port}")]);
    assert_eq!(code, 1, "{text}");

    // A silenced alert still counts (as in `once`), marked with its silence.
    let out = common::run(&[
        "silence",
        "--config",
        cfg.to_str().unwrap(),
        "add",
        "--rule",
        "load_any",
        "--for",
        "1h",
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let end = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let (code, text) = status(&cfg, &[]);
        if text.contains("[silenced by ") {
            assert_eq!(code, 1, "{text}");
            break text;
        }
        assert!(Instant::now() < end, "the silence never showed: {text}");
        std::thread::sleep(Duration::from_millis(300));
    };
    println!("{text}");
    assert!(text.contains("1 firing silenced, counted all the same"), "{text}");

    stop(daemon);
    let (code, text) = status(&cfg, &[]);
    println!("{text}");
    assert_eq!(code, 1, "the saved firing alert gives the exit code: {text}");
    assert!(text.contains("did not answer") && text.contains("state file"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("WARNING") && l.contains("load_any")), "{text}");
    assert!(text.contains("[silenced by "), "the state file path marks it too: {text}");
    let (code, json_text) = status(&cfg, &["--format", "json"]);
    assert_eq!(code, 1);
    let doc: Value = serde_json::from_str(&json_text).expect("JSON from the state file");
    assert_eq!(doc["source"], "state_file");
    assert_eq!(doc["alerts"][0]["rule"], "load_any");
    assert_eq!(doc["alerts"][0]["state"], "firing");
    assert!(doc["state_file_mtime"].is_string(), "{doc:#}");
}

#[test]
fn a_critical_alert_exits_2_and_an_unspecified_listen_address_is_asked_on_loopback() {
    let dir = tempdir("status-critical");
    let rule = json!({"name": "load_crit", "metric": "load.1", "crit": ">= 0"});
    let cfg = config(&dir, rule, &format!("0.0.0.0:{}", free_port()));
    let daemon = Daemon::start(&cfg, false);
    let text = wait_for_code(&cfg, 2);
    println!("{text}");
    assert!(text.lines().any(|l| l.starts_with("CRITICAL") && l.contains("load_crit")), "{text}");
    assert!(text.contains("at http://127.0.0.1:"), "{text}");
    stop(daemon);
    let (code, text) = status(&cfg, &[]);
    assert_eq!(code, 2, "{text}");
}

#[test]
fn nothing_firing_exits_0() {
    let dir = tempdir("status-ok");
    let rule = json!({"name": "load_huge", "metric": "load.1", "warn": "> 100000"});
    let cfg = config(&dir, rule, &format!("127.0.0.1:{}", free_port()));
    let _daemon = Daemon::start(&cfg, false);
    let text = wait_for_code(&cfg, 0);
    println!("{text}");
    assert!(text.starts_with("OK on status-host: 0 critical and 0 warning firing"), "{text}");
}

#[test]
fn no_daemon_and_no_state_file_exits_3() {
    let dir = tempdir("status-unknown");
    let rule = json!({"name": "load_any", "metric": "load.1", "warn": ">= 0"});
    let cfg = config(&dir, rule, &format!("127.0.0.1:{}", free_port()));
    let (code, text) = status(&cfg, &[]);
    println!("{text}");
    assert_eq!(code, 3, "{text}");
    assert!(text.starts_with("HOSTWATCH UNKNOWN - the daemon's API at"), "{text}");
    assert!(text.contains("state file"), "{text}");
}

#[test]
fn a_stalled_loop_exits_3_and_says_so() {
    let dir = tempdir("status-stalled");
    let rule = json!({"name": "load_any", "metric": "load.1", "warn": ">= 0"});
    let cfg = config(&dir, rule, &format!("127.0.0.1:{}", free_port()));
    let stall = dir.join("stall");
    let mut child = Command::new(common::bin())
        .args(["run", "--config", cfg.to_str().unwrap()])
        .env("HOSTWATCH_TEST_STALL_FILE", &stall)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start hostwatch run");
    wait_for_code(&cfg, 1);
    std::fs::write(&stall, "").unwrap();
    let end = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let (code, text) = status(&cfg, &[]);
        if code == 3 {
            break text;
        }
        assert!(Instant::now() < end, "status never reported the stalled loop: {text}");
        std::thread::sleep(Duration::from_millis(300));
    };
    println!("{text}");
    assert!(text.contains("STALLED: the daemon's loop has not ticked"), "{text}");
    std::fs::remove_file(&stall).unwrap();
    let _ = child.kill();
    let _ = child.wait();
}

/// A server on a free loopback port that answers every connection with `answer` (after
/// reading the request head), or holds it open without a word when `answer` is `None`.
fn fake_api(answer: Option<Vec<u8>>) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut s in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            match &answer {
                Some(a) => {
                    let _ = s.write_all(a);
                }
                None => held.push(s),
            }
        }
    });
    port
}

#[test]
fn a_large_status_document_is_read_whole_and_other_servers_on_the_port_are_unknown() {
    let dir = tempdir("status-fake");
    let rule = json!({"name": "r", "metric": "load.1", "warn": "> 100000"});
    // No daemon and no state file: only the API can answer.
    let cfg = config(&dir, rule, &format!("127.0.0.1:{}", free_port()));
    // A host with thousands of series answers well beyond 64 KiB.
    let series: Vec<Value> = (0..3000)
        .map(|i| json!({"series": format!("net.rx_bytes{{iface=veth{i:08x}}}"), "value": 1.0}))
        .collect();
    let doc = json!({"host": "big", "healthy": true, "series": series, "last_tick_age_s": 0.5,
        "alerts": [{"state": "firing", "severity": "critical", "rule": "disk_root",
                    "labels": {"mount": "/"}, "since": "2026-12-02T01:00:00Z"}]})
    .to_string();
    println!("the /status document: {} bytes", doc.len());
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{doc}",
        doc.len()
    );
    let port = fake_api(Some(answer.into_bytes()));
    let (code, text) = status(&cfg, &["--url", &format!("http://127.0.0.1:{port}")]);
    println!("{text}");
    assert_eq!(code, 2, "{text}");
    assert!(text.lines().any(|l| l.starts_with("CRITICAL") && l.contains("disk_root")), "{text}");
    // Basic authentication in --url (a proxy in front of the API) is never printed.
    let with_password = format!("http://ops:pr0xy-pass@127.0.0.1:{port}");
    for format in ["text", "json"] {
        let (code, text) = status(&cfg, &["--url", &with_password, "--format", format]);
        assert_eq!(code, 2, "{text}");
        assert!(!text.contains("pr0xy-pass"), "{text}");
    }
    let (code, text) =
        status(&cfg, &["--url", &format!("http://ops:pr0xy-pass@127.0.0.1:{}", free_port())]);
    assert_eq!(code, 3, "{text}");
    assert!(!text.contains("pr0xy-pass"), "{text}");

    // Not hostwatch on the port: unknown, saying why.
    let port = fake_api(Some(b"SSH-2.0-OpenSSH_9.6\r\n".to_vec()));
    let (code, text) = status(&cfg, &["--url", &format!("http://127.0.0.1:{port}")]);
    println!("{text}");
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("not an HTTP/1.x answer"), "{text}");

    // A server that never answers: unknown once the request's time is up.
    let port = fake_api(None);
    let (code, text) = status(&cfg, &["--url", &format!("http://127.0.0.1:{port}")]);
    println!("{text}");
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("timed out"), "{text}");
}

#[test]
fn a_broken_state_file_is_unknown_never_ok() {
    let dir = tempdir("status-broken-state");
    let rule = json!({"name": "r", "metric": "load.1", "warn": "> 100000"});
    let cfg = config(&dir, rule, &format!("127.0.0.1:{}", free_port()));
    std::fs::create_dir_all(dir.join("state")).unwrap();
    std::fs::write(dir.join("state/state.json"), "{\"version\": 1, \"alerts\": [").unwrap();
    let (code, text) = status(&cfg, &[]);
    println!("{text}");
    assert_eq!(code, 3, "a state file that cannot be read tells nothing: {text}");
    assert!(text.contains("state file") && text.contains("not valid"), "{text}");
}
