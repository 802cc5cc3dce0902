//! The alert half of a report, from the events log (`events.jsonl`, and the rotated
//! `events.jsonl.1` before it): alert episodes that overlap the period (fired, resolved,
//! still firing, with durations), time in alert per rule, and delivery failures per channel.
//!
//! An episode is identified by its `episode_key`; any of its notifications (firing,
//! reminder, escalation, resolution) names its start (`since`), so an episode whose firing
//! record was rotated away is still found by its resolution. Test notifications and reports
//! are left out. Records after the period's end are ignored: a report of a past period says
//! what was known at its end.
//!
//! Not for: deciding alerts, writing the log (`eventlog`).

use super::{Alerts, ChannelFailures, Episode, RuleTime};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Episodes listed in a report (the longest first); the counts cover them all.
pub(crate) const MAX_EPISODES: usize = 50;

/// The records of the events log of `state_dir`, oldest first (the rotated file first);
/// a missing file has none, torn lines are skipped.
pub(crate) fn read(state_dir: &Path) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for name in ["events.jsonl.1", "events.jsonl"] {
        let path = state_dir.join(name);
        let limit = 4 * crate::eventlog::MAX_BYTES;
        match crate::localfile::read_regular(&path, limit) {
            Ok(bytes) => out.extend(
                bytes
                    .split(|&b| b == b'\n')
                    .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
                    .filter(Value::is_object),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read the events log {}: {e}", path.display())),
        }
    }
    Ok(out)
}

struct Open {
    rule: String,
    series: String,
    severity: String,
    started: f64,
    ended: Option<f64>,
    notifications: u32,
}

fn severity_rank(s: &str) -> u8 {
    if s == "critical" { 2 } else { 1 }
}

/// The alert summary of `[since, until)` from `records`.
pub(crate) fn alerts(records: &[Value], since: f64, until: f64) -> Alerts {
    let mut episodes: BTreeMap<String, Open> = BTreeMap::new();
    for r in records {
        if r.get("type").and_then(Value::as_str) != Some("notification")
            || r.get("test").and_then(Value::as_bool) == Some(true)
            || r.get("report").is_some_and(|v| !v.is_null())
        {
            continue;
        }
        let (Some(ts), Some(key), Some(kind)) = (
            r.get("ts").and_then(Value::as_f64),
            r.get("episode_key").and_then(Value::as_str),
            r.get("event").and_then(Value::as_str),
        ) else {
            continue;
        };
        if ts >= until
            || !matches!(
                kind,
                "firing"
                    | "reminder"
                    | "escalated"
                    | "resolved"
                    | "nodata"
                    | "flapping"
                    | "flap_end"
            )
        {
            continue;
        }
        let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let started = r.get("since").and_then(Value::as_f64).unwrap_or(ts);
        let e = episodes.entry(key.to_string()).or_insert_with(|| Open {
            rule: text("rule"),
            series: text("series"),
            severity: text("severity"),
            started,
            ended: None,
            notifications: 0,
        });
        e.notifications += 1;
        let sev = text("severity");
        if severity_rank(&sev) > severity_rank(&e.severity) {
            e.severity = sev;
        }
        // A `flap_end` that says ok closes its episode as a resolution does.
        if kind == "resolved" || (kind == "flap_end" && text("state") == "ok") {
            e.ended = Some(ts);
        }
    }
    let mut out = Alerts::default();
    let mut rules: BTreeMap<String, RuleTime> = BTreeMap::new();
    let mut listed = Vec::new();
    for e in episodes.into_values() {
        let end = e.ended.unwrap_or(until).min(until);
        if e.started >= until || end < since {
            continue;
        }
        let in_period_s = (end - e.started.max(since)).max(0.0);
        if e.started >= since {
            out.fired += 1;
        }
        match e.ended {
            Some(t) if t >= since => out.resolved += 1,
            Some(_) => {}
            None => out.still_firing += 1,
        }
        let r = rules.entry(e.rule.clone()).or_insert_with(|| RuleTime {
            rule: e.rule.clone(),
            episodes: 0,
            in_alert_s: 0.0,
        });
        r.episodes += 1;
        r.in_alert_s += in_period_s;
        listed.push(Episode {
            rule: e.rule,
            series: e.series,
            severity: e.severity,
            started: e.started,
            ended: e.ended,
            duration_s: (end - e.started).max(0.0),
            in_period_s,
            notifications: e.notifications,
        });
    }
    out.episodes_total = listed.len() as u32;
    listed.sort_by(|a, b| {
        b.in_period_s.total_cmp(&a.in_period_s).then(a.started.total_cmp(&b.started))
    });
    listed.truncate(MAX_EPISODES);
    out.episodes = listed;
    out.time_in_alert = rules.into_values().collect();
    out.time_in_alert
        .sort_by(|a, b| b.in_alert_s.total_cmp(&a.in_alert_s).then(a.rule.cmp(&b.rule)));
    out
}

/// Delivery failures per channel within `[since, until)`, by channel name.
pub(crate) fn failures(records: &[Value], since: f64, until: f64) -> Vec<ChannelFailures> {
    let mut out: BTreeMap<String, ChannelFailures> = BTreeMap::new();
    for r in records {
        if r.get("type").and_then(Value::as_str) != Some("delivery_failed") {
            continue;
        }
        let Some(ts) = r.get("ts").and_then(Value::as_f64) else { continue };
        if ts < since || ts >= until {
            continue;
        }
        let channel = r.get("channel").and_then(Value::as_str).unwrap_or("?").to_string();
        let reason = r.get("reason").and_then(Value::as_str).unwrap_or("").to_string();
        let f = out.entry(channel.clone()).or_insert_with(|| ChannelFailures {
            channel,
            failures: 0,
            last_reason: String::new(),
            last_ts: ts,
        });
        f.failures += 1;
        if ts >= f.last_ts || f.last_reason.is_empty() {
            f.last_ts = ts;
            f.last_reason = reason;
        }
    }
    out.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn n(rule: &str, kind: &str, ts: f64, since: f64, severity: &str) -> Value {
        json!({"type": "notification", "rule": rule, "series": format!("{rule}.s"),
               "event": kind, "ts": ts, "since": since, "severity": severity,
               "episode_key": format!("{rule}:x:{since}")})
    }

    #[test]
    fn episodes_are_clipped_to_the_period() {
        let records = vec![
            // Started before the period, resolved inside: not fired, resolved, 100 s in.
            n("a", "firing", 900.0, 900.0, "warning"),
            n("a", "resolved", 1100.0, 900.0, "warning"),
            // Inside, escalated, resolved inside: 300 s, critical.
            n("b", "firing", 1200.0, 1200.0, "warning"),
            n("b", "escalated", 1300.0, 1200.0, "critical"),
            n("b", "resolved", 1500.0, 1200.0, "critical"),
            // Fired inside, still firing at the end (its resolution comes later).
            n("a", "firing", 1800.0, 1800.0, "warning"),
            n("a", "resolved", 2500.0, 1800.0, "warning"),
            // Over before the period; a test; a report.
            n("c", "firing", 100.0, 100.0, "warning"),
            n("c", "resolved", 200.0, 100.0, "warning"),
            json!({"type": "notification", "test": true, "event": "firing", "ts": 1200.0,
                   "episode_key": "t", "rule": "t"}),
            json!({"type": "notification", "event": "report", "report": {}, "ts": 1200.0,
                   "episode_key": "r", "rule": "r"}),
        ];
        let a = alerts(&records, 1000.0, 2000.0);
        assert_eq!((a.fired, a.resolved, a.still_firing, a.episodes_total), (2, 2, 1, 3));
        let rules: Vec<(&str, u32, f64)> =
            a.time_in_alert.iter().map(|r| (r.rule.as_str(), r.episodes, r.in_alert_s)).collect();
        assert_eq!(rules, [("a", 2, 300.0), ("b", 1, 300.0)], "ties by name");
        let b = a.episodes.iter().find(|e| e.rule == "b").unwrap();
        assert_eq!((b.severity.as_str(), b.duration_s, b.notifications), ("critical", 300.0, 3));
        let open = a.episodes.iter().find(|e| e.ended.is_none()).unwrap();
        assert_eq!((open.started, open.in_period_s), (1800.0, 200.0));
    }

    #[test]
    fn failures_per_channel() {
        let f = |ch: &str, ts: f64, why: &str| json!({"type": "delivery_failed", "channel": ch, "ts": ts, "reason": why});
        let records = vec![
            f("ops", 10.0, "old"),
            f("ops", 150.0, "x"),
            f("ops", 160.0, "y"),
            f("mail", 120.0, "z"),
        ];
        let got = failures(&records, 100.0, 200.0);
        let got: Vec<(&str, u32, &str)> =
            got.iter().map(|c| (c.channel.as_str(), c.failures, c.last_reason.as_str())).collect();
        assert_eq!(got, [("mail", 1, "z"), ("ops", 2, "y")]);
    }
}
