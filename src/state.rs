//! The state file: alert states, `once`'s rings and counters, and the outbox, kept in
//! `state_dir/state.json` and written atomically (temp file, fsync, rename, fsync of the dir);
//! and the state directory's lock.
//!
//! The file is read only when it is a regular file of at most 16 MiB
//! ([`crate::localfile`]). A state file that cannot be read or parsed is kept aside (copied
//! to `state.json.broken-<unix>-<pid>`) with a warning and the agent starts with what could
//! be salvaged from it, saved in its place: outbox items and alerts that still parse one by
//! one are adopted; every outbox item that does not gets a `delivery_failed` record in the
//! events log naming the file it was kept in, and one `state_set_aside` record says what
//! happened to the file (see `salvage`). Dry runs use [`peek`], which writes nothing. Saved alerts and rings are
//! checked on load (finite, plausible times), so no content of a state file can panic the
//! agent. State is precious but never worth refusing to monitor for.

use crate::engine::{SavedAlert, SavedRing};
use crate::notify::delivery::DeliveryState;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Version of the state file's layout.
pub const STATE_VERSION: u32 = 1;

/// Everything that survives a restart.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct State {
    /// Layout version.
    pub version: u32,
    /// When it was written (Unix seconds).
    pub saved_at: f64,
    /// Alert states that are not ok.
    #[serde(default)]
    pub alerts: Vec<SavedAlert>,
    /// What `once` carries from one run to the next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub once: Option<OnceState>,
    /// Notifications not yet accepted by their channel, and where episodes were announced.
    #[serde(default)]
    pub delivery: DeliveryState,
}

/// What `hostwatch once` keeps between cron runs.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct OnceState {
    /// The collector's raw counters at the previous run.
    pub counters: serde_json::Value,
    /// Ring contents, so windows span runs.
    pub rings: Vec<SavedRing>,
}

/// `state_dir/state.json`.
pub fn state_path(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

/// Latest plausible Unix time in a state file (year 5138); earlier than 0 is not plausible
/// either.
const MAX_UNIX: f64 = 1e11;

/// Entries kept per saved ring (the newest); more is not a ring this agent wrote.
const MAX_RING_ENTRIES: usize = 65_536;

/// What [`load_report`] found besides the state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadReport {
    /// Where a broken state file was moved (`None`: the file was fine or missing; the
    /// original path when it could not be renamed).
    pub set_aside: Option<PathBuf>,
    /// Why it was set aside.
    pub reason: Option<String>,
    /// Outbox items adopted from a broken file.
    pub salvaged_items: usize,
    /// Alerts adopted from a broken file.
    pub salvaged_alerts: usize,
    /// Outbox items that could not be salvaged (each got a `delivery_failed` record).
    pub lost_items: usize,
    /// Saved alerts and ring entries dropped as implausible (each logged).
    pub dropped_invalid: usize,
}

/// A loaded state and what happened on the way.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Loaded {
    /// The state to start from.
    pub state: State,
    /// Set aside, salvaged, dropped.
    pub report: LoadReport,
}

/// Reads the state; a missing file is a fresh start, a broken one is set aside and salvaged
/// (see the module doc). Never panics, never blocks on a FIFO.
pub fn load(dir: &Path) -> State {
    load_report(dir).state
}

/// What reading `state.json` found, before anything is done about it.
enum Read {
    /// No file: a fresh start.
    Missing,
    /// A good file, with how many implausible things were dropped from it.
    Good(State, usize),
    /// A broken file: its bytes when they could be read, and why it is broken.
    Broken(Option<Vec<u8>>, String),
}

/// Reads and parses `state.json`; writes nothing.
fn read_state(path: &Path) -> Read {
    let bytes = match crate::localfile::read_regular(path, crate::localfile::STATE_MAX_BYTES) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Read::Missing,
        Err(e) => return Read::Broken(None, format!("cannot be read: {e}")),
    };
    match serde_json::from_slice::<State>(&bytes) {
        Ok(mut s) if s.version == STATE_VERSION => {
            let dropped = validate(&mut s);
            Read::Good(s, dropped)
        }
        Ok(s) => {
            let why = format!("has layout version {} (expected {STATE_VERSION})", s.version);
            Read::Broken(Some(bytes), why)
        }
        Err(e) => Read::Broken(Some(bytes), format!("is not valid: {e}")),
    }
}

/// [`load`], also saying whether the file was set aside and what was salvaged. The records
/// (`state_set_aside`, `delivery_failed`) are already in `state_dir/events.jsonl`.
pub fn load_report(dir: &Path) -> Loaded {
    let path = state_path(dir);
    match read_state(&path) {
        Read::Missing => Loaded::default(),
        Read::Good(state, dropped) => Loaded {
            state,
            report: LoadReport { dropped_invalid: dropped, ..LoadReport::default() },
        },
        Read::Broken(bytes, why) => {
            salvage::set_aside_and_salvage(dir, &path, bytes.as_deref(), &why)
        }
    }
}

/// The state as [`load`] would start from it, for dry runs: a broken file is salvaged in
/// memory only. Never renames, copies or writes a file and never writes a record (a later
/// real run sets the file aside and records what it loses).
pub fn peek(dir: &Path) -> State {
    let path = state_path(dir);
    match read_state(&path) {
        Read::Missing => State::default(),
        Read::Good(state, _) => state,
        Read::Broken(bytes, why) => {
            log::warn!(file = path.display().to_string();
                "state file {why}; dry run: starting with what could be salvaged, file left as it is");
            salvage::salvage_in_memory(bytes.as_deref()).state
        }
    }
}

/// True for a time (Unix seconds or elapsed seconds) a state file may hold.
fn plausible_time(t: f64) -> bool {
    t.is_finite() && (0.0..=MAX_UNIX).contains(&t)
}

/// True when every number of an alert's state other than its value and sequence number is a
/// plausible time, and the sequence number has room to grow.
fn plausible_alert(a: &SavedAlert) -> bool {
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(a.state) else { return false };
    // A sequence number near u32::MAX would overflow at the next notification.
    let seq_ok = map.get("seq").and_then(serde_json::Value::as_u64).is_none_or(|n| n < 1 << 31);
    seq_ok
        && map.iter().filter(|(k, _)| *k != "value" && *k != "seq").all(|(_, v)| match v {
            serde_json::Value::Number(n) => n.as_f64().is_some_and(plausible_time),
            _ => true,
        })
}

/// Drops saved alerts and ring entries whose times are implausible, and keeps the newest
/// [`MAX_RING_ENTRIES`] of a ring; returns how many things were dropped (each logged).
pub(crate) fn validate(state: &mut State) -> usize {
    let mut dropped = 0;
    state.alerts.retain(|a| {
        let ok = plausible_alert(a);
        if !ok {
            log::warn!(rule = a.rule.as_str(), series = a.series.as_str();
                "saved alert with implausible times dropped");
            dropped += 1;
        }
        ok
    });
    if let Some(once) = state.once.as_mut() {
        for ring in &mut once.rings {
            let before = ring.entries.len();
            ring.entries.retain(|&(ts, v)| plausible_time(ts) && v.is_finite());
            if ring.entries.len() > MAX_RING_ENTRIES {
                ring.entries.drain(..ring.entries.len() - MAX_RING_ENTRIES);
            }
            if ring.entries.len() != before {
                log::warn!(series = ring.series.as_str();
                    "saved ring: {} implausible or surplus entries dropped", before - ring.entries.len());
                dropped += before - ring.entries.len();
            }
        }
    }
    dropped
}

/// Writes the state atomically; an error names the file.
pub fn save(dir: &Path, state: &State) -> io::Result<()> {
    let mut state = state.clone();
    state.version = STATE_VERSION;
    state.saved_at = crate::timefmt::now_unix();
    let bytes = serde_json::to_vec(&state).map_err(io::Error::other)?;
    write_atomic(&state_path(dir), &bytes)
}

/// Writes `bytes` to `path` so that a crash leaves either the old or the new file whole. The
/// temp file is `<stem>.tmp.<pid>` beside it; an error names the file it is about.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| crate::localfile::with_path(dir, e))?;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let result = (|| {
        let at = |p: &Path| {
            let p = p.to_path_buf();
            move |e| crate::localfile::with_path(&p, e)
        };
        let mut f = File::create(&tmp).map_err(at(&tmp))?;
        f.write_all(bytes).map_err(at(&tmp))?;
        f.sync_all().map_err(at(&tmp))?;
        fs::rename(&tmp, path).map_err(at(path))?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(at(dir))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// An exclusive lock on the state directory itself, held while the process lives.
#[derive(Debug)]
pub struct StateLock {
    held: std::sync::Mutex<Held>,
}

/// The locked directory handle and the legacy `lock` file.
#[derive(Debug)]
struct Held {
    dir: File,
    _legacy: Option<File>,
}

/// (device, inode) of an open file.
fn fd_id(file: &File) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    file.metadata().map(|m| (m.dev(), m.ino()))
}

impl StateLock {
    /// Checks that the directory at `dir` is still the one locked (one `stat` and one
    /// `fstat`; call it once per tick). The lock is on the directory's inode while all I/O
    /// goes by path, so a state_dir that was renamed, deleted or replaced would let a second
    /// hostwatch in. On a mismatch the directory now at `dir` (created when missing) is
    /// locked and adopted, with a warning; when that fails (another hostwatch holds it) the
    /// error says so and the caller must stop.
    // Called once per tick by `Daemon::tick` (wired by the integrator); remove the allow then.
    pub(crate) fn verify(&self, dir: &Path) -> Result<(), String> {
        use std::os::unix::fs::MetadataExt;
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let ours = fd_id(&held.dir).map_err(|e| format!("state_dir lock: {e}"))?;
        if fs::metadata(dir).is_ok_and(|m| (m.dev(), m.ino()) == ours) {
            return Ok(());
        }
        match lock(dir) {
            Ok(new) => {
                let new = new.held.into_inner().unwrap_or_else(|p| p.into_inner());
                log::warn!(state_dir = dir.display().to_string();
                    "state_dir was replaced or removed; locked the directory now at the path");
                *held = new;
                Ok(())
            }
            Err(e) => Err(format!(
                "state_dir {} was replaced and the directory now there cannot be locked \
                 (another hostwatch owns it?): {e}",
                dir.display()
            )),
        }
    }
}

/// `flock(LOCK_EX | LOCK_NB)` on an open file or directory.
fn try_flock(file: &File) -> io::Result<()> {
    // SAFETY: flock on a file descriptor we own; no memory is shared with the kernel.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Takes the state directory's lock, or says who cannot have it.
///
/// The lock is a `flock` on the directory itself, so deleting a file cannot bypass it. The
/// `lock` file of earlier versions is still created and locked as well (best effort), so an
/// older hostwatch still running on the same directory during an upgrade is refused too.
/// Once locked, leftover temp files of dead writers (`state.tmp.<pid>` not ours) are removed.
pub fn lock(dir: &Path) -> io::Result<StateLock> {
    fs::create_dir_all(dir).map_err(|e| crate::localfile::with_path(dir, e))?;
    let handle = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|e| crate::localfile::with_path(dir, e))?;
    let busy = |what: &Path, err: io::Error| {
        io::Error::new(
            err.kind(),
            format!(
                "{} is locked: another hostwatch is running with this state_dir ({err})",
                what.display()
            ),
        )
    };
    try_flock(&handle).map_err(|e| busy(dir, e))?;
    let legacy_path = dir.join("lock");
    let legacy =
        OpenOptions::new().create(true).truncate(false).write(true).open(&legacy_path).ok();
    if let Some(f) = &legacy {
        try_flock(f).map_err(|e| busy(&legacy_path, e))?;
    }
    remove_stale_temp_files(dir);
    Ok(StateLock { held: std::sync::Mutex::new(Held { dir: handle, _legacy: legacy }) })
}

/// Removes `state.tmp.<pid>` and `silences.tmp.<pid>` files that are not this process's: the state
/// file's always (we hold the state lock), the silences file's only while no `hostwatch
/// silence` holds the silences lock. Returns how many were removed.
pub(crate) fn remove_stale_temp_files(dir: &Path) -> usize {
    let ours = format!(".tmp.{}", std::process::id());
    let Ok(entries) = fs::read_dir(dir) else { return 0 };
    let names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| {
            let pid = n.strip_prefix("state.tmp.").or_else(|| n.strip_prefix("silences.tmp."));
            pid.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                && !n.ends_with(&ours)
        })
        .collect();
    let silences_lock = names
        .iter()
        .any(|n| !n.starts_with("state."))
        .then(|| crate::silence_store::try_lock(dir))
        .flatten();
    let mut removed = 0;
    for name in names {
        if !name.starts_with("state.") && silences_lock.is_none() {
            continue;
        }
        let p = dir.join(&name);
        match fs::remove_file(&p) {
            Ok(()) => {
                log::info!(file = p.display().to_string(); "removed a stale temp file");
                removed += 1;
            }
            Err(e) => {
                log::warn!(file = p.display().to_string(); "cannot remove a stale temp file: {e}")
            }
        }
    }
    removed
}

mod salvage;

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn tempdir(name: &str) -> PathBuf {
        crate::testutil::tempdir("state", name)
    }

    #[test]
    fn round_trip_and_corrupt_file_is_set_aside() {
        let dir = tempdir("rt");
        assert_eq!(load(&dir), State::default());
        let state = State { once: Some(OnceState::default()), ..State::default() };
        save(&dir, &state).unwrap();
        let back = load(&dir);
        assert_eq!(back.version, STATE_VERSION);
        assert_eq!(back.once, state.once);
        fs::write(state_path(&dir), b"{not json").unwrap();
        assert_eq!(load(&dir), State::default());
        // The salvaged (here: empty) state is saved in its place.
        assert_eq!(load_report(&dir).report, LoadReport::default());
        let aside: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("state.json.broken-"))
            .collect();
        assert_eq!(aside.len(), 1);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn lock_is_exclusive() {
        let dir = tempdir("lock");
        let _held = lock(&dir).unwrap();
        // flock locks belong to the open file description: a second open conflicts.
        assert!(lock(&dir).is_err());
        let _ = fs::remove_dir_all(&dir);
    }

    /// A valid state file's JSON: two outbox items, one firing alert, a ring and counters.
    pub(crate) fn valid_state_json() -> serde_json::Value {
        let event = |key: &str| {
            serde_json::json!({"ts": 1_800_000_000.0, "host": "h", "rule": "cpu_high",
                "series": "cpu.usage", "metric": "cpu.usage", "labels": {}, "severity": "warning",
                "event": "firing", "value": 91.5, "value_text": "91.5%", "threshold": "> 90",
                "since": 1_800_000_000.0, "seq": 1, "key": key, "episode_key": "cpu_high:1"})
        };
        serde_json::json!({"version": 1, "saved_at": 1_800_000_010.0,
            "alerts": [{"rule": "cpu_high", "series": "cpu.usage", "state": {"phase": "firing",
                "severity": "warning", "since": 1_800_000_000.0, "last_notified": 1_800_000_000.0,
                "seq": 1, "announced": true, "told": "warning", "value": 91.5}}],
            "once": {"counters": {"version": 1, "ts": 1_800_000_000.0, "cpu": {"all": [1, 2, 3, 4, 5, 6, 7, 8]}},
                "rings": [{"series": "cpu.usage", "entries": [[1_800_000_000.0, 91.5], [1_800_000_005.0, 92.0]]}]},
            "delivery": {"outbox": [
                {"id": 1, "channel": "ops", "event": event("k1"), "created": 1_800_000_000.0},
                {"id": 2, "channel": "ops", "event": event("k2"), "created": 1_800_000_001.0}],
                "next_id": 3, "notified": {"cpu_high:1": ["ops"]}}})
    }

    fn records(dir: &Path) -> Vec<serde_json::Value> {
        crate::eventlog::read_records(&dir.join("events.jsonl")).unwrap()
    }

    #[test]
    fn a_valid_state_file_loads_whole() {
        let dir = tempdir("valid");
        fs::write(state_path(&dir), valid_state_json().to_string()).unwrap();
        let loaded = load_report(&dir);
        assert_eq!(loaded.report, LoadReport::default());
        assert_eq!(loaded.state.delivery.outbox.len(), 2);
        assert_eq!(loaded.state.alerts.len(), 1);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_corrupt_state_files_outbox_is_salvaged_and_each_lost_item_recorded() {
        let dir = tempdir("salvage");
        let mut v = valid_state_json();
        // One item lost its event, the alert list holds a stray string, a field has a bad type.
        v["delivery"]["outbox"][0]["event"] = serde_json::json!("garbage");
        v["alerts"].as_array_mut().unwrap().push(serde_json::json!("stray"));
        v["saved_at"] = serde_json::json!("yesterday");
        fs::write(state_path(&dir), v.to_string()).unwrap();
        let loaded = load_report(&dir);
        let aside = loaded.report.set_aside.clone().expect("set aside");
        assert!(aside.to_string_lossy().contains("state.json.broken-"), "{aside:?}");
        assert!(aside.exists());
        assert_eq!(fs::read(&aside).unwrap(), v.to_string().into_bytes(), "the copy is whole");
        assert_eq!(loaded.state.delivery.outbox.len(), 1);
        assert_eq!(loaded.state.delivery.outbox[0].event.key, "k2");
        assert_eq!(loaded.state.delivery.next_id, 3);
        assert_eq!(loaded.state.alerts.len(), 1);
        assert_eq!((loaded.report.salvaged_items, loaded.report.lost_items), (1, 1));
        let recs = records(&dir);
        let failed: Vec<_> = recs.iter().filter(|r| r["type"] == "delivery_failed").collect();
        assert_eq!(failed.len(), 1, "{recs:?}");
        assert_eq!(failed[0]["gave_up"], true);
        assert_eq!(failed[0]["channel"], "ops");
        assert_eq!(failed[0]["raw"]["id"], 1);
        let aside_text = aside.display().to_string();
        assert!(failed[0]["reason"].as_str().unwrap().contains(&aside_text), "{}", failed[0]);
        let set: Vec<_> = recs.iter().filter(|r| r["type"] == "state_set_aside").collect();
        assert_eq!(set.len(), 1);
        assert_eq!(set[0]["file"], aside_text.as_str());
        let _ = fs::remove_dir_all(&dir);
    }

    /// The names of the files in `dir` with their contents.
    fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), fs::read(e.path()).unwrap()))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn peek_salvages_in_memory_and_never_writes() {
        let dir = tempdir("peek");
        let mut v = valid_state_json();
        v["delivery"]["outbox"][0]["event"] = serde_json::json!("garbage");
        v["saved_at"] = serde_json::json!("yesterday");
        fs::write(state_path(&dir), v.to_string()).unwrap();
        let before = listing(&dir);
        let state = peek(&dir);
        assert_eq!(state.delivery.outbox.len(), 1);
        assert_eq!(state.alerts.len(), 1);
        assert_eq!(listing(&dir), before, "nothing renamed, copied, written or recorded");
        // A good file and a missing one are read as `load` reads them.
        fs::write(state_path(&dir), valid_state_json().to_string()).unwrap();
        // (Compared as JSON: derived NaN fields never compare equal.)
        let json = |s: &State| serde_json::to_string(s).unwrap();
        assert_eq!(json(&peek(&dir)), json(&load(&dir)));
        assert_eq!(peek(&tempdir("peek-missing")), State::default());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_salvaged_state_is_saved_before_the_records_and_not_salvaged_twice() {
        let dir = tempdir("salvage-save");
        let mut v = valid_state_json();
        v["delivery"]["outbox"][0]["event"] = serde_json::json!("garbage");
        fs::write(state_path(&dir), v.to_string()).unwrap();
        let first = load_report(&dir);
        assert_eq!(first.report.salvaged_items, 1);
        // state.json now holds the salvaged state: the next start loads it cleanly.
        let second = load_report(&dir);
        assert_eq!(second.report.set_aside, None);
        assert_eq!(second.state.delivery.outbox, first.state.delivery.outbox);
        let recs = records(&dir);
        assert_eq!(recs.iter().filter(|r| r["type"] == "state_set_aside").count(), 1);
        assert_eq!(recs.iter().filter(|r| r["type"] == "delivery_failed").count(), 1);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn when_no_copy_can_be_kept_the_broken_file_stays_and_the_loss_is_recorded() {
        let dir = tempdir("salvage-full");
        let mut v = valid_state_json();
        v["delivery"]["outbox"][0]["event"] = serde_json::json!("garbage");
        let text = v.to_string();
        fs::write(state_path(&dir), &text).unwrap();
        salvage::FAIL_KEEP_ASIDE.set(true);
        let loaded = load_report(&dir);
        salvage::FAIL_KEEP_ASIDE.set(false);
        assert_eq!(fs::read_to_string(state_path(&dir)).unwrap(), text, "left in place, whole");
        assert_eq!(loaded.report.set_aside.as_deref(), Some(state_path(&dir).as_path()));
        assert_eq!(loaded.state.delivery.outbox.len(), 1, "salvaged in memory");
        let recs = records(&dir);
        let failed: Vec<_> = recs.iter().filter(|r| r["type"] == "delivery_failed").collect();
        assert_eq!(failed.len(), 1, "{recs:?}");
        let in_place = state_path(&dir).display().to_string();
        assert!(failed[0]["reason"].as_str().unwrap().contains(&in_place), "{}", failed[0]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn two_salvages_in_one_second_keep_two_copies() {
        let dir = tempdir("two-salvages");
        fs::write(state_path(&dir), b"{one").unwrap();
        let a = load_report(&dir).report.set_aside.unwrap();
        fs::write(state_path(&dir), b"{two").unwrap();
        let b = load_report(&dir).report.set_aside.unwrap();
        assert_ne!(a, b);
        assert!(a.to_string_lossy().contains(&format!("-{}", std::process::id())), "{a:?}");
        assert_eq!(fs::read(&a).unwrap(), b"{one");
        assert_eq!(fs::read(&b).unwrap(), b"{two");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn salvaged_ids_near_the_top_are_renumbered_without_overflow() {
        let dir = tempdir("ids");
        let mut v = valid_state_json();
        v["delivery"]["outbox"][0]["id"] = serde_json::json!(u64::MAX);
        v["delivery"]["outbox"][1]["id"] = serde_json::json!(u64::MAX);
        v["delivery"]["next_id"] = serde_json::json!(u64::MAX);
        v["saved_at"] = serde_json::json!("yesterday");
        fs::write(state_path(&dir), v.to_string()).unwrap();
        let s = load(&dir);
        let ids: Vec<u64> = s.delivery.outbox.iter().map(|i| i.id).collect();
        assert_eq!(ids, [0, 1]);
        assert_eq!(s.delivery.next_id, 2);
        // Duplicates below the limit get ids above every kept one.
        let mut v = valid_state_json();
        v["delivery"]["outbox"][1]["id"] = serde_json::json!(1);
        v["delivery"]["next_id"] = serde_json::json!(1);
        v["saved_at"] = serde_json::json!("yesterday");
        fs::write(state_path(&dir), v.to_string()).unwrap();
        let s = load(&dir);
        let ids: Vec<u64> = s.delivery.outbox.iter().map(|i| i.id).collect();
        assert_eq!((ids, s.delivery.next_id), (vec![1, 2], 3));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn verify_fails_when_the_replaced_state_dir_is_locked_by_another() {
        let dir = tempdir("verify-taken");
        let held = lock(&dir).unwrap();
        held.verify(&dir).unwrap();
        let old = dir.with_extension("old");
        let _ = fs::remove_dir_all(&old);
        fs::rename(&dir, &old).unwrap();
        fs::create_dir(&dir).unwrap();
        let other = lock(&dir).unwrap();
        let e = held.verify(&dir).unwrap_err();
        assert!(e.contains("another hostwatch"), "{e}");
        other.verify(&dir).unwrap();
        let _ = fs::remove_dir_all(&dir);
        let _ = fs::remove_dir_all(&old);
    }

    #[test]
    fn verify_relocks_a_replaced_or_removed_state_dir() {
        let dir = tempdir("verify-relock");
        let held = lock(&dir).unwrap();
        let old = dir.with_extension("old");
        let _ = fs::remove_dir_all(&old);
        fs::rename(&dir, &old).unwrap();
        fs::create_dir(&dir).unwrap();
        held.verify(&dir).unwrap();
        // The new directory is ours now: nobody else can lock it, the old one is let go.
        assert!(lock(&dir).is_err());
        drop(lock(&old).unwrap());
        fs::remove_dir_all(&dir).unwrap();
        held.verify(&dir).unwrap();
        assert!(dir.is_dir() && lock(&dir).is_err());
        let _ = fs::remove_dir_all(&dir);
        let _ = fs::remove_dir_all(&old);
    }

    #[test]
    fn a_truncated_state_file_is_recorded_as_set_aside() {
        let dir = tempdir("trunc");
        let text = valid_state_json().to_string();
        fs::write(state_path(&dir), &text[..text.len() / 2]).unwrap();
        let loaded = load_report(&dir);
        assert_eq!(loaded.state, State::default());
        let recs = records(&dir);
        assert_eq!(recs.len(), 1, "{recs:?}");
        assert_eq!(recs[0]["type"], "state_set_aside");
        assert_eq!(recs[0]["json"], false);
        let file = recs[0]["file"].as_str().unwrap();
        assert!(file.contains("state.json.broken-") && Path::new(file).exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn implausible_times_are_dropped_on_load() {
        let dir = tempdir("implausible");
        let mut v = valid_state_json();
        v["alerts"][0]["state"]["since"] = serde_json::json!(-1e300);
        v["once"]["rings"][0]["entries"][0][0] = serde_json::json!(-1e300);
        fs::write(state_path(&dir), v.to_string()).unwrap();
        let loaded = load_report(&dir);
        assert!(loaded.report.set_aside.is_none());
        assert_eq!(loaded.report.dropped_invalid, 2);
        assert!(loaded.state.alerts.is_empty());
        assert_eq!(loaded.state.once.unwrap().rings[0].entries, [(1_800_000_005.0, 92.0)]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_alert_whose_sequence_number_cannot_grow_is_dropped() {
        let dir = tempdir("seq");
        let mut v = valid_state_json();
        v["alerts"][0]["state"]["seq"] = serde_json::json!(u32::MAX);
        fs::write(state_path(&dir), v.to_string()).unwrap();
        let loaded = load_report(&dir);
        assert!(loaded.state.alerts.is_empty());
        assert_eq!(loaded.report.dropped_invalid, 1);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_fifo_state_file_is_set_aside_without_hanging() {
        let dir = tempdir("fifo");
        let c = std::ffi::CString::new(state_path(&dir).to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let loaded = load_report(&dir);
        assert!(loaded.report.reason.unwrap().contains("is a FIFO, not a regular file"));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn stale_temp_files_are_removed_when_the_lock_is_taken() {
        let dir = tempdir("stale");
        fs::write(dir.join("state.tmp.999999999"), b"x").unwrap();
        fs::write(dir.join("silences.tmp.999999998"), b"x").unwrap();
        let ours = dir.join(format!("state.tmp.{}", std::process::id()));
        fs::write(&ours, b"x").unwrap();
        fs::write(dir.join("notes.tmp.txt"), b"x").unwrap();
        fs::write(dir.join("history.tmp.123"), b"x").unwrap();
        let _held = lock(&dir).unwrap();
        assert!(!dir.join("state.tmp.999999999").exists());
        assert!(!dir.join("silences.tmp.999999998").exists());
        assert!(ours.exists(), "our own temp file is left alone");
        assert!(dir.join("notes.tmp.txt").exists(), "not a temp file of ours");
        assert!(dir.join("history.tmp.123").exists(), "another writer's: left alone");
        // While a `hostwatch silence` holds its lock, its temp file may be live: kept.
        let busy = tempdir("stale-busy");
        fs::write(busy.join("silences.tmp.999999998"), b"x").unwrap();
        let _silence = crate::silence_store::lock(&busy).unwrap();
        let _held_busy = lock(&busy).unwrap();
        assert!(busy.join("silences.tmp.999999998").exists());
        let _ = fs::remove_dir_all(&busy);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn deleting_the_lock_file_does_not_release_the_lock() {
        let dir = tempdir("rmlock");
        let _held = lock(&dir).unwrap();
        fs::remove_file(dir.join("lock")).unwrap();
        let e = lock(&dir).unwrap_err().to_string();
        assert!(e.contains("another hostwatch is running with this state_dir"), "{e}");
        assert!(e.contains(&dir.display().to_string()), "{e}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn save_errors_name_the_file() {
        let dir = tempdir("savefail");
        fs::create_dir_all(state_path(&dir)).unwrap();
        fs::write(state_path(&dir).join("x"), b"x").unwrap();
        let e = save(&dir, &State::default()).unwrap_err().to_string();
        assert!(e.contains("state.json"), "{e}");
        let _ = fs::remove_dir_all(&dir);
    }
}
