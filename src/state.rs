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
    /// Saves by `run` since the state began, counted across restarts: of two copies (the
    /// local file, Redis) the higher is newer, whatever the wall clock did.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: u64,
    /// A random id given to a state when it starts fresh and kept across saves: two copies
    /// of one lineage are one history (their generations compare), two lineages are not.
    /// Empty (files from before lineages): unknown, compared by generation alone.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub lineage: String,
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

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// True when `other` is a newer copy of the state than `this`: by `generation` when both
/// have one, else by `saved_at` (a missing file is the default state: anything is newer).
pub(crate) fn is_newer(other: &State, this: &State) -> bool {
    if other.generation > 0 && this.generation > 0 {
        other.generation > this.generation
    } else {
        other.saved_at > this.saved_at
    }
}

/// True when the two copies are of one history as far as can be told (same lineage, or
/// either's unknown).
pub(crate) fn same_lineage(a: &State, b: &State) -> bool {
    a.lineage.is_empty() || b.lineage.is_empty() || a.lineage == b.lineage
}

/// A new random lineage id (16 hex digits from `/dev/urandom`; the clock and the pid when
/// it cannot be read).
pub(crate) fn new_lineage() -> String {
    use std::io::Read;
    let mut b = [0u8; 8];
    let n = match File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)) {
        Ok(()) => u64::from_le_bytes(b),
        Err(_) => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            t ^ (u64::from(std::process::id()) << 40)
        }
    };
    format!("{n:016x}")
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

/// The state file as it is, for `hostwatch status`: `Ok(None)` when there is none, an error
/// (naming the file and why) when it cannot be read or is broken — a reader that must not
/// mistake an unreadable file for one with nothing firing. Writes and logs nothing.
pub fn peek_exact(dir: &Path) -> Result<Option<State>, String> {
    let path = state_path(dir);
    match read_state(&path) {
        Read::Missing => Ok(None),
        Read::Good(state, _) => Ok(Some(state)),
        Read::Broken(_, why) => Err(format!("the state file {} {why}", path.display())),
    }
}

/// True for a time (Unix seconds or elapsed seconds) a state file may hold.
fn plausible_time(t: f64) -> bool {
    t.is_finite() && (0.0..=MAX_UNIX).contains(&t)
}

/// True when every number of an alert's state other than its metric values (`value`,
/// `peak`) and sequence number is a plausible time (the `nodata` marker's and the flap
/// period's too), and the sequence numbers have room to grow.
fn plausible_alert(a: &SavedAlert) -> bool {
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(a.state) else { return false };
    // A sequence number near u32::MAX would overflow at the next notification.
    let seq_ok = map.get("seq").and_then(serde_json::Value::as_u64).is_none_or(|n| n < 1 << 31);
    let times = |map: &serde_json::Map<String, serde_json::Value>| {
        map.iter().filter(|(k, _)| !matches!(k.as_str(), "value" | "peak" | "seq")).all(|(_, v)| {
            match v {
                serde_json::Value::Number(n) => n.as_f64().is_some_and(plausible_time),
                serde_json::Value::Object(inner) => inner.iter().all(|(_, v)| match v {
                    serde_json::Value::Number(n) => n.as_f64().is_some_and(plausible_time),
                    _ => true,
                }),
                _ => true,
            }
        })
    };
    // A flap period's episode and sequence number, as the alert's own.
    let flap_ok =
        a.state.flap.flapping.is_none_or(|f| {
            plausible_time(f.since) && plausible_time(f.elapsed_s) && f.seq < 1 << 31
        });
    seq_ok && flap_ok && times(&map)
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
    write_atomic(&state_path(dir), &encode(state)?)
}

/// The bytes of a state file for `state`, stamped with this layout's version and the time
/// now (`saved_at`: which of two copies is newer).
pub(crate) fn encode(state: &State) -> io::Result<Vec<u8>> {
    let mut state = state.clone();
    state.version = STATE_VERSION;
    state.saved_at = crate::timefmt::now_unix();
    serde_json::to_vec(&state).map_err(io::Error::other)
}

/// A state file's bytes from elsewhere (the Redis copy), checked as the local file is:
/// the right layout version, implausible alerts and ring entries dropped. Writes nothing.
pub(crate) fn decode(bytes: &[u8]) -> Result<State, String> {
    match serde_json::from_slice::<State>(bytes) {
        Ok(mut s) if s.version == STATE_VERSION => {
            validate(&mut s);
            Ok(s)
        }
        Ok(s) => Err(format!("has layout version {} (expected {STATE_VERSION})", s.version)),
        Err(e) => Err(format!("is not valid: {e}")),
    }
}

/// Writes `bytes` to `path` so that a crash leaves either the old or the new file whole. The
/// temp file is `<stem>.tmp.<pid>` beside it; an error names the file it is about.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_prepared(path, bytes, |_| Ok(()))
}

/// [`write_atomic`], calling `prepare` on the temp file (written, not yet renamed): to give it
/// an owner and a mode.
pub(crate) fn write_atomic_prepared(
    path: &Path,
    bytes: &[u8],
    prepare: impl FnOnce(&File) -> io::Result<()>,
) -> io::Result<()> {
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
        prepare(&f).map_err(at(&tmp))?;
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
        .then(|| crate::silence_store::try_lock(dir).ok().flatten())
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
mod tests;
