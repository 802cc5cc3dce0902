//! What a grouped message says about its notifications as a whole: the headline
//! (`10 notifications on web-01: 7 firing, 3 resolved`), the worst severity still open, and
//! one raw line per notification. Channels escape the text for their format.
//!
//! Not for: deciding what is grouped (the delivery worker) or the wire format (each channel).

use crate::alerts::EventKind;
use crate::config::Severity;
use crate::event::AlertEvent;

/// The key of a grouped message, from every notification key it carries: a retry of the
/// same group has the same key (a webhook's `Idempotency-Key`), another group another.
pub(crate) fn group_key(events: &[AlertEvent]) -> String {
    let keys: Vec<&str> = events.iter().map(|e| e.key.as_str()).collect();
    let joined = keys.join("\n");
    let reversed: Vec<u8> = joined.bytes().rev().collect();
    format!(
        "group:{}:{:016x}{:016x}",
        events.len(),
        crate::event::fnv1a64(joined.as_bytes()),
        crate::event::fnv1a64(&reversed)
    )
}

/// The JSON of a grouped message for webhooks, exec hooks and plugins (`"group": true`):
/// `{"group": true, "key", "count", "host", "summary", "events": [event…]}`, each event the
/// documented event object.
pub(crate) fn group_json(events: &[AlertEvent]) -> serde_json::Value {
    serde_json::json!({
        "group": true,
        "key": group_key(events),
        "count": events.len(),
        "host": events.first().map(|e| e.host.as_str()).unwrap_or(""),
        "summary": headline(events),
        "events": events,
    })
}

/// `10 notifications on web-01: 7 firing, 3 resolved` (raw text).
pub(crate) fn headline(events: &[AlertEvent]) -> String {
    let mut hosts: Vec<&str> = events.iter().map(|e| e.host.as_str()).collect();
    hosts.sort_unstable();
    hosts.dedup();
    let on = match hosts.as_slice() {
        [one] => (*one).to_string(),
        many => format!("{} hosts", many.len()),
    };
    let test = if !events.is_empty() && events.iter().all(|e| e.test) { "TEST: " } else { "" };
    format!("{test}{} notifications on {on}: {}", events.len(), counts(events))
}

/// `7 firing, 1 escalated, 3 resolved`: how many of each event, in a fixed order.
pub(crate) fn counts(events: &[AlertEvent]) -> String {
    const ORDER: [EventKind; 7] = [
        EventKind::Firing,
        EventKind::Escalated,
        EventKind::Reminder,
        EventKind::Nodata,
        EventKind::Flapping,
        EventKind::FlapEnd,
        EventKind::Resolved,
    ];
    let mut parts: Vec<String> = ORDER
        .iter()
        .filter_map(|kind| {
            let n = events.iter().filter(|e| e.event == *kind).count();
            (n > 0).then(|| format!("{n} {}", kind.as_str()))
        })
        .collect();
    let other = events.iter().filter(|e| !ORDER.contains(&e.event)).count();
    if other > 0 {
        parts.push(format!("{other} other"));
    }
    parts.join(", ")
}

/// The worst severity among the notifications that are not resolutions; `None` when every
/// one is a resolution.
pub(crate) fn worst_open(events: &[AlertEvent]) -> Option<Severity> {
    events.iter().filter(|e| !e.ends_episode()).map(|e| e.severity).max_by_key(|s| match s {
        Severity::Warning => 0,
        Severity::Critical => 1,
    })
}

/// One notification on one line: `CRITICAL firing disk_root: disk.used_percent{mount=/} =
/// 96.1% (> 95) — Root is filling up (runbook https://wiki/disk)` (raw text; the host is in
/// the group's headline; the rule's summary and runbook when it has them).
#[cfg_attr(not(any(feature = "slack", feature = "teams", feature = "email")), allow(dead_code))]
pub(crate) fn line(event: &AlertEvent) -> String {
    let what = match event.event {
        EventKind::Resolved => "RESOLVED".to_string(),
        EventKind::FlapEnd if event.ends_episode() => "FLAPPING OVER, OK".to_string(),
        kind => format!("{} {}", event.severity.as_str().to_uppercase(), kind.as_str()),
    };
    let mut text = format!(
        "{what} {}: {} = {} ({})",
        event.rule, event.series, event.value_text, event.threshold
    );
    if let Some(episode) = event.episode_text() {
        text.push_str("; ");
        text.push_str(&episode);
    } else if let Some(reason) = &event.context.reason {
        text.push_str("; ");
        text.push_str(reason);
    }
    if let Some(summary) = &event.context.summary {
        text.push_str(" \u{2014} ");
        text.push_str(summary);
    }
    if let Some(url) = &event.context.runbook_url {
        text.push_str(" (runbook ");
        text.push_str(url);
        text.push(')');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, severity: Severity) -> AlertEvent {
        let mut e = AlertEvent::test_event("web-01", severity, 1_700_000_000.0);
        e.test = false;
        e.event = kind;
        e
    }

    #[test]
    fn headline_counts_each_kind_and_worst_ignores_resolutions() {
        let events = [
            event(EventKind::Firing, Severity::Warning),
            event(EventKind::Resolved, Severity::Critical),
            event(EventKind::Firing, Severity::Warning),
        ];
        assert_eq!(headline(&events), "3 notifications on web-01: 2 firing, 1 resolved");
        assert_eq!(worst_open(&events), Some(Severity::Warning));
        assert_eq!(worst_open(&events[1..2]), None);
        let mut other = event(EventKind::Firing, Severity::Critical);
        other.host = "db-01".into();
        assert_eq!(headline(&[events[0].clone(), other]), "2 notifications on 2 hosts: 2 firing");
        assert_eq!(line(&events[0]), "WARNING firing hostwatch_test: cpu.usage = 99.9% (> 95)");
        assert!(line(&events[1]).starts_with("RESOLVED hostwatch_test: "), "{}", line(&events[1]));
    }
}
