//! The history file end to end in-process: fixed size, aggregates, restarts mid-slot, torn
//! rows, column reuse, a full table, allocation-free steady ticks.

use super::Recorder;
use super::read::{self, HistoryData};
use crate::collect::Sample;
use crate::config::{Config, HistoryFileConfig};
use crate::metrics::Metric;
use crate::series::Registry;
use std::path::Path;
use std::time::Duration;

fn config(dir: &Path, file: HistoryFileConfig) -> Config {
    let mut c = crate::config::load_str("{}", "test", &|_| None).expect("empty config");
    c.state_dir = dir.to_path_buf();
    c.interval = Duration::from_secs(10);
    c.history.file = Some(file);
    c
}

fn small() -> HistoryFileConfig {
    HistoryFileConfig {
        retention: Duration::from_secs(3600),
        resolution: Duration::from_secs(60),
        raw: Duration::from_secs(600),
        max_series: 4,
    }
}

fn sample(registry: &mut Registry, ts: f64, values: &[(Metric, Option<&str>, f64)]) -> Sample {
    let mut s = Sample { unix_ts: ts, ..Sample::default() };
    for (m, label, v) in values {
        let id = registry.intern(*m, *label);
        s.points.push((id, *v));
    }
    s
}

fn column(data: &HistoryData, key: &str) -> u32 {
    data.series().into_iter().find(|s| s.key == key).expect(key).column
}

#[test]
fn slots_hold_min_avg_max_last_and_the_size_never_changes() {
    let dir = crate::testutil::tempdir("history", "slots");
    let c = config(&dir, small());
    let mut reg = Registry::new();
    let mut rec = Recorder::open(&c, 6000.0).expect("history on");
    let path = read::path(&dir);
    let size = std::fs::metadata(&path).unwrap().len();
    // Two hours of samples every 10 s: twice the retention.
    let t0 = 6000.0;
    for i in 0..720 {
        let ts = t0 + 10.0 * i as f64;
        let s = sample(&mut reg, ts, &[(Metric::CpuUsage, None, (i % 6) as f64)]);
        rec.record(&reg, &s);
    }
    rec.flush();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
    let data = HistoryData::open(&path).unwrap();
    let col = column(&data, "cpu.usage");
    let slots = data.slots(col, 0.0, f64::MAX);
    // One hour of retention: 60 slots, each of the six values 0..5.
    assert_eq!(slots.len(), 60, "{slots:?}");
    for s in &slots {
        assert_eq!((s.min, s.avg, s.max, s.last, s.count), (0.0, 2.5, 5.0, 5.0, 6), "{s:?}");
    }
    assert_eq!(slots.last().unwrap().start, t0 + 7140.0);
    // Raw: the last 10 minutes.
    let raw = data.raw(col, 0.0, f64::MAX);
    assert_eq!(raw.len(), 60);
    assert_eq!(raw.last().unwrap().0, t0 + 7190.0);
}

#[test]
fn a_stop_mid_slot_is_continued_by_the_restart_and_a_crash_loses_only_the_current_slot() {
    let dir = crate::testutil::tempdir("history", "restart");
    let c = config(&dir, small());
    let mut reg = Registry::new();
    let mut rec = Recorder::open(&c, 6000.0).unwrap();
    for (i, v) in [1.0, 2.0, 3.0].iter().enumerate() {
        let s = sample(&mut reg, 6000.0 + 10.0 * i as f64, &[(Metric::MemUsed, None, *v)]);
        rec.record(&reg, &s);
    }
    // A stop in the middle of the slot writes it as it is.
    rec.stop(std::time::Instant::now());
    let data = HistoryData::open(&read::path(&dir)).unwrap();
    let col = column(&data, "mem.used");
    let slots = data.slots(col, 0.0, f64::MAX);
    assert_eq!(slots.len(), 1);
    assert_eq!((slots[0].min, slots[0].max, slots[0].count), (1.0, 3.0, 3));

    // The restart continues the slot from the raw rows.
    let mut reg = Registry::new();
    let mut rec = Recorder::open(&c, 6030.0).unwrap();
    for (i, v) in [7.0, 5.0].iter().enumerate() {
        let s = sample(&mut reg, 6030.0 + 10.0 * i as f64, &[(Metric::MemUsed, None, *v)]);
        rec.record(&reg, &s);
    }
    for ts in [6060.0, 6070.0] {
        let s = sample(&mut reg, ts, &[(Metric::MemUsed, None, 9.0)]);
        rec.record(&reg, &s);
    }
    // A crash: the slot in progress (6060..6120) is lost, the one before is whole.
    std::mem::forget(rec);
    let data = HistoryData::open(&read::path(&dir)).unwrap();
    let slots = data.slots(column(&data, "mem.used"), 0.0, f64::MAX);
    assert_eq!(slots.len(), 1, "{slots:?}");
    assert!(!slots[0].partial);
    assert_eq!((slots[0].min, slots[0].max, slots[0].last), (1.0, 7.0, 5.0));
    assert!((slots[0].avg - 3.6).abs() < 1e-6, "f32 storage: {}", slots[0].avg);
    assert_eq!(slots[0].count, 5);
}

#[test]
fn a_torn_row_loses_that_row_only() {
    let dir = crate::testutil::tempdir("history", "torn");
    let c = config(&dir, small());
    let mut reg = Registry::new();
    let mut rec = Recorder::open(&c, 6000.0).unwrap();
    for i in 0..30 {
        let s = sample(&mut reg, 6000.0 + 10.0 * i as f64, &[(Metric::CpuUsage, None, 1.0)]);
        rec.record(&reg, &s);
    }
    drop(rec);
    let path = read::path(&dir);
    let mut bytes = std::fs::read(&path).unwrap();
    let data = HistoryData::from_bytes(bytes.clone()).unwrap();
    let g = data.geometry();
    let before = data.slots(0, 0.0, f64::MAX);
    assert_eq!(before.len(), 5);
    // Tear the row of the second slot (slot 101 at position 101 % 60).
    let at = g.slot_off(101) as usize + 20;
    bytes[at] ^= 0xff;
    let torn = HistoryData::from_bytes(bytes).unwrap();
    let after = torn.slots(0, 0.0, f64::MAX);
    // The slot is gone from the rows but rebuilt from the raw samples still in the file.
    assert_eq!(after.len(), 5);
    assert!(after[1].partial);
    assert!(!after[0].partial && !after[2].partial);
}

#[test]
fn gone_series_age_out_and_a_full_table_is_a_warning() {
    let dir = crate::testutil::tempdir("history", "full");
    let c = config(&dir, small());
    let mut reg = Registry::new();
    let mut rec = Recorder::open(&c, 6000.0).unwrap();
    let ifaces = ["a", "b", "c", "d", "e"];
    let values: Vec<_> = ifaces.iter().map(|i| (Metric::NetRxRate, Some(*i), 1.0)).collect();
    let s = sample(&mut reg, 6000.0, &values);
    rec.record(&reg, &s);
    let data = HistoryData::open(&read::path(&dir)).unwrap();
    assert_eq!(data.series().len(), 4, "the fifth does not fit");
    // "a" goes away; after the retention its column goes to "e".
    let a = reg.find(Metric::NetRxRate, Some("a")).unwrap();
    reg.retire(a);
    let rest: Vec<_> = values[1..].to_vec();
    let s = sample(&mut reg, 6000.0 + 1800.0, &rest);
    rec.record(&reg, &s);
    let data = HistoryData::open(&read::path(&dir)).unwrap();
    assert!(data.series().iter().any(|s| s.key == "net.rx_rate{iface=a}"));
    let s = sample(&mut reg, 6000.0 + 3700.0, &rest);
    rec.record(&reg, &s);
    rec.flush();
    let data = HistoryData::open(&read::path(&dir)).unwrap();
    let keys: Vec<String> = data.series().into_iter().map(|s| s.key).collect();
    assert!(keys.contains(&"net.rx_rate{iface=e}".to_string()), "{keys:?}");
    assert!(!keys.contains(&"net.rx_rate{iface=a}".to_string()));
    // The new owner does not inherit the old series' slots.
    let e = column(&data, "net.rx_rate{iface=e}");
    let slots = data.slots(e, 0.0, f64::MAX);
    assert_eq!(slots.len(), 1, "{slots:?}");
}

#[test]
fn another_geometry_starts_a_new_file_and_keeps_the_old() {
    let dir = crate::testutil::tempdir("history", "geometry");
    let mut reg = Registry::new();
    let mut rec = Recorder::open(&config(&dir, small()), 6000.0).unwrap();
    let s = sample(&mut reg, 6010.0, &[(Metric::CpuUsage, None, 1.0)]);
    rec.record(&reg, &s);
    drop(rec);
    let bigger = HistoryFileConfig { max_series: 8, ..small() };
    let _rec = Recorder::open(&config(&dir, bigger), 6100.0).unwrap();
    assert!(dir.join("history.hwh.old").exists());
    assert_eq!(HistoryData::open(&read::path(&dir)).unwrap().geometry().columns, 8);
    // Junk in place of the file: set aside, never fatal.
    std::fs::write(read::path(&dir), b"junk").unwrap();
    let _rec = Recorder::open(&config(&dir, small()), 6200.0).unwrap();
    assert_eq!(std::fs::read(dir.join("history.hwh.corrupt")).unwrap(), b"junk");
}

#[test]
fn a_steady_tick_allocates_nothing() {
    let dir = crate::testutil::tempdir("history", "alloc");
    let c = config(&dir, HistoryFileConfig::default());
    let mut reg = Registry::new();
    let mut rec = Recorder::open(&c, 6000.0).unwrap();
    let values: Vec<_> = (0..64)
        .map(|i| {
            (Metric::CpuCoreUsage, Some(Box::leak(i.to_string().into_boxed_str()) as &str), 1.0)
        })
        .collect();
    let mut s = sample(&mut reg, 6000.0, &values);
    rec.record(&reg, &s);
    // Within one slot (no sinks): nothing allocates.
    let n = crate::testutil::allocations(|| {
        for i in 1..5 {
            s.unix_ts = 6000.0 + i as f64;
            rec.record(&reg, &s);
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn stored_values_read_back_as_written() {
    assert_eq!(super::read::widen_for_test(0.1), 0.1);
    assert_eq!(super::read::widen_for_test(3.6), 3.6);
    assert_eq!(super::read::widen_for_test(24508104704.0), 24508104704.0);
}

/// The cost of recording one tick (48 series, the default geometry: a raw row of 256
/// columns, and a slot row every 12th tick at a 5 s interval). Printed, not asserted:
/// `cargo test --release --lib history::tests::record_cost -- --ignored --nocapture`.
#[test]
#[ignore]
fn record_cost() {
    let dir = crate::testutil::tempdir("history", "cost");
    let mut c = config(&dir, HistoryFileConfig::default());
    c.interval = Duration::from_secs(5);
    let mut reg = Registry::new();
    let mut rec = Recorder::open(&c, 6000.0).unwrap();
    let labels: Vec<String> = (0..48).map(|i| i.to_string()).collect();
    let values: Vec<_> =
        labels.iter().map(|l| (Metric::CpuCoreUsage, Some(l.as_str()), 1.0)).collect();
    let mut s = sample(&mut reg, 6000.0, &values);
    let cpu = || {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: clock_gettime writes into the timespec we own.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    };
    let mut times = Vec::new();
    for i in 0..12_000 {
        s.unix_ts = 6000.0 + 5.0 * i as f64;
        for p in s.points.iter_mut() {
            p.1 = (i % 100) as f64;
        }
        let a = cpu();
        rec.record(&reg, &s);
        times.push(cpu() - a);
    }
    times.sort_unstable();
    let mean = times.iter().sum::<u64>() / times.len() as u64;
    println!(
        "history record, 48 series, default geometry: median {} ns, mean {} ns, p99 {} ns CPU per tick",
        times[times.len() / 2],
        mean,
        times[times.len() * 99 / 100]
    );
}

/// Every slot each table entry shows (from its `since` on) holds only that series' value.
fn assert_each_column_shows_its_own_values(dir: &Path, expected: &[(&str, f64)]) {
    let data = HistoryData::open(&read::path(dir)).unwrap();
    for s in data.series() {
        let Some(&(_, v)) = expected.iter().find(|(k, _)| *k == s.key) else { continue };
        for p in data.slots(s.column, 0.0, f64::MAX) {
            assert_eq!((p.min, p.max), (v, v), "{} shows another series' values: {p:?}", s.key);
        }
    }
}

#[test]
fn a_refused_series_never_takes_the_column_of_a_live_one_after_a_clock_jump() {
    let dir = crate::testutil::tempdir("history", "jump-alias");
    let c = config(&dir, small());
    let mut reg = Registry::new();
    let mut rec = Recorder::open(&c, 6000.0).unwrap();
    let names = ["a", "b", "c", "d"];
    let values: Vec<_> =
        names.iter().enumerate().map(|(i, n)| (Metric::NetRxRate, Some(*n), i as f64)).collect();
    {
        let s = sample(&mut reg, 6000.0, &values);
        rec.record(&reg, &s);
    }
    // The collector changes (a reload): the new registry lists a new series first; the table
    // is full, so it is refused.
    rec.forget_series();
    let mut reg = Registry::new();
    let mut all = vec![(Metric::NetRxRate, Some("z"), 99.0)];
    all.extend(values.iter().cloned());
    {
        let s = sample(&mut reg, 6010.0, &all);
        rec.record(&reg, &s);
    }
    // The clock jumps two retentions ahead; every series is still there.
    for i in 0..20 {
        {
            let s = sample(&mut reg, 6000.0 + 7200.0 + 10.0 * i as f64, &all);
            rec.record(&reg, &s);
        }
    }
    rec.flush();
    let expected: Vec<(&str, f64)> = vec![
        ("net.rx_rate{iface=a}", 0.0),
        ("net.rx_rate{iface=b}", 1.0),
        ("net.rx_rate{iface=c}", 2.0),
        ("net.rx_rate{iface=d}", 3.0),
        ("net.rx_rate{iface=z}", 99.0),
    ];
    assert_each_column_shows_its_own_values(&dir, &expected);
}

#[test]
fn a_restart_never_replaces_a_whole_slot_by_the_raw_rows_left_of_it() {
    // Raw rows for one minute, slots of ten: the raw ring holds only part of a slot.
    let dir = crate::testutil::tempdir("history", "raw-short");
    let file = HistoryFileConfig {
        resolution: Duration::from_secs(600),
        raw: Duration::from_secs(60),
        ..small()
    };
    let c = config(&dir, file);
    let mut reg = Registry::new();
    let mut rec = Recorder::open(&c, 6000.0).unwrap();
    for i in 0..30 {
        {
            let s =
                sample(&mut reg, 6000.0 + 10.0 * i as f64, &[(Metric::MemUsed, None, i as f64)]);
            rec.record(&reg, &s);
        }
    }
    rec.stop(std::time::Instant::now());
    // Restarted later in the same slot, then the slot ends.
    let mut reg = Registry::new();
    let mut rec = Recorder::open(&c, 6400.0).unwrap();
    for i in 40..42 {
        {
            let s =
                sample(&mut reg, 6000.0 + 10.0 * i as f64, &[(Metric::MemUsed, None, i as f64)]);
            rec.record(&reg, &s);
        }
    }
    {
        let s = sample(&mut reg, 6600.0, &[(Metric::MemUsed, None, 1.0)]);
        rec.record(&reg, &s);
    }
    rec.stop(std::time::Instant::now());
    let data = HistoryData::open(&read::path(&dir)).unwrap();
    let slots = data.slots(column(&data, "mem.used"), 0.0, 6599.0);
    assert_eq!(slots.len(), 1, "{slots:?}");
    assert_eq!((slots[0].min, slots[0].max, slots[0].count), (0.0, 41.0, 32), "{slots:?}");
}

#[test]
fn without_raw_rows_each_once_run_adds_to_its_slot() {
    let dir = crate::testutil::tempdir("history", "raw-zero");
    let file = HistoryFileConfig { raw: Duration::ZERO, ..small() };
    let c = config(&dir, file);
    for (i, v) in [4.0, 8.0, 6.0].iter().enumerate() {
        let mut reg = Registry::new();
        let ts = 6000.0 + 10.0 * i as f64;
        let mut rec = Recorder::open(&c, ts).unwrap();
        {
            let s = sample(&mut reg, ts, &[(Metric::MemUsed, None, *v)]);
            rec.record(&reg, &s);
        }
        rec.stop(std::time::Instant::now());
    }
    let data = HistoryData::open(&read::path(&dir)).unwrap();
    let slots = data.slots(column(&data, "mem.used"), 0.0, f64::MAX);
    assert_eq!(slots.len(), 1, "{slots:?}");
    assert_eq!((slots[0].min, slots[0].max, slots[0].last, slots[0].count), (4.0, 8.0, 6.0, 3));
}

#[test]
fn hostile_bytes_never_panic() {
    // A valid header over random bodies, and random headers: an error or data, never a panic.
    let g = crate::history::format::Geometry { resolution: 60, slots: 7, raw_rows: 5, columns: 3 };
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..3000 {
        let mut bytes = vec![0u8; g.file_len() as usize];
        bytes[..4096].copy_from_slice(&g.encode_header(1.0e9));
        let n = (next() % 64) as usize;
        for _ in 0..n {
            let at = (next() % bytes.len() as u64) as usize;
            bytes[at] = next() as u8;
        }
        if round % 3 == 0 {
            // Rows that pass their checksum with arbitrary content.
            for s in 0..g.slots as u64 {
                let at = g.slot_off(s) as usize;
                let row = &mut bytes[at..at + g.slot_row_len()];
                row.iter_mut().for_each(|b| *b = next() as u8);
                let top = u64::MAX % g.slots as u64;
                let slot = if s == top { u64::MAX } else { s + g.slots as u64 * (next() % 8) };
                crate::history::format::seal_slot_row(row, slot, (next() % 4) as u32);
            }
            for q in 0..g.raw_rows {
                let at = g.raw_row_off(q) as usize;
                let row = &mut bytes[at..at + g.raw_row_len()];
                row.iter_mut().for_each(|b| *b = next() as u8);
                let ts = f64::from_bits(next());
                crate::history::format::seal_raw_row(row, ts, (next() % 20) as u32);
            }
        }
        if round % 5 == 0 {
            bytes.truncate((next() % bytes.len() as u64) as usize);
        }
        if let Ok(data) = HistoryData::from_bytes(bytes) {
            for s in data.series() {
                let _ = data.slots(s.column, f64::MIN, f64::MAX);
                let _ = data.raw(s.column, f64::MIN, f64::MAX);
            }
            let _ = data.slots(2, 0.0, f64::MAX);
            let _ = data.last_seen();
            let _ = data.latest_raw();
        }
    }
}

#[test]
fn a_column_given_to_another_series_while_it_is_read_is_left_out_of_that_read() {
    let dir = crate::testutil::tempdir("history", "reread");
    let c = config(&dir, small());
    let mut reg = Registry::new();
    let mut rec = Recorder::open(&c, 6000.0).unwrap();
    let values = [(Metric::NetRxRate, Some("a"), 1.0), (Metric::NetRxRate, Some("b"), 2.0)];
    for i in 0..8 {
        let s = sample(&mut reg, 6000.0 + 10.0 * i as f64, &values);
        rec.record(&reg, &s);
    }
    rec.flush();
    let bytes = std::fs::read(read::path(&dir)).unwrap();
    let mut data = HistoryData::from_bytes(bytes.clone()).unwrap();
    let g = data.geometry();
    let (a, b) = (column(&data, "net.rx_rate{iface=a}"), column(&data, "net.rx_rate{iface=b}"));
    // Meanwhile the writer gives column `a` to a new series.
    let mut table = bytes[g.table_off() as usize..g.slots_off() as usize].to_vec();
    let at = a as usize * crate::history::format::ENTRY_LEN;
    let entry = crate::history::format::encode_entry("net.rx_rate{iface=z}", 6100.0);
    table[at..at + entry.len()].copy_from_slice(&entry);
    data.forget_changed_entries(&table);
    let keys: Vec<String> = data.series().into_iter().map(|s| s.key).collect();
    assert_eq!(keys, ["net.rx_rate{iface=b}"]);
    assert!(data.slots(a, 0.0, f64::MAX).is_empty());
    assert_eq!(data.slots(b, 0.0, f64::MAX).len(), 2);
    // An unchanged table changes nothing.
    let mut data = HistoryData::from_bytes(bytes.clone()).unwrap();
    data.forget_changed_entries(&bytes[g.table_off() as usize..g.slots_off() as usize]);
    assert_eq!(data.series().len(), 2);
}

#[test]
fn a_small_step_of_the_clock_back_keeps_the_slot_it_crossed() {
    let dir = crate::testutil::tempdir("history", "step-back");
    let c = config(&dir, small());
    let mut reg = Registry::new();
    let mut rec = Recorder::open(&c, 6000.0).unwrap();
    // Slot 100 (6000..6060) gets six samples, then the clock steps back 5 s across its end.
    let times = [6000.0, 6010.0, 6020.0, 6030.0, 6040.0, 6050.0, 6060.0, 6055.0, 6065.0, 6075.0];
    for (i, ts) in times.iter().enumerate() {
        let s = sample(&mut reg, *ts, &[(Metric::MemUsed, None, i as f64)]);
        rec.record(&reg, &s);
    }
    rec.flush();
    let data = HistoryData::open(&read::path(&dir)).unwrap();
    let slots = data.slots(column(&data, "mem.used"), 0.0, f64::MAX);
    assert_eq!(slots.len(), 2, "{slots:?}");
    assert_eq!((slots[0].start, slots[0].min, slots[0].max, slots[0].count), (6000.0, 0.0, 5.0, 6));
    assert_eq!((slots[1].start, slots[1].min, slots[1].max, slots[1].count), (6060.0, 6.0, 9.0, 4));
}

#[test]
fn a_file_whose_latest_slot_is_the_last_possible_one_is_recovered_without_a_panic() {
    let dir = crate::testutil::tempdir("history", "slot-max");
    let file = HistoryFileConfig { raw: Duration::ZERO, ..small() };
    let c = config(&dir, file);
    drop(Recorder::open(&c, 6000.0).unwrap());
    // A row for the last slot number (a hostile file, or a clock gone wild), checksum valid.
    let path = read::path(&dir);
    let data = HistoryData::open(&path).unwrap();
    let g = data.geometry();
    let mut bytes = std::fs::read(&path).unwrap();
    let at = g.slot_off(u64::MAX) as usize;
    let row = &mut bytes[at..at + g.slot_row_len()];
    crate::history::format::put_slot_cell(row, 0, [1.0; 4], 1);
    crate::history::format::seal_slot_row(row, u64::MAX, 1);
    std::fs::write(&path, &bytes).unwrap();
    let mut reg = Registry::new();
    let mut rec = Recorder::open(&c, 6000.0).unwrap();
    let s = sample(&mut reg, 6000.0, &[(Metric::MemUsed, None, 1.0)]);
    rec.record(&reg, &s);
    rec.flush();
}

#[test]
fn a_file_that_cannot_be_read_is_left_alone() {
    let dir = crate::testutil::tempdir("history", "unreadable");
    // A directory where the file goes: not history, and not ours to move.
    std::fs::create_dir_all(read::path(&dir)).unwrap();
    let rec = Recorder::open(&config(&dir, small()), 6000.0).expect("the recorder runs");
    drop(rec);
    assert!(read::path(&dir).is_dir());
    assert!(!dir.join("history.hwh.corrupt").exists());
}
