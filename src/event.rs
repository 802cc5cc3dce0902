//! The notification event: what an alert transition tells the outside world.
//!
//! Built on the main thread from shared strings (no allocation while evaluating), rendered
//! to JSON for `replay`, the events log, `--dry-run` and every channel.

use crate::alerts::EventKind;
use crate::config::Severity;
use crate::metrics::{LabelKey, Metric};
use serde_json::{Value, json};
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
}

impl Notification {
    /// A stable identifier of this notification (rule, series, episode, sequence): the same
    /// notification always has the same key, so receivers and the outbox can de-duplicate.
    pub fn key(&self) -> String {
        format!(
            "{}:{:016x}:{}:{}",
            self.rule,
            fnv1a64(self.series.as_bytes()),
            (self.since * 1000.0).round() as i64,
            self.seq
        )
    }

    /// The key that is the same for every notification of one episode (for grouping).
    pub fn episode_key(&self) -> String {
        format!(
            "{}:{:016x}:{}",
            self.rule,
            fnv1a64(self.series.as_bytes()),
            (self.since * 1000.0).round() as i64
        )
    }

    /// The event as the JSON object `replay`, the events log and webhooks use.
    pub fn to_json(&self) -> Value {
        let mut labels = serde_json::Map::new();
        if let Some((k, v)) = &self.label {
            labels.insert(k.as_str().to_string(), Value::String(v.to_string()));
        }
        json!({
            "ts": round_ms(self.ts),
            "host": &*self.host,
            "rule": &*self.rule,
            "series": &*self.series,
            "metric": self.metric.name(),
            "labels": labels,
            "severity": self.severity.as_str(),
            "event": self.event.as_str(),
            "value": if self.value.is_finite() { json!(crate::humanize::round3(self.value)) } else { Value::Null },
            "threshold": &*self.threshold,
            "since": round_ms(self.since),
            "seq": self.seq,
            "key": self.key(),
            "description": self.description.as_deref(),
        })
    }

    /// One line for people: `CRITICAL firing disk_root disk.used_percent{mount=/} = 96.1% (> 95)`.
    pub fn summary(&self) -> String {
        format!(
            "{} {} {} on {}: {} = {} ({})",
            self.severity.as_str().to_uppercase(),
            self.event.as_str(),
            self.rule,
            self.host,
            self.series,
            if self.value.is_finite() {
                crate::humanize::value(self.metric.unit(), self.value)
            } else {
                "n/a".into()
            },
            self.threshold
        )
    }
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
