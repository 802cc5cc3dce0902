//! `hostwatch history`: prints what the history file holds, per series, over a time range:
//! a table with min/avg/max/last and a sparkline of the slots' averages for people, every
//! slot (or raw sample) as JSON or CSV for tools and spreadsheets. Reads the file without
//! the state directory's lock, while the daemon writes it.
//!
//! Not for: writing history (`history::recorder`) or reports (`report`).

use crate::cli::HistoryArgs;
use crate::history::read::{self, HistoryData, SeriesColumn, SlotPoint};
use crate::series::parse_series_key;
use serde_json::json;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Table,
    Json,
    Csv,
}

/// Runs the command.
pub fn run(args: &HistoryArgs, global_config: Option<&Path>) -> ExitCode {
    let format = match args.format.as_str() {
        "table" => Format::Table,
        "json" => Format::Json,
        "csv" => Format::Csv,
        other => {
            return super::usage_error(&format!(
                "--format: unknown format \"{other}\" (expected table, json or csv)"
            ));
        }
    };
    if args.raw && format == Format::Table {
        return super::usage_error("--raw needs --format json or csv");
    }
    let now = crate::timefmt::now_unix();
    let since = match time_flag("--since", &args.since, now) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let until = match args.until.as_deref().map(|u| time_flag("--until", u, now)) {
        Some(Ok(t)) => t,
        Some(Err(code)) => return code,
        None => now,
    };
    if until < since {
        return super::usage_error("--until is before --since");
    }
    let path = match &args.file {
        Some(f) => f.clone(),
        None => match super::load_config(args.config.as_deref(), global_config) {
            Ok(c) => read::path(&c.state_dir),
            Err(code) => return code,
        },
    };
    let data = match HistoryData::open(&path) {
        Ok(d) => d,
        Err(e) if !path.exists() => {
            return super::runtime_error(&format!(
                "no history at {} ({e}); `run` and `once` write it unless \"history\" is off",
                path.display()
            ));
        }
        Err(e) => return super::runtime_error(&e),
    };
    let mut series: Vec<SeriesColumn> =
        data.series().into_iter().filter(|s| selected(&args.series, &s.key)).collect();
    series.sort_by(|a, b| a.key.cmp(&b.key));
    if series.is_empty() {
        let what = if args.series.is_empty() {
            "no series".to_owned()
        } else {
            format!("no series matches {}", args.series.join(" "))
        };
        return super::runtime_error(&format!("{}: {what}", path.display()));
    }
    let text = match format {
        Format::Table => table(&data, &series, since, until),
        Format::Json => json_out(&data, &series, since, until, args.raw),
        Format::Csv => csv(&data, &series, since, until, args.raw),
    };
    crate::outln!("{}", text.trim_end());
    ExitCode::SUCCESS
}

/// `6h` (that long before now) or an RFC 3339 time.
fn time_flag(flag: &str, text: &str, now: f64) -> Result<f64, ExitCode> {
    if let Ok(t) = crate::config::parse_rfc3339(text) {
        return Ok(t);
    }
    match crate::config::units::parse_duration(text) {
        Ok(d) => Ok(now - d.as_secs_f64()),
        Err(_) => Err(super::usage_error(&format!(
            "{flag}: expected a duration such as \"6h\" or a time such as \"2026-12-01T08:00:00Z\", got {text:?}"
        ))),
    }
}

/// True when `key` is one of the patterns: a glob over the whole key, or over its metric.
fn selected(patterns: &[String], key: &str) -> bool {
    if patterns.is_empty() {
        return true;
    }
    let metric = key.split('{').next().unwrap_or(key);
    patterns.iter().any(|p| crate::glob::glob_match(p, key) || crate::glob::glob_match(p, metric))
}

/// The unit of a series, for rendering.
fn unit_of(key: &str) -> Option<crate::metrics::Unit> {
    parse_series_key(key).ok().map(|(m, _)| m.unit())
}

fn human(key: &str, v: f64) -> String {
    match unit_of(key) {
        Some(u) => crate::humanize::value(u, v),
        None => format!("{v}"),
    }
}

/// Columns a sparkline may use.
const SPARK_WIDTH: usize = 48;

/// `▁▂▃▅▇` of the slots' averages, bucketed to at most [`SPARK_WIDTH`] characters.
pub(crate) fn sparkline(values: &[f64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if values.is_empty() {
        return String::new();
    }
    let n = values.len().min(width.max(1));
    let buckets: Vec<f64> = (0..n)
        .map(|i| {
            let a = i * values.len() / n;
            let b = ((i + 1) * values.len() / n).max(a + 1);
            values[a..b].iter().sum::<f64>() / (b - a) as f64
        })
        .collect();
    let lo = buckets.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = buckets.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    buckets
        .iter()
        .map(|v| {
            if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
                BARS[0]
            } else {
                BARS[(((v - lo) / (hi - lo)) * 7.0).round().clamp(0.0, 7.0) as usize]
            }
        })
        .collect()
}

/// The aggregates of a run of slots: min, count-weighted mean, max, last.
fn summarize(slots: &[SlotPoint]) -> Option<(f64, f64, f64, f64)> {
    let last = slots.last()?.last;
    let min = slots.iter().map(|s| s.min).fold(f64::INFINITY, f64::min);
    let max = slots.iter().map(|s| s.max).fold(f64::NEG_INFINITY, f64::max);
    let n: f64 = slots.iter().map(|s| s.count as f64).sum();
    let avg = slots.iter().map(|s| s.avg * s.count as f64).sum::<f64>() / n.max(1.0);
    Some((min, avg, max, last))
}

fn table(data: &HistoryData, series: &[SeriesColumn], since: f64, until: f64) -> String {
    let mut rows: Vec<[String; 6]> = Vec::new();
    for s in series {
        let slots = data.slots(s.column, since, until);
        let Some((min, avg, max, last)) = summarize(&slots) else { continue };
        let avgs: Vec<f64> = slots.iter().map(|p| p.avg).collect();
        rows.push([
            super::status::printable(&s.key),
            human(&s.key, min),
            human(&s.key, avg),
            human(&s.key, max),
            human(&s.key, last),
            sparkline(&avgs, SPARK_WIDTH),
        ]);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} to {}, {}s slots",
        crate::timefmt::human(since),
        crate::timefmt::human(until),
        data.resolution()
    );
    if rows.is_empty() {
        out.push_str("no values in this range\n");
        return out;
    }
    let head = ["SERIES", "MIN", "AVG", "MAX", "LAST", ""];
    let width = |i: usize| {
        rows.iter().map(|r| r[i].chars().count()).chain([head[i].len()]).max().unwrap_or(0)
    };
    let widths: Vec<usize> = (0..5).map(width).collect();
    let line = |out: &mut String, r: &[&str]| {
        let _ = write!(out, "{:<w$}", r[0], w = widths[0]);
        for i in 1..5 {
            let _ = write!(out, "  {:>w$}", r[i], w = widths[i]);
        }
        let _ = writeln!(out, "  {}", r[5]);
    };
    line(&mut out, &head);
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        line(&mut out, &cells);
    }
    out
}

fn labels_json(key: &str) -> serde_json::Value {
    match parse_series_key(key) {
        Ok((m, Some(v))) => match m.label_key() {
            Some(k) => json!({ k.as_str(): v }),
            None => json!({}),
        },
        _ => json!({}),
    }
}

fn json_out(
    data: &HistoryData,
    series: &[SeriesColumn],
    since: f64,
    until: f64,
    raw: bool,
) -> String {
    let items: Vec<serde_json::Value> = series
        .iter()
        .map(|s| {
            let metric = s.key.split('{').next().unwrap_or(&s.key);
            let mut item = json!({ "series": s.key, "metric": metric, "labels": labels_json(&s.key) });
            if raw {
                let samples: Vec<serde_json::Value> = data
                    .raw(s.column, since, until)
                    .into_iter()
                    .map(|(ts, v)| json!({ "ts": ts, "time": crate::timefmt::rfc3339(ts), "value": v }))
                    .collect();
                item["samples"] = samples.into();
            } else {
                let slots: Vec<serde_json::Value> = data
                    .slots(s.column, since, until)
                    .into_iter()
                    .map(|p| {
                        json!({
                            "ts": p.start, "time": crate::timefmt::rfc3339(p.start),
                            "min": p.min, "avg": p.avg, "max": p.max, "last": p.last,
                            "count": p.count, "partial": p.partial,
                        })
                    })
                    .collect();
                item["slots"] = slots.into();
            }
            item
        })
        .collect();
    let doc = json!({
        "since": since, "until": until, "resolution": data.resolution(),
        "file_created": data.created(), "series": items,
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180); a leading
/// `=`, `+`, `-` or `@` is prefixed with `'` so a spreadsheet never runs it as a formula.
fn csv_field(text: &str) -> String {
    let text =
        if text.starts_with(['=', '+', '-', '@']) { format!("'{text}") } else { text.to_owned() };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn csv(data: &HistoryData, series: &[SeriesColumn], since: f64, until: f64, raw: bool) -> String {
    let mut out = String::new();
    if raw {
        out.push_str("series,ts,time,value\n");
    } else {
        out.push_str("series,ts,time,min,avg,max,last,count,partial\n");
    }
    for s in series {
        let key = csv_field(&s.key);
        if raw {
            for (ts, v) in data.raw(s.column, since, until) {
                let _ = writeln!(out, "{key},{ts},{},{v}", crate::timefmt::rfc3339(ts));
            }
            continue;
        }
        for p in data.slots(s.column, since, until) {
            let _ = writeln!(
                out,
                "{key},{},{},{},{},{},{},{},{}",
                p.start,
                crate::timefmt::rfc3339(p.start),
                p.min,
                p.avg,
                p.max,
                p.last,
                p.count,
                p.partial
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_scale_and_bucket() {
        assert_eq!(sparkline(&[0.0, 1.0, 2.0, 7.0], 10), "▁▂▃█");
        assert_eq!(sparkline(&[5.0, 5.0], 10), "▁▁");
        assert_eq!(sparkline(&(0..100).map(f64::from).collect::<Vec<_>>(), 4).chars().count(), 4);
        assert_eq!(sparkline(&[], 4), "");
    }

    #[test]
    fn selection_by_key_metric_or_glob() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(selected(&p(&["disk.used_percent"]), "disk.used_percent{mount=/}"));
        assert!(selected(&p(&["cpu.*"]), "cpu.core.usage{core=1}"));
        assert!(selected(&p(&["disk.used_percent{mount=/}"]), "disk.used_percent{mount=/}"));
        assert!(!selected(&p(&["disk.used_percent{mount=/}"]), "disk.used_percent{mount=/boot}"));
        assert!(selected(&[], "anything"));
    }

    #[test]
    fn csv_fields_cannot_break_rows_or_run_formulas() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("x\"y\nz"), "\"x\"\"y\nz\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        assert_eq!(csv_field("plain"), "plain");
    }
}
