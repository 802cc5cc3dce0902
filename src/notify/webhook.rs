//! The generic webhook channel: POSTs each notification as JSON to a configured URL.
//!
//! Two body formats. `json` (the default) is the [`AlertEvent`] itself, the documented event
//! object `replay` and the events log also write. `alertmanager-webhook` is the body an
//! Alertmanager `webhook_config` sends (version 4), so receivers written for Alertmanager
//! understand hostwatch as is: each notification is its own group of one alert, keyed by the
//! episode, with the labels, annotations and fingerprint of [`super::alertmanager`].
//!
//! Every request carries the configured headers (`${VAR}` already expanded by the config),
//! `User-Agent: hostwatch/<version>`, and the notification's key twice so that receivers can
//! drop a retried delivery: `Idempotency-Key` (a quoted string, as the IETF
//! `Idempotency-Key` draft defines it) and `X-Hostwatch-Key` (the bare key). A configured
//! header of the same name replaces hostwatch's own. Answers are read by [`http::classify`];
//! the URL (whose path or query often is the secret) appears in messages only as
//! `scheme://host:port/<redacted>`.

use super::alertmanager::{
    annotations, fingerprint, labels, prefixed, redacted, scrub_url, scrubbed, split_userinfo,
    user_agent,
};
use super::{Receipt, Rendered, SendError, Sender, http};
use crate::config::channels::{WebhookConfig, WebhookFormat};
use crate::event::AlertEvent;
use crate::timefmt::rfc3339;
use serde_json::{Value, json};
use std::time::Duration;

/// Notifications in one grouped request (`"group": true`).
const GROUP_CAPACITY: usize = 100;

/// Alertmanager's `endsAt` of an alert that has not ended (Go's zero time).
const NOT_ENDED: &str = "0001-01-01T00:00:00Z";

/// The webhook channel's sender.
pub struct WebhookSender {
    name: String,
    /// Where to POST, without user info.
    url: String,
    /// Fixed headers: hostwatch's defaults, then the configured ones.
    headers: Vec<(String, String)>,
    format: WebhookFormat,
    templates: crate::config::channels::Templates,
    timeout: Duration,
}

impl WebhookSender {
    /// Builds the sender of channel `name`; `timeout` applies when the config sets none.
    pub fn new(
        name: &str,
        config: &WebhookConfig,
        timeout: Duration,
    ) -> Result<WebhookSender, String> {
        let config_url = config.url.expose();
        if !(config_url.starts_with("http://") || config_url.starts_with("https://")) {
            return Err(format!(
                "webhook channel {name}: the URL {} does not start with http:// or https://",
                redacted(config_url)
            ));
        }
        let (url, auth) = split_userinfo(config_url);
        let mut headers = vec![
            ("Content-Type".to_string(), "application/json".to_string()),
            ("User-Agent".to_string(), user_agent()),
        ];
        headers.extend(auth.map(|a| ("Authorization".to_string(), a)));
        for (name, value) in &config.headers {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            headers.push((name.clone(), value.expose().to_string()));
        }
        Ok(WebhookSender {
            name: name.to_string(),
            url,
            headers,
            format: config.format,
            templates: config.templates.clone(),
            timeout: config.timeout.unwrap_or(timeout),
        })
    }

    /// The headers of one request: the fixed ones and the event's de-duplication keys
    /// (unless configured).
    fn headers_for(&self, key: &str) -> Vec<(String, String)> {
        let key = header_safe(key);
        let quoted = format!("\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""));
        let mut headers = self.headers.clone();
        for (name, value) in [("Idempotency-Key", quoted), ("X-Hostwatch-Key", key)] {
            if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                headers.push((name.to_string(), value));
            }
        }
        headers
    }

    /// The body of a grouped request: in `json`, `{"group": true, "key", "count", "host",
    /// "summary", "events": [event…]}`; in `alertmanager-webhook`, one group of every alert.
    fn group_body(&self, events: &[AlertEvent]) -> String {
        let key = group_key(events);
        let body = match self.format {
            WebhookFormat::Json => crate::notify::group::group_json(events),
            WebhookFormat::AlertmanagerWebhook => {
                let alerts: Vec<Value> = events
                    .iter()
                    .map(|e| self.alertmanager_message(e)["alerts"][0].clone())
                    .collect();
                let firing = events.iter().any(|e| !e.ends_episode());
                json!({
                    "version": "4",
                    "groupKey": key,
                    "truncatedAlerts": 0,
                    "status": if firing { "firing" } else { "resolved" },
                    "receiver": self.name,
                    "groupLabels": {},
                    "commonLabels": {},
                    "commonAnnotations": {},
                    "externalURL": "",
                    "alerts": alerts,
                })
            }
        };
        body.to_string()
    }

    /// Alertmanager's webhook body for one event: a group of one alert.
    fn alertmanager_message(&self, event: &AlertEvent) -> Value {
        let labels = labels(event);
        let mut annotations = annotations(event);
        for (key, text) in self.templates.plain(event) {
            annotations.extend(text.filter(|t| !t.is_empty()).map(|t| (key.to_string(), t)));
        }
        let (status, ends_at) = match event.ends_episode() {
            true => ("resolved", rfc3339(event.ts.max(event.since))),
            false => ("firing", NOT_ENDED.to_string()),
        };
        json!({
            "version": "4",
            "groupKey": event.episode_key,
            "truncatedAlerts": 0,
            "status": status,
            "receiver": self.name,
            // One alert per group, as with `group_by: ['...']`: the group is the alert.
            "groupLabels": labels,
            "commonLabels": labels,
            "commonAnnotations": annotations,
            "externalURL": "",
            "alerts": [{
                "status": status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": rfc3339(event.since),
                "endsAt": ends_at,
                "generatorURL": "",
                "fingerprint": fingerprint(&labels),
            }],
        })
    }
}

impl Sender for WebhookSender {
    fn render(&self, event: &AlertEvent) -> Rendered {
        let body = match self.format {
            // A report is hostwatch's JSON whatever the format (`reports` refuses this
            // channel in Alertmanager's format).
            _ if event.report.is_some() => serde_json::to_string(event),
            WebhookFormat::Json => serde_json::to_string(&self.templates.event_json(event)),
            WebhookFormat::AlertmanagerWebhook => {
                serde_json::to_string(&self.alertmanager_message(event))
            }
        };
        Rendered { content_type: "application/json".to_string(), body: body.unwrap_or_default() }
    }

    fn send(&mut self, event: &AlertEvent) -> Result<Receipt, SendError> {
        let body = self.render(event).body;
        self.post(&self.headers_for(&event.key), &body)
    }

    fn group_capacity(&self) -> usize {
        GROUP_CAPACITY
    }

    fn send_group(&mut self, events: &[AlertEvent]) -> Result<Receipt, SendError> {
        let body = self.group_body(events);
        self.post(&self.headers_for(&group_key(events)), &body)
    }

    fn render_group(&self, events: &[AlertEvent]) -> Rendered {
        Rendered { content_type: "application/json".to_string(), body: self.group_body(events) }
    }
}

impl WebhookSender {
    fn post(&self, headers: &[(String, String)], body: &str) -> Result<Receipt, SendError> {
        let what = format!("webhook {}: POST {}", self.name, redacted(&self.url));
        let response = http::post(&self.url, headers, body.as_bytes(), self.timeout)
            .map_err(|e| prefixed(&format!("webhook {}", self.name), e))?;
        http::classify(&what, &response)
            .map(|r| Receipt { answer: scrub_url(&r.answer, &self.url) })
            .map_err(|e| scrubbed(e, &self.url))
    }
}

use crate::notify::group::group_key;

/// `text` with every character outside printable ASCII replaced by `_` (a header value).
fn header_safe(text: &str) -> String {
    text.chars().map(|c| if (' '..='~').contains(&c) { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::EventKind;
    use crate::config::Severity;

    fn config(format: WebhookFormat) -> WebhookConfig {
        WebhookConfig {
            url: "https://bot:pw@hooks.example/h/s3cret?token=t".into(),
            headers: vec![("Authorization".into(), "Bearer abc".into())],
            format,
            timeout: None,
            templates: Default::default(),
        }
    }

    fn event(kind: EventKind) -> AlertEvent {
        let mut e = AlertEvent::test_event("web-01", Severity::Critical, 1_700_000_000.0);
        e.event = kind;
        e.ts = 1_700_000_600.0;
        e
    }

    #[test]
    fn json_body_is_the_event() {
        let s = WebhookSender::new("hook", &config(WebhookFormat::Json), Duration::from_secs(3))
            .unwrap();
        let e = event(EventKind::Firing);
        let r = s.render(&e);
        assert_eq!(r.content_type, "application/json");
        let back: AlertEvent = serde_json::from_str(&r.body).unwrap();
        assert_eq!(back, e);
        assert_eq!(
            serde_json::from_str::<Value>(&r.body).unwrap(),
            serde_json::to_value(&e).unwrap()
        );
    }

    #[test]
    fn templates_add_title_and_text_in_either_format() {
        use crate::notify::template::Template;
        let mut e = event(EventKind::Firing);
        e.labels.insert("mount".into(), "</x>\"q\"".into());
        e.context.summary = Some("Full".into());
        for format in [WebhookFormat::Json, WebhookFormat::AlertmanagerWebhook] {
            let mut c = config(format);
            c.templates.title = Some(Template::parse("{{rule}} {{labels.mount}}").unwrap());
            c.templates.text = Some(Template::parse("{{summary}}: {{runbook_url|none}}").unwrap());
            let s = WebhookSender::new("hook", &c, Duration::from_secs(3)).unwrap();
            let v: Value = serde_json::from_str(&s.render(&e).body).unwrap();
            let (title, text) = match format {
                WebhookFormat::Json => (&v["title"], &v["text"]),
                WebhookFormat::AlertmanagerWebhook => (
                    &v["alerts"][0]["annotations"]["title"],
                    &v["alerts"][0]["annotations"]["text"],
                ),
            };
            // JSON carries any text as it is: nothing to escape beyond JSON's own quoting.
            assert_eq!((title, text), (&json!("hostwatch_test </x>\"q\""), &json!("Full: none")));
        }
        let plain =
            WebhookSender::new("hook", &config(WebhookFormat::Json), Duration::from_secs(3))
                .unwrap();
        let v: Value = serde_json::from_str(&plain.render(&e).body).unwrap();
        assert!(v.get("title").is_none() && v.get("text").is_none(), "{v}");
        assert_eq!(v["summary"], "Full");
    }

    #[test]
    fn headers_configured_defaults_and_keys() {
        let s = WebhookSender::new("hook", &config(WebhookFormat::Json), Duration::from_secs(3))
            .unwrap();
        assert_eq!(s.url, "https://hooks.example/h/s3cret?token=t");
        assert_eq!(s.timeout, Duration::from_secs(3));
        let e = event(EventKind::Firing);
        let h = s.headers_for(&e.key);
        let get = |n: &str| h.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
        // The configured Authorization replaces the one from the URL's user info.
        assert_eq!(h.iter().filter(|(k, _)| k == "Authorization").count(), 1);
        assert_eq!(get("Authorization"), Some("Bearer abc"));
        assert_eq!(get("Content-Type"), Some("application/json"));
        assert_eq!(get("User-Agent"), Some(concat!("hostwatch/", env!("CARGO_PKG_VERSION"))));
        assert_eq!(get("X-Hostwatch-Key"), Some(e.key.as_str()));
        assert_eq!(get("Idempotency-Key"), Some(format!("\"{}\"", e.key).as_str()));
    }

    #[test]
    fn configured_header_replaces_a_default_of_any_case() {
        let mut c = config(WebhookFormat::Json);
        c.headers.push(("content-type".into(), "application/vnd.x+json".into()));
        c.headers.push(("x-hostwatch-key".into(), "fixed".into()));
        let s = WebhookSender::new("hook", &c, Duration::from_secs(3)).unwrap();
        let h = s.headers_for(&event(EventKind::Firing).key);
        let names: Vec<String> = h.iter().map(|(k, _)| k.to_ascii_lowercase()).collect();
        assert_eq!(names.iter().filter(|n| *n == "content-type").count(), 1);
        assert_eq!(names.iter().filter(|n| *n == "x-hostwatch-key").count(), 1);
        assert!(h.contains(&("x-hostwatch-key".into(), "fixed".into())));
    }

    #[test]
    fn header_values_stay_printable() {
        assert_eq!(header_safe("a:b\r\nc\u{e9}"), "a:b__c_");
    }

    #[test]
    fn alertmanager_webhook_body_while_firing() {
        let s = WebhookSender::new(
            "am_receiver",
            &config(WebhookFormat::AlertmanagerWebhook),
            Duration::from_secs(3),
        )
        .unwrap();
        let e = event(EventKind::Reminder);
        let v: Value = serde_json::from_str(&s.render(&e).body).unwrap();
        assert_eq!(v["version"], "4");
        assert_eq!(v["groupKey"], e.episode_key.as_str());
        assert_eq!(v["status"], "firing");
        assert_eq!(v["receiver"], "am_receiver");
        assert_eq!(v["externalURL"], "");
        assert_eq!(v["truncatedAlerts"], 0);
        let a = &v["alerts"][0];
        assert_eq!(v["alerts"].as_array().map(Vec::len), Some(1));
        assert_eq!(a["status"], "firing");
        assert_eq!(
            a["labels"],
            json!({"alertname": "hostwatch_test", "host": "web-01", "severity": "critical"})
        );
        assert_eq!(v["commonLabels"], a["labels"]);
        assert_eq!(v["groupLabels"], a["labels"]);
        assert_eq!(v["commonAnnotations"], a["annotations"]);
        assert_eq!(a["annotations"]["value"], "99.9%");
        assert_eq!(a["annotations"]["threshold"], "> 95");
        assert_eq!(
            a["annotations"]["summary"],
            "hostwatch_test on web-01: cpu.usage = 99.9% (> 95)"
        );
        assert_eq!(a["startsAt"], "2023-11-14T22:13:20Z");
        assert_eq!(a["endsAt"], NOT_ENDED);
        assert_eq!(a["generatorURL"], "");
        assert_eq!(a["fingerprint"], fingerprint(&labels(&e)).as_str());
    }

    #[test]
    fn alertmanager_webhook_body_on_resolve() {
        let s = WebhookSender::new(
            "am_receiver",
            &config(WebhookFormat::AlertmanagerWebhook),
            Duration::from_secs(3),
        )
        .unwrap();
        let firing = event(EventKind::Firing);
        let resolved = event(EventKind::Resolved);
        let v: Value = serde_json::from_str(&s.render(&resolved).body).unwrap();
        let f: Value = serde_json::from_str(&s.render(&firing).body).unwrap();
        assert_eq!(v["status"], "resolved");
        assert_eq!(v["alerts"][0]["status"], "resolved");
        assert_eq!(v["alerts"][0]["endsAt"], "2023-11-14T22:23:20Z");
        // The same alert as far as the receiver can tell.
        assert_eq!(v["groupKey"], f["groupKey"]);
        assert_eq!(v["alerts"][0]["fingerprint"], f["alerts"][0]["fingerprint"]);
    }

    #[test]
    fn a_url_without_http_is_refused_naming_the_channel() {
        let mut c = config(WebhookFormat::Json);
        c.url = "ftp://x/secret".into();
        let err = WebhookSender::new("hook", &c, Duration::from_secs(3)).err().unwrap();
        assert!(err.starts_with("webhook channel hook:"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn an_ok_flap_end_resolves_in_the_alertmanager_webhook_body_and_flapping_fires() {
        let s = WebhookSender::new(
            "am_receiver",
            &config(WebhookFormat::AlertmanagerWebhook),
            Duration::from_secs(3),
        )
        .unwrap();
        let flapping = event(EventKind::Flapping);
        let mut ok = event(EventKind::FlapEnd);
        ok.context.state = Some(crate::event::CurrentState::Ok);
        let mut still = ok.clone();
        still.context.state = Some(crate::event::CurrentState::Firing);
        let status = |e: &AlertEvent| {
            let v: Value = serde_json::from_str(&s.render(e).body).unwrap();
            v["alerts"][0]["status"].as_str().unwrap().to_string()
        };
        assert_eq!(
            (status(&flapping), status(&ok), status(&still)),
            ("firing".into(), "resolved".into(), "firing".into())
        );
        // The JSON form carries the flap's fields.
        let j = WebhookSender::new("hook", &config(WebhookFormat::Json), Duration::from_secs(3))
            .unwrap();
        let v: Value = serde_json::from_str(&j.render(&ok).body).unwrap();
        assert_eq!((v["event"].as_str(), v["state"].as_str()), (Some("flap_end"), Some("ok")));
    }
}
