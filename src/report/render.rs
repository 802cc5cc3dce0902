//! A report as text (the terminal, e-mail's plain part), JSON (the documented shape: the
//! [`Report`] serialised) and HTML (e-mail-safe: one document, inline styles only, tables,
//! small bars as fixed-width nested `div`s, every label and name HTML-escaped).
//!
//! Not for: the chat channels' forms (`report::slack`, `report::teams`).

use super::{Figures, MetricStats, Report, duration_text};
use crate::notify::escape;
use crate::timefmt::human;
use std::fmt::Write;

/// Width in pixels of an HTML bar.
const BAR_PX: f64 = 120.0;

/// Text for people; `eol` is `"\n"` for a terminal, `"\r\n"` for e-mail. Untrusted text
/// (series keys, rule and channel names, reasons) is made one line.
pub(crate) fn text(r: &Report, eol: &str) -> String {
    let mut o = String::new();
    let line = |o: &mut String, s: String| {
        o.push_str(&s);
        o.push_str(eol);
    };
    line(&mut o, escape::one_line(&r.title()));
    line(&mut o, r.period_text());
    for note in &r.notes {
        line(&mut o, format!("note: {}", escape::one_line(note)));
    }
    if !r.groups.is_empty() {
        line(&mut o, String::new());
        line(
            &mut o,
            format!(
                "Metrics (min / avg / p95 / max; p95 over the {}s slots' averages)",
                r.resolution
            ),
        );
        for g in &r.groups {
            line(&mut o, format!("  {}", escape::one_line(&g.name)));
            for m in &g.metrics {
                line(&mut o, format!("    {:<28}  {}", metric_label(m), figures(&m.figures)));
                for s in &m.top {
                    let label = s.label.clone().unwrap_or_else(|| s.series.clone());
                    line(
                        &mut o,
                        format!("      {:<26}  {}", escape::one_line(&label), figures(&s.figures)),
                    );
                }
            }
        }
    }
    line(&mut o, String::new());
    line(&mut o, format!("Alerts: {}", r.alerts_line()));
    for t in &r.alerts.time_in_alert {
        line(
            &mut o,
            format!(
                "  {:<28}  {} in alert ({} episode{})",
                escape::one_line(&t.rule),
                duration_text(t.in_alert_s),
                t.episodes,
                if t.episodes == 1 { "" } else { "s" }
            ),
        );
    }
    for e in &r.alerts.episodes {
        line(
            &mut o,
            format!(
                "  {} {} {}: {}",
                e.severity.to_uppercase(),
                escape::one_line(&e.rule),
                escape::one_line(&e.series),
                episode_span(e)
            ),
        );
    }
    if r.alerts.episodes_total as usize > r.alerts.episodes.len() {
        line(
            &mut o,
            format!("  … and {} more", r.alerts.episodes_total as usize - r.alerts.episodes.len()),
        );
    }
    line(&mut o, String::new());
    if r.delivery_failures.is_empty() {
        line(&mut o, "Delivery failures: none".to_string());
    } else {
        line(&mut o, "Delivery failures:".to_string());
        for f in &r.delivery_failures {
            line(
                &mut o,
                format!(
                    "  {}: {} (last: {})",
                    escape::one_line(&f.channel),
                    f.failures,
                    escape::one_line(&f.last_reason)
                ),
            );
        }
    }
    o
}

/// `cpu.core.usage (4 series)`.
pub(crate) fn metric_label(m: &MetricStats) -> String {
    if m.series > 1 { format!("{} ({} series)", m.metric, m.series) } else { m.metric.clone() }
}

/// `min 1.0%  avg 12.3%  p95 40.0%  max 98.0%`.
pub(crate) fn figures(f: &Figures) -> String {
    format!("min {}  avg {}  p95 {}  max {}", f.text.min, f.text.avg, f.text.p95, f.text.max)
}

/// `2026-12-01T09:00:00Z to 2026-12-01T09:20:00Z (20m)`, or `since … (still firing, 3h)`.
pub(crate) fn episode_span(e: &super::Episode) -> String {
    match e.ended {
        Some(end) => {
            format!("{} to {} ({})", human(e.started), human(end), duration_text(e.duration_s))
        }
        None => {
            format!("since {} (still firing, {})", human(e.started), duration_text(e.duration_s))
        }
    }
}

/// The JSON shape (pretty-printed).
pub(crate) fn json(r: &Report) -> String {
    serde_json::to_string_pretty(r).unwrap_or_else(|_| "{}".to_string())
}

/// A bar of `fraction` (0..=1) as two nested fixed-width `div`s, inline styles only.
fn bar(fraction: f64, colour: &str) -> String {
    let f = if fraction.is_finite() { fraction.clamp(0.0, 1.0) } else { 0.0 };
    format!(
        "<div style=\"width:{w}px;height:8px;background:#e6e6e6\"><div style=\"width:{:.0}px;\
         height:8px;background:{colour}\"></div></div>",
        f * BAR_PX,
        w = BAR_PX as u32
    )
}

/// The scale a metric's bars are drawn against: 100 for percentages, else its maximum.
fn scale(m: &MetricStats) -> f64 {
    if m.unit == "percent" { 100.0 } else { m.figures.max.abs().max(f64::MIN_POSITIVE) }
}

fn colour(fraction: f64) -> &'static str {
    if fraction >= 0.9 {
        "#d00000"
    } else if fraction >= 0.75 {
        "#b26a00"
    } else {
        "#2e6da4"
    }
}

/// An e-mail-safe HTML document; `eol` as for [`text`].
pub(crate) fn html(r: &Report, eol: &str) -> String {
    let h = |s: &str| escape::html(&escape::one_line(s));
    let td = "style=\"padding:2px 8px;text-align:left\"";
    let num = "style=\"padding:2px 8px;text-align:right;white-space:nowrap\"";
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>{eol}<html><head><meta charset=\"utf-8\"><title>{}</title></head>{eol}",
        h(&r.title())
    );
    let _ = write!(
        o,
        "<body style=\"font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#222\">{eol}"
    );
    let _ = write!(o, "<h2 style=\"margin:0 0 4px 0\">{}</h2>{eol}", h(&r.title()));
    let _ = write!(o, "<p style=\"margin:0 0 12px 0;color:#555\">{}</p>{eol}", h(&r.period_text()));
    for note in &r.notes {
        let _ = write!(o, "<p style=\"color:#b26a00\">{}</p>{eol}", h(note));
    }
    if !r.groups.is_empty() {
        let _ = write!(o, "<h3 style=\"margin:12px 0 4px 0\">Metrics</h3>{eol}");
        let _ = write!(
            o,
            "<table cellpadding=\"0\" cellspacing=\"0\" style=\"border-collapse:collapse\">{eol}"
        );
        let _ = write!(
            o,
            "<tr><th {td}>Metric</th><th {num}>min</th><th {num}>avg</th><th {num}>p95</th><th {num}>max</th><th {td}>max</th></tr>{eol}"
        );
        for g in &r.groups {
            let _ = write!(
                o,
                "<tr><td colspan=\"6\" style=\"padding:6px 8px 2px 8px;font-weight:bold;border-bottom:1px solid #ddd\">{}</td></tr>{eol}",
                h(&g.name)
            );
            for m in &g.metrics {
                let k = scale(m);
                let row = |o: &mut String, label: String, f: &Figures, indent: u32| {
                    let frac = f.max / k;
                    let _ = write!(
                        o,
                        "<tr><td style=\"padding:2px 8px 2px {}px\">{}</td><td {num}>{}</td><td {num}>{}</td><td {num}>{}</td><td {num}>{}</td><td {td}>{}</td></tr>{eol}",
                        8 + indent,
                        h(&label),
                        h(&f.text.min),
                        h(&f.text.avg),
                        h(&f.text.p95),
                        h(&f.text.max),
                        bar(frac, colour(frac))
                    );
                };
                row(&mut o, metric_label(m), &m.figures, 0);
                for s in &m.top {
                    row(
                        &mut o,
                        s.label.clone().unwrap_or_else(|| s.series.clone()),
                        &s.figures,
                        16,
                    );
                }
            }
        }
        let _ = write!(
            o,
            "</table>{eol}<p style=\"color:#777;font-size:12px\">p95 over the {}s slots' averages; bars: the maximum, against 100% or the metric's own maximum.</p>{eol}",
            r.resolution
        );
    }
    let _ = write!(
        o,
        "<h3 style=\"margin:12px 0 4px 0\">Alerts</h3>{eol}<p style=\"margin:0 0 6px 0\">{}</p>{eol}",
        h(&r.alerts_line())
    );
    let period = (r.until - r.since).max(1.0);
    if !r.alerts.time_in_alert.is_empty() {
        let _ = write!(
            o,
            "<table cellpadding=\"0\" cellspacing=\"0\" style=\"border-collapse:collapse\">{eol}<tr><th {td}>Rule</th><th {num}>Episodes</th><th {num}>In alert</th><th {td}></th></tr>{eol}"
        );
        for t in &r.alerts.time_in_alert {
            let frac = t.in_alert_s / period;
            let _ = write!(
                o,
                "<tr><td {td}>{}</td><td {num}>{}</td><td {num}>{}</td><td {td}>{}</td></tr>{eol}",
                h(&t.rule),
                t.episodes,
                h(&duration_text(t.in_alert_s)),
                bar(frac, "#d00000")
            );
        }
        let _ = write!(o, "</table>{eol}");
    }
    if !r.alerts.episodes.is_empty() {
        let _ = write!(
            o,
            "<table cellpadding=\"0\" cellspacing=\"0\" style=\"border-collapse:collapse;margin-top:8px\">{eol}<tr><th {td}>Severity</th><th {td}>Rule</th><th {td}>Series</th><th {td}>When</th></tr>{eol}"
        );
        for e in &r.alerts.episodes {
            let _ = write!(
                o,
                "<tr><td {td}>{}</td><td {td}>{}</td><td {td}>{}</td><td {td}>{}</td></tr>{eol}",
                h(&e.severity),
                h(&e.rule),
                h(&e.series),
                h(&episode_span(e))
            );
        }
        let _ = write!(o, "</table>{eol}");
    }
    let _ = write!(o, "<h3 style=\"margin:12px 0 4px 0\">Delivery failures</h3>{eol}");
    if r.delivery_failures.is_empty() {
        let _ = write!(o, "<p style=\"margin:0\">none</p>{eol}");
    } else {
        let _ = write!(
            o,
            "<table cellpadding=\"0\" cellspacing=\"0\" style=\"border-collapse:collapse\">{eol}<tr><th {td}>Channel</th><th {num}>Failures</th><th {td}>Last reason</th></tr>{eol}"
        );
        for f in &r.delivery_failures {
            let _ = write!(
                o,
                "<tr><td {td}>{}</td><td {num}>{}</td><td {td}>{}</td></tr>{eol}",
                h(&f.channel),
                f.failures,
                h(&f.last_reason)
            );
        }
        let _ = write!(o, "</table>{eol}");
    }
    let _ = write!(
        o,
        "<p style=\"color:#777;font-size:12px\">hostwatch &middot; times in UTC</p>{eol}</body></html>{eol}"
    );
    o
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::*;
    use super::*;
    use serde_json::json;

    /// A report with every part filled, and hostile names in it.
    pub(crate) fn sample() -> Report {
        let slots = |key: &str, base: f64| SeriesSlots {
            key: key.to_string(),
            slots: (0..60)
                .map(|i| Slot {
                    start: 1000.0 + 60.0 * f64::from(i),
                    min: base,
                    avg: base + f64::from(i) / 2.0,
                    max: base + 30.0,
                    last: base,
                    count: 12,
                    partial: false,
                })
                .collect(),
        };
        let records = vec![
            json!({"type": "notification", "rule": "disk<b>", "series": "disk.used_percent{mount=/<script>}",
                   "event": "firing", "ts": 1100.0, "since": 1100.0, "severity": "critical", "episode_key": "e1"}),
            json!({"type": "notification", "rule": "disk<b>", "series": "disk.used_percent{mount=/<script>}",
                   "event": "resolved", "ts": 1700.0, "since": 1100.0, "severity": "critical", "episode_key": "e1"}),
            json!({"type": "notification", "rule": "cpu", "series": "cpu.usage",
                   "event": "firing", "ts": 3000.0, "since": 3000.0, "severity": "warning", "episode_key": "e2"}),
            json!({"type": "delivery_failed", "channel": "ops&co", "ts": 2000.0, "reason": "HTTP 500 <html>"}),
        ];
        assemble(
            "daily",
            "web-01 <@U1>",
            1000.0,
            4600.0,
            60,
            &[
                slots("cpu.usage", 10.0),
                slots("disk.used_percent{mount=/<script>}", 50.0),
                slots("disk.used_percent{mount=/}", 20.0),
            ],
            &records,
            vec!["a note & more".into()],
        )
    }

    #[test]
    fn text_names_every_part() {
        let t = text(&sample(), "\n");
        for want in [
            "hostwatch report daily for web-01 <@U1>",
            "(1h, UTC)",
            "note: a note & more",
            "cpu.usage",
            "disk.used_percent (2 series)",
            "/<script>",
            "p95",
            "2 alerts fired, 1 resolved, 1 still firing",
            "disk<b>",
            "10m in alert",
            "still firing",
            "ops&co: 1 (last: HTTP 500 <html>)",
        ] {
            assert!(t.contains(want), "{want:?} not in\n{t}");
        }
    }

    #[test]
    fn json_is_the_model_and_reads_back() {
        let r = sample();
        let v: serde_json::Value = serde_json::from_str(&json(&r)).unwrap();
        assert_eq!(v["groups"][0]["metrics"][0]["figures"]["p95"], json!(38.0));
        assert_eq!(v["alerts"]["fired"], json!(2));
        assert_eq!(v["delivery_failures"][0]["failures"], json!(1));
        let back: Report = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn html_is_escaped_and_inline_styled() {
        let page = html(&sample(), "\r\n");
        assert!(page.starts_with("<!DOCTYPE html>") && page.ends_with("</html>\r\n"));
        assert!(
            !page.contains("<script>")
                && !page.contains("<b>")
                && !page.contains("<@U1>")
                && !page.contains("500 <html>")
        );
        assert!(
            page.contains("/&lt;script&gt;")
                && page.contains("disk&lt;b&gt;")
                && page.contains("ops&amp;co")
        );
        assert!(
            !page.contains("<style") && !page.contains("class=") && !page.contains("<link"),
            "inline styles only"
        );
        // The disk bar: max 80% of 100 → 96 px.
        assert!(page.contains("width:96px"), "{page}");
        // Every tag opened is closed (a rough balance check of the tags used).
        for tag in ["table", "tr", "td", "div", "p", "h2", "h3"] {
            let open = page.matches(&format!("<{tag} ")).count()
                + page.matches(&format!("<{tag}>")).count();
            assert_eq!(open, page.matches(&format!("</{tag}>")).count(), "<{tag}> unbalanced");
        }
    }
}
