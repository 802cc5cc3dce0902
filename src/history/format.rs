//! The history file's layout: a header, a series table, a ring of slot rows and a ring of raw
//! rows, all of fixed size, decided when the file is created.
//!
//! ```text
//! header   4096 B   magic "HWHIST01", geometry, CRC-32
//! table    max_series × 256 B   per column: since (f64), key length, CRC-32, key (≤ 240 B)
//! slots    slots × (16 + 20·max_series) B   slot number (u64), count, CRC-32, then per
//!          column min, avg, max, last (f32 little-endian; NaN: no value) and the number
//!          of samples (u32)
//! raw      raw_rows × (16 + 4·max_series) B   time (f64), sequence (u32), CRC-32, then
//!          one f32 per column
//! ```
//! A slot row sits at `slot % slots`, a raw row at `seq % raw_rows`. Every row and table
//! entry carries a CRC-32 over its bytes, so a torn write (a kill mid-`pwrite`, power loss)
//! loses that row only and a reader that races the writer skips the row being written.
//! A column's entry says since when it belongs to its series: rows older than that are
//! another series' and are ignored.
//!
//! Not for: deciding what to write (`history::writer`) or queries (`history::read`).

use crate::config::HistoryFileConfig;
use std::time::Duration;

/// The file's first eight bytes.
pub(crate) const MAGIC: &[u8; 8] = b"HWHIST01";
/// Layout version.
pub(crate) const VERSION: u32 = 1;
/// Bytes of the header block.
pub(crate) const HEADER_LEN: u64 = 4096;
/// Bytes of one series table entry.
pub(crate) const ENTRY_LEN: usize = 256;
/// The longest series key a table entry holds.
pub(crate) const MAX_KEY: usize = ENTRY_LEN - 16;
/// Bytes before the cells of a row.
pub(crate) const ROW_HEADER: usize = 16;
/// Bytes of one slot cell: min, avg, max, last, count.
pub(crate) const SLOT_CELL: usize = 20;
/// Bytes of one raw cell.
pub(crate) const RAW_CELL: usize = 4;

/// The fixed shape of one history file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Seconds per slot.
    pub resolution: u32,
    /// Slot rows.
    pub slots: u32,
    /// Raw rows.
    pub raw_rows: u32,
    /// Series columns.
    pub columns: u32,
}

impl Geometry {
    /// The geometry a config asks for, for samples every `interval`.
    pub fn new(config: &HistoryFileConfig, interval: Duration) -> Geometry {
        Geometry {
            resolution: config.resolution.as_secs().clamp(1, u32::MAX as u64) as u32,
            slots: config.slots().min(u32::MAX as u64) as u32,
            raw_rows: config.raw_rows(interval).min(u32::MAX as u64) as u32,
            columns: config.max_series,
        }
    }

    /// Offset of the series table.
    pub fn table_off(&self) -> u64 {
        HEADER_LEN
    }

    /// Bytes of one slot row.
    pub fn slot_row_len(&self) -> usize {
        ROW_HEADER + SLOT_CELL * self.columns as usize
    }

    /// Bytes of one raw row.
    pub fn raw_row_len(&self) -> usize {
        ROW_HEADER + RAW_CELL * self.columns as usize
    }

    /// Offset of the first slot row.
    pub fn slots_off(&self) -> u64 {
        self.table_off() + ENTRY_LEN as u64 * self.columns as u64
    }

    /// Offset of the first raw row.
    pub fn raw_off(&self) -> u64 {
        self.slots_off() + self.slot_row_len() as u64 * self.slots as u64
    }

    /// The file's length.
    pub fn file_len(&self) -> u64 {
        self.raw_off() + self.raw_row_len() as u64 * self.raw_rows as u64
    }

    /// Offset of table entry `column`.
    pub fn entry_off(&self, column: u32) -> u64 {
        self.table_off() + ENTRY_LEN as u64 * column as u64
    }

    /// Offset of the row for slot number `slot`.
    pub fn slot_off(&self, slot: u64) -> u64 {
        self.slots_off() + self.slot_row_len() as u64 * (slot % self.slots as u64)
    }

    /// Offset of the raw row with sequence number `seq`.
    pub fn raw_row_off(&self, seq: u32) -> u64 {
        self.raw_off() + self.raw_row_len() as u64 * (seq % self.raw_rows.max(1)) as u64
    }

    /// The slot number a time falls in.
    pub fn slot_of(&self, unix_ts: f64) -> u64 {
        (unix_ts.max(0.0) / self.resolution as f64).floor() as u64
    }

    /// The header block.
    pub fn encode_header(&self, created: f64) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN as usize];
        b[0..8].copy_from_slice(MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&self.resolution.to_le_bytes());
        b[16..20].copy_from_slice(&self.slots.to_le_bytes());
        b[20..24].copy_from_slice(&self.raw_rows.to_le_bytes());
        b[24..28].copy_from_slice(&self.columns.to_le_bytes());
        b[28..36].copy_from_slice(&created.to_le_bytes());
        b[36..44].copy_from_slice(&self.file_len().to_le_bytes());
        let crc = crc32(&b[0..44]);
        b[44..48].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Reads a header block: the geometry and the creation time.
    pub fn decode_header(b: &[u8]) -> Result<(Geometry, f64), String> {
        if b.len() < 48 || &b[0..8] != MAGIC {
            return Err("not a hostwatch history file (bad magic)".into());
        }
        if crc32(&b[0..44]) != u32_at(b, 44) {
            return Err("the header's checksum does not match".into());
        }
        let version = u32_at(b, 8);
        if version != VERSION {
            return Err(format!("layout version {version} (this hostwatch reads {VERSION})"));
        }
        let g = Geometry {
            resolution: u32_at(b, 12),
            slots: u32_at(b, 16),
            raw_rows: u32_at(b, 20),
            columns: u32_at(b, 24),
        };
        if g.resolution == 0 || g.slots == 0 || g.columns == 0 || g.columns > 1 << 16 {
            return Err("implausible geometry in the header".into());
        }
        if u64_at(b, 36) != g.file_len() {
            return Err("the header's length does not match its geometry".into());
        }
        Ok((g, f64_at(b, 28)))
    }
}

/// One series table entry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    /// The series key (`disk.used_percent{mount=/}`).
    pub key: String,
    /// Since when the column holds this series (Unix seconds).
    pub since: f64,
}

/// Encodes a table entry (`key` must fit: at most [`MAX_KEY`] bytes).
pub(crate) fn encode_entry(key: &str, since: f64) -> [u8; ENTRY_LEN] {
    let mut b = [0u8; ENTRY_LEN];
    let k = key.as_bytes();
    debug_assert!(k.len() <= MAX_KEY);
    let k = &k[..k.len().min(MAX_KEY)];
    b[0..8].copy_from_slice(&since.to_le_bytes());
    b[8..10].copy_from_slice(&(k.len() as u16).to_le_bytes());
    b[16..16 + k.len()].copy_from_slice(k);
    let crc = entry_crc(&b);
    b[12..16].copy_from_slice(&crc.to_le_bytes());
    b
}

fn entry_crc(b: &[u8]) -> u32 {
    let len = (u16::from_le_bytes([b[8], b[9]]) as usize).min(MAX_KEY);
    let mut c = Crc::new();
    c.update(&b[0..12]);
    c.update(&b[16..16 + len]);
    c.finish()
}

/// Decodes a table entry; `None` when empty, torn or not UTF-8.
pub(crate) fn decode_entry(b: &[u8]) -> Option<Entry> {
    let len = u16::from_le_bytes([b[8], b[9]]) as usize;
    if len == 0 || len > MAX_KEY || entry_crc(b) != u32_at(b, 12) {
        return None;
    }
    let key = std::str::from_utf8(&b[16..16 + len]).ok()?.to_owned();
    let since = f64_at(b, 0);
    since.is_finite().then_some(Entry { key, since })
}

/// Seals a slot row: `row[0..8]` slot number, `[8..12]` values present, `[12..16]` CRC.
pub(crate) fn seal_slot_row(row: &mut [u8], slot: u64, present: u32) {
    row[0..8].copy_from_slice(&slot.to_le_bytes());
    row[8..12].copy_from_slice(&present.to_le_bytes());
    let crc = row_crc(row);
    row[12..16].copy_from_slice(&crc.to_le_bytes());
}

/// Seals a raw row: `row[0..8]` time, `[8..12]` sequence, `[12..16]` CRC.
pub(crate) fn seal_raw_row(row: &mut [u8], unix_ts: f64, seq: u32) {
    row[0..8].copy_from_slice(&unix_ts.to_le_bytes());
    row[8..12].copy_from_slice(&seq.to_le_bytes());
    let crc = row_crc(row);
    row[12..16].copy_from_slice(&crc.to_le_bytes());
}

/// True when a row's checksum matches (a never-written, all-zero row does not).
pub(crate) fn row_ok(row: &[u8]) -> bool {
    row.len() >= ROW_HEADER && row[0..8] != [0u8; 8] && row_crc(row) == u32_at(row, 12)
}

fn row_crc(row: &[u8]) -> u32 {
    let mut c = Crc::new();
    c.update(&row[0..12]);
    c.update(&row[16..]);
    c.finish()
}

/// Slot number of a sealed slot row.
pub(crate) fn slot_row_slot(row: &[u8]) -> u64 {
    u64_at(row, 0)
}

/// Time and sequence of a sealed raw row.
pub(crate) fn raw_row_head(row: &[u8]) -> (f64, u32) {
    (f64_at(row, 0), u32_at(row, 8))
}

/// Writes one slot cell: min, avg, max, last and the number of samples.
pub(crate) fn put_slot_cell(row: &mut [u8], column: usize, cell: [f32; 4], count: u32) {
    let at = ROW_HEADER + SLOT_CELL * column;
    for (i, v) in cell.iter().enumerate() {
        row[at + 4 * i..at + 4 * i + 4].copy_from_slice(&v.to_le_bytes());
    }
    row[at + 16..at + 20].copy_from_slice(&count.to_le_bytes());
}

/// Reads one slot cell: min, avg, max, last, and the number of samples.
pub(crate) fn slot_cell(row: &[u8], column: usize) -> ([f32; 4], u32) {
    let at = ROW_HEADER + SLOT_CELL * column;
    let v = [f32_at(row, at), f32_at(row, at + 4), f32_at(row, at + 8), f32_at(row, at + 12)];
    (v, u32_at(row, at + 16))
}

/// Writes one raw cell.
pub(crate) fn put_raw_cell(row: &mut [u8], column: usize, value: f32) {
    let at = ROW_HEADER + RAW_CELL * column;
    row[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

/// Reads one raw cell.
pub(crate) fn raw_cell(row: &[u8], column: usize) -> f32 {
    f32_at(row, ROW_HEADER + RAW_CELL * column)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn f64_at(b: &[u8], at: usize) -> f64 {
    f64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn f32_at(b: &[u8], at: usize) -> f32 {
    f32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// CRC-32 (IEEE 802.3, as zlib) of `bytes`.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut c = Crc::new();
    c.update(bytes);
    c.finish()
}

/// An incremental CRC-32.
struct Crc(u32);

impl Crc {
    fn new() -> Crc {
        Crc(!0)
    }

    fn update(&mut self, bytes: &[u8]) {
        let mut c = self.0;
        for &b in bytes {
            c = TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
        }
        self.0 = c;
    }

    fn finish(&self) -> u32 {
        !self.0
    }
}

static TABLE: [u32; 256] = make_table();

const fn make_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_zlib() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn the_default_geometry_and_its_size() {
        let g = Geometry::new(&HistoryFileConfig::default(), Duration::from_secs(5));
        assert_eq!((g.resolution, g.slots, g.raw_rows, g.columns), (60, 1440, 720, 256));
        let header = g.encode_header(1.0e9);
        assert_eq!(Geometry::decode_header(&header), Ok((g, 1.0e9)));
        let mut bad = header.clone();
        bad[20] ^= 1;
        assert!(Geometry::decode_header(&bad).is_err());
    }

    #[test]
    fn entries_and_rows_detect_tearing() {
        let e = encode_entry("disk.used_percent{mount=/}", 5.0);
        assert_eq!(
            decode_entry(&e),
            Some(Entry { key: "disk.used_percent{mount=/}".into(), since: 5.0 })
        );
        let mut torn = e;
        torn[20] ^= 0x40;
        assert_eq!(decode_entry(&torn), None);
        assert_eq!(decode_entry(&[0u8; ENTRY_LEN]), None);

        let mut row = vec![0u8; ROW_HEADER + SLOT_CELL * 2];
        assert!(!row_ok(&row));
        put_slot_cell(&mut row, 1, [1.0, 2.0, 3.0, 4.0], 7);
        seal_slot_row(&mut row, 42, 1);
        assert!(row_ok(&row));
        assert_eq!(slot_row_slot(&row), 42);
        assert_eq!(slot_cell(&row, 1), ([1.0, 2.0, 3.0, 4.0], 7));
        row[ROW_HEADER + 20] ^= 1;
        assert!(!row_ok(&row));
    }
}
