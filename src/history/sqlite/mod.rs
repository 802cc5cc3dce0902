//! The SQLite history sink: per-slot aggregates and alert events in a documented schema
//! (`schema`), one transaction per slot (`write`), retention pruning at open and at most once
//! an hour. Runs on its own thread (`sink::SinkThread`); the database is opened there, lazily.
//!
//! Nothing is lost within bounds: what cannot be written (directory missing, disk full,
//! read-only, locked beyond the busy timeout) stays in a bounded queue and is retried from
//! `poll`; beyond the bound the oldest is dropped and counted. A file that is not a SQLite
//! database, or is corrupt, is renamed to `<path>.corrupt-<unix ts>` and a new one created.
//!
//! Not for: the built-in history file, or reading the database (any `sqlite3` does that).

mod schema;
mod write;

#[cfg(test)]
mod tests;

use crate::config::SqliteConfig;
use crate::event::AlertEvent;
use crate::history::sink::{Sink, SinkStats, SlotBatch};
use schema::OpenError;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use write::Db;

/// Slots kept while the database cannot be written (a day of 1-minute slots).
const MAX_SLOTS: usize = 1440;
/// Alert events kept while the database cannot be written.
const MAX_EVENTS: usize = 100_000;
/// How long a write waits for a lock another process holds (a `sqlite3` reader in WAL mode
/// never holds one; a writer or a checkpoint may).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Pruning runs at open and then at most this often.
const PRUNE_EVERY: f64 = 3600.0;

/// Wall-clock seconds (injectable for tests).
type Clock = Box<dyn Fn() -> f64 + Send>;

/// The SQLite sink; see the module docs.
pub(crate) struct SqliteSink {
    cfg: SqliteConfig,
    stats: Arc<SinkStats>,
    db: Option<Db>,
    slots: VecDeque<SlotBatch>,
    events: VecDeque<AlertEvent>,
    max_slots: usize,
    max_events: usize,
    busy: Duration,
    clock: Clock,
    next_prune: f64,
    /// A write said the file is damaged: the next open checks it whatever its size.
    suspect: bool,
    /// Files up to this size are checked at every open.
    check_up_to: u64,
}

impl SqliteSink {
    /// A sink for `cfg`; opens nothing yet.
    pub(crate) fn new(cfg: SqliteConfig, stats: Arc<SinkStats>) -> SqliteSink {
        SqliteSink {
            cfg,
            stats,
            db: None,
            slots: VecDeque::new(),
            events: VecDeque::new(),
            max_slots: MAX_SLOTS,
            max_events: MAX_EVENTS,
            busy: BUSY_TIMEOUT,
            clock: Box::new(crate::timefmt::now_unix),
            next_prune: 0.0,
            suspect: false,
            check_up_to: schema::CHECK_UP_TO,
        }
    }

    /// Opens the database if it is not open; sets an unusable file aside.
    fn db(&mut self) -> Result<&mut Db, String> {
        if self.db.is_none() {
            let path = &self.cfg.path;
            let check_up_to = if self.suspect { u64::MAX } else { self.check_up_to };
            let conn = match schema::open(path, self.busy, check_up_to) {
                Ok(c) => c,
                Err(OpenError::Failed(m)) => return Err(m),
                Err(OpenError::Unusable(why)) => {
                    let aside = schema::set_aside(path, (self.clock)())
                        .map_err(|e| format!("{why}; {e}"))?;
                    log::error!(
                        "history sqlite: {why}; moved it to {} and started a new database at {}",
                        aside.display(),
                        path.display()
                    );
                    match schema::open(path, self.busy, u64::MAX) {
                        Ok(c) => c,
                        Err(OpenError::Failed(m) | OpenError::Unusable(m)) => return Err(m),
                    }
                }
            };
            self.db = Some(Db::new(conn));
            self.next_prune = 0.0;
            self.suspect = false;
        }
        Ok(self.db.as_mut().expect("opened above"))
    }

    /// Writes what is queued, oldest first; stops at the first failure (kept for later).
    fn flush(&mut self) -> Result<(), String> {
        if self.slots.is_empty() && self.events.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.db() {
            self.stats.failures.fetch_add(1, Ordering::Relaxed);
            return Err(self.kept(&e));
        }
        while let Some(batch) = self.slots.front() {
            let db = self.db.as_mut().expect("opened");
            match db.slot(batch) {
                Ok(n) => {
                    self.stats.written.fetch_add(n as u64, Ordering::Relaxed);
                    self.slots.pop_front();
                }
                Err(e) => return Err(self.write_failed("write a slot", &e)),
            }
        }
        if !self.events.is_empty() {
            let db = self.db.as_mut().expect("opened");
            match db.events(self.events.iter()) {
                Ok(_) => {
                    self.stats.written.fetch_add(self.events.len() as u64, Ordering::Relaxed);
                    self.events.clear();
                }
                Err(e) => return Err(self.write_failed("write alert events", &e)),
            }
        }
        self.prune_if_due();
        Ok(())
    }

    /// Counts a failed write; a damaged file is closed so the next try checks it again.
    fn write_failed(&mut self, what: &str, e: &rusqlite::Error) -> String {
        self.stats.failures.fetch_add(1, Ordering::Relaxed);
        if schema::is_corrupt(e) {
            self.db = None;
            self.suspect = true;
        }
        let m = format!("{}: cannot {what}: {}", self.cfg.path.display(), schema::describe(e));
        self.kept(&m)
    }

    /// The error with what is kept for the next try.
    fn kept(&self, e: &str) -> String {
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        format!(
            "{e} (kept to retry: {}, {})",
            plural(self.slots.len(), "slot", "slots"),
            plural(self.events.len(), "alert event", "alert events")
        )
    }

    /// Deletes rows older than the retention: after opening, then at most once an hour.
    fn prune_if_due(&mut self) {
        let now = (self.clock)();
        if now < self.next_prune {
            return;
        }
        let cutoff = now - self.cfg.retention.as_secs_f64();
        let Some(db) = self.db.as_mut() else { return };
        match db.prune(cutoff) {
            Ok(n) => {
                self.next_prune = now + PRUNE_EVERY;
                if n > 0 {
                    log::debug!("history sqlite: pruned {n} rows older than the retention");
                }
            }
            // Tried again at the next write; the data itself is safe.
            Err(e) => log::warn!(
                "history sqlite: {}: cannot prune old rows: {}",
                self.cfg.path.display(),
                schema::describe(&e)
            ),
        }
    }

    /// Queues a slot, dropping (and counting) the oldest beyond the bound.
    fn keep_slot(&mut self, batch: &SlotBatch) {
        while self.slots.len() >= self.max_slots {
            if let Some(old) = self.slots.pop_front() {
                self.stats.dropped.fetch_add(old.rows.len() as u64, Ordering::Relaxed);
            }
        }
        self.slots.push_back(batch.clone());
    }
}

impl Sink for SqliteSink {
    fn slot(&mut self, batch: &SlotBatch) -> Result<(), String> {
        self.keep_slot(batch);
        self.flush()
    }

    fn events(&mut self, events: &[AlertEvent]) -> Result<(), String> {
        // Test notifications are not the host's history.
        self.events.extend(events.iter().filter(|e| !e.test).cloned());
        let over = self.events.len().saturating_sub(self.max_events);
        if over > 0 {
            self.events.drain(..over);
            self.stats.dropped.fetch_add(over as u64, Ordering::Relaxed);
        }
        self.flush()
    }

    fn poll(&mut self) -> Result<(), String> {
        if self.slots.is_empty() && self.events.is_empty() {
            // Keep pruning an idle database.
            if self.db.is_some() {
                self.prune_if_due();
            }
            return Ok(());
        }
        self.flush()
    }

    fn close(&mut self, deadline: Instant) {
        // Wait for a lock no longer than the stop allows.
        self.busy = self.busy.min(deadline.saturating_duration_since(Instant::now()));
        if let Some(db) = &self.db {
            let _ = db.conn.busy_timeout(self.busy);
        }
        if let Err(e) = self.flush() {
            log::warn!("history sqlite: at stop: {e}; those are lost");
        }
        self.db = None;
    }
}
