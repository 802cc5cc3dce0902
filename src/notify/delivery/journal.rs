//! The outbox journal: `state_dir/outbox.journal`, an append-only record of what happened to
//! outbox items since the state file was last written, so an acknowledgement costs one small
//! `write(2)` instead of rewriting (and fsyncing) the whole state.
//!
//! Three records, one JSON line each:
//! - `{"op":"attempt","id":K,"n":N}`: the worker is about to send item K; if the process dies
//!   now, K was in flight during N crashes in a row (the crash-loop guard's count).
//! - `{"op":"tried","id":K}`: the attempt returned (a failure to retry): it was no crash.
//! - `{"op":"done","id":K}`: K left the outbox (accepted, or dropped with a record).
//!
//! The state file holds the outbox as of its last save; replaying the journal over it gives
//! the outbox as of the last record. Every record is idempotent (`n` is absolute), so a crash
//! between writing a new state file and emptying the journal replays harmlessly. A torn last
//! line (power loss, full disk) is ignored on replay and cut off before the next append.
//!
//! Not for: deciding anything. The dispatcher and the workers call it; it only records and
//! replays. Writes that fail are counted and logged (at most once a minute), never fatal:
//! persisting is a safeguard, not a gate.

use super::outbox::OutboxItem;
use serde::Deserialize;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The journal is folded into the state file once it holds this many records.
const COMPACT_RECORDS: usize = 4096;

/// A journal larger than this is not replayed (it cannot be one this version wrote).
const MAX_REPLAY_BYTES: u64 = 64 * 1024 * 1024;

/// What the journal knows of an item since the last state save.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mark {
    /// An attempt started and has not returned: in flight during `n` crashes if we die now.
    Attempting(u32),
    /// The last attempt returned (not accepted): the crash count is back to zero.
    Tried,
    /// The item left the outbox.
    Done,
}

#[derive(Deserialize)]
struct Record {
    op: String,
    id: u64,
    #[serde(default)]
    n: u32,
}

/// The journal: the file, and the marks written since the last save.
///
/// Two locks, always taken in this order: `file` (held across a write and its fdatasync, by
/// the worker that records and by the commit that empties the file) and `marks` (held for a
/// map operation only). The poll loop reads marks on every tick without ever waiting for a
/// worker's fsync; only a commit waits for the record being written.
#[derive(Debug)]
pub(crate) struct Journal {
    file: Mutex<JournalFile>,
    marks: Mutex<Marks>,
    failures: AtomicU64,
}

#[derive(Debug, Default)]
struct Marks {
    map: HashMap<u64, Mark>,
    records: usize,
}

#[derive(Debug)]
struct JournalFile {
    path: PathBuf,
    file: Option<File>,
    /// Bytes known to be whole records; a failed append is cut back to this.
    good_len: u64,
    /// Whether the file may end in a torn record that must be cut off before appending.
    torn: bool,
    warnings: crate::logging::Throttle,
}

/// The journal of a state directory.
pub(crate) fn journal_path(state_dir: &Path) -> PathBuf {
    state_dir.join("outbox.journal")
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each critical section is one map operation or one write: a panic in another thread
    // leaves nothing half-done that matters.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Journal {
    /// Opens (creating when missing) the journal of `state_dir` for appending; a journal that
    /// cannot be opened now is retried at the next append.
    pub(crate) fn open(state_dir: &Path) -> Journal {
        let journal = Journal {
            file: Mutex::new(JournalFile {
                path: journal_path(state_dir),
                file: None,
                good_len: 0,
                torn: true,
                warnings: crate::logging::Throttle::default(),
            }),
            marks: Mutex::new(Marks::default()),
            failures: AtomicU64::new(0),
        };
        lock(&journal.file).reopen(&journal.failures);
        journal
    }

    /// Records that item `id` is about to be sent, in flight during `n` crashes if the
    /// process dies before [`Journal::tried`] or [`Journal::done`].
    pub(crate) fn attempt(&self, id: u64, n: u32) {
        self.record(
            id,
            Mark::Attempting(n),
            &format!("{{\"op\":\"attempt\",\"id\":{id},\"n\":{n}}}\n"),
        );
    }

    /// Records that the attempt on `id` returned without the item leaving the outbox.
    pub(crate) fn tried(&self, id: u64) {
        self.record(id, Mark::Tried, &format!("{{\"op\":\"tried\",\"id\":{id}}}\n"));
    }

    /// Records that `id` left the outbox.
    pub(crate) fn done(&self, id: u64) {
        self.record(id, Mark::Done, &format!("{{\"op\":\"done\",\"id\":{id}}}\n"));
    }

    fn record(&self, id: u64, mark: Mark, line: &str) {
        let mut file = lock(&self.file);
        file.append(line, &self.failures);
        let mut marks = lock(&self.marks);
        marks.map.insert(id, mark);
        marks.records += 1;
    }

    /// What was recorded of `id` since the last save.
    pub(crate) fn mark(&self, id: u64) -> Option<Mark> {
        lock(&self.marks).map.get(&id).copied()
    }

    /// The attempts in flight now, with their crash counts.
    pub(crate) fn attempting(&self) -> Vec<(u64, u32)> {
        let marks = lock(&self.marks);
        marks
            .map
            .iter()
            .filter_map(|(&id, m)| match m {
                Mark::Attempting(n) => Some((id, *n)),
                _ => None,
            })
            .collect()
    }

    /// Forgets the marks of an item the dispatcher removed from its outbox.
    pub(crate) fn forget(&self, id: u64) {
        let mut marks = lock(&self.marks);
        if marks.map.get(&id) == Some(&Mark::Done) {
            marks.map.remove(&id);
        }
    }

    /// True when enough records piled up that the state file should absorb them.
    pub(crate) fn wants_compaction(&self) -> bool {
        lock(&self.marks).records >= COMPACT_RECORDS
    }

    /// Appends that failed since the process started.
    pub(crate) fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Folds the journal into the state file: `save` gets the marks as they stand (no record
    /// can be written meanwhile) and writes the state; when it succeeds the journal is
    /// emptied. Marks of attempts still in flight stay (the state file carries their count
    /// now; their outcome is still to come), and so do `Done` marks of items the dispatcher
    /// has not removed yet.
    pub(crate) fn compact<T>(
        &self,
        save: impl FnOnce(&HashMap<u64, Mark>) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut file = lock(&self.file);
        let snapshot = lock(&self.marks).map.clone();
        let saved = save(&snapshot)?;
        let mut marks = lock(&self.marks);
        marks.map.retain(|_, m| matches!(m, Mark::Attempting(_) | Mark::Done));
        marks.records = 0;
        drop(marks);
        file.truncate(&self.failures);
        Ok(saved)
    }
}

impl JournalFile {
    fn reopen(&mut self, failures: &AtomicU64) -> bool {
        if self.file.is_some() {
            return true;
        }
        use std::os::unix::fs::OpenOptionsExt;
        // Our own file: never through a symlink, and never anything but a regular file (a
        // FIFO planted here would block every append, and the loop with it).
        let opened = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
            .open(&self.path)
            .and_then(|f| match f.metadata() {
                Ok(m) if m.file_type().is_file() => Ok(f),
                Ok(_) => Err(io::Error::other(format!(
                    "{} is not a regular file; the journal is not written",
                    self.path.display()
                ))),
                Err(e) => Err(e),
            });
        match opened {
            Ok(f) => {
                self.good_len = f.metadata().map(|m| m.len()).unwrap_or(0);
                self.torn = self.good_len > 0;
                self.file = Some(f);
                true
            }
            Err(e) => {
                self.failed(&e, failures);
                false
            }
        }
    }

    fn truncate(&mut self, failures: &AtomicU64) {
        if !self.reopen(failures) {
            return;
        }
        let result = self.file.as_ref().map_or(Ok(()), |f| f.set_len(0));
        match result {
            Ok(()) => {
                self.good_len = 0;
                self.torn = false;
            }
            Err(e) => self.failed(&e, failures),
        }
    }

    fn append(&mut self, line: &str, failures: &AtomicU64) {
        if !self.reopen(failures) {
            return;
        }
        let Some(file) = self.file.as_mut() else { return };
        let result = (|| -> io::Result<()> {
            if self.torn {
                // A torn record from a crash or a full disk: cut it off so this record is
                // not glued onto it.
                cut_torn_tail(file, &mut self.good_len)?;
                self.torn = false;
            }
            file.write_all(line.as_bytes())?;
            file.sync_data()
        })();
        match result {
            Ok(()) => self.good_len += line.len() as u64,
            Err(e) => {
                // A partial write must not glue the next record onto a torn one.
                if file.set_len(self.good_len).is_err() {
                    self.torn = true;
                }
                self.failed(&e, failures);
            }
        }
    }

    fn failed(&mut self, e: &io::Error, failures: &AtomicU64) {
        let count = failures.fetch_add(1, Ordering::Relaxed) + 1;
        if self.warnings.ready() {
            log::error!(
                file = self.path.display().to_string(), failures = count;
                "cannot write the outbox journal {}: {e}; deliveries go on from memory",
                self.path.display()
            );
        }
    }
}

/// Cuts the file back to its last complete line.
fn cut_torn_tail(file: &mut File, good_len: &mut u64) -> io::Result<()> {
    use std::io::{Seek, SeekFrom};
    let len = file.metadata()?.len();
    if len == 0 {
        *good_len = 0;
        return Ok(());
    }
    let back = len.min(64 * 1024);
    file.seek(SeekFrom::Start(len - back))?;
    let mut tail = Vec::with_capacity(back as usize);
    Read::by_ref(file).take(back).read_to_end(&mut tail)?;
    let keep = match tail.iter().rposition(|&b| b == b'\n') {
        Some(i) => len - back + i as u64 + 1,
        None if back == len => 0,
        // No newline in the last 64 KiB: no record of ours is that long; drop the tail.
        None => len - back,
    };
    if keep != len {
        file.set_len(keep)?;
    }
    *good_len = keep;
    Ok(())
}

/// What replaying a journal did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Replayed {
    /// Records applied.
    pub(crate) records: usize,
    /// Lines that were not records (a torn tail).
    pub(crate) skipped: usize,
    /// The highest item id a record names (new ids must lie above it).
    pub(crate) max_id: Option<u64>,
}

/// A crash count read back is at most this (a hostile `n` is no fact to report).
const MAX_RECORDED_CRASHES: u32 = 1000;

/// Applies the journal of `state_dir` to the outbox read from the state file: items marked
/// done leave, the crash counts of attempts take their recorded value. Never fails: an
/// unreadable journal is logged and ignored (the state file alone is then the truth).
pub(crate) fn replay(state_dir: &Path, outbox: &mut Vec<OutboxItem>, id_limit: u64) -> Replayed {
    let path = journal_path(state_dir);
    let bytes = match read_journal(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Replayed::default(),
        Err(e) => {
            log::error!(file = path.display().to_string(); "cannot read the outbox journal {}: {e}; using the state file alone", path.display());
            return Replayed::default();
        }
    };
    apply(&bytes, outbox, id_limit)
}

fn read_journal(path: &Path) -> io::Result<Vec<u8>> {
    crate::localfile::read_regular(path, MAX_REPLAY_BYTES)
}

/// Applies journal bytes to an outbox (the pure part of [`replay`]). Linear in records plus
/// items. Ids at or above `id_limit` (only a hostile file has them) are ignored.
pub(crate) fn apply(bytes: &[u8], outbox: &mut Vec<OutboxItem>, id_limit: u64) -> Replayed {
    let mut replayed = Replayed::default();
    let index: HashMap<u64, usize> = outbox.iter().enumerate().map(|(i, it)| (it.id, i)).collect();
    let mut done = std::collections::HashSet::new();
    for line in bytes.split(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Ok(record) = serde_json::from_slice::<Record>(line) else {
            replayed.skipped += 1;
            continue;
        };
        if record.id >= id_limit {
            replayed.skipped += 1;
            continue;
        }
        replayed.records += 1;
        replayed.max_id = replayed.max_id.max(Some(record.id));
        let crashed = match record.op.as_str() {
            "done" => {
                done.insert(record.id);
                continue;
            }
            "attempt" => record.n.min(MAX_RECORDED_CRASHES),
            "tried" => 0,
            _ => {
                replayed.skipped += 1;
                continue;
            }
        };
        if let Some(&i) = index.get(&record.id) {
            outbox[i].crashed = crashed;
        }
    }
    outbox.retain(|i| !done.contains(&i.id));
    replayed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Severity;
    use crate::event::AlertEvent;

    fn item(id: u64) -> OutboxItem {
        OutboxItem::new(id, "c", AlertEvent::test_event("h", Severity::Warning, 1.0), 0.0)
    }

    fn dir(name: &str) -> PathBuf {
        crate::testutil::tempdir("journal", name)
    }

    #[test]
    fn replay_applies_attempts_outcomes_and_removals() {
        let d = dir("replay");
        let j = Journal::open(&d);
        j.attempt(1, 1);
        j.attempt(2, 1);
        j.tried(2);
        j.attempt(2, 1);
        j.done(2);
        j.attempt(3, 3);
        let mut outbox = vec![item(1), item(2), item(3), item(4)];
        let r = replay(&d, &mut outbox, u64::MAX);
        assert_eq!(r, Replayed { records: 6, skipped: 0, max_id: Some(3) });
        let got: Vec<(u64, u32)> = outbox.iter().map(|i| (i.id, i.crashed)).collect();
        assert_eq!(got, vec![(1, 1), (3, 3), (4, 0)]);
        // Replaying twice gives the same outbox: records are idempotent.
        let again = replay(&d, &mut outbox, u64::MAX);
        assert_eq!(again.records, 6);
        assert_eq!(outbox.iter().map(|i| (i.id, i.crashed)).collect::<Vec<_>>(), got);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_torn_tail_is_skipped_and_cut_before_the_next_append() {
        let d = dir("torn");
        std::fs::write(journal_path(&d), b"{\"op\":\"done\",\"id\":1}\n{\"op\":\"att").unwrap();
        let mut outbox = vec![item(1), item(2)];
        assert_eq!(
            replay(&d, &mut outbox, u64::MAX),
            Replayed { records: 1, skipped: 1, max_id: Some(1) }
        );
        let j = Journal::open(&d);
        j.done(2);
        let text = std::fs::read_to_string(journal_path(&d)).unwrap();
        assert_eq!(text, "{\"op\":\"done\",\"id\":1}\n{\"op\":\"done\",\"id\":2}\n");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn truncation_keeps_marks_of_attempts_in_flight() {
        let d = dir("trunc");
        let j = Journal::open(&d);
        j.attempt(1, 2);
        j.attempt(2, 1);
        j.tried(2);
        j.compact(|_| Ok(())).unwrap();
        assert_eq!(j.mark(1), Some(Mark::Attempting(2)));
        assert_eq!(j.mark(2), None);
        assert_eq!(std::fs::metadata(journal_path(&d)).unwrap().len(), 0);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn hostile_bytes_never_panic() {
        // A small deterministic fuzz: random bytes and mutated valid records.
        let valid = b"{\"op\":\"attempt\",\"id\":3,\"n\":2}\n{\"op\":\"done\",\"id\":1}\n".to_vec();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let cases = 20_000;
        for case in 0..cases {
            let mut bytes = valid.clone();
            if case % 2 == 0 {
                let len = (next() % 200) as usize;
                bytes = (0..len).map(|_| next() as u8).collect();
            } else {
                for _ in 0..(next() % 6) {
                    let at = (next() as usize) % bytes.len();
                    bytes[at] = next() as u8;
                }
            }
            let mut outbox = vec![item(1), item(3)];
            let r = apply(&bytes, &mut outbox, u64::MAX);
            assert!(r.records <= bytes.len());
        }
    }

    #[test]
    fn a_fifo_or_a_link_in_place_of_the_journal_is_never_written_and_never_blocks() {
        let d = dir("fifo");
        let path = journal_path(&d);
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo on a NUL-terminated path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let j = Journal::open(&d);
        for id in 0..5000 {
            j.attempt(id, 1); // would fill a pipe and block after ~1,900 records
        }
        assert!(j.failures() > 0, "the FIFO is refused, the failures counted");
        let mut outbox = vec![item(1)];
        let r = replay(&d, &mut outbox, u64::MAX);
        assert_eq!(r.records, 0, "replay refuses it too");
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/dev/null", &path).unwrap();
        let j = Journal::open(&d);
        j.done(1);
        assert!(j.failures() > 0, "never through a symlink");
        let _ = std::fs::remove_dir_all(&d);
    }
}
