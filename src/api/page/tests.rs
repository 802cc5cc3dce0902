//! Tests of the status page: escaping of every data-borne text, the order of alerts, charts
//! with gaps, an empty view, the CSP hash of the style sheet, and the size estimate.

use super::html::{Dur, Esc, escape_into};
use super::*;
use crate::alerts::Phase;
use crate::api::view::{Inputs, View};
use crate::collect::Sample;
use crate::config::Severity;
use crate::engine::Engine;
use crate::metrics::{Metric, Unit};
use crate::notify::delivery::ChannelHealth;
use crate::series::Registry;
use crate::silence::Silence;
use std::time::Duration;

const HOSTILE: &str = "<script>x</script>";
const QUOTES: &str = "\"'&";

/// The view of a daemon with `config` after feeding it `ticks` samples, where
/// `values(tick, registry)` gives each tick's points (a missing point is no value that tick).
fn view_after(
    config: &str,
    ticks: usize,
    mut values: impl FnMut(usize, &mut Registry) -> Vec<(crate::series::SeriesId, f64)>,
) -> View {
    let config = crate::config::load_str(config, "t.json", &|_| None).unwrap();
    let mut engine = Engine::new(&config, None);
    let mut registry = Registry::new();
    let mut view = View::new("web-01", "/etc/hostwatch/config.json", Duration::from_secs(5));
    let mut out = Vec::new();
    for t in 0..ticks {
        let points = values(t, &mut registry);
        let sample = Sample {
            unix_ts: 1_800_000_000.0 + 5.0 * t as f64,
            points,
            unsupported: vec![Metric::CpuIowait],
            ..Sample::default()
        };
        engine.tick(&registry, &sample, &mut out);
        view.refresh(&Inputs {
            engine: &engine,
            registry: &registry,
            sample: &sample,
            channels: None,
            persist_failing: false,
            write_failures: 0,
            tick_duration: Duration::from_micros(850),
            config_silences: 0,
            history: None,
        });
    }
    view
}

/// A view with a hostile mount that fires, a CPU series and a rate with gaps.
fn busy_view() -> View {
    let config = r#"{"rules": [
        {"name": "disk_hostile", "metric": "disk.used_percent", "match": {"mount": "*script*"}, "warn": ">= 0"},
        {"name": "a_cpu_slow", "metric": "cpu.usage", "warn": "> 1", "for": "1h"}
    ]}"#;
    view_after(config, 12, |t, reg| {
        let hostile = reg.intern(Metric::DiskUsedPercent, Some(&format!("/tmp/{HOSTILE}")));
        let root = reg.intern(Metric::DiskUsedPercent, Some("/"));
        let cpu = reg.intern(Metric::CpuUsage, None);
        let rx = reg.intern(Metric::NetRxRate, Some(&format!("eth{QUOTES}")));
        let mut p = vec![(hostile, 40.0 + t as f64), (root, 61.5), (cpu, 10.0 + t as f64)];
        if t % 4 != 1 {
            p.push((rx, 1000.0 * t as f64));
        }
        p
    })
}

fn render_now(view: &View) -> String {
    render_at(view, view.published, view.last_tick_unix + 1.0)
}

#[test]
fn escapes_the_five_characters_and_nothing_else() {
    assert_eq!(
        Esc("<script>x</script>\"'&").to_string(),
        "&lt;script&gt;x&lt;/script&gt;&quot;&#39;&amp;"
    );
    assert_eq!(Esc("/mnt/dätä ü").to_string(), "/mnt/dätä ü");
    assert_eq!(Esc("é<ü>").to_string(), "é&lt;ü&gt;");
    assert_eq!(Esc("").to_string(), "");
    let mut out = String::from("a");
    escape_into(&mut out, "&amp;");
    assert_eq!(out, "a&amp;amp;", "already escaped text is escaped again");
}

#[test]
fn data_borne_text_appears_only_escaped() {
    let mut view = busy_view();
    view.host = format!("h{HOSTILE}{QUOTES}").into();
    view.config_source = format!("/etc/{HOSTILE}{QUOTES}").into();
    let channel = ChannelHealth {
        pending: 3,
        consecutive_failures: 2,
        last_error: Some(format!("HTTP 500: {HOSTILE}{QUOTES}")),
        ..ChannelHealth::default()
    };
    view.channels.insert(format!("ops{HOSTILE}{QUOTES}"), channel);
    view.silences.push(Silence {
        host: None,
        id: format!("id{HOSTILE}"),
        rule: Some(format!("r{HOSTILE}{QUOTES}")),
        matchers: [(format!("k{HOSTILE}"), format!("v{QUOTES}{HOSTILE}"))].into(),
        until: view.last_tick_unix + 3600.0,
        schedule: None,
        comment: format!("c{HOSTILE}{QUOTES}"),
    });
    let mut alert = view.alerts[0].clone();
    alert.rule = format!("rule{HOSTILE}{QUOTES}").into();
    alert.threshold = format!("> {HOSTILE}").into();
    alert.silenced_by = Some(format!("s{HOSTILE}{QUOTES}").into());
    view.alerts.push(alert);

    let page = render_now(&view);
    assert!(!page.to_ascii_lowercase().contains("<script"), "a script tag in:\n{page}");
    assert!(!page.contains(QUOTES), "raw quotes and ampersand in:\n{page}");
    assert!(!page.contains("x</script>"));
    let escaped = "&lt;script&gt;x&lt;/script&gt;";
    let quotes = "&quot;&#39;&amp;";
    for needle in [
        format!("<h1>h{escaped}{quotes}</h1>"),
        format!("/etc/{escaped}{quotes}"),
        format!("/tmp/{escaped}"),
        format!("eth{quotes}"),
        format!("<b>ops{escaped}{quotes}</b>"),
        format!("last error: HTTP 500: {escaped}{quotes}</div>"),
        format!("id <code>id{escaped}</code>"),
        format!("rule <code>r{escaped}{quotes}</code>"),
        format!("<code>k{escaped}=v{quotes}{escaped}</code>"),
        format!("<div>c{escaped}{quotes}</div>"),
        format!("<b>rule{escaped}{quotes}</b>"),
        format!("&gt; {escaped}"),
        format!("silenced by s{escaped}{quotes}"),
    ] {
        assert!(page.contains(&needle), "{needle} missing from:\n{page}");
    }
    // The mount shows in both alerts, as the label of its row and in its chart's title.
    assert_eq!(page.matches(&format!("/tmp/{escaped}")).count(), 4, "{page}");
}

#[test]
fn firing_alerts_come_before_pending_ones_and_rows_are_marked() {
    let view = busy_view();
    assert_eq!(view.alerts.len(), 2, "{:?}", view.alerts);
    let page = render_now(&view);
    let firing = page.find("<b>disk_hostile</b>").expect("the firing alert");
    let pending = page.find("<b>a_cpu_slow</b>").expect("the pending alert");
    assert!(firing < pending, "firing first although its rule sorts after the pending one");
    assert!(page[..firing].contains("<li class=\"alert warning\">"));
    assert!(page[firing..pending].contains("<li class=\"alert pending\">"));
    assert!(page.contains("<span class=\"badge warning\">1 firing</span>"));
    assert!(page.contains("<span class=\"badge pending\">1 pending</span>"));
    assert!(page.contains("value <b>51.0%</b>, threshold <code>&gt;= 0</code>"), "{page}");
    // Both alerts come before every metric group, and their rows are highlighted.
    let groups = page.find("<section class=\"group\"").unwrap();
    assert!(pending < groups);
    assert_eq!(page.matches("<tr class=\"hot\">").count(), 1);
    assert_eq!(page.matches("<tr class=\"warm\">").count(), 1);
    assert!(!page.contains("All clear"));
}

#[test]
fn groups_follow_the_catalogue_and_hold_their_series() {
    let page = render_now(&busy_view());
    let at = |id: &str| page.find(&format!("id=\"g-{id}\"")).unwrap_or(usize::MAX);
    assert!(at("cpu") < at("disk") && at("disk") < at("net") && at("net") < usize::MAX);
    assert_eq!(at("mem"), usize::MAX, "no memory series: no memory group");
    let disk = &page[at("disk")..at("net")];
    assert_eq!(disk.matches("<tr").count(), 5, "a header row, and a heading and a row per mount");
    assert_eq!(disk.matches("<tr class=\"thing\">").count(), 2);
    assert!(disk.contains("61.5%"));
    assert!(page.contains("Not available on this host: <code>cpu.iowait</code>."));
}

#[test]
fn things_with_several_metrics_get_a_block_and_idle_series_fold() {
    let config = r#"{"rules": [
        {"name": "tx_errors", "metric": "net.tx_errors", "match": {"iface": "eth0"}, "warn": ">= 0"}
    ]}"#;
    let view = view_after(config, 3, |t, reg| {
        let mut p = Vec::new();
        for iface in ["eth0", "<b>lo</b>"] {
            for m in
                [Metric::NetRxRate, Metric::NetTxRate, Metric::NetRxErrors, Metric::NetTxErrors]
            {
                let v =
                    if iface == "eth0" && m == Metric::NetRxRate { 100.0 * t as f64 } else { 0.0 };
                p.push((reg.intern(m, Some(iface)), v));
            }
        }
        p.push((reg.intern(Metric::SwapInRate, None), 0.0));
        p
    });
    let page = render_now(&view);
    let net = &page[page.find("id=\"g-net\"").unwrap()..];
    let eth0 = net.find("<span class=\"lbl\">eth0</span>").expect("a block for eth0");
    let lo = net.find("<span class=\"lbl\">&lt;b&gt;lo&lt;/b&gt;</span>").expect("one for lo");
    assert!(eth0 < lo, "in discovery order");
    let (eth0, lo) = (&net[eth0..lo], &net[lo..]);
    // eth0: rx_rate moved, tx_errors is zero but alerted: both are rows; the rest folds.
    assert!(
        eth0.contains("<td class=\"name\"><div title=\"Bytes received per second.\">rx_<wbr>rate")
    );
    assert!(eth0.contains("<tr class=\"hot\"><td class=\"name\"><div title=\"Transmit errors"));
    assert!(eth0.contains(
        "zero for the last 10s: <code>tx_<wbr>rate</code>, <code>rx_<wbr>errors</code></td>"
    ));
    assert!(lo.contains(
        "zero for the last 10s: <code>rx_<wbr>rate</code>, <code>tx_<wbr>rate</code>, <code>rx_<wbr>errors</code>, \
         <code>tx_<wbr>errors</code></td>"
    ));
    assert_eq!(lo.split("</section>").next().unwrap().matches("<svg").count(), 0);
    let swap = &page[page.find("id=\"g-swap\"").unwrap()..];
    assert!(swap.contains("zero for the last 10s: <code>swap.<wbr>in_<wbr>rate</code>"));
}

#[test]
fn a_chart_has_a_gap_where_a_tick_had_no_value() {
    let mut out = String::new();
    let values = [1.0f32, 2.0, f32::NAN, 3.0, f32::NAN, f32::NAN, 4.0, 5.0];
    svg::chart(&mut out, Unit::Count, || values.iter().copied(), values.len(), 8, "s");
    let d = out.split("d=\"").nth(1).unwrap().split('"').next().unwrap();
    // 8 slots over 140 units: x = 20 per slot; y from 5 (5.0) down to 35 (0.0).
    assert_eq!(d, "M0.0 29.0L20.0 23.0M60.0 17.0h0M120.0 11.0L140.0 5.0");
    assert!(out.contains("<circle class=\"dot\" cx=\"140.0\" cy=\"5.0\" r=\"2\"/>"));
    assert!(out.contains(">5</text>") && out.contains(">0</text>"), "axis labels: {out}");

    // A series younger than the others is drawn at the right, aligned in time.
    out.clear();
    svg::chart(&mut out, Unit::Percent, || [50.0f32].into_iter(), 1, 8, "s");
    assert!(out.contains("d=\"M140.0 20.0h0\""), "{out}");
    assert!(out.contains(">100.0%</text>") && out.contains(">0.0%</text>"));

    // Nothing to draw.
    out.clear();
    svg::chart(&mut out, Unit::Bytes, || [f32::NAN; 3].into_iter(), 3, 3, "s");
    assert!(out.contains("no data yet") && !out.contains("<path"));
    assert!(out.ends_with("</svg>"));
}

#[test]
fn extreme_values_never_reach_the_chart_as_nan_or_inf() {
    let cases: [&[f32]; 6] = [
        &[f32::INFINITY, 1.0, f32::NEG_INFINITY, 2.0],
        &[f32::MAX, -f32::MAX, 0.0],
        &[f32::MIN_POSITIVE, 0.0, 1e-45],
        &[-5.0, -5.0],
        &[7.0, 7.0, 7.0],
        &[f32::INFINITY, f32::NAN],
    ];
    for unit in [Unit::Percent, Unit::Bytes, Unit::Count, Unit::BytesPerSec] {
        for values in cases {
            let mut out = String::new();
            svg::chart(&mut out, unit, || values.iter().copied(), values.len(), 120, "s");
            assert!(!out.contains("NaN") && !out.contains("inf"), "{unit:?} {values:?}: {out}");
            assert!(out.ends_with("</svg>"));
        }
    }
}

#[test]
fn charts_in_the_page_show_the_gaps_of_the_view() {
    let page = render_now(&busy_view());
    let net = &page[page.find("id=\"g-net\"").unwrap()..];
    let d = net.split("class=\"line\" d=\"").nth(1).unwrap().split('"').next().unwrap();
    // Ticks 1, 5 and 9 had no value: the path restarts after each (tick 0's value alone
    // before the first gap is a dot).
    assert_eq!(d.matches('M').count(), 4, "{d}");
    assert_eq!(d.matches("h0").count(), 1, "{d}");
}

#[test]
fn an_empty_view_renders_a_whole_page() {
    let view = View::new("web-01", "embedded default", Duration::from_secs(5));
    let page = render_at(&view, view.published, view.started_unix);
    assert!(page.starts_with("<!doctype html><html lang=\"en\">"));
    assert!(page.ends_with("</html>\n"));
    assert!(page.contains("<meta name=\"viewport\""));
    assert!(page.contains("<meta http-equiv=\"refresh\" content=\"10\">"));
    assert!(page.contains("starting · no tick yet"));
    assert!(page.contains("All clear"));
    assert!(page.contains("No delivery") && page.contains("No silence in force"));
    assert!(!page.contains("<section class=\"group\""));
    assert!(!page.contains("style=\""), "no style attribute: the CSP allows none");
    for tag in ["html", "head", "body", "main", "header", "section", "footer"] {
        let open =
            page.matches(&format!("<{tag}>")).count() + page.matches(&format!("<{tag} ")).count();
        assert_eq!(open, page.matches(&format!("</{tag}>")).count(), "<{tag}> balance");
    }
}

#[test]
fn a_busy_page_is_balanced_and_fits_its_estimate() {
    let view = busy_view();
    let page = render_now(&view);
    for tag in ["section", "table", "tr", "td", "svg", "ul", "li", "div", "time", "span"] {
        let open =
            page.matches(&format!("<{tag}>")).count() + page.matches(&format!("<{tag} ")).count();
        assert_eq!(open, page.matches(&format!("</{tag}>")).count(), "<{tag}> balance");
    }
    assert!(page.len() <= estimate(&view, 0), "{} > {}", page.len(), estimate(&view, 0));
    assert!(!page.contains("style=\""));
}

#[test]
fn a_page_with_full_rings_fits_its_estimate_closely() {
    // 130 ticks fill every ring (120 slots), with values that vary at every tick.
    let view = view_after(r#"{"rules": []}"#, 130, |t, reg| {
        let mut p = Vec::new();
        for core in 0..16 {
            let id = reg.intern(Metric::CpuCoreUsage, Some(&core.to_string()));
            p.push((id, ((t * 7 + core * 13) % 100) as f64 + 0.5));
        }
        for iface in ["eth0", "eth1"] {
            for m in [Metric::NetRxRate, Metric::NetTxRate, Metric::NetRxPackets] {
                p.push((reg.intern(m, Some(iface)), 1e6 + (t * 977 % 5000) as f64));
            }
        }
        p
    });
    assert_eq!(view.recent_ts.len(), crate::api::view::RECENT);
    let started = std::time::Instant::now();
    let page = render_now(&view);
    let took = started.elapsed();
    let (len, est) = (page.len(), estimate(&view, 0));
    println!(
        "full-ring page: {len} bytes for {} series (estimate {est}), rendered in {took:?}",
        view.series.len()
    );
    assert!(len <= est, "{len} > {est}");
    assert!(est < 2 * len, "the estimate {est} is far above the page's {len} bytes");

    // With a full 24-hour chart (96 varying points) beside each series' recent chart.
    let series = view
        .series
        .iter()
        .map(|r| {
            let avg = (0..96).map(|i| ((i * 37) % 100) as f32 + 0.5).collect();
            (r.key.clone(), crate::api::daily::Series { avg })
        })
        .collect();
    let day = crate::api::daily::Day { width: 900.0, buckets: 96, end: 1_800_000_900.0, series };
    let charts = crate::api::daily::Charts::Ready(day);
    let with = render_with(&view, Some(&charts), Instant::now(), 1_800_000_650.0).len();
    let est = estimate(&view, 96);
    let n = view.series.len();
    println!(
        "full-ring page with 24-hour charts: {with} bytes (estimate {est}); per series {} \
         bytes before, {} after",
        len / n,
        with / n
    );
    assert!(with <= est, "{with} > {est}");
    assert!(est < 2 * with, "the estimate {est} is far above the page's {with} bytes");
}

#[test]
fn a_stalled_loop_shows_a_stale_badge() {
    let view = busy_view();
    let page = render_at(&view, view.published + Duration::from_secs(16), view.last_tick_unix);
    assert!(page.contains("<span class=\"badge critical\""), "{page}");
    assert!(page.contains("stale · last tick 16s ago"));
    let page = render_now(&view);
    assert!(page.contains("healthy · last tick 0.0s ago"));
}

#[test]
fn hostwatch_own_troubles_are_warned_about() {
    let mut view = busy_view();
    view.persist_failing = true;
    view.write_failures = 4;
    let page = render_now(&view);
    assert!(page.contains("The state file cannot be saved"));
    assert!(page.contains("4 write(s) to the outbox journal"));
}

#[test]
fn durations_read_in_two_units_at_most() {
    let d = |s: f64| Dur(s).to_string();
    assert_eq!(d(0.25), "0.2s");
    assert_eq!(d(42.0), "42s");
    assert_eq!(d(200.0), "3m 20s");
    assert_eq!(d(7500.0), "2h 05m");
    assert_eq!(d(3.0 * 86_400.0 + 7200.0), "3d 2h");
    assert_eq!(d(400.0 * 86_400.0), "1y 35d");
    assert_eq!(d(f64::NAN), "—");
    assert_eq!(d(-1.0), "—");
}

#[test]
fn the_csp_allows_exactly_the_page_style_sheet() {
    let hash = base64(&sha256(CSS.as_bytes()));
    let want = format!("style-src 'sha256-{hash}';");
    assert!(CSP.contains(&want), "CSP must say {want} (CSS changed?): {CSP}");
    assert!(CSP.starts_with("default-src 'none';"));
    assert!(!CSP.contains("unsafe") && !CSP.contains("script-src"));
    assert!(!CSS.contains('<'), "the style sheet cannot close its element");
    let page = render_now(&busy_view());
    assert!(page.contains(&format!("<style>{CSS}</style>")), "the hashed text, byte for byte");
}

#[test]
fn every_box_of_data_text_wraps_a_long_word_on_a_phone() {
    // A silence comment holding a ticket URL, a rule or channel name, a long mount: one word
    // wider than a phone. A grid or flex item keeps its min-content width unless its text may
    // break anywhere, so each box holding data text must say so, or the page overflows.
    let wraps = |selector: &str| {
        CSS.split('}').any(|rule| {
            let (selectors, decls) = rule.rsplit_once('{').unwrap_or(("", ""));
            let selectors = selectors.rsplit('{').next().unwrap_or("");
            selectors.split(',').any(|s| s.trim() == selector)
                && decls.contains("overflow-wrap:anywhere")
        })
    };
    for selector in ["li.alert", "li.card", ".meta", ".lbl", "h1", "td.name"] {
        assert!(wraps(selector), "{selector} lets a long word overflow the page");
    }
}

#[test]
fn the_alert_rows_keep_their_phase_times() {
    let view = busy_view();
    let firing = &view.alerts[0];
    assert!(matches!(firing.phase, Phase::Firing { severity: Severity::Warning, .. }));
    let page = render_at(&view, view.published, firing.since() + 200.0);
    assert!(page.contains("firing since <time datetime=\"2027-01-15T08:00:00Z\""), "{page}");
    assert!(page.contains("\">3m 20s ago</time>"));
}

/// SHA-256 (FIPS 180-4), for checking the CSP hash.
fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for chunk in msg.chunks(64) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes(chunk[4 * i..4 * i + 4].try_into().unwrap());
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh.wrapping_add(s1).wrapping_add(ch).wrapping_add(K[i]).wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            (hh, g, f, e, d, c, b, a) = (g, f, e, d.wrapping_add(t1), c, b, a, t1.wrapping_add(t2));
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 32];
    for (i, x) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[test]
fn sha256_and_base64_match_known_values() {
    assert_eq!(base64(&sha256(b"")), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    assert_eq!(base64(&sha256(b"abc")), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
    // Several blocks.
    assert_eq!(base64(&sha256(&[b'a'; 1000])), "Qe3s5C1j6Nm/UVqbppMuHCDLyfWl0TRkWttdsblzfqM=");
}

#[test]
fn things_come_in_discovery_order_their_rows_in_catalogue_order() {
    let view = view_after(r#"{"rules": []}"#, 2, |t, reg| {
        // /b's free space is discovered first, then /a, then the rest.
        let ids = [
            reg.intern(Metric::DiskFree, Some("/b")),
            reg.intern(Metric::DiskUsedPercent, Some("/a")),
            reg.intern(Metric::DiskUsedPercent, Some("/b")),
            reg.intern(Metric::DiskFree, Some("/a")),
        ];
        ids.into_iter().map(|id| (id, 10.0 + t as f64)).collect()
    });
    let page = render_now(&view);
    let at = |needle: &str| page.find(needle).unwrap_or_else(|| panic!("{needle} in:\n{page}"));
    let (b, a) = (at("<span class=\"lbl\">/b</span>"), at("<span class=\"lbl\">/a</span>"));
    assert!(b < a, "/b was discovered first");
    for block in [&page[b..a], &page[a..]] {
        let used = block.find("used_<wbr>percent").expect("used_percent");
        let free = block.find(">free</div>").expect("free");
        assert!(used < free, "catalogue order within a block: {block}");
    }
    assert_eq!(page.matches("<tr class=\"thing\">").count(), 2);
}

#[test]
fn a_thousand_mounts_render_in_linear_work() {
    // 1,000 mounts, two metrics each, every mount alerted: each has its block, once, in
    // discovery order, its row marked. Before the work was linear this took seconds more
    // (each block scanned every series, each row every alert); the time is printed.
    let config = r#"{"rules": [{"name": "full", "metric": "disk.used_percent", "warn": ">= 0"}]}"#;
    let n = 1000;
    let view = view_after(config, 2, |t, reg| {
        let mut p = Vec::new();
        for m in 0..n {
            let label = format!("/srv/vol{m}");
            p.push((reg.intern(Metric::DiskUsedPercent, Some(&label)), ((t + m) % 100) as f64));
            p.push((reg.intern(Metric::DiskFree, Some(&label)), 1e9 + (t * m) as f64));
        }
        p
    });
    assert_eq!(view.alerts.len(), n);
    let started = std::time::Instant::now();
    let page = render_now(&view);
    let took = started.elapsed();
    println!(
        "{n} mounts: {} bytes (estimate {}), rendered in {took:?}",
        page.len(),
        estimate(&view, 0)
    );
    assert!(page.len() <= estimate(&view, 0));
    assert_eq!(page.matches("<tr class=\"thing\">").count(), n);
    assert_eq!(page.matches("<tr class=\"hot\">").count(), n);
    let mut last = 0;
    for m in 0..n {
        let needle = format!("<span class=\"lbl\">/srv/vol{m}</span>");
        let at = page.find(&needle).unwrap_or_else(|| panic!("{needle} missing"));
        assert!(at > last, "/srv/vol{m} out of discovery order");
        assert_eq!(page.matches(&needle).count(), 1);
        last = at;
    }
}

#[test]
fn scheduled_silences_show_as_recurring_with_their_next_window() {
    // 1_800_000_000 is Friday 2027-01-15 08:00 UTC.
    let config = r#"{"rules": [{"name": "a_cpu", "metric": "cpu.usage", "warn": "> 1"}],
      "silences": [
        {"id": "weekly", "schedule": {"days": ["sun"], "from": "02:00", "to": "04:00", "tz": "Europe/Lisbon"}},
        {"id": "office", "rule": "a_*", "schedule": {"days": ["mon-fri"], "from": "07:00", "to": "19:00", "tz": "UTC"},
         "until": "2027-06-01T00:00:00Z"}
      ]}"#;
    let view =
        view_after(config, 3, |t, reg| vec![(reg.intern(Metric::CpuUsage, None), 10.0 + t as f64)]);
    let page = render_now(&view);
    assert!(
        page.contains("recurring <code>sun 02:00-04:00 Europe/Lisbon</code></span><span>next 2027-01-17 02:00:00 WET"),
        "{page}"
    );
    assert!(
        page.contains("recurring <code>mon-fri 07:00-19:00 UTC</code></span><span>in force now, until 2027-01-15T19:00:00Z</span><span>until 2027-06-01T00:00:00Z"),
        "{page}"
    );
    assert!(page.contains("silenced by office"), "{page}");
}
