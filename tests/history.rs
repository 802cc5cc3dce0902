//! The built-in history file end to end: a replayed week keeps its size and `history` shows
//! what the replay put in; kill -9 while it is written leaves a readable file; a reader runs
//! beside the writer without a lock; `once` and `run` write it; `"history": false` writes
//! nothing; the table, JSON and CSV forms.

mod common;

use common::{run, stderr, stdout, tempdir, write};
use serde_json::{Value, json};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const T0: f64 = 1_789_999_200.0; // a multiple of 60 and of 3600

fn config(dir: &Path, history: Value) -> PathBuf {
    let cfg = json!({
        "host": "h", "interval": "10s",
        "state_dir": dir.join("state").display().to_string(),
        "history": history,
        "rules": [{"name": "cpu_hi", "metric": "cpu.usage", "warn": "> 90"}],
    });
    write(dir, "config.json", &cfg.to_string())
}

/// cpu.usage over a week: within each hour 0, 10, …, 50 repeating per minute (so every
/// minute holds 0..50, min 0, avg 25, max 50), except day 3 hour 5, all 95; mem.used a ramp.
fn week(dir: &Path) -> PathBuf {
    let path = dir.join("week.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for i in 0..(7 * 24 * 360) {
        let ts = T0 + 10.0 * i as f64;
        let hour = (i / 360) as u64;
        let cpu = if hour == 3 * 24 + 5 { 95.0 } else { ((i % 6) * 10) as f64 };
        let line = json!({"ts": ts, "metrics": {"cpu.usage": cpu, "mem.used": i as f64, "disk.used_percent{mount=/da,ta}": 40.0}});
        writeln!(f, "{line}").unwrap();
    }
    f.flush().unwrap();
    path
}

fn replay(cfg: &Path, file: &Path, state: &Path) -> std::process::Output {
    run(&[
        "replay",
        file.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ])
}

fn history(cfg: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["history", "--config", cfg.to_str().unwrap()];
    all.extend_from_slice(args);
    run(&all)
}

fn time(ts: f64) -> String {
    // RFC 3339 via the JSON of `history` would be circular; compute it here.
    let secs = ts as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem / 60 % 60, rem % 60)
}

#[test]
fn a_replayed_week_keeps_the_file_size_and_history_shows_what_went_in() {
    let dir = tempdir("history-week");
    let cfg = config(&dir, json!({}));
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let samples = week(&dir);
    // The first day creates the file; the whole week must not grow it.
    let first_day = dir.join("day.jsonl");
    let text = std::fs::read_to_string(&samples).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&first_day, lines[..8640].join("\n")).unwrap();
    let o = replay(&cfg, &first_day, &state);
    assert!(o.status.success(), "{}", stderr(&o));
    let file = state.join("history.hwh");
    let size = std::fs::metadata(&file).unwrap().len();
    let rest = dir.join("rest.jsonl");
    std::fs::write(&rest, lines[8640..].join("\n")).unwrap();
    let o = replay(&cfg, &rest, &state);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::metadata(&file).unwrap().len(), size, "the file grew");
    // The default geometry for 256 series: documented in the README per 100 series.
    assert!(size < 8 << 20, "{size} bytes");

    // The last day, hour by hour: 24 h of 1-minute slots remain (retention 24h).
    let end = T0 + 7.0 * 86_400.0;
    let o = history(
        &cfg,
        &["cpu.usage", "--since", &time(T0), "--until", &time(end), "--format", "json"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(doc["resolution"], 60);
    let slots = doc["series"][0]["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 1440, "one day of minutes");
    assert_eq!(slots[0]["ts"].as_f64().unwrap(), end - 86_400.0);
    for s in slots {
        assert_eq!((s["min"].as_f64(), s["max"].as_f64()), (Some(0.0), Some(50.0)), "{s}");
        assert_eq!(s["avg"].as_f64(), Some(25.0));
        assert_eq!(s["count"], 6);
        assert_eq!(s["partial"], false);
    }
    // The table: min/avg/max/last and a sparkline for the hostile-labelled mount too.
    let o = history(&cfg, &["--since", &time(end - 3600.0), "--until", &time(end)]);
    let table = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    let row = table.lines().find(|l| l.starts_with("cpu.usage")).expect(&table);
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[1..5], ["0.0%", "25.0%", "50.0%", "50.0%"], "{table}");
    assert!(cells[5].chars().all(|c| ('▁'..='█').contains(&c)), "{row}");
    assert!(table.contains("disk.used_percent{mount=/da,ta}"), "{table}");
    // CSV keeps the comma inside the key in one quoted field.
    let o = history(
        &cfg,
        &["disk.*", "--since", &time(end - 120.0), "--until", &time(end), "--format", "csv"],
    );
    let csv = stdout(&o);
    assert!(csv.starts_with("series,ts,time,min,avg,max,last,count,partial\n"), "{csv}");
    assert!(csv.contains("\"disk.used_percent{mount=/da,ta}\","), "{csv}");
    assert_eq!(csv.lines().count(), 1 + 2, "{csv}");
    // Raw samples: the last hour.
    let o = history(
        &cfg,
        &[
            "mem.used",
            "--raw",
            "--format",
            "json",
            "--since",
            &time(end - 7200.0),
            "--until",
            &time(end),
        ],
    );
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let raw = doc["series"][0]["samples"].as_array().unwrap();
    assert_eq!(raw.len(), 360);
    assert_eq!(raw.last().unwrap()["value"].as_f64(), Some((7 * 24 * 360 - 1) as f64));
}

#[test]
fn kill_9_while_writing_leaves_a_readable_file() {
    let dir = tempdir("history-kill");
    let cfg = config(&dir, json!({"retention": "6h"}));
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    let samples = week(&dir);
    let mut seed = std::process::id() as u64;
    for round in 0..6 {
        let mut child = Command::new(common::bin())
            .args(["replay", samples.to_str().unwrap(), "--config", cfg.to_str().unwrap()])
            .args(["--state-dir", state.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // A random point in the run, and readers racing the writer meanwhile.
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let wait = Duration::from_millis(200 + (seed >> 33) % 1500);
        let start = Instant::now();
        while start.elapsed() < wait {
            let o = history(
                &cfg,
                &["--since", &time(T0), "--until", &time(T0 + 8.0 * 86_400.0), "--format", "json"],
            );
            if o.status.success() {
                check_consistent(&stdout(&o));
            } else {
                // Only before the first series is in the table.
                let e = stderr(&o);
                assert!(
                    round == 0 && (e.contains("no history at") || e.contains("no series")),
                    "{e}"
                );
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        let o = history(
            &cfg,
            &["--since", &time(T0), "--until", &time(T0 + 8.0 * 86_400.0), "--format", "json"],
        );
        assert!(o.status.success(), "round {round}: {}", stderr(&o));
        check_consistent(&stdout(&o));
    }
}

/// Every slot read is one the replay could have written: min ≤ avg ≤ max, and cpu.usage
/// slots hold 0..50 or 95.
fn check_consistent(text: &str) {
    let doc: Value = serde_json::from_str(text).unwrap();
    for s in doc["series"].as_array().unwrap() {
        for p in s["slots"].as_array().unwrap() {
            let (min, avg, max) = (
                p["min"].as_f64().unwrap(),
                p["avg"].as_f64().unwrap(),
                p["max"].as_f64().unwrap(),
            );
            assert!(min <= avg + 1e-9 && avg <= max + 1e-9, "{p}");
            if s["series"] == "cpu.usage" && p["partial"] == false {
                let ok = (min == 95.0 && max == 95.0) || (min >= 0.0 && max <= 50.0);
                assert!(ok, "{p}");
            }
        }
    }
}

#[test]
fn once_and_run_write_history_and_false_turns_it_off() {
    let dir = tempdir("history-once");
    let cfg = config(&dir, json!({}));
    for _ in 0..2 {
        let o = run(&["once", "--config", cfg.to_str().unwrap(), "--first-interval", "200ms"]);
        assert!(o.status.code().unwrap_or(9) <= 2, "{}", stderr(&o));
    }
    let o = history(&cfg, &["cpu.usage", "--format", "json", "--since", "10m"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let slots = doc["series"][0]["slots"].as_array().unwrap();
    let counted: u64 = slots.iter().map(|s| s["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, 2, "{doc}");

    let off = tempdir("history-off");
    let cfg = config(&off, json!(false));
    let o = run(&["once", "--config", cfg.to_str().unwrap(), "--first-interval", "200ms"]);
    assert!(o.status.code().unwrap_or(9) <= 2, "{}", stderr(&o));
    assert!(!off.join("state/history.hwh").exists());
    let o = history(&cfg, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no history at"), "{}", stderr(&o));
}

#[test]
fn bad_arguments_and_broken_files_are_clear_errors() {
    let dir = tempdir("history-errors");
    let cfg = config(&dir, json!({}));
    let o = history(&cfg, &["--format", "xml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown format"), "{}", stderr(&o));
    let o = history(&cfg, &["--since", "yesterday"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--since"), "{}", stderr(&o));
    let junk = write(&dir, "junk.hwh", "HWHIST01 but not really");
    let o = run(&["history", "--file", junk.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("junk.hwh"), "{}", stderr(&o));
    // A junk file where the history file goes: `once` sets it aside and starts anew.
    std::fs::create_dir_all(dir.join("state")).unwrap();
    std::fs::write(dir.join("state/history.hwh"), b"junk").unwrap();
    let o = run(&["once", "--config", cfg.to_str().unwrap(), "--first-interval", "200ms"]);
    assert!(o.status.code().unwrap_or(9) <= 2, "{}", stderr(&o));
    assert_eq!(std::fs::read(dir.join("state/history.hwh.corrupt")).unwrap(), b"junk");
    let o = history(&cfg, &["--since", "10m"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// `once` on a state directory on its own small tmpfs (root only; told and skipped otherwise).
fn once_in(dir: &Path) -> std::process::Output {
    let cfg = json!({"host": "h", "interval": "10s", "state_dir": dir.display().to_string()});
    let cfg = write(
        dir.parent().unwrap(),
        &format!("{}.json", dir.file_name().unwrap().to_string_lossy()),
        &cfg.to_string(),
    );
    run(&["once", "--config", cfg.to_str().unwrap(), "--first-interval", "100ms"])
}

fn counted(dir: &Path) -> u64 {
    let o = run(&[
        "history",
        "--file",
        dir.join("history.hwh").to_str().unwrap(),
        "cpu.usage",
        "--format",
        "json",
        "--since",
        "1h",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    doc["series"][0]["slots"].as_array().unwrap().iter().map(|s| s["count"].as_u64().unwrap()).sum()
}

#[test]
fn a_full_disk_neither_stops_the_history_file_nor_the_check() {
    let fs = common::tmpfs::Tmpfs::mount_temp("history-full", "20m");
    if !fs.mounted {
        println!("!!!!! WARNING: cannot mount a tmpfs (not root?): full-disk history not tested");
        return;
    }
    let state = fs.path.join("state");
    let o = once_in(&state);
    assert!(o.status.code().unwrap_or(9) <= 2, "{}", stderr(&o));
    assert_eq!(counted(&state), 1);
    // Fill the disk: the file was allocated whole, so its writes still land.
    let _ = Command::new("dd")
        .args(["if=/dev/zero", &format!("of={}", fs.path.join("fill").display()), "bs=1M"])
        .stderr(Stdio::null())
        .status();
    let o = once_in(&state);
    assert!(o.status.code().unwrap_or(9) <= 2, "{}", stderr(&o));
    assert_eq!(counted(&state), 2, "{}", stderr(&o));

    // A disk too small for the file (it would take more than half the free space): an error
    // in the log, no half file, the check still runs.
    let small = common::tmpfs::Tmpfs::mount_temp("history-small", "12m");
    let state = small.path.join("state");
    let o = once_in(&state);
    assert!(o.status.code().unwrap_or(9) <= 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("history") && stderr(&o).contains("cannot create"),
        "{}",
        stderr(&o)
    );
    assert!(!state.join("history.hwh").exists() && !state.join("history.hwh.tmp").exists());
}
