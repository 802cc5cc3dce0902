//! Reading the history file, without a lock, while the daemon writes it: a row whose
//! checksum does not match (torn, or being written right now) is skipped, never trusted.
//! The table is read again after the rows: a column given to another series meanwhile is
//! left out of that read.
//! Slots whose row is missing but whose raw samples are still in the file (the current slot,
//! or one lost to a crash) are rebuilt from them and marked `partial`.
//!
//! Not for: writing (`history::writer`) or rendering (`commands::history`, reports).

use super::format::{self, Geometry};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The history file's name in `state_dir`.
pub(crate) const FILE_NAME: &str = "history.hwh";

/// The history file of a state directory.
pub(crate) fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

/// A history file read into memory.
pub(crate) struct HistoryData {
    g: Geometry,
    created: f64,
    bytes: Vec<u8>,
    /// The slot rows whose checksum matched, checked once: (row index, slot number).
    slot_rows: Vec<(u32, u64)>,
    /// The raw rows whose checksum matched: (row index, time, sequence).
    raw_index: Vec<(u32, f64, u32)>,
}

/// One series the file holds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SeriesColumn {
    /// Its column in the file.
    pub column: u32,
    /// The series key (`disk.used_percent{mount=/}`).
    pub key: String,
    /// Since when the column holds this series (Unix seconds).
    pub since: f64,
}

/// One slot of one series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct SlotPoint {
    /// The slot's start (Unix seconds).
    pub start: f64,
    /// Smallest value.
    pub min: f64,
    /// Mean.
    pub avg: f64,
    /// Largest value.
    pub max: f64,
    /// The slot's last value.
    pub last: f64,
    /// Samples aggregated.
    pub count: u32,
    /// Rebuilt from raw samples: the slot is still being written (or its row was lost).
    pub partial: bool,
}

/// An f32 as the f64 with the same shortest decimal form (`0.1f32` reads as 0.1, not
/// 0.10000000149011612), so what was stored as 0.1 prints as 0.1.
fn widen(v: f32) -> f64 {
    if !v.is_finite() || v == v.trunc() {
        return v as f64;
    }
    let mut buf = [0u8; 32];
    let mut w = std::io::Cursor::new(&mut buf[..]);
    use std::io::Write as _;
    if write!(w, "{v}").is_err() {
        return v as f64;
    }
    let n = w.position() as usize;
    std::str::from_utf8(&buf[..n]).ok().and_then(|t| t.parse().ok()).unwrap_or(v as f64)
}

#[cfg(test)]
pub(super) fn widen_for_test(v: f32) -> f64 {
    widen(v)
}

/// The largest history file read (the config refuses geometries beyond 1 GiB).
pub(super) const MAX_FILE: u64 = (1 << 30) + (1 << 20);

impl HistoryData {
    /// Reads a history file.
    pub fn open(path: &Path) -> Result<HistoryData, String> {
        let bytes = crate::localfile::read_regular(path, MAX_FILE).map_err(|e| e.to_string())?;
        let mut data =
            HistoryData::from_bytes(bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        // The table is read first and the rows after it: a column the writer gave to another
        // series in between would show the new series' rows under the old name. The table
        // read again now tells which columns changed; they are left out of this read.
        let g = data.g;
        let mut table = vec![0u8; format::ENTRY_LEN * g.columns as usize];
        let again = std::fs::File::open(path)
            .and_then(|f| std::os::unix::fs::FileExt::read_exact_at(&f, &mut table, g.table_off()));
        if again.is_ok() {
            data.forget_changed_entries(&table);
        }
        Ok(data)
    }

    /// Leaves out of this read every column whose table entry differs in `table_now` (the
    /// table as the file holds it after the rows were read).
    pub(super) fn forget_changed_entries(&mut self, table_now: &[u8]) {
        let at = self.g.table_off() as usize;
        let len = format::ENTRY_LEN * self.g.columns as usize;
        if table_now.len() != len {
            return;
        }
        let mine = &mut self.bytes[at..at + len];
        for (old, new) in
            mine.chunks_exact_mut(format::ENTRY_LEN).zip(table_now.chunks_exact(format::ENTRY_LEN))
        {
            if old != new {
                old.fill(0);
            }
        }
    }

    /// Parses the bytes of a history file.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<HistoryData, String> {
        let (g, created) = Geometry::decode_header(&bytes)?;
        if (bytes.len() as u64) < g.file_len() {
            return Err(format!(
                "the file is {} bytes, its header says {} (truncated)",
                bytes.len(),
                g.file_len()
            ));
        }
        let mut data =
            HistoryData { g, created, bytes, slot_rows: Vec::new(), raw_index: Vec::new() };
        data.slot_rows = (0..g.slots)
            .filter_map(|i| {
                let row = data.slot_row(i);
                let slot = format::slot_row_slot(row);
                (format::row_ok(row) && slot % g.slots as u64 == i as u64).then_some((i, slot))
            })
            .collect();
        data.raw_index = (0..g.raw_rows)
            .filter_map(|i| {
                let row = data.raw_row(i);
                if !format::row_ok(row) {
                    return None;
                }
                let (ts, seq) = format::raw_row_head(row);
                (ts.is_finite() && seq % g.raw_rows == i).then_some((i, ts, seq))
            })
            .collect();
        Ok(data)
    }

    /// The file's geometry.
    pub fn geometry(&self) -> Geometry {
        self.g
    }

    /// When the file was created (Unix seconds).
    pub fn created(&self) -> f64 {
        self.created
    }

    /// Seconds per slot.
    pub fn resolution(&self) -> u32 {
        self.g.resolution
    }

    /// Every series in the file, by column.
    pub fn series(&self) -> Vec<SeriesColumn> {
        (0..self.g.columns)
            .filter_map(|c| {
                let at = self.g.entry_off(c) as usize;
                let e = format::decode_entry(&self.bytes[at..at + format::ENTRY_LEN])?;
                Some(SeriesColumn { column: c, key: e.key, since: e.since })
            })
            .collect()
    }

    fn since_of(&self, column: u32) -> Option<f64> {
        if column >= self.g.columns {
            return None;
        }
        let at = self.g.entry_off(column) as usize;
        format::decode_entry(&self.bytes[at..at + format::ENTRY_LEN]).map(|e| e.since)
    }

    fn slot_row(&self, index: u32) -> &[u8] {
        let at = (self.g.slots_off() + self.g.slot_row_len() as u64 * index as u64) as usize;
        &self.bytes[at..at + self.g.slot_row_len()]
    }

    fn raw_row(&self, index: u32) -> &[u8] {
        let at = (self.g.raw_off() + self.g.raw_row_len() as u64 * index as u64) as usize;
        &self.bytes[at..at + self.g.raw_row_len()]
    }

    /// The valid raw rows: (time, sequence, row).
    fn raw_rows(&self) -> impl Iterator<Item = (f64, u32, &[u8])> {
        self.raw_index.iter().map(move |&(i, ts, seq)| (ts, seq, self.raw_row(i)))
    }

    /// The valid slot rows: (slot number, row).
    fn slot_rows(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.slot_rows.iter().map(move |&(i, slot)| (slot, self.slot_row(i)))
    }

    /// The slots of `column` that overlap `[since, until]`, by start, ascending.
    pub fn slots(&self, column: u32, since: f64, until: f64) -> Vec<SlotPoint> {
        let mut out: BTreeMap<u64, SlotPoint> = BTreeMap::new();
        let res = self.g.resolution as f64;
        self.visit_slots(&[column], since, until, widen, |_, p| {
            out.insert((p.start / res).round() as u64, p);
        });
        out.into_values().collect()
    }

    /// Calls `f(i, slot)` for every slot of `columns[i]` that overlaps `[since, until]`, in no
    /// particular order, with cells widened by `conv`. One pass over the file however many
    /// columns are asked for (each row's checksum is checked once), where [`Self::slots`]
    /// per column would read the whole file once per column.
    pub fn visit_slots(
        &self,
        columns: &[u32],
        since: f64,
        until: f64,
        conv: fn(f32) -> f64,
        mut f: impl FnMut(usize, SlotPoint),
    ) {
        let owners: Vec<Option<f64>> = columns.iter().map(|&c| self.since_of(c)).collect();
        let res = self.g.resolution as f64;
        // Per ring position: the slot its sealed row holds (if valid), and per asked column
        // whether that row had a value (so raw rows rebuild only what no row holds).
        let n = self.g.slots as usize;
        let mut sealed: Vec<Option<u64>> = vec![None; n];
        let mut had = vec![false; n * columns.len()];
        for &(i, slot) in &self.slot_rows {
            let row = self.slot_row(i);
            let start = slot as f64 * res;
            if start + res <= since || start > until {
                continue;
            }
            sealed[i as usize] = Some(slot);
            for (k, (&c, owner)) in columns.iter().zip(&owners).enumerate() {
                let Some(owner_since) = *owner else { continue };
                if start + res <= owner_since {
                    continue;
                }
                let ([min, avg, max, last], count) = format::slot_cell(row, c as usize);
                if count == 0 || avg.is_nan() {
                    continue;
                }
                had[i as usize * columns.len() + k] = true;
                let (min, avg, max, last) = (conv(min), conv(avg), conv(max), conv(last));
                f(k, SlotPoint { start, min, avg, max, last, count, partial: false });
            }
        }
        // Slots without a row, rebuilt from the raw samples still in the file.
        let mut partial: BTreeMap<(usize, u64), super::Acc> = BTreeMap::new();
        for (ts, _, row) in self.raw_rows() {
            let slot = self.g.slot_of(ts);
            let start = slot as f64 * res;
            if start + res <= since || start > until {
                continue;
            }
            let at = (slot % self.g.slots as u64) as usize;
            for (k, (&c, owner)) in columns.iter().zip(&owners).enumerate() {
                let v = format::raw_cell(row, c as usize);
                let Some(owner_since) = *owner else { continue };
                if v.is_nan() || ts < owner_since {
                    continue;
                }
                if sealed[at] == Some(slot) && had[at * columns.len() + k] {
                    continue;
                }
                partial.entry((k, slot)).or_default().add_at(conv(v), ts);
            }
        }
        for ((k, slot), acc) in partial {
            if let Some(s) = acc.stats() {
                let start = slot as f64 * res;
                let (min, avg, max, last, count) = (s.min, s.avg, s.max, s.last, s.count);
                f(k, SlotPoint { start, min, avg, max, last, count, partial: true });
            }
        }
    }

    /// The raw samples of `column` in `[since, until]`, by time.
    pub fn raw(&self, column: u32, since: f64, until: f64) -> Vec<(f64, f64)> {
        let Some(owner_since) = self.since_of(column) else { return Vec::new() };
        let c = column as usize;
        let mut out: Vec<(f64, f64)> = self
            .raw_rows()
            .filter(|(ts, _, _)| *ts >= owner_since && *ts >= since && *ts <= until)
            .filter_map(|(ts, _, row)| {
                let v = format::raw_cell(row, c);
                (!v.is_nan()).then_some((ts, widen(v)))
            })
            .collect();
        out.sort_by(|a, b| a.0.total_cmp(&b.0));
        out
    }

    /// The next raw sequence number and the rows of the latest raw slot, for the writer's
    /// recovery: (next sequence, latest slot, its rows' times and cells).
    pub(super) fn latest_raw(&self) -> (u32, Option<u64>) {
        let latest = self.raw_rows().max_by_key(|(_, seq, _)| *seq);
        match latest {
            Some((ts, seq, _)) => (seq.wrapping_add(1).max(1), Some(self.g.slot_of(ts))),
            None => (1, None),
        }
    }

    /// Raw rows of slot `slot`, in sequence order: (time, row).
    pub(super) fn raw_rows_of_slot(&self, slot: u64) -> Vec<(f64, &[u8])> {
        let mut rows: Vec<(u32, f64, &[u8])> = self
            .raw_rows()
            .filter(|(ts, _, _)| self.g.slot_of(*ts) == slot)
            .map(|(ts, seq, row)| (seq, ts, row))
            .collect();
        rows.sort_by_key(|r| r.0);
        rows.into_iter().map(|(_, ts, row)| (ts, row)).collect()
    }

    /// The latest slot with a sealed row.
    pub(super) fn latest_slot(&self) -> Option<u64> {
        self.slot_rows.iter().map(|&(_, slot)| slot).max()
    }

    /// The sealed row of slot `slot`, if the file holds it.
    pub(super) fn slot_row_of(&self, slot: u64) -> Option<&[u8]> {
        self.slot_rows().find(|(s, _)| *s == slot).map(|(_, row)| row)
    }

    /// The last time each column had a value (slot end or raw time; 0: never).
    pub(super) fn last_seen(&self) -> Vec<f64> {
        let mut last = vec![0.0f64; self.g.columns as usize];
        let res = self.g.resolution as f64;
        for (slot, row) in self.slot_rows() {
            let end = (slot as f64 + 1.0) * res;
            for (c, l) in last.iter_mut().enumerate() {
                if end > *l && format::slot_cell(row, c).1 > 0 {
                    *l = end;
                }
            }
        }
        for (ts, _, row) in self.raw_rows() {
            for (c, l) in last.iter_mut().enumerate() {
                if ts > *l && !format::raw_cell(row, c).is_nan() {
                    *l = ts;
                }
            }
        }
        last
    }

    /// The raw table entry bytes of a column.
    pub(super) fn entry(&self, column: u32) -> Option<format::Entry> {
        let at = self.g.entry_off(column) as usize;
        format::decode_entry(&self.bytes[at..at + format::ENTRY_LEN])
    }
}
