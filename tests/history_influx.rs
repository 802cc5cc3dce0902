//! The InfluxDB push end to end, against real servers on loopback: a replayed half hour
//! arrives in InfluxDB 1.x (`/write`) and VictoriaMetrics (`/api/v2/write`) with the
//! aggregates the replay put in, hostile label text intact as documented; `run` pushes each
//! slot, and InfluxDB killed across several slots and started again gets every slot the
//! built-in history file has (no gap); secrets never reach the log or `check`.

mod common;

use common::daemon::Daemon;
use common::influx::{Influxd, Victoria, free_port};
use common::{run, stderr, stdout, tempdir, write};
use serde_json::{Value, json};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A label no line may carry as is: a newline, a field, a separator, a trailing backslash.
const HOSTILE: &str = "e\nvil x=1,y\\";
/// How the servers store it (control characters as U+FFFD, that backslash as U+29F5).
const HOSTILE_STORED: &str = "e\u{FFFD}vil x=1,y\u{29F5}";

fn config(dir: &Path, interval: &str, history: Value) -> PathBuf {
    let cfg = json!({
        "host": "web 1", "interval": interval,
        "state_dir": dir.join("state").display().to_string(),
        "history": history,
        "rules": [{"name": "cpu_hi", "metric": "cpu.usage", "warn": "> 99"}],
    });
    write(dir, "config.json", &cfg.to_string())
}

/// Two hours ago, on the hour (VictoriaMetrics keeps a month; slots are whole minutes).
fn recent_hour() -> f64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    (now.as_secs() / 3600 * 3600) as f64 - 7200.0
}

/// 30 minutes of samples every 10 s from `t0`: per minute `j`, cpu.usage 0, 10, … 50; mem.used
/// the sample number; the disk 40 + j; the hostile interface 1.5.
fn half_hour(dir: &Path, t0: f64) -> PathBuf {
    let path = dir.join("samples.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    for i in 0..180u32 {
        let metrics = json!({
            "cpu.usage": (i % 6) * 10,
            "mem.used": i,
            "disk.used_percent{mount=/da,ta b}": 40 + i / 6,
            format!("net.rx_rate{{iface={HOSTILE}}}"): 1.5,
        });
        writeln!(f, "{}", json!({"ts": t0 + 10.0 * i as f64, "metrics": metrics})).unwrap();
    }
    path
}

fn replay(cfg: &Path, samples: &Path, state: &Path) {
    let o = run(&[
        "replay",
        samples.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "replay: {}", stderr(&o));
    assert!(!stderr(&o).contains("history influxdb"), "no sink error: {}", stderr(&o));
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn a_replayed_half_hour_arrives_in_influxdb_1x_with_its_aggregates() {
    let dir = tempdir("influx-replay");
    let server = Influxd::start("replay");
    server.create_database("hostwatch");
    let t0 = recent_hour();
    let cfg = config(
        &dir,
        "10s",
        json!({"resolution": "1m", "retention": "6h",
               "influxdb": {"url": server.base(), "database": "hostwatch"}}),
    );
    replay(&cfg, &half_hour(&dir, t0), &dir.join("state"));

    let cpu = server.wait_rows("hostwatch", "SELECT * FROM \"cpu.usage\" ORDER BY time", 30);
    assert_eq!(cpu.len(), 30, "{cpu:#?}");
    for (j, row) in cpu.iter().enumerate() {
        assert_eq!(f(&row["time"]), t0 + 60.0 * j as f64);
        assert_eq!(row["host"], "web 1");
        let got = (f(&row["min"]), f(&row["avg"]), f(&row["max"]), f(&row["last"]));
        assert_eq!(got, (0.0, 25.0, 50.0, 50.0), "minute {j}");
        assert_eq!(row["count"], 6);
    }
    let mem = server.select("hostwatch", "SELECT * FROM \"mem.used\" ORDER BY time");
    assert_eq!(mem.len(), 30);
    for (j, row) in mem.iter().enumerate() {
        let b = 6.0 * j as f64;
        let got = (f(&row["min"]), f(&row["avg"]), f(&row["max"]), f(&row["last"]));
        assert_eq!(got, (b, b + 2.5, b + 5.0, b + 5.0), "minute {j}");
    }
    let disk = server.select("hostwatch", "SELECT * FROM \"disk.used_percent\" ORDER BY time");
    assert_eq!(disk.len(), 30);
    for (j, row) in disk.iter().enumerate() {
        assert_eq!(row["mount"], "/da,ta b");
        assert_eq!(f(&row["last"]), 40.0 + j as f64);
    }
    let net = server.select("hostwatch", "SELECT * FROM \"net.rx_rate\"");
    assert_eq!(net.len(), 30);
    assert!(
        net.iter().all(|r| r["iface"] == HOSTILE_STORED && f(&r["avg"]) == 1.5),
        "{:#?}",
        net[0]
    );
    let names: Vec<Value> =
        server.select("hostwatch", "SHOW MEASUREMENTS").iter().map(|m| m["name"].clone()).collect();
    assert_eq!(names, ["cpu.usage", "disk.used_percent", "mem.used", "net.rx_rate"]);
}

#[test]
fn a_replayed_half_hour_arrives_in_victoria_metrics_through_the_v2_api() {
    let dir = tempdir("influx-vm");
    let vm = Victoria::start("replay");
    let t0 = recent_hour();
    let influxdb =
        json!({"url": vm.base(), "org": "ops", "bucket": "hosts", "token": "t0ken-for-vm"});
    let cfg =
        config(&dir, "10s", json!({"resolution": "1m", "retention": "6h", "influxdb": influxdb}));
    replay(&cfg, &half_hour(&dir, t0), &dir.join("state"));

    let series = vm.wait_series("{__name__=~\"(cpu\\\\.usage|mem\\\\.used)_.*\"}", 10);
    let get = |name: &str| -> &Value {
        series
            .iter()
            .find(|s| s["metric"]["__name__"] == name)
            .unwrap_or_else(|| panic!("no {name}: {series:#?}"))
    };
    let minutes: Vec<i64> = (0..30).map(|j| (t0 as i64 + 60 * j) * 1000).collect();
    for (name, want) in [("cpu.usage_min", 0.0), ("cpu.usage_avg", 25.0), ("cpu.usage_max", 50.0)] {
        let s = get(name);
        assert_eq!(s["metric"]["host"], "web 1");
        assert_eq!(s["timestamps"], json!(minutes), "{name}");
        assert!(s["values"].as_array().unwrap().iter().all(|v| f(v) == want), "{name}: {s}");
    }
    assert!(get("cpu.usage_count")["values"].as_array().unwrap().iter().all(|v| f(v) == 6.0));
    let avg: Vec<f64> = get("mem.used_avg")["values"].as_array().unwrap().iter().map(f).collect();
    assert_eq!(avg, (0..30).map(|j| 6.0 * j as f64 + 2.5).collect::<Vec<_>>());
    let net = vm.wait_series("{__name__=\"net.rx_rate_last\"}", 1);
    assert_eq!(net.len(), 1, "{net:#?}");
    assert_eq!(net[0]["metric"]["iface"], HOSTILE_STORED);
    let disk = vm.wait_series("{__name__=\"disk.used_percent_last\"}", 1);
    assert_eq!(disk[0]["metric"]["mount"], "/da,ta b");
}

/// Slot starts and values of `cpu.usage` in the built-in history file.
fn file_slots(cfg: &Path) -> Vec<Value> {
    let o = run(&[
        "history",
        "cpu.usage",
        "--config",
        cfg.to_str().unwrap(),
        "--format",
        "json",
        "--since",
        "1h",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: Value = serde_json::from_str(&stdout(&o)).unwrap();
    doc["series"][0]["slots"].as_array().cloned().unwrap_or_default()
}

#[test]
fn run_pushes_each_slot_and_an_outage_loses_nothing() {
    let dir = tempdir("influx-run");
    let mut server = Influxd::start("run");
    server.create_database("hostwatch");
    let cfg = config(
        &dir,
        "1s",
        json!({"resolution": "2s", "retention": "1h", "raw": "5m",
               "influxdb": {"url": server.base(), "database": "hostwatch", "timeout": "2s"}}),
    );
    let mut daemon = Daemon::start(&cfg, false);
    let q = "SELECT * FROM \"cpu.usage\" ORDER BY time";
    let before = server.wait_rows("hostwatch", q, 2);
    assert!(before.len() >= 2, "run pushed slots: {before:?}\n{}", server.log());

    // Down across several slots (kill -9, then the same data directory again).
    server.kill();
    let down = Instant::now();
    assert!(
        daemon.wait_stderr(Duration::from_secs(30), "history influxdb").is_some(),
        "the failure is logged"
    );
    std::thread::sleep(Duration::from_secs(8).saturating_sub(down.elapsed()));
    server.restart();

    // Every slot the file holds since the first pushed one arrives (the backoff is at most
    // 20 s by now); the points written before the kill survived it.
    let first = f(&before[0]["time"]);
    let end = Instant::now() + Duration::from_secs(90);
    let (pushed, expected) = loop {
        let pushed: Vec<f64> =
            server.select("hostwatch", q).iter().map(|r| f(&r["time"])).collect();
        // The slot being filled is in the file already; it is pushed when it ends.
        let expected: Vec<f64> = file_slots(&cfg)
            .iter()
            .filter(|s| s["partial"] != true)
            .map(|s| f(&s["ts"]))
            .filter(|&t| t >= first)
            .collect();
        let later = expected.last().is_some_and(|&t| t > first + 16.0);
        if (later && expected.iter().all(|t| pushed.contains(t))) || Instant::now() > end {
            break (pushed, expected);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let outage: Vec<&f64> =
        expected.iter().filter(|&&t| t > first + 2.0 && t < first + 10.0).collect();
    assert!(outage.len() >= 3, "slots during the outage: {expected:?}");
    let missing: Vec<&f64> = expected.iter().filter(|t| !pushed.contains(t)).collect();
    assert!(missing.is_empty(), "slots missing in InfluxDB: {missing:?}\npushed {pushed:?}");
    let _ = daemon.wait_stderr(Duration::from_secs(30), "history influxdb: writing again");

    // Stop; the values agree with the file's (which keeps them as f32).
    daemon.signal("-TERM");
    assert!(daemon.child.wait().unwrap().success());
    let rows = server.select("hostwatch", q);
    for slot in file_slots(&cfg).iter().filter(|s| f(&s["ts"]) >= first) {
        let row = rows
            .iter()
            .find(|r| f(&r["time"]) == f(&slot["ts"]))
            .unwrap_or_else(|| panic!("slot {slot} not in InfluxDB"));
        for k in ["min", "avg", "max", "last"] {
            let (a, b) = (f(&row[k]), f(&slot[k]));
            assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{k}: {a} vs the file's {b}");
        }
        assert_eq!(row["count"], slot["count"], "{slot}");
        assert_eq!(row["host"], "web 1");
    }
}

#[test]
fn secrets_stay_out_of_the_log_and_check() {
    let dir = tempdir("influx-secrets");
    let port = free_port();
    let cfgs = [
        json!({"url": format!("http://admin:hunter2-url@127.0.0.1:{port}"), "database": "db",
               "username": "writer", "password": "hunter2-password"}),
        json!({"url": format!("http://127.0.0.1:{port}"), "org": "o", "bucket": "b",
               "token": "hunter2-token"}),
    ];
    for (n, influxdb) in cfgs.into_iter().enumerate() {
        let sub = dir.join(n.to_string());
        std::fs::create_dir_all(&sub).unwrap();
        let cfg = config(
            &sub,
            "1s",
            json!({"resolution": "1s", "retention": "1h", "influxdb": influxdb}),
        );
        let o = run(&["check", "--config", cfg.to_str().unwrap()]);
        let text = format!("{}{}", stdout(&o), stderr(&o));
        assert!(o.status.success(), "{text}");
        assert!(!text.contains("hunter2"), "check shows a secret: {text}");
        let daemon = Daemon::start(&cfg, false);
        let mut seen = Vec::new();
        let end = Instant::now() + Duration::from_secs(30);
        while !seen.iter().any(|l: &String| l.contains("history influxdb")) && Instant::now() < end
        {
            if let Ok(line) = daemon.stderr.recv_timeout(Duration::from_millis(200)) {
                seen.push(line);
            }
        }
        drop(daemon);
        let log = seen.join("\n");
        assert!(log.contains("history influxdb") && log.contains("points kept"), "{log}");
        assert!(!log.contains("hunter2") && !log.contains("admin"), "{log}");
    }
}
