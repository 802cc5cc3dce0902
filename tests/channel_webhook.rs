//! The generic webhook channel end to end: the real binary (`hostwatch test-notify hook`)
//! posts to the recording receiver on loopback. Proves the documented JSON body, the
//! configured headers with `${TOKEN}` expanded from the environment, hostwatch's own headers,
//! the `alertmanager-webhook` body, the reading of 500 / 429 + Retry-After / 404 / a hung
//! receiver, and that a secret in the URL never reaches standard error.

#![cfg(feature = "webhook")]

mod common;

use common::receiver::Receiver;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

/// The token the config reads as `${TOKEN}`.
const TOKEN: &str = "tok-3f9a1c";

/// Writes a config with one webhook channel `hook` (`extra` merged into its settings).
fn config(test: &str, url: &str, extra: Value) -> PathBuf {
    let dir = common::tempdir(&format!("webhook-{test}"));
    let mut hook = json!({
        "type": "webhook",
        "url": url,
        "headers": {"Authorization": "Bearer ${TOKEN}", "X-Team": "infra"},
        "timeout": "2s",
    });
    if let (Some(h), Some(e)) = (hook.as_object_mut(), extra.as_object()) {
        h.extend(e.clone());
    }
    let config = json!({"host": "test-host", "channels": {"hook": hook}});
    common::write(&dir, "hostwatch.json", &config.to_string())
}

/// `hostwatch test-notify hook --config FILE [args]` with `TOKEN` set.
fn test_notify(config: &PathBuf, args: &[&str]) -> Output {
    Command::new(common::bin())
        .arg("test-notify")
        .arg("hook")
        .arg("--config")
        .arg(config)
        .args(args)
        .env("TOKEN", TOKEN)
        .env_remove("HOSTWATCH_HOST")
        .env_remove("HOSTWATCH_INTERVAL")
        .env_remove("HOSTWATCH_STATE_DIR")
        .output()
        .expect("run hostwatch")
}

/// The only request the receiver got.
fn only_request(receiver: &Receiver) -> Value {
    let requests = receiver.wait_for(1, Duration::from_secs(5));
    assert_eq!(requests.len(), 1, "expected one request: {requests:#?}");
    requests.into_iter().next().unwrap()
}

fn is_rfc3339(v: &Value) -> bool {
    v.as_str().is_some_and(|s| hostwatch::config::parse_rfc3339(s).is_ok())
}

#[test]
fn json_body_is_the_documented_event() {
    let receiver = Receiver::start();
    let config = config("json", &receiver.url("/hook"), json!({"format": "json"}));
    let out = test_notify(&config, &[]);
    assert!(out.status.success(), "stderr: {}", common::stderr(&out));
    assert_eq!(common::stdout(&out).trim(), "hook: accepted: HTTP 200: ok");

    let request = only_request(&receiver);
    assert_eq!(request["method"], "POST");
    assert_eq!(request["path"], "/hook");
    let body = &request["json"];
    let mut keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    let documented = [
        "description",
        "episode_key",
        "event",
        "host",
        "key",
        "labels",
        "metric",
        "rule",
        "seq",
        "series",
        "severity",
        "since",
        "test",
        "threshold",
        "ts",
        "value",
        "value_text",
    ];
    assert_eq!(keys, documented);
    assert_eq!(body["host"], "test-host");
    assert_eq!(body["rule"], "hostwatch_test");
    assert_eq!(body["series"], "cpu.usage");
    assert_eq!(body["metric"], "cpu.usage");
    assert_eq!(body["labels"], json!({}));
    assert_eq!(body["severity"], "warning");
    assert_eq!(body["event"], "firing");
    assert_eq!(body["value"], 99.9);
    assert_eq!(body["value_text"], "99.9%");
    assert_eq!(body["threshold"], "> 95");
    assert_eq!(body["seq"], 1);
    assert_eq!(body["test"], true);
    assert!(body["key"].as_str().unwrap().starts_with("hostwatch_test:"));
    assert!(body["ts"].as_f64().unwrap() > 1.6e9);
    // The body is the library's AlertEvent, field for field.
    let event: hostwatch::event::AlertEvent = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(serde_json::to_value(&event).unwrap(), *body);

    // --dry-run prints the same body without sending.
    let dry = test_notify(&config, &["--dry-run"]);
    assert!(dry.status.success());
    let printed: Value = serde_json::from_str(common::stdout(&dry).trim()).unwrap();
    assert_eq!(printed["rule"], "hostwatch_test");
    assert_eq!(receiver.requests().len(), 1, "--dry-run must not send");
}

#[test]
fn configured_and_own_headers_arrive() {
    let receiver = Receiver::start();
    let out = test_notify(&config("headers", &receiver.url("/hook"), json!({})), &[]);
    assert!(out.status.success(), "stderr: {}", common::stderr(&out));
    let request = only_request(&receiver);
    let headers = &request["headers"];
    assert_eq!(headers["authorization"], format!("Bearer {TOKEN}"));
    assert_eq!(headers["x-team"], "infra");
    assert_eq!(headers["content-type"], "application/json");
    let agent = headers["user-agent"].as_str().unwrap();
    assert_eq!(agent, concat!("hostwatch/", env!("CARGO_PKG_VERSION")));
    let key = request["json"]["key"].as_str().unwrap();
    assert_eq!(headers["x-hostwatch-key"], key);
    assert_eq!(headers["idempotency-key"], format!("\"{key}\""));
}

#[test]
fn alertmanager_webhook_body() {
    let receiver = Receiver::start();
    let extra = json!({"format": "alertmanager-webhook"});
    let out = test_notify(
        &config("amhook", &receiver.url("/alerts"), extra),
        &["--severity", "critical"],
    );
    assert!(out.status.success(), "stderr: {}", common::stderr(&out));
    let request = only_request(&receiver);
    let body = &request["json"];
    assert_eq!(body["version"], "4");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["receiver"], "hook");
    assert_eq!(body["externalURL"], "");
    assert!(body["groupKey"].as_str().unwrap().starts_with("hostwatch_test:"));
    let labels =
        json!({"alertname": "hostwatch_test", "host": "test-host", "severity": "critical"});
    assert_eq!(body["groupLabels"], labels);
    assert_eq!(body["commonLabels"], labels);
    let alerts = body["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1);
    let alert = &alerts[0];
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["labels"], labels);
    assert_eq!(body["commonAnnotations"], alert["annotations"]);
    let annotations = alert["annotations"].as_object().unwrap();
    let mut names: Vec<&str> = annotations.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["description", "summary", "threshold", "value"]);
    assert_eq!(alert["annotations"]["value"], "99.9%");
    assert_eq!(alert["annotations"]["threshold"], "> 95");
    assert!(is_rfc3339(&alert["startsAt"]), "{}", alert["startsAt"]);
    assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(alert["generatorURL"], "");
    let fingerprint = alert["fingerprint"].as_str().unwrap();
    assert!(fingerprint.len() == 16 && fingerprint.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(request["headers"]["x-hostwatch-key"].is_string());
}

#[test]
fn server_error_is_temporary() {
    let receiver = Receiver::start();
    receiver.script("/hook", json!([{"status": 500, "body": "database is down"}]));
    let out = test_notify(&config("500", &receiver.url("/hook"), json!({})), &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = common::stderr(&out);
    assert!(err.contains("webhook hook"), "{err}");
    assert!(err.contains("HTTP 500: database is down"), "{err}");
    assert!(err.contains("(temporary)"), "{err}");
}

#[test]
fn rate_limit_is_temporary_with_the_delay() {
    let receiver = Receiver::start();
    let answer = json!([{"status": 429, "body": "slow down", "headers": {"Retry-After": "17"}}]);
    receiver.script("/hook", answer);
    let out = test_notify(&config("429", &receiver.url("/hook"), json!({})), &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = common::stderr(&out);
    assert!(err.contains("HTTP 429"), "{err}");
    assert!(err.contains("temporary; receiver asks to retry after 17s"), "{err}");
}

#[test]
fn not_found_is_permanent() {
    let receiver = Receiver::start();
    receiver.script("/hook", json!([{"status": 404, "body": "no such hook"}]));
    let out = test_notify(&config("404", &receiver.url("/hook"), json!({})), &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = common::stderr(&out);
    assert!(err.contains("webhook hook"), "{err}");
    assert!(err.contains("HTTP 404: no such hook (permanent)"), "{err}");
}

#[test]
fn a_hung_receiver_times_out_as_temporary() {
    let receiver = Receiver::start();
    receiver.script("/hook", json!([{"status": 200, "body": "late", "delay": 5}]));
    let extra = json!({"timeout": "1s"});
    let out = test_notify(&config("hang", &receiver.url("/hook"), extra), &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = common::stderr(&out);
    assert!(err.contains("webhook hook"), "{err}");
    assert!(err.contains("(temporary)"), "{err}");
}

#[test]
fn secrets_in_the_url_never_reach_stderr() {
    let receiver = Receiver::start();
    let secret_path = "/hooks/S3CRETPATH42";
    let url = receiver.url(&format!("{secret_path}?token=T0KENQ99"));
    // A receiver that quotes the request line back in its error page.
    let page = format!("unknown hook {secret_path}?token=T0KENQ99 (and {secret_path})");
    receiver.script(secret_path, json!([{"status": 404, "body": page}]));
    let out = test_notify(&config("secret", &url, json!({})), &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = common::stderr(&out);
    assert!(!err.contains("S3CRETPATH42") && !err.contains("T0KENQ99"), "{err}");
    assert!(err.contains(&format!("http://127.0.0.1:{}/<redacted>", receiver.port)), "{err}");
    assert_eq!(only_request(&receiver)["query"], "token=T0KENQ99");

    // Nothing listening: the network error names the redacted URL only.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}{secret_path}?token=T0KENQ99");
    let out = test_notify(&config("secret-down", &url, json!({})), &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = common::stderr(&out);
    assert!(!err.contains("S3CRETPATH42") && !err.contains("T0KENQ99"), "{err}");
    assert!(err.contains("(temporary)"), "{err}");
}

#[test]
fn a_redirect_is_not_followed_and_credentials_stay_home() {
    let elsewhere = Receiver::start();
    let receiver = Receiver::start();
    let target = elsewhere.url("/stolen");
    receiver.set_default(json!({"status": 307, "headers": {"Location": target}, "body": ""}));
    let cfg = config("redirect", &receiver.url("/hook"), json!({}));
    let out = test_notify(&cfg, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("HTTP 307")
            && err.contains("redirects are not followed")
            && err.contains("(permanent)"),
        "{err}"
    );
    assert_eq!(receiver.requests().len(), 1);
    assert!(elsewhere.requests().is_empty(), "the body and the token went to the redirect target");
}

/// HTTPS through rustls (the shared client configuration): a receiver with a certificate from a CA made
/// for the test is accepted when that CA is trusted (`SSL_CERT_FILE`), refused otherwise.
#[test]
fn https_receivers_are_verified_against_the_trusted_cas() {
    let dir = common::tempdir("webhook-tls-certs");
    let certs = common::make_certs(&dir);
    let receiver = Receiver::start_tls(&certs.join("server.pem"), &certs.join("server.key"));
    let cfg = config("https", &format!("https://localhost:{}/hook", receiver.port), json!({}));
    let trusted = Command::new(common::bin())
        .args(["test-notify", "hook", "--config"])
        .arg(&cfg)
        .env("TOKEN", TOKEN)
        .env("SSL_CERT_FILE", certs.join("ca.pem"))
        .output()
        .expect("run hostwatch");
    let out = String::from_utf8_lossy(&trusted.stdout);
    assert!(trusted.status.success(), "{out}{}", String::from_utf8_lossy(&trusted.stderr));
    assert!(out.contains("hook: accepted: HTTP 200: ok"), "{out}");
    let untrusted = test_notify(&cfg, &[]);
    assert_eq!(untrusted.status.code(), Some(1));
    let err = String::from_utf8_lossy(&untrusted.stderr).to_lowercase();
    assert!(err.contains("certificate") || err.contains("tls") || err.contains("ssl"), "{err}");
}
