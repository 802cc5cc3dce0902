//! The notification event: what an alert transition tells the outside world.
//!
//! Built on the main thread from shared strings (no allocation while evaluating), rendered
//! to JSON for `replay`, the events log, `--dry-run` and every channel.

use crate::alerts::EventKind;
use crate::config::Severity;
use crate::metrics::{LabelKey, Metric};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One notification.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// When (Unix seconds of the sample that caused it).
    pub ts: f64,
    /// The host it is about.
    pub host: Arc<str>,
    /// The rule's name.
    pub rule: Arc<str>,
    /// The series key (`disk.used_percent{mount=/}`).
    pub series: Arc<str>,
    /// The metric.
    pub metric: Metric,
    /// The series' label, if any.
    pub label: Option<(LabelKey, Arc<str>)>,
    /// Severity (for `resolved`, the severity that ended).
    pub severity: Severity,
    /// What happened.
    pub event: EventKind,
    /// The value evaluated (latest sample, or the window aggregate).
    pub value: f64,
    /// The threshold crossed (for `resolved`, the clear condition).
    pub threshold: Arc<str>,
    /// When the episode started firing (Unix seconds).
    pub since: f64,
    /// Sequence number within the episode (1 = first notification).
    pub seq: u32,
    /// The rule's description, if any.
    pub description: Option<Arc<str>>,
    /// Why, when more than the threshold explains it (`mount disappeared`, `data is back`).
    pub reason: Option<Arc<str>>,
    /// When the series last brought a value (`nodata`, and resolutions that follow one).
    pub last_seen: Option<f64>,
    /// Elapsed seconds the episode had been firing.
    pub firing_s: f64,
    /// The episode's worst value so far (NaN when not known).
    pub peak: f64,
    /// What made it critical, when it escalated.
    pub escalated_by: Option<crate::alerts::EscalatedBy>,
    /// How values are written (the rule's threshold's unit family).
    pub style: crate::humanize::Style,
    /// For `flapping` and `flap_end`: the share of state changes, and the state it ended in.
    pub flap: Option<FlapNote>,
    /// The rule's `summary`, `runbook_url` and static `labels`, built once per rule (`None`
    /// when it has none).
    pub rule_context: Option<Arc<RuleContext>>,
}

/// What a `flapping` or `flap_end` notification says about the flap.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlapNote {
    /// The weighted percentage of state changes over the last 21 evaluations.
    pub percent: f64,
    /// For `flap_end`: the alert's state when the flapping stopped.
    pub state: Option<CurrentState>,
}

/// The state of an alert a `flap_end` reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CurrentState {
    /// Nothing fires: the episode is over.
    Ok,
    /// It fires (at the notification's severity): the episode goes on.
    Firing,
}

/// What a rule says about its alerts beyond the threshold: shared by every notification of
/// the rule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleContext {
    /// Short text for people (`Disk almost full`).
    pub summary: Option<String>,
    /// Where the runbook is (an http(s) URL).
    pub runbook_url: Option<String>,
    /// Static labels (`team`, `service`), sorted by name.
    pub labels: BTreeMap<String, String>,
}

impl RuleContext {
    /// True when the rule says nothing more.
    pub fn is_empty(&self) -> bool {
        self.summary.is_none() && self.runbook_url.is_none() && self.labels.is_empty()
    }
}

impl Notification {
    /// A stable identifier of this notification (rule, series, episode, sequence): the same
    /// notification always has the same key, so receivers and the outbox can de-duplicate.
    pub fn key(&self) -> String {
        format!("{}:{}", self.episode_key(), self.seq)
    }

    /// The key that is the same for every notification of one episode (for grouping).
    pub fn episode_key(&self) -> String {
        episode_key(&self.rule, &self.series, self.since)
    }

    /// The owned form that crosses to delivery threads and is kept in the outbox.
    pub fn to_event(&self) -> AlertEvent {
        AlertEvent {
            ts: round_ms(self.ts),
            host: self.host.to_string(),
            rule: self.rule.to_string(),
            series: self.series.to_string(),
            metric: self.metric.name().to_string(),
            labels: self
                .label
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.to_string()))
                .collect(),
            severity: self.severity,
            event: self.event,
            value: self.value.is_finite().then(|| crate::humanize::round3(self.value)),
            value_text: if self.value.is_finite() {
                crate::humanize::styled(self.metric.unit(), self.value, self.style)
            } else {
                "n/a".to_string()
            },
            threshold: self.threshold.to_string(),
            since: round_ms(self.since),
            seq: self.seq,
            key: self.key(),
            episode_key: self.episode_key(),
            description: self.description.as_deref().map(str::to_string),
            test: false,
            report: None,
            context: Context {
                reason: self.reason.as_deref().map(str::to_string),
                last_seen: self.last_seen.map(round_ms),
                escalated_by: self.escalated_by,
                // The first notification of an episode has no duration yet.
                episode_duration_s: (self.seq > 1 && self.firing_s.is_finite())
                    .then(|| round_ms(self.firing_s)),
                peak: self.peak.is_finite().then(|| crate::humanize::round3(self.peak)),
                peak_text: self
                    .peak
                    .is_finite()
                    .then(|| crate::humanize::styled(self.metric.unit(), self.peak, self.style)),
                flap_percent: self.flap.map(|f| (f.percent * 10.0).round() / 10.0),
                state: self.flap.and_then(|f| f.state),
                summary: self.rule_context.as_ref().and_then(|c| c.summary.clone()),
                runbook_url: self.rule_context.as_ref().and_then(|c| c.runbook_url.clone()),
                rule_labels: self
                    .rule_context
                    .as_ref()
                    .map(|c| c.labels.clone())
                    .unwrap_or_default(),
            },
        }
    }

    /// The event as the JSON object `replay`, the events log and webhooks use.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.to_event()).unwrap_or(Value::Null)
    }

    /// One line for people (see [`AlertEvent::summary`]).
    pub fn summary(&self) -> String {
        self.to_event().summary()
    }
}

/// A notification as owned data: what channels render, what the outbox keeps, and (as JSON)
/// the documented body of the generic webhook, `replay` and the events log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// When (Unix seconds).
    pub ts: f64,
    /// The host it is about.
    pub host: String,
    /// The rule's name.
    pub rule: String,
    /// The series key (`disk.used_percent{mount=/}`).
    pub series: String,
    /// The metric name.
    pub metric: String,
    /// The series' labels.
    pub labels: BTreeMap<String, String>,
    /// `warning` or `critical`.
    pub severity: Severity,
    /// `firing`, `reminder`, `escalated`, `resolved`, or `report` (then `report` is set).
    pub event: EventKind,
    /// The value (null when there is none).
    pub value: Option<f64>,
    /// The value for people (`96.1%`, `1.5 GiB`).
    pub value_text: String,
    /// The threshold crossed, or for `resolved` the clear condition.
    pub threshold: String,
    /// When the episode started firing (Unix seconds).
    pub since: f64,
    /// Sequence number within the episode.
    pub seq: u32,
    /// Stable per notification (rule, series, episode, sequence).
    pub key: String,
    /// Stable per episode (rule, series, episode): groups a firing with its resolution.
    pub episode_key: String,
    /// The rule's description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// True for `hostwatch test-notify` messages.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
    /// A periodic report (event `report`): what channels render instead of an alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<Box<crate::report::Report>>,
    /// What else people need to trust the message.
    #[serde(flatten)]
    pub context: Context,
}

/// What a notification says beyond its value and threshold. Each field is left out of the
/// JSON when it does not apply.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Context {
    /// Why, in words, when more than the threshold explains it: `mount disappeared` (a
    /// `nodata`), `data is back`, `no data for 1h` (a resolution without a value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the series last brought a value (Unix seconds), for `nodata` and what follows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<f64>,
    /// `threshold` (the critical threshold held) or `time` (the warning lasted
    /// `critical_after`), once the episode escalated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalated_by: Option<crate::alerts::EscalatedBy>,
    /// Elapsed seconds the episode had been firing (every notification after the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub episode_duration_s: Option<f64>,
    /// The episode's worst value (highest for a rising threshold, lowest for a falling one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak: Option<f64>,
    /// `peak` for people, in the value's unit family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_text: Option<String>,
    /// `flapping` and `flap_end`: the weighted percentage of state changes over the last 21
    /// evaluations (one decimal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flap_percent: Option<f64>,
    /// `flap_end`: `ok` (the episode is over) or `firing` (it goes on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<CurrentState>,
    /// The rule's `summary`: short text for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The rule's `runbook_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook_url: Option<String>,
    /// The rule's static `labels` (`team`, `service`): routes match them like the series'
    /// `labels`, whose keys they never repeat.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rule_labels: BTreeMap<String, String>,
}

impl AlertEvent {
    /// The value of label `key`: the series' own, else the rule's static one.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).or_else(|| self.context.rule_labels.get(key)).map(String::as_str)
    }

    /// The rule's static labels as `team=db, service=pg` (empty when none).
    pub fn rule_labels_text(&self) -> String {
        let pairs: Vec<String> =
            self.context.rule_labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        pairs.join(", ")
    }

    /// `CRITICAL firing disk_root on web-01: disk.used_percent{mount=/} = 96.1% (> 95)`;
    /// `WARNING nodata disk_data on web-01: no data for disk.used_percent{mount=/data} since
    /// 2026-12-01T12:01:00Z: mount disappeared (last value 91.2%, > 90)`; a reason, when there
    /// is one, follows a resolution (`...; data is back`).
    /// A report: `REPORT hostwatch report daily for web-01: 2 alerts fired, 1 resolved, 0
    /// still firing (2026-12-01T00:00:00Z to 2026-12-02T00:00:00Z (1d, UTC))`, never a
    /// severity (a report is no warning).
    pub fn summary(&self) -> String {
        if let Some(r) = &self.report {
            return format!("REPORT {}: {} ({})", r.title(), r.alerts_line(), r.period_text());
        }
        let head = format!(
            "{} {} {} on {}",
            self.severity.as_str().to_uppercase(),
            self.event.as_str(),
            self.rule,
            self.host
        );
        if self.event == EventKind::Nodata {
            return format!(
                "{head}: {} (last value {}, {})",
                self.nodata_text(),
                self.value_text,
                self.threshold
            );
        }
        let mut tail = String::new();
        if let Some(reason) = &self.context.reason {
            tail.push_str("; ");
            tail.push_str(reason);
        } else if self.by_policy() {
            tail.push_str("; critical by policy (critical_after)");
        }
        if let Some(episode) = self.episode_text() {
            tail.push_str("; ");
            tail.push_str(&episode);
        }
        let threshold = if self.by_policy() {
            format!("warning threshold {}", self.threshold)
        } else {
            self.threshold.clone()
        };
        format!("{head}: {} = {} ({threshold}){tail}", self.series, self.value_text)
    }

    /// True when this notification ends its episode: a `resolved`, or a `flap_end` that
    /// says ok. Channels that mirror state resolve the alert then.
    pub fn ends_episode(&self) -> bool {
        match self.event {
            EventKind::Resolved => true,
            EventKind::FlapEnd => self.context.state == Some(CurrentState::Ok),
            _ => false,
        }
    }

    /// True when the alert is critical by `critical_after`, not by its critical threshold:
    /// `threshold` is then the warning threshold that held.
    pub fn by_policy(&self) -> bool {
        !self.ends_episode() && self.context.escalated_by == Some(crate::alerts::EscalatedBy::Time)
    }

    /// The label of `threshold` in messages: `Clear condition` (resolved), `Warning
    /// threshold` (critical by policy), else `Threshold`.
    pub fn threshold_label(&self) -> &'static str {
        match self.event {
            _ if self.ends_episode() => "Clear condition",
            _ if self.by_policy() => "Warning threshold",
            _ => "Threshold",
        }
    }

    /// A resolution's episode: `lasted 12m5s, peak 96.1%` (None for other events, or when
    /// neither is known).
    pub fn episode_text(&self) -> Option<String> {
        if !self.ends_episode() {
            return None;
        }
        let lasted = self.context.episode_duration_s.map(|s| {
            let d = std::time::Duration::from_secs(s.max(0.0).round() as u64);
            format!("lasted {}", crate::config::units::format_duration(d))
        });
        let peak = self.context.peak_text.as_ref().map(|p| format!("peak {p}"));
        match (lasted, peak) {
            (Some(l), Some(p)) => Some(format!("{l}, {p}")),
            (l, p) => l.or(p),
        }
    }

    /// `no data for disk.used_percent{mount=/data} since 2026-12-01T12:01:00Z: mount
    /// disappeared`. In UTC: it goes into log lines and Alertmanager annotations too.
    pub fn nodata_text(&self) -> String {
        let since = self.context.last_seen.unwrap_or(self.ts);
        let reason = self.context.reason.as_deref().unwrap_or("no data");
        format!("no data for {} since {}: {reason}", self.series, crate::timefmt::rfc3339(since))
    }

    /// What happened, for a message's Event field: `firing, notification #1`, `no data
    /// (mount disappeared), notification #2`, `resolved (data is back), notification #3`.
    pub fn event_text(&self) -> String {
        let what = match self.event {
            EventKind::Firing => "firing",
            EventKind::Reminder => "reminder (still firing)",
            EventKind::Escalated => "escalated to critical",
            EventKind::Resolved => "resolved",
            EventKind::Nodata => "no data",
            EventKind::Report => "report",
            EventKind::Flapping => "flapping (notifications paused)",
            EventKind::FlapEnd if self.ends_episode() => "flapping over, ok",
            EventKind::FlapEnd => "flapping over, still firing",
            EventKind::HeldBack => "notifications held back (rate limit)",
        };
        match &self.context.reason {
            Some(reason) => format!("{what} ({reason}), notification #{}", self.seq),
            None => format!("{what}, notification #{}", self.seq),
        }
    }

    /// `TEST CRITICAL firing: disk_root on web-01` (raw text: each channel escapes it).
    pub fn headline(&self) -> String {
        let test = if self.test { "TEST " } else { "" };
        if let Some(r) = &self.report {
            return format!("{test}{}", r.title());
        }
        let what = match self.event {
            EventKind::Resolved => "RESOLVED".to_string(),
            EventKind::FlapEnd if self.ends_episode() => "FLAPPING OVER, OK".to_string(),
            EventKind::FlapEnd => {
                format!("{} flapping over, still firing", self.severity.as_str().to_uppercase())
            }
            kind => format!("{} {}", self.severity.as_str().to_uppercase(), kind.as_str()),
        };
        format!("{test}{what}: {} on {}", self.rule, self.host)
    }

    /// A test event for `hostwatch test-notify`.
    pub fn test_event(host: &str, severity: Severity, now: f64) -> AlertEvent {
        let series = "cpu.usage".to_string();
        AlertEvent {
            ts: round_ms(now),
            host: host.to_string(),
            rule: "hostwatch_test".to_string(),
            series: series.clone(),
            metric: series,
            labels: BTreeMap::new(),
            severity,
            event: EventKind::Firing,
            value: Some(99.9),
            value_text: "99.9%".to_string(),
            threshold: "> 95".to_string(),
            since: round_ms(now),
            seq: 1,
            key: format!("{}:1", episode_key("hostwatch_test", "cpu.usage", now)),
            episode_key: episode_key("hostwatch_test", "cpu.usage", now),
            description: Some(
                "A test notification from hostwatch test-notify; no action needed.".to_string(),
            ),
            test: true,
            report: None,
            context: Context::default(),
        }
    }
}

/// What hostwatch says about itself (a state it cannot save): not a rule of the config, but
/// routed and delivered like one.
pub(crate) struct Internal<'a> {
    pub(crate) host: &'a str,
    pub(crate) rule: &'a str,
    pub(crate) label: (&'a str, &'a str),
    pub(crate) severity: Severity,
    pub(crate) kind: EventKind,
    pub(crate) since: f64,
    pub(crate) seq: u32,
    pub(crate) value_text: &'a str,
    pub(crate) threshold: &'a str,
    pub(crate) description: String,
}

impl AlertEvent {
    /// An event about hostwatch itself.
    pub(crate) fn internal(i: Internal<'_>) -> AlertEvent {
        let now = crate::timefmt::now_unix();
        let series = format!("{}{{{}={}}}", i.rule, i.label.0, i.label.1);
        let episode = episode_key(i.rule, &series, i.since);
        AlertEvent {
            ts: round_ms(now),
            host: i.host.to_string(),
            rule: i.rule.to_string(),
            metric: i.rule.to_string(),
            labels: BTreeMap::from([(i.label.0.to_string(), i.label.1.to_string())]),
            series,
            severity: i.severity,
            event: i.kind,
            value: None,
            value_text: i.value_text.to_string(),
            threshold: i.threshold.to_string(),
            since: round_ms(i.since),
            seq: i.seq,
            key: format!("{episode}:{}", i.seq),
            episode_key: episode,
            description: Some(i.description),
            test: false,
            report: None,
            context: Context::default(),
        }
    }
}

/// `rule:hash(series):episode start in ms`: the same for every notification of an episode.
fn episode_key(rule: &str, series: &str, since: f64) -> String {
    format!("{rule}:{:016x}:{}", fnv1a64(series.as_bytes()), (since * 1000.0).round() as i64)
}

fn round_ms(ts: f64) -> f64 {
    (ts * 1000.0).round() / 1000.0
}

/// FNV-1a, 64 bits: a stable, dependency-free hash for keys.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
