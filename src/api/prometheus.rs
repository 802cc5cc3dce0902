//! `/metrics`: the published view in the Prometheus text exposition format (0.0.4), for a
//! Prometheus (or anything that scrapes it) to collect a fleet of agents.
//!
//! What comes out, and why it is named so:
//! - **Every live series** as `hostwatch_<metric, dots as underscores><unit suffix>`, one
//!   gauge family per metric with its `# HELP` (the catalogue's help text) and `# TYPE gauge`,
//!   each family once and all its samples together. Suffixes: bytes `_bytes`; rates (already
//!   per-second values, so gauges, not counters) `_bytes_per_second` and `_per_second`;
//!   percentages `_percent`; loads and counts none. A name that already ends in its suffix
//!   does not get it twice, and a trailing `_rate` gives way to the per-second suffix
//!   (`disk.used_percent` → `hostwatch_disk_used_percent`, `cpu.usage` →
//!   `hostwatch_cpu_usage_percent`, `disk.read_rate` → `hostwatch_disk_read_bytes_per_second`,
//!   `disk.read_ops` → `hostwatch_disk_read_ops_per_second`), so the name is found from the
//!   metric name without a table.
//! - **Percentages stay 0–100 with `_percent`, not 0–1 with `_ratio`**: the numbers are the
//!   ones rules, `/status`, notifications and the README use (`disk.used_percent > 90` is
//!   `hostwatch_disk_used_percent > 90` in PromQL), and every percentage is exposed the same
//!   way. Prometheus' base-unit rule concerns units with prefixes (seconds, bytes); promtool
//!   accepts `_percent`.
//! - **Labels**: `host` (the config's `host`, the agent's own name, distinct from the
//!   `instance` Prometheus adds, so a plain scrape config keeps both; a scrape config that
//!   sets a `host` target label of its own needs `honor_labels: true` to keep the agent's)
//!   on every sample, and the series' own label (`core`, `mount`, `device`, `iface`).
//!   Label values are untrusted text (a mount point can be `/mnt/a"b\c` or `<script>`):
//!   backslash, double quote and newline are escaped as the format says.
//! - **No value, no sample**: a series whose last tick had no value (a rate's first read)
//!   or a non-finite one is left out rather than printed as `NaN`, and so is a series whose
//!   thing went away (not live). Prometheus marks it stale; `absent()` sees the gap.
//! - **Alerts**: `hostwatch_alert{host, rule, severity, state="pending"|"firing", <series
//!   label>} 1` per pending or firing alert (an alert that is ok has no sample). A series
//!   label is one of `core`/`mount`/`device`/`iface`, so it never collides with the others.
//! - **hostwatch's own health**: `hostwatch_build_info{version}`, `hostwatch_start_time_seconds`,
//!   `hostwatch_interval_seconds`, `hostwatch_ticks_total`, `hostwatch_last_tick_timestamp_seconds`
//!   (after the first tick), `hostwatch_tick_duration_seconds`, `hostwatch_silences`,
//!   `hostwatch_persist_failing` (0/1), `hostwatch_write_failures_total`,
//!   `hostwatch_history_write_failures_total` (with a history file),
//!   `hostwatch_history_points_total{sink, result="written"|"dropped"|"failed"}` (with a
//!   history sink), and per channel
//!   `hostwatch_outbox_items`, `hostwatch_deliveries_total{result="delivered"|"failed"|
//!   "retried"}`, `hostwatch_channel_consecutive_failures` and
//!   `hostwatch_channel_last_success_timestamp_seconds` (once one succeeded). Counters, and
//!   only counters, end in `_total`. No `hostwatch_up`: Prometheus' own `up` is that.
//! - No sample timestamps: the scrape time is the sample time (the view is at most one
//!   interval old, and `hostwatch_last_tick_timestamp_seconds` says how old).
//!
//! Rendering writes straight into the caller's `String` (escaping included): no allocation
//! per series, so a scrape costs one growing buffer.
//!
//! Not for: serving (`routes`), other formats, or anything Prometheus computes itself (rates
//! of counters, `up`, history).

use super::view::View;
use crate::alerts::Phase;
use crate::metrics::{Metric, Unit};
use std::fmt::Write;

/// Renders `view` into `out` (appending).
pub(crate) fn render(view: &View, out: &mut String) {
    // Writing into a String cannot fail; the results are ignored once, here.
    let _ = render_fmt(view, out);
}

fn render_fmt(view: &View, out: &mut String) -> std::fmt::Result {
    series(view, out)?;
    alerts(view, out)?;
    health(view, out)?;
    channels(view, out)
}

/// True when `row`'s sample is exposed: live with a finite value.
fn exposed(row: &super::view::SeriesRow) -> bool {
    row.live && row.value.is_finite()
}

/// The catalogue's series, one family per metric in catalogue order.
fn series(view: &View, out: &mut String) -> std::fmt::Result {
    for &metric in Metric::ALL {
        let mut rows = view.series.iter().filter(|r| r.metric == metric && exposed(r)).peekable();
        if rows.peek().is_none() {
            continue;
        }
        out.push_str("# HELP ");
        family_name(out, metric);
        out.push(' ');
        escape_help(out, metric.help());
        out.push_str("\n# TYPE ");
        family_name(out, metric);
        out.push_str(" gauge\n");
        for row in rows {
            family_name(out, metric);
            out.push_str("{host=\"");
            escape_label(out, &view.host);
            out.push('"');
            if let (Some(key), Some(value)) = (metric.label_key(), &row.label) {
                label(out, key.as_str(), value);
            }
            writeln!(out, "}} {}", row.value)?;
        }
    }
    Ok(())
}

/// `hostwatch_alert`: one sample per pending or firing alert.
fn alerts(view: &View, out: &mut String) -> std::fmt::Result {
    let mut rows = view.alerts.iter().filter(|a| !matches!(a.phase, Phase::Ok)).peekable();
    if rows.peek().is_none() {
        return Ok(());
    }
    family(out, "hostwatch_alert", "gauge", "A pending or firing alert of a rule on a series (1).");
    for a in rows {
        out.push_str("hostwatch_alert{host=\"");
        escape_label(out, &view.host);
        out.push('"');
        label(out, "rule", &a.rule);
        label(out, "severity", a.severity.as_str());
        label(out, "state", if a.firing() { "firing" } else { "pending" });
        if let (Some(key), Some(value)) = (a.metric.label_key(), &a.label) {
            label(out, key.as_str(), value);
        }
        out.push_str("} 1\n");
    }
    flapping(view, out)
}

/// `hostwatch_alert_flapping`: one sample per flapping alert.
fn flapping(view: &View, out: &mut String) -> std::fmt::Result {
    let mut rows = view.alerts.iter().filter(|a| a.flapping.is_some()).peekable();
    if rows.peek().is_none() {
        return Ok(());
    }
    family(
        out,
        "hostwatch_alert_flapping",
        "gauge",
        "An alert whose state changes too often: notifications paused until it settles (1).",
    );
    for a in rows {
        out.push_str("hostwatch_alert_flapping{host=\"");
        escape_label(out, &view.host);
        out.push('"');
        label(out, "rule", &a.rule);
        if let (Some(key), Some(value)) = (a.metric.label_key(), &a.label) {
            label(out, key.as_str(), value);
        }
        out.push_str("} 1\n");
    }
    Ok(())
}

/// hostwatch's own figures, one sample each.
fn health(view: &View, out: &mut String) -> std::fmt::Result {
    family(out, "hostwatch_build_info", "gauge", "hostwatch's version (1).");
    out.push_str("hostwatch_build_info{");
    host(out, view);
    label(out, "version", view.version);
    out.push_str("} 1\n");
    let mut one = |name: &str, kind: &str, help: &str, value: f64| -> std::fmt::Result {
        family(out, name, kind, help);
        out.push_str(name);
        out.push('{');
        host(out, view);
        writeln!(out, "}} {value}")
    };
    one(
        "hostwatch_start_time_seconds",
        "gauge",
        "When the daemon started, Unix seconds.",
        view.started_unix,
    )?;
    one(
        "hostwatch_interval_seconds",
        "gauge",
        "The sampling interval, seconds.",
        view.interval.as_secs_f64(),
    )?;
    one("hostwatch_ticks_total", "counter", "Ticks since the daemon started.", view.ticks as f64)?;
    if view.ticks > 0 {
        one(
            "hostwatch_last_tick_timestamp_seconds",
            "gauge",
            "When the last tick's sample was taken, Unix seconds.",
            view.last_tick_unix,
        )?;
    }
    one(
        "hostwatch_tick_duration_seconds",
        "gauge",
        "How long the last tick took, seconds.",
        view.tick_duration.as_secs_f64(),
    )?;
    one(
        "hostwatch_silences",
        "gauge",
        "Silences in force (config and hostwatch silence).",
        view.silences.len() as f64,
    )?;
    one(
        "hostwatch_persist_failing",
        "gauge",
        "1 while the state cannot be saved, else 0.",
        f64::from(u8::from(view.persist_failing)),
    )?;
    one(
        "hostwatch_write_failures_total",
        "counter",
        "Outbox journal and events log writes that failed since start.",
        view.write_failures as f64,
    )?;
    let Some(h) = view.history else { return Ok(()) };
    if h.file {
        one(
            "hostwatch_history_write_failures_total",
            "counter",
            "Writes to the history file that failed since start.",
            h.write_failures as f64,
        )?;
    }
    if h.sinks.iter().any(Option::is_some) {
        let name = "hostwatch_history_points_total";
        family(
            out,
            name,
            "counter",
            "History points and events per sink: written, dropped, failed writes (kept to retry).",
        );
        for s in h.sinks.iter().flatten() {
            for (result, n) in
                [("written", s.written), ("dropped", s.dropped), ("failed", s.failures)]
            {
                out.push_str(name);
                out.push('{');
                host(out, view);
                label(out, "sink", s.name);
                label(out, "result", result);
                let _ = writeln!(out, "}} {n}");
            }
        }
    }
    Ok(())
}

/// The API server's own counters (after the view's families).
pub(crate) fn render_server(view: &View, stats: &super::server::Stats, out: &mut String) {
    use super::server::Stats;
    let mut counter = |name: &str, help: &str, rows: &[(&str, u64)]| {
        family(out, name, "counter", help);
        for (result, n) in rows {
            out.push_str(name);
            out.push('{');
            host(out, view);
            label(out, "result", result);
            let _ = writeln!(out, "}} {n}");
        }
    };
    counter(
        "hostwatch_api_connections_total",
        "API connections: accepted, evicted to make room, refused, failed accepts.",
        &[
            ("accepted", Stats::get(&stats.accepted)),
            ("evicted", Stats::get(&stats.evicted)),
            ("refused", Stats::get(&stats.refused)),
            ("accept_error", Stats::get(&stats.accept_errors)),
        ],
    );
    counter(
        "hostwatch_api_requests_total",
        "API requests by outcome.",
        &[
            ("served", Stats::get(&stats.served)),
            ("bad_request", Stats::get(&stats.bad_requests)),
            ("headers_too_large", Stats::get(&stats.headers_too_large)),
            ("body_too_large", Stats::get(&stats.bodies_too_large)),
            ("read_timeout", Stats::get(&stats.read_timeouts)),
            ("write_timeout", Stats::get(&stats.write_timeouts)),
            ("panic", Stats::get(&stats.panics)),
        ],
    );
}

/// Per-channel delivery figures, one family each with a sample per channel.
fn channels(view: &View, out: &mut String) -> std::fmt::Result {
    if view.channels.is_empty() {
        return Ok(());
    }
    family(out, "hostwatch_outbox_items", "gauge", "Notifications waiting in the outbox.");
    for (name, h) in &view.channels {
        channel_sample(out, view, "hostwatch_outbox_items", name, None, h.pending as f64)?;
    }
    family(
        out,
        "hostwatch_deliveries_total",
        "counter",
        "Delivery outcomes since start: delivered, failed (given up), retried attempts, and held back by the channel's rate limit.",
    );
    for (name, h) in &view.channels {
        for (result, n) in [
            ("delivered", h.delivered),
            ("failed", h.failed),
            ("retried", h.retried),
            ("held_back", h.held_back),
        ] {
            let r = Some(("result", result));
            channel_sample(out, view, "hostwatch_deliveries_total", name, r, n as f64)?;
        }
    }
    family(
        out,
        "hostwatch_channel_consecutive_failures",
        "gauge",
        "Failed delivery attempts since the channel's last success.",
    );
    for (name, h) in &view.channels {
        let n = f64::from(h.consecutive_failures);
        channel_sample(out, view, "hostwatch_channel_consecutive_failures", name, None, n)?;
    }
    let mut succeeded = view.channels.iter().filter_map(|(n, h)| Some((n, h.last_success?)));
    if let Some(first) = succeeded.next() {
        let name = "hostwatch_channel_last_success_timestamp_seconds";
        family(
            out,
            name,
            "gauge",
            "When the channel's receiver last accepted a delivery, Unix seconds.",
        );
        for (channel, ts) in std::iter::once(first).chain(succeeded) {
            channel_sample(out, view, name, channel, None, ts)?;
        }
    }
    Ok(())
}

/// `name{host="…",channel="…"[,k="v"]} value`.
fn channel_sample(
    out: &mut String,
    view: &View,
    name: &str,
    channel: &str,
    extra: Option<(&str, &str)>,
    value: f64,
) -> std::fmt::Result {
    out.push_str(name);
    out.push('{');
    host(out, view);
    label(out, "channel", channel);
    if let Some((k, v)) = extra {
        label(out, k, v);
    }
    writeln!(out, "}} {value}")
}

/// `# HELP` and `# TYPE` of a family whose help is trusted text.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    escape_help(out, help);
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
}

/// `host="…"` (the first label of every sample).
fn host(out: &mut String, view: &View) {
    out.push_str("host=\"");
    escape_label(out, &view.host);
    out.push('"');
}

/// `,key="value"` with the value escaped.
fn label(out: &mut String, key: &str, value: &str) {
    out.push(',');
    out.push_str(key);
    out.push_str("=\"");
    escape_label(out, value);
    out.push('"');
}

/// The family name of `metric` (see the module contract).
fn family_name(out: &mut String, metric: Metric) {
    out.push_str("hostwatch_");
    let start = out.len();
    for c in metric.name().chars() {
        out.push(if c == '.' { '_' } else { c });
    }
    let suffix = unit_suffix(metric.unit());
    // `_rate` says what the per-second suffix says again.
    if suffix.ends_with("_per_second") && out[start..].ends_with("_rate") {
        out.truncate(out.len() - "_rate".len());
    }
    if !out[start..].ends_with(suffix) {
        out.push_str(suffix);
    }
}

/// The name suffix of a unit.
pub(crate) fn unit_suffix(unit: Unit) -> &'static str {
    match unit {
        Unit::Percent | Unit::CorePercent => "_percent",
        Unit::Bytes => "_bytes",
        Unit::BytesPerSec => "_bytes_per_second",
        Unit::PerSec => "_per_second",
        Unit::Load | Unit::Count => "",
    }
}

/// A label value: backslash, double quote and line feed escaped.
fn escape_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A `# HELP` text: backslash and line feed escaped.
fn escape_help(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests;
