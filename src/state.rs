//! The state file: alert states, `once`'s rings and counters, and (later) the outbox, kept in
//! `state_dir/state.json` and written atomically (temp file, fsync, rename, fsync of the dir).
//!
//! A state file that cannot be read or parsed is renamed aside with a warning and the agent
//! starts fresh: state is precious but never worth refusing to monitor for.

use crate::engine::{SavedAlert, SavedRing};
use crate::notify::delivery::DeliveryState;
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
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

/// Reads the state; a missing file is a fresh start, a broken one is set aside.
pub fn load(dir: &Path) -> State {
    let path = state_path(dir);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return State::default(),
        Err(e) => {
            set_aside(&path, &format!("cannot be read: {e}"));
            return State::default();
        }
    };
    match serde_json::from_str::<State>(&text) {
        Ok(s) if s.version == STATE_VERSION => s,
        Ok(s) => {
            set_aside(
                &path,
                &format!("has layout version {} (expected {STATE_VERSION})", s.version),
            );
            State::default()
        }
        Err(e) => {
            set_aside(&path, &format!("is not valid: {e}"));
            State::default()
        }
    }
}

/// Renames a broken state file to `state.json.broken-<unix time>` and says so.
fn set_aside(path: &Path, why: &str) {
    let aside = path.with_extension(format!("json.broken-{}", crate::timefmt::now_unix() as u64));
    match fs::rename(path, &aside) {
        Ok(()) => log::warn!(
            file = path.display().to_string(), moved_to = aside.display().to_string();
            "state file {why}; set aside, starting with fresh state"),
        Err(e) => log::warn!(
            file = path.display().to_string();
            "state file {why}; could not set it aside ({e}), starting with fresh state"),
    }
}

/// Writes the state atomically.
pub fn save(dir: &Path, state: &State) -> io::Result<()> {
    let mut state = state.clone();
    state.version = STATE_VERSION;
    state.saved_at = crate::timefmt::now_unix();
    let bytes = serde_json::to_vec(&state).map_err(io::Error::other)?;
    write_atomic(&state_path(dir), &bytes)
}

/// Writes `bytes` to `path` so that a crash leaves either the old or the new file whole.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// An exclusive lock on `state_dir/lock`, held while the process lives.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

/// Takes the state directory's lock, or says who cannot have it.
pub fn lock(dir: &Path) -> io::Result<StateLock> {
    fs::create_dir_all(dir)?;
    let path = dir.join("lock");
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
    // SAFETY: flock on a file descriptor we own; no memory is shared with the kernel.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        return Err(io::Error::new(
            err.kind(),
            format!(
                "{} is locked by another hostwatch using this state_dir ({err})",
                path.display()
            ),
        ));
    }
    Ok(StateLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hostwatch-state-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
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
        assert!(!state_path(&dir).exists());
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
}
