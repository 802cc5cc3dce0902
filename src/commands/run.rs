//! `hostwatch run`: the poll loop. Ticks aligned to the interval, SIGHUP reloads the config,
//! SIGTERM/SIGINT save the state and stop.

use crate::cli::RunArgs;
use crate::collect::{self, Sample};
use crate::config::{self, Config};
use crate::engine::Engine;
use crate::eventlog::EventLog;
use crate::notify::{DryRun, Fanout, LogNotifier, Notify};
use crate::series::Registry;
use crate::signals::{Signals, Wake};
use crate::silence_store;
use crate::state;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(args: &RunArgs, global_config: Option<&Path>) -> ExitCode {
    let config_path: Option<PathBuf> =
        args.config.clone().or_else(|| global_config.map(Path::to_path_buf));
    let mut config = match super::load_config(config_path.as_deref(), None) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => return super::runtime_error(&format!("cannot install signal handlers: {e}")),
    };
    // A dry run reads the state but never writes it: a later real run must not believe that
    // what the dry run printed was announced.
    let _lock = if args.dry_run {
        None
    } else {
        match state::lock(&config.state_dir) {
            Ok(l) => Some(l),
            Err(e) => return super::runtime_error(&format!("state_dir: {e}")),
        }
    };
    let mut persisted = state::load(&config.state_dir);
    let mut engine = Engine::new(&config, None);
    engine.restore_alerts(std::mem::take(&mut persisted.alerts));
    let mut silences = silence_store::Watcher::new(&config.state_dir);
    engine.set_silences(silences.merged(&config, true));
    let mut notifier = make_notifier(&config, args.dry_run);
    let mut backend = collect::backend(&config.collect);
    let mut registry = Registry::new();
    let mut sample = Sample::default();
    let mut out = Vec::with_capacity(64);
    log::info!(
        config = config.source.as_str(), host = config.host.as_str(), rules = config.rules.len(),
        interval = format!("{:?}", config.interval), backend = backend.name(), dry_run = args.dry_run;
        "hostwatch started");

    backend.collect(&mut registry, &mut sample);
    let mut start = Instant::now();
    let mut k: u32 = 0;
    let mut first_tick = true;
    loop {
        k += 1;
        let deadline = start + config.interval * k;
        let wake = signals.wait(deadline.saturating_duration_since(Instant::now()));
        match wake {
            Wake::Stop => break,
            Wake::Reload => {
                if let Some(new_config) = reload(config_path.as_deref(), &config) {
                    let alerts = engine.saved_alerts(&registry);
                    engine = Engine::new(&new_config, None);
                    engine.restore_alerts(alerts);
                    if new_config.collect != config.collect {
                        backend = collect::backend(&new_config.collect);
                        registry = Registry::new();
                        backend.collect(&mut registry, &mut sample);
                    }
                    notifier = make_notifier(&new_config, args.dry_run);
                    if new_config.interval != config.interval {
                        start = Instant::now();
                        k = 0;
                    }
                    config = new_config;
                    engine.set_silences(silences.merged(&config, true));
                    first_tick = true;
                }
                k = k.saturating_sub(1);
                continue;
            }
            Wake::Timeout => {}
        }
        // Skip ticks missed while the host slept or the loop was starved; no catch-up burst.
        let behind = Instant::now().saturating_duration_since(deadline);
        if behind > config.interval {
            let missed = (behind.as_secs_f64() / config.interval.as_secs_f64()) as u32;
            log::warn!(missed = missed; "ticks missed (host suspended or overloaded)");
            k += missed;
        }
        if silences.changed() {
            engine.set_silences(silences.merged(&config, true));
        }
        backend.collect(&mut registry, &mut sample);
        out.clear();
        engine.tick(&registry, &sample, &mut out);
        if first_tick {
            engine.drop_unbound_restored(sample.unix_ts, &mut out);
            first_tick = false;
        }
        for n in &out {
            notifier.notify(n);
        }
        if engine.take_changed() && !args.dry_run {
            save(&config.state_dir, &mut persisted, &engine, &registry);
        }
    }
    log::info!("stopping");
    notifier.shutdown();
    if !args.dry_run {
        save(&config.state_dir, &mut persisted, &engine, &registry);
    }
    ExitCode::SUCCESS
}

/// Re-reads the config for SIGHUP; a broken one is logged and the running one kept.
fn reload(path: Option<&Path>, current: &Config) -> Option<Config> {
    match config::load(path) {
        Ok(c) => {
            log::info!(config = c.source.as_str(), rules = c.rules.len(); "config reloaded");
            if c.state_dir != current.state_dir {
                log::warn!(
                    "state_dir changes take effect at the next restart; keeping {}",
                    current.state_dir.display()
                );
                return Some(Config { state_dir: current.state_dir.clone(), ..c });
            }
            Some(c)
        }
        Err(errors) => {
            for e in &errors.0 {
                log::error!("config reload failed, keeping the running config: {e}");
            }
            None
        }
    }
}

fn make_notifier(config: &Config, dry_run: bool) -> Box<dyn Notify> {
    if dry_run {
        Box::new(Fanout(vec![Box::new(LogNotifier), Box::new(DryRun)]))
    } else {
        Box::new(Fanout(vec![Box::new(LogNotifier), Box::new(EventLog::new(&config.state_dir))]))
    }
}

/// Writes the state file with the engine's current alerts.
fn save(dir: &Path, persisted: &mut state::State, engine: &Engine, registry: &Registry) {
    persisted.alerts = engine.saved_alerts(registry);
    if let Err(e) = state::save(dir, persisted) {
        log::error!(state_dir = dir.display().to_string(); "cannot save the state: {e}");
    }
}
