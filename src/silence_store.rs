//! Silences kept in `state_dir/silences.json`, managed by `hostwatch silence` and watched by
//! the running daemon (re-read when the file changes), merged with the config's silences.
//!
//! The file is read only when it is a regular file of at most 4 MiB. `hostwatch silence`
//! holds [`lock`] (`state_dir/silences.lock`, flocked, never deleted) around its
//! read-modify-write so concurrent commands never lose each other's changes; the daemon only
//! reads and does not take it.

use crate::config::Config;
use crate::silence::Silence;
use serde::{Deserialize, Serialize};
use std::fs;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The file's layout.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SilenceFile {
    /// The silences, oldest first.
    #[serde(default)]
    pub silences: Vec<Silence>,
}

/// `state_dir/silences.json`.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("silences.json")
}

/// Reads the silences file; a missing file is empty, a broken one is an error.
pub fn read(state_dir: &Path) -> Result<SilenceFile, String> {
    let p = path(state_dir);
    match crate::localfile::read_regular(&p, crate::localfile::SILENCES_MAX_BYTES) {
        Ok(bytes) => parse(&bytes).map_err(|e| format!("{}: {e}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SilenceFile::default()),
        Err(e) => Err(e.to_string()),
    }
}

/// Parses the silences file's bytes.
pub fn parse(bytes: &[u8]) -> Result<SilenceFile, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// `state_dir/silences.lock`.
fn lock_path(state_dir: &Path) -> PathBuf {
    state_dir.join("silences.lock")
}

/// The silences lock, held until dropped.
#[derive(Debug)]
pub struct SilencesLock {
    _file: fs::File,
}

fn open_lock(state_dir: &Path) -> std::io::Result<fs::File> {
    fs::create_dir_all(state_dir)?;
    fs::OpenOptions::new().create(true).truncate(false).write(true).open(lock_path(state_dir))
}

/// Takes the silences lock, waiting for another `hostwatch silence` to finish.
pub fn lock(state_dir: &Path) -> Result<SilencesLock, String> {
    let file =
        open_lock(state_dir).map_err(|e| format!("{}: {e}", lock_path(state_dir).display()))?;
    loop {
        // SAFETY: flock on a file descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(SilencesLock { _file: file });
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("{}: {e}", lock_path(state_dir).display()));
        }
    }
}

/// Takes the silences lock if nobody holds it.
pub(crate) fn try_lock(state_dir: &Path) -> Option<SilencesLock> {
    let file = open_lock(state_dir).ok()?;
    // SAFETY: flock on a file descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    (rc == 0).then_some(SilencesLock { _file: file })
}

/// Writes the silences file atomically.
pub fn write(state_dir: &Path, file: &SilenceFile) -> Result<(), String> {
    let bytes = serde_json::to_vec_pretty(file).map_err(|e| e.to_string())?;
    crate::state::write_atomic(&path(state_dir), &bytes).map_err(|e| e.to_string())
}

/// Watches the silences file for changes (one `stat` per tick).
#[derive(Debug)]
pub struct Watcher {
    state_dir: PathBuf,
    seen: Option<(SystemTime, u64)>,
}

impl Watcher {
    /// Watches `state_dir/silences.json`.
    pub fn new(state_dir: &Path) -> Watcher {
        Watcher { state_dir: state_dir.to_path_buf(), seen: None }
    }

    fn stamp(&self) -> Option<(SystemTime, u64)> {
        fs::metadata(path(&self.state_dir)).ok().and_then(|m| Some((m.modified().ok()?, m.len())))
    }

    /// True when the file changed since the last [`Watcher::merged`].
    pub fn changed(&self) -> bool {
        self.stamp() != self.seen
    }

    /// The config's silences plus the file's (a broken file is logged and ignored).
    pub fn merged(&mut self, config: &Config, log_errors: bool) -> Vec<Silence> {
        self.seen = self.stamp();
        let mut all = config.silences.clone();
        match read(&self.state_dir) {
            Ok(f) => all.extend(f.silences),
            Err(e) if log_errors => log::warn!("silences file ignored: {e}"),
            Err(_) => {}
        }
        all
    }
}
