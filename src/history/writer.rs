//! Writing the history file: created whole (allocated, so a full disk later cannot fail a
//! write into it). Raw rows are sealed in memory each tick and written together when their
//! slot ends (one or two `pwrite`s), then the slot row: a tick costs no system call, and a
//! kill loses at most the slot being written (a stop writes it). No fsync: power loss loses
//! at most the rows the kernel had not written back, each detected by its checksum.
//!
//! A file whose geometry differs from the config (other resolution, retention or series
//! count) is kept as `history.hwh.old` and a new one started; a change of `raw` or of the
//! interval alone keeps the file as it is. A file that cannot be read as history is set aside
//! as `history.hwh.corrupt` with an error in the log.
//!
//! Not for: deciding what to write (`recorder`) or reading for people (`read`).

use super::acc::Acc;
use super::format::{self, Entry, Geometry};
use super::read::{self, HistoryData};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the file already held when it was opened.
pub(crate) struct Recovered {
    /// The table: one entry per column (`None`: free).
    pub entries: Vec<Option<Entry>>,
    /// The last time each column had a value (0: never).
    pub last_seen: Vec<f64>,
    /// The latest slot with raw samples and its aggregates per column, so a restart in the
    /// middle of a slot continues it instead of starting it over.
    pub partial: Option<(u64, Vec<Acc>)>,
}

/// The open history file.
pub(crate) struct Writer {
    file: File,
    path: PathBuf,
    g: Geometry,
    /// Sealed raw rows not yet written, consecutive sequence numbers from `pending_first`.
    pending: Vec<u8>,
    pending_first: u32,
    pending_rows: u32,
    /// Rows `pending` may hold before they are written early.
    pending_cap: u32,
    slot_row: Vec<u8>,
    next_seq: u32,
    failures: u64,
    last_logged: Option<Instant>,
}

impl Writer {
    /// Opens (or creates) `state_dir/history.hwh` for `wanted`.
    pub fn open(
        state_dir: &Path,
        wanted: Geometry,
        now: f64,
    ) -> Result<(Writer, Recovered), String> {
        let path = read::path(state_dir);
        // A file that cannot be read (permissions, I/O error, not a regular file) is left
        // alone: no history this run. Only one that is read and is not history is set aside.
        let existing = match crate::localfile::read_regular(&path, read::MAX_FILE) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("cannot read the history file {e}")),
            Ok(bytes) => match HistoryData::from_bytes(bytes) {
                Ok(data) => Some(data),
                Err(e) => {
                    set_aside(&path, "corrupt", &e);
                    None
                }
            },
        };
        let data = match existing {
            Some(data) => {
                let g = data.geometry();
                let same = Geometry { raw_rows: wanted.raw_rows, ..g } == wanted;
                if same {
                    if g.raw_rows != wanted.raw_rows {
                        log::info!(
                            "history: keeping {} with its {} raw rows (\"raw\" or the interval changed; \
                             the new span applies when the file is recreated)",
                            path.display(),
                            g.raw_rows
                        );
                    }
                    data
                } else {
                    set_aside(&path, "old", "its geometry differs from the config");
                    create(&path, wanted, now)?;
                    HistoryData::open(&path)?
                }
            }
            None => {
                create(&path, wanted, now)?;
                HistoryData::open(&path)?
            }
        };
        let g = data.geometry();
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let recovered = recover(&data);
        let (next_seq, _) = data.latest_raw();
        Ok((
            Writer {
                file,
                path,
                g,
                pending: Vec::with_capacity(g.raw_row_len() * pending_cap(g) as usize),
                pending_first: next_seq,
                pending_rows: 0,
                pending_cap: pending_cap(g),
                slot_row: vec![0u8; g.slot_row_len()],
                next_seq,
                failures: 0,
                last_logged: None,
            },
            recovered,
        ))
    }

    /// The file's geometry.
    pub fn geometry(&self) -> Geometry {
        self.g
    }

    /// Writes failed since open.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// Names column `column` for `key` from `since` on.
    pub fn write_entry(&mut self, column: u32, key: &str, since: f64) {
        let entry = format::encode_entry(key, since);
        let at = self.g.entry_off(column);
        let r = self.file.write_all_at(&entry, at);
        self.outcome(r, "series table");
    }

    /// Seals one raw row (a value per column; NaN: none) in memory; it is written with the
    /// slot's row, or earlier when the memory for pending rows is full.
    pub fn write_raw(&mut self, unix_ts: f64, cells: &[f32]) {
        if self.g.raw_rows == 0 {
            return;
        }
        if self.pending_rows >= self.pending_cap {
            self.flush_raw();
        }
        let len = self.g.raw_row_len();
        let at = self.pending.len();
        self.pending.resize(at + len, 0);
        let row = &mut self.pending[at..at + len];
        for (c, v) in cells.iter().enumerate().take(self.g.columns as usize) {
            format::put_raw_cell(row, c, *v);
        }
        let seq = self.next_seq;
        if self.pending_rows == 0 {
            self.pending_first = seq;
        }
        self.next_seq = self.next_seq.wrapping_add(1).max(1);
        format::seal_raw_row(row, unix_ts, seq);
        self.pending_rows += 1;
    }

    /// Writes the pending raw rows: consecutive in the ring, so one `pwrite`, or two where
    /// the ring wraps.
    pub fn flush_raw(&mut self) {
        if self.pending_rows == 0 {
            return;
        }
        let len = self.g.raw_row_len();
        let ring = self.g.raw_rows;
        let first = self.pending_first % ring;
        let before_wrap = self.pending_rows.min(ring - first) as usize;
        let (a, b) = self.pending.split_at(before_wrap * len);
        let r = self.file.write_all_at(a, self.g.raw_row_off(self.pending_first));
        let r = r.and_then(|()| {
            if b.is_empty() { Ok(()) } else { self.file.write_all_at(b, self.g.raw_off()) }
        });
        self.pending.clear();
        self.pending_rows = 0;
        self.outcome(r, "raw row");
    }

    /// Writes the pending raw rows, then the row of slot `slot` from the aggregates per
    /// column.
    pub fn write_slot(&mut self, slot: u64, accs: &[Acc]) {
        self.flush_raw();
        let mut present = 0;
        for c in 0..self.g.columns as usize {
            let (cell, count) = accs.get(c).map_or(([f32::NAN; 4], 0), Acc::cell);
            present += u32::from(count > 0);
            format::put_slot_cell(&mut self.slot_row, c, cell, count);
        }
        format::seal_slot_row(&mut self.slot_row, slot.max(1), present);
        let r = self.file.write_all_at(&self.slot_row, self.g.slot_off(slot.max(1)));
        self.outcome(r, "slot row");
    }

    fn outcome(&mut self, r: std::io::Result<()>, what: &str) {
        if let Err(e) = r {
            self.failures += 1;
            if self.last_logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                self.last_logged = Some(Instant::now());
                log::error!(
                    path = self.path.display().to_string(), failures = self.failures;
                    "history: cannot write a {what}: {e}"
                );
            }
        }
    }
}

/// How many raw rows may wait in memory: a slot's worth is the norm; at most 256 KiB, and
/// never more than the ring holds.
fn pending_cap(g: Geometry) -> u32 {
    let by_bytes = (256 * 1024 / g.raw_row_len().max(1)).max(1) as u32;
    by_bytes.min(g.raw_rows.max(1))
}

/// Creates the file whole: header, empty table and rows, allocated on disk; written to a
/// temporary name and renamed, so a reader never sees half a header.
fn create(path: &Path, g: Geometry, now: f64) -> Result<(), String> {
    if let Some(free) = path.parent().and_then(free_bytes)
        && g.file_len() > free / 2
    {
        return Err(format!(
            "cannot create {}: it needs {} KiB, more than half of the {} KiB free on its file              system (lower history.retention or history.max_series, or free space)",
            path.display(),
            g.file_len() / 1024,
            free / 1024
        ));
    }
    let tmp = path.with_extension("hwh.tmp");
    let fail = |e: std::io::Error| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot create {}: {e}", path.display())
    };
    let file =
        OpenOptions::new().write(true).create(true).truncate(true).open(&tmp).map_err(fail)?;
    file.set_len(g.file_len()).map_err(fail)?;
    allocate(&file, g.file_len()).map_err(fail)?;
    file.write_all_at(&g.encode_header(now), 0).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)?;
    log::info!(
        path = path.display().to_string(), bytes = g.file_len(), series = g.columns,
        slots = g.slots, resolution_s = g.resolution, raw_rows = g.raw_rows;
        "history file created"
    );
    Ok(())
}

/// Bytes free to an unprivileged user on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain data; all zeroes is a valid value.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a statvfs we own.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Reserves the file's blocks, so writes into it cannot fail with "no space" later.
fn allocate(file: &File, len: u64) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid fd and a range within i64.
        let r = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len as libc::off_t) };
        // EOPNOTSUPP / EINVAL: a file system without allocation; the sparse file will do.
        if r != 0 && r != libc::EOPNOTSUPP && r != libc::EINVAL {
            return Err(std::io::Error::from_raw_os_error(r));
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, len);
    Ok(())
}

/// Moves a file aside as `history.hwh.<suffix>`, saying why.
fn set_aside(path: &Path, suffix: &str, why: &str) {
    let aside = path.with_extension(format!("hwh.{suffix}"));
    match std::fs::rename(path, &aside) {
        Ok(()) => log::warn!(
            path = path.display().to_string(), kept_as = aside.display().to_string();
            "history: {why}; the file was kept as {} and a new one started", aside.display()
        ),
        Err(e) => log::error!(
            path = path.display().to_string();
            "history: {why}, and it cannot be moved aside: {e}"
        ),
    }
}

/// Reads back the table, when each column was last seen, and the latest slot's aggregates:
/// per column from its raw rows or from its sealed row, whichever holds more samples (the
/// raw ring may hold only the end of a slot, or nothing at all with `"raw": "0s"`; a restart
/// must never write a slot back with fewer samples than the file had).
fn recover(data: &HistoryData) -> Recovered {
    let g = data.geometry();
    let entries: Vec<Option<Entry>> = (0..g.columns).map(|c| data.entry(c)).collect();
    let last_seen = data.last_seen();
    let (_, latest) = data.latest_raw();
    let partial = latest.or_else(|| data.latest_slot()).map(|slot| {
        let since = |c: usize| entries[c].as_ref().map_or(f64::INFINITY, |e| e.since);
        let mut accs = vec![Acc::default(); g.columns as usize];
        for (ts, row) in data.raw_rows_of_slot(slot) {
            for (c, acc) in accs.iter_mut().enumerate() {
                let v = format::raw_cell(row, c);
                if !v.is_nan() && ts >= since(c) {
                    acc.add_at(v as f64, ts);
                }
            }
        }
        if let Some(row) = data.slot_row_of(slot) {
            let end = (slot as f64 + 1.0) * g.resolution as f64;
            for (c, acc) in accs.iter_mut().enumerate() {
                let (cell, n) = format::slot_cell(row, c);
                let sealed = Acc::from_cell(cell, n, 0.0);
                let raw_count = acc.stats().map_or(0, |s| s.count);
                if n > raw_count && end > since(c) {
                    *acc = sealed;
                }
            }
        }
        (slot, accs)
    });
    Recovered { entries, last_seen, partial }
}
