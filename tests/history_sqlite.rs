//! The SQLite history end to end: `hostwatch run` writes slots and alert events into the
//! database while the Debian `sqlite3` CLI reads it (also holding a read transaction open),
//! and a stop writes the slot in progress. A build without the `sqlite` feature refuses the
//! config instead.

mod common;

#[cfg(feature = "sqlite")]
mod with_sqlite {
    use super::common::{self, daemon::Daemon};
    use std::io::Write;
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    const SQLITE3: &str = "/usr/bin/sqlite3";

    /// Runs one query with the `sqlite3` CLI; `None` while the file is not there yet.
    fn query(db: &Path, sql: &str) -> Option<String> {
        let out = Command::new(SQLITE3).arg("-readonly").arg(db).arg(sql).output().unwrap_or_else(
            |e| panic!("cannot run {SQLITE3} (Debian package sqlite3; scripts/test.sh installs it): {e}"),
        );
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn number(db: &Path, sql: &str) -> Option<i64> {
        query(db, sql).and_then(|s| s.parse().ok())
    }

    /// Waits (bounded) until `sql` yields a number satisfying `ok`.
    fn wait_number(db: &Path, sql: &str, ok: impl Fn(i64) -> bool) -> i64 {
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(n) = number(db, sql).filter(|&n| ok(n)) {
                return n;
            }
            assert!(
                Instant::now() < end,
                "{sql} never satisfied the test (last: {:?})",
                query(db, sql)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    #[test]
    fn sqlite3_reads_slots_and_events_while_run_writes_them() {
        assert!(Path::new(SQLITE3).exists(), "{SQLITE3} is missing: apt-get install sqlite3");
        let dir = common::tempdir("history-sqlite");
        let db = dir.join("history.db");
        let config = serde_json::json!({
            "host": "sqlite-test", "interval": "1s",
            "state_dir": dir.join("state").display().to_string(),
            "history": {"resolution": "2s", "sqlite": db.display().to_string()},
            "rules": [{"name": "cpu_any", "metric": "cpu.usage", "warn": ">= 0"}]
        });
        let cfg = common::write(&dir, "config.json", &config.to_string());
        let d = Daemon::start(&cfg, false);

        // Rows appear while the daemon runs.
        let first = wait_number(&db, "SELECT count(*) FROM samples", |n| n > 0);
        let cpu = "SELECT count(*) FROM samples JOIN series ON series.id = samples.series_id \
                   WHERE series.key = 'cpu.usage' AND series.host = 'sqlite-test' \
                   AND samples.resolution = 2 AND samples.ts % 2 = 0 \
                   AND samples.min <= samples.avg AND samples.avg <= samples.max";
        wait_number(&db, cpu, |n| n > 0);
        let fired = "SELECT count(*) FROM events WHERE rule = 'cpu_any' AND event = 'firing' \
                     AND host = 'sqlite-test' AND severity = 'warning'";
        wait_number(&db, fired, |n| n == 1);
        assert_eq!(query(&db, "PRAGMA journal_mode").as_deref(), Some("wal"));
        assert_eq!(
            query(&db, "SELECT value FROM meta WHERE key = 'schema_version'").as_deref(),
            Some("1")
        );

        // A reader holding a read transaction open does not stop the writer (WAL).
        let mut held = Command::new(SQLITE3)
            .arg(&db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sqlite3");
        let mut stdin = held.stdin.take().unwrap();
        writeln!(stdin, "BEGIN; SELECT count(*) FROM samples;").unwrap();
        stdin.flush().unwrap();
        let during = wait_number(&db, "SELECT count(*) FROM samples", |n| n > first);
        let slots = "SELECT count(DISTINCT ts) FROM samples";
        let seen = wait_number(&db, slots, |n| n >= 3);
        writeln!(stdin, "COMMIT;").unwrap();
        drop(stdin);
        let out = held.wait_with_output().unwrap();
        assert!(out.status.success(), "sqlite3: {}", String::from_utf8_lossy(&out.stderr));

        // A stop writes the slot in progress; nothing was logged as failing.
        let stopped_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        d.signal("-TERM");
        let mut d = d;
        let status = d.child.wait().unwrap();
        assert!(status.success(), "run exited with {status}");
        let stderr: Vec<String> = d.stderr.try_iter().collect();
        assert!(
            !stderr.iter().any(|l| l.contains("history sqlite")),
            "the sink complained:\n{}",
            stderr.join("\n")
        );
        let total = number(&db, "SELECT count(*) FROM samples").unwrap();
        assert!(total >= during, "{total} rows after the stop, {during} before");
        assert!(number(&db, slots).unwrap() >= seen);
        let newest = number(&db, "SELECT max(ts) FROM samples").unwrap() as f64;
        let current = (stopped_at / 2.0).floor() * 2.0;
        assert!(
            newest >= current - 2.0,
            "newest slot {newest}, the stop was in the slot {current}"
        );
        assert_eq!(number(&db, fired), Some(1), "one firing, stored once");
        // Every sample row names a series; the view joins them.
        assert_eq!(number(&db, "SELECT count(*) FROM points"), Some(total));
        let mounts =
            query(&db, "SELECT count(*) FROM series WHERE labels_json LIKE '{\"mount\":%'");
        assert!(mounts.is_some(), "labels_json is queryable");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[cfg(not(feature = "sqlite"))]
#[test]
fn a_build_without_sqlite_refuses_a_sqlite_history() {
    let dir = common::tempdir("history-sqlite-off");
    let cfg = common::write(&dir, "config.json", r#"{"history": {"sqlite": "/tmp/never.db"}}"#);
    let out = common::run(&["check", "--config", cfg.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = common::stderr(&out) + &common::stdout(&out);
    assert!(
        err.contains("history.sqlite") && err.contains("not compiled into this build"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
