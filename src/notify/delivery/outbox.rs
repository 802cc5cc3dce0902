//! The outbox: every notification for every channel, kept until its receiver accepted it,
//! and the commit that persists it.
//!
//! The state file (`state.json`, written atomically with the alert states) holds the outbox
//! as of its last save; the journal (`outbox.journal`) records attempts and removals since.
//! [`Outbox::commit`] writes the state file under the journal's lock and empties the journal,
//! so the two never disagree. It is called by `run` (every tick that changed something) and
//! by `once` alike. A failed commit never holds delivery back: the items are handed to their
//! workers from memory and the commit is retried at the next tick.
//!
//! Not for: routing (the dispatcher decides which channels get an event) or sending.

use super::clock::Clock;
use super::journal::{self, Journal, Mark};
use crate::event::AlertEvent;
use crate::state::{self, State};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Attempts a notification may be in flight for while the process dies before it is set
/// aside: a notification that crashes its channel (a plugin that segfaults) must not crash
/// hostwatch at every start.
pub const MAX_CRASHED_ATTEMPTS: u32 = 3;

/// One notification for one channel, kept until the channel's receiver accepted it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboxItem {
    /// Unique within this state directory.
    pub id: u64,
    /// The channel's name.
    pub channel: String,
    /// What to send.
    pub event: AlertEvent,
    /// When it entered the outbox (Unix seconds; for people, never for deadlines).
    pub created: f64,
    /// Seconds it waited in the outbox while hostwatch ran, on the monotonic clock:
    /// `give_up_after` counts this, so a wall clock that jumps cannot age it.
    #[serde(default)]
    pub age_s: f64,
    /// Attempts in a row that were in flight when the process died.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub crashed: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl OutboxItem {
    /// A new item, never attempted.
    pub(crate) fn new(id: u64, channel: &str, event: AlertEvent, created: f64) -> OutboxItem {
        OutboxItem { id, channel: channel.to_string(), event, created, age_s: 0.0, crashed: 0 }
    }

    /// Makes a value read from a file safe to use: ages are finite and not negative.
    fn sanitize(&mut self) {
        if !self.age_s.is_finite() || self.age_s < 0.0 {
            self.age_s = 0.0;
        }
        if !self.created.is_finite() {
            self.created = 0.0;
        }
    }
}

/// The persisted part of delivery.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeliveryState {
    /// Items not yet accepted, oldest first.
    #[serde(default)]
    pub outbox: Vec<OutboxItem>,
    /// The next item id.
    #[serde(default)]
    pub next_id: u64,
    /// Per episode key, the channels that were told about it (its resolution goes there).
    #[serde(default)]
    pub notified: BTreeMap<String, Vec<String>>,
    /// Rate-limited channels' open periods and the episodes whose firing they held back.
    #[serde(default, skip_serializing_if = "RateState::is_empty")]
    pub rate: RateState,
}

/// The persisted part of rate limiting (`super::rate`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RateState {
    /// Per limited channel, its open period.
    #[serde(default)]
    pub periods: BTreeMap<String, super::rate::RatePeriod>,
    /// Per episode key, the channels that held its firing back (its resolution is held
    /// there too).
    #[serde(default)]
    pub held: BTreeMap<String, Vec<String>>,
}

impl RateState {
    fn is_empty(&self) -> bool {
        self.periods.is_empty() && self.held.is_empty()
    }
}

/// An item in memory.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) item: OutboxItem,
    /// When it entered the outbox, on the monotonic clock (negative for adopted items).
    pub(crate) born: f64,
    /// Handed to its channel's worker (not to be handed again until returned).
    pub(crate) handed: bool,
    /// In the state file as last written.
    pub(crate) saved: bool,
}

/// While items wait, the state file is rewritten at least this often (monotonic seconds), so
/// their ages survive a crash and `give_up_after` is reached even on a host that restarts
/// hostwatch often.
const AGE_COMMIT_EVERY: f64 = 60.0;

/// Item ids stay below this; ids at or above it come only from a hostile file and are
/// renumbered, so the counter can never overflow.
const ID_LIMIT: u64 = 1 << 62;

/// The outbox of one state directory.
pub(crate) struct Outbox {
    dir: PathBuf,
    items: Vec<Pending>,
    next_id: u64,
    notified: BTreeMap<String, Vec<String>>,
    rate: RateState,
    journal: Arc<Journal>,
    clock: Arc<dyn Clock>,
    changed: bool,
    failing: bool,
    /// When the state file was last written (monotonic).
    last_commit: f64,
    /// Where each saved state is also handed (the Redis thread), after the local file.
    mirror: Option<crate::store::mirror::StateSink>,
}

impl Outbox {
    /// Adopts the outbox read from the state file, replays the journal over it, and returns
    /// the items that were in flight during [`MAX_CRASHED_ATTEMPTS`] crashes in a row (for
    /// the caller to record; they are no longer in the outbox).
    pub(crate) fn adopt(
        dir: &Path,
        saved: DeliveryState,
        clock: Arc<dyn Clock>,
    ) -> (Outbox, Vec<OutboxItem>) {
        let DeliveryState { mut outbox, next_id, notified, rate } = saved;
        let replayed = journal::replay(dir, &mut outbox, ID_LIMIT);
        if replayed.skipped > 0 {
            log::warn!(skipped = replayed.skipped; "outbox journal: ignored lines that are not whole records");
        }
        // New ids lie above every id the state file or the journal names, so a journal
        // record can never match a newer item; ids only a hostile file has are renumbered.
        let highest =
            outbox.iter().map(|i| i.id).filter(|&id| id < ID_LIMIT).chain(replayed.max_id).max();
        let saved_next = if next_id < ID_LIMIT { next_id } else { 0 };
        let mut next_id = saved_next.max(highest.map_or(0, |h| h + 1));
        for item in outbox.iter_mut().filter(|i| i.id >= ID_LIMIT) {
            item.id = next_id;
            next_id += 1;
        }
        let now = clock.now();
        let mut set_aside = Vec::new();
        let mut items = Vec::new();
        for mut item in outbox {
            item.sanitize();
            if item.crashed >= MAX_CRASHED_ATTEMPTS {
                set_aside.push(item);
            } else {
                items.push(Pending { born: now - item.age_s, item, handed: false, saved: true });
            }
        }
        let outbox = Outbox {
            dir: dir.to_path_buf(),
            items,
            next_id,
            notified,
            rate,
            journal: Arc::new(Journal::open(dir)),
            clock,
            // What the journal held is folded into the state file at the first commit.
            changed: replayed.records > 0 || !set_aside.is_empty(),
            failing: false,
            last_commit: now,
            mirror: None,
        };
        (outbox, set_aside)
    }

    /// Hands every state saved from now on to `sink` too, after the local file.
    pub(crate) fn mirror_to(&mut self, sink: crate::store::mirror::StateSink) {
        self.mirror = Some(sink);
    }

    /// The journal, shared with the workers (they mark attempts in it).
    pub(crate) fn journal(&self) -> Arc<Journal> {
        self.journal.clone()
    }

    /// The clock deadlines are measured on.
    pub(crate) fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// Adds one event for one channel (saved by the next commit).
    pub(crate) fn push(&mut self, channel: &str, event: AlertEvent) {
        let id = self.next_id;
        self.next_id += 1;
        let item = OutboxItem::new(id, channel, event, crate::timefmt::now_unix());
        self.items.push(Pending { item, born: self.clock.now(), handed: false, saved: false });
        self.changed = true;
    }

    /// Per episode, the channels told about it, and the rate limits' state, together.
    pub(crate) fn notified_and_rate_mut(
        &mut self,
    ) -> (&mut BTreeMap<String, Vec<String>>, &mut RateState) {
        self.changed = true;
        (&mut self.notified, &mut self.rate)
    }

    /// The rate limits' state (for status).
    pub(crate) fn rate(&self) -> &RateState {
        &self.rate
    }

    /// The items in memory, oldest first.
    pub(crate) fn items(&self) -> &[Pending] {
        &self.items
    }

    /// The items in memory, oldest first, for handing off.
    pub(crate) fn items_mut(&mut self) -> &mut [Pending] {
        &mut self.items
    }

    /// Takes an item out (accepted, or dropped with a record).
    pub(crate) fn remove(&mut self, id: u64) -> Option<OutboxItem> {
        let at = self.items.iter().position(|p| p.item.id == id)?;
        self.journal.forget(id);
        Some(self.items.remove(at).item)
    }

    /// Records that `id` left the outbox (before the caller removes it).
    pub(crate) fn mark_done(&self, id: u64) {
        self.journal.done(id);
    }

    /// Records that `id`, never adopted into memory (set aside at start), left the outbox.
    pub(crate) fn mark_gone(&self, id: u64) {
        self.journal.done(id);
        self.journal.forget(id);
    }

    /// The items not in the state file as last written (what a failed final save loses).
    pub(crate) fn unsaved(&self) -> Vec<OutboxItem> {
        self.items.iter().filter(|p| !p.saved).map(|p| p.item.clone()).collect()
    }

    /// Items handed to `channel`'s worker come back (the worker stopped or restarted).
    pub(crate) fn unhand(&mut self, ids: &[u64]) {
        for p in self.items.iter_mut().filter(|p| ids.contains(&p.item.id)) {
            p.handed = false;
        }
    }

    /// Every item of `channel` is to be handed again (its worker is gone).
    pub(crate) fn unhand_channel(&mut self, channel: &str) {
        for p in self.items.iter_mut().filter(|p| p.item.channel == channel) {
            p.handed = false;
        }
    }

    /// How long an item has waited, on the monotonic clock.
    pub(crate) fn age(&self, p: &Pending) -> f64 {
        (self.clock.now() - p.born).max(0.0)
    }

    /// True when the state file should be written: the outbox changed, the journal grew
    /// long, or the last commit failed.
    pub(crate) fn needs_commit(&self) -> bool {
        self.changed
            || self.failing
            || self.journal.wants_compaction()
            || (!self.items.is_empty() && self.clock.now() - self.last_commit >= AGE_COMMIT_EVERY)
    }

    /// True while the state cannot be saved.
    pub(crate) fn failing(&self) -> bool {
        self.failing
    }

    /// Appends to the journal that failed.
    pub(crate) fn journal_failures(&self) -> u64 {
        self.journal.failures()
    }

    /// Writes `state` (its `delivery` filled from this outbox) atomically and empties the
    /// journal. `clean` is the last commit of a clean stop: an attempt abandoned then was no
    /// crash, and the journal says so first, so a failed save cannot turn it into one.
    pub(crate) fn commit(&mut self, state: &mut State, clean: bool) -> std::io::Result<()> {
        if clean {
            for (id, n) in self.journal.attempting() {
                self.journal.attempt(id, n.saturating_sub(1));
            }
        }
        let journal = self.journal.clone();
        let now = self.clock.now();
        let result = journal.compact(|marks| {
            for p in &mut self.items {
                match marks.get(&p.item.id) {
                    Some(Mark::Tried) => p.item.crashed = 0,
                    Some(Mark::Attempting(n)) => p.item.crashed = *n,
                    _ => {}
                }
            }
            let outbox = self
                .items
                .iter()
                .filter(|p| marks.get(&p.item.id) != Some(&Mark::Done))
                .map(|p| OutboxItem { age_s: (now - p.born).max(0.0), ..p.item.clone() })
                .collect();
            state.delivery = DeliveryState {
                outbox,
                next_id: self.next_id,
                notified: self.notified.clone(),
                rate: self.rate.clone(),
            };
            // The local file first, as always; the mirror gets the same bytes even when the
            // disk refused them (never waiting: a latest-value slot).
            state.generation = state.generation.saturating_add(1);
            let saved = state::encode(state).and_then(|bytes| {
                let written = state::write_atomic(&state::state_path(&self.dir), &bytes);
                if let Some(m) = &self.mirror {
                    m.offer(bytes);
                }
                written
            });
            // The state file is not kept in memory: only the caller's alert states matter.
            state.delivery = DeliveryState::default();
            saved
        });
        match result {
            Ok(()) => {
                for p in &mut self.items {
                    p.saved = true;
                }
                self.changed = false;
                self.failing = false;
                self.last_commit = now;
                Ok(())
            }
            Err(e) => {
                self.failing = true;
                Err(e)
            }
        }
    }

    /// The persisted form as it stands in memory (tests).
    #[cfg(test)]
    pub(crate) fn state(&self) -> DeliveryState {
        DeliveryState {
            outbox: self.items.iter().map(|p| p.item.clone()).collect(),
            next_id: self.next_id,
            notified: self.notified.clone(),
            rate: self.rate.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Severity;
    use crate::notify::delivery::clock::manual::ManualClock;

    fn dir(name: &str) -> PathBuf {
        crate::testutil::tempdir("outbox", name)
    }

    fn item(id: u64, age_s: f64, crashed: u32) -> OutboxItem {
        let event = AlertEvent::test_event("h", Severity::Warning, 1.0);
        OutboxItem { age_s, crashed, ..OutboxItem::new(id, "c", event, 1.0) }
    }

    #[test]
    fn adoption_replays_the_journal_and_sets_aside_crash_loops() {
        let d = dir("adopt");
        {
            let j = Journal::open(&d);
            j.attempt(2, 3); // in flight during a third crash
            j.attempt(3, 1);
            j.done(3);
        }
        let saved = DeliveryState {
            outbox: vec![item(1, 5.0, 0), item(2, 5.0, 2), item(3, 5.0, 0)],
            next_id: 0,
            notified: BTreeMap::new(),
            rate: RateState::default(),
        };
        let clock = Arc::new(ManualClock::default());
        let (outbox, aside) = Outbox::adopt(&d, saved, clock.clone());
        assert_eq!(aside.iter().map(|i| i.id).collect::<Vec<_>>(), vec![2]);
        assert_eq!(outbox.items().iter().map(|p| p.item.id).collect::<Vec<_>>(), vec![1]);
        assert_eq!(outbox.next_id, 4, "ids are never reused");
        assert!(outbox.needs_commit(), "the journal is folded in at the first commit");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn commits_carry_monotonic_ages_and_a_clean_stop_is_no_crash() {
        let d = dir("commit");
        let clock = Arc::new(ManualClock::default());
        let saved = DeliveryState { outbox: vec![item(7, 10.0, 0)], ..DeliveryState::default() };
        let (mut outbox, _) = Outbox::adopt(&d, saved, clock.clone());
        clock.advance(5.0);
        outbox.journal().attempt(7, 1);
        let mut state = State::default();
        outbox.commit(&mut state, false).unwrap();
        let on_disk = state::load(&d).delivery.outbox;
        assert_eq!((on_disk[0].age_s, on_disk[0].crashed), (15.0, 1), "in flight: counts");
        assert_eq!(std::fs::metadata(journal::journal_path(&d)).unwrap().len(), 0);
        outbox.commit(&mut state, true).unwrap();
        let on_disk = state::load(&d).delivery.outbox;
        assert_eq!(on_disk[0].crashed, 0, "abandoned at a clean stop: no crash");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn hostile_ages_are_sanitized() {
        let d = dir("hostile");
        let saved = DeliveryState {
            outbox: vec![item(1, f64::NAN, 0), item(2, -1e300, 0)],
            ..DeliveryState::default()
        };
        let (outbox, _) = Outbox::adopt(&d, saved, Arc::new(ManualClock::default()));
        assert!(outbox.items().iter().all(|p| p.born == 0.0));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_clean_stop_whose_save_fails_is_still_no_crash() {
        let d = dir("clean-fail");
        let saved = DeliveryState { outbox: vec![item(7, 0.0, 0)], ..DeliveryState::default() };
        let clock = Arc::new(ManualClock::default());
        let (mut outbox, _) = Outbox::adopt(&d, saved.clone(), clock.clone());
        let mut state = State::default();
        outbox.commit(&mut state, false).unwrap();
        // A worker is mid-attempt (a hung receiver) when a clean stop cannot save.
        outbox.journal().attempt(7, 1);
        let path = crate::state::state_path(&d);
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir_all(path.join("x")).unwrap(); // the rename onto it fails
        assert!(outbox.commit(&mut state, true).is_err());
        std::fs::remove_dir_all(&path).unwrap();
        // The last good state file (what a full disk leaves in place) and the journal.
        crate::state::save(&d, &State { delivery: saved, ..State::default() }).unwrap();
        let (again, _) = Outbox::adopt(&d, crate::state::load(&d).delivery, clock);
        assert_eq!(again.items()[0].item.crashed, 0, "a clean stop counted as a crash");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn ages_survive_a_crash_through_periodic_commits_while_items_wait() {
        let d = dir("ages");
        let saved = DeliveryState { outbox: vec![item(1, 0.0, 0)], ..DeliveryState::default() };
        let clock = Arc::new(ManualClock::default());
        let (mut outbox, _) = Outbox::adopt(&d, saved, clock.clone());
        let mut state = State::default();
        outbox.commit(&mut state, false).unwrap();
        for _ in 0..100 {
            // Ten hours of failed retries, the loop committing when it is asked to.
            clock.advance(360.0);
            outbox.journal().attempt(1, 1);
            outbox.journal().tried(1);
            if outbox.needs_commit() {
                outbox.commit(&mut state, false).unwrap();
            }
        }
        // kill -9 now; the next start:
        let (again, _) =
            Outbox::adopt(&d, crate::state::load(&d).delivery, Arc::new(ManualClock::default()));
        let age = again.items()[0].item.age_s;
        assert!(age >= 36_000.0 - AGE_COMMIT_EVERY, "age after a crash: {age} s");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn ids_never_overflow_and_never_match_a_journal_record() {
        let d = dir("ids");
        Journal::open(&d).done(5);
        let saved = DeliveryState {
            outbox: vec![item(u64::MAX, 0.0, 0), item(3, 0.0, 0)],
            next_id: u64::MAX,
            ..DeliveryState::default()
        };
        let (mut outbox, _) = Outbox::adopt(&d, saved, Arc::new(ManualClock::default()));
        let ids: Vec<u64> = outbox.items().iter().map(|p| p.item.id).collect();
        assert_eq!(ids, vec![6, 3], "the hostile id is renumbered above the journal's 5");
        outbox.push("c", AlertEvent::test_event("h", Severity::Warning, 1.0));
        assert_eq!(outbox.items()[2].item.id, 7);
        let _ = std::fs::remove_dir_all(&d);
    }
}
