//! The SQLite sink against real databases in temp dirs: schema, upserts, de-duplication,
//! pruning, unusable files set aside, and every kind of failed write kept and retried.

use super::*;
use crate::alerts::EventKind;
use crate::config::Severity;
use crate::history::sink::{SlotRow, Stats};
use crate::metrics::{LabelKey, Metric};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicU64;

const NOW: f64 = 1_790_000_000.0;

struct Fixture {
    sink: SqliteSink,
    stats: Arc<SinkStats>,
    clock: Arc<AtomicU64>,
    path: PathBuf,
}

impl Fixture {
    fn set_now(&self, t: f64) {
        self.clock.store(t.to_bits(), Ordering::Relaxed);
    }
}

fn fixture(path: &Path, retention: Duration) -> Fixture {
    let stats = Arc::new(SinkStats::default());
    let cfg = SqliteConfig { path: path.to_path_buf(), retention };
    let mut sink = SqliteSink::new(cfg, Arc::clone(&stats));
    let clock = Arc::new(AtomicU64::new(NOW.to_bits()));
    let c = Arc::clone(&clock);
    sink.clock = Box::new(move || f64::from_bits(c.load(Ordering::Relaxed)));
    sink.busy = Duration::from_millis(100);
    Fixture { sink, stats, clock, path: path.to_path_buf() }
}

fn dir(name: &str) -> PathBuf {
    crate::testutil::tempdir("sqlite", name)
}

fn day() -> Duration {
    Duration::from_secs(86400)
}

fn stats(v: f64, count: u32) -> Stats {
    Stats { min: v - 1.0, avg: v, max: v + 1.0, last: v, count }
}

/// A slot of `cpu.usage` and `n - 1` mounts, each with value `v`.
fn batch(start: f64, n: usize, v: f64, count: u32) -> SlotBatch {
    let mut rows = vec![SlotRow {
        key: Arc::from("cpu.usage"),
        metric: Metric::CpuUsage,
        label: None,
        stats: stats(v, count),
    }];
    for i in 1..n {
        let mount: Arc<str> = Arc::from(format!("/m{i}"));
        rows.push(SlotRow {
            key: Arc::from(format!("disk.used_percent{{mount={mount}}}")),
            metric: Metric::DiskUsedPercent,
            label: Some((LabelKey::Mount, mount)),
            stats: stats(v, count),
        });
    }
    SlotBatch { host: Arc::from("web-01"), start, resolution: 60, rows }
}

fn event(ts: f64, seq: u32) -> AlertEvent {
    let mut e = AlertEvent::test_event("web-01", Severity::Critical, ts);
    e.test = false;
    e.rule = "cpu_high".into();
    e.seq = seq;
    e.event = if seq == 1 { EventKind::Firing } else { EventKind::Reminder };
    e.key = format!("{}:{seq}", e.episode_key);
    e
}

fn reader(path: &Path) -> Connection {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open to read")
}

fn count(path: &Path, sql: &str) -> i64 {
    reader(path).query_row(sql, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[test]
fn a_first_slot_creates_the_documented_schema_in_wal_mode() {
    let d = dir("schema");
    let mut f = fixture(&d.join("h.db"), day());
    assert!(!f.path.exists(), "opened lazily");
    f.sink.slot(&batch(NOW - 60.0, 3, 10.0, 60)).expect("written");
    let r = reader(&f.path);
    let mode: String = r.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let version: String = r
        .query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema::SCHEMA_VERSION.to_string());
    let (key, metric, labels, ts, res, min, avg, max, last, n): (
        String,
        String,
        String,
        i64,
        i64,
        f64,
        f64,
        f64,
        f64,
        i64,
    ) = r
        .query_row(
            "SELECT key, metric, labels_json, ts, resolution, min, avg, max, last, count
             FROM points WHERE key = 'disk.used_percent{mount=/m2}'",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                ))
            },
        )
        .unwrap();
    assert_eq!(
        (key.as_str(), metric.as_str(), labels.as_str()),
        ("disk.used_percent{mount=/m2}", "disk.used_percent", r#"{"mount":"/m2"}"#)
    );
    assert_eq!(
        (ts, res, min, avg, max, last, n),
        ((NOW - 60.0) as i64, 60, 9.0, 10.0, 11.0, 10.0, 60)
    );
    assert_eq!(count(&f.path, "SELECT count(*) FROM series"), 3);
    assert_eq!(f.stats.written.load(Ordering::Relaxed), 3);
}

#[test]
fn a_resent_slot_replaces_the_earlier_one() {
    let d = dir("upsert");
    let mut f = fixture(&d.join("h.db"), day());
    f.sink.slot(&batch(NOW - 120.0, 2, 5.0, 20)).expect("partial");
    f.sink.slot(&batch(NOW - 120.0, 2, 7.0, 60)).expect("whole");
    f.sink.slot(&batch(NOW - 60.0, 2, 8.0, 60)).expect("next");
    assert_eq!(count(&f.path, "SELECT count(*) FROM samples"), 4);
    assert_eq!(count(&f.path, "SELECT count(*) FROM series"), 2);
    let ts = (NOW - 120.0) as i64;
    let q = format!("SELECT count(*) FROM samples WHERE ts = {ts} AND avg = 7.0 AND count = 60");
    assert_eq!(count(&f.path, &q), 2, "the later slot won");
}

#[test]
fn events_are_stored_once_per_key_and_test_events_not_at_all() {
    let d = dir("events");
    let mut f = fixture(&d.join("h.db"), day());
    let a = event(NOW - 30.0, 1);
    let b = event(NOW - 20.0, 2);
    let mut t = event(NOW - 10.0, 3);
    t.test = true;
    f.sink.events(&[a.clone(), b.clone(), t]).expect("written");
    f.sink.events(&[a.clone(), b]).expect("written again");
    assert_eq!(count(&f.path, "SELECT count(*) FROM events"), 2);
    let r = reader(&f.path);
    let (rule, event, severity, value, key): (String, String, String, f64, String) = r
        .query_row("SELECT rule, event, severity, value, key FROM events WHERE seq = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap();
    assert_eq!(
        (rule.as_str(), event.as_str(), severity.as_str()),
        ("cpu_high", "firing", "critical")
    );
    assert_eq!((value, key), (99.9, a.key));
}

#[test]
fn rows_older_than_the_retention_are_pruned_at_open_and_hourly() {
    let d = dir("prune");
    let path = d.join("h.db");
    let mut f = fixture(&path, day());
    // Written on an earlier day; the next open prunes it.
    f.set_now(NOW - 3.0 * 86400.0);
    f.sink.slot(&batch(NOW - 3.0 * 86400.0, 2, 1.0, 60)).expect("old slot");
    f.sink.events(&[event(NOW - 3.0 * 86400.0, 1)]).expect("old event");
    f.sink.close(Instant::now() + Duration::from_secs(5));
    assert_eq!(count(&path, "SELECT count(*) FROM samples"), 2);

    let mut f = fixture(&path, day());
    f.sink.slot(&batch(NOW - 60.0, 1, 2.0, 60)).expect("new slot");
    assert_eq!(count(&path, "SELECT count(*) FROM samples"), 1, "pruned at open");
    assert_eq!(count(&path, "SELECT count(*) FROM events"), 0);
    assert_eq!(count(&path, "SELECT count(*) FROM series"), 1, "the mount without samples left");

    // A slot that is already old when written stays until the next hourly prune.
    f.sink.slot(&batch(NOW - 2.0 * 86400.0, 1, 3.0, 60)).expect("late slot");
    f.set_now(NOW + 1800.0);
    f.sink.poll().expect("idle");
    assert_eq!(count(&path, "SELECT count(*) FROM samples"), 2, "not due yet");
    f.set_now(NOW + 3601.0);
    f.sink.poll().expect("idle");
    assert_eq!(count(&path, "SELECT count(*) FROM samples"), 1, "pruned an hour later");
    // The series cache was emptied with the pruned series: new slots still write.
    f.sink.slot(&batch(NOW + 3600.0, 2, 4.0, 60)).expect("after pruning");
    assert_eq!(count(&path, "SELECT count(*) FROM samples"), 3);
}

fn aside_files(d: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".corrupt-"))
        .collect();
    v.sort();
    v
}

#[test]
fn a_file_that_is_not_a_database_is_set_aside_and_replaced() {
    let d = dir("notadb");
    let path = d.join("h.db");
    let junk = "this is not a database, but somebody's notes\n".repeat(200);
    std::fs::write(&path, &junk).unwrap();
    let mut f = fixture(&path, day());
    f.sink.slot(&batch(NOW - 60.0, 2, 1.0, 60)).expect("written to a fresh database");
    let aside = aside_files(&d);
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(aside[0], d.join(format!("h.db.corrupt-{}", NOW as u64)));
    assert_eq!(std::fs::read_to_string(&aside[0]).unwrap(), junk, "kept as it was");
    assert_eq!(count(&path, "SELECT count(*) FROM samples"), 2);
}

/// A database of 50 slots whose pages past the first are overwritten.
fn damaged_database(path: &Path) {
    {
        let mut f = fixture(path, day());
        for i in 0..50 {
            f.sink.slot(&batch(NOW - 3600.0 + 60.0 * f64::from(i), 20, 1.0, 60)).expect("written");
        }
        f.sink.close(Instant::now() + Duration::from_secs(5));
    }
    // Checkpoint the WAL into the file, then overwrite pages past the header.
    Connection::open(path).unwrap().execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    assert!(bytes.len() > 4 * 4096, "{} bytes", bytes.len());
    let end = bytes.len() - 4096;
    for b in &mut bytes[4096..end] {
        *b = 0xA5;
    }
    std::fs::write(path, &bytes).unwrap();
}

#[test]
fn a_corrupt_database_is_set_aside_and_replaced() {
    let d = dir("corrupt");
    let path = d.join("h.db");
    damaged_database(&path);
    let mut f = fixture(&path, day());
    f.sink.slot(&batch(NOW, 2, 1.0, 60)).expect("written to a fresh database");
    assert_eq!(aside_files(&d).len(), 1, "{:?}", aside_files(&d));
    assert_eq!(count(&path, "SELECT count(*) FROM samples"), 2);
}

#[test]
fn a_large_database_is_checked_once_a_write_finds_it_damaged() {
    let d = dir("suspect");
    let path = d.join("h.db");
    damaged_database(&path);
    let mut f = fixture(&path, day());
    // As if the file were over the size checked at every open.
    f.sink.check_up_to = 0;
    let mut written = false;
    for i in 0..5 {
        if f.sink.slot(&batch(NOW + 60.0 * f64::from(i), 20, 1.0, 60)).is_ok() {
            written = true;
            break;
        }
        assert!(f.sink.suspect, "a failed write marks the file for a check");
    }
    assert!(written);
    assert_eq!(aside_files(&d).len(), 1, "{:?}", aside_files(&d));
    assert!(count(&path, "SELECT count(*) FROM samples") >= 20);
}

#[test]
fn a_missing_directory_keeps_the_slots_until_it_exists() {
    let d = dir("nodir");
    let sub = d.join("not-yet");
    let mut f = fixture(&sub.join("h.db"), day());
    let e = f.sink.slot(&batch(NOW - 120.0, 2, 1.0, 60)).expect_err("no directory");
    assert!(
        e.contains("not-yet")
            && e.contains("does not exist")
            && e.contains("kept to retry: 1 slot, 0 alert events"),
        "{e}"
    );
    f.sink.events(&[event(NOW - 100.0, 1)]).expect_err("still no directory");
    f.sink.poll().expect_err("still no directory");
    assert_eq!(f.stats.failures.load(Ordering::Relaxed), 3);
    std::fs::create_dir(&sub).unwrap();
    f.sink.poll().expect("written now");
    assert_eq!(count(&f.path, "SELECT count(*) FROM samples"), 2);
    assert_eq!(count(&f.path, "SELECT count(*) FROM events"), 1);
    assert_eq!(f.stats.written.load(Ordering::Relaxed), 3);
    assert_eq!(f.stats.dropped.load(Ordering::Relaxed), 0);
}

#[test]
fn a_lock_held_beyond_the_busy_timeout_keeps_the_slot_until_released() {
    let d = dir("locked");
    let mut f = fixture(&d.join("h.db"), day());
    f.sink.slot(&batch(NOW - 120.0, 2, 1.0, 60)).expect("first");
    let other = Connection::open(&f.path).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    // A reader in WAL mode does not stop the writer, a writer does.
    let e = f.sink.slot(&batch(NOW - 60.0, 2, 2.0, 60)).expect_err("locked");
    assert!(e.contains("locked"), "{e}");
    assert_eq!(count(&f.path, "SELECT count(*) FROM samples"), 2);
    other.execute_batch("COMMIT").unwrap();
    f.sink.poll().expect("written after the lock went");
    assert_eq!(count(&f.path, "SELECT count(*) FROM samples"), 4);
}

#[test]
fn the_queue_drops_the_oldest_beyond_its_bound_and_counts_them() {
    let d = dir("bound");
    let sub = d.join("later");
    let mut f = fixture(&sub.join("h.db"), day());
    f.sink.max_slots = 3;
    f.sink.max_events = 2;
    for i in 0..5 {
        f.sink
            .slot(&batch(NOW - 600.0 + 60.0 * f64::from(i), 2, f64::from(i), 60))
            .expect_err("no dir");
    }
    f.sink
        .events(&[event(NOW - 3.0, 1), event(NOW - 2.0, 2), event(NOW - 1.0, 3)])
        .expect_err("no dir");
    assert_eq!(f.stats.dropped.load(Ordering::Relaxed), 2 * 2 + 1);
    std::fs::create_dir(&sub).unwrap();
    f.sink.poll().expect("written");
    assert_eq!(
        count(&f.path, "SELECT CAST(min(avg) AS INTEGER) FROM samples"),
        2,
        "the oldest two slots dropped"
    );
    assert_eq!(count(&f.path, "SELECT count(*) FROM samples"), 6);
    assert_eq!(count(&f.path, "SELECT min(seq) FROM events"), 2);
}

/// A tmpfs for one test; needs root (as CI has). `None` (loudly) when mounting failed.
struct Mount(PathBuf);

impl Mount {
    fn new(path: &Path, opts: &str) -> Option<Mount> {
        let _ = std::fs::create_dir_all(path);
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(path)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIPPED: cannot mount a tmpfs at {} (needs root)", path.display());
        }
        ok.then(|| Mount(path.to_path_buf()))
    }

    fn remount(&self, opts: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{opts}")])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remount {opts} {}", self.0.display());
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.0).status().is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

#[test]
fn a_read_only_directory_keeps_the_slots_until_it_is_writable() {
    let d = dir("readonly");
    let Some(m) = Mount::new(&d.join("mnt"), "size=4m") else { return };
    m.remount("ro");
    let mut f = fixture(&m.0.join("h.db"), day());
    let e = f.sink.slot(&batch(NOW - 120.0, 2, 1.0, 60)).expect_err("read-only");
    assert!(e.contains("h.db") && e.contains("kept to retry: 1 slot, 0 alert events"), "{e}");
    f.sink.slot(&batch(NOW - 60.0, 2, 2.0, 60)).expect_err("read-only");
    m.remount("rw");
    f.sink.poll().expect("written");
    assert_eq!(count(&f.path, "SELECT count(*) FROM samples"), 4);
    drop(f);
}

#[test]
fn a_full_disk_keeps_the_slots_until_there_is_room() {
    let d = dir("full");
    let Some(m) = Mount::new(&d.join("mnt"), "size=256k") else { return };
    let mut f = fixture(&m.0.join("h.db"), day());
    let mut sent: i64 = 0;
    let mut failed = None;
    for i in 0..2000 {
        sent += 1;
        if let Err(e) = f.sink.slot(&batch(NOW - 86000.0 + 30.0 * f64::from(i), 50, 1.0, 60)) {
            failed = Some(e);
            break;
        }
    }
    let e = failed.expect("256 KiB fill up");
    assert!(e.contains("disk full"), "{e}");
    f.sink.slot(&batch(NOW, 50, 1.0, 60)).expect_err("still full");
    sent += 1;
    m.remount("size=16m");
    f.sink.poll().expect("written");
    assert_eq!(count(&f.path, "SELECT count(*) FROM samples"), 50 * sent);
    assert_eq!(f.stats.dropped.load(Ordering::Relaxed), 0);
    drop(f);
}

#[test]
fn a_day_of_100_series_at_1m_slots() {
    // Prints the time per slot and the file size per day (for the README); asserts only
    // what was written.
    let d = dir("day");
    let mut f = fixture(&d.join("h.db"), Duration::from_secs(2 * 86400));
    let slots = 1440;
    let start = NOW - 86400.0;
    let t = Instant::now();
    for i in 0..slots {
        // Fractional values, as measured ones are (SQLite stores whole REALs smaller).
        let v = f64::from(i % 100) + 0.37;
        f.sink.slot(&batch(start + 60.0 * f64::from(i), 100, v, 60)).expect("written");
    }
    let per = t.elapsed() / slots;
    f.sink.close(Instant::now() + Duration::from_secs(5));
    let bytes = std::fs::metadata(&f.path).map(|m| m.len()).unwrap_or(0);
    let t = Instant::now();
    schema::open(&f.path, BUSY_TIMEOUT, u64::MAX).expect("opens again");
    eprintln!(
        "sqlite: one slot of 100 series in {per:?} (mean of {slots}); a day of them: {:.1} MiB, \
         opened and checked in {:?}",
        bytes as f64 / 1048576.0,
        t.elapsed()
    );
    assert_eq!(count(&f.path, "SELECT count(*) FROM samples"), 100 * i64::from(slots));
    assert_eq!(count(&f.path, "SELECT count(*) FROM series"), 100);
}
