//! The running agent behind `hostwatch run`: it owns the collector, the engine, the alert
//! states and the dispatcher, and offers `tick`, `reload`, `save` and `stop`; [`Daemon::run`]
//! is the poll loop that calls them on the interval and on signals.
//!
//! One tick: apply delivery reports, collect, evaluate, route what the engine decided into the
//! outbox, save (state file with alerts and outbox, once), hand the new items to the workers,
//! then append the decisions to the events log — so the log never names a notification that
//! is not in the outbox. A failed save does not stop the hand-off (see `notify::delivery`).
//! [`Daemon::snapshot`] tells what the daemon looked like after its last tick. A tick that
//! returns beats the dead-man's switch (`notify::heartbeat`, never blocking). Under systemd the
//! loop itself (never another thread, so a stuck loop goes quiet) tells `sdnotify` when it is
//! ready, reloading and stopping, and pings the watchdog after each tick and, when the
//! watchdog's half period is shorter than the interval, between ticks.
//!
//! Not for: argument parsing (`commands::run`) or anything that may block on the network:
//! the loop only ever waits on its own timer and the signal pipe.

use crate::collect::{self, Backend, Sample};
use crate::config::{self, Config};
use crate::engine::Engine;
use crate::event::Notification;
use crate::history::Recorder;
use crate::notify::delivery::{ChannelHealth, Dispatcher, DryRunRenderer};
use crate::notify::heartbeat::Heartbeat;
use crate::notify::{Fanout, LogNotifier, Notify};
use crate::sdnotify::{SdNotify, Summary};
use crate::series::Registry;
use crate::signals::{Signals, Wake};
use crate::silence_store;
use crate::state::{self, State, StateLock};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the daemon looked like after its last tick.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// When the last tick's sample was taken (Unix seconds); 0 before the first.
    pub last_tick: f64,
    /// How long the last tick took.
    pub tick_duration: Duration,
    /// Live series.
    pub series: usize,
    /// Alerts firing and pending.
    pub firing: usize,
    /// Alerts pending (the window does not hold yet).
    pub pending: usize,
    /// Per channel delivery health and outbox depth.
    pub channels: BTreeMap<String, ChannelHealth>,
    /// True while the state cannot be saved.
    pub persist_failing: bool,
    /// Writes to the outbox journal and the events log that failed since start.
    pub write_failures: u64,
}

/// The running agent.
pub struct Daemon {
    config: Config,
    config_path: Option<PathBuf>,
    dry_run: bool,
    lock: Option<StateLock>,
    engine: Engine,
    registry: Registry,
    backend: Box<dyn Backend>,
    sample: Sample,
    out: Vec<Notification>,
    sinks: Fanout,
    dispatcher: Option<Dispatcher>,
    persisted: State,
    silences: silence_store::Watcher,
    first_tick: bool,
    /// When the last tick's sample was taken and how long the tick took.
    last_tick: (f64, Duration),
    /// Ticks since start.
    ticks: u64,
    /// The HTTP API and the view it answers from (`api` key).
    #[cfg(feature = "api")]
    api: Option<(crate::api::Api, crate::api::view::Publisher)>,
    /// The dead-man's switch (`heartbeat`, watchdog channels); never in a dry run.
    heartbeat: Option<Heartbeat>,
    /// Short history (the file in `state_dir`, SQLite, InfluxDB); never in a dry run.
    history: Option<Recorder>,
    /// Periodic reports (`reports`): when each is due.
    reports: crate::report::Scheduler,
    /// systemd's notification socket (nothing unless `run` was given one).
    sd: SdNotify,
    /// The Redis thread (`state.store`); never in a dry run.
    store: Option<crate::store::Mirror>,
}

impl Daemon {
    /// Takes the state directory (unless `dry_run`: a dry run reads the state but never
    /// writes it, so a later real run does not believe what it printed was announced),
    /// restores alerts and the outbox, and starts the channels' workers.
    pub fn start(
        config: Config,
        config_path: Option<PathBuf>,
        dry_run: bool,
    ) -> Result<Daemon, String> {
        let lock = if dry_run {
            None
        } else {
            Some(state::lock(&config.state_dir).map_err(|e| format!("state_dir: {e}"))?)
        };
        let mut persisted =
            if dry_run { state::peek(&config.state_dir) } else { state::load(&config.state_dir) };
        if let Some(store) = &config.store {
            crate::store::recover(store, &config.host, &config.state_dir, &mut persisted, !dry_run);
        }
        if persisted.lineage.is_empty() {
            persisted.lineage = state::new_lineage();
        }
        let mut engine = Engine::new(&config, None);
        engine.restore_alerts(std::mem::take(&mut persisted.alerts));
        let store = match (&config.store, dry_run) {
            (Some(s), false) => Some(crate::store::Mirror::start(s, &config.host, config.interval)),
            _ => None,
        };
        let mut silences = silence_store::Watcher::new(&config.state_dir);
        if let Some(m) = &store {
            silences = silences.with_shared(m.silences());
        }
        engine.set_silences(silences.merged(&config, true));
        let dispatcher = (!dry_run).then(|| {
            let mut d = Dispatcher::start(&config, std::mem::take(&mut persisted.delivery));
            if let Some(m) = &store {
                d.mirror_to(m.sink());
            }
            d
        });
        let mut reports = crate::report::Scheduler::new(&config, crate::timefmt::now_unix());
        if !dry_run {
            reports.save();
        }
        let mut daemon = Daemon {
            sinks: make_sinks(&config, dry_run),
            backend: collect::backend(&config.collect),
            config,
            config_path,
            dry_run,
            lock,
            engine,
            registry: Registry::new(),
            sample: Sample::default(),
            out: Vec::with_capacity(64),
            dispatcher,
            persisted,
            silences,
            first_tick: true,
            last_tick: (0.0, Duration::ZERO),
            ticks: 0,
            #[cfg(feature = "api")]
            api: None,
            heartbeat: None,
            history: None,
            reports,
            sd: SdNotify::default(),
            store,
        };
        daemon.start_api()?;
        if !dry_run {
            daemon.heartbeat = Heartbeat::start(&daemon.config);
            daemon.history = Recorder::open(&daemon.config, crate::timefmt::now_unix());
        }
        log::info!(
            config = daemon.config.source.as_str(), host = daemon.config.host.as_str(),
            rules = daemon.config.rules.len(), channels = daemon.config.channels.len(),
            interval = format!("{:?}", daemon.config.interval), backend = daemon.backend.name(),
            dry_run = dry_run;
            "hostwatch started");
        // The outbox the previous process left is handed to the workers now.
        daemon.save();
        // Rates need a first read.
        daemon.backend.collect(&mut daemon.registry, &mut daemon.sample);
        Ok(daemon)
    }

    /// One evaluation: collect, evaluate, route, save, hand off, record. Fails only when the
    /// state directory was replaced and another hostwatch now owns it.
    pub fn tick(&mut self) -> Result<(), String> {
        let started = Instant::now();
        self.ticks += 1;
        if let Some(lock) = &self.lock {
            lock.verify(&self.config.state_dir)?;
        }
        if self.silences.changed() {
            self.engine.set_silences(self.silences.merged(&self.config, true));
        }
        if let Some(d) = self.dispatcher.as_mut() {
            d.process_acks();
        }
        self.backend.collect(&mut self.registry, &mut self.sample);
        self.out.clear();
        self.engine.tick(&self.registry, &self.sample, &mut self.out);
        if self.first_tick {
            self.engine.drop_unbound_restored(self.sample.unix_ts, &mut self.out);
            if let Some(d) = self.dispatcher.as_mut() {
                for n in self.engine.announced_firing(&self.registry, self.sample.unix_ts) {
                    d.remember(&n.to_event());
                }
            }
            self.first_tick = false;
        }
        for n in &self.out {
            self.sinks.notify(n);
            if let Some(d) = self.dispatcher.as_mut() {
                d.enqueue(n.to_event());
            }
        }
        let engine_changed = self.engine.take_changed();
        if let Some(d) = self.dispatcher.as_mut() {
            self.reports.enqueue_due(&self.config, d);
            let saved = if engine_changed || d.needs_commit() {
                self.persisted.alerts = self.engine.saved_alerts(&self.registry);
                d.commit(&mut self.persisted)
            } else {
                d.hand_off();
                true
            };
            d.record(&self.out);
            d.record_silenced(self.engine.take_suppressed());
            // Only once the outbox holding an enqueued report is on disk (a report held in
            // memory only must not be recorded as sent); a no-op when nothing changed.
            if saved {
                self.reports.save();
            }
        }
        // A dry run keeps no events log: what silences held back is dropped.
        self.engine.take_suppressed().for_each(drop);
        if let Some(h) = self.history.as_mut() {
            h.record(&self.registry, &self.sample);
            h.events(&self.out);
        }
        self.last_tick = (self.sample.unix_ts, started.elapsed());
        self.publish();
        #[cfg(debug_assertions)]
        stall_for_tests();
        if let Some(h) = &self.heartbeat {
            let firing =
                self.engine.alerts(&self.registry).filter(|a| a.state.firing_severity().is_some());
            h.beat(self.ticks, firing.count());
        }
        Ok(())
    }

    /// Starts the API when the config asks for one.
    fn start_api(&mut self) -> Result<(), String> {
        let Some(api) = &self.config.api else { return Ok(()) };
        #[cfg(feature = "api")]
        {
            let view = crate::api::view::View::new(
                &self.config.host,
                &self.config.source,
                self.config.interval,
            );
            let publisher = crate::api::view::Publisher::new(view);
            let server = crate::api::Api::start(
                api,
                publisher.board(),
                &self.config.state_dir,
                crate::api::daily::history_file(&self.config),
                self.dry_run,
            )?;
            self.api = Some((server, publisher));
            Ok(())
        }
        #[cfg(not(feature = "api"))]
        {
            Err(format!(
                "api.listen {}: this build has no HTTP API (cargo feature \"api\")",
                api.listen
            ))
        }
    }

    /// Publishes the view the API answers from (nothing without an API).
    fn publish(&mut self) {
        #[cfg(feature = "api")]
        if let Some((_, publisher)) = self.api.as_mut() {
            let d = self.dispatcher.as_ref();
            publisher.publish(&crate::api::view::Inputs {
                engine: &self.engine,
                registry: &self.registry,
                sample: &self.sample,
                channels: d.map(Dispatcher::health),
                persist_failing: d.is_some_and(Dispatcher::persist_failing),
                write_failures: d.map_or(0, Dispatcher::write_failures),
                tick_duration: self.last_tick.1,
                config_silences: self.config.silences.len(),
                history: self.history.as_ref().map(Recorder::health),
            });
        }
    }

    /// The state after the last tick, built when asked (a tick only notes its time).
    pub fn snapshot(&self) -> Snapshot {
        let mut firing = 0;
        let mut pending = 0;
        for a in self.engine.alerts(&self.registry) {
            match a.state.phase {
                crate::alerts::Phase::Firing { .. } => firing += 1,
                crate::alerts::Phase::Pending { .. } => pending += 1,
                crate::alerts::Phase::Ok => {}
            }
        }
        Snapshot {
            last_tick: self.last_tick.0,
            tick_duration: self.last_tick.1,
            series: self.registry.iter().filter(|(_, s)| s.live).count(),
            firing,
            pending,
            channels: self.dispatcher.as_ref().map(Dispatcher::health).unwrap_or_default(),
            persist_failing: self.dispatcher.as_ref().is_some_and(Dispatcher::persist_failing),
            write_failures: self.dispatcher.as_ref().map_or(0, Dispatcher::write_failures),
        }
    }

    /// Saves the state now (alerts and outbox) and hands pending items to the workers.
    pub fn save(&mut self) {
        if let Some(d) = self.dispatcher.as_mut() {
            self.persisted.alerts = self.engine.saved_alerts(&self.registry);
            d.commit(&mut self.persisted);
        }
    }

    /// Re-reads the config (SIGHUP). A config that is invalid, or names a channel that can
    /// never work, is logged and the running one kept. Alert states and windows carry over;
    /// only channels whose settings changed get a new worker; nothing here waits on one.
    pub fn reload(&mut self) -> bool {
        let Some(new_config) = load_for_reload(self.config_path.as_deref(), &self.config) else {
            return false;
        };
        let alerts = self.engine.saved_alerts(&self.registry);
        let rings = self.engine.saved_rings(&self.registry);
        self.engine = Engine::new(&new_config, None);
        self.engine.restore_alerts(alerts);
        if new_config.collect != self.config.collect {
            self.backend = collect::backend(&new_config.collect);
            self.registry = Registry::new();
            self.backend.collect(&mut self.registry, &mut self.sample);
            if let Some(h) = self.history.as_mut() {
                h.forget_series();
            }
        }
        // Windows carry over: a reload does not restart "for 2m" or an average.
        self.engine.warm_rings(&self.registry, &rings);
        self.sinks = make_sinks(&new_config, self.dry_run);
        if let Some(d) = self.dispatcher.as_mut() {
            d.reload(&new_config);
        }
        // The API's address changes only at a restart; its token at once.
        let mut new_config = new_config;
        new_config.api = match (self.config.api.take(), new_config.api.take()) {
            (Some(old), Some(new)) => {
                if new.listen != old.listen {
                    log::warn!("api.listen changes take effect at the next restart");
                }
                Some(crate::config::ApiConfig { listen: old.listen, token: new.token })
            }
            (Some(old), None) => {
                log::warn!("removing \"api\" takes effect at the next restart");
                Some(old)
            }
            (None, Some(_)) => {
                log::warn!("adding \"api\" takes effect at the next restart");
                None
            }
            (None, None) => None,
        };
        #[cfg(feature = "api")]
        if let (Some((api, publisher)), Some(c)) = (&mut self.api, &new_config.api) {
            api.reload(c, crate::api::daily::history_file(&new_config));
            publisher.reconfigure(&new_config.host, &new_config.source, new_config.interval);
        }
        let history_changed =
            new_config.history != self.config.history || new_config.host != self.config.host;
        self.config = new_config;
        crate::timefmt::set_display_zone(self.config.display.zone.clone());
        if !self.dry_run {
            Heartbeat::reconcile(&mut self.heartbeat, &self.config);
            if history_changed {
                // The old recorder writes its slot; its sinks finish on their own threads.
                if let Some(h) = self.history.take() {
                    h.stop_detached(Instant::now() + HISTORY_STOP_GRACE);
                }
                self.history = Recorder::open(&self.config, crate::timefmt::now_unix());
            }
        }
        self.engine.set_silences(self.silences.merged(&self.config, true));
        self.reports.configure(&self.config, crate::timefmt::now_unix());
        self.first_tick = true;
        true
    }

    /// Stops the workers (waiting at most for the longest attempt in progress) and saves.
    pub fn stop(mut self) {
        // What the stop may take: the longest attempt in progress, the history's last slot,
        // the Redis thread's last write.
        let grace = self.dispatcher.as_ref().map_or(Duration::ZERO, Dispatcher::grace)
            + HISTORY_STOP_GRACE
            + if self.store.is_some() { STORE_STOP_GRACE } else { Duration::ZERO }
            + STOP_MARGIN;
        self.sd.stopping(grace);
        let s = self.snapshot();
        let waiting: usize = s.channels.values().map(|c| c.pending).sum();
        log::info!(
            series = s.series, firing = s.firing, pending = s.pending, outbox = waiting,
            persist_failing = s.persist_failing, write_failures = s.write_failures;
            "stopping");
        self.sinks.shutdown();
        if let Some(h) = self.heartbeat.take() {
            h.stop();
        }
        if let Some(h) = self.history.take() {
            h.stop(Instant::now() + HISTORY_STOP_GRACE.min(self.config.delivery.timeout));
        }
        #[cfg(feature = "api")]
        if let Some((api, _)) = self.api.take() {
            api.stop();
        }
        if let Some(mut d) = self.dispatcher.take() {
            self.persisted.alerts = self.engine.saved_alerts(&self.registry);
            let deadline = Instant::now() + d.grace();
            d.shutdown(&mut self.persisted, deadline);
        }
        // After the last save: Redis gets it, or the local file alone has it.
        if let Some(m) = self.store.take() {
            m.stop(Instant::now() + STORE_STOP_GRACE);
        }
    }

    /// The poll loop: ticks aligned to the interval (missed ticks are skipped, never burst),
    /// SIGHUP reloads, SIGTERM/SIGINT stop. An error: the state directory is no longer ours.
    /// `sd` is systemd's notification socket (`SdNotify::default()` for none): told ready
    /// after the first tick, pinged by this loop only.
    pub fn run(mut self, signals: &Signals, sd: SdNotify) -> Result<(), String> {
        self.sd = sd;
        self.sd.starting(self.config.interval, START_MARGIN);
        self.log_watchdog_plan();
        let mut start = Instant::now();
        let mut k: u32 = 0;
        loop {
            k += 1;
            let deadline = start + self.config.interval * k;
            // A wake-up before the deadline that is no signal (a burst of signals leaves
            // bytes in the pipe, or a watchdog ping was due) goes back to waiting: ticks
            // happen on the deadline.
            let wake = loop {
                let until = self.sd.next_ping().map_or(deadline, |p| p.min(deadline));
                let w = signals.wait(until.saturating_duration_since(Instant::now()));
                let now = Instant::now();
                if w != Wake::Timeout || now >= deadline {
                    break w;
                }
                self.sd.ping_if_due(now);
            };
            match wake {
                Wake::Stop => break,
                Wake::Reload => {
                    let interval = self.config.interval;
                    self.sd.reloading();
                    let reloaded = self.reload();
                    if reloaded && self.config.interval != interval {
                        start = Instant::now();
                        k = 0;
                        self.log_watchdog_plan();
                    }
                    k = k.saturating_sub(1);
                    // The next pass waits for tick k + 1 (before READY=1: the first tick).
                    let next_tick = start + self.config.interval * (k + 1);
                    self.sd.reloaded(reloaded, next_tick.saturating_duration_since(Instant::now()));
                    continue;
                }
                Wake::Timeout => {}
            }
            let late = Instant::now().saturating_duration_since(deadline);
            if late > self.config.interval {
                let missed = (late.as_secs_f64() / self.config.interval.as_secs_f64()) as u32;
                log::warn!(missed = missed; "ticks missed (host suspended or overloaded)");
                k += missed;
            }
            log::debug!(late_ms = late.as_secs_f64() * 1000.0; "tick");
            if let Err(e) = self.tick() {
                log::error!("{e}; stopping");
                self.stop();
                return Err(e);
            }
            if self.sd.is_active() {
                let summary = self.summary();
                self.sd.tick_done(summary);
            }
        }
        self.stop();
        Ok(())
    }

    /// The numbers of the status line systemd shows (`systemctl status`); counted without
    /// allocating.
    fn summary(&self) -> Summary {
        let mut s = Summary {
            series: self.registry.iter().filter(|(_, i)| i.live).count(),
            ..Summary::default()
        };
        for a in self.engine.alerts(&self.registry) {
            match a.state.phase {
                crate::alerts::Phase::Firing { .. } => s.firing += 1,
                crate::alerts::Phase::Pending { .. } => s.pending += 1,
                crate::alerts::Phase::Ok => {}
            }
        }
        s
    }

    /// Says at start (and when the interval changes) that the loop wakes between ticks to
    /// ping systemd's watchdog, when its half period is shorter than the interval.
    fn log_watchdog_plan(&self) {
        let Some(every) = self.sd.ping_every() else { return };
        if every < self.config.interval {
            log::info!(
                ping_every = format!("{every:?}"), interval = format!("{:?}", self.config.interval);
                "systemd watchdog: half of WATCHDOG_USEC is shorter than the interval, so the \
                 loop also wakes between ticks to ping it");
        } else {
            log::info!(ping_every = format!("{every:?}"); "systemd watchdog: pinged after every tick");
        }
    }
}

/// The longest a stop waits for the Redis thread to write the last state (a connect and
/// one write, each within its timeout).
const STORE_STOP_GRACE: Duration = Duration::from_secs(3);

/// The longest a stop or reload waits for the history sinks to write what they hold.
const HISTORY_STOP_GRACE: Duration = Duration::from_secs(5);

/// Beyond the first interval, how long systemd waits for the first tick to complete.
const START_MARGIN: Duration = Duration::from_secs(30);

/// Beyond the delivery and history grace, how long systemd gives a stop (the last save).
const STOP_MARGIN: Duration = Duration::from_secs(5);

/// Test builds only: while the file named by `HOSTWATCH_TEST_STALL_FILE` exists, the tick
/// does not return (a loop stuck on a hung disk, for the `/health` and watchdog tests). A
/// stall that starts creates `<file>.stalled` (tests wait for it rather than guess when the
/// tick comes) and removes it when it ends.
#[cfg(debug_assertions)]
fn stall_for_tests() {
    if let Some(path) = std::env::var_os("HOSTWATCH_TEST_STALL_FILE") {
        let path = PathBuf::from(path);
        if !path.exists() {
            return;
        }
        let mut marker = path.clone().into_os_string();
        marker.push(".stalled");
        let _ = std::fs::write(&marker, "");
        while path.exists() {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_file(&marker);
    }
}

/// Loads the config for a reload; a broken one is logged and `None` returned.
fn load_for_reload(path: Option<&Path>, current: &Config) -> Option<Config> {
    let c = match config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors.0 {
                log::error!("config reload failed, keeping the running config: {e}");
            }
            return None;
        }
    };
    if let Err(problems) = crate::notify::preflight::check(&c) {
        for p in problems {
            log::error!("config reload refused, keeping the running config: {p}");
        }
        return None;
    }
    log::info!(config = c.source.as_str(), rules = c.rules.len(); "config reloaded");
    let c = if c.store != current.store {
        log::warn!("state.store changes take effect at the next restart; keeping the running one");
        Config { store: current.store.clone(), ..c }
    } else {
        c
    };
    // The Redis keys are named after the host: a new host would split them (the state key
    // written under the new name, the shared silences matched against it) mid-run.
    let c = if c.store.is_some() && c.host != current.host {
        log::warn!(
            "host changes take effect at the next restart when state.store is set; keeping {}",
            current.host
        );
        Config { host: current.host.clone(), ..c }
    } else {
        c
    };
    if c.state_dir != current.state_dir {
        log::warn!(
            "state_dir changes take effect at the next restart; keeping {}",
            current.state_dir.display()
        );
        return Some(Config { state_dir: current.state_dir.clone(), ..c });
    }
    Some(c)
}

/// The notifiers besides delivery: the log, and for a dry run the payload printer.
fn make_sinks(config: &Config, dry_run: bool) -> Fanout {
    if dry_run {
        Fanout(vec![Box::new(LogNotifier), Box::new(DryRunRenderer::new(config))])
    } else {
        Fanout(vec![Box::new(LogNotifier)])
    }
}

#[cfg(all(test, feature = "redis"))]
mod tests {
    use super::*;

    #[test]
    fn a_reload_keeps_the_host_while_a_store_is_set() {
        let dir = crate::testutil::tempdir("daemon", "reload-host");
        let write = |host: &str| {
            let path = dir.join("c.json");
            let cfg = serde_json::json!({
                "host": host, "state_dir": dir.join("state").display().to_string(),
                "state": {"store": "redis://127.0.0.1:1/0"}, "rules": []
            });
            std::fs::write(&path, cfg.to_string()).unwrap();
            path
        };
        let current = config::load(Some(&write("box-a"))).unwrap();
        let reloaded = load_for_reload(Some(&write("box-b")), &current).unwrap();
        assert_eq!(reloaded.host, "box-a");
    }
}
