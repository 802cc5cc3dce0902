//! `/status` and `/silences` as JSON: what the daemon looks like after its last tick. The
//! shape is a contract `hostwatch status` reads; no field ever holds a secret (channel errors
//! are scrubbed where they are made, in delivery).
//!
//! Not for: serving or deciding anything.

use super::view::{AlertRow, View};
use crate::silence::Silence;
use crate::timefmt::rfc3339;
use serde_json::{Map, Value, json};
use std::time::Instant;

/// A finite number, else `null`.
fn number(v: f64) -> Value {
    if v.is_finite() { json!(v) } else { Value::Null }
}

/// An RFC 3339 time, `null` for 0 or a non-finite value.
fn time(unix: f64) -> Value {
    if unix.is_finite() && unix > 0.0 { json!(rfc3339(unix)) } else { Value::Null }
}

/// A series' labels as an object (`{}` or `{"mount": "/"}`).
fn labels(metric: crate::metrics::Metric, label: Option<&str>) -> Value {
    let mut m = Map::new();
    if let (Some(k), Some(v)) = (metric.label_key(), label) {
        m.insert(k.as_str().to_owned(), json!(v));
    }
    Value::Object(m)
}

/// One alert.
pub(crate) fn alert_json(a: &AlertRow) -> Value {
    json!({
        "rule": &*a.rule,
        "series": &*a.series,
        "metric": a.metric.name(),
        "labels": labels(a.metric, a.label.as_deref()),
        "state": match a.phase {
            crate::alerts::Phase::Firing { .. } => "firing",
            crate::alerts::Phase::Pending { .. } => "pending",
            crate::alerts::Phase::Ok => "ok",
        },
        "flapping": a.flapping.is_some(),
        "severity": a.severity.as_str(),
        "since": time(a.since()),
        "last_notified": a.last_notified().map_or(Value::Null, time),
        "value": number(a.value),
        "unit": a.metric.unit().as_str(),
        "threshold": &*a.threshold,
        "silenced_by": a.silenced_by.as_deref(),
        "nodata": nodata_json(a),
    })
}

/// `{"since": …, "reason": "mount disappeared"}` while an open alert has no data, else null.
fn nodata_json(a: &AlertRow) -> Value {
    match a.phase {
        crate::alerts::Phase::Firing { nodata: Some(n), .. } => json!({
            "since": time(n.last_seen),
            "reason": n.reason.text(a.metric),
        }),
        _ => Value::Null,
    }
}

/// One silence; `source` tells whether it can be removed through the API (`store`: kept by
/// `hostwatch silence` and the API) or only in the config file (`config`).
pub(crate) fn silence_json(s: &Silence, from_config: bool, now: f64) -> Value {
    json!({
        "id": s.id,
        "rule": s.rule,
        "match": s.matchers,
        "until": time(s.until),
        "schedule": s.schedule_json(now),
        "comment": s.comment,
        "source": if from_config { "config" } else { "store" },
    })
}

/// The whole `/status` document.
pub(crate) fn render(view: &View, now: Instant) -> Value {
    let wall_now = crate::timefmt::now_unix();
    let age = view.last_tick_age(now).as_secs_f64();
    let series: Vec<Value> = view
        .series
        .iter()
        .filter(|s| s.live)
        .map(|s| {
            json!({
                "metric": s.metric.name(),
                "labels": labels(s.metric, s.label.as_deref()),
                "value": number(s.value),
                "unit": s.metric.unit().as_str(),
            })
        })
        .collect();
    let channels: Map<String, Value> = view
        .channels
        .iter()
        .map(|(name, h)| {
            (
                name.clone(),
                json!({
                    "outbox": h.pending,
                    "delivered": h.delivered,
                    "failed": h.failed,
                    "retried": h.retried,
                    "held_back": h.held_back,
                    "consecutive_failures": h.consecutive_failures,
                    "last_success": h.last_success.map_or(Value::Null, time),
                    "last_error": h.last_error,
                }),
            )
        })
        .collect();
    json!({
        "host": &*view.host,
        "version": view.version,
        "config": &*view.config_source,
        "started": time(view.started_unix),
        "uptime_s": now.saturating_duration_since(view.started).as_secs_f64(),
        "interval_s": view.interval.as_secs_f64(),
        "healthy": view.healthy(now),
        "ticks": view.ticks,
        "last_tick": time(view.last_tick_unix),
        "last_tick_age_s": age,
        "tick_duration_s": view.tick_duration.as_secs_f64(),
        "alerts": view.alerts.iter().map(alert_json).collect::<Vec<_>>(),
        "series": series,
        "unsupported": view.unsupported.iter().map(|m| m.name()).collect::<Vec<_>>(),
        "silences": view
            .silences
            .iter()
            .enumerate()
            .map(|(i, s)| silence_json(s, i < view.config_silences, wall_now))
            .collect::<Vec<_>>(),
        "channels": channels,
        "persist_failing": view.persist_failing,
        "write_failures": view.write_failures,
    })
}
