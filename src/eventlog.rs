//! The events log: every notification as one JSON line in `state_dir/events.jsonl`, rotated to
//! `events.jsonl.1` past a size limit, so an operator can see what was decided and when.

use crate::event::Notification;
use crate::notify::Notify;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

/// Rotate the log when it grows past this many bytes.
pub const MAX_BYTES: u64 = 4 * 1024 * 1024;

/// Appends notifications to the events log.
#[derive(Debug)]
pub struct EventLog {
    path: PathBuf,
    warned: bool,
}

impl EventLog {
    /// The events log of a state directory.
    pub fn new(state_dir: &std::path::Path) -> EventLog {
        EventLog { path: state_dir.join("events.jsonl"), warned: false }
    }

    /// Appends one JSON line (with an extra `"type"` field saying what kind of record it is).
    pub fn append(&mut self, record: &serde_json::Value) {
        let result = (|| -> std::io::Result<()> {
            if fs::metadata(&self.path).map(|m| m.len() > MAX_BYTES).unwrap_or(false) {
                fs::rename(&self.path, self.path.with_extension("jsonl.1"))?;
            }
            let mut f = OpenOptions::new().create(true).append(true).open(&self.path)?;
            writeln!(f, "{record}")
        })();
        if let Err(e) = result
            && !self.warned
        {
            log::warn!(file = self.path.display().to_string(); "cannot write the events log: {e}");
            self.warned = true;
        }
    }
}

impl Notify for EventLog {
    fn notify(&mut self, n: &Notification) {
        let mut record = n.to_json();
        record["type"] = serde_json::Value::from("notification");
        self.append(&record);
    }
}
