//! The HTTP API of a running `hostwatch run`, end to end on loopback: `/health` turns 503 when
//! the loop stops ticking and 200 again when it resumes; `/status` holds the alert states and
//! none of the config's secrets; the silences API refuses changes without the token (403 when
//! none is configured, 401 without one, 403 with a wrong one), and a silence it adds stops a
//! firing rule's reminders at a recording receiver until it is deleted again; a scheduled
//! silence posted is checked, listed with its next window, names the alert it covers and shows
//! on the page as recurring; a dry run serves but refuses every change.

mod common;

use common::daemon::Daemon;
use common::receiver::{Receiver, free_port};
use common::{tempdir, write};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const TOKEN: &str = "test-token-0123456789abcdef";

/// One HTTP/1.1 request with extra headers: the status, the headers' text and the body.
fn request(
    method: &str,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<(u16, String, String)> {
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes())?;
    tcp.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, head.to_string(), body.to_string()))
}

fn get_json(port: u16, path: &str) -> (u16, Value) {
    let (status, _, body) = request("GET", port, path, &[], "").expect("GET");
    (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}")))
}

/// Waits (bounded) until `GET path` satisfies `pred`; returns the last answer.
fn wait_json(port: u16, path: &str, limit: Duration, pred: impl Fn(u16, &Value) -> bool) -> Value {
    let end = Instant::now() + limit;
    loop {
        if let Ok((status, _, body)) = request("GET", port, path, &[], "")
            && let Ok(v) = serde_json::from_str::<Value>(&body)
        {
            if pred(status, &v) {
                return v;
            }
            assert!(
                Instant::now() < end,
                "{path} never satisfied the condition; last: {status} {v}"
            );
        } else {
            assert!(Instant::now() < end, "{path} never answered");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn config(dir: &Path, port: u16, api: Value, extra: Value) -> PathBuf {
    let mut cfg = json!({
        "host": "api-test", "interval": "1s",
        "state_dir": dir.join("state").display().to_string(),
        "rules": [{"name": "load_any", "metric": "load.1", "warn": ">= 0"}],
        "escalation": {"remind_every": "1s"},
        "api": api,
    });
    if let (Value::Object(c), Value::Object(e)) = (&mut cfg, extra) {
        c.extend(e);
    }
    let _ = port;
    write(dir, "config.json", &cfg.to_string())
}

#[test]
fn health_turns_503_when_the_loop_stalls_and_200_when_it_resumes() {
    let dir = tempdir("api-health");
    let port = free_port();
    let stall = dir.join("stall");
    let cfg = config(&dir, port, json!({"listen": format!("127.0.0.1:{port}")}), json!({}));
    let mut cmd = std::process::Command::new(common::bin());
    cmd.args(["run", "--config", cfg.to_str().unwrap()])
        .env("HOSTWATCH_TEST_STALL_FILE", &stall)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let ok = wait_json(port, "/health", Duration::from_secs(20), |s, v| {
        s == 200 && v["ticks"].as_u64() >= Some(2)
    });
    assert_eq!(ok["status"], "ok");
    std::fs::write(&stall, b"").unwrap();
    let stalled = Instant::now();
    let bad = wait_json(port, "/health", Duration::from_secs(20), |s, _| s == 503);
    println!("503 after {:.1} s of stall: {bad}", stalled.elapsed().as_secs_f64());
    assert_eq!(bad["status"], "stalled");
    assert!(bad["last_tick_age_s"].as_f64().unwrap() > 3.0, "{bad}");
    assert!(bad["error"].as_str().unwrap().contains("has not ticked"), "{bad}");
    std::fs::remove_file(&stall).unwrap();
    let back = wait_json(port, "/health", Duration::from_secs(20), |s, _| s == 200);
    assert!(back["last_tick_age_s"].as_f64().unwrap() < 3.0, "{back}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn status_shows_the_alerts_and_none_of_the_secrets() {
    let dir = tempdir("api-status");
    let port = free_port();
    let receiver = Receiver::start();
    let secrets = [
        "hooksecretpath0123456789",
        "smtp-password-secret-42",
        "exec-env-secret-value-7",
        "am-basic-password-99",
        "webhook-header-secret-5",
        TOKEN,
        "heartbeat-uuid-5e1f3b",
        "slack-bot-token-xoxb-31",
    ];
    let extra = json!({
        "channels": {
            "hook": {"type": "webhook", "url": receiver.url(&format!("/{}", secrets[0])),
                     "headers": {"X-Auth": secrets[4]}},
            "mail": {"type": "email", "server": "127.0.0.1:1", "tls": "starttls", "username": "u",
                     "password": secrets[1], "from": "a@example.com", "to": ["b@example.com"]},
            "pager": {"type": "exec", "command": ["/bin/true"], "env": {"PAGER_KEY": secrets[2]}},
            "am": {"type": "alertmanager", "url": format!("http://user:{}@127.0.0.1:1", secrets[3])},
            "chat": {"type": "slack", "token": secrets[7], "channel": "#ops"}
        },
        "routes": [{"channels": ["hook", "mail", "pager", "am", "chat"]}],
        "heartbeat": {"url": receiver.url(&format!("/ping/{}", secrets[6])), "every": "1s"},
    });
    let cfg =
        config(&dir, port, json!({"listen": format!("127.0.0.1:{port}"), "token": TOKEN}), extra);
    let d = Daemon::start(&cfg, false);
    let status = wait_json(port, "/status", Duration::from_secs(20), |_, v| {
        v["alerts"].as_array().is_some_and(|a| a.iter().any(|x| x["state"] == "firing"))
            && v["channels"]["mail"]["consecutive_failures"].as_u64() >= Some(1)
    });
    let alert =
        status["alerts"].as_array().unwrap().iter().find(|a| a["rule"] == "load_any").unwrap();
    assert_eq!(alert["severity"], "warning");
    assert_eq!(alert["series"], "load.1");
    assert_eq!(alert["threshold"], ">= 0");
    assert!(alert["since"].as_str().unwrap().ends_with('Z'));
    assert!(alert["last_notified"].is_string());
    assert_eq!(status["host"], "api-test");
    assert!(status["series"].as_array().unwrap().len() > 10);
    for name in ["hook", "mail", "pager", "am", "chat"] {
        assert!(status["channels"][name].is_object(), "{name} missing: {status}");
    }
    // Every document the API serves, and the logs, are free of every secret.
    let mut served = status.to_string();
    for path in ["/status", "/metrics", "/", "/silences", "/health"] {
        served.push_str(&request("GET", port, path, &[], "").unwrap().2);
    }
    let logs: String = d.stderr.try_iter().collect::<Vec<_>>().join("\n");
    drop(d);
    assert!(logs.contains("api listening"), "{logs}");
    for s in secrets {
        assert!(!served.contains(s), "the API served a secret: {s}");
        assert!(!logs.contains(s), "the log shows a secret: {s}");
    }
}

#[test]
fn silences_need_the_token_and_stop_a_firing_rule_until_deleted() {
    let dir = tempdir("api-silences");
    let port = free_port();
    let receiver = Receiver::start();
    let extra = json!({
        "channels": {"hook": {"type": "webhook", "url": receiver.url("/hook")}},
        "routes": [{"channels": ["hook"]}],
        "silences": [{"id": "planned", "rule": "nothing_*", "until": "2099-01-01T00:00:00Z"}],
    });
    let cfg =
        config(&dir, port, json!({"listen": format!("127.0.0.1:{port}"), "token": TOKEN}), extra);
    let _d = Daemon::start(&cfg, false);
    // Reminders arrive every second while nothing silences the rule.
    let got = receiver.wait_for(3, Duration::from_secs(20));
    assert!(got.len() >= 3, "{} notifications before the silence", got.len());

    let body = r#"{"rule": "load_*", "for": "1h", "comment": "<b>maintenance</b>"}"#;
    let bearer = format!("Bearer {TOKEN}");
    let (s, _, _) = request("POST", port, "/silences", &[], body).unwrap();
    assert_eq!(s, 401, "no token");
    let (s, _, _) = request(
        "POST",
        port,
        "/silences",
        &[("Authorization", "Bearer wrong-token-0123456789")],
        body,
    )
    .unwrap();
    assert_eq!(s, 403, "wrong token");
    let (s, _, _) =
        request("POST", port, "/silences", &[("Authorization", &bearer)], "{\"for\": 3}").unwrap();
    assert_eq!(s, 400, "bad body");
    let (s, _, answer) =
        request("POST", port, "/silences", &[("Authorization", &bearer)], body).unwrap();
    assert_eq!(s, 201, "{answer}");
    let id = serde_json::from_str::<Value>(&answer).unwrap()["id"].as_str().unwrap().to_string();

    // The same store as `hostwatch silence`.
    let listed = common::run(&["silence", "--config", cfg.to_str().unwrap(), "list", "--json"]);
    assert!(common::stdout(&listed).contains(&id), "{}", common::stdout(&listed));
    let (_, api_list) = get_json(port, "/silences");
    assert_eq!(api_list["silences"][0]["id"], "planned");
    assert_eq!(api_list["silences"][0]["source"], "config");
    assert_eq!(api_list["silences"][1]["id"], id.as_str());
    assert_eq!(api_list["silences"][1]["source"], "store");
    assert_eq!(api_list["silences"][1]["comment"], "<b>maintenance</b>");
    let (s, _, body) =
        request("DELETE", port, "/silences/planned", &[("Authorization", &bearer)], "").unwrap();
    assert_eq!(s, 409, "a config silence is removed in the config: {body}");
    assert!(body.contains("config file"), "{body}");

    wait_json(port, "/status", Duration::from_secs(10), |_, v| {
        v["alerts"].as_array().is_some_and(|a| a.iter().any(|x| x["silenced_by"] == id.as_str()))
    });
    // A reminder decided in the tick before the silence applied may still be on its way
    // (the worker delivers after the tick; slow on a loaded machine): let it land first.
    std::thread::sleep(Duration::from_millis(1500));
    let before = receiver.requests().len();
    std::thread::sleep(Duration::from_secs(4));
    let after = receiver.requests().len();
    assert_eq!(before, after, "notifications arrived while silenced");

    let (s, _, _) = request("DELETE", port, &format!("/silences/{id}"), &[], "").unwrap();
    assert_eq!(s, 401);
    let (s, _, _) =
        request("DELETE", port, &format!("/silences/{id}"), &[("Authorization", &bearer)], "")
            .unwrap();
    assert_eq!(s, 204);
    let (s, _, _) =
        request("DELETE", port, &format!("/silences/{id}"), &[("Authorization", &bearer)], "")
            .unwrap();
    assert_eq!(s, 404);
    let resumed = receiver.wait_for(after + 2, Duration::from_secs(20));
    assert!(resumed.len() >= after + 2, "reminders did not resume after the delete");
}

#[test]
fn without_a_token_every_change_is_refused() {
    let dir = tempdir("api-no-token");
    let port = free_port();
    let cfg = config(&dir, port, json!({"listen": format!("127.0.0.1:{port}")}), json!({}));
    let _d = Daemon::start(&cfg, false);
    wait_json(port, "/health", Duration::from_secs(20), |s, _| s == 200);
    let any = [("Authorization", "Bearer anything-0123456789abcdef")];
    let (s, _, body) = request("POST", port, "/silences", &any, r#"{"for": "1h"}"#).unwrap();
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("api.token"), "{body}");
    let (s, _, _) = request("DELETE", port, "/silences/s1", &any, "").unwrap();
    assert_eq!(s, 403);
    let (s, head, _) = request("PUT", port, "/status", &[], "").unwrap();
    assert_eq!(s, 405);
    assert!(head.contains("Allow: GET, HEAD"), "{head}");
    let (s, _, body) = request("GET", port, "/nowhere", &[], "").unwrap();
    assert_eq!(s, 404);
    assert!(serde_json::from_str::<Value>(&body).unwrap()["error"].is_string());
}

#[test]
fn a_dry_run_serves_but_changes_no_silence() {
    let dir = tempdir("api-dry-run");
    // The config's port is taken (by the real daemon, say): a dry run leaves it alone and
    // serves only where --listen says.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().port();
    let port = free_port();
    let api = json!({"listen": format!("127.0.0.1:{busy}"), "token": TOKEN});
    let cfg = config(&dir, busy, api, json!({}));
    let listen = format!("127.0.0.1:{port}");
    let mut child = std::process::Command::new(common::bin())
        .args(["run", "--dry-run", "--config", cfg.to_str().unwrap(), "--listen", &listen])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_json(port, "/health", Duration::from_secs(20), |s, _| s == 200);
    let bearer = format!("Bearer {TOKEN}");
    let auth = [("Authorization", bearer.as_str())];
    let (s, _, body) = request("POST", port, "/silences", &auth, r#"{"for": "1h"}"#).unwrap();
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("dry run"), "{body}");
    let (s, _, _) = request("DELETE", port, "/silences/s1", &auth, "").unwrap();
    assert_eq!(s, 403);
    assert!(!dir.join("state/silences.json").exists(), "a dry run wrote the silences store");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_port_that_cannot_be_bound_is_refused_at_start() {
    let dir = tempdir("api-bind");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let cfg = config(&dir, port, json!({"listen": format!("127.0.0.1:{port}")}), json!({}));
    let out = common::run(&["run", "--config", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(err.contains("api.listen") && err.contains("cannot listen"), "{err}");
    // --listen overrides the config.
    let other = free_port();
    let mut child = std::process::Command::new(common::bin())
        .args(["run", "--config", cfg.to_str().unwrap(), "--listen", &format!("127.0.0.1:{other}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_json(other, "/health", Duration::from_secs(20), |s, _| s == 200);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_scheduled_silence_posted_through_the_api_is_listed_shown_and_holds_the_rule() {
    let dir = tempdir("api-schedule");
    let port = free_port();
    let cfg = config(
        &dir,
        port,
        json!({"listen": format!("127.0.0.1:{port}"), "token": TOKEN}),
        json!({}),
    );
    let _d = Daemon::start(&cfg, false);
    wait_json(port, "/status", Duration::from_secs(20), |_, v| v["ticks"].as_u64() > Some(0));
    let bearer = format!("Bearer {TOKEN}");
    let post = |body: &str| request("POST", port, "/silences", &[("Authorization", &bearer)], body);
    for (bad, why) in [
        (
            r#"{"schedule": {"from": "02:00", "to": "04:00", "tz": "Mars/Base"}}"#,
            "schedule.tz: unknown time zone \"Mars/Base\"",
        ),
        (r#"{"schedule": {"from": "02:00", "to": "02:00"}}"#, "from and to are both 02:00"),
        (
            r#"{"schedule": {"days": ["sundy"], "from": "02:00", "to": "04:00"}}"#,
            "unknown day \"sundy\"",
        ),
    ] {
        let (s, _, body) = post(bad).unwrap();
        assert_eq!(s, 400, "{bad}: {body}");
        let answer: Value = serde_json::from_str(&body).unwrap();
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(why), "{bad}: {error}");
    }
    // A window of two hours around now, every day, in Lisbon's wall time.
    let hhmm = |shift: &str| {
        let o = std::process::Command::new("date")
            .args(["-d", shift, "+%H:%M"])
            .env("TZ", "Europe/Lisbon")
            .output()
            .unwrap();
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    };
    let schedule = json!({"from": hhmm("-1 hour"), "to": hhmm("+1 hour"), "tz": "Europe/Lisbon"});
    let body = json!({"rule": "load_*", "schedule": schedule, "comment": "<i>window</i>"});
    let (s, _, answer) = post(&body.to_string()).unwrap();
    assert_eq!(s, 201, "{answer}");
    let id = serde_json::from_str::<Value>(&answer).unwrap()["id"].as_str().unwrap().to_string();

    let (_, listed) = get_json(port, "/silences");
    let s = &listed["silences"][0];
    assert_eq!((s["id"].as_str(), s["until"].clone()), (Some(id.as_str()), Value::Null));
    assert_eq!(s["schedule"]["tz"], "Europe/Lisbon");
    assert_eq!(s["schedule"]["days"].as_array().map(Vec::len), Some(7));
    assert!(
        s["schedule"]["next_start"].is_string() && s["schedule"]["next_end"].is_string(),
        "{s}"
    );
    // In force now: the loop names it for the firing rule, and the page shows it as recurring.
    wait_json(port, "/status", Duration::from_secs(10), |_, v| {
        v["alerts"].as_array().is_some_and(|a| a.iter().any(|x| x["silenced_by"] == id.as_str()))
    });
    let (_, _, page) = request("GET", port, "/", &[], "").unwrap();
    assert!(page.contains("recurring <code>every day "), "{page}");
    assert!(
        page.contains("Europe/Lisbon</code>") && page.contains("in force now, until "),
        "{page}"
    );
    assert!(page.contains("&lt;i&gt;window&lt;/i&gt;") && !page.contains("<i>window"), "{page}");
}
