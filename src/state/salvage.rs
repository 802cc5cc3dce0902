//! Setting a broken state file aside and salvaging what its JSON allows: outbox items and
//! alerts that parse one by one are adopted, every outbox item that does not gets a
//! `delivery_failed` record naming the file it was set aside in, and one `state_set_aside`
//! record says what happened. Not the place for reading or validating a good file.

use super::{LoadReport, Loaded, OnceState, State, validate};
use crate::engine::SavedAlert;
use serde::Deserialize;
use std::fs;
use std::path::Path;

/// Renames a broken state file to `state.json.broken-<unix time>`, salvages what its JSON
/// allows, and writes the records.
pub(super) fn set_aside_and_salvage(
    dir: &Path,
    path: &Path,
    bytes: Option<&[u8]>,
    why: &str,
) -> Loaded {
    let aside = path.with_extension(format!("json.broken-{}", crate::timefmt::now_unix() as u64));
    let where_now = match fs::rename(path, &aside) {
        Ok(()) => {
            log::warn!(
                file = path.display().to_string(), moved_to = aside.display().to_string();
                "state file {why}; set aside, starting with what could be salvaged");
            aside
        }
        Err(e) => {
            log::warn!(
                file = path.display().to_string();
                "state file {why}; could not set it aside ({e}), starting with what could be salvaged");
            path.to_path_buf()
        }
    };
    let mut events = crate::eventlog::EventLog::new(dir);
    let value = bytes.and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok());
    let (mut state, mut report) = match &value {
        Some(v) => salvage(v, &where_now, &mut events),
        None => (State::default(), LoadReport::default()),
    };
    report.dropped_invalid = validate(&mut state);
    let reason =
        format!("state file {} {why}; set aside in {}", path.display(), where_now.display());
    events.append(&serde_json::json!({
        "type": "state_set_aside", "ts": crate::timefmt::now_unix(), "reason": reason,
        "file": where_now.display().to_string(), "salvaged_items": report.salvaged_items,
        "salvaged_alerts": report.salvaged_alerts, "lost_items": report.lost_items,
        "json": value.is_some(),
    }));
    report.set_aside = Some(where_now);
    report.reason = Some(reason);
    Loaded { state, report }
}

/// Adopts the outbox items and alerts of a state file's JSON that still parse one by one;
/// writes a `delivery_failed` record for each outbox item that does not.
fn salvage(
    v: &serde_json::Value,
    aside: &Path,
    events: &mut crate::eventlog::EventLog,
) -> (State, LoadReport) {
    use crate::notify::delivery::OutboxItem;
    use serde_json::Value;
    let mut state = State::default();
    let mut report = LoadReport::default();
    let delivery = v.get("delivery");
    let items = delivery.and_then(|d| d.get("outbox")).and_then(Value::as_array);
    let mut next_id = delivery.and_then(|d| d.get("next_id")).and_then(Value::as_u64).unwrap_or(0);
    let mut seen = std::collections::BTreeSet::new();
    for raw in items.into_iter().flatten() {
        match OutboxItem::deserialize(raw) {
            Ok(mut item) if item.created.is_finite() => {
                if !seen.insert(item.id) {
                    item.id = next_id.max(seen.last().map_or(0, |m| m + 1));
                    seen.insert(item.id);
                }
                next_id = next_id.max(item.id.saturating_add(1));
                state.delivery.outbox.push(item);
                report.salvaged_items += 1;
            }
            Ok(_) | Err(_) => {
                let field = |k: &str| raw.get(k).cloned().unwrap_or(Value::Null);
                let key =
                    raw.get("event").and_then(|e| e.get("key")).cloned().unwrap_or(Value::Null);
                events.append(&serde_json::json!({
                    "type": "delivery_failed", "ts": crate::timefmt::now_unix(),
                    "channel": field("channel"), "key": key,
                    "reason": format!("outbox item unreadable in a corrupt state file, set aside in {}", aside.display()),
                    "gave_up": true, "raw": raw,
                }));
                report.lost_items += 1;
            }
        }
    }
    state.delivery.next_id = next_id;
    if let Some(notified) = delivery.and_then(|d| d.get("notified"))
        && let Ok(n) = serde_json::from_value(notified.clone())
    {
        state.delivery.notified = n;
    }
    for raw in v.get("alerts").and_then(Value::as_array).into_iter().flatten() {
        if let Ok(a) = SavedAlert::deserialize(raw) {
            state.alerts.push(a);
            report.salvaged_alerts += 1;
        }
    }
    if let Some(once) = v.get("once")
        && let Ok(o) = OnceState::deserialize(once)
    {
        state.once = Some(o);
    }
    (state, report)
}
