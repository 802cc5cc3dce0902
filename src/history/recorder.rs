//! The loop's side of history: per sample, the values go into the current slot's aggregates
//! and a raw row of the file; when the slot ends, its row is written and the slot's
//! aggregates go to the sinks. Columns of the file are assigned to series as they appear and
//! kept across restarts (by series key); a column whose series has been gone for longer than
//! the retention is given to the next new series. A full table is a warning, never an error.
//! A column is given away only when no live series holds it. A step of the clock back by a
//! few minutes stays in the current slot (the slot it crossed keeps its row).
//!
//! A steady tick allocates nothing here: the raw row and the aggregates are reused; only a
//! change of the series set or a slot handed to a sink allocates.
//!
//! Not for: the file layout (`format`), sinks' own work (`sink`), rendering.

use super::acc::Acc;
use super::format::{self, Geometry};
use super::sink::{SinkThread, SlotBatch, SlotRow};
use super::writer::Writer;
use crate::collect::Sample;
use crate::config::Config;
use crate::event::Notification;
use crate::metrics::{LabelKey, Metric};
use crate::series::{Registry, parse_series_key};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// History's health for `/metrics`.
#[cfg(feature = "api")]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Health {
    /// True when the history file is written.
    pub file: bool,
    /// Writes to the history file that failed since start.
    pub write_failures: u64,
    /// Per sink (at most SQLite and InfluxDB): its counters.
    pub sinks: [Option<SinkCounters>; 2],
}

/// One sink's counters.
#[cfg(feature = "api")]
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct SinkCounters {
    /// `sqlite` or `influxdb`.
    pub name: &'static str,
    /// Points and events written.
    pub written: u64,
    /// Points and events dropped (buffer or queue full, refused by the server).
    pub dropped: u64,
    /// Writes that failed (and were kept to retry).
    pub failures: u64,
}

/// No column (the series is not recorded).
const NONE: u32 = u32::MAX;
/// No column, and the reason was logged (table full, key too long).
const REFUSED: u32 = u32::MAX - 1;

/// A step of the clock back by at most this long (or one slot, if longer) is added to the
/// current slot; a longer one starts the earlier slot over.
const STEP_BACK_ABSORBED_S: u64 = 300;

/// One column: the series it holds.
struct Column {
    key: Arc<str>,
    metric: Option<Metric>,
    label: Option<(LabelKey, Arc<str>)>,
    last_seen: f64,
    live: bool,
}

/// Records samples into the history file and the sinks.
pub(crate) struct Recorder {
    host: Arc<str>,
    resolution: u32,
    retention: f64,
    writer: Option<Writer>,
    sinks: Vec<SinkThread>,
    /// Columns; with a file its table's size, else grown as series come.
    columns: Vec<Option<Column>>,
    by_key: HashMap<Arc<str>, u32>,
    /// SeriesId → column.
    by_series: Vec<u32>,
    seen_changes: Option<u64>,
    /// Series refused a column (table full); tried again at each slot's end.
    refused: usize,
    slot: Option<u64>,
    accs: Vec<Acc>,
    raw: Vec<f32>,
}

impl Recorder {
    /// Opens what the config asks for; `None` when history is off. A history file that
    /// cannot be created is logged and left out (the sinks still run).
    pub fn open(config: &Config, now: f64) -> Option<Recorder> {
        let h = &config.history;
        if !h.any() {
            return None;
        }
        let resolution = h.resolution().as_secs().max(1) as u32;
        let mut writer = None;
        let mut recovered = None;
        let mut retention = h.resolution().as_secs_f64();
        if let Some(f) = &h.file {
            retention = f.retention.as_secs_f64();
            let g = Geometry::new(f, config.interval);
            match Writer::open(&config.state_dir, g, now) {
                Ok((w, r)) => {
                    writer = Some(w);
                    recovered = Some(r);
                }
                Err(e) => log::error!("history: {e}; no history file this run"),
            }
        }
        let mut r = Recorder {
            host: Arc::from(config.host.as_str()),
            resolution: writer.as_ref().map_or(resolution, |w| w.geometry().resolution),
            retention,
            sinks: super::start_sinks(config),
            columns: Vec::new(),
            by_key: HashMap::new(),
            by_series: Vec::new(),
            seen_changes: None,
            refused: 0,
            slot: None,
            accs: Vec::new(),
            raw: Vec::new(),
            writer,
        };
        if let Some(w) = &r.writer {
            let n = w.geometry().columns as usize;
            r.columns = (0..n).map(|_| None).collect();
            r.accs = vec![Acc::default(); n];
            r.raw = vec![f32::NAN; n];
        }
        if let Some(rec) = recovered {
            for (c, e) in rec.entries.into_iter().enumerate() {
                let Some(e) = e else { continue };
                let key: Arc<str> = Arc::from(e.key.as_str());
                let (metric, label) = describe(&key);
                r.by_key.insert(Arc::clone(&key), c as u32);
                r.columns[c] = Some(Column {
                    key,
                    metric,
                    label,
                    last_seen: rec.last_seen.get(c).copied().unwrap_or(0.0),
                    live: false,
                });
            }
            if let Some((slot, accs)) = rec.partial {
                r.slot = Some(slot);
                r.accs = accs;
            }
        }
        Some(r)
    }

    /// Takes one sample.
    pub fn record(&mut self, registry: &Registry, sample: &Sample) {
        let ts = sample.unix_ts;
        if !(ts.is_finite() && ts > 0.0) {
            return;
        }
        if self.seen_changes != Some(registry.changes()) {
            self.rebind(registry, ts);
            self.seen_changes = Some(registry.changes());
        }
        let mut slot = (ts / self.resolution as f64).floor() as u64;
        // A small step of the clock back (NTP) stays in the current slot: starting an
        // earlier slot over would write its row again with only the samples after the step.
        if let Some(cur) = self.slot
            && slot < cur
            && (cur - slot).saturating_mul(self.resolution as u64)
                <= STEP_BACK_ABSORBED_S.max(self.resolution as u64)
        {
            slot = cur;
        }
        if self.slot != Some(slot) {
            if let Some(prev) = self.slot {
                self.close_slot(prev);
            }
            if self.refused > 0 {
                self.rebind(registry, ts);
            }
            self.accs.iter_mut().for_each(Acc::clear);
            self.slot = Some(slot);
        }
        self.raw.iter_mut().for_each(|v| *v = f32::NAN);
        for &(id, v) in &sample.points {
            let c = self.by_series.get(id.0 as usize).copied().unwrap_or(NONE);
            if c >= REFUSED || !v.is_finite() {
                continue;
            }
            let c = c as usize;
            self.accs[c].add_at(v, ts);
            if let Some(slot) = self.raw.get_mut(c) {
                *slot = v as f32;
            }
            if let Some(col) = self.columns[c].as_mut() {
                col.last_seen = ts;
            }
        }
        if let Some(w) = self.writer.as_mut() {
            w.write_raw(ts, &self.raw);
        }
    }

    /// The registry was replaced (the collector changed): series ids start over.
    pub fn forget_series(&mut self) {
        self.by_series.clear();
        self.seen_changes = None;
    }

    /// Hands the notifications of a tick to the sinks that keep events.
    pub fn events(&mut self, notifications: &[Notification]) {
        if notifications.is_empty() || self.sinks.is_empty() {
            return;
        }
        let events: Arc<Vec<_>> = Arc::new(notifications.iter().map(|n| n.to_event()).collect());
        for s in &self.sinks {
            s.events(&events);
        }
    }

    /// Writes the current slot as it is now (`once`, and before a stop); the slot goes on
    /// aggregating, and is written again when it ends.
    pub fn flush(&mut self) {
        if let Some(slot) = self.slot {
            self.close_slot(slot);
        }
    }

    /// Flushes, then stops the sinks, waiting until `deadline` at most.
    pub fn stop(mut self, deadline: Instant) {
        for s in self.finish() {
            s.stop(deadline);
        }
    }

    /// Flushes, then asks the sinks to stop by `deadline` without waiting for them (a
    /// reload: the loop never waits).
    pub fn stop_detached(mut self, deadline: Instant) {
        for s in self.finish() {
            s.stop_detached(deadline);
        }
    }

    fn finish(&mut self) -> Vec<SinkThread> {
        self.flush();
        self.slot = None;
        if let Some(n) = self.writer.as_ref().map(Writer::failures).filter(|n| *n > 0) {
            log::warn!(failures = n; "history: {n} writes to the history file failed during this run");
        }
        std::mem::take(&mut self.sinks)
    }

    /// The counters `/metrics` shows (copied, allocation-free).
    #[cfg(feature = "api")]
    pub fn health(&self) -> Health {
        let mut h = Health {
            file: self.writer.is_some(),
            write_failures: self.writer.as_ref().map_or(0, Writer::failures),
            sinks: [None; 2],
        };
        for (slot, s) in h.sinks.iter_mut().zip(&self.sinks) {
            let st = s.stats();
            *slot = Some(SinkCounters {
                name: s.name(),
                written: st.written.load(std::sync::atomic::Ordering::Relaxed),
                dropped: st.dropped.load(std::sync::atomic::Ordering::Relaxed),
                failures: st.failures.load(std::sync::atomic::Ordering::Relaxed),
            });
        }
        h
    }

    fn close_slot(&mut self, slot: u64) {
        if let Some(w) = self.writer.as_mut() {
            w.write_slot(slot, &self.accs);
        }
        if self.sinks.is_empty() {
            return;
        }
        let rows: Vec<SlotRow> = self
            .accs
            .iter()
            .zip(&self.columns)
            .filter_map(|(acc, col)| {
                let col = col.as_ref()?;
                Some(SlotRow {
                    key: Arc::clone(&col.key),
                    metric: col.metric?,
                    label: col.label.clone(),
                    stats: acc.stats()?,
                })
            })
            .collect();
        if rows.is_empty() {
            return;
        }
        let batch = Arc::new(SlotBatch {
            host: Arc::clone(&self.host),
            start: slot as f64 * self.resolution as f64,
            resolution: self.resolution,
            rows,
        });
        for s in &self.sinks {
            s.slot(&batch);
        }
    }

    /// Gives every live series a column (keeping the one the file already names it by).
    /// Two passes: every column a live series holds is marked live first, so a column is
    /// never given away while its series is still there (a clock jump makes every
    /// `last_seen` look old).
    fn rebind(&mut self, registry: &Registry, now: f64) {
        for col in self.columns.iter_mut().flatten() {
            col.live = false;
        }
        self.refused = 0;
        self.by_series.resize(registry.len(), NONE);
        for (id, info) in registry.iter() {
            let i = id.0 as usize;
            if !info.live {
                if self.by_series[i] < REFUSED {
                    self.by_series[i] = NONE;
                }
                continue;
            }
            if self.by_series[i] >= REFUSED
                && let Some(&c) = self.by_key.get(&info.key)
            {
                self.by_series[i] = c;
            }
            if self.by_series[i] < REFUSED
                && let Some(col) = self.columns[self.by_series[i] as usize].as_mut()
            {
                col.live = true;
            }
        }
        for (id, info) in registry.iter() {
            let i = id.0 as usize;
            if !info.live || self.by_series[i] < REFUSED {
                continue;
            }
            let quiet = self.by_series[i] == REFUSED;
            match self.allocate(&info.key, now, quiet) {
                Some(c) => self.by_series[i] = c,
                None => {
                    self.by_series[i] = REFUSED;
                    self.refused += 1;
                }
            }
        }
    }

    /// A column for a new series: a free one, or one whose series has been gone for longer
    /// than the retention. `None` (logged unless `quiet`) when the table is full.
    fn allocate(&mut self, key: &Arc<str>, now: f64, quiet: bool) -> Option<u32> {
        if self.writer.is_some() && key.len() > format::MAX_KEY {
            if quiet {
                return None;
            }
            log::warn!(series = &**key; "history: the series key is longer than {} bytes; not recorded", format::MAX_KEY);
            return None;
        }
        let c = if self.writer.is_none() {
            self.columns.push(None);
            self.accs.push(Acc::default());
            self.raw.push(f32::NAN);
            self.columns.len() - 1
        } else {
            let free = self.columns.iter().position(Option::is_none);
            let expired = || {
                self.columns.iter().position(|c| {
                    c.as_ref().is_some_and(|c| !c.live && now - c.last_seen > self.retention)
                })
            };
            match free.or_else(expired) {
                Some(c) => c,
                None if quiet => return None,
                None => {
                    log::warn!(
                        series = &**key, capacity = self.columns.len();
                        "history: the series table is full ({} series); {key} is not recorded \
                         (raise history.max_series; the file is then started anew)",
                        self.columns.len()
                    );
                    return None;
                }
            }
        };
        if let Some(old) = self.columns[c].take() {
            self.by_key.remove(&old.key);
            // No series id may still write into the column it had.
            for b in self.by_series.iter_mut().filter(|b| **b == c as u32) {
                *b = NONE;
            }
        }
        let (metric, label) = describe(key);
        self.columns[c] =
            Some(Column { key: Arc::clone(key), metric, label, last_seen: now, live: true });
        self.by_key.insert(Arc::clone(key), c as u32);
        self.accs[c].clear();
        if let Some(w) = self.writer.as_mut() {
            w.write_entry(c as u32, key, now);
        }
        Some(c as u32)
    }
}

impl Drop for Recorder {
    /// A recorder dropped without [`Recorder::stop`] (an early return) still writes its slot.
    fn drop(&mut self) {
        self.flush();
    }
}

/// The metric and label of a series key.
fn describe(key: &str) -> (Option<Metric>, Option<(LabelKey, Arc<str>)>) {
    match parse_series_key(key) {
        Ok((metric, label)) => {
            let label = metric.label_key().zip(label).map(|(k, v)| (k, Arc::from(v)));
            (Some(metric), label)
        }
        Err(_) => (None, None),
    }
}
