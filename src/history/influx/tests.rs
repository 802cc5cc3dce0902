//! The InfluxDB sink's tests: the buffer bound, the backoff, answer classification and
//! redaction on their own, then against real servers on loopback (InfluxDB 1.x and
//! VictoriaMetrics from `tests/common/influx.rs`): values and hostile labels read back, an
//! outage, a missing database, a refused point, a body too large.

use super::*;
use crate::history::sink::{SlotRow, Stats};
use crate::metrics::{LabelKey, Metric};
use serde_json::Value;

#[path = "../../../tests/common/influx.rs"]
mod servers;

use servers::{Influxd, Victoria, free_port};

fn v1(url: &str, database: &str, buffer: usize) -> InfluxConfig {
    InfluxConfig {
        url: Secret::new(url),
        target: InfluxTarget::V1 { database: database.into(), username: None, password: None },
        buffer,
        timeout: None,
    }
}

fn sink(config: InfluxConfig) -> (InfluxSink, Arc<SinkStats>) {
    let stats = Arc::new(SinkStats::default());
    (InfluxSink::new(config, Duration::from_secs(10), Arc::clone(&stats)), stats)
}

type Row<'a> = (Metric, Option<(LabelKey, &'a str)>, Stats);

fn batch(host: &str, start: f64, rows: &[Row<'_>]) -> SlotBatch {
    SlotBatch {
        host: Arc::from(host),
        start,
        resolution: 60,
        rows: rows
            .iter()
            .map(|(metric, label, stats)| SlotRow {
                key: Arc::from(format!("{metric}")),
                metric: *metric,
                label: label.map(|(k, v)| (k, Arc::from(v))),
                stats: *stats,
            })
            .collect(),
    }
}

fn stats(min: f64, avg: f64, max: f64, last: f64, count: u32) -> Stats {
    Stats { min, avg, max, last, count }
}

/// Three series with values that only read back equal if nothing was rounded.
fn rows(k: f64) -> Vec<Row<'static>> {
    vec![
        (Metric::CpuUsage, None, stats(1.5 + k, 12.345678901234567 + k, 97.25 + k, 42.125 + k, 30)),
        (
            Metric::DiskUsedPercent,
            Some((LabelKey::Mount, "/")),
            stats(61.0 + k, 61.5, 62.0, 61.75, 30),
        ),
        (
            Metric::NetRxRate,
            Some((LabelKey::Iface, "eth0")),
            stats(0.0, 1.25e9 + k, 3.5e9, 2e-5, 29),
        ),
    ]
}

/// A recent slot start (VictoriaMetrics refuses points older than its retention).
fn recent_slot() -> f64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    (now.as_secs() / 60 * 60) as f64 - 3600.0
}

/// A URL nothing listens on.
fn closed_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

fn buffered_timestamps(s: &InfluxSink) -> Vec<String> {
    s.buffer.lines.iter().map(|l| l.rsplit(' ').next().unwrap().to_string()).collect()
}

#[test]
fn the_buffer_keeps_its_bound_by_dropping_the_oldest_and_counts_them() {
    let (mut s, stats) = sink(v1(&closed_url(), "db", 5));
    let three = rows(0.0);
    let first = s.slot(&batch("h", 100.0, &three)).unwrap_err();
    assert!(first.contains("3 points kept (at most 5), next try in 5s"), "{first}");
    assert_eq!(stats.failures.load(Ordering::Relaxed), 1);
    let second = s.slot(&batch("h", 200.0, &three)).unwrap_err();
    assert!(second.contains("dropped the 1 oldest (1 dropped in all)"), "{second}");
    let third = s.slot(&batch("h", 300.0, &three)).unwrap_err();
    assert!(third.contains("dropped the 3 oldest (4 dropped in all)"), "{third}");
    assert_eq!(buffered_timestamps(&s), ["200", "200", "300", "300", "300"]);
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 4);
    assert_eq!(stats.written.load(Ordering::Relaxed), 0);
    // While backing off, new slots were only buffered: no second request.
    assert_eq!(stats.failures.load(Ordering::Relaxed), 1);
    let polled = s.poll().unwrap_err();
    assert!(polled.starts_with("POST http://127.0.0.1:"), "{polled}");
    assert!(polled.contains("/write (3 points): connecting to 127.0.0.1"), "{polled}");
    assert_eq!(
        stats.failures.load(Ordering::Relaxed),
        1,
        "poll before the backoff ends sends nothing"
    );
}

#[test]
fn alert_events_do_not_read_as_a_recovery_and_a_stop_does_not_wait_for_a_dead_server() {
    let (mut s, stats) = sink(v1(&closed_url(), "db", 100));
    assert_eq!(s.events(&[]), Ok(()), "nothing waiting");
    s.slot(&batch("h", 60.0, &rows(0.0))).unwrap_err();
    let e = s.events(&[]).unwrap_err();
    assert!(e.contains("3 points kept"), "{e}");
    // One more try at the stop (the backoff ignored), then the points are counted lost.
    let start = Instant::now();
    s.close(start + Duration::from_secs(60));
    assert!(start.elapsed() < Duration::from_secs(30), "close gave up at the first refusal");
    assert_eq!(stats.failures.load(Ordering::Relaxed), 2);
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 3);
}

#[test]
fn the_backoff_doubles_from_5s_to_2min_honours_a_longer_retry_after_and_resets() {
    let t0 = Instant::now();
    let mut b = Backoff::default();
    assert!(b.due(t0));
    let waits: Vec<u64> = (0..7).map(|_| b.failed(t0, None).as_secs()).collect();
    assert_eq!(waits, [5, 10, 20, 40, 80, 120, 120]);
    assert!(!b.due(t0 + Duration::from_secs(119)));
    assert!(b.due(t0 + Duration::from_secs(120)));
    b.ok();
    assert!(b.due(t0));
    assert_eq!(b.failed(t0, Some(Duration::from_secs(30))).as_secs(), 30, "Retry-After wins");
    assert_eq!(b.failed(t0, Some(Duration::from_secs(3600))).as_secs(), 120, "capped");
    assert_eq!(b.failed(t0, Some(Duration::from_secs(1))).as_secs(), 20, "the backoff wins");
}

#[test]
fn answers_are_classified_per_batch() {
    let answer =
        |status: i32, body: &str| HttpResponse { status, body: body.into(), retry_after: None };
    assert_eq!(classify("w", &answer(204, "")), Outcome::Written);
    assert_eq!(classify("w", &answer(200, "")), Outcome::Written);
    for status in [408, 429, 500, 503] {
        assert!(matches!(classify("w", &answer(status, "")), Outcome::Retry { .. }), "{status}");
    }
    let Outcome::Retry { reason, .. } =
        classify("w", &answer(404, "{\"error\":\"database not found\"}"))
    else {
        panic!("404 is kept")
    };
    assert!(reason.contains("database not found") && reason.contains("exist?"), "{reason}");
    assert!(matches!(classify("w", &answer(401, "")), Outcome::Retry { .. }));
    assert!(matches!(classify("w", &answer(403, "")), Outcome::Retry { .. }));
    assert!(matches!(classify("w", &answer(413, "")), Outcome::TooLarge(_)));
    let Outcome::Refused(reason) =
        classify("POST x", &answer(400, "{\"error\":\"partial write: field type conflict\"}"))
    else {
        panic!("400 is refused")
    };
    assert_eq!(reason, "POST x: HTTP 400: {\"error\":\"partial write: field type conflict\"}");
    assert!(matches!(classify("w", &answer(302, "")), Outcome::Refused(_)));
}

#[test]
fn a_batch_holds_at_most_its_lines_and_bytes_but_always_one_line() {
    let mut b = Buffer::new(100);
    for i in 0..10 {
        b.push(format!("line{i}").into());
    }
    let (body, n) = b.batch(3, 1000);
    assert_eq!((body.as_slice(), n), (&b"line0\nline1\nline2\n"[..], 3));
    let (body, n) = b.batch(100, 12);
    assert_eq!((body.as_slice(), n), (&b"line0\nline1\n"[..], 2));
    let (body, n) = b.batch(100, 1);
    assert_eq!((body.as_slice(), n), (&b"line0\n"[..], 1));
    b.consume(9);
    assert_eq!(b.batch(100, 1000), (b"line9\n".to_vec(), 1));
}

#[test]
fn query_values_are_percent_encoded_and_credentials_go_in_a_header() {
    assert_eq!(query_value("my db&x=1 ü"), "my%20db%26x%3D1%20%C3%BC");
    let config = InfluxConfig {
        url: Secret::new("https://influx.example.com:8086/"),
        target: InfluxTarget::V1 {
            database: "host watch".into(),
            username: Some("writer".into()),
            password: Some(Secret::new("pw")),
        },
        buffer: 10,
        timeout: None,
    };
    let (s, _) = sink(config);
    assert_eq!(
        s.write_url.expose(),
        "https://influx.example.com:8086/write?db=host%20watch&precision=s"
    );
    assert!(s.headers.contains(&("Authorization".into(), "Basic d3JpdGVyOnB3".into())));
    let config = InfluxConfig {
        url: Secret::new("http://127.0.0.1:8086"),
        target: InfluxTarget::V2 {
            org: "my org".into(),
            bucket: "b/1".into(),
            token: Secret::new("tok"),
        },
        buffer: 10,
        timeout: None,
    };
    let (s, _) = sink(config);
    assert_eq!(
        s.write_url.expose(),
        "http://127.0.0.1:8086/api/v2/write?org=my%20org&bucket=b%2F1&precision=s"
    );
    assert!(s.headers.contains(&("Authorization".into(), "Token tok".into())));
}

#[test]
fn no_message_names_the_url_user_info_the_password_or_the_token() {
    let port = free_port();
    let configs = [
        InfluxConfig {
            url: Secret::new(format!("http://admin:hunter2-url-pass@127.0.0.1:{port}")),
            target: InfluxTarget::V1 {
                database: "db".into(),
                username: Some("writer".into()),
                password: Some(Secret::new("hunter2-password")),
            },
            buffer: 1,
            timeout: None,
        },
        InfluxConfig {
            url: Secret::new(format!("http://127.0.0.1:{port}")),
            target: InfluxTarget::V2 {
                org: "o".into(),
                bucket: "b".into(),
                token: Secret::new("hunter2-token"),
            },
            buffer: 1,
            timeout: None,
        },
    ];
    for config in configs {
        let (mut s, _) = sink(config);
        let mut messages = vec![s.shown.clone()];
        messages.push(s.slot(&batch("h", 60.0, &rows(0.0))).unwrap_err());
        messages.push(s.poll().unwrap_err());
        for m in messages {
            assert!(!m.contains("hunter2") && !m.contains("admin"), "{m}");
        }
        assert!(s.shown.starts_with("http://"), "{}", s.shown);
    }
}

/// Tag values as the servers must store them: control characters as U+FFFD, backslashes no
/// server reads alike as U+29F5, the rest as given.
const HOSTILE: [(&str, &str); 9] = [
    ("eth0\ncpu.usage,host=evil min=99 1", "eth0\u{FFFD}cpu.usage,host=evil min=99 1"),
    ("a\\", "a\u{29F5}"),
    ("a\\ b", "a\u{29F5} b"),
    ("a\\,evil=1", "a\u{29F5},evil=1"),
    ("two\\\\x", "two\u{29F5}\\x"),
    ("c:\\dir\\x", "c:\\dir\\x"),
    ("q\"uote's", "q\"uote's"),
    ("tab\tnul\0cr\r", "tab\u{FFFD}nul\u{FFFD}cr\u{FFFD}"),
    (" =,", " =,"),
];

fn hostile_rows() -> Vec<Row<'static>> {
    HOSTILE
        .iter()
        .enumerate()
        .map(|(i, (text, _))| {
            (Metric::NetTxRate, Some((LabelKey::Iface, *text)), stats(i as f64, 1.0, 2.0, 3.0, 4))
        })
        .collect()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn influxdb_1x_returns_the_pushed_values_and_labels() {
    let server = Influxd::start("values");
    server.create_database("hostwatch");
    let (mut s, stats) = sink(v1(&server.base(), "hostwatch", 1000));
    let t = recent_slot();
    s.slot(&batch("web-1", t, &rows(0.0))).unwrap();
    s.slot(&batch("web-1", t + 60.0, &rows(1.0))).unwrap();
    s.slot(&batch("web 1,x=y", t, &hostile_rows())).unwrap();
    assert_eq!(stats.written.load(Ordering::Relaxed), 6 + HOSTILE.len() as u64);

    let cpu = server.select("hostwatch", "SELECT * FROM \"cpu.usage\" ORDER BY time");
    assert_eq!(cpu.len(), 2, "{cpu:?}");
    for (row, k) in cpu.iter().zip([0.0, 1.0]) {
        assert_eq!(f(&row["time"]), t + 60.0 * k);
        assert_eq!(row["host"], "web-1");
        assert_eq!(f(&row["min"]), 1.5 + k);
        assert_eq!(f(&row["avg"]), 12.345678901234567 + k);
        assert_eq!(f(&row["max"]), 97.25 + k);
        assert_eq!(f(&row["last"]), 42.125 + k);
        assert_eq!(row["count"], 30);
    }
    let net = server.select("hostwatch", "SELECT * FROM \"net.rx_rate\" WHERE iface = 'eth0'");
    assert_eq!(net.len(), 2, "{net:?}");
    assert_eq!((f(&net[0]["avg"]), f(&net[0]["last"]), f(&net[0]["max"])), (1.25e9, 2e-5, 3.5e9));
    let disk = server.select("hostwatch", "SELECT * FROM \"disk.used_percent\"");
    assert_eq!(disk.len(), 2);
    assert_eq!(disk[0]["mount"], "/");

    let hostile = server.select("hostwatch", "SELECT * FROM \"net.tx_rate\" ORDER BY time");
    assert_eq!(hostile.len(), HOSTILE.len(), "one point per hostile label: {hostile:#?}");
    for row in &hostile {
        assert_eq!(row["host"], "web 1,x=y");
        let i = f(&row["min"]) as usize;
        assert_eq!(row["iface"], HOSTILE[i].1, "label {:?}", HOSTILE[i].0);
        assert_eq!((f(&row["max"]), row["count"].clone()), (2.0, Value::from(4)));
    }
    let measurements = server.select("hostwatch", "SHOW MEASUREMENTS");
    let names: Vec<&str> = measurements.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["cpu.usage", "disk.used_percent", "net.rx_rate", "net.tx_rate"],
        "no injected measurement"
    );
}

#[test]
fn victoria_metrics_returns_the_pushed_values_through_both_write_apis() {
    let vm = Victoria::start("values");
    let t = recent_slot();
    let (mut s1, _) = sink(v1(&vm.base(), "hostwatch", 1000));
    s1.slot(&batch("web-1", t, &rows(0.0))).unwrap();
    s1.slot(&batch("web 1,x=y", t, &hostile_rows())).unwrap();
    let v2 = InfluxConfig {
        url: Secret::new(vm.base()),
        target: InfluxTarget::V2 {
            org: "ops".into(),
            bucket: "b2".into(),
            token: Secret::new("any"),
        },
        buffer: 1000,
        timeout: None,
    };
    let (mut s2, stats2) = sink(v2);
    s2.slot(&batch("web-2", t, &rows(5.0))).unwrap();
    assert_eq!(stats2.written.load(Ordering::Relaxed), 3);

    let series = vm.wait_series("{__name__=~\"cpu\\\\.usage_.*\"}", 10);
    let value = |host: &str, field: &str| -> f64 {
        let s = series
            .iter()
            .find(|s| {
                s["metric"]["__name__"] == format!("cpu.usage_{field}")
                    && s["metric"]["host"] == host
            })
            .unwrap_or_else(|| panic!("no cpu.usage_{field} for {host} in {series:#?}"));
        assert_eq!(s["timestamps"], serde_json::json!([t as i64 * 1000]), "{s}");
        f(&s["values"][0])
    };
    // VictoriaMetrics keeps about 12 significant digits (its decimal encoding); these
    // values are exact in that.
    let close = |got: f64, want: f64| (got - want).abs() <= want.abs() * 1e-11;
    for (host, k) in [("web-1", 0.0), ("web-2", 5.0)] {
        assert_eq!(value(host, "min"), 1.5 + k);
        let avg = value(host, "avg");
        assert!(close(avg, 12.345678901234567 + k), "{avg}");
        assert_eq!(value(host, "max"), 97.25 + k);
        assert_eq!(value(host, "last"), 42.125 + k);
        assert_eq!(value(host, "count"), 30.0);
    }
    let hostile = vm.wait_series("{__name__=\"net.tx_rate_min\"}", HOSTILE.len());
    assert_eq!(hostile.len(), HOSTILE.len(), "{hostile:#?}");
    for s in &hostile {
        assert_eq!(s["metric"]["host"], "web 1,x=y");
        let i = f(&s["values"][0]) as usize;
        assert_eq!(s["metric"]["iface"], HOSTILE[i].1, "label {:?}", HOSTILE[i].0);
    }
    let names = vm.export("{__name__=~\".+\"}");
    assert!(
        names.iter().all(|s| !s["metric"]["__name__"].as_str().unwrap().contains("evil")),
        "no injected series"
    );
}

#[test]
fn points_buffered_while_influxdb_is_down_arrive_when_it_is_back() {
    let mut server = Influxd::start("outage");
    server.create_database("hostwatch");
    let (mut s, stats) = sink(v1(&server.base(), "hostwatch", 1000));
    let t = recent_slot();
    s.slot(&batch("h", t, &rows(0.0))).unwrap();
    server.kill();
    for k in 1..=4 {
        let e = s.slot(&batch("h", t + 60.0 * k as f64, &rows(k as f64))).unwrap_err();
        assert!(e.contains("points kept"), "{e}");
    }
    assert_eq!(s.buffer.len(), 12);
    // Still down when the backoff ends: one more failure, a longer wait.
    std::thread::sleep(BACKOFF_FIRST);
    assert!(s.poll().unwrap_err().contains("next try in 10s"));
    assert_eq!(stats.failures.load(Ordering::Relaxed), 2);
    server.restart();
    let end = Instant::now() + Duration::from_secs(60);
    while !s.buffer.is_empty() && Instant::now() < end {
        let _ = s.poll();
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(s.buffer.len(), 0, "buffered points sent after the restart");
    assert_eq!(stats.written.load(Ordering::Relaxed), 15);
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
    let cpu = server.select("hostwatch", "SELECT * FROM \"cpu.usage\" ORDER BY time");
    let times: Vec<f64> = cpu.iter().map(|r| f(&r["time"])).collect();
    assert_eq!(times, (0..5).map(|k| t + 60.0 * k as f64).collect::<Vec<_>>(), "no gap");
    for (row, k) in cpu.iter().zip(0..) {
        assert_eq!(f(&row["avg"]), 12.345678901234567 + k as f64);
    }
}

#[test]
fn a_missing_database_keeps_the_points_until_it_exists() {
    let server = Influxd::start("nodb");
    let (mut s, stats) = sink(v1(&server.base(), "later", 1000));
    let e = s.slot(&batch("h", recent_slot(), &rows(0.0))).unwrap_err();
    assert!(
        e.contains("HTTP 404") && e.contains("database not found") && e.contains("3 points kept"),
        "{e}"
    );
    server.create_database("later");
    // Closing ignores the backoff.
    s.close(Instant::now() + Duration::from_secs(20));
    assert_eq!(stats.written.load(Ordering::Relaxed), 3);
    assert_eq!(server.wait_rows("later", "SELECT * FROM /.*/", 3).len(), 3);
}

#[test]
fn points_the_server_refuses_are_dropped_counted_and_reported() {
    let server = Influxd::start("conflict");
    server.create_database("hostwatch");
    let t = recent_slot();
    // Someone else wrote `count` as a float: our integer count conflicts.
    let (status, body) =
        server.write("hostwatch", &format!("cpu.usage,host=other count=1.5 {}", t as i64));
    assert_eq!(status, 204, "{body}");
    let (mut s, stats) = sink(v1(&server.base(), "hostwatch", 1000));
    let e = s.slot(&batch("h", t, &rows(0.0))).unwrap_err();
    assert!(
        e.contains("the server refused 3 points, which were dropped") && e.contains("HTTP 400"),
        "{e}"
    );
    assert!(e.contains("field type conflict"), "{e}");
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 3);
    assert_eq!(s.buffer.len(), 0, "not retried");
    // A partial write: InfluxDB kept the points without a conflict.
    assert_eq!(server.select("hostwatch", "SELECT * FROM \"disk.used_percent\"").len(), 1);
    // The next slot is written as usual (the conflict is per measurement).
    s.slot(&batch("h", t + 60.0, &rows(1.0)[1..])).unwrap();
    assert_eq!(stats.written.load(Ordering::Relaxed), 2);
}

#[test]
fn a_body_too_large_is_sent_again_in_halves() {
    let server = Influxd::start_with("toolarge", "  max-body-size = 600");
    server.create_database("hostwatch");
    let (mut s, stats) = sink(v1(&server.base(), "hostwatch", 1000));
    let t = recent_slot();
    // 12 lines of about 100 bytes, 3 series (the later duplicates overwrite the same points).
    let twelve: Vec<Row<'_>> = rows(0.0).into_iter().cycle().take(12).collect();
    let big = batch("h", t, &twelve);
    s.slot(&big).unwrap();
    assert!(stats.failures.load(Ordering::Relaxed) >= 1, "at least one 413");
    assert_eq!(stats.written.load(Ordering::Relaxed), 12);
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
    assert_eq!(server.select("hostwatch", "SELECT * FROM /.*/").len(), 3);
}

/// Encoding cost and request size for 100 series (run with `--ignored --nocapture`; prints
/// figures, asserts only the shape).
#[test]
#[ignore]
fn encoding_cost_for_100_series() {
    let labels: Vec<String> = (0..100).map(|i| format!("/srv/volume-{i}")).collect();
    let rows: Vec<Row<'_>> = labels
        .iter()
        .map(|l| {
            (
                Metric::DiskUsedPercent,
                Some((LabelKey::Mount, l.as_str())),
                stats(12.5, 37.123456789, 88.0, 40.25, 60),
            )
        })
        .collect();
    let b = batch("web-01.example.com", 1_796_188_800.0, &rows);
    let (mut s, _) = sink(v1(&closed_url(), "hostwatch", 1_000_000));
    let slots = 2000;
    let start = Instant::now();
    for _ in 0..slots {
        assert!(s.take(&b).is_none());
    }
    let took = start.elapsed();
    let (body, n) = s.buffer.batch(100, BATCH_BYTES);
    assert_eq!(n, 100);
    let lines = (slots * 100) as f64;
    println!(
        "100 series: {:.0} ns per line, {:.0} lines/s, one slot's request body {} bytes ({} per line)",
        took.as_nanos() as f64 / lines,
        lines / took.as_secs_f64(),
        body.len(),
        body.len() / 100
    );
}
