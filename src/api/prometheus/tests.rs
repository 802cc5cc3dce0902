//! Tests of the exposition: the exact text of a small view, escaping of hostile labels,
//! family grouping, no NaN, and a parser of the text format that every rendering must pass.

use super::*;
use crate::api::view::{AlertRow, Recent, SeriesRow};
use crate::config::Severity;
use crate::notify::delivery::ChannelHealth;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

fn row(metric: Metric, label: Option<&str>, value: f64) -> SeriesRow {
    let key: Arc<str> = match (metric.label_key(), label) {
        (Some(k), Some(v)) => format!("{metric}{{{k}={v}}}").into(),
        _ => metric.name().into(),
    };
    SeriesRow {
        metric,
        label: label.map(Into::into),
        key,
        live: true,
        value,
        recent: Recent::new(),
    }
}

fn alert(rule: &str, metric: Metric, label: Option<&str>, firing: bool, sev: Severity) -> AlertRow {
    let phase = if firing {
        Phase::Firing {
            severity: sev,
            since: 1_700_000_000.0,
            last_notified: 1_700_000_000.0,
            seq: 1,
            announced: true,
            told: sev,
            firing_s: 10.0,
            quiet_s: 0.0,
            nodata: None,
            peak: f64::NAN,
            escalated_by: None,
        }
    } else {
        Phase::Pending { since: 1_700_000_010.0 }
    };
    AlertRow {
        rule: rule.into(),
        metric,
        label: label.map(Into::into),
        series: row(metric, label, 0.0).key,
        phase,
        severity: sev,
        value: 95.0,
        threshold: "> 90".into(),
        silenced_by: None,
        flapping: None,
    }
}

/// A view of host `web-01` after three ticks.
fn small_view() -> View {
    let mut v = View::new("web-01", "/etc/hostwatch.json", Duration::from_secs(10));
    v.version = "1.2.3";
    v.started_unix = 1_700_000_000.0;
    v.ticks = 3;
    v.last_tick_unix = 1_700_000_020.5;
    v.tick_duration = Duration::from_millis(2);
    v
}

fn render_text(v: &View) -> String {
    let mut out = String::new();
    render(v, &mut out);
    out
}

/// One sample: its name, its labels (unescaped, in order) and its value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: Labels,
    value: f64,
}

impl Sample {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

/// Label names and (unescaped) values, in order.
type Labels = Vec<(String, String)>;

/// Parses `{k="v",…}` from the start of `s`; returns the labels and the rest after `}`.
fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut labels: Labels = Vec::new();
    let mut rest = s.strip_prefix('{').ok_or("no {")?;
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let key = &rest[..eq];
        if !valid_label_name(key) {
            return Err(format!("bad label name {key:?}"));
        }
        if labels.iter().any(|(k, _)| k == key) {
            return Err(format!("label {key} twice"));
        }
        rest = rest[eq + 1..].strip_prefix('"').ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("dangling backslash")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    c => return Err(format!("bad escape \\{c}")),
                },
                (_, '\n') => return Err("raw newline in a label value".into()),
                (_, c) => value.push(c),
            }
        };
        labels.push((key.to_string(), value));
        rest = &rest[end + 1..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err("labels not separated by ,".into());
        }
    }
}

/// Checks `text` against the text format (0.0.4) and hostwatch's promises: every line a
/// HELP, a TYPE or a sample `name{labels} value`; HELP and TYPE once per family, before its
/// samples, which come together; only gauges and counters, counters (only) ending in
/// `_total`; finite values, no timestamps, no series twice, `host` first on every sample.
fn try_parse(text: &str) -> Result<Vec<Sample>, String> {
    if !text.ends_with('\n') {
        return Err("the exposition does not end with a line feed".into());
    }
    let mut samples = Vec::new();
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut helped = BTreeSet::new();
    let mut done = BTreeSet::new();
    let mut current: Option<String> = None;
    let mut seen = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let fail = |why: &str| format!("line {}: {why}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').ok_or_else(|| fail("HELP without text"))?;
            if !valid_metric_name(name) || !helped.insert(name.to_string()) || help.is_empty() {
                return Err(fail("bad or repeated HELP"));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').ok_or_else(|| fail("TYPE without type"))?;
            if !valid_metric_name(name) || typed.contains_key(name) {
                return Err(fail("bad or repeated TYPE"));
            }
            match kind {
                "counter" if name.ends_with("_total") => {}
                "gauge" if !name.ends_with("_total") => {}
                _ => return Err(fail("only gauges, and counters named _total")),
            }
            if let Some(prev) = current.replace(name.to_string()) {
                done.insert(prev);
            }
            typed.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            return Err(fail("unexpected comment or empty line"));
        }
        let split = line.find(['{', ' ']).ok_or_else(|| fail("no value"))?;
        let name = &line[..split];
        if !valid_metric_name(name) {
            return Err(fail("bad metric name"));
        }
        let (labels, rest) = if line[split..].starts_with('{') {
            parse_labels(&line[split..]).map_err(|e| fail(&e))?
        } else {
            (Vec::new(), &line[split..])
        };
        let value = rest.strip_prefix(' ').ok_or_else(|| fail("no space before the value"))?;
        if value.contains(' ') {
            return Err(fail("a timestamp or trailing text"));
        }
        let value: f64 = value.parse().map_err(|_| fail("value is not a number"))?;
        if !value.is_finite() {
            return Err(fail("non-finite value"));
        }
        if current.as_deref() != Some(name) || done.contains(name) || !helped.contains(name) {
            return Err(fail(
                "sample outside its family (no TYPE/HELP before it, or family split)",
            ));
        }
        if labels.first().map(|(k, _)| k.as_str()) != Some("host") {
            return Err(fail("host is not the first label"));
        }
        let mut identity: Vec<_> = labels.clone();
        identity.sort();
        if !seen.insert((name.to_string(), identity)) {
            return Err(fail("the same series twice"));
        }
        samples.push(Sample { name: name.to_string(), labels, value });
    }
    if helped.len() != typed.len() {
        return Err("a TYPE without a HELP".into());
    }
    Ok(samples)
}

/// [`try_parse`], failing the test with the reason and the text.
fn parse(text: &str) -> Vec<Sample> {
    try_parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn a_small_view_renders_exactly() {
    let mut v = small_view();
    v.series.push(row(Metric::CpuUsage, None, 12.5));
    v.series.push(row(Metric::DiskUsedPercent, Some("/"), 40.0));
    v.series.push(row(Metric::DiskFree, Some("/"), 1e9));
    v.series.push(row(Metric::DiskUsedPercent, Some("/data"), 91.25));
    v.series.push(row(Metric::NetRxRate, Some("eth0"), f64::NAN));
    v.alerts.push(alert(
        "disk_full",
        Metric::DiskUsedPercent,
        Some("/data"),
        true,
        Severity::Critical,
    ));
    v.alerts.push(alert("cpu_busy", Metric::CpuUsage, None, false, Severity::Warning));
    v.channels.insert(
        "hook".into(),
        ChannelHealth {
            pending: 1,
            delivered: 2,
            failed: 1,
            retried: 3,
            held_back: 0,
            consecutive_failures: 0,
            last_success: Some(1_700_000_019.0),
            last_error: None,
        },
    );
    let text = render_text(&v);
    let want = r#"# HELP hostwatch_cpu_usage_percent CPU busy time, all cores, percent.
# TYPE hostwatch_cpu_usage_percent gauge
hostwatch_cpu_usage_percent{host="web-01"} 12.5
# HELP hostwatch_disk_used_percent Space used on a mount, percent of what non-root users can reach (as df).
# TYPE hostwatch_disk_used_percent gauge
hostwatch_disk_used_percent{host="web-01",mount="/"} 40
hostwatch_disk_used_percent{host="web-01",mount="/data"} 91.25
# HELP hostwatch_disk_free_bytes Space available to non-root users on a mount, bytes.
# TYPE hostwatch_disk_free_bytes gauge
hostwatch_disk_free_bytes{host="web-01",mount="/"} 1000000000
# HELP hostwatch_alert A pending or firing alert of a rule on a series (1).
# TYPE hostwatch_alert gauge
hostwatch_alert{host="web-01",rule="disk_full",severity="critical",state="firing",mount="/data"} 1
hostwatch_alert{host="web-01",rule="cpu_busy",severity="warning",state="pending"} 1
# HELP hostwatch_build_info hostwatch's version (1).
# TYPE hostwatch_build_info gauge
hostwatch_build_info{host="web-01",version="1.2.3"} 1
# HELP hostwatch_start_time_seconds When the daemon started, Unix seconds.
# TYPE hostwatch_start_time_seconds gauge
hostwatch_start_time_seconds{host="web-01"} 1700000000
# HELP hostwatch_interval_seconds The sampling interval, seconds.
# TYPE hostwatch_interval_seconds gauge
hostwatch_interval_seconds{host="web-01"} 10
# HELP hostwatch_ticks_total Ticks since the daemon started.
# TYPE hostwatch_ticks_total counter
hostwatch_ticks_total{host="web-01"} 3
# HELP hostwatch_last_tick_timestamp_seconds When the last tick's sample was taken, Unix seconds.
# TYPE hostwatch_last_tick_timestamp_seconds gauge
hostwatch_last_tick_timestamp_seconds{host="web-01"} 1700000020.5
# HELP hostwatch_tick_duration_seconds How long the last tick took, seconds.
# TYPE hostwatch_tick_duration_seconds gauge
hostwatch_tick_duration_seconds{host="web-01"} 0.002
# HELP hostwatch_silences Silences in force (config and hostwatch silence).
# TYPE hostwatch_silences gauge
hostwatch_silences{host="web-01"} 0
# HELP hostwatch_persist_failing 1 while the state cannot be saved, else 0.
# TYPE hostwatch_persist_failing gauge
hostwatch_persist_failing{host="web-01"} 0
# HELP hostwatch_write_failures_total Outbox journal and events log writes that failed since start.
# TYPE hostwatch_write_failures_total counter
hostwatch_write_failures_total{host="web-01"} 0
# HELP hostwatch_outbox_items Notifications waiting in the outbox.
# TYPE hostwatch_outbox_items gauge
hostwatch_outbox_items{host="web-01",channel="hook"} 1
# HELP hostwatch_deliveries_total Delivery outcomes since start: delivered, failed (given up), retried attempts, and held back by the channel's rate limit.
# TYPE hostwatch_deliveries_total counter
hostwatch_deliveries_total{host="web-01",channel="hook",result="delivered"} 2
hostwatch_deliveries_total{host="web-01",channel="hook",result="failed"} 1
hostwatch_deliveries_total{host="web-01",channel="hook",result="retried"} 3
hostwatch_deliveries_total{host="web-01",channel="hook",result="held_back"} 0
# HELP hostwatch_channel_consecutive_failures Failed delivery attempts since the channel's last success.
# TYPE hostwatch_channel_consecutive_failures gauge
hostwatch_channel_consecutive_failures{host="web-01",channel="hook"} 0
# HELP hostwatch_channel_last_success_timestamp_seconds When the channel's receiver last accepted a delivery, Unix seconds.
# TYPE hostwatch_channel_last_success_timestamp_seconds gauge
hostwatch_channel_last_success_timestamp_seconds{host="web-01",channel="hook"} 1700000019
"#;
    assert_eq!(text, want);
    parse(&text);
}

#[test]
fn hostile_labels_are_escaped_and_read_back_unchanged() {
    let hostile = ["/mnt/a\"b\\c\nd", "<script>x</script>", "/mnt/\\n not a newline", "\"", "\\"];
    let mut v = View::new("we\"b\\01\n", "x", Duration::from_secs(1));
    for m in hostile {
        v.series.push(row(Metric::DiskUsedPercent, Some(m), 50.0));
        v.alerts.push(alert(m, Metric::DiskUsedPercent, Some(m), true, Severity::Warning));
    }
    v.channels.insert("a\"b\\c\nd".into(), ChannelHealth::default());
    let text = render_text(&v);
    assert!(text.contains(r#"mount="/mnt/a\"b\\c\nd""#), "{text}");
    assert!(text.contains(r#"host="we\"b\\01\n""#), "{text}");
    let samples = parse(&text);
    for s in &samples {
        assert_eq!(s.label("host"), Some("we\"b\\01\n"), "{s:?}");
    }
    let mounts = |name: &str| -> Vec<&str> {
        samples.iter().filter(|s| s.name == name).filter_map(|s| s.label("mount")).collect()
    };
    assert_eq!(mounts("hostwatch_disk_used_percent"), hostile);
    assert_eq!(mounts("hostwatch_alert"), hostile);
    let rules: Vec<_> = samples.iter().filter_map(|s| s.label("rule")).collect();
    assert_eq!(rules, hostile);
    let channels: BTreeSet<_> = samples.iter().filter_map(|s| s.label("channel")).collect();
    assert_eq!(channels, BTreeSet::from(["a\"b\\c\nd"]));
}

#[test]
fn each_family_appears_once_with_all_its_samples_together() {
    let mut v = small_view();
    // Rows interleaved as a registry has them: mounts and devices appear over time.
    for i in 0..3 {
        let mount = format!("/m{i}");
        v.series.push(row(Metric::DiskUsedPercent, Some(&mount), 10.0 * f64::from(i)));
        v.series.push(row(Metric::DiskFree, Some(&mount), 1024.0));
        v.series.push(row(Metric::CpuCoreUsage, Some(&i.to_string()), 5.0));
        v.series.push(row(Metric::NetRxRate, Some(&format!("eth{i}")), 100.0));
    }
    let text = render_text(&v);
    let samples = parse(&text);
    for family in [
        "hostwatch_disk_used_percent",
        "hostwatch_disk_free_bytes",
        "hostwatch_cpu_core_usage_percent",
        "hostwatch_net_rx_bytes_per_second",
    ] {
        assert_eq!(text.matches(&format!("# TYPE {family} gauge\n")).count(), 1, "{text}");
        assert_eq!(samples.iter().filter(|s| s.name == family).count(), 3, "{family}");
    }
    // Catalogue order, whatever the order of rows.
    let pos = |s: &str| text.find(s).unwrap();
    assert!(pos("# TYPE hostwatch_cpu_core_usage_percent") < pos("# TYPE hostwatch_disk_used"));
    assert!(pos("# TYPE hostwatch_disk_free_bytes") < pos("# TYPE hostwatch_net_rx_bytes"));
}

#[test]
fn no_value_no_sample_and_never_nan() {
    let mut v = small_view();
    v.series.push(row(Metric::NetRxRate, Some("eth0"), f64::NAN));
    v.series.push(row(Metric::NetTxRate, Some("eth0"), f64::INFINITY));
    v.series.push(row(Metric::Load1, None, f64::NEG_INFINITY));
    let mut dead = row(Metric::DiskUsedPercent, Some("/gone"), 12.0);
    dead.live = false;
    v.series.push(dead);
    v.series.push(row(Metric::Load5, None, 0.5));
    let text = render_text(&v);
    for absent in ["NaN", "Inf", "net_rx", "net_tx", "load_1{", "/gone", "disk_used"] {
        assert!(!text.contains(absent), "{absent} in\n{text}");
    }
    assert!(text.contains("hostwatch_load_5{host=\"web-01\"} 0.5\n"), "{text}");
    parse(&text);
}

#[test]
fn before_the_first_tick_there_is_no_last_tick_and_no_family_is_empty() {
    let v = View::new("h", "x", Duration::from_secs(5));
    let text = render_text(&v);
    assert!(!text.contains("last_tick"), "{text}");
    assert!(!text.contains("hostwatch_alert"), "{text}");
    assert!(!text.contains("channel"), "{text}");
    let samples = parse(&text);
    assert!(samples.iter().any(|s| s.name == "hostwatch_ticks_total" && s.value == 0.0));
}

#[test]
fn every_metric_has_a_valid_unique_name_with_its_unit_suffix() {
    let mut v = small_view();
    let mut names = BTreeSet::new();
    for &m in Metric::ALL {
        let mut name = String::new();
        family_name(&mut name, m);
        assert!(valid_metric_name(&name), "{name}");
        assert!(name.ends_with(unit_suffix(m.unit())), "{name}");
        assert!(!name.ends_with("_total"), "{name}: a gauge named like a counter");
        assert!(!name.contains("_percent_percent") && !name.contains("__"), "{name}");
        assert!(names.insert(name.clone()), "{name} twice");
        let label = m.label_key().map(|k| k.as_str());
        v.series.push(row(m, label, 1.0));
    }
    assert!(names.contains("hostwatch_swap_in_per_second"));
    assert!(names.contains("hostwatch_mem_available_bytes"));
    assert!(names.contains("hostwatch_tcp_established"));
    let samples = parse(&render_text(&v));
    let families: BTreeSet<_> = samples.iter().map(|s| s.name.clone()).collect();
    assert!(names.is_subset(&families));
}

#[test]
fn the_parser_rejects_what_prometheus_would() {
    for bad in [
        "x{host=\"a\"} 1",                                // no TYPE
        "# HELP x h\n# TYPE x gauge\nx{host=\"a\\q\"} 1", // bad escape
        "# HELP x h\n# TYPE x gauge\nx{host=\"a\"} NaN",
        "# HELP x h\n# TYPE x gauge\nx{host=\"a\"b\"} 1", // unescaped quote
        "# HELP x h\n# TYPE x gauge\nx{host=\"a\"} 1\nx{host=\"a\"} 2", // twice
        "# HELP x h\n# TYPE x gauge\nx{mount=\"/\",host=\"a\"} 1", // host not first
        "# TYPE x gauge\nx{host=\"a\"} 1",                // no HELP                 // NaN
        "# HELP x h\n# TYPE x gauge\nx{host=\"a\"} 1 12345", // timestamp
        "# HELP x_total h\n# TYPE x_total gauge\nx_total{host=\"a\"} 1", // gauge named _total
        "# HELP x h\n# TYPE x gauge\nx{host=\"a\"} 1\n# HELP y h\n# TYPE y gauge\ny{host=\"a\"} 1\nx{host=\"b\"} 1",
    ] {
        let text = format!("{bad}\n");
        assert!(try_parse(&text).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn a_large_view_renders_into_one_reused_buffer() {
    let mut v = small_view();
    for i in 0..64 {
        v.series.push(row(Metric::CpuCoreUsage, Some(&i.to_string()), 12.25));
    }
    for i in 0..200 {
        let mount = format!("/srv/volume-{i}");
        v.series.push(row(Metric::DiskUsedPercent, Some(&mount), 61.5));
        v.series.push(row(Metric::DiskFree, Some(&mount), 123_456_789.0));
    }
    for m in [Metric::NetRxRate, Metric::NetTxRate, Metric::NetRxPackets, Metric::NetTxPackets] {
        for i in 0..100 {
            v.series.push(row(m, Some(&format!("veth{i}")), 1234.5));
        }
    }
    let mut out = String::new();
    render(&v, &mut out);
    let samples = parse(&out).len();
    let capacity = out.capacity();
    let rounds = 50;
    let started = std::time::Instant::now();
    for _ in 0..rounds {
        out.clear();
        render(&v, &mut out);
    }
    let per = started.elapsed() / rounds;
    // Rendering again into the cleared buffer never grows it: no per-series allocation that
    // outlives the call, and nothing but the buffer itself is written.
    assert_eq!(out.capacity(), capacity);
    println!(
        "{} series, {samples} samples, {} bytes: {per:?} per render (this build's profile)",
        v.series.len(),
        out.len()
    );
}

#[test]
fn history_counters_per_sink() {
    use crate::history::{Health, SinkCounters};
    let mut v = small_view();
    assert!(!render_text(&v).contains("hostwatch_history"));
    let sink = |name, written| SinkCounters { name, written, dropped: 2, failures: 3 };
    v.history = Some(Health {
        file: true,
        write_failures: 4,
        sinks: [Some(sink("sqlite", 10)), Some(sink("influxdb", 20))],
    });
    let text = render_text(&v);
    let samples = parse(&text);
    let find = |name: &str, labels: &[(&str, &str)]| {
        samples
            .iter()
            .find(|s| {
                s.name == name
                    && labels.iter().all(|(k, v)| s.labels.iter().any(|(a, b)| a == k && b == v))
            })
            .map(|s| s.value)
    };
    assert_eq!(find("hostwatch_history_write_failures_total", &[]), Some(4.0));
    assert_eq!(
        find("hostwatch_history_points_total", &[("sink", "sqlite"), ("result", "written")]),
        Some(10.0)
    );
    assert_eq!(
        find("hostwatch_history_points_total", &[("sink", "influxdb"), ("result", "failed")]),
        Some(3.0)
    );
}

#[test]
fn a_flapping_alert_has_its_sample_also_while_ok_and_the_status_says_so() {
    let mut v = small_view();
    let mut hot = alert("disk", Metric::DiskUsedPercent, Some("/"), true, Severity::Warning);
    hot.flapping = Some(1_700_000_000.0);
    let mut calm = alert("load", Metric::Load1, None, false, Severity::Critical);
    calm.phase = Phase::Ok;
    calm.flapping = Some(1_699_999_000.0);
    let plain = alert("cpu", Metric::CpuUsage, None, true, Severity::Warning);
    v.alerts = vec![hot, calm, plain];
    let samples = parse(&render_text(&v));
    let flapping: Vec<(Option<&str>, Option<&str>)> = samples
        .iter()
        .filter(|s| s.name == "hostwatch_alert_flapping")
        .map(|s| (s.label("rule"), s.label("mount")))
        .collect();
    assert_eq!(flapping, [(Some("disk"), Some("/")), (Some("load"), None)]);
    // `hostwatch_alert` stays pending or firing: the ok one has none.
    let alerts: Vec<Option<&str>> =
        samples.iter().filter(|s| s.name == "hostwatch_alert").map(|s| s.label("rule")).collect();
    assert_eq!(alerts, [Some("disk"), Some("cpu")]);
    let status: Vec<(serde_json::Value, serde_json::Value)> = v
        .alerts
        .iter()
        .map(crate::api::status::alert_json)
        .map(|j| (j["state"].clone(), j["flapping"].clone()))
        .collect();
    use serde_json::json;
    assert_eq!(
        status,
        [
            (json!("firing"), json!(true)),
            (json!("ok"), json!(true)),
            (json!("firing"), json!(false))
        ]
    );
    let calm = crate::api::status::alert_json(&v.alerts[1]);
    assert_eq!(calm["since"], "2023-11-14T21:56:40Z", "the flap period's start");
}
