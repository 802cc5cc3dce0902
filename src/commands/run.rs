//! `hostwatch run`: the poll loop. Ticks aligned to the interval, SIGHUP reloads the config,
//! SIGTERM/SIGINT save the state and stop. Notifications go to the delivery dispatcher
//! (outbox, one worker per channel) after the outbox is on disk.

use crate::cli::RunArgs;
use crate::collect::{self, Sample};
use crate::config::{self, Config};
use crate::engine::Engine;
use crate::eventlog::EventLog;
use crate::notify::delivery::{Dispatcher, DryRunRenderer};
use crate::notify::{Fanout, LogNotifier, Notify};
use crate::series::Registry;
use crate::signals::{Signals, Wake};
use crate::silence_store;
use crate::state::{self, State};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(args: &RunArgs, global_config: Option<&Path>) -> ExitCode {
    let config_path: Option<PathBuf> =
        args.config.clone().or_else(|| global_config.map(Path::to_path_buf));
    let mut config = match super::load_runnable_config(config_path.as_deref(), None) {
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
    let mut sinks = make_sinks(&config, args.dry_run);
    let mut dispatcher = (!args.dry_run).then(|| start_dispatcher(&config, &mut persisted));
    let mut backend = collect::backend(&config.collect);
    let mut registry = Registry::new();
    let mut sample = Sample::default();
    let mut out = Vec::with_capacity(64);
    log::info!(
        config = config.source.as_str(), host = config.host.as_str(), rules = config.rules.len(),
        channels = config.channels.len(), interval = format!("{:?}", config.interval),
        backend = backend.name(), dry_run = args.dry_run;
        "hostwatch started");
    if let Some(d) = dispatcher.as_mut()
        && d.hand_off()
    {
        // The outbox left by the previous process is on disk already; this save records
        // that its items are in flight now.
        let _ = save(&config.state_dir, &mut persisted, &engine, &registry, d);
    }

    backend.collect(&mut registry, &mut sample);
    let mut start = Instant::now();
    let mut k: u32 = 0;
    let mut first_tick = true;
    loop {
        k += 1;
        let deadline = start + config.interval * k;
        // A wake-up before the deadline that is no signal (a burst of signals leaves bytes in
        // the pipe) goes back to waiting: ticks happen on the deadline, never early.
        let wake = loop {
            let w = signals.wait(deadline.saturating_duration_since(Instant::now()));
            if w != Wake::Timeout || Instant::now() >= deadline {
                break w;
            }
        };
        match wake {
            Wake::Stop => break,
            Wake::Reload => {
                if let Some(new_config) = reload(config_path.as_deref(), &config) {
                    let alerts = engine.saved_alerts(&registry);
                    let rings = engine.saved_rings(&registry);
                    engine = Engine::new(&new_config, None);
                    engine.restore_alerts(alerts);
                    if new_config.collect != config.collect {
                        backend = collect::backend(&new_config.collect);
                        registry = Registry::new();
                        backend.collect(&mut registry, &mut sample);
                    }
                    // Windows carry over: a reload does not restart "for 2m" or an average.
                    engine.warm_rings(&registry, &rings);
                    sinks = make_sinks(&new_config, args.dry_run);
                    if let Some(mut d) = dispatcher.take() {
                        d.shutdown(Instant::now() + d.grace());
                        persisted.delivery = d.state();
                        dispatcher = Some(start_dispatcher(&new_config, &mut persisted));
                    }
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
        let late = Instant::now().saturating_duration_since(deadline);
        if late > config.interval {
            let missed = (late.as_secs_f64() / config.interval.as_secs_f64()) as u32;
            log::warn!(missed = missed; "ticks missed (host suspended or overloaded)");
            k += missed;
        }
        log::debug!(late_ms = late.as_secs_f64() * 1000.0; "tick");
        if silences.changed() {
            engine.set_silences(silences.merged(&config, true));
        }
        if let Some(d) = dispatcher.as_mut() {
            d.process_acks();
        }
        backend.collect(&mut registry, &mut sample);
        out.clear();
        engine.tick(&registry, &sample, &mut out);
        if first_tick {
            engine.drop_unbound_restored(sample.unix_ts, &mut out);
            if let Some(d) = dispatcher.as_mut() {
                for n in engine.announced_firing(&registry, sample.unix_ts) {
                    d.remember(&n.to_event());
                }
            }
            first_tick = false;
        }
        for n in &out {
            sinks.notify(n);
            if let Some(d) = dispatcher.as_mut() {
                d.notify(n);
            }
        }
        let engine_changed = engine.take_changed();
        if let Some(d) = dispatcher.as_mut() {
            let saved = !(d.take_changed() | engine_changed)
                || save(&config.state_dir, &mut persisted, &engine, &registry, d);
            // Nothing is attempted before it is on disk: after a failed save the items wait
            // in memory, and the next tick saves and hands them off.
            if saved {
                if d.hand_off() {
                    let _ = save(&config.state_dir, &mut persisted, &engine, &registry, d);
                }
            } else {
                d.mark_changed();
            }
        }
    }
    log::info!("stopping");
    sinks.shutdown();
    if let Some(mut d) = dispatcher {
        d.shutdown(Instant::now() + d.grace());
        let _ = save(&config.state_dir, &mut persisted, &engine, &registry, &d);
    }
    ExitCode::SUCCESS
}

fn start_dispatcher(config: &Config, persisted: &mut State) -> Dispatcher {
    Dispatcher::start(
        config,
        std::mem::take(&mut persisted.delivery),
        Some(EventLog::new(&config.state_dir)),
    )
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

/// The notifiers besides delivery: the log, and the events log or the dry-run printer.
fn make_sinks(config: &Config, dry_run: bool) -> Fanout {
    if dry_run {
        Fanout(vec![Box::new(LogNotifier), Box::new(DryRunRenderer::new(config))])
    } else {
        Fanout(vec![Box::new(LogNotifier), Box::new(EventLog::new(&config.state_dir))])
    }
}

/// Writes the state file with the engine's alerts and the dispatcher's outbox; false (and
/// an error in the log) when it could not be written.
fn save(
    dir: &Path,
    persisted: &mut State,
    engine: &Engine,
    registry: &Registry,
    dispatcher: &Dispatcher,
) -> bool {
    persisted.alerts = engine.saved_alerts(registry);
    persisted.delivery = dispatcher.state();
    match state::save(dir, persisted) {
        Ok(()) => true,
        Err(e) => {
            log::error!(state_dir = dir.display().to_string(); "cannot save the state: {e}");
            false
        }
    }
}
