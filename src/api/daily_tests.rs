//! Tests of the 24-hour charts: bucket shapes, count-weighted bucket means over sealed and
//! partial slots, a missing, corrupt, oversized or turned-off file, the cache's refresh per resolution,
//! the page's fourth column with escaped titles, and (ignored, prints) the cost of a refresh
//! over a full default-sized file.

use super::*;
use crate::api::view::{Recent, SeriesRow};
use crate::history::format::{self, Geometry};
use crate::metrics::Metric;

const HOSTILE: &str = "disk.used_percent{mount=/<script>x</script>}";
/// A multiple of 900 and of 3600.
const T0: f64 = 1_800_000_000.0;

/// A history file's bytes: `entries` (key, since) by column, sealed `slots` (slot number,
/// cells by column: [min, avg, max, last], count) and `raw` rows (time, values by column).
struct File {
    g: Geometry,
    bytes: Vec<u8>,
    seq: u32,
}

impl File {
    fn new(g: Geometry, entries: &[(&str, f64)]) -> File {
        let mut bytes = vec![0u8; g.file_len() as usize];
        bytes[..format::HEADER_LEN as usize].copy_from_slice(&g.encode_header(T0 - 86_400.0));
        for (c, (key, since)) in entries.iter().enumerate() {
            let at = g.entry_off(c as u32) as usize;
            bytes[at..at + format::ENTRY_LEN].copy_from_slice(&format::encode_entry(key, *since));
        }
        File { g, bytes, seq: 1 }
    }

    fn slot(&mut self, slot: u64, cells: &[(usize, f32, u32)]) {
        let at = self.g.slot_off(slot) as usize;
        let row = &mut self.bytes[at..at + self.g.slot_row_len()];
        row.fill(0);
        for &(c, avg, count) in cells {
            format::put_slot_cell(row, c, [avg, avg, avg, avg], count);
        }
        format::seal_slot_row(row, slot, cells.len() as u32);
    }

    fn raw(&mut self, ts: f64, cells: &[(usize, f32)]) {
        let at = self.g.raw_row_off(self.seq) as usize;
        let row = &mut self.bytes[at..at + self.g.raw_row_len()];
        row.fill(0);
        for c in 0..self.g.columns as usize {
            format::put_raw_cell(row, c, f32::NAN);
        }
        for &(c, v) in cells {
            format::put_raw_cell(row, c, v);
        }
        format::seal_raw_row(row, ts, self.seq);
        self.seq += 1;
    }

    fn data(&self) -> HistoryData {
        HistoryData::from_bytes(self.bytes.clone()).unwrap()
    }
}

fn geometry(columns: u32) -> Geometry {
    Geometry { resolution: 60, slots: 1440, raw_rows: 60, columns }
}

fn view(keys: &[(Metric, &str)]) -> View {
    let mut v = View::new("web-01", "t.json", Duration::from_secs(5));
    for (m, key) in keys {
        v.series.push(SeriesRow {
            metric: *m,
            label: key.split_once("mount=").map(|(_, l)| Arc::from(l.trim_end_matches('}'))),
            key: Arc::from(*key),
            live: true,
            value: 1.0,
            recent: Recent::new(),
        });
    }
    v
}

#[test]
fn bucket_shapes_cover_a_day_in_at_most_96_points() {
    assert_eq!(shape(60), (900.0, 96));
    assert_eq!(shape(1), (900.0, 96));
    assert_eq!(shape(0), (900.0, 96));
    assert_eq!(shape(300), (900.0, 96));
    assert_eq!(shape(3600), (3600.0, 24));
    assert_eq!(shape(7), (903.0, 96)); // whole slots per bucket
    assert_eq!(shape(86_400 * 2), (172_800.0, 1));
}

#[test]
fn buckets_are_count_weighted_means_of_sealed_and_partial_slots() {
    let mut f = File::new(geometry(3), &[("cpu.usage", 0.0), ("mem.used", 0.0), ("x", 0.0)]);
    let now = T0 + 450.0; // inside the bucket [T0, T0 + 900): the last one
    let since = T0 + 900.0 - 86_400.0;
    // Bucket b (0..95) holds cpu.usage = b in its first slot (count 6).
    for b in 0..96u64 {
        let slot = (since as u64 + b * 900) / 60;
        f.slot(slot, &[(0, b as f32, 6), (2, 1.0, 1)]);
    }
    // Bucket 10: a second slot, avg 100 with count 2: (10·6 + 100·2) / 8 = 32.5.
    f.slot((since as u64 + 10 * 900) / 60 + 1, &[(0, 100.0, 2)]);
    // Before the window: ignored.
    f.slot((since as u64 - 60) / 60, &[(0, 1000.0, 6)]); // its ring place is in bucket 95
    // The current slot, only raw: mem.used 4 and 8 → 6; its sealed cpu slot stays as it is.
    f.raw(T0 + 60.0, &[(1, 4.0)]);
    f.raw(T0 + 70.0, &[(1, 8.0), (0, 50.0)]);
    let day = bucket(&f.data(), now, |k| k != "x");
    assert_eq!((day.width, day.buckets, day.end), (900.0, 96, T0 + 900.0));
    assert_eq!(day.series.len(), 2, "only the series asked for");
    let cpu = &day.series["cpu.usage"].avg;
    assert_eq!(cpu.len(), 96);
    for (b, v) in cpu.iter().enumerate() {
        let want = match b {
            10 => 32.5,
            // The last bucket: slot T0 sealed (95, count 6) plus the raw 50 in slot T0+60.
            95 => (95.0 * 6.0 + 50.0) / 7.0,
            _ => b as f32,
        };
        assert!((v - want).abs() < 1e-4, "bucket {b}: {v} != {want}");
    }
    let mem = &day.series["mem.used"].avg;
    assert!(mem[..95].iter().all(|v| v.is_nan()), "no mem.used before the raw rows");
    assert_eq!(mem[95], 6.0);
}

#[test]
fn a_series_in_two_columns_fills_one_chart_and_older_rows_are_not_its() {
    // Column 1 held another series until T0 - 3600, then this one.
    let mut f = File::new(geometry(2), &[("cpu.usage", 0.0), ("load.1m", T0 - 3600.0)]);
    f.slot((T0 as u64 - 7200) / 60, &[(1, 9.0, 1)]); // another series' row
    f.slot((T0 as u64 - 1800) / 60, &[(1, 2.0, 1)]);
    let day = bucket(&f.data(), T0, |_| true);
    let load = &day.series["load.1m"].avg;
    assert_eq!(load.iter().filter(|v| v.is_finite()).count(), 1, "{load:?}");
    assert_eq!(load[94], 2.0);
    assert!(day.series["cpu.usage"].avg.iter().all(|v| v.is_nan()));
}

#[test]
fn missing_corrupt_and_turned_off_files_are_a_note_not_an_error() {
    let dir = crate::testutil::tempdir("api", "daily_missing");
    let path = dir.join("history.hwh");
    let v = view(&[(Metric::CpuUsage, "cpu.usage")]);
    let now = Instant::now();
    let charts = Cache::new(Some(path.clone())).charts(&v, now, T0);
    match &*charts {
        Charts::Unavailable(why) => assert!(why.starts_with("no history file yet"), "{why}"),
        other => panic!("{other:?}"),
    }
    std::fs::write(&path, b"not a history file at all").unwrap();
    let charts = Cache::new(Some(path.clone())).charts(&v, now, T0);
    match &*charts {
        Charts::Unavailable(why) => {
            assert!(why.starts_with("the history file cannot be read"), "{why}");
            assert!(why.contains("bad magic"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    // A good header, cut short.
    let f = File::new(geometry(2), &[("cpu.usage", 0.0)]);
    std::fs::write(&path, &f.bytes[..f.bytes.len() / 2]).unwrap();
    match &*Cache::new(Some(path.clone())).charts(&v, now, T0) {
        Charts::Unavailable(why) => assert!(why.contains("truncated"), "{why}"),
        other => panic!("{other:?}"),
    }
    // Too large to read once a minute (sparse: no disk used).
    std::fs::File::create(&path).unwrap().set_len(MAX_FILE + 1).unwrap();
    match &*Cache::new(Some(path.clone())).charts(&v, now, T0) {
        Charts::Unavailable(why) => {
            assert!(why.contains("is 67108865 bytes, more than the 64 MiB"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    let cache = Cache::new(None);
    match &*cache.charts(&v, now, T0) {
        Charts::Unavailable(why) => assert!(why.contains("off"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(cache.reads(), 0, "a file turned off is never read");
}

#[test]
fn the_cache_reads_at_most_once_per_resolution_and_again_after_it() {
    let dir = crate::testutil::tempdir("api", "daily_refresh");
    let path = dir.join("history.hwh");
    let v = view(&[(Metric::CpuUsage, "cpu.usage")]);
    let cache = Cache::new(Some(path.clone()));
    let t = Instant::now();
    assert!(matches!(*cache.charts(&v, t, T0), Charts::Unavailable(_)));
    // The file appears; a failed read is retried after RETRY only.
    let mut f = File::new(geometry(1), &[("cpu.usage", 0.0)]);
    f.slot(T0 as u64 / 60 - 1, &[(0, 40.0, 1)]);
    std::fs::write(&path, &f.bytes).unwrap();
    assert!(matches!(*cache.charts(&v, t + Duration::from_secs(59), T0), Charts::Unavailable(_)));
    assert_eq!(cache.reads(), 1);
    let t1 = t + RETRY;
    let first = cache.charts(&v, t1, T0);
    assert_eq!(cache.reads(), 2);
    let Charts::Ready(day) = &*first else { panic!("{first:?}") };
    assert_eq!(day.series["cpu.usage"].avg[95], 40.0);
    // Within the file's resolution (60 s): the same charts, no read, even if the file moved on.
    f.slot(T0 as u64 / 60, &[(0, 80.0, 1)]);
    std::fs::write(&path, &f.bytes).unwrap();
    let again = cache.charts(&v, t1 + Duration::from_secs(59), T0 + 59.0);
    assert!(Arc::ptr_eq(&first, &again));
    assert_eq!(cache.reads(), 2);
    // Older than the resolution: read again, and the new slot is in.
    let later = cache.charts(&v, t1 + Duration::from_secs(60), T0 + 60.0);
    assert_eq!(cache.reads(), 3);
    let Charts::Ready(day) = &*later else { panic!("{later:?}") };
    assert_eq!(day.end, T0 + 900.0);
    assert_eq!(day.series["cpu.usage"].avg[94], 40.0);
    assert_eq!(day.series["cpu.usage"].avg[95], 80.0);
    // Turned off at a reload: no chart at the next page, without a read.
    cache.set_path(None);
    let off = cache.charts(&v, t1 + Duration::from_secs(61), T0 + 61.0);
    assert!(matches!(&*off, Charts::Unavailable(w) if w.contains("off")));
    assert_eq!(cache.reads(), 3);
}

#[test]
fn the_page_draws_a_day_column_with_escaped_titles_or_a_note() {
    let keys = [(Metric::CpuUsage, "cpu.usage"), (Metric::DiskUsedPercent, HOSTILE)];
    let v = view(&keys);
    let mut f = File::new(geometry(2), &[("cpu.usage", 0.0), (HOSTILE, 0.0)]);
    for b in 0..96u64 {
        f.slot((T0 as u64 + 900 - 86_400 + b * 900) / 60, &[(0, 20.0, 1), (1, 80.0, 1)]);
    }
    let day = bucket(&f.data(), T0 + 1.0, |_| true);
    let page = crate::api::page::render_with(&v, Some(&Charts::Ready(day)), Instant::now(), T0);
    assert!(page.contains("<th>last 24 h</th>"), "{page}");
    assert!(page.contains("<title>cpu.usage · last 24 h</title>"), "{page}");
    assert!(
        page.contains(
            "<title>disk.used_percent{mount=/&lt;script&gt;x&lt;/script&gt;} · last 24 h</title>"
        ),
        "{page}"
    );
    assert!(!page.contains("<script"));
    // 96 points, 20 % on a 0..100 axis: y = 5 + 0.8 · 30 = 29.0, from x 0 to 140.
    let at = page.find("<title>cpu.usage · last 24 h</title>").unwrap();
    let d = &page[at..];
    let d = &d[d.find(" d=\"").unwrap() + 4..];
    let d = &d[..d.find('"').unwrap()];
    assert!(d.starts_with("M0.0 29.0L1.5 29.0L2.9 29.0"), "{d}");
    assert!(d.ends_with("L140.0 29.0"), "{d}");
    assert_eq!(d.matches('L').count(), 95, "{d}");

    let note = Charts::Unavailable("no history file yet (/var/<b>x</b>)".into());
    let page = crate::api::page::render_with(&v, Some(&note), Instant::now(), T0);
    assert!(page.contains("No 24-hour charts: no history file yet (/var/&lt;b&gt;x&lt;/b&gt;)."));
    assert!(!page.contains("last 24 h"));
    assert!(!page.contains("colspan=\"4\""));
}

/// The cost of one refresh over a full default-sized file (256 series, 1440 slots, 720 raw
/// rows: 8 MB): printed, never asserted. `cargo test --release --lib daily_refresh_cost --
/// --ignored --nocapture`.
#[test]
#[ignore = "prints a measurement"]
fn daily_refresh_cost() {
    let g = Geometry { resolution: 60, slots: 1440, raw_rows: 720, columns: 256 };
    let keys: Vec<String> = (0..256).map(|c| format!("disk.used_percent{{mount=/m{c}}}")).collect();
    let entries: Vec<(&str, f64)> = keys.iter().map(|k| (k.as_str(), 0.0)).collect();
    let mut f = File::new(g, &entries);
    let now = T0 + 1.0;
    let cells: Vec<(usize, f32, u32)> = (0..256).map(|c| (c, c as f32, 6)).collect();
    for s in 0..1440u64 {
        f.slot(T0 as u64 / 60 - 1439 + s, &cells);
    }
    let raw: Vec<(usize, f32)> = (0..256).map(|c| (c, c as f32)).collect();
    for i in 0..720 {
        f.raw(T0 - 3600.0 + 5.0 * i as f64, &raw);
    }
    let dir = crate::testutil::tempdir("api", "daily_cost");
    let path = dir.join("history.hwh");
    std::fs::write(&path, &f.bytes).unwrap();
    let v = view(&keys.iter().map(|k| (Metric::DiskUsedPercent, k.as_str())).collect::<Vec<_>>());
    let mut best = Duration::MAX;
    for i in 0..5 {
        let cache = Cache::new(Some(path.clone()));
        let t = Instant::now();
        let charts = cache.charts(&v, t, now);
        let took = t.elapsed();
        best = best.min(took);
        let Charts::Ready(day) = &*charts else { panic!("{charts:?}") };
        assert_eq!(day.series.len(), 256);
        println!("refresh {i}: {took:?} ({} bytes)", f.bytes.len());
    }
    println!("read + bucket of a default 8 MB file (256 series): best {best:?}");
    // For comparison: `slots` once per series (what one pass replaces).
    let data = HistoryData::open(&path).unwrap();
    let t = Instant::now();
    let n: usize = (0..256).map(|c| data.slots(c, now - 86_400.0, now).len()).sum();
    println!("slots() per series instead: {:?} ({n} slots)", t.elapsed());
}
