//! The SQL that writes the history database: one slot per transaction (series looked up in
//! a cache, samples upserted so a re-sent slot replaces the earlier one), alert events
//! inserted once per `key`, and retention pruning.
//!
//! Not for: opening or checking the file (`schema`), buffering or retrying (`super`).

use crate::event::AlertEvent;
use crate::history::sink::{SlotBatch, SlotRow};
use rusqlite::{Connection, TransactionBehavior, params};
use std::collections::HashMap;
use std::sync::Arc;

/// An open database and the ids of the series it holds.
pub(crate) struct Db {
    pub(crate) conn: Connection,
    /// The host `ids` belong to (a renamed host gets series of its own).
    host: Arc<str>,
    /// Series key → `series.id`, filled only with ids whose transaction committed.
    ids: HashMap<Arc<str>, i64>,
}

impl Db {
    pub(crate) fn new(conn: Connection) -> Db {
        Db { conn, host: Arc::from(""), ids: HashMap::new() }
    }

    /// Writes one slot in one transaction; returns the rows written.
    pub(crate) fn slot(&mut self, b: &SlotBatch) -> rusqlite::Result<usize> {
        if self.host != b.host {
            self.ids.clear();
            self.host = Arc::clone(&b.host);
        }
        let ts = b.start.floor() as i64;
        let mut new_ids = Vec::new();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut series = tx.prepare_cached(
                "INSERT INTO series (host, key, metric, labels_json) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (host, key) DO UPDATE
                 SET metric = excluded.metric, labels_json = excluded.labels_json
                 RETURNING id",
            )?;
            let mut sample = tx.prepare_cached(
                "INSERT INTO samples (series_id, ts, resolution, min, avg, max, last, count)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (series_id, ts) DO UPDATE
                 SET resolution = excluded.resolution, min = excluded.min, avg = excluded.avg,
                     max = excluded.max, last = excluded.last, count = excluded.count",
            )?;
            for row in &b.rows {
                let id = match self.ids.get(&row.key) {
                    Some(&id) => id,
                    None => {
                        let labels = labels_json(row);
                        let id: i64 = series.query_row(
                            params![&*b.host, &*row.key, row.metric.name(), labels],
                            |r| r.get(0),
                        )?;
                        new_ids.push((Arc::clone(&row.key), id));
                        id
                    }
                };
                let s = &row.stats;
                sample.execute(params![
                    id,
                    ts,
                    b.resolution,
                    s.min,
                    s.avg,
                    s.max,
                    s.last,
                    s.count
                ])?;
            }
        }
        tx.commit()?;
        self.ids.extend(new_ids);
        Ok(b.rows.len())
    }

    /// Inserts alert events in one transaction (an event already there, same `key`, is
    /// skipped); returns how many were new.
    pub(crate) fn events<'a>(
        &mut self,
        events: impl Iterator<Item = &'a AlertEvent>,
    ) -> rusqlite::Result<usize> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut new = 0;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO events (ts, host, rule, series, metric, labels_json, event,
                     severity, value, value_text, threshold, since, seq, key, episode_key, description)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )?;
            for e in events {
                let labels = serde_json::to_string(&e.labels).unwrap_or_else(|_| "{}".into());
                new += insert.execute(params![
                    e.ts,
                    e.host,
                    e.rule,
                    e.series,
                    e.metric,
                    labels,
                    e.event.as_str(),
                    e.severity.as_str(),
                    e.value,
                    e.value_text,
                    e.threshold,
                    e.since,
                    e.seq,
                    e.key,
                    e.episode_key,
                    e.description,
                ])?;
            }
        }
        tx.commit()?;
        Ok(new)
    }

    /// Deletes samples and events older than `cutoff` (Unix seconds) and the series left
    /// without samples; returns the rows deleted.
    pub(crate) fn prune(&mut self, cutoff: f64) -> rusqlite::Result<usize> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut n =
            tx.execute("DELETE FROM samples WHERE ts < ?1", params![cutoff.floor() as i64])?;
        n += tx.execute("DELETE FROM events WHERE ts < ?1", params![cutoff])?;
        n += tx.execute(
            "DELETE FROM series WHERE NOT EXISTS
                 (SELECT 1 FROM samples WHERE samples.series_id = series.id)",
            [],
        )?;
        tx.commit()?;
        // Deleted series must not be found in the cache.
        self.ids.clear();
        Ok(n)
    }
}

/// `{"mount":"/"}`, `{}` for a series without a label.
fn labels_json(row: &SlotRow) -> String {
    let mut map = serde_json::Map::new();
    if let Some((k, v)) = &row.label {
        map.insert(k.as_str().to_string(), serde_json::Value::String(v.to_string()));
    }
    serde_json::Value::Object(map).to_string()
}
