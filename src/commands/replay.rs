//! `hostwatch replay FILE`: feeds `sample --format jsonl` lines through the rules and alert
//! states on their own timestamps (no sleeping, no wall clock) and prints one JSON line per
//! notification. The same engine as `run` and `once`; only the source of samples differs.

use crate::cli::ReplayArgs;
use crate::collect::Sample;
use crate::engine::Engine;
use crate::series::{Registry, parse_series_key};
use crate::state;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::ExitCode;

/// Runs the command.
pub fn run(args: &ReplayArgs, global_config: Option<&Path>) -> ExitCode {
    let config = match super::load_config(args.config.as_deref(), global_config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let reader: Box<dyn BufRead> = if args.file == Path::new("-") {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        match std::fs::File::open(&args.file) {
            Ok(f) => Box::new(BufReader::new(f)),
            Err(e) => return super::runtime_error(&format!("{}: {e}", args.file.display())),
        }
    };
    // A replay that keeps state takes the state directory's lock like `run` and `once`, so it
    // can never write over a live agent's state.
    let _lock = match args.state_dir.as_deref().map(state::lock) {
        Some(Err(e)) => return super::runtime_error(&format!("--state-dir: {e}")),
        other => other,
    };
    let mut persisted = args.state_dir.as_deref().map(state::load);
    let mut engine = Engine::new(&config, None);
    if let Some(p) = persisted.as_mut() {
        engine.restore_alerts(std::mem::take(&mut p.alerts));
    }
    // A replay that keeps state keeps history and the events log too, on the samples' own
    // times, like the host would have.
    let mut history = args.state_dir.as_deref().and_then(|dir| {
        let config = crate::config::Config { state_dir: dir.to_path_buf(), ..config.clone() };
        crate::history::Recorder::open(&config, crate::timefmt::now_unix())
    });
    let mut events = args.state_dir.as_deref().map(crate::eventlog::EventLog::new);
    let mut registry = Registry::new();
    let mut sample = Sample::default();
    let mut out = Vec::new();
    let stdout = std::io::stdout();
    let name = args.file.display().to_string();
    for (index, line) in reader.lines().enumerate() {
        let lineno = index + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => return super::runtime_error(&format!("{name}:{lineno}: {e}")),
        };
        if line.trim().is_empty() {
            continue;
        }
        if let Err(e) = parse_line(&line, &mut registry, &mut sample) {
            return super::usage_error(&format!("{name}:{lineno}: {e}"));
        }
        out.clear();
        engine.tick(&registry, &sample, &mut out);
        if let Some(h) = history.as_mut() {
            h.record(&registry, &sample);
            h.events(&out);
        }
        if let Some(log) = events.as_mut() {
            for n in &out {
                let mut record = n.to_json();
                record["type"] = serde_json::Value::from("notification");
                log.append(&record);
            }
        }
        // What the config's silences held back: recorded with `--state-dir`, else dropped.
        for held in engine.take_suppressed() {
            if let Some(log) = events.as_mut() {
                log.append(&held.to_record());
            }
        }
        let mut lock = stdout.lock();
        for n in &out {
            if writeln!(lock, "{}", n.to_json()).is_err() {
                return ExitCode::SUCCESS;
            }
        }
    }
    if let Some(h) = history {
        h.stop(std::time::Instant::now() + config.delivery.timeout);
    }
    if let (Some(dir), Some(mut p)) = (args.state_dir.as_deref(), persisted) {
        p.alerts = engine.saved_alerts(&registry);
        if let Err(e) = state::save(dir, &p) {
            return super::runtime_error(&format!(
                "cannot save the state in {}: {e}",
                dir.display()
            ));
        }
    }
    ExitCode::SUCCESS
}

/// Reads one `{"ts": …, "metrics": {…}}` line into `sample` (also `test-rules`' `samples`).
pub(crate) fn parse_line(
    line: &str,
    registry: &mut Registry,
    sample: &mut Sample,
) -> Result<(), String> {
    let doc: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let ts = doc.get("ts").and_then(serde_json::Value::as_f64).ok_or("missing number \"ts\"")?;
    let metrics = doc
        .get("metrics")
        .and_then(serde_json::Value::as_object)
        .ok_or("missing object \"metrics\"")?;
    sample.clear();
    sample.unix_ts = ts;
    for (key, value) in metrics {
        let (metric, label) = parse_series_key(key).map_err(|e| format!("metrics: {e}"))?;
        let Some(v) = value.as_f64() else {
            if value.is_null() {
                continue;
            }
            return Err(format!("metrics.\"{key}\": expected a number, found {value}"));
        };
        sample.points.push((registry.intern(metric, label), v));
    }
    Ok(())
}
