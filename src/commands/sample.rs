//! `hostwatch sample`: read every series now (or every interval) and print it as a table,
//! one JSON document, or JSON lines that `replay` reads back.

use crate::cli::SampleArgs;
use crate::collect::{self, Sample};
use crate::config::CollectBackend;
use crate::humanize;
use crate::metrics::Metric;
use crate::series::{Registry, SeriesInfo};
use std::cmp::Ordering;
use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

/// Output formats of `sample`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Table,
    Json,
    Jsonl,
}

/// Runs the command.
pub fn run(args: &SampleArgs, global_config: Option<&Path>) -> ExitCode {
    let format = match args.format.as_str() {
        "table" => Format::Table,
        "json" => Format::Json,
        "jsonl" => Format::Jsonl,
        other => {
            return super::usage_error(&format!(
                "--format: unknown format \"{other}\" (expected table, json or jsonl)"
            ));
        }
    };
    let config = match super::load_config(args.config.as_deref(), global_config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut collect_config = config.collect.clone();
    if let Some(name) = &args.backend {
        collect_config.backend = match name.as_str() {
            "auto" => CollectBackend::Auto,
            "proc" => CollectBackend::Proc,
            "sysinfo" => CollectBackend::Sysinfo,
            other => {
                return super::usage_error(&format!(
                    "--backend: unknown backend \"{other}\" (expected auto, proc or sysinfo)"
                ));
            }
        };
        if let (CollectBackend::Sysinfo, Some(root)) =
            (collect_config.backend, &config.collect.root)
        {
            return super::usage_error(&format!(
                "--backend sysinfo: collect.root {} needs the proc backend",
                root.display()
            ));
        }
    }
    let every = match args.every.as_deref().map(|t| super::parse_duration_flag("--every", t)) {
        Some(Err(code)) => return code,
        Some(Ok(d)) => Some(d),
        None => None,
    };
    let over = match super::parse_duration_flag("--over", &args.over) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let count = args.count.unwrap_or(if every.is_some() { u64::MAX } else { 1 });
    let step = every.unwrap_or(over);

    let mut backend = collect::backend(&collect_config);
    let mut registry = Registry::new();
    let mut sample = Sample::default();
    backend.collect(&mut registry, &mut sample);
    let start = Instant::now();
    let stdout = io::stdout();
    for i in 1..=count {
        let deadline = start + step * u32::try_from(i).unwrap_or(u32::MAX);
        if let Some(wait) = deadline.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        backend.collect(&mut registry, &mut sample);
        let text = match format {
            Format::Table => render_table(&registry, &sample),
            Format::Json => render_json(&config.host, &registry, &sample, true),
            Format::Jsonl => render_json(&config.host, &registry, &sample, false),
        };
        let mut out = stdout.lock();
        if writeln!(out, "{text}").and_then(|_| out.flush()).is_err() {
            // The reader went away (a closed pipe): stop quietly, as Unix tools do.
            return ExitCode::SUCCESS;
        }
    }
    ExitCode::SUCCESS
}

/// The sample's points with their series, in catalogue order then natural label order.
fn sorted_points<'a>(registry: &'a Registry, sample: &Sample) -> Vec<(&'a SeriesInfo, f64)> {
    let mut points: Vec<_> = sample
        .points
        .iter()
        .filter(|(_, v)| v.is_finite())
        .map(|&(id, v)| (registry.info(id), v))
        .collect();
    points.sort_by(|(a, _), (b, _)| {
        a.metric.cmp(&b.metric).then_with(|| natural_cmp(a.label.as_deref(), b.label.as_deref()))
    });
    points
}

/// Orders labels numerically when both are numbers (core 2 before core 10), else by text.
fn natural_cmp(a: Option<&str>, b: Option<&str>) -> Ordering {
    match (a.and_then(|x| x.parse::<u64>().ok()), b.and_then(|x| x.parse::<u64>().ok())) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => a.cmp(&b),
    }
}

/// Label values are untrusted (a mount point may hold a newline): show control characters
/// escaped so one series is always one line.
fn printable(text: &str) -> String {
    if text.chars().any(char::is_control) {
        text.escape_debug().to_string()
    } else {
        text.to_string()
    }
}

/// An aligned table: metric, label, humanised value; unsupported metrics at the end.
fn render_table(registry: &Registry, sample: &Sample) -> String {
    let rows: Vec<(String, String, String)> = sorted_points(registry, sample)
        .into_iter()
        .map(|(info, v)| {
            let label =
                info.label_pair().map(|(k, v)| format!("{k}={}", printable(v))).unwrap_or_default();
            (info.metric.name().to_string(), label, humanize::value(info.metric.unit(), v))
        })
        .chain(
            sample
                .unsupported
                .iter()
                .map(|m| (m.name().to_string(), String::new(), "unsupported".to_string())),
        )
        .collect();
    let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max("METRIC".len());
    let w1 = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0).max("LABEL".len());
    let w2 = rows.iter().map(|r| r.2.len()).max().unwrap_or(0).max("VALUE".len());
    let mut out = format!("{:<w0$}  {:<w1$}  {:>w2$}", "METRIC", "LABEL", "VALUE");
    for (metric, label, value) in rows {
        out.push('\n');
        out.push_str(&format!("{metric:<w0$}  {label:<w1$}  {value:>w2$}"));
    }
    out
}

/// `{"ts": …, "host": …, "metrics": {"series key": value, …}, "unsupported": […]}`; keys in
/// catalogue order. `pretty` spreads it over lines for `--format json`.
fn render_json(host: &str, registry: &Registry, sample: &Sample, pretty: bool) -> String {
    let (nl, ind) = if pretty { ("\n", "  ") } else { ("", "") };
    let sep = if pretty { ",\n" } else { ", " };
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let metrics: Vec<String> = sorted_points(registry, sample)
        .into_iter()
        .map(|(info, v)| format!("{ind}{ind}{}: {}", quote(&info.key), humanize::round3(v)))
        .collect();
    let unsupported: Vec<String> =
        sample.unsupported.iter().map(|m: &Metric| quote(m.name())).collect();
    format!(
        "{{{nl}{ind}\"ts\": {:.3}{sep}{ind}\"host\": {}{sep}{ind}\"metrics\": {{{nl}{}{nl}{ind}}}{sep}{ind}\"unsupported\": [{}]{nl}}}",
        sample.unix_ts,
        quote(host),
        metrics.join(sep),
        unsupported.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_parse_back_with_hostile_labels() {
        let mut registry = Registry::new();
        let mut sample = Sample { unix_ts: 1700000000.5, ..Sample::default() };
        let a = registry.intern(Metric::DiskUsedPercent, Some("/mnt/\"x\"\n}"));
        let b = registry.intern(Metric::CpuUsage, None);
        sample.points = vec![(a, 41.0), (b, 12.3456)];
        sample.unsupported = vec![Metric::CpuIowait];
        for pretty in [false, true] {
            let text = render_json("web\"01", &registry, &sample, pretty);
            assert_eq!(text.contains('\n'), pretty);
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["host"], "web\"01");
            assert_eq!(v["metrics"]["cpu.usage"], 12.346);
            assert_eq!(v["metrics"]["disk.used_percent{mount=/mnt/\"x\"\n}}"], 41.0);
            assert_eq!(v["unsupported"][0], "cpu.iowait");
        }
    }

    #[test]
    fn table_orders_cores_naturally_and_escapes_control_characters() {
        let mut registry = Registry::new();
        let mut sample = Sample::default();
        for core in ["10", "2"] {
            let id = registry.intern(Metric::CpuCoreUsage, Some(core));
            sample.points.push((id, 1.0));
        }
        let id = registry.intern(Metric::NetRxRate, Some("ev\nil"));
        sample.points.push((id, 2048.0));
        let table = render_table(&registry, &sample);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[1].contains("core=2") && lines[2].contains("core=10"));
        assert!(lines[3].contains("iface=ev\\nil") && lines[3].ends_with("2.0 KiB/s"));
    }
}
