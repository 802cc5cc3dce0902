//! Salvaging a broken state file: outbox items and alerts that parse one by one are adopted,
//! the file is kept aside in `state.json.broken-<unix>-<pid>`, the salvaged state is saved in
//! its place, and only then every outbox item that did not parse gets a `delivery_failed`
//! record naming the kept copy, and one `state_set_aside` record says what happened. Not the
//! place for reading or validating a good file.
//!
//! The JSON is walked with borrowed [`RawValue`]s, so salvaging a large file costs about the
//! file's size in memory, never a whole `serde_json::Value` tree of it.

use super::{LoadReport, Loaded, OnceState, State, validate};
use crate::engine::SavedAlert;
use serde_json::value::RawValue;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Outbox ids at or above this are renumbered: the id counter must always have room to grow.
pub(super) const MAX_ID: u64 = 1 << 62;

/// What could be taken from a broken file's bytes, before anything is written.
pub(super) struct Salvaged {
    pub(super) state: State,
    pub(super) report: LoadReport,
    /// The raw JSON of each outbox item that could not be adopted.
    lost: Vec<serde_json::Value>,
    /// The bytes were JSON at all.
    json: bool,
}

#[cfg(test)]
thread_local! {
    /// Makes [`keep_aside`] fail on this thread, as on a full disk.
    pub(super) static FAIL_KEEP_ASIDE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Salvages in memory only: no file is renamed, copied or written, nothing is recorded.
pub(super) fn salvage_in_memory(bytes: Option<&[u8]>) -> Salvaged {
    let raw = bytes.and_then(|b| serde_json::from_slice::<&RawValue>(b).ok());
    let (mut state, mut report, lost) = match raw {
        Some(v) => salvage(v),
        None => (State::default(), LoadReport::default(), Vec::new()),
    };
    report.dropped_invalid = validate(&mut state);
    Salvaged { state, report, lost, json: raw.is_some() }
}

/// A name for the kept copy no other salvage uses: `state.json.broken-<unix>-<pid>`, with
/// `.<n>` added when this process already used it in the same second.
fn aside_candidates(path: &Path) -> impl Iterator<Item = PathBuf> + '_ {
    let base = format!("json.broken-{}-{}", crate::timefmt::now_unix() as u64, std::process::id());
    (0..100u32).map(move |n| {
        if n == 0 { path.with_extension(&base) } else { path.with_extension(format!("{base}.{n}")) }
    })
}

/// Keeps the broken file's content aside: a new file (`O_EXCL`, fsynced) holding the bytes
/// read, or, when they could not be read (a FIFO, a directory, too large), the file itself
/// renamed to a name that does not exist yet.
fn keep_aside(path: &Path, bytes: Option<&[u8]>) -> io::Result<PathBuf> {
    #[cfg(test)]
    if FAIL_KEEP_ASIDE.get() {
        return Err(io::Error::other("No space left on device (test)"));
    }
    let mut last = io::Error::new(io::ErrorKind::AlreadyExists, "no free name");
    for aside in aside_candidates(path) {
        if let Some(bytes) = bytes {
            let mut f = match OpenOptions::new().write(true).create_new(true).open(&aside) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(crate::localfile::with_path(&aside, e)),
            };
            let written = f.write_all(bytes).and_then(|()| f.sync_all());
            if let Err(e) = written {
                drop(f);
                let _ = fs::remove_file(&aside);
                return Err(crate::localfile::with_path(&aside, e));
            }
        } else {
            if fs::symlink_metadata(&aside).is_ok() {
                last = io::Error::new(io::ErrorKind::AlreadyExists, aside.display().to_string());
                continue;
            }
            fs::rename(path, &aside).map_err(|e| crate::localfile::with_path(&aside, e))?;
        }
        if let Some(dir) = path.parent() {
            let _ = fs::File::open(dir).and_then(|d| d.sync_all());
        }
        return Ok(aside);
    }
    Err(last)
}

/// Salvages a broken state file and puts the result on disk, in this order: the broken
/// content is kept aside ([`keep_aside`]), the salvaged state is written atomically to
/// `state.json`, then the records are written naming the kept copy.
///
/// When the copy fails (a full disk), the broken file stays in place as `state.json` and is
/// not overwritten now; when the copy worked but the save failed, the broken file is in place
/// and in the copy. Either way the agent goes on with the salvaged state in memory (logged).
/// The records are written in every case, naming where the broken content is now: the
/// agent's next save replaces `state.json`, so a record held back until a save succeeds
/// would be lost exactly when that later save is the one that succeeds. A repeat of the
/// records needs a start on which nothing could be saved (the file is still broken at the
/// next start), which is when `events.jsonl` cannot grow either; a repeated record is better
/// than an item lost without one.
pub(super) fn set_aside_and_salvage(
    dir: &Path,
    path: &Path,
    bytes: Option<&[u8]>,
    why: &str,
) -> Loaded {
    let Salvaged { state, mut report, lost, json } = salvage_in_memory(bytes);
    let where_now = match keep_aside(path, bytes) {
        Ok(aside) => {
            match super::save(dir, &state) {
                Ok(()) => log::warn!(
                    file = path.display().to_string(), kept_in = aside.display().to_string();
                    "state file {why}; kept aside, starting with what could be salvaged (saved)"),
                Err(e) => log::warn!(
                    file = path.display().to_string(), kept_in = aside.display().to_string();
                    "state file {why}; kept aside, but the salvaged state cannot be saved ({e}); \
                     going on with it in memory"),
            }
            aside
        }
        Err(e) => {
            log::warn!(
                file = path.display().to_string();
                "state file {why}; could not keep a copy aside ({e}), left in place; going on \
                 with what could be salvaged in memory");
            path.to_path_buf()
        }
    };
    let mut events = crate::eventlog::EventLog::new(dir);
    let ts = crate::timefmt::now_unix();
    for raw in &lost {
        let field = |k: &str| raw.get(k).cloned().unwrap_or(serde_json::Value::Null);
        let key = raw.get("event").and_then(|e| e.get("key")).cloned().unwrap_or_default();
        events.append(&serde_json::json!({
            "type": "delivery_failed", "ts": ts, "channel": field("channel"), "key": key,
            "reason": format!("outbox item unreadable in a corrupt state file, set aside in {}", where_now.display()),
            "gave_up": true, "raw": raw,
        }));
    }
    let reason =
        format!("state file {} {why}; set aside in {}", path.display(), where_now.display());
    events.append(&serde_json::json!({
        "type": "state_set_aside", "ts": ts, "reason": reason,
        "file": where_now.display().to_string(), "salvaged_items": report.salvaged_items,
        "salvaged_alerts": report.salvaged_alerts, "lost_items": report.lost_items,
        "json": json,
    }));
    report.set_aside = Some(where_now);
    report.reason = Some(reason);
    Loaded { state, report }
}

/// The fields of a JSON object, borrowed; the last of a repeated key wins. `None` when `v`
/// is not an object.
fn fields(v: &RawValue) -> Option<std::collections::HashMap<String, &RawValue>> {
    serde_json::from_str(v.get()).ok()
}

/// Adopts the outbox items and alerts of a state file's JSON that still parse one by one;
/// returns the raw JSON of each outbox item that does not.
fn salvage(v: &RawValue) -> (State, LoadReport, Vec<serde_json::Value>) {
    use crate::notify::delivery::OutboxItem;
    let mut state = State::default();
    let mut report = LoadReport::default();
    let mut lost = Vec::new();
    let top = fields(v).unwrap_or_default();
    let delivery = top.get("delivery").and_then(|d| fields(d)).unwrap_or_default();
    let items: Vec<&RawValue> =
        delivery.get("outbox").and_then(|o| serde_json::from_str(o.get()).ok()).unwrap_or_default();
    let next_id = delivery.get("next_id").and_then(|n| serde_json::from_str::<u64>(n.get()).ok());
    let mut next_id = next_id.filter(|&n| n <= MAX_ID).unwrap_or(0);
    let mut seen = std::collections::BTreeSet::new();
    let mut renumber = Vec::new();
    for raw in items {
        match serde_json::from_str::<OutboxItem>(raw.get()) {
            Ok(item) if item.created.is_finite() => {
                if item.id >= MAX_ID || !seen.insert(item.id) {
                    renumber.push(state.delivery.outbox.len());
                } else {
                    next_id = next_id.max(item.id + 1);
                }
                state.delivery.outbox.push(item);
                report.salvaged_items += 1;
            }
            Ok(_) | Err(_) => {
                lost.push(serde_json::from_str(raw.get()).unwrap_or_default());
                report.lost_items += 1;
            }
        }
    }
    // Duplicates and ids too large to grow get fresh ids above every id kept.
    for i in renumber {
        state.delivery.outbox[i].id = next_id;
        next_id = next_id.saturating_add(1);
    }
    state.delivery.next_id = next_id;
    if let Some(n) = delivery.get("notified").and_then(|n| serde_json::from_str(n.get()).ok()) {
        state.delivery.notified = n;
    }
    let alerts: Vec<&RawValue> =
        top.get("alerts").and_then(|a| serde_json::from_str(a.get()).ok()).unwrap_or_default();
    for raw in alerts {
        if let Ok(a) = serde_json::from_str::<SavedAlert>(raw.get()) {
            state.alerts.push(a);
            report.salvaged_alerts += 1;
        }
    }
    if let Some(o) = top.get("once").and_then(|o| serde_json::from_str::<OnceState>(o.get()).ok()) {
        state.once = Some(o);
    }
    (state, report, lost)
}
