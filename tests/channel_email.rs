//! The e-mail channel against a real SMTP server (aiosmtpd, tests/support/smtp_server.py) on
//! loopback, through the real binary: `hostwatch test-notify mail --config F`.
//!
//! Covers plain SMTP, STARTTLS and implicit TLS with a CA made per test by the openssl CLI,
//! AUTH PLAIN/LOGIN, certificate and password failures, 4xx/5xx replies, several recipients,
//! the shape of the received message (parsed by Python's `email` package), hostile text and a
//! server that never answers. Needs python3 with aiosmtpd and the openssl command.

#![cfg(feature = "email")]

mod common;

use common::smtp::Smtp;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Output;

const USER: &str = "alerts";
const PASSWORD: &str = "c0rrect-h0rse-Battery";

/// Writes a config whose only channel is `mail` (host `host`) and returns its path.
fn config(dir: &Path, host: &str, channel: Value) -> PathBuf {
    let mut channel = channel;
    let defaults = json!({
        "type": "email", "tls": "none", "from": "Hostwatch <hostwatch@example.com>",
        "to": ["oncall@example.com"], "timeout": "5s"
    });
    for (k, v) in defaults.as_object().unwrap() {
        channel.as_object_mut().unwrap().entry(k.clone()).or_insert(v.clone());
    }
    let text = json!({"host": host, "channels": {"mail": channel}}).to_string();
    common::write(dir, "config.json", &text)
}

fn test_notify(config: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["test-notify", "mail", "--config", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    common::run(&args)
}

fn server(smtp: &Smtp) -> String {
    format!("127.0.0.1:{}", smtp.port)
}

fn all_output(o: &Output) -> String {
    format!("{}{}", common::stdout(o), common::stderr(o))
}

#[test]
fn plain_delivery_reaches_both_recipients_with_a_well_formed_message() {
    let dir = common::tempdir("email-plain");
    let smtp = Smtp::start(&dir, &[]);
    let to = json!(["oncall@example.com", "Ops Team <ops@example.com>"]);
    let cfg = config(&dir, "web-01", json!({"server": server(&smtp), "to": to}));
    let out = test_notify(&cfg, &["--severity", "critical"]);
    assert!(out.status.success(), "{}", all_output(&out));
    assert!(
        common::stdout(&out).starts_with("mail: accepted: 250 2.0.0 OK"),
        "{}",
        all_output(&out)
    );

    let got = smtp.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["mail_from"], "hostwatch@example.com");
    assert_eq!(got[0]["rcpt_tos"], json!(["oncall@example.com", "ops@example.com"]));
    assert_eq!(got[0]["tls"], false);

    let m = common::smtp::parse_mail(got[0]["content"].as_str().unwrap());
    assert_eq!(m["defects"], json!([]), "{m}");
    for name in ["Date", "Message-ID", "From", "To", "Subject", "MIME-Version"] {
        assert_eq!(common::smtp::header(&m, name).len(), 1, "{name} once: {m}");
    }
    assert_eq!(
        common::smtp::header(&m, "Subject")[0],
        "[CRITICAL] hostwatch_test firing on web-01: cpu.usage 99.9% > 95 (test)"
    );
    assert_eq!(common::smtp::header(&m, "MIME-Version")[0], "1.0");
    assert!(common::smtp::header(&m, "Date")[0].ends_with(" +0000"), "{m}");
    let id = common::smtp::header(&m, "Message-ID")[0];
    assert!(id.starts_with("<hostwatch.hostwatch_test.") && id.ends_with("@web-01>"), "{id}");
    assert_eq!(common::smtp::header(&m, "From")[0], "Hostwatch <hostwatch@example.com>");
    assert_eq!(common::smtp::header(&m, "To")[0], "oncall@example.com, Ops Team <ops@example.com>");
    assert_eq!(m["type"], "multipart/alternative");
    let parts = m["parts"].as_array().unwrap();
    let types: Vec<&str> = parts.iter().map(|p| p["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["text/plain", "text/html"]);
    assert!(parts[0]["text"].as_str().unwrap().contains("Value:             99.9%"), "{m}");
    assert!(parts[1]["text"].as_str().unwrap().contains("<td>99.9%</td>"), "{m}");
}

#[test]
fn starttls_with_the_lab_ca_and_auth_delivers() {
    let dir = common::tempdir("email-starttls");
    let certs = common::make_certs(&dir);
    let auth = format!("{USER}:{PASSWORD}");
    let smtp = Smtp::start(
        &dir,
        &["--tls", "starttls", "--certs", certs.to_str().unwrap(), "--auth", &auth],
    );
    let cfg = config(
        &dir,
        "web-01",
        json!({"server": server(&smtp), "tls": "starttls", "username": USER,
               "password": PASSWORD, "ca_file": certs.join("ca.pem")}),
    );
    let out = test_notify(&cfg, &[]);
    assert!(out.status.success(), "{}", all_output(&out));
    let got = smtp.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["tls"], true, "the message went over TLS");
    assert_eq!(got[0]["auth_user"], USER);
    assert!(!all_output(&out).contains(PASSWORD));
}

#[test]
fn auth_login_is_used_when_plain_is_not_offered() {
    let dir = common::tempdir("email-login");
    let certs = common::make_certs(&dir);
    let auth = format!("{USER}:{PASSWORD}");
    let smtp = Smtp::start(
        &dir,
        &[
            "--tls",
            "starttls",
            "--certs",
            certs.to_str().unwrap(),
            "--auth",
            &auth,
            "--auth-mechanisms",
            "LOGIN",
        ],
    );
    let cfg = config(
        &dir,
        "web-01",
        json!({"server": server(&smtp), "tls": "starttls", "username": USER,
               "password": PASSWORD, "ca_file": certs.join("ca.pem")}),
    );
    let out = test_notify(&cfg, &[]);
    assert!(out.status.success(), "{}", all_output(&out));
    assert_eq!(smtp.received()[0]["auth_mechanism"], "LOGIN");
}

#[test]
fn starttls_to_a_server_of_an_unknown_ca_fails_permanently_naming_the_certificate() {
    let dir = common::tempdir("email-unknown-ca");
    let certs = common::make_certs(&dir);
    let smtp = Smtp::start(&dir, &["--tls", "starttls", "--certs", certs.to_str().unwrap()]);
    let cfg = config(&dir, "web-01", json!({"server": server(&smtp), "tls": "starttls"}));
    let out = test_notify(&cfg, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    let err = common::stderr(&out);
    assert!(err.contains("certificate") && err.contains("UnknownIssuer"), "{err}");
    assert!(err.contains("set ca_file"), "{err}");
    assert!(err.trim_end().ends_with("(permanent)"), "{err}");
    assert!(smtp.received().is_empty());
}

#[test]
fn implicit_tls_delivers() {
    let dir = common::tempdir("email-implicit");
    let certs = common::make_certs(&dir);
    let auth = format!("{USER}:{PASSWORD}");
    let smtp = Smtp::start(
        &dir,
        &["--tls", "implicit", "--certs", certs.to_str().unwrap(), "--auth", &auth],
    );
    let cfg = config(
        &dir,
        "web-01",
        json!({"server": server(&smtp), "tls": "tls", "username": USER,
               "password": PASSWORD, "ca_file": certs.join("ca.pem")}),
    );
    let out = test_notify(&cfg, &[]);
    assert!(out.status.success(), "{}", all_output(&out));
    let got = smtp.received();
    assert_eq!((got[0]["tls"].clone(), got[0]["auth_user"].clone()), (json!(true), json!(USER)));
}

#[test]
fn a_wrong_password_is_a_permanent_authentication_failure_that_never_shows_it() {
    let dir = common::tempdir("email-badpass");
    let certs = common::make_certs(&dir);
    let auth = format!("{USER}:{PASSWORD}");
    let smtp = Smtp::start(
        &dir,
        &["--tls", "starttls", "--certs", certs.to_str().unwrap(), "--auth", &auth],
    );
    let wrong = "Wr0ng-Pa55w0rd-7781";
    let cfg = config(
        &dir,
        "web-01",
        json!({"server": server(&smtp), "tls": "starttls", "username": USER,
               "password": wrong, "ca_file": certs.join("ca.pem")}),
    );
    let out = test_notify(&cfg, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    let err = common::stderr(&out);
    assert!(err.contains("authentication failed") && err.contains("535"), "{err}");
    assert!(err.trim_end().ends_with("(permanent)"), "{err}");
    assert!(!all_output(&out).contains(wrong), "the password leaked: {}", all_output(&out));
    assert!(smtp.received().is_empty());
}

#[test]
fn plaintext_auth_works_only_when_allowed() {
    let dir = common::tempdir("email-plainauth");
    let auth = format!("{USER}:{PASSWORD}");
    let smtp = Smtp::start(&dir, &["--auth", &auth, "--auth-plaintext"]);
    let channel = json!({"server": server(&smtp), "username": USER, "password": PASSWORD});
    let refused = test_notify(&config(&dir, "web-01", channel.clone()), &[]);
    assert_ne!(refused.status.code(), Some(0));
    assert!(all_output(&refused).contains("allow_plaintext_auth"), "{}", all_output(&refused));
    let mut allowed = channel;
    allowed["allow_plaintext_auth"] = json!(true);
    let out = test_notify(&config(&dir, "web-01", allowed), &[]);
    assert!(out.status.success(), "{}", all_output(&out));
    assert_eq!(smtp.received()[0]["auth_user"], USER);
}

#[test]
fn a_451_at_rcpt_is_transient() {
    let dir = common::tempdir("email-451");
    let smtp = Smtp::start(&dir, &["--rcpt-reply", "451 4.3.0 mailbox busy, try later"]);
    let out = test_notify(&config(&dir, "web-01", json!({"server": server(&smtp)})), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    let err = common::stderr(&out);
    assert!(err.contains("451 4.3.0 mailbox busy, try later"), "{err}");
    assert!(err.trim_end().ends_with("(temporary)"), "{err}");
}

#[test]
fn a_550_at_data_is_permanent() {
    let dir = common::tempdir("email-550");
    let smtp = Smtp::start(&dir, &["--data-reply", "550 5.7.1 message refused by policy"]);
    let out = test_notify(&config(&dir, "web-01", json!({"server": server(&smtp)})), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    let err = common::stderr(&out);
    assert!(err.contains("at DATA: 550 5.7.1 message refused by policy"), "{err}");
    assert!(err.trim_end().ends_with("(permanent)"), "{err}");
}

#[test]
fn one_refused_recipient_does_not_stop_the_others() {
    let dir = common::tempdir("email-partial");
    let smtp = Smtp::start(
        &dir,
        &["--rcpt-reply", "550 5.1.1 no such user", "--rcpt-reply-for", "gone@example.com"],
    );
    let to = json!(["gone@example.com", "oncall@example.com"]);
    let out = test_notify(&config(&dir, "web-01", json!({"server": server(&smtp), "to": to})), &[]);
    assert!(out.status.success(), "{}", all_output(&out));
    assert!(common::stdout(&out).contains("refused recipients: gone@example.com (550 5.1.1"));
    assert_eq!(smtp.received()[0]["rcpt_tos"], json!(["oncall@example.com"]));
}

#[test]
fn hostile_text_arrives_escaped_and_injects_no_header() {
    let dir = common::tempdir("email-hostile");
    let smtp = Smtp::start(&dir, &[]);
    let host = "web-01 <script>alert(1)</script> Bcc: evil@x";
    let out = test_notify(&config(&dir, host, json!({"server": server(&smtp)})), &[]);
    assert!(out.status.success(), "{}", all_output(&out));
    let got = smtp.received();
    assert_eq!(got[0]["rcpt_tos"], json!(["oncall@example.com"]), "no extra recipient");
    let m = common::smtp::parse_mail(got[0]["content"].as_str().unwrap());
    assert!(common::smtp::header(&m, "Bcc").is_empty(), "{m}");
    assert_eq!(common::smtp::header(&m, "To"), ["oncall@example.com"]);
    assert!(common::smtp::header(&m, "Subject")[0].contains(host), "{m}");
    let html = m["parts"][1]["text"].as_str().unwrap();
    assert!(html.contains("web-01 &lt;script&gt;alert(1)&lt;/script&gt; Bcc: evil@x"), "{html}");
    assert!(!html.contains("<script>"), "{html}");
}

#[test]
fn a_server_that_never_answers_times_out_as_a_transient_failure() {
    let dir = common::tempdir("email-hang");
    let smtp = Smtp::start(&dir, &["--hang"]);
    let cfg = config(&dir, "web-01", json!({"server": server(&smtp), "timeout": "2s"}));
    let out = test_notify(&cfg, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", all_output(&out));
    let err = common::stderr(&out);
    assert!(err.contains("timed out after 2s waiting for the server greeting"), "{err}");
    assert!(err.trim_end().ends_with("(temporary)"), "{err}");
}

#[test]
fn dry_run_prints_the_message_without_sending() {
    let dir = common::tempdir("email-dry");
    let smtp = Smtp::start(&dir, &[]);
    let cfg = config(&dir, "web-01", json!({"server": server(&smtp)}));
    let out = test_notify(&cfg, &["--dry-run", "--severity", "critical"]);
    assert!(out.status.success(), "{}", all_output(&out));
    let text = common::stdout(&out);
    assert!(text.contains("\r\nSubject: [CRITICAL] hostwatch_test firing on web-01"), "{text}");
    assert!(text.contains("Content-Type: multipart/alternative"));
    assert!(smtp.received().is_empty());
}
