//! The Alertmanager channel: pushes alerts into a Prometheus Alertmanager through
//! `POST <url>/api/v2/alerts`, and Alertmanager's data model for the webhook channel's
//! `alertmanager-webhook` format (label sets, annotations, fingerprints).
//!
//! Alertmanager forgets an alert its client stops re-sending, so this channel keeps every
//! firing alert in an in-memory active set and re-posts the whole set every `resend_every`
//! (the worker calls [`Sender::refresh`]). Each firing alert carries
//! `endsAt = now + 4 × resend_every`: while hostwatch runs Alertmanager never resolves it by
//! itself (its `resolve_timeout` only applies to alerts without `endsAt`), and if hostwatch
//! dies the alert resolves on its own a few periods later. A resolution is sent as
//! `endsAt = now` and drops the alert from the set. An escalation changes the `severity`
//! label, hence Alertmanager's identity of the alert: the superseded alert is resolved in
//! the same request.
//!
//! With `watchdog: true` the heartbeat thread (`notify::heartbeat`, not this sender) also
//! keeps an always-firing `HostwatchWatchdog` alert there ([`watchdog_alerts`]).
//!
//! Label names are made valid for Alertmanager (`[a-zA-Z_][a-zA-Z0-9_]*`); a receiver that
//! refuses the request (HTTP 400: invalid alerts, 401/403/404) fails permanently, 429 and
//! 5xx are worth retrying. Not here: routing, retries and the outbox (`delivery`).

use super::escape::base64;
use super::{Receipt, Rendered, SendError, Sender, http};
use crate::alerts::EventKind;
use crate::config::channels::AlertmanagerConfig;
use crate::event::AlertEvent;
use crate::timefmt::rfc3339;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// A firing alert's `endsAt` lies this many resend periods ahead.
const ENDS_AFTER_PERIODS: u32 = 4;

/// The API path alerts are posted to, below the configured base URL.
const ALERTS_PATH: &str = "/api/v2/alerts";

/// Alertmanager's label names and values, sorted by name.
pub type LabelSet = BTreeMap<String, String>;

/// The Alertmanager channel's sender; owns the active set of alerts it keeps re-sending.
pub struct AlertmanagerSender {
    name: String,
    /// `<base>/api/v2/alerts`, without user info.
    endpoint: String,
    /// Content type, user agent and, for a URL with user info, basic authentication.
    headers: Vec<(String, String)>,
    timeout: Duration,
    resend_every: Duration,
    /// Firing alerts by (rule, series), in a stable order.
    active: BTreeMap<(String, String), ActiveAlert>,
}

/// One alert as Alertmanager knows it, without its end.
#[derive(Clone, Debug, PartialEq)]
struct ActiveAlert {
    labels: LabelSet,
    annotations: LabelSet,
    /// Episode start (Unix seconds).
    starts_at: f64,
}

impl ActiveAlert {
    fn of(event: &AlertEvent) -> ActiveAlert {
        ActiveAlert {
            labels: labels(event),
            annotations: annotations(event),
            starts_at: event.since,
        }
    }

    /// The postable alert of the API, ending at `ends_at` (never before it started, which
    /// Alertmanager refuses).
    fn postable(&self, ends_at: f64) -> Value {
        json!({
            "labels": self.labels,
            "annotations": self.annotations,
            "startsAt": rfc3339(self.starts_at),
            "endsAt": rfc3339(ends_at.max(self.starts_at)),
            "generatorURL": "",
        })
    }
}

impl AlertmanagerSender {
    /// Builds the sender of channel `name`; `timeout` applies when the config sets none.
    pub fn new(
        name: &str,
        config: &AlertmanagerConfig,
        timeout: Duration,
    ) -> Result<AlertmanagerSender, String> {
        if config.resend_every.is_zero() {
            return Err(format!("alertmanager channel {name}: resend_every must be above zero"));
        }
        let (endpoint, headers) = endpoint_and_headers(config);
        Ok(AlertmanagerSender {
            name: name.to_string(),
            endpoint,
            headers,
            timeout: config.timeout.unwrap_or(timeout),
            resend_every: config.resend_every,
            active: BTreeMap::new(),
        })
    }

    /// How many alerts are being kept alive by [`Sender::refresh`].
    pub fn active_len(&self) -> usize {
        self.active.len()
    }

    /// The alerts one event puts on the wire at `now`: the event's alert (firing until
    /// `now + 4 × resend_every`, or resolved at `now`), and the superseded alert of the same
    /// rule and series when its labels changed (escalation), resolved at `now`.
    fn batch(&self, event: &AlertEvent, now: f64) -> Vec<Value> {
        let alert = ActiveAlert::of(event);
        let mut out = vec![match event.ends_episode() {
            true => alert.postable(now),
            false => alert.postable(self.firing_until(now)),
        }];
        if let Some(old) = self.active.get(&key(event))
            && old.labels != alert.labels
        {
            out.push(old.postable(now));
        }
        out
    }

    fn firing_until(&self, now: f64) -> f64 {
        now + self.resend_every.saturating_mul(ENDS_AFTER_PERIODS).as_secs_f64()
    }

    /// Records what `event` means for the active set.
    fn track(&mut self, event: &AlertEvent) {
        match event.event {
            _ if event.ends_episode() => {
                self.active.remove(&key(event));
            }
            // A test notification is sent once and left to expire.
            _ if event.test => {}
            _ => {
                self.active.insert(key(event), ActiveAlert::of(event));
            }
        }
    }

    /// POSTs `alerts` and reads the answer.
    fn post(&self, alerts: &[Value]) -> Result<Receipt, SendError> {
        let body = serde_json::to_vec(alerts).unwrap_or_default();
        let what = format!("alertmanager {}: POST {}", self.name, redacted(&self.endpoint));
        let response = http::post(&self.endpoint, &self.headers, &body, self.timeout)
            .map_err(|e| prefixed(&format!("alertmanager {}", self.name), e))?;
        http::classify(&what, &response)
            .map(|r| Receipt { answer: scrub_url(&r.answer, &self.endpoint) })
            .map_err(|e| scrubbed(e, &self.endpoint))
    }
}

impl Sender for AlertmanagerSender {
    fn render(&self, event: &AlertEvent) -> Rendered {
        let alerts = self.batch(event, crate::timefmt::now_unix());
        Rendered {
            content_type: "application/json".to_string(),
            body: serde_json::to_string(&alerts).unwrap_or_default(),
        }
    }

    fn send(&mut self, event: &AlertEvent) -> Result<Receipt, SendError> {
        if event.report.is_some() {
            return Err(SendError::permanent(format!(
                "alertmanager {}: Alertmanager takes alerts, not reports",
                self.name
            )));
        }
        let alerts = self.batch(event, crate::timefmt::now_unix());
        // Tracked before sending: a firing alert whose send failed is still firing (the next
        // refresh carries it), and a resolved one must not be revived by a refresh.
        self.track(event);
        self.post(&alerts)
    }

    fn refresh_every(&self) -> Option<Duration> {
        Some(self.resend_every)
    }

    fn refresh(&mut self) -> Result<(), SendError> {
        if self.active.is_empty() {
            return Ok(());
        }
        let until = self.firing_until(crate::timefmt::now_unix());
        let alerts: Vec<Value> = self.active.values().map(|a| a.postable(until)).collect();
        self.post(&alerts).map(|_| ())
    }

    fn remember(&mut self, event: &AlertEvent) {
        self.track(event);
    }
}

/// The active-set key: one alert per rule and series.
fn key(event: &AlertEvent) -> (String, String) {
    (event.rule.clone(), event.series.clone())
}

/// Where a channel posts (`<base>/api/v2/alerts`, without user info) and the headers it
/// sends: content type, user agent and, for a URL with user info, basic authentication.
pub(crate) fn endpoint_and_headers(config: &AlertmanagerConfig) -> (String, Vec<(String, String)>) {
    let (url, auth) = split_userinfo(config.url.expose());
    let mut headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("User-Agent".to_string(), user_agent()),
    ];
    headers.extend(auth.map(|a| ("Authorization".to_string(), a)));
    (alerts_endpoint(&url), headers)
}

/// The name of the always-firing alert of a channel with `watchdog: true`.
pub const WATCHDOG_ALERTNAME: &str = "HostwatchWatchdog";

/// The watchdog's postable alerts at `now` (a one-element array): `alertname`
/// [`WATCHDOG_ALERTNAME`], `host`, `severity="none"`, started at `started` (one alert for the
/// whole run) and ending at `now + 4 × period`, so Alertmanager resolves it by itself a
/// few periods after hostwatch stops sending it (the heartbeat thread sends it after healthy
/// ticks only, at most a `period` apart: the longer of `resend_every` and the tick interval
/// plus the requests' timeouts, `notify::heartbeat`).
pub(crate) fn watchdog_alerts(host: &str, started: f64, now: f64, period: Duration) -> Value {
    let labels: LabelSet = [
        ("alertname".to_string(), WATCHDOG_ALERTNAME.to_string()),
        ("host".to_string(), host.to_string()),
        ("severity".to_string(), "none".to_string()),
    ]
    .into();
    let summary = format!(
        "hostwatch on {host} is alive and its loop ticks; this alert always fires while it \
         does: route it to a dead-man's switch"
    );
    let alert = ActiveAlert {
        labels,
        annotations: [("summary".to_string(), summary)].into(),
        starts_at: started.min(now),
    };
    let ends = now + period.saturating_mul(ENDS_AFTER_PERIODS).as_secs_f64();
    json!([alert.postable(ends)])
}

/// `<base>/api/v2/alerts` (the base may already end in it, or carry a path prefix).
fn alerts_endpoint(base: &str) -> String {
    let cut = base.find(['?', '#']).unwrap_or(base.len());
    let (head, tail) = base.split_at(cut);
    let head = head.trim_end_matches('/');
    if head.ends_with(ALERTS_PATH) {
        format!("{head}{tail}")
    } else {
        format!("{head}{ALERTS_PATH}{tail}")
    }
}

// ---- Alertmanager's data model, shared with the webhook channel ----

/// A valid Alertmanager label name (`[a-zA-Z_][a-zA-Z0-9_]*`) for `raw`: other characters
/// become `_`, and a leading digit (or an empty name) gets a `_` in front.
pub fn label_name(raw: &str) -> String {
    let mut name: String =
        raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

/// The labels identifying an event's alert: `alertname` (the rule), `host`, `severity`, the
/// series' labels under valid names and the rule's static labels. A series label whose name clashes with one already
/// present gets a `label_` prefix; labels with empty values are left out (Alertmanager
/// treats an empty value as absent).
pub fn labels(event: &AlertEvent) -> LabelSet {
    let mut set = LabelSet::new();
    set.insert("alertname".to_string(), event.rule.clone());
    set.insert("host".to_string(), event.host.clone());
    set.insert("severity".to_string(), event.severity.as_str().to_string());
    for (raw, value) in event.labels.iter().chain(&event.context.rule_labels) {
        let mut name = label_name(raw);
        while set.contains_key(&name) {
            name.insert_str(0, "label_");
        }
        set.insert(name, value.clone());
    }
    set.retain(|_, v| !v.is_empty());
    set
}

/// The annotations of an event's alert: `summary` (one line for people: the rule's
/// `summary` as written, else rule, host, series, value and threshold),
/// `runbook_url` and `description` (the rule's, when it has them), `value` and `threshold`;
/// `reason`, `nodata`, `escalated_by`, `peak` and `flapping` when they apply.
pub fn annotations(event: &AlertEvent) -> LabelSet {
    let mut set = LabelSet::new();
    let summary = match &event.context.summary {
        Some(summary) => summary.clone(),
        None => format!(
            "{} on {}: {} = {} ({})",
            event.rule, event.host, event.series, event.value_text, event.threshold
        ),
    };
    set.insert("summary".to_string(), summary);
    if let Some(url) = &event.context.runbook_url {
        set.insert("runbook_url".to_string(), url.clone());
    }
    if let Some(d) = event.description.as_ref().filter(|d| !d.is_empty()) {
        set.insert("description".to_string(), d.clone());
    }
    set.insert("value".to_string(), event.value_text.clone());
    set.insert("threshold".to_string(), event.threshold.clone());
    if let Some(reason) = &event.context.reason {
        set.insert("reason".to_string(), reason.clone());
    }
    if event.event == EventKind::Nodata {
        set.insert("nodata".to_string(), event.nodata_text());
    }
    // Flapping: active, saying so, until a `flap_end` resolves it (ok) or replaces the
    // annotations (still firing).
    if event.event == EventKind::Flapping {
        let share = event
            .context
            .flap_percent
            .map(|p| format!("{p}% of the last 21 evaluations changed state"));
        set.insert("flapping".to_string(), share.unwrap_or_else(|| "flapping".to_string()));
    }
    if let Some(by) = event.context.escalated_by {
        set.insert("escalated_by".to_string(), by.as_str().to_string());
    }
    if let Some(peak) = &event.context.peak_text {
        set.insert("peak".to_string(), peak.clone());
    }
    set
}

/// Alertmanager's fingerprint of a label set, as 16 hex digits: FNV-1a (64 bits) over the
/// labels sorted by name, each written `name 0xFF value 0xFF` (Prometheus'
/// `LabelSet.Fingerprint`), so it equals the one Alertmanager reports for the same alert.
pub fn fingerprint(labels: &LabelSet) -> String {
    let mut bytes = Vec::new();
    for (name, value) in labels {
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0xff);
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(0xff);
    }
    format!("{:016x}", crate::event::fnv1a64(&bytes))
}

// ---- HTTP details shared with the webhook channel ----

/// `hostwatch/<version>`.
pub(crate) fn user_agent() -> String {
    concat!("hostwatch/", env!("CARGO_PKG_VERSION")).to_string()
}

/// Splits user info out of a URL (the HTTP client does not understand it): the URL without
/// it, and the `Authorization: Basic …` value it stands for (percent-decoded user and
/// password).
pub(crate) fn split_userinfo(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else { return (url.to_string(), None) };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return (url.to_string(), None);
    };
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    // Byte-exact: a password that decodes to bytes that are not UTF-8 is sent as those bytes.
    let mut credentials = http::percent_decode(user);
    credentials.push(b':');
    credentials.extend(http::percent_decode(password));
    (format!("{scheme}://{host}{tail}"), Some(format!("Basic {}", base64(&credentials))))
}

/// The URL as messages show it: scheme, host and port only (its path, query and user info
/// may be secrets).
pub(crate) fn redacted(url: &str) -> String {
    crate::config::redact_url(url)
}

/// Removes `url` and its secret-bearing parts (path and query, path, query, and each path
/// segment and query value of 8 characters or more: a check id or token quoted alone) from
/// a text that may quote them, such as a receiver's error page.
pub(crate) fn scrub_url(text: &str, url: &str) -> String {
    let Some((_, rest)) = url.split_once("://") else { return text.to_string() };
    let rest = &rest[rest.find(['/', '?', '#']).unwrap_or(rest.len())..];
    let path = &rest[..rest.find(['?', '#']).unwrap_or(rest.len())];
    let query = rest.split_once('?').map_or("", |(_, q)| q);
    let query = &query[..query.find('#').unwrap_or(query.len())];
    let mut parts = vec![url, rest, path, query];
    let pieces =
        path.split('/').chain(query.split('&').map(|kv| kv.rsplit('=').next().unwrap_or(kv)));
    parts.extend(pieces.filter(|p| p.len() >= 8));
    parts.retain(|p| p.len() > 1);
    parts.sort_by_key(|p| std::cmp::Reverse(p.len()));
    parts.iter().fold(text.to_string(), |t, p| t.replace(p, crate::config::REDACTED))
}

/// `e` with `url`'s secrets scrubbed from its reason.
pub(crate) fn scrubbed(e: SendError, url: &str) -> SendError {
    match e {
        SendError::Transient { reason, retry_after } => {
            SendError::Transient { reason: scrub_url(&reason, url), retry_after }
        }
        SendError::Permanent { reason } => SendError::Permanent { reason: scrub_url(&reason, url) },
    }
}

/// `e` with `what: ` in front of its reason (names the channel).
pub(crate) fn prefixed(what: &str, e: SendError) -> SendError {
    match e {
        SendError::Transient { reason, retry_after } => {
            SendError::Transient { reason: format!("{what}: {reason}"), retry_after }
        }
        SendError::Permanent { reason } => {
            SendError::Permanent { reason: format!("{what}: {reason}") }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Severity;

    fn event(kind: EventKind) -> AlertEvent {
        let mut e = AlertEvent::test_event("web-01", Severity::Warning, 1_700_000_000.0);
        e.test = false;
        e.rule = "disk_root".into();
        e.series = "disk.used_percent{mount=/}".into();
        e.labels = [("mount".to_string(), "/".to_string())].into();
        e.event = kind;
        e
    }

    fn sender(resend: u64) -> AlertmanagerSender {
        let config = AlertmanagerConfig {
            url: "http://am.example:9093/".into(),
            timeout: None,
            resend_every: Duration::from_secs(resend),
            watchdog: false,
        };
        AlertmanagerSender::new("am", &config, Duration::from_secs(5)).unwrap()
    }

    #[test]
    fn watchdog_fires_until_four_periods_ahead() {
        let v = watchdog_alerts("web-01", 1_000.0, 2_000.0, Duration::from_secs(60));
        let a = &v[0];
        assert_eq!(a["labels"]["alertname"], WATCHDOG_ALERTNAME);
        assert_eq!(a["labels"]["host"], "web-01");
        assert_eq!(a["labels"]["severity"], "none");
        assert_eq!(a["startsAt"], rfc3339(1_000.0));
        assert_eq!(a["endsAt"], rfc3339(2_240.0));
        let config = AlertmanagerConfig {
            url: "http://u:p@am.example:9093/".into(),
            timeout: None,
            resend_every: Duration::from_secs(1),
            watchdog: true,
        };
        let (endpoint, headers) = endpoint_and_headers(&config);
        assert_eq!(endpoint, "http://am.example:9093/api/v2/alerts");
        assert!(headers.iter().any(|(k, v)| k == "Authorization" && v.starts_with("Basic ")));
    }

    #[test]
    fn label_names_are_made_valid() {
        assert_eq!(label_name("mount"), "mount");
        assert_eq!(label_name("net.iface-name"), "net_iface_name");
        assert_eq!(label_name("0day"), "_0day");
        assert_eq!(label_name(""), "_");
        assert_eq!(label_name("größe"), "gr__e");
        let re_ok = |n: &str| {
            n.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        for raw in ["a b", "9", "ä", "x:y", "__name__"] {
            assert!(re_ok(&label_name(raw)), "{raw:?}");
        }
    }

    #[test]
    fn labels_carry_rule_host_severity_and_series_labels() {
        let mut e = event(EventKind::Firing);
        e.labels.insert("severity".into(), "shadowed".into());
        e.labels.insert("dev.name".into(), "sda".into());
        e.labels.insert("empty".into(), String::new());
        let l = labels(&e);
        let want: LabelSet = [
            ("alertname", "disk_root"),
            ("dev_name", "sda"),
            ("host", "web-01"),
            ("label_severity", "shadowed"),
            ("mount", "/"),
            ("severity", "warning"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(l, want);
    }

    #[test]
    fn annotations_say_what_and_why() {
        let a = annotations(&event(EventKind::Firing));
        assert_eq!(a["summary"], "disk_root on web-01: disk.used_percent{mount=/} = 99.9% (> 95)");
        assert_eq!(a["value"], "99.9%");
        assert_eq!(a["threshold"], "> 95");
        assert!(a["description"].starts_with("A test notification"));
        let mut e = event(EventKind::Firing);
        e.description = None;
        assert!(!annotations(&e).contains_key("description"));
    }

    #[test]
    fn fingerprint_is_stable_and_label_based() {
        let l = labels(&event(EventKind::Firing));
        // Pinned to what Alertmanager 0.25 reported for this label set: a change would give
        // every alert a new identity in receivers.
        assert_eq!(fingerprint(&l), "b88a7110914b5497");
        assert_eq!(fingerprint(&labels(&event(EventKind::Resolved))), "b88a7110914b5497");
        assert_eq!(fingerprint(&LabelSet::new()), "cbf29ce484222325");
        let mut e = event(EventKind::Firing);
        e.severity = Severity::Critical;
        assert_ne!(fingerprint(&labels(&e)), "b88a7110914b5497");
    }

    #[test]
    fn endpoint_is_below_the_base_url() {
        assert_eq!(alerts_endpoint("http://am:9093"), "http://am:9093/api/v2/alerts");
        assert_eq!(alerts_endpoint("http://am:9093/"), "http://am:9093/api/v2/alerts");
        assert_eq!(alerts_endpoint("https://x/am/"), "https://x/am/api/v2/alerts");
        assert_eq!(alerts_endpoint("http://am/api/v2/alerts"), "http://am/api/v2/alerts");
        assert_eq!(alerts_endpoint("http://am/p?t=1"), "http://am/p/api/v2/alerts?t=1");
    }

    #[test]
    fn user_info_becomes_basic_auth() {
        let (url, auth) = split_userinfo("https://ops:p%40ss@am.example/x?y");
        assert_eq!(url, "https://am.example/x?y");
        assert_eq!(auth.as_deref(), Some("Basic b3BzOnBAc3M="));
        assert_eq!(split_userinfo("http://am:9093/a@b"), ("http://am:9093/a@b".into(), None));
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(http::percent_decode("a%2"), b"a%2");
        assert_eq!(http::percent_decode("%+1"), b"%+1");
        // Not UTF-8 after decoding: the bytes themselves, not U+FFFD.
        let (_, auth) = split_userinfo("https://u:%FF@am.example/");
        assert_eq!(auth.as_deref(), Some(format!("Basic {}", base64(b"u:\xff")).as_str()));
    }

    #[test]
    fn secrets_are_scrubbed_from_answers() {
        let url = "https://h.example/hooks/s3cret?token=t0ken";
        let text = "no hook /hooks/s3cret?token=t0ken; also /hooks/s3cret and token=t0ken";
        let out = scrub_url(text, url);
        assert!(!out.contains("s3cret") && !out.contains("t0ken"), "{out}");
        // A check id or token quoted alone, without the rest of the path.
        let url = "https://hc-ping.com/5f0c4e2a-9b1d-4c3e/fail?key=kuma-t0ken-99&ping=";
        let out = scrub_url("no check 5f0c4e2a-9b1d-4c3e (key kuma-t0ken-99) at /fail", url);
        assert!(!out.contains("5f0c4e2a") && !out.contains("kuma-t0ken"), "{out}");
        assert!(out.contains("/fail"), "short segments are ordinary words: {out}");
    }

    #[test]
    fn firing_ends_four_periods_ahead_and_resolve_ends_now() {
        let s = sender(60);
        let now = 1_700_000_100.0;
        let firing = s.batch(&event(EventKind::Firing), now);
        assert_eq!(firing.len(), 1);
        assert_eq!(firing[0]["endsAt"], rfc3339(now + 240.0));
        assert_eq!(firing[0]["startsAt"], "2023-11-14T22:13:20Z");
        assert_eq!(firing[0]["labels"]["alertname"], "disk_root");
        assert_eq!(firing[0]["annotations"]["threshold"], "> 95");
        assert_eq!(firing[0]["generatorURL"], "");
        let resolved = s.batch(&event(EventKind::Resolved), now);
        assert_eq!(resolved[0]["endsAt"], rfc3339(now));
        // Never an end before the start.
        let early = s.batch(&event(EventKind::Resolved), 1_600_000_000.0);
        assert_eq!(early[0]["endsAt"], early[0]["startsAt"]);
    }

    #[test]
    fn active_set_follows_the_episode() {
        let mut s = sender(60);
        let e = event(EventKind::Firing);
        s.track(&e);
        assert_eq!(s.active_len(), 1);
        s.track(&event(EventKind::Reminder));
        assert_eq!(s.active_len(), 1);
        // Escalation: the warning alert is resolved in the same request.
        let mut esc = event(EventKind::Escalated);
        esc.severity = Severity::Critical;
        let batch = s.batch(&esc, 1_700_000_100.0);
        assert_eq!(batch.len(), 2);
        assert_eq!(batch[0]["labels"]["severity"], "critical");
        assert_eq!(batch[1]["labels"]["severity"], "warning");
        assert_eq!(batch[1]["endsAt"], rfc3339(1_700_000_100.0));
        s.track(&esc);
        assert_eq!(s.active_len(), 1);
        let mut resolved = event(EventKind::Resolved);
        resolved.severity = Severity::Critical;
        s.track(&resolved);
        assert_eq!(s.active_len(), 0);
        // remember() learns without sending; test notifications are never kept alive.
        s.remember(&e);
        assert_eq!(s.active_len(), 1);
        let mut other = AlertEvent::test_event("web-01", Severity::Warning, 1.0);
        s.track(&other);
        other.test = false;
        s.remember(&other);
        assert_eq!(s.active_len(), 2);
        assert_eq!(s.refresh_every(), Some(Duration::from_secs(60)));
    }

    #[test]
    fn a_flapping_alert_is_active_saying_so_until_an_ok_flap_end_resolves_it() {
        let mut s = sender(60);
        let now = 1_700_000_100.0;
        let mut flapping = event(EventKind::Flapping);
        flapping.context.flap_percent = Some(62.5);
        let b = s.batch(&flapping, now);
        assert_eq!(b[0]["endsAt"], rfc3339(now + 240.0), "active");
        assert_eq!(
            b[0]["annotations"]["flapping"],
            "62.5% of the last 21 evaluations changed state"
        );
        s.track(&flapping);
        assert_eq!(s.active_len(), 1);
        // Still firing when it stops flapping: active, without the flapping annotation.
        let mut firing = event(EventKind::FlapEnd);
        firing.context.state = Some(crate::event::CurrentState::Firing);
        let b = s.batch(&firing, now);
        assert_eq!(b[0]["endsAt"], rfc3339(now + 240.0));
        assert!(b[0]["annotations"].get("flapping").is_none());
        s.track(&firing);
        assert_eq!(s.active_len(), 1);
        // Ok: resolved now, and no longer kept alive.
        let mut ok = event(EventKind::FlapEnd);
        ok.context.state = Some(crate::event::CurrentState::Ok);
        assert_eq!(s.batch(&ok, now)[0]["endsAt"], rfc3339(now));
        s.track(&ok);
        assert_eq!(s.active_len(), 0);
    }

    #[test]
    fn refresh_without_active_alerts_posts_nothing() {
        // The endpoint is unreachable: a POST would fail.
        let mut s = sender(60);
        s.endpoint = "http://127.0.0.1:9/api/v2/alerts".into();
        assert_eq!(s.refresh(), Ok(()));
    }

    #[test]
    fn render_is_the_posted_array() {
        let s = sender(60);
        let r = s.render(&event(EventKind::Firing));
        assert_eq!(r.content_type, "application/json");
        let v: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v.as_array().map(Vec::len), Some(1));
        assert_eq!(v[0]["labels"]["severity"], "warning");
    }

    #[test]
    fn zero_resend_period_is_refused() {
        let config = AlertmanagerConfig {
            url: "http://am".into(),
            timeout: None,
            resend_every: Duration::ZERO,
            watchdog: false,
        };
        let err = AlertmanagerSender::new("am", &config, Duration::from_secs(1)).err().unwrap();
        assert!(err.contains("alertmanager channel am"), "{err}");
    }
}
