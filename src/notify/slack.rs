//! Slack: an incoming webhook or a bot token (`chat.postMessage`), with a Block Kit message.
//!
//! The message is a `header` (severity emoji, event, rule, host; or the channel's `title`
//! template after the emoji), the rule's `summary` in bold, a `section` of `mrkdwn` fields
//! (host, rule, series, value, threshold, severity, event, since, the rule's static labels),
//! the rule's description (or the channel's `text` template, mrkdwn as the operator wrote it),
//! and a `context` line with the notification key and the runbook link. `text` carries the
//! same summary as the notification fallback.
//!
//! Severity is shown by an emoji rather than the legacy `attachments` colour bar: Slack calls
//! secondary attachments legacy, may fold their content behind "Show more" and may reduce
//! their visibility in future, while top-level blocks are always shown in full. The emoji also
//! reaches the push notification (through `text`) and does not depend on seeing colour.
//!
//! Every piece of untrusted text (host, rule, series, labels, threshold, description, key) is
//! escaped with [`escape::slack`] so `<!channel>`, `<@U123>` or `<https://x|forged link>` can
//! never take effect, made one line where a line break could forge a field, and cut on a
//! character boundary (never inside an entity) to the Block Kit limits.
//!
//! Answers: a webhook says `ok` with HTTP 200 and fails with a 4xx plain-text reason
//! (permanent) or 429/5xx (transient); the Web API answers HTTP 200 with
//! `{"ok": false, "error": "..."}` on failure, so its body is read, never the status alone.

use super::http::{self, HttpResponse};
use super::{Receipt, Rendered, SendError, Sender, escape};
use crate::alerts::EventKind;
use crate::config::Secret;
use crate::config::Severity;
use crate::config::channels::{SlackConfig, SlackTarget, Templates};
use crate::event::AlertEvent;
use serde_json::{Value, json};
use std::time::Duration;

/// The Web API's base URL.
pub const DEFAULT_API_URL: &str = "https://slack.com/api";

/// Test and proxy hook: when set, the bot mode posts to `$HOSTWATCH_SLACK_API_URL/chat.postMessage`
/// instead of `https://slack.com/api/chat.postMessage` (for instance a local test receiver, or
/// an egress proxy that forwards to Slack). Read once, when the channel is built. Webhook
/// channels are unaffected: their URL is the configured one.
pub const API_URL_ENV: &str = "HOSTWATCH_SLACK_API_URL";

/// Block Kit `header` text limit (characters).
const HEADER_LIMIT: usize = 150;
/// Block Kit `section` field text limit.
const FIELD_LIMIT: usize = 2000;
/// Block Kit `section` text limit (also used for `context` text and the fallback `text`).
const SECTION_LIMIT: usize = 3000;

/// Notifications in one grouped message: a header, one section each and a context line stay
/// within Block Kit's 50 blocks.
const GROUP_CAPACITY: usize = 45;

/// Web API errors worth retrying; every other `error` is permanent.
const TRANSIENT_API_ERRORS: &[&str] = &[
    "ratelimited",
    "rate_limited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "team_added_to_org",
];

/// Where a Slack channel posts, resolved at construction.
#[derive(Clone, Debug)]
enum Endpoint {
    Webhook { url: Secret },
    Bot { api_url: String, token: Secret, channel: String },
}

/// Sends to Slack through an incoming webhook or `chat.postMessage`.
#[derive(Clone, Debug)]
pub struct SlackSender {
    name: String,
    endpoint: Endpoint,
    username: Option<String>,
    templates: Templates,
    timeout: Duration,
}

impl SlackSender {
    /// Builds the sender of channel `name`; `timeout` limits each POST. In bot mode the API
    /// base URL is [`DEFAULT_API_URL`] unless [`API_URL_ENV`] is set.
    pub fn new(name: &str, config: &SlackConfig, timeout: Duration) -> Result<SlackSender, String> {
        let endpoint = match &config.target {
            SlackTarget::Webhook { url } => {
                if url.expose().trim().is_empty() {
                    return Err(format!("channel {name}: the slack webhook_url is empty"));
                }
                Endpoint::Webhook { url: url.clone() }
            }
            SlackTarget::Bot { token, channel } => {
                if token.expose().trim().is_empty() {
                    return Err(format!("channel {name}: the slack bot token is empty"));
                }
                if channel.trim().is_empty() {
                    return Err(format!("channel {name}: the slack \"channel\" is empty"));
                }
                let api_url = std::env::var(API_URL_ENV)
                    .ok()
                    .filter(|v| !v.trim().is_empty())
                    .unwrap_or_else(|| DEFAULT_API_URL.to_string());
                Endpoint::Bot {
                    api_url: api_url.trim_end_matches('/').to_string(),
                    token: token.clone(),
                    channel: channel.clone(),
                }
            }
        };
        Ok(SlackSender {
            name: name.to_string(),
            endpoint,
            username: config.username.clone(),
            templates: config.templates.clone(),
            timeout,
        })
    }

    /// The JSON body for `event`.
    fn body(&self, event: &AlertEvent) -> Value {
        // Label text may hold bare URLs or `#channel`: no auto-linking (verbatim blocks) and no
        // previews of whatever a label points at.
        let (text, blocks) = match &event.report {
            Some(r) => (crate::report::slack::text(r), crate::report::slack::blocks(r)),
            None => (fallback_text(event, &self.templates), blocks(event, &self.templates)),
        };
        self.message(text, blocks)
    }

    /// The message around `text` and `blocks`: no unfurling, the bot's channel, the name.
    fn message(&self, text: String, blocks: Value) -> Value {
        let mut body = json!({
            "text": text,
            "blocks": blocks,
            "unfurl_links": false,
            "unfurl_media": false,
        });
        if let Endpoint::Bot { channel, .. } = &self.endpoint {
            body["channel"] = json!(channel);
        }
        if let Some(username) = &self.username {
            body["username"] = json!(username);
        }
        body
    }

    /// The JSON body of a grouped message: one header, a section per notification (its
    /// headline, value and key), and a context line.
    fn group_body(&self, events: &[AlertEvent]) -> Value {
        let headline = crate::notify::group::headline(events);
        let icon = match crate::notify::group::worst_open(events) {
            None => "\u{2705}",
            Some(Severity::Critical) => "\u{1F534}",
            Some(Severity::Warning) => "\u{1F7E0}",
        };
        let mut blocks = vec![json!({
            "type": "header",
            "text": {"type": "plain_text", "text": fit(&format!("{icon} {headline}"), HEADER_LIMIT, line), "emoji": true},
        })];
        for event in events {
            let mut text = format!(
                "{} *{}*\n{}",
                emoji(event),
                fit(&crate::notify::group::line(event), 1000, line),
                fit(&format!("key {}", event.key), 500, line),
            );
            if let Some(d) = event.description.as_deref().filter(|d| !d.trim().is_empty()) {
                text.push('\n');
                text.push_str(&fit(d, 1000, line));
            }
            blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "verbatim": true, "text": text}}));
        }
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "verbatim": true,
            "text": fit(&format!("hostwatch \u{00B7} {} notifications grouped (group_wait)", events.len()), SECTION_LIMIT, line)}]}));
        self.message(fit(&headline, SECTION_LIMIT, line), Value::Array(blocks))
    }

    fn post(&self, body: &[u8]) -> Result<Receipt, SendError> {
        match &self.endpoint {
            Endpoint::Webhook { url } => self.send_webhook(url.expose(), body),
            Endpoint::Bot { api_url, token, .. } => self.send_bot(api_url, token.expose(), body),
        }
    }

    fn send_webhook(&self, url: &str, body: &[u8]) -> Result<Receipt, SendError> {
        let headers = [("Content-Type".to_string(), "application/json".to_string())];
        // A network error already names the (redacted) URL.
        let response = http::post(url, &headers, body, self.timeout)
            .map_err(|e| map_reason(e, |r| format!("slack channel {}: {r}", self.name)))?;
        classify_webhook(&self.what_webhook(url), &response)
    }

    fn what_webhook(&self, url: &str) -> String {
        format!("slack channel {} (webhook {})", self.name, crate::config::redact_url(url))
    }

    fn send_bot(&self, api_url: &str, token: &str, body: &[u8]) -> Result<Receipt, SendError> {
        let url = format!("{api_url}/chat.postMessage");
        let headers = [
            ("Authorization".to_string(), format!("Bearer {token}")),
            ("Content-Type".to_string(), "application/json; charset=utf-8".to_string()),
        ];
        let what = format!("slack channel {} (chat.postMessage)", self.name);
        let response = http::post(&url, &headers, body, self.timeout)
            .map_err(|e| map_reason(e, |r| format!("{what}: {r}")))?;
        classify_api(&what, &response)
    }
}

impl Sender for SlackSender {
    fn render(&self, event: &AlertEvent) -> Rendered {
        Rendered {
            content_type: "application/json".to_string(),
            body: self.body(event).to_string(),
        }
    }

    fn send(&mut self, event: &AlertEvent) -> Result<Receipt, SendError> {
        self.post(self.body(event).to_string().as_bytes())
    }

    fn group_capacity(&self) -> usize {
        GROUP_CAPACITY
    }

    fn send_group(&mut self, events: &[AlertEvent]) -> Result<Receipt, SendError> {
        self.post(self.group_body(events).to_string().as_bytes())
    }

    fn render_group(&self, events: &[AlertEvent]) -> Rendered {
        Rendered {
            content_type: "application/json".to_string(),
            body: self.group_body(events).to_string(),
        }
    }
}

/// Reads an incoming webhook's answer: 2xx accepted, 408/429/5xx transient, other statuses
/// permanent, with advice for the documented plain-text reasons.
fn classify_webhook(what: &str, response: &HttpResponse) -> Result<Receipt, SendError> {
    http::classify(what, response).map_err(|e| match webhook_hint(response.body.trim()) {
        Some(hint) => map_reason(e, |r| format!("{r}; {hint}")),
        None => e,
    })
}

fn webhook_hint(reason: &str) -> Option<&'static str> {
    let code = reason.split_whitespace().next().unwrap_or("");
    Some(match code {
        "invalid_payload" | "no_text" => {
            "Slack could not read the message; please report this as a hostwatch bug"
        }
        "no_service" | "invalid_token" | "no_active_hooks" => {
            "the webhook was revoked or its app removed; create a new incoming webhook and \
             update webhook_url"
        }
        "channel_not_found" => "the webhook's Slack channel no longer exists",
        "channel_is_archived" => "the webhook's Slack channel is archived",
        "action_prohibited" => "a workspace restriction forbids this webhook from posting",
        "user_not_found" => "the webhook's target user does not exist",
        _ => return None,
    })
}

/// Reads a Web API answer: HTTP 200 with `"ok": true` accepted; `"ok": false` transient for
/// rate limiting and Slack-side failures, permanent otherwise; other statuses as for HTTP.
fn classify_api(what: &str, response: &HttpResponse) -> Result<Receipt, SendError> {
    if !(200..=299).contains(&response.status) {
        return http::classify(what, response);
    }
    match api_answer(&response.body) {
        Some((true, _)) => Ok(Receipt { answer: format!("HTTP {}: ok", response.status) }),
        Some((false, error)) => {
            let error = error.unwrap_or_else(|| "unknown_error".to_string());
            let reason = format!("{what}: Slack API error {error}");
            if TRANSIENT_API_ERRORS.contains(&error.as_str()) {
                Err(SendError::Transient { reason, retry_after: response.retry_after })
            } else {
                Err(match api_hint(&error) {
                    Some(hint) => SendError::permanent(format!("{reason}; {hint}")),
                    None => SendError::permanent(reason),
                })
            }
        }
        None => Err(SendError::permanent(format!(
            "{what}: HTTP {} with an answer that is not a Slack API reply (check {API_URL_ENV} \
             or the proxy): {}",
            response.status,
            escape::one_line(response.body.chars().take(120).collect::<String>().as_str())
        ))),
    }
}

/// `(ok, error)` of a Web API reply. Replies are cut to 64 KiB by [`http::post`], and a
/// successful `chat.postMessage` echoes the whole message, so a cut reply is read by its
/// leading `"ok"` (Slack puts it first) when it does not parse.
fn api_answer(body: &str) -> Option<(bool, Option<String>)> {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        let ok = v.get("ok")?.as_bool()?;
        return Some((ok, v.get("error").and_then(Value::as_str).map(str::to_string)));
    }
    let compact: String = body.chars().take(200).filter(|c| !c.is_whitespace()).collect();
    if compact.starts_with("{\"ok\":true") {
        Some((true, None))
    } else if compact.starts_with("{\"ok\":false") {
        let error = compact
            .split_once("\"error\":\"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(code, _)| code.to_string());
        Some((false, error))
    } else {
        None
    }
}

fn api_hint(error: &str) -> Option<&'static str> {
    Some(match error {
        "channel_not_found" => "check \"channel\" (a channel ID like C0123456789 or #name)",
        "not_in_channel" => "invite the bot to the channel (/invite @your-bot)",
        "is_archived" => "the Slack channel is archived",
        "invalid_auth" | "not_authed" | "token_revoked" | "token_expired" | "account_inactive" => {
            "the bot token is not valid any more; update \"token\""
        }
        "missing_scope" => "give the Slack app the chat:write scope and reinstall it",
        "msg_too_long" | "invalid_blocks" | "invalid_arguments" => {
            "Slack refused the message; please report this as a hostwatch bug"
        }
        _ => return None,
    })
}

/// `e` with its reason rewritten by `f`, the classification kept.
fn map_reason(e: SendError, f: impl FnOnce(String) -> String) -> SendError {
    match e {
        SendError::Permanent { reason } => SendError::Permanent { reason: f(reason) },
        SendError::Transient { reason, retry_after } => {
            SendError::Transient { reason: f(reason), retry_after }
        }
    }
}

/// Severity and event as an emoji: red for critical, orange for warning, green check for
/// resolved, a grey question mark for no data.
fn emoji(event: &AlertEvent) -> &'static str {
    match (event.event, event.severity) {
        _ if event.ends_episode() => "\u{2705}",
        (EventKind::Nodata, _) => "\u{2754}",
        (EventKind::Flapping, _) => "\u{1F501}",
        (_, Severity::Critical) => "\u{1F534}",
        (_, Severity::Warning) => "\u{1F7E0}",
    }
}

/// `🔴 CRITICAL firing: disk_root on web-01` (raw, to be escaped).
fn headline(event: &AlertEvent) -> String {
    format!("{} {}", emoji(event), event.headline())
}

/// The header's text, escaped: the `title` template (after the emoji), else the headline.
fn title(event: &AlertEvent, templates: &Templates, limit: usize) -> String {
    match &templates.title {
        Some(t) => {
            let prefix = format!("{} ", emoji(event));
            let rendered = t.render_fit(event, line, limit - text_len(&prefix), text_len);
            format!("{prefix}{}", escape::one_line(&rendered))
        }
        None => fit(&headline(event), limit, line),
    }
}

/// The notification text: the title and the value, escaped and on one line.
fn fallback_text(event: &AlertEvent, templates: &Templates) -> String {
    let tail = format!(": {} = {} ({})", event.series, event.value_text, event.threshold);
    let head = title(event, templates, SECTION_LIMIT / 2);
    format!("{head}{}", fit(&tail, SECTION_LIMIT - text_len(&head), line))
}

/// The Block Kit blocks of `event`.
fn blocks(event: &AlertEvent, templates: &Templates) -> Value {
    let mut facts: Vec<(&str, String)> = vec![
        ("Host", event.host.clone()),
        ("Rule", event.rule.clone()),
        ("Series", event.series.clone()),
        ("Value", event.value_text.clone()),
        (event.threshold_label(), event.threshold.clone()),
        ("Severity", event.severity.as_str().to_string()),
        ("Event", event.event_text()),
        ("Since", crate::timefmt::human(event.since)),
    ];
    if let Some(episode) = event.episode_text() {
        facts.push(("Episode", episode));
    }
    if !event.context.rule_labels.is_empty() {
        facts.push(("Labels", event.rule_labels_text()));
    }
    let fields: Vec<Value> = facts
        .iter()
        .map(|(label, value)| {
            let prefix = format!("*{label}*\n");
            let text = format!("{prefix}{}", fit(value, FIELD_LIMIT - prefix.len(), line));
            json!({"type": "mrkdwn", "text": text, "verbatim": true})
        })
        .collect();
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": title(event, templates, HEADER_LIMIT), "emoji": true},
    })];
    if let Some(summary) = &event.context.summary {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "verbatim": true,
            "text": format!("*{}*", fit(summary, SECTION_LIMIT - 2, line))}}));
    }
    if event.test {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "verbatim": true,
            "text": "\u{1F9EA} *This is a test notification* sent by `hostwatch test-notify`; \
                     no action needed."}}));
    }
    blocks.push(json!({"type": "section", "fields": fields}));
    // The `text` template (mrkdwn as the operator wrote it) stands in for the description.
    let text = match &templates.text {
        Some(t) => Some(t.render_fit(event, escape::slack, SECTION_LIMIT, text_len)),
        None => event
            .description
            .as_deref()
            .filter(|d| !d.trim().is_empty())
            .map(|d| fit(d, SECTION_LIMIT, escape::slack)),
    };
    if let Some(text) = text.filter(|t| !t.trim().is_empty()) {
        blocks.push(json!({"type": "section",
            "text": {"type": "mrkdwn", "verbatim": true, "text": text}}));
    }
    let context = format!("hostwatch \u{00B7} key {}", event.key);
    let mut elements = vec![
        json!({"type": "mrkdwn", "verbatim": true, "text": fit(&context, SECTION_LIMIT, line)}),
    ];
    if let Some(url) = &event.context.runbook_url {
        // `check` refused `<`, `>` and `|` in the URL; `&` is written as Slack asks.
        let link = format!("\u{1F4D6} <{}|Runbook>", escape::slack(url));
        elements.push(json!({"type": "mrkdwn", "verbatim": true, "text": link}));
    }
    blocks.push(json!({"type": "context", "elements": elements}));
    Value::Array(blocks)
}

/// Escaping for text that must stay on one line (a line break could forge a field).
fn line(text: &str) -> String {
    escape::slack(&escape::one_line(text))
}

/// Length as Slack counts it, conservatively: UTF-16 code units (never fewer than characters).
fn text_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// `escape(text)` cut to at most `limit` UTF-16 units (see [`escape::fit`]).
fn fit(text: &str, limit: usize, escape: fn(&str) -> String) -> String {
    escape::fit(text, limit, escape, text_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "/mnt/<!channel>\n\"quoted\" <https://evil|click> <@U123> <!here> & co";

    fn sender(target: SlackTarget, username: Option<&str>) -> SlackSender {
        let config = SlackConfig {
            target,
            username: username.map(str::to_string),
            templates: Templates::default(),
        };
        SlackSender::new("ops", &config, Duration::from_secs(5)).unwrap()
    }

    fn webhook() -> SlackSender {
        let url = "https://hooks.slack.com/services/T0/B0/XYZ".to_string();
        sender(SlackTarget::Webhook { url: url.into() }, None)
    }

    fn bot() -> SlackSender {
        let target = SlackTarget::Bot { token: "xoxb-1".into(), channel: "#alerts".into() };
        sender(target, Some("hostwatch"))
    }

    fn event() -> AlertEvent {
        let mut e = AlertEvent::test_event("web-01", Severity::Critical, 1_700_000_000.0);
        e.test = false;
        e.rule = "disk_root".into();
        e.series = "disk.used_percent{mount=/}".into();
        e.value_text = "96.1%".into();
        e
    }

    fn hostile() -> AlertEvent {
        let mut e = event();
        e.series = format!("disk.used_percent{{mount={HOSTILE}}}");
        e.labels.insert("mount".into(), HOSTILE.into());
        e.rule = "disk_<!everyone>".into();
        e.host = "host<@U999>".into();
        e.threshold = "> 95 <!subteam^S1>".into();
        e.description = Some(format!("Mount {HOSTILE} is full.\nSecond line."));
        e
    }

    fn rendered(sender: &SlackSender, e: &AlertEvent) -> Value {
        let r = sender.render(e);
        assert_eq!(r.content_type, "application/json");
        serde_json::from_str(&r.body).unwrap()
    }

    fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
        v.pointer(pointer).and_then(Value::as_str).unwrap_or_else(|| panic!("{pointer} in {v}"))
    }

    fn strings(v: &Value) -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a.iter().flat_map(strings).collect(),
            Value::Object(m) => m.values().flat_map(strings).collect(),
            _ => vec![],
        }
    }

    /// No control sequence survives: no `<`/`>` at all, every `&` starts an entity.
    fn assert_inert(text: &str) {
        assert!(!text.contains(['<', '>']), "raw angle bracket in {text:?}");
        for (i, _) in text.match_indices('&') {
            let entity = ["&amp;", "&lt;", "&gt;"].iter().any(|e| text[i..].starts_with(e));
            assert!(entity, "bare & in {text:?}");
        }
    }

    #[test]
    fn webhook_body_is_block_kit() {
        let v = rendered(&webhook(), &event());
        assert!(v.get("channel").is_none() && v.get("attachments").is_none());
        assert!(text(&v, "/text").contains("CRITICAL firing: disk_root on web-01: "));
        assert!(text(&v, "/text").contains("96.1%"));
        let blocks = v["blocks"].as_array().unwrap();
        let types: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["header", "section", "section", "context"]);
        assert_eq!(v["blocks"][0]["text"]["type"], "plain_text");
        assert!(text(&v, "/blocks/0/text/text").starts_with("\u{1F534} CRITICAL firing"));
        let fields = v["blocks"][1]["fields"].as_array().unwrap();
        assert_eq!(fields.len(), 8);
        assert!(fields.iter().all(|f| f["type"] == "mrkdwn"));
        assert_eq!(fields[0]["text"], "*Host*\nweb-01");
        assert_eq!(fields[2]["text"], "*Series*\ndisk.used_percent{mount=/}");
        assert_eq!(fields[7]["text"], "*Since*\n2023-11-14T22:13:20Z");
        assert!(text(&v, "/blocks/3/elements/0/text").contains(&event().key));
        let v = rendered(&bot(), &event());
        assert_eq!((&v["channel"], &v["username"]), (&json!("#alerts"), &json!("hostwatch")));
    }

    #[test]
    fn severity_event_and_test_show_in_the_header() {
        let mut e = event();
        e.severity = Severity::Warning;
        let v = rendered(&webhook(), &e);
        assert!(text(&v, "/blocks/0/text/text").starts_with("\u{1F7E0} WARNING firing"));
        e.event = EventKind::Resolved;
        let v = rendered(&webhook(), &e);
        assert!(text(&v, "/blocks/0/text/text").starts_with("\u{2705} RESOLVED: disk_root"));
        assert!(text(&v, "/blocks/1/fields/4/text").starts_with("*Clear condition*"));
        let v = rendered(&webhook(), &AlertEvent::test_event("h", Severity::Warning, 0.0));
        assert!(text(&v, "/text").contains("TEST WARNING firing"));
        assert!(text(&v, "/blocks/0/text/text").contains("TEST WARNING"));
        assert!(text(&v, "/blocks/1/text/text").contains("test notification"));
    }

    #[test]
    fn hostile_text_is_escaped_everywhere() {
        for sender in [webhook(), bot()] {
            let v = rendered(&sender, &hostile());
            strings(&v).iter().for_each(|s| assert_inert(s));
            let body = sender.render(&hostile()).body;
            assert!(
                body.contains("&lt;!channel&gt;") && body.contains("&lt;https://evil|click&gt;")
            );
            assert!(body.contains("&lt;@U123&gt;") && body.contains("&lt;!everyone&gt;"));
            // Quotes survive (JSON-escaped); one-line fields and the header lose line breaks.
            let series = text(&v, "/blocks/1/fields/2/text");
            assert!(series.contains("\"quoted\"") && series.matches('\n').count() == 1);
            assert!(!text(&v, "/blocks/0/text/text").contains('\n'));
        }
    }

    #[test]
    fn templates_keep_the_operators_mrkdwn_and_escape_every_value() {
        use crate::notify::template::Template;
        let config = SlackConfig {
            target: SlackTarget::Webhook { url: "https://hooks.slack.com/x".to_string().into() },
            username: None,
            templates: Templates {
                title: Some(Template::parse("{{rule}} {{labels.mount}}").unwrap()),
                text: Some(
                    Template::parse("*Team* {{labels.team}}\n<{{runbook_url}}|runbook>").unwrap(),
                ),
            },
        };
        let s = SlackSender::new("ops", &config, Duration::from_secs(5)).unwrap();
        let mut e = hostile();
        e.context.rule_labels.insert("team".into(), "<!here> & co".into());
        e.context.runbook_url = Some("https://wiki/a?b=1&c=2".into());
        e.context.summary = Some("Full <@U1>".into());
        let v = rendered(&s, &e);
        let header = text(&v, "/blocks/0/text/text");
        assert_eq!(
            header,
            "\u{1F534} disk_&lt;!everyone&gt; /mnt/&lt;!channel&gt; \"quoted\" \
             &lt;https://evil|click&gt; &lt;@U123&gt; &lt;!here&gt; &amp; co"
        );
        assert_eq!(text(&v, "/blocks/1/text/text"), "*Full &lt;@U1&gt;*");
        let fields = strings(&v["blocks"][2]["fields"]);
        assert!(
            fields.contains(&"*Labels*\nteam=&lt;!here&gt; &amp; co".to_string()),
            "{fields:?}"
        );
        assert_eq!(
            text(&v, "/blocks/3/text/text"),
            "*Team* &lt;!here&gt; &amp; co\n<https://wiki/a?b=1&amp;c=2|runbook>"
        );
        assert_eq!(
            text(&v, "/blocks/4/elements/1/text"),
            "\u{1F4D6} <https://wiki/a?b=1&amp;c=2|Runbook>"
        );
        assert!(text(&v, "/text").starts_with(header), "the push text leads with the title");
    }

    #[test]
    fn long_text_is_cut_to_block_kit_limits_without_breaking_entities() {
        let mut e = hostile();
        e.host = "é&<".repeat(3000);
        e.series = "\u{1F4BE}>".repeat(3000);
        e.description = Some("&".repeat(5000));
        let v = rendered(&webhook(), &e);
        assert!(text_len(text(&v, "/blocks/0/text/text")) <= HEADER_LIMIT);
        for f in strings(&v["blocks"][1]["fields"]) {
            assert!(text_len(&f) <= FIELD_LIMIT);
        }
        assert!(text_len(text(&v, "/blocks/2/text/text")) <= SECTION_LIMIT);
        assert!(text_len(text(&v, "/text")) <= SECTION_LIMIT);
        strings(&v).iter().for_each(|s| assert_inert(s));
        assert!(text(&v, "/blocks/2/text/text").ends_with("&amp;\u{2026}"));
    }

    #[test]
    fn fit_cuts_between_entities() {
        assert_eq!(fit("a&b", 10, escape::slack), "a&amp;b");
        assert_eq!(fit("a&b", 4, escape::slack), "a\u{2026}");
        assert_eq!(fit("ab&", 7, escape::slack), "ab&amp;");
        assert_eq!(fit("\u{1F534}\u{1F534}", 3, escape::slack), "\u{1F534}\u{2026}");
    }

    fn resp(status: i32, body: &str, retry: Option<u64>) -> HttpResponse {
        HttpResponse { status, body: body.into(), retry_after: retry.map(Duration::from_secs) }
    }

    fn permanent(r: Result<Receipt, SendError>) -> String {
        match r {
            Err(SendError::Permanent { reason }) => reason,
            other => panic!("expected a permanent failure, got {other:?}"),
        }
    }

    fn transient(r: Result<Receipt, SendError>) -> (String, Option<Duration>) {
        match r {
            Err(SendError::Transient { reason, retry_after }) => (reason, retry_after),
            other => panic!("expected a transient failure, got {other:?}"),
        }
    }

    #[test]
    fn webhook_answers_are_classified() {
        assert_eq!(classify_webhook("w", &resp(200, "ok", None)).unwrap().answer, "HTTP 200: ok");
        for (status, body) in [
            (400, "invalid_payload"),
            (403, "action_prohibited"),
            (404, "no_service"),
            (404, "channel_not_found"),
            (410, "channel_is_archived"),
        ] {
            let reason = permanent(classify_webhook("w", &resp(status, body, None)));
            assert!(reason.contains(body) && reason.contains("; "), "{reason}");
        }
        let (reason, retry) = transient(classify_webhook("w", &resp(429, "rate_limited", Some(7))));
        assert_eq!(
            (reason.as_str(), retry),
            ("w: HTTP 429: rate_limited", Some(Duration::from_secs(7)))
        );
        transient(classify_webhook("w", &resp(500, "rollup_error", None)));
    }

    #[test]
    fn api_answers_are_read_from_the_body() {
        assert!(classify_api("b", &resp(200, r#"{"ok": true, "ts": "1.2"}"#, None)).is_ok());
        let not_found = resp(200, r#"{"ok":false,"error":"channel_not_found"}"#, None);
        let reason = permanent(classify_api("slack channel chat", &not_found));
        assert!(reason.starts_with("slack channel chat: Slack API error channel_not_found; "));
        for code in
            ["not_in_channel", "invalid_auth", "token_revoked", "msg_too_long", "account_inactive"]
        {
            permanent(classify_api(
                "b",
                &resp(200, &format!(r#"{{"ok":false,"error":"{code}"}}"#), None),
            ));
        }
        let limited = resp(200, r#"{"ok":false,"error":"ratelimited"}"#, Some(3));
        assert_eq!(transient(classify_api("b", &limited)).1, Some(Duration::from_secs(3)));
        assert_eq!(
            transient(classify_api("b", &resp(429, "", Some(30)))).1,
            Some(Duration::from_secs(30))
        );
        transient(classify_api("b", &resp(503, "", None)));
        permanent(classify_api("b", &resp(200, "<html>proxy</html>", None)));
    }

    #[test]
    fn cut_api_replies_are_still_read() {
        let cut = r#"{"ok":true,"channel":"C1","ts":"17.1","message":{"text":"long"#;
        assert_eq!(api_answer(cut), Some((true, None)));
        let cut = r#"{"ok": false, "error": "not_in_channel", "warning": "x"#;
        assert_eq!(api_answer(cut), Some((false, Some("not_in_channel".into()))));
        assert_eq!(api_answer("ok"), None);
    }

    #[test]
    fn construction_errors_name_the_channel() {
        let target = SlackTarget::Bot { token: " ".into(), channel: "#a".into() };
        let config = SlackConfig { target, username: None, templates: Templates::default() };
        let e = SlackSender::new("pager", &config, Duration::from_secs(1)).unwrap_err();
        assert!(e.contains("channel pager"), "{e}");
    }

    #[test]
    fn an_escalation_by_time_and_a_resolution_tell_the_whole_story() {
        let mut e = event();
        e.event = EventKind::Escalated;
        e.value_text = "59.4%".into();
        e.threshold = "> 50".into();
        e.context.escalated_by = Some(crate::alerts::EscalatedBy::Time);
        e.context.reason = Some("warning for 2m, escalated to critical by policy".into());
        let all = strings(&rendered(&webhook(), &e)).join("\n");
        assert!(all.contains("*Warning threshold*\n&gt; 50"), "{all}");
        assert!(
            all.contains("escalated to critical (warning for 2m, escalated to critical by policy)"),
            "{all}"
        );
        let mut r = event();
        r.event = EventKind::Resolved;
        r.threshold = "<= 80".into();
        r.context.episode_duration_s = Some(725.0);
        r.context.peak_text = Some("96.1%".into());
        let all = strings(&rendered(&webhook(), &r)).join("\n");
        assert!(all.contains("*Clear condition*\n&lt;= 80"), "{all}");
        assert!(all.contains("*Episode*\nlasted 12m5s, peak 96.1%"), "{all}");
    }

    #[test]
    fn flapping_and_flap_end_say_so_and_an_ok_flap_end_looks_resolved() {
        let [flapping, ok, firing] = crate::testutil::flap_events(event());
        let all = strings(&rendered(&webhook(), &flapping)).join("\n");
        assert!(all.contains("\u{1F501} CRITICAL flapping: disk_root on web-01"), "{all}");
        assert!(
            all.contains("flapping (notifications paused) (flapping: 62.5% of the last 21"),
            "{all}"
        );
        let all = strings(&rendered(&webhook(), &ok)).join("\n");
        assert!(all.contains("\u{2705} FLAPPING OVER, OK: disk_root on web-01"), "{all}");
        assert!(all.contains("*Clear condition*"), "{all}");
        let all = strings(&rendered(&webhook(), &firing)).join("\n");
        assert!(all.contains("\u{1F534} CRITICAL flapping over, still firing: disk_root"), "{all}");
    }
}
