//! The events log: every notification and delivery failure as one JSON line in
//! `state_dir/events.jsonl`, rotated to `events.jsonl.1` past a size limit, so an operator can
//! see what was decided and when.
//!
//! Each record is serialised first and written with one `write(2)` on an `O_APPEND` descriptor
//! kept open between records (reopened after a rotation or when the file was replaced), so a
//! crash can tear at most the record being written. A file that does not end with a newline
//! (a torn record) gets one when it is opened, so the next record is not glued onto it.
//! Write failures are counted ([`EventLog::failures`]) and logged with the path at most once a
//! minute. Not the place for deciding what is recorded (delivery and `state` do).

use crate::event::Notification;
use crate::notify::Notify;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Rotate the log when it grows past this many bytes.
pub const MAX_BYTES: u64 = 4 * 1024 * 1024;

/// Appends records to the events log.
#[derive(Debug)]
pub struct EventLog {
    path: PathBuf,
    file: Option<File>,
    failures: u64,
    warnings: crate::logging::Throttle,
}

impl EventLog {
    /// The events log of a state directory (opened at the first record).
    pub fn new(state_dir: &Path) -> EventLog {
        EventLog {
            path: state_dir.join("events.jsonl"),
            file: None,
            failures: 0,
            warnings: crate::logging::Throttle::default(),
        }
    }

    /// How many records could not be written.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// Appends one JSON line (the record carries a `"type"` field saying what kind it is).
    pub fn append(&mut self, record: &serde_json::Value) {
        let mut line = record.to_string().into_bytes();
        line.push(b'\n');
        if let Err(e) = self.write_line(&line) {
            self.file = None;
            self.failures += 1;
            if self.warnings.ready() {
                log::warn!(file = self.path.display().to_string(), failures = self.failures;
                    "cannot write the events log {}: {e}", self.path.display());
            }
        }
    }

    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let on_disk = fs::metadata(&self.path).ok();
        // Reopen when the file was rotated or replaced (another writer, an operator).
        if let (Some(f), Some(m)) = (&self.file, &on_disk) {
            let held = f.metadata()?;
            if (held.dev(), held.ino()) != (m.dev(), m.ino()) {
                self.file = None;
            }
        } else if on_disk.is_none() {
            self.file = None;
        }
        if on_disk.as_ref().is_some_and(|m| m.len() > MAX_BYTES) {
            self.file = None;
            fs::rename(&self.path, self.path.with_extension("jsonl.1"))?;
        }
        if self.file.is_none() {
            self.file = Some(open_repaired(&self.path)?);
        }
        let file = self.file.as_mut().expect("opened above");
        // One buffer, one write(2) for any record of ordinary size.
        file.write_all(line)
    }
}

/// Opens the log for appending; a last record without its newline gets one.
fn open_repaired(path: &Path) -> io::Result<File> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    let len = f.metadata()?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        f.seek(SeekFrom::Start(len - 1))?;
        f.read_exact(&mut last)?;
        if last[0] != b'\n' {
            f.write_all(b"\n")?;
        }
    }
    Ok(f)
}

/// The records of an events log's bytes; torn or foreign lines are skipped. (The reader the
/// tests and the fuzzing check the writer's repair with.)
#[cfg(test)]
pub(crate) fn parse_records(bytes: &[u8]) -> Vec<serde_json::Value> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
        .filter(serde_json::Value::is_object)
        .collect()
}

/// The records of the events log at `path` (not the rotated one); a missing file has none.
#[cfg(test)]
pub(crate) fn read_records(path: &Path) -> io::Result<Vec<serde_json::Value>> {
    match crate::localfile::read_regular(path, 4 * MAX_BYTES) {
        Ok(bytes) => Ok(parse_records(&bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

impl Notify for EventLog {
    fn notify(&mut self, n: &Notification) {
        let mut record = n.to_json();
        record["type"] = serde_json::Value::from("notification");
        self.append(&record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tempdir(name: &str) -> PathBuf {
        crate::testutil::tempdir("ev", name)
    }

    #[test]
    fn a_torn_last_record_is_repaired_on_open_and_skipped_by_the_reader() {
        let d = tempdir("torn");
        let path = d.join("events.jsonl");
        fs::write(&path, b"{\"type\":\"a\"}\n{\"type\":\"to").unwrap();
        let mut log = EventLog::new(&d);
        log.append(&json!({"type": "b"}));
        log.append(&json!({"type": "c"}));
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"type\":\"a\"}\n{\"type\":\"to\n{\"type\":\"b\"}\n{\"type\":\"c\"}\n");
        let types: Vec<_> =
            read_records(&path).unwrap().into_iter().map(|r| r["type"].clone()).collect();
        assert_eq!(types, [json!("a"), json!("b"), json!("c")]);
        assert_eq!(log.failures(), 0);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn rotation_reopens_and_failures_are_counted() {
        let d = tempdir("rot");
        let path = d.join("events.jsonl");
        fs::write(&path, vec![b'\n'; MAX_BYTES as usize + 1]).unwrap();
        let mut log = EventLog::new(&d);
        log.append(&json!({"type": "after"}));
        assert!(d.join("events.jsonl.1").exists());
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\"type\":\"after\"}\n");
        // Someone else rotates: the next record goes to the new file, not the old inode.
        fs::rename(&path, d.join("events.jsonl.1")).unwrap();
        log.append(&json!({"type": "new"}));
        assert_eq!(fs::read_to_string(&path).unwrap(), "{\"type\":\"new\"}\n");
        // A directory where the log should be: counted, not panicked.
        let blocked = tempdir("blocked");
        fs::create_dir_all(blocked.join("events.jsonl")).unwrap();
        let mut bad = EventLog::new(&blocked);
        bad.append(&json!({"type": "x"}));
        bad.append(&json!({"type": "y"}));
        assert_eq!(bad.failures(), 2);
        let _ = fs::remove_dir_all(&d);
        let _ = fs::remove_dir_all(&blocked);
    }
}
