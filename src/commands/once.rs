//! `hostwatch once`: one evaluation for cron. Windows, counters and alert states persist in
//! the state file, so rates cover the time since the previous run and `for: 2m` spans runs.
//! Exit codes follow Nagios: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

use crate::cli::OnceArgs;
use crate::collect::{self, Sample};
use crate::config::{Op, Severity};
use crate::engine::{AlertView, Engine};
use crate::event::Notification;
use crate::humanize;
use crate::metrics::Unit;
use crate::notify::delivery::{Dispatcher, DryRunRenderer};
use crate::notify::{LogNotifier, Notify};
use crate::series::Registry;
use crate::silence_store;
use crate::state::{self, OnceState};
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

/// Nagios exit codes (`status` exits with the same).
pub(super) const OK: u8 = 0;
pub(super) const WARNING: u8 = 1;
pub(super) const CRITICAL: u8 = 2;
pub(super) const UNKNOWN: u8 = 3;

/// Output formats.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    Json,
    Nagios,
}

/// Runs one evaluation and exits with the worst state.
pub fn run(args: &OnceArgs, global_config: Option<&Path>) -> ExitCode {
    let format = match args.format.as_str() {
        "text" => Format::Text,
        "json" => Format::Json,
        "nagios" => Format::Nagios,
        other => {
            return unknown(&format!(
                "--format: unknown format \"{other}\" (expected text, json or nagios)"
            ));
        }
    };
    let config = match super::load_runnable_config(args.config.as_deref(), global_config) {
        Ok(c) => c,
        Err(_) => return unknown("invalid config"),
    };
    let max_gap = match super::parse_duration_flag("--max-gap", &args.max_gap) {
        Ok(d) => d.as_secs_f64(),
        Err(_) => return ExitCode::from(UNKNOWN),
    };
    let first_interval = match super::parse_duration_flag("--first-interval", &args.first_interval)
    {
        Ok(d) => d,
        Err(_) => return ExitCode::from(UNKNOWN),
    };
    let _lock = if args.dry_run {
        None
    } else {
        match state::lock(&config.state_dir) {
            Ok(l) => Some(l),
            Err(e) => return unknown(&format!("state_dir: {e}")),
        }
    };
    if config.store.is_some() {
        log::warn!("state.store is used by `run` only: `once` keeps its state in the local file");
    }
    let mut persisted =
        if args.dry_run { state::peek(&config.state_dir) } else { state::load(&config.state_dir) };
    let previous = persisted.once.take().unwrap_or_default();

    let mut registry = Registry::new();
    let mut engine = Engine::new(&config, Some(max_gap));
    engine.restore_alerts(std::mem::take(&mut persisted.alerts));
    engine.set_silences(silence_store::Watcher::new(&config.state_dir).merged(&config, true));

    let mut backend = collect::backend(&config.collect);
    let mut sample = Sample::default();
    if !backend.restore_counters(&previous.counters) {
        backend.collect(&mut registry, &mut sample);
        std::thread::sleep(first_interval);
    }
    backend.collect(&mut registry, &mut sample);
    if sample.points.is_empty() {
        return unknown("the collector read no values");
    }
    // After the collection, so only series that still exist get their windows back; a
    // restored alert on a vanished series stays unbound and resolves below.
    engine.warm_rings(&registry, &previous.rings);
    let mut out = Vec::new();
    engine.tick(&registry, &sample, &mut out);
    engine.drop_unbound_restored(sample.unix_ts, &mut out);

    let mut log_sink = LogNotifier;
    if args.dry_run {
        let mut renderer = DryRunRenderer::new(&config);
        for n in &out {
            log_sink.notify(n);
            renderer.notify(n);
        }
    } else {
        let mut dispatcher = Dispatcher::start(&config, std::mem::take(&mut persisted.delivery));
        dispatcher.close_rate_periods();
        for n in &out {
            log_sink.notify(n);
            dispatcher.enqueue(n.to_event());
        }
        persisted.alerts = engine.saved_alerts(&registry);
        persisted.once = Some(OnceState {
            counters: backend.save_counters(),
            rings: engine.saved_rings(&registry),
        });
        // Saved, then attempted (from memory if the save failed); recorded in the events log
        // once the outbox that holds them is on disk. What is not accepted now is tried again
        // by the next run.
        dispatcher.commit(&mut persisted);
        dispatcher.record(&out);
        dispatcher.record_silenced(engine.take_suppressed());
        // A cron host keeps history too: this run's sample is its slot's (so far).
        let history = crate::history::Recorder::open(&config, sample.unix_ts).map(|mut h| {
            h.record(&registry, &sample);
            h.events(&out);
            h
        });
        let deadline = Instant::now() + config.delivery.timeout * 3;
        let drained = dispatcher.drain(&mut persisted, deadline);
        if !drained {
            crate::errln!(
                "hostwatch: cannot save the state in {}; windows and alert states of this run \
                 are lost (see the log)",
                config.state_dir.display()
            );
        }
        if let Some(h) = history {
            h.stop(Instant::now() + config.delivery.timeout);
        }
    }

    let alerts: Vec<AlertView<'_>> = engine.alerts(&registry).collect();
    let code = alerts
        .iter()
        .filter_map(|a| a.state.firing_severity())
        .map(|s| if s == Severity::Critical { CRITICAL } else { WARNING })
        .max()
        .unwrap_or(OK);
    let text = match format {
        Format::Nagios => nagios(code, &alerts),
        Format::Text => text(code, &config.host, &alerts),
        Format::Json => serde_json::to_string_pretty(&report_json(
            code,
            &config.host,
            sample.unix_ts,
            &alerts,
            &out,
        ))
        .unwrap_or_default(),
    };
    crate::outln!("{text}");
    ExitCode::from(code)
}

/// Prints why the check cannot tell, Nagios style, and exits 3.
fn unknown(message: &str) -> ExitCode {
    crate::outln!("HOSTWATCH UNKNOWN - {message}");
    ExitCode::from(UNKNOWN)
}

/// The Nagios word of an exit code.
pub(super) fn status_word(code: u8) -> &'static str {
    match code {
        OK => "OK",
        WARNING => "WARNING",
        CRITICAL => "CRITICAL",
        _ => "UNKNOWN",
    }
}

/// `disk_root / 96.1% > 95`; `disk_data disk.used_percent{mount=/data} no data since …
/// (mount disappeared)`; `data_mounted absent(disk.used_percent{mount=/data})`.
fn firing_summary(a: &AlertView<'_>) -> String {
    let severity = a.state.firing_severity().unwrap_or(Severity::Warning);
    if let Some(n) = a.state.nodata() {
        return format!(
            "{} {} no data since {} ({})",
            a.rule.name,
            a.series.key,
            crate::timefmt::human(n.last_seen),
            n.reason.text(a.series.metric)
        );
    }
    if crate::series::absent_inner(&a.series.key).is_some() {
        return format!("{} {}", a.rule.name, a.series.key);
    }
    let label = a.series.label.as_deref().map(|l| format!(" {l}")).unwrap_or_default();
    let by_policy = matches!(
        a.state.phase,
        crate::alerts::Phase::Firing { escalated_by: Some(crate::alerts::EscalatedBy::Time), .. }
    );
    let threshold = if by_policy {
        format!("{} (critical by policy)", a.rule.threshold_text(Severity::Warning))
    } else {
        a.rule.threshold_text(severity).to_string()
    };
    format!(
        "{}{label} {} {threshold}",
        a.rule.name,
        humanize::styled(a.series.metric.unit(), a.state.value, a.rule.style),
    )
}

/// Firing alerts, critical first.
fn firing<'a>(alerts: &'a [AlertView<'a>]) -> Vec<&'a AlertView<'a>> {
    let mut f: Vec<_> = alerts.iter().filter(|a| a.state.firing_severity().is_some()).collect();
    f.sort_by_key(|a| std::cmp::Reverse(a.state.firing_severity()));
    f
}

/// `HOSTWATCH CRITICAL - disk_root / 96.1% > 95 | 'disk_root'=96.1%;90;95`
fn nagios(code: u8, alerts: &[AlertView<'_>]) -> String {
    let firing = firing(alerts);
    let summary = if firing.is_empty() {
        format!("{} series checked by {} rules, nothing firing", alerts.len(), rule_count(alerts))
    } else {
        firing.iter().map(|a| firing_summary(a)).collect::<Vec<_>>().join(", ")
    };
    let perf: Vec<String> =
        alerts.iter().filter(|a| a.state.value.is_finite()).map(|a| perfdata(a, alerts)).collect();
    let mut line = format!("HOSTWATCH {} - {summary}", status_word(code));
    if !perf.is_empty() {
        line.push_str(" | ");
        line.push_str(&perf.join(" "));
    }
    line
}

fn rule_count(alerts: &[AlertView<'_>]) -> usize {
    let mut names: Vec<&str> = alerts.iter().map(|a| &*a.rule.name).collect();
    names.sort_unstable();
    names.dedup();
    names.len()
}

/// One perfdata item: `'label'=value[UOM];warn;crit`, thresholds in Nagios range syntax.
fn perfdata(a: &AlertView<'_>, all: &[AlertView<'_>]) -> String {
    let shared = all.iter().filter(|b| b.rule.name == a.rule.name).count() > 1;
    let mut label = a.rule.name.to_string();
    if shared && let Some(l) = a.series.label.as_deref() {
        label.push_str(&format!("[{l}]"));
    }
    let label = label.replace('\'', "''").replace('=', "_");
    let (value, uom) = match a.series.metric.unit() {
        Unit::Percent | Unit::CorePercent => (format!("{:.1}", a.state.value), "%"),
        Unit::Bytes => (format!("{:.0}", a.state.value), "B"),
        _ => (format!("{}", humanize::round3(a.state.value)), ""),
    };
    let range = |p: Option<crate::rules::Predicate>| match p {
        Some(p) if matches!(p.op, Op::Lt | Op::Le) => format!("{}:", p.value),
        Some(p) => format!("{}", p.value),
        None => String::new(),
    };
    format!("'{label}'={value}{uom};{};{}", range(a.rule.warn), range(a.rule.crit))
}

/// Plain text for people.
fn text(code: u8, host: &str, alerts: &[AlertView<'_>]) -> String {
    let firing = firing(alerts);
    let pending =
        alerts.iter().filter(|a| matches!(a.state.phase, crate::alerts::Phase::Pending { .. }));
    let mut lines = vec![format!(
        "{} on {host}: {} firing, {} pending of {} series",
        status_word(code),
        firing.len(),
        pending.count(),
        alerts.len()
    )];
    for a in firing {
        let severity = a.state.firing_severity().map_or("", |s| s.as_str());
        lines.push(format!(
            "  {:<8} {}  ({})",
            severity.to_uppercase(),
            firing_summary(a),
            a.series.key
        ));
    }
    lines.join("\n")
}

/// The JSON report.
fn report_json(
    code: u8,
    host: &str,
    ts: f64,
    alerts: &[AlertView<'_>],
    out: &[Notification],
) -> serde_json::Value {
    let alerts: Vec<serde_json::Value> = alerts
        .iter()
        .map(|a| {
            let state = serde_json::to_value(a.state).unwrap_or_default();
            json!({
                "rule": &*a.rule.name,
                "series": &*a.series.key,
                "labels": a.series.label_pair().map(|(k, v)| json!({k.as_str(): v})).unwrap_or(json!({})),
                "state": state,
                "value": if a.state.value.is_finite() { json!(humanize::round3(a.state.value)) } else { json!(null) },
            })
        })
        .collect();
    json!({
        "status": status_word(code).to_lowercase(),
        "exit_code": code,
        "host": host,
        "ts": ts,
        "alerts": alerts,
        "notifications": out.iter().map(Notification::to_json).collect::<Vec<_>>(),
    })
}
