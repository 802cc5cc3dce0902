//! Silences kept in `state_dir/silences.json`, managed by `hostwatch silence` and watched by
//! the running daemon (re-read when the file changes), merged with the config's silences.

use crate::config::Config;
use crate::silence::Silence;
use serde::{Deserialize, Serialize};
use std::fs;
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
    match fs::read_to_string(&p) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SilenceFile::default()),
        Err(e) => Err(format!("{}: {e}", p.display())),
    }
}

/// Writes the silences file atomically.
pub fn write(state_dir: &Path, file: &SilenceFile) -> Result<(), String> {
    let bytes = serde_json::to_vec_pretty(file).map_err(|e| e.to_string())?;
    crate::state::write_atomic(&path(state_dir), &bytes)
        .map_err(|e| format!("{}: {e}", path(state_dir).display()))
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
