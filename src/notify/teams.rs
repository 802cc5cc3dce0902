//! Microsoft Teams: an Adaptive Card for a Workflows webhook (the default), or a legacy
//! MessageCard for receivers that still speak the retired Office 365 connector format.
//!
//! Workflows body: `{"type": "message", "attachments": [{"contentType":
//! "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": AdaptiveCard}]}`
//! with an Adaptive Card 1.4: a title `TextBlock` coloured by severity (`attention`,
//! `warning`, `good` when resolved; or the channel's `title` template), the rule's `summary`,
//! a `FactSet` (host, rule, series, value, threshold, severity, event, since, the rule's
//! static labels), the description (or the channel's `text` template), the key, and an
//! `Action.OpenUrl` to the rule's runbook (a MessageCard: `OpenUri`). Only schema-valid properties are
//! used (no `msteams` extension), so the card validates against the 1.4 JSON schema.
//!
//! Teams renders Markdown in `TextBlock` text and in `Fact.title`/`Fact.value` alike, so every
//! piece of untrusted text goes through [`escape::markdown`] wherever it lands. Teams refuses
//! messages over 28 KB: the card is rendered with shorter and shorter text until it fits well
//! under that.
//!
//! Answers: a Workflows webhook says 202 (or 200); a MessageCard connector says 200 with body
//! `1`, and older connectors reported throttling as a 200 whose body is an error text. 408,
//! 429 (honouring `Retry-After`) and 5xx are transient, other 4xx permanent.

use super::http::{self, HttpResponse};
use super::{Receipt, Rendered, SendError, Sender, escape};
use crate::config::Secret;
use crate::config::Severity;
use crate::config::channels::{TeamsConfig, TeamsFormat, Templates};
use crate::event::AlertEvent;
use serde_json::{Value, json};
use std::time::Duration;

/// The most a rendered message may weigh (bytes), well under Teams' 28 KB.
pub const MAX_BODY_BYTES: usize = 24 * 1024;

/// Text budgets (characters after escaping), from generous to minimal; the first that fits
/// [`MAX_BODY_BYTES`] is used. The last one always fits: 8 facts of 80 characters, three
/// lines of 150 (title, fallback, key) and 200 of description, at most 6 bytes each once
/// JSON-encoded, come to under 8 KB.
const BUDGETS: [Budget; 3] = [
    Budget { title: 300, fact: 1000, text: 4000 },
    Budget { title: 200, fact: 300, text: 1000 },
    Budget { title: 150, fact: 80, text: 200 },
];

/// Notifications in one grouped card.
const GROUP_CAPACITY: usize = 20;

/// Budgets of a grouped card (headline, and per notification its line, key and
/// description), from generous to minimal. The last always fits [`MAX_BODY_BYTES`]: 20
/// entries of 60 + 60 characters and a headline of 120 (twice, with the fallback), at most 6
/// bytes each once JSON-encoded, plus about 200 bytes of structure per entry, come to under
/// 20 KB.
const GROUP_BUDGETS: [GroupBudget; 3] = [
    GroupBudget { headline: 300, line: 600, key: 200, description: 600 },
    GroupBudget { headline: 200, line: 200, key: 120, description: 200 },
    GroupBudget { headline: 120, line: 60, key: 60, description: 0 },
];

#[derive(Clone, Copy, Debug)]
struct GroupBudget {
    headline: usize,
    line: usize,
    key: usize,
    description: usize,
}

#[derive(Clone, Copy, Debug)]
struct Budget {
    title: usize,
    fact: usize,
    text: usize,
}

/// Sends to a Microsoft Teams Workflows (or legacy connector) webhook.
#[derive(Clone, Debug)]
pub struct TeamsSender {
    name: String,
    url: Secret,
    format: TeamsFormat,
    templates: Templates,
    timeout: Duration,
}

impl TeamsSender {
    /// Builds the sender of channel `name`; `timeout` limits each POST.
    pub fn new(name: &str, config: &TeamsConfig, timeout: Duration) -> Result<TeamsSender, String> {
        if config.webhook_url.expose().trim().is_empty() {
            return Err(format!("channel {name}: the teams webhook_url is empty"));
        }
        Ok(TeamsSender {
            name: name.to_string(),
            url: config.webhook_url.clone(),
            format: config.format,
            templates: config.templates.clone(),
            timeout,
        })
    }

    /// The JSON body for `event`, within [`MAX_BODY_BYTES`].
    fn body(&self, event: &AlertEvent) -> String {
        let mut body = String::new();
        for budget in BUDGETS {
            body = match (self.format, &event.report) {
                (TeamsFormat::Workflows, Some(r)) => {
                    crate::report::teams::workflows(r, MAX_BODY_BYTES)
                }
                (TeamsFormat::MessageCard, Some(r)) => {
                    crate::report::teams::message_card(r, MAX_BODY_BYTES)
                }
                (TeamsFormat::Workflows, None) => workflows_message(event, &self.templates, budget),
                (TeamsFormat::MessageCard, None) => message_card(event, &self.templates, budget),
            }
            .to_string();
            if body.len() <= MAX_BODY_BYTES {
                break;
            }
        }
        body
    }

    /// The JSON body of a grouped message, within [`MAX_BODY_BYTES`].
    fn group_body(&self, events: &[AlertEvent]) -> String {
        let mut body = String::new();
        for budget in GROUP_BUDGETS {
            body = match self.format {
                TeamsFormat::Workflows => workflows_group(events, budget),
                TeamsFormat::MessageCard => message_card_group(events, budget),
            }
            .to_string();
            if body.len() <= MAX_BODY_BYTES {
                break;
            }
        }
        body
    }

    fn post(&self, body: &str) -> Result<Receipt, SendError> {
        let headers = [("Content-Type".to_string(), "application/json; charset=utf-8".to_string())];
        // A network error already names the (redacted) URL.
        let name = &self.name;
        let response = http::post(self.url.expose(), &headers, body.as_bytes(), self.timeout)
            .map_err(|e| match e {
                SendError::Transient { reason, retry_after } => SendError::Transient {
                    reason: format!("teams channel {name}: {reason}"),
                    retry_after,
                },
                SendError::Permanent { reason } => {
                    SendError::permanent(format!("teams channel {name}: {reason}"))
                }
            })?;
        let what = self.what();
        classify(&what, self.format, &response)
    }

    fn what(&self) -> String {
        format!(
            "teams channel {} (webhook {})",
            self.name,
            crate::config::redact_url(self.url.expose())
        )
    }
}

impl Sender for TeamsSender {
    fn render(&self, event: &AlertEvent) -> Rendered {
        Rendered { content_type: "application/json".to_string(), body: self.body(event) }
    }

    fn send(&mut self, event: &AlertEvent) -> Result<Receipt, SendError> {
        self.post(&self.body(event))
    }

    fn group_capacity(&self) -> usize {
        GROUP_CAPACITY
    }

    fn send_group(&mut self, events: &[AlertEvent]) -> Result<Receipt, SendError> {
        self.post(&self.group_body(events))
    }

    fn render_group(&self, events: &[AlertEvent]) -> Rendered {
        Rendered { content_type: "application/json".to_string(), body: self.group_body(events) }
    }
}

/// Reads a Teams answer (see the module documentation).
fn classify(
    what: &str,
    format: TeamsFormat,
    response: &HttpResponse,
) -> Result<Receipt, SendError> {
    let body = response.body.trim();
    if format == TeamsFormat::MessageCard
        && response.status == 200
        && !body.is_empty()
        && body != "1"
    {
        // A connector that could not deliver still answers 200, with the reason as text.
        let reason = format!("{what}: HTTP 200 but not accepted: {}", first_line(body));
        return Err(if body.contains("429") {
            SendError::Transient { reason, retry_after: response.retry_after }
        } else {
            SendError::permanent(reason)
        });
    }
    http::classify(what, response).map_err(|e| match (e, hint(response.status)) {
        (SendError::Permanent { reason }, Some(hint)) => {
            SendError::permanent(format!("{reason}; {hint}"))
        }
        (e, _) => e,
    })
}

fn hint(status: i32) -> Option<&'static str> {
    Some(match status {
        400 => "the webhook refused the card; please report this as a hostwatch bug",
        401 | 403 => "the webhook URL's signature was refused; copy the URL from the flow again",
        404 | 410 => {
            "the webhook no longer exists (flow deleted or turned off?); create a Workflows \
                     webhook and update webhook_url"
        }
        413 => "the message is too large for Teams; please report this as a hostwatch bug",
        _ => return None,
    })
}

fn first_line(text: &str) -> String {
    escape::one_line(&text.lines().next().unwrap_or("").chars().take(200).collect::<String>())
}

/// Adaptive Card `TextBlock` colour of the title.
fn color(event: &AlertEvent) -> &'static str {
    match (event.event, event.severity) {
        _ if event.ends_episode() => "good",
        (_, Severity::Critical) => "attention",
        (_, Severity::Warning) => "warning",
    }
}

/// MessageCard `themeColor`.
fn theme_color(event: &AlertEvent) -> &'static str {
    match (event.event, event.severity) {
        _ if event.ends_episode() => "2EB886",
        (_, Severity::Critical) => "D00000",
        (_, Severity::Warning) => "FFA500",
    }
}

/// The facts, labels and values raw.
fn facts(event: &AlertEvent) -> Vec<(&'static str, String)> {
    let mut facts = vec![
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
    facts
}

/// The title, escaped: the `title` template, else the headline.
fn title(event: &AlertEvent, templates: &Templates, b: Budget) -> String {
    match &templates.title {
        Some(t) => escape::one_line(&t.render_fit(event, escape::markdown, b.title, escape::chars)),
        None => fit(&event.headline(), b.title),
    }
}

/// The text under the facts, escaped: the `text` template (Markdown as the operator wrote
/// it), else the rule's description.
fn text(event: &AlertEvent, templates: &Templates, b: Budget) -> Option<String> {
    let text = match &templates.text {
        Some(t) => t.render_fit(event, escape::markdown, b.text, escape::chars),
        None => fit(event.description.as_deref()?, b.text),
    };
    (!text.trim().is_empty()).then_some(text)
}

const TEST_NOTICE: &str =
    "This is a test notification sent by hostwatch test-notify; no action needed.";

/// The Workflows message with its Adaptive Card.
fn workflows_message(event: &AlertEvent, templates: &Templates, b: Budget) -> Value {
    let title = title(event, templates, b);
    let mut body = vec![json!({
        "type": "TextBlock",
        "text": title,
        "weight": "bolder",
        "size": "medium",
        "color": color(event),
        "wrap": true,
    })];
    if event.test {
        body.push(
            json!({"type": "TextBlock", "text": TEST_NOTICE, "isSubtle": true, "wrap": true}),
        );
    }
    if let Some(summary) = &event.context.summary {
        body.push(json!({"type": "TextBlock", "text": fit(summary, b.text), "weight": "bolder",
                         "wrap": true}));
    }
    let facts: Vec<Value> = facts(event)
        .iter()
        .map(|(title, value)| json!({"title": title, "value": fit(value, b.fact)}))
        .collect();
    body.push(json!({"type": "FactSet", "facts": facts}));
    if let Some(text) = text(event, templates, b) {
        body.push(json!({"type": "TextBlock", "text": text, "wrap": true}));
    }
    body.push(json!({
        "type": "TextBlock",
        "text": fit(&format!("hostwatch \u{00B7} key {}", event.key), b.title),
        "isSubtle": true,
        "size": "small",
        "wrap": true,
    }));
    let mut message = adaptive_message(title, body);
    if let Some(url) = &event.context.runbook_url {
        message["attachments"][0]["content"]["actions"] =
            json!([{"type": "Action.OpenUrl", "title": "Runbook", "url": url}]);
    }
    message
}

/// The title colour of a grouped card: the worst open severity, green when all resolved.
fn group_color(events: &[AlertEvent]) -> &'static str {
    match crate::notify::group::worst_open(events) {
        None => "good",
        Some(Severity::Critical) => "attention",
        Some(Severity::Warning) => "warning",
    }
}

/// A grouped Workflows message: the group's headline, then a container per notification
/// (its line in the notification's colour, and its key).
fn workflows_group(events: &[AlertEvent], b: GroupBudget) -> Value {
    let headline = crate::notify::group::headline(events);
    let mut body = vec![json!({
        "type": "TextBlock",
        "text": fit(&headline, b.headline),
        "weight": "bolder",
        "size": "medium",
        "color": group_color(events),
        "wrap": true,
    })];
    for e in events {
        let mut items = vec![json!({"type": "TextBlock",
            "text": fit(&crate::notify::group::line(e), b.line), "color": color(e), "wrap": true})];
        if let Some(d) = description(e, b.description) {
            items.push(json!({"type": "TextBlock", "text": d, "wrap": true}));
        }
        items.push(json!({"type": "TextBlock", "text": fit(&format!("key {}", e.key), b.key),
            "isSubtle": true, "size": "small", "wrap": true}));
        body.push(json!({"type": "Container", "separator": true, "items": items}));
    }
    adaptive_message(fit(&headline, b.headline), body)
}

/// The notification's description within `limit` (none when the budget has no room).
fn description(e: &AlertEvent, limit: usize) -> Option<String> {
    e.description.as_deref().filter(|d| limit > 0 && !d.trim().is_empty()).map(|d| fit(d, limit))
}

/// A grouped legacy MessageCard: a section per notification.
fn message_card_group(events: &[AlertEvent], b: GroupBudget) -> Value {
    let headline = crate::notify::group::headline(events);
    let sections: Vec<Value> = events
        .iter()
        .map(|e| {
            let mut text = fit(&crate::notify::group::line(e), b.line);
            if let Some(d) = description(e, b.description) {
                text.push_str("\n\n");
                text.push_str(&d);
            }
            json!({"markdown": true, "text": format!("{text}\n\nkey {}", fit(&e.key, b.key))})
        })
        .collect();
    let theme = match crate::notify::group::worst_open(events) {
        None => "2EB886",
        Some(Severity::Critical) => "D00000",
        Some(Severity::Warning) => "FFA500",
    };
    json!({
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "themeColor": theme,
        "summary": fit(&headline, b.headline),
        "title": fit(&headline, b.headline),
        "sections": sections,
    })
}

/// The Workflows message around an Adaptive Card 1.4 of `body` (alerts and reports).
pub(crate) fn adaptive_message(fallback: String, body: Vec<Value>) -> Value {
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "fallbackText": fallback,
                "body": body,
            },
        }],
    })
}

/// The legacy MessageCard.
fn message_card(event: &AlertEvent, templates: &Templates, b: Budget) -> Value {
    let facts: Vec<Value> = facts(event)
        .iter()
        .map(|(name, value)| json!({"name": name, "value": fit(value, b.fact)}))
        .collect();
    let mut section = json!({"facts": facts, "markdown": true});
    let mut text = Vec::new();
    if event.test {
        text.push(TEST_NOTICE.to_string());
    }
    if let Some(summary) = &event.context.summary {
        text.push(format!("**{}**", fit(summary, b.text)));
    }
    if let Some(t) = self::text(event, templates, b) {
        text.push(t);
    }
    if !text.is_empty() {
        section["text"] = json!(text.join("\n\n"));
    }
    let title = title(event, templates, b);
    let mut card = json!({
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "themeColor": theme_color(event),
        "summary": title,
        "title": title,
        "sections": [section],
    });
    if let Some(url) = &event.context.runbook_url {
        card["potentialAction"] = json!([{"@type": "OpenUri", "name": "Runbook",
                                          "targets": [{"os": "default", "uri": url}]}]);
    }
    card
}

/// [`escape::markdown`] of `text` cut to at most `limit` characters (see [`escape::fit`]).
fn fit(text: &str, limit: usize) -> String {
    escape::fit(text, limit, escape::markdown, escape::chars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::EventKind;

    const HOSTILE: &str = "/mnt/[click](https://evil) *b* <at>Boss</at>\n\"quoted\" <!channel>";

    fn sender(format: TeamsFormat) -> TeamsSender {
        let config = TeamsConfig {
            webhook_url: "https://prod.westeurope.logic.azure.com/workflows/abc?sig=SECRET".into(),
            format,
            templates: Templates::default(),
        };
        TeamsSender::new("teams-ops", &config, Duration::from_secs(5)).unwrap()
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
        e.host = "web_01 <b>".into();
        e.description = Some(format!("Mount {HOSTILE} is full."));
        e
    }

    #[test]
    fn a_full_group_of_hostile_notifications_fits_the_body_limit_in_both_formats() {
        let mut e = hostile();
        let control: String = "\u{1}\u{2}<>&*_[]".repeat(400);
        e.series = format!("disk.used_percent{{mount={control}}}");
        e.rule = control.clone();
        e.description = Some(control.clone());
        e.host = control.clone();
        let events: Vec<AlertEvent> = (0..GROUP_CAPACITY).map(|_| e.clone()).collect();
        for format in [TeamsFormat::Workflows, TeamsFormat::MessageCard] {
            let s = sender(format);
            let body = s.render_group(&events).body;
            assert!(body.len() <= MAX_BODY_BYTES, "{format:?}: {} bytes", body.len());
            let v: Value = serde_json::from_str(&body).unwrap();
            assert!(!v.to_string().contains("<at>"), "markup escaped");
        }
    }

    fn rendered(format: TeamsFormat, e: &AlertEvent) -> Value {
        let r = sender(format).render(e);
        assert_eq!(r.content_type, "application/json");
        serde_json::from_str(&r.body).unwrap()
    }

    fn strings(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
            Value::Object(m) => m.values().for_each(|x| strings(x, out)),
            _ => {}
        }
    }

    /// No Markdown or mention survives: no raw `<`, `>`, line break, and every `[`, `]`, `(`,
    /// `)`, `*`, `_` is backslash-escaped.
    fn assert_inert(text: &str) {
        assert!(!text.contains(['<', '>', '\n']), "raw character in {text:?}");
        let chars: Vec<char> = text.chars().collect();
        for (i, c) in chars.iter().enumerate() {
            if "[]()*_".contains(*c) {
                let escapes = chars[..i].iter().rev().take_while(|&&p| p == '\\').count();
                assert!(escapes % 2 == 1, "unescaped {c:?} in {text:?}");
            }
        }
    }

    #[test]
    fn templates_and_context_render_in_both_formats_with_values_escaped() {
        use crate::notify::template::Template;
        let templates = Templates {
            title: Some(Template::parse("{{rule}}: {{labels.mount}}").unwrap()),
            text: Some(Template::parse("**Team** {{labels.team}}").unwrap()),
        };
        let mut e = hostile();
        e.context.rule_labels.insert("team".into(), "[x](https://evil) <at>Boss</at>".into());
        e.context.runbook_url = Some("https://wiki/a?b=1&c=2".into());
        e.context.summary = Some("Full *now*".into());
        for format in [TeamsFormat::Workflows, TeamsFormat::MessageCard] {
            let mut s = sender(format);
            s.templates = templates.clone();
            let v: Value = serde_json::from_str(&s.render(&e).body).unwrap();
            let mut texts = Vec::new();
            strings(&v, &mut texts);
            let all = texts.join("\n");
            assert!(all.contains("disk\\_root: /mnt/\\[click\\]"), "{all}");
            assert!(all.contains("**Team** \\[x\\]\\(https://evil\\) &lt;at&gt;Boss&lt;/at&gt;"));
            assert!(all.contains("Full \\*now\\*"), "{all}");
            assert!(all.contains("team=\\[x\\]"), "the Labels fact: {all}");
            assert!(!all.contains("<at>") && !all.contains("[x](https://evil)"), "{all}");
            assert!(texts.iter().any(|t| t == "https://wiki/a?b=1&c=2"), "the runbook: {all}");
        }
    }

    #[test]
    fn workflows_card_has_title_facts_and_key() {
        let v = rendered(TeamsFormat::Workflows, &event());
        assert_eq!(v["type"], "message");
        let a = &v["attachments"][0];
        assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
        assert!(a["contentUrl"].is_null());
        let card = &a["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["version"], "1.4");
        assert_eq!(card["$schema"], "http://adaptivecards.io/schemas/adaptive-card.json");
        let body = card["body"].as_array().unwrap();
        assert_eq!(body[0]["color"], "attention");
        assert_eq!(body[0]["text"], "CRITICAL firing: disk\\_root on web-01");
        assert_eq!(body[1]["type"], "FactSet");
        let facts = body[1]["facts"].as_array().unwrap();
        assert_eq!(facts.len(), 8);
        assert_eq!(facts[0], json!({"title": "Host", "value": "web-01"}));
        assert_eq!(facts[3], json!({"title": "Value", "value": "96.1%"}));
        assert_eq!(facts[7], json!({"title": "Since", "value": "2023-11-14T22:13:20Z"}));
        assert!(body.last().unwrap()["text"].as_str().unwrap().contains("key"));
    }

    #[test]
    fn colours_follow_severity_and_resolution() {
        let mut e = event();
        e.severity = Severity::Warning;
        assert_eq!(
            rendered(TeamsFormat::Workflows, &e)["attachments"][0]["content"]["body"][0]["color"],
            "warning"
        );
        assert_eq!(rendered(TeamsFormat::MessageCard, &e)["themeColor"], "FFA500");
        e.event = EventKind::Resolved;
        let v = rendered(TeamsFormat::Workflows, &e);
        assert_eq!(v["attachments"][0]["content"]["body"][0]["color"], "good");
        assert_eq!(rendered(TeamsFormat::MessageCard, &event())["themeColor"], "D00000");
    }

    #[test]
    fn message_card_is_the_legacy_shape() {
        let v = rendered(TeamsFormat::MessageCard, &event());
        assert_eq!(v["@type"], "MessageCard");
        assert_eq!(v["@context"], "http://schema.org/extensions");
        assert!(v["summary"].as_str().unwrap().contains("CRITICAL firing"));
        assert_eq!(v["sections"][0]["facts"][0], json!({"name": "Host", "value": "web-01"}));
    }

    #[test]
    fn test_events_are_marked() {
        let e = AlertEvent::test_event("web-01", Severity::Warning, 1_700_000_000.0);
        let v = rendered(TeamsFormat::Workflows, &e);
        let body = &v["attachments"][0]["content"]["body"];
        assert!(body[0]["text"].as_str().unwrap().starts_with("TEST WARNING firing"));
        assert!(body[1]["text"].as_str().unwrap().contains("test notification"));
        let v = rendered(TeamsFormat::MessageCard, &e);
        assert!(v["title"].as_str().unwrap().starts_with("TEST "));
        assert!(v["sections"][0]["text"].as_str().unwrap().contains("test notification"));
    }

    #[test]
    fn hostile_text_is_escaped_in_text_blocks_and_facts() {
        for format in [TeamsFormat::Workflows, TeamsFormat::MessageCard] {
            let v = rendered(format, &hostile());
            let mut all = Vec::new();
            strings(&v, &mut all);
            for s in all.iter().filter(|s| !s.starts_with("http")) {
                assert_inert(s);
            }
            let body = sender(format).render(&hostile()).body;
            assert!(body.contains(r"\\[click\\]\\(https://evil\\)"), "{body}");
            assert!(body.contains("&lt;at&gt;Boss&lt;/at&gt;") && body.contains("\\\"quoted\\\""));
        }
    }

    #[test]
    fn huge_text_stays_well_under_28_kb() {
        let mut e = hostile();
        e.host = "_".repeat(50_000);
        e.series = "\u{1F4BE}<".repeat(20_000);
        e.threshold = "\u{0001}".repeat(20_000);
        e.description = Some("*".repeat(100_000));
        for format in [TeamsFormat::Workflows, TeamsFormat::MessageCard] {
            let body = sender(format).render(&e).body;
            assert!(body.len() <= MAX_BODY_BYTES, "{format:?}: {} bytes", body.len());
            let v: Value = serde_json::from_str(&body).unwrap();
            let mut all = Vec::new();
            strings(&v, &mut all);
            all.iter().filter(|s| !s.starts_with("http")).for_each(|s| assert_inert(s));
        }
    }

    #[test]
    fn fit_never_splits_an_escape() {
        assert_eq!(fit("a*b", 10), "a\\*b");
        assert_eq!(fit("a*b", 3), "a\u{2026}");
        assert_eq!(fit("a<b", 5), "a\u{2026}");
        assert_eq!(fit("a<bc", 6), "a&lt;\u{2026}");
    }

    fn resp(status: i32, body: &str, retry: Option<u64>) -> HttpResponse {
        HttpResponse { status, body: body.into(), retry_after: retry.map(Duration::from_secs) }
    }

    #[test]
    fn answers_are_classified() {
        let w = TeamsFormat::Workflows;
        let m = TeamsFormat::MessageCard;
        assert!(classify("t", w, &resp(202, "", None)).is_ok());
        assert!(classify("t", w, &resp(200, "", None)).is_ok());
        assert_eq!(classify("t", m, &resp(200, "1", None)).unwrap().answer, "HTTP 200: 1");
        assert_eq!(
            classify("t", w, &resp(429, "", Some(9))),
            Err(SendError::Transient {
                reason: "t: HTTP 429".into(),
                retry_after: Some(Duration::from_secs(9))
            })
        );
        assert!(matches!(classify("t", w, &resp(502, "", None)), Err(SendError::Transient { .. })));
        match classify("teams channel x", w, &resp(404, "not found", None)) {
            Err(SendError::Permanent { reason }) => {
                assert!(reason.contains("no longer exists"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify("t", w, &resp(400, "bad", None)),
            Err(SendError::Permanent { .. })
        ));
        let throttled = "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 429";
        assert!(matches!(
            classify("t", m, &resp(200, throttled, None)),
            Err(SendError::Transient { .. })
        ));
        assert!(matches!(
            classify("t", m, &resp(200, "Summary or Text is required.", None)),
            Err(SendError::Permanent { .. })
        ));
    }

    #[test]
    fn construction_errors_name_the_channel() {
        let config = TeamsConfig {
            webhook_url: "".into(),
            format: TeamsFormat::Workflows,
            templates: Templates::default(),
        };
        let e = TeamsSender::new("teams-ops", &config, Duration::from_secs(1)).unwrap_err();
        assert!(e.contains("channel teams-ops"), "{e}");
    }

    #[test]
    fn an_escalation_by_time_and_a_resolution_tell_the_whole_story() {
        for format in [TeamsFormat::Workflows, TeamsFormat::MessageCard] {
            let mut e = event();
            e.event = EventKind::Escalated;
            e.threshold = "> 50".into();
            e.context.escalated_by = Some(crate::alerts::EscalatedBy::Time);
            e.context.reason = Some("warning for 2m, escalated to critical by policy".into());
            let mut all = Vec::new();
            strings(&rendered(format, &e), &mut all);
            assert!(all.iter().any(|s| s == "Warning threshold"), "{all:?}");
            assert!(all.iter().any(|s| s.contains("by policy")), "{all:?}");
            let mut r = event();
            r.event = EventKind::Resolved;
            r.context.episode_duration_s = Some(725.0);
            r.context.peak_text = Some("96.1%".into());
            let mut all = Vec::new();
            strings(&rendered(format, &r), &mut all);
            assert!(all.iter().any(|s| s == "Clear condition"), "{all:?}");
            assert!(all.iter().any(|s| s.contains("lasted 12m5s, peak 96.1%")), "{all:?}");
        }
    }

    #[test]
    fn flapping_and_flap_end_say_so_and_an_ok_flap_end_looks_resolved() {
        let [flapping, ok, firing] = crate::testutil::flap_events(event());
        for format in [TeamsFormat::Workflows, TeamsFormat::MessageCard] {
            let mut all = Vec::new();
            strings(&rendered(format, &flapping), &mut all);
            assert!(all.iter().any(|s| s.contains("CRITICAL flapping: disk")), "{all:?}");
            assert!(all.iter().any(|s| s.contains("62.5% of the last 21 evaluations")), "{all:?}");
            let mut all = Vec::new();
            strings(&rendered(format, &firing), &mut all);
            assert!(all.iter().any(|s| s.contains("flapping over, still firing")), "{all:?}");
        }
        let v = rendered(TeamsFormat::Workflows, &ok);
        assert_eq!(v["attachments"][0]["content"]["body"][0]["color"], "good");
        assert_eq!(rendered(TeamsFormat::MessageCard, &ok)["themeColor"], "2EB886");
        assert_eq!(rendered(TeamsFormat::MessageCard, &firing)["themeColor"], "D00000");
    }
}
