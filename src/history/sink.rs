//! The sinks that take history off the host's disk: SQLite and InfluxDB. Each runs on a
//! thread of its own, fed per slot through a bounded queue the loop only `try_send`s to, so a
//! slow database never delays a tick. A sink keeps what it could not write (bounded, its own
//! business) and tries again from [`Sink::poll`].
//!
//! Not for: the built-in file (`history::writer`), which the loop writes itself.

use crate::event::AlertEvent;
use crate::metrics::{LabelKey, Metric};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// Aggregates of one series over one slot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// Smallest value.
    pub min: f64,
    /// Mean of the values.
    pub avg: f64,
    /// Largest value.
    pub max: f64,
    /// The slot's last value.
    pub last: f64,
    /// Values aggregated.
    pub count: u32,
}

/// One series' row of a slot.
#[derive(Clone, Debug, PartialEq)]
pub struct SlotRow {
    /// The series key (`disk.used_percent{mount=/}`).
    pub key: Arc<str>,
    /// Its metric.
    pub metric: Metric,
    /// Its label, if the metric has one.
    pub label: Option<(LabelKey, Arc<str>)>,
    /// The slot's aggregates.
    pub stats: Stats,
}

/// Every series' aggregates over one slot. A slot may be sent twice (a partial slot at a
/// stop or by `once`, then the whole slot): sinks write it as an upsert keyed by series and
/// slot start, so the later, fuller one wins.
#[derive(Clone, Debug, PartialEq)]
pub struct SlotBatch {
    /// The host name.
    pub host: Arc<str>,
    /// The slot's start (Unix seconds, a multiple of the resolution).
    pub start: f64,
    /// Seconds per slot.
    pub resolution: u32,
    /// One row per series that had a value in the slot.
    pub rows: Vec<SlotRow>,
}

/// Counters a sink keeps for logs and `/metrics`.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Points (series × slot) or events written.
    pub written: AtomicU64,
    /// Points or events dropped (the sink's buffer or the loop's queue was full).
    pub dropped: AtomicU64,
    /// Writes that failed (each retried later while the buffer holds them).
    pub failures: AtomicU64,
}

/// One history sink; lives on its own thread.
pub trait Sink: Send {
    /// Takes one slot. An `Err` is logged (rate-limited) by the thread; the sink has kept
    /// whatever it will retry.
    fn slot(&mut self, batch: &SlotBatch) -> Result<(), String>;

    /// Takes alert events (notifications as they were decided). Default: ignored.
    fn events(&mut self, _events: &[AlertEvent]) -> Result<(), String> {
        Ok(())
    }

    /// Called every few seconds while idle: retry what is buffered.
    fn poll(&mut self) -> Result<(), String> {
        Ok(())
    }

    /// The process stops: write what can be written before `deadline`.
    fn close(&mut self, _deadline: Instant) {}
}

enum Msg {
    Slot(Arc<SlotBatch>),
    Events(Arc<Vec<AlertEvent>>),
    Stop(Instant),
}

/// The loop's handle on one sink thread.
pub(crate) struct SinkThread {
    name: &'static str,
    tx: SyncSender<Msg>,
    done: Receiver<()>,
    stats: Arc<SinkStats>,
}

/// Messages the loop may queue for a sink before it drops (and counts) more.
const QUEUE: usize = 64;
/// How often an idle sink is polled.
const POLL_EVERY: Duration = Duration::from_secs(5);

impl SinkThread {
    /// Starts the thread `hostwatch-<name>`; `make` builds the sink on it (so a slow open
    /// never runs on the loop).
    pub fn start(
        name: &'static str,
        stats: Arc<SinkStats>,
        make: Box<dyn FnOnce() -> Box<dyn Sink> + Send>,
    ) -> Option<SinkThread> {
        let (tx, rx) = mpsc::sync_channel::<Msg>(QUEUE);
        let (done_tx, done) = mpsc::channel();
        let spawned =
            std::thread::Builder::new().name(format!("hostwatch-{name}")).spawn(move || {
                let mut sink = make();
                let mut errors = ErrorLog::new(name);
                loop {
                    let result = match rx.recv_timeout(POLL_EVERY) {
                        Ok(Msg::Slot(b)) => sink.slot(&b),
                        // Events say nothing of the database's health: only a failure
                        // counts, never a recovery.
                        Ok(Msg::Events(e)) => match sink.events(&e) {
                            Ok(()) => continue,
                            Err(e) => Err(e),
                        },
                        Ok(Msg::Stop(deadline)) => {
                            sink.close(deadline);
                            break;
                        }
                        Err(RecvTimeoutError::Timeout) => sink.poll(),
                        Err(RecvTimeoutError::Disconnected) => break,
                    };
                    match result {
                        Ok(()) => errors.ok(),
                        Err(e) => errors.failed(&e),
                    }
                }
                let _ = done_tx.send(());
            });
        match spawned {
            Ok(_) => Some(SinkThread { name, tx, done, stats }),
            Err(e) => {
                log::error!("history {name}: cannot start its thread: {e}");
                None
            }
        }
    }

    /// Queues a slot; a full queue drops it (counted, logged by the caller's counters).
    pub fn slot(&self, batch: &Arc<SlotBatch>) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(Msg::Slot(Arc::clone(batch))) {
            self.stats.dropped.fetch_add(batch.rows.len() as u64, Ordering::Relaxed);
            log::warn!(sink = self.name; "history {}: queue full, a slot was dropped", self.name);
        }
    }

    /// Queues alert events.
    pub fn events(&self, events: &Arc<Vec<AlertEvent>>) {
        if let Err(TrySendError::Full(_)) = self.tx.try_send(Msg::Events(Arc::clone(events))) {
            self.stats.dropped.fetch_add(events.len() as u64, Ordering::Relaxed);
            log::warn!(sink = self.name; "history {}: queue full, alert events were dropped", self.name);
        }
    }

    /// Asks the sink to write what it holds and stop by `deadline`, without waiting for it
    /// (a reload: the loop goes on while the old sink finishes).
    pub fn stop_detached(self, deadline: Instant) {
        if self.tx.try_send(Msg::Stop(deadline)).is_err() {
            log::warn!(
                "history {}: busy at the reload; it stops once its queue is done",
                self.name
            );
        }
    }

    /// Asks the sink to write what it holds and stop, waiting until `deadline` at most.
    pub fn stop(self, deadline: Instant) {
        // A full queue: wait for room until the deadline (the stop must get through).
        let mut msg = Msg::Stop(deadline);
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return,
                Err(TrySendError::Full(m)) => {
                    if Instant::now() >= deadline {
                        log::warn!(
                            "history {}: still busy at stop; unwritten points are lost",
                            self.name
                        );
                        return;
                    }
                    msg = m;
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        let wait = deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(100);
        if self.done.recv_timeout(wait).is_err() {
            log::warn!("history {}: did not finish before the stop deadline", self.name);
        }
    }

    /// The sink's counters.
    pub fn stats(&self) -> &Arc<SinkStats> {
        &self.stats
    }

    /// The sink's name (`sqlite`, `influxdb`).
    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// Logs a sink's failures at most once a minute, and its recovery once.
struct ErrorLog {
    name: &'static str,
    failing: bool,
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    fn new(name: &'static str) -> ErrorLog {
        ErrorLog { name, failing: false, last: None, suppressed: 0 }
    }

    fn failed(&mut self, e: &str) {
        self.failing = true;
        if self.last.is_some_and(|t| t.elapsed() < Duration::from_secs(60)) {
            self.suppressed += 1;
            return;
        }
        self.last = Some(Instant::now());
        let more = std::mem::take(&mut self.suppressed);
        log::error!(sink = self.name, suppressed = more; "history {}: {e}", self.name);
    }

    fn ok(&mut self) {
        if self.failing {
            self.failing = false;
            self.last = None;
            log::info!(sink = self.name; "history {}: writing again", self.name);
        }
    }
}
