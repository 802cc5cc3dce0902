//! The immutable snapshot the API answers from, and the board the loop publishes it on.
//!
//! After each tick the loop calls [`Publisher::publish`]: it refreshes its master [`View`] in
//! place and copies it into the view it published two ticks ago when no request still holds
//! that one (the usual case; else into a new one), then swaps the copy onto the board. So a
//! steady state reuses every buffer: a publication allocates nothing then, silences and
//! channel health included (a test counts). A reload publishes at once
//! ([`Publisher::reconfigure`]). The server thread only ever calls [`Board::current`] and
//! reads the `Arc<View>` it gets: it never touches the engine, the registry or the
//! dispatcher, and the loop never waits on it for longer than swapping a pointer.
//!
//! Not for: rendering (the `status`, `prometheus` and `page` modules) or serving (`server`).

use crate::alerts::Phase;
use crate::config::Severity;
use crate::engine::Engine;
use crate::metrics::Metric;
use crate::notify::delivery::ChannelHealth;
use crate::series::{Registry, SeriesId};
use crate::silence::Silence;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many recent values each series keeps for the status page's charts.
pub(crate) const RECENT: usize = 120;

/// A fixed-size ring of recent values of one series, one slot per tick (NaN: no value that
/// tick), aligned with [`View::recent_ts`].
#[derive(Debug)]
pub(crate) struct Recent {
    values: Box<[f32]>,
    /// Index the next push writes.
    next: usize,
    /// How many slots hold a push.
    len: usize,
}

impl Clone for Recent {
    fn clone(&self) -> Recent {
        Recent { values: self.values.clone(), next: self.next, len: self.len }
    }

    fn clone_from(&mut self, source: &Recent) {
        self.values.copy_from_slice(&source.values);
        self.next = source.next;
        self.len = source.len;
    }
}

impl Recent {
    pub(crate) fn new() -> Recent {
        Recent { values: vec![f32::NAN; RECENT].into_boxed_slice(), next: 0, len: 0 }
    }

    fn push(&mut self, v: f64) {
        self.values[self.next] = v as f32;
        self.next = (self.next + 1) % RECENT;
        self.len = (self.len + 1).min(RECENT);
    }

    /// Oldest first; NaN where the series had no value.
    pub(crate) fn iter(&self) -> impl Iterator<Item = f32> + '_ {
        let start = (self.next + RECENT - self.len) % RECENT;
        (0..self.len).map(move |i| self.values[(start + i) % RECENT])
    }

    /// How many slots hold a push.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// One series: what it measures and its latest value.
#[derive(Debug)]
pub(crate) struct SeriesRow {
    /// The metric.
    pub metric: Metric,
    /// The label value (core, mount, device, interface), if the metric has one. Untrusted
    /// text: a mount point can be `<script>`.
    pub label: Option<Arc<str>>,
    /// `metric{label=value}`.
    pub key: Arc<str>,
    /// False once the thing measured went away.
    pub live: bool,
    /// The latest value; NaN when the last tick had none (a rate's first read).
    pub value: f64,
    /// Recent values for charts.
    pub recent: Recent,
}

impl Clone for SeriesRow {
    fn clone(&self) -> SeriesRow {
        SeriesRow {
            metric: self.metric,
            label: self.label.clone(),
            key: self.key.clone(),
            live: self.live,
            value: self.value,
            recent: self.recent.clone(),
        }
    }

    fn clone_from(&mut self, source: &SeriesRow) {
        self.metric = source.metric;
        self.label.clone_from(&source.label);
        self.key.clone_from(&source.key);
        self.live = source.live;
        self.value = source.value;
        self.recent.clone_from(&source.recent);
    }
}

/// One alert that is pending or firing.
#[derive(Clone, Debug)]
pub(crate) struct AlertRow {
    /// The rule's name.
    pub rule: Arc<str>,
    /// The series' metric.
    pub metric: Metric,
    /// The series' label value, if any (untrusted text).
    pub label: Option<Arc<str>>,
    /// `metric{label=value}`.
    pub series: Arc<str>,
    /// Pending or firing, with its times.
    pub phase: Phase,
    /// The severity it fires with, or would fire with once the window holds (pending).
    pub severity: Severity,
    /// The value the last evaluation saw.
    pub value: f64,
    /// The threshold text it crossed (`> 85`).
    pub threshold: Arc<str>,
    /// The id of the silence holding its notifications back, if one does (`config-N` or
    /// the id the config gives for one of the config file); shared with
    /// [`View::silence_ids`], so a tick copies no string.
    pub silenced_by: Option<Arc<str>>,
    /// While it flaps: the start of its flap period's episode (Unix seconds). A flapping
    /// alert is listed even while its state is ok.
    pub flapping: Option<f64>,
}

impl AlertRow {
    /// When the alert entered its phase (Unix seconds).
    pub(crate) fn since(&self) -> f64 {
        match self.phase {
            Phase::Pending { since } | Phase::Firing { since, .. } => since,
            Phase::Ok => self.flapping.unwrap_or(f64::NAN),
        }
    }

    /// When its last notification was produced (firing only).
    pub(crate) fn last_notified(&self) -> Option<f64> {
        match self.phase {
            Phase::Firing { last_notified, .. } => Some(last_notified),
            _ => None,
        }
    }

    /// True once the window holds.
    pub(crate) fn firing(&self) -> bool {
        matches!(self.phase, Phase::Firing { .. })
    }
}

/// What the API shows: the daemon after its last tick.
#[derive(Debug)]
pub(crate) struct View {
    /// The host name notifications carry.
    pub host: Arc<str>,
    /// hostwatch's version.
    pub version: &'static str,
    /// Where the config came from.
    pub config_source: Arc<str>,
    /// When the daemon started (Unix seconds).
    pub started_unix: f64,
    /// When the daemon started (monotonic).
    pub started: Instant,
    /// The sampling interval.
    pub interval: Duration,
    /// When this view was published (monotonic): the last tick, or the start.
    pub published: Instant,
    /// Until when the loop counts as healthy without another tick: three intervals after
    /// the last tick (or the start), or after a reload that changed the interval, whichever
    /// is later (the tick after a reload comes one new interval after it).
    pub healthy_until: Instant,
    /// Ticks since start.
    pub ticks: u64,
    /// When the last tick's sample was taken (Unix seconds); 0 before the first tick.
    pub last_tick_unix: f64,
    /// How long the last tick took.
    pub tick_duration: Duration,
    /// Every series seen, indexed by `SeriesId` (dense: the registry never reuses ids).
    pub series: Vec<SeriesRow>,
    /// Sample times of the recent slots (oldest first, the same length as every row's
    /// `recent.len()` or longer).
    pub recent_ts: Vec<f64>,
    /// Metrics this platform or backend cannot provide.
    pub unsupported: Vec<Metric>,
    /// Pending and firing alerts, firing first, then by rule and series.
    pub alerts: Vec<AlertRow>,
    /// Silences in force, expired ones left out: first those of the config file, then the
    /// store's (`hostwatch silence`, `POST /silences`).
    pub silences: Vec<Silence>,
    /// How many of `silences`, from the start, come from the config file.
    pub config_silences: usize,
    /// The ids of `silences`, in the same order (what alert rows point at).
    pub silence_ids: Vec<Arc<str>>,
    /// Delivery health per channel.
    pub channels: BTreeMap<String, ChannelHealth>,
    /// True while the state cannot be saved.
    pub persist_failing: bool,
    /// Outbox journal and events log writes that failed since start.
    pub write_failures: u64,
    /// History file and sinks, when history is recorded.
    pub history: Option<crate::history::Health>,
}

/// What a refresh reads: the daemon's parts, borrowed for the moment of publishing.
pub(crate) struct Inputs<'a> {
    /// The engine (alerts, rules, silences).
    pub engine: &'a Engine,
    /// The series.
    pub registry: &'a Registry,
    /// The last sample.
    pub sample: &'a crate::collect::Sample,
    /// Delivery health, when delivery runs (not in a dry run).
    pub channels: Option<BTreeMap<String, ChannelHealth>>,
    /// True while the state cannot be saved.
    pub persist_failing: bool,
    /// Failed journal and events log writes.
    pub write_failures: u64,
    /// How long the tick took.
    pub tick_duration: Duration,
    /// How many of the engine's silences, from the start, come from the config file.
    pub config_silences: usize,
    /// History's counters.
    pub history: Option<crate::history::Health>,
}

impl Clone for View {
    fn clone(&self) -> View {
        let mut v = View::new(&self.host, &self.config_source, self.interval);
        v.clone_from(self);
        v
    }

    /// Copies `source` into `self`, reusing `self`'s buffers (a steady state allocates
    /// nothing here: silences and channels, whose strings a copy would allocate, are copied
    /// only when they changed).
    fn clone_from(&mut self, source: &View) {
        self.host.clone_from(&source.host);
        self.version = source.version;
        self.config_source.clone_from(&source.config_source);
        self.started_unix = source.started_unix;
        self.started = source.started;
        self.interval = source.interval;
        self.published = source.published;
        self.healthy_until = source.healthy_until;
        self.ticks = source.ticks;
        self.last_tick_unix = source.last_tick_unix;
        self.tick_duration = source.tick_duration;
        self.series.clone_from(&source.series);
        self.recent_ts.clone_from(&source.recent_ts);
        self.unsupported.clone_from(&source.unsupported);
        self.alerts.clone_from(&source.alerts);
        if self.silences != source.silences {
            self.silences.clone_from(&source.silences);
        }
        self.config_silences = source.config_silences;
        self.silence_ids.clone_from(&source.silence_ids);
        if self.channels != source.channels {
            self.channels.clone_from(&source.channels);
        }
        self.persist_failing = source.persist_failing;
        self.write_failures = source.write_failures;
        self.history = source.history;
    }
}

impl View {
    /// The view of a daemon that has not ticked yet.
    pub(crate) fn new(host: &str, config_source: &str, interval: Duration) -> View {
        let now = Instant::now();
        View {
            host: host.into(),
            version: env!("CARGO_PKG_VERSION"),
            config_source: config_source.into(),
            started_unix: crate::timefmt::now_unix(),
            started: now,
            interval,
            published: now,
            healthy_until: now + interval * 3,
            ticks: 0,
            last_tick_unix: 0.0,
            tick_duration: Duration::ZERO,
            series: Vec::new(),
            recent_ts: Vec::with_capacity(RECENT),
            unsupported: Vec::new(),
            alerts: Vec::new(),
            silences: Vec::new(),
            config_silences: 0,
            silence_ids: Vec::new(),
            channels: BTreeMap::new(),
            persist_failing: false,
            write_failures: 0,
            history: None,
        }
    }

    /// Seconds since the last tick (since the start before the first), at `now`.
    pub(crate) fn last_tick_age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.published)
    }

    /// True when the loop ticked within three intervals of `now` (or started, or reloaded
    /// with a new interval, that recently).
    pub(crate) fn healthy(&self, now: Instant) -> bool {
        now <= self.healthy_until
    }

    /// Refreshes the view after a tick, reusing its buffers.
    pub(crate) fn refresh(&mut self, i: &Inputs<'_>) {
        let now = i.sample.unix_ts;
        self.published = Instant::now();
        self.healthy_until = self.published + self.interval * 3;
        self.ticks += 1;
        self.last_tick_unix = now;
        self.tick_duration = i.tick_duration;
        // Series rows, indexed by id; a registry rebuilt by a reload restarts them.
        if i.registry.len() < self.series.len()
            || self.series.iter().zip(i.registry.iter()).any(|(r, (_, s))| r.key != s.key)
        {
            self.series.clear();
            self.recent_ts.clear();
        }
        for (id, info) in i.registry.iter().skip(self.series.len()) {
            debug_assert_eq!(id.0 as usize, self.series.len());
            self.series.push(SeriesRow {
                metric: info.metric,
                label: info.label.clone(),
                key: info.key.clone(),
                live: info.live,
                value: f64::NAN,
                recent: Recent::new(),
            });
        }
        for row in &mut self.series {
            row.value = f64::NAN;
        }
        for &(SeriesId(id), v) in &i.sample.points {
            if let Some(row) = self.series.get_mut(id as usize) {
                row.value = v;
            }
        }
        for (row, (_, info)) in self.series.iter_mut().zip(i.registry.iter()) {
            row.live = info.live;
            row.recent.push(row.value);
        }
        if self.recent_ts.len() == RECENT {
            self.recent_ts.remove(0);
        }
        self.recent_ts.push(now);
        self.unsupported.clear();
        self.unsupported.extend_from_slice(&i.sample.unsupported);

        // Silences in force, rebuilt only when that set changed (a steady state copies no
        // string).
        let silences = i.engine.silences();
        let (config, store) = silences.split_at(i.config_silences.min(silences.len()));
        let in_force = |s: &&Silence| s.in_force(now);
        let config_in_force = config.iter().filter(in_force).count();
        if config_in_force != self.config_silences
            || !self.silences.iter().eq(config.iter().chain(store).filter(in_force))
        {
            self.silences.clear();
            self.silences.extend(config.iter().chain(store).filter(in_force).cloned());
            self.config_silences = config_in_force;
            self.silence_ids.clear();
            self.silence_ids.extend(self.silences.iter().map(|s| Arc::from(s.id.as_str())));
        }
        self.alerts.clear();
        for a in i.engine.alerts(i.registry) {
            let flap = a.state.flap.flapping;
            let (severity, threshold) = match a.state.phase {
                Phase::Ok => match flap {
                    Some(f) => (f.severity, threshold_text(a.rule, f.severity)),
                    None => continue,
                },
                Phase::Firing { severity, .. } => (severity, threshold_text(a.rule, severity)),
                Phase::Pending { .. } => {
                    let s = if a.rule.crit.is_some() && a.rule.warn.is_none() {
                        Severity::Critical
                    } else {
                        Severity::Warning
                    };
                    (s, threshold_text(a.rule, s))
                }
            };
            // Every silence that covers now is in force, so in `self.silences`.
            let silenced_by = self
                .silences
                .iter()
                .position(|s| s.covers(&a.rule.name, a.series, now))
                .map(|k| self.silence_ids[k].clone());
            self.alerts.push(AlertRow {
                rule: a.rule.name.clone(),
                metric: a.series.metric,
                label: a.series.label.clone(),
                series: a.series.key.clone(),
                phase: a.state.phase,
                severity,
                value: a.state.value,
                threshold,
                silenced_by,
                flapping: flap.map(|f| f.since),
            });
        }
        // Unstable: (rule, series) is unique, and a stable sort allocates past ~27 alerts.
        self.alerts.sort_unstable_by(|a, b| {
            (!a.firing(), std::cmp::Reverse(a.severity), &a.rule, &a.series).cmp(&(
                !b.firing(),
                std::cmp::Reverse(b.severity),
                &b.rule,
                &b.series,
            ))
        });
        if let Some(c) = &i.channels
            && self.channels != *c
        {
            self.channels.clone_from(c);
        }
        self.persist_failing = i.persist_failing;
        self.write_failures = i.write_failures;
        self.history = i.history;
    }
}

/// The text of the threshold an alert of `severity` crossed (the warn threshold of an
/// escalated warning-only rule).
fn threshold_text(rule: &crate::rules::CompiledRule, severity: Severity) -> Arc<str> {
    match severity {
        Severity::Critical if rule.crit.is_some() => rule.crit_text.clone(),
        _ if rule.warn.is_some() => rule.warn_text.clone(),
        _ => rule.crit_text.clone(),
    }
}

/// Where the loop publishes views and the server picks them up.
#[derive(Debug)]
pub(crate) struct Board {
    slot: Mutex<Arc<View>>,
}

impl Board {
    /// The view to answer from (the lock is held for a pointer copy).
    pub(crate) fn current(&self) -> Arc<View> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts `view` up and returns the one it replaces.
    fn swap(&self, view: Arc<View>) -> Arc<View> {
        std::mem::replace(&mut *self.slot.lock().unwrap_or_else(|p| p.into_inner()), view)
    }
}

/// The loop's side of the board: the master view it refreshes in place each tick, and the
/// view published before the current one, reused as the next copy once no request reads it.
#[derive(Debug)]
pub(crate) struct Publisher {
    board: Arc<Board>,
    master: View,
    spare: Option<Arc<View>>,
}

impl Publisher {
    /// A publisher whose board shows `first` until the first tick.
    pub(crate) fn new(first: View) -> Publisher {
        let board = Arc::new(Board { slot: Mutex::new(Arc::new(first.clone())) });
        Publisher { board, master: first, spare: None }
    }

    /// The board, for the server.
    pub(crate) fn board(&self) -> Arc<Board> {
        Arc::clone(&self.board)
    }

    /// Refreshes the master view after a tick and publishes a copy of it; the copy reuses
    /// the buffers of the view published two ticks ago when no request still holds that one.
    pub(crate) fn publish(&mut self, inputs: &Inputs<'_>) {
        self.master.refresh(inputs);
        self.put_up();
    }

    /// Publishes a copy of the master view, reusing the spare when no request holds it.
    fn put_up(&mut self) {
        let next = match self.spare.take() {
            Some(mut spare) => match Arc::get_mut(&mut spare) {
                Some(v) => {
                    v.clone_from(&self.master);
                    spare
                }
                None => Arc::new(self.master.clone()),
            },
            None => Arc::new(self.master.clone()),
        };
        self.spare = Some(self.board.swap(next));
    }

    /// A reload: the host, config source and interval, published at once. A new interval
    /// restarts the loop's schedule (its next tick comes one new interval from now), so
    /// `/health` allows three new intervals from now; an unchanged one keeps the schedule
    /// and the deadline (a reload is no tick).
    pub(crate) fn reconfigure(&mut self, host: &str, source: &str, interval: Duration) {
        self.master.host = host.into();
        self.master.config_source = source.into();
        if interval != self.master.interval {
            self.master.interval = interval;
            self.master.healthy_until =
                self.master.healthy_until.max(Instant::now() + interval * 3);
        }
        self.put_up();
    }
}

#[cfg(test)]
mod tests;
