//! Delivery: the dispatcher between the poll loop and one worker thread per channel.
//!
//! The loop hands each notification to [`Dispatcher::enqueue`], which routes it and appends
//! one outbox item per channel; [`Dispatcher::commit`] saves the state file (alerts and
//! outbox together) and then hands the new items to the channels' workers through bounded
//! queues, so the loop never blocks on the network. A failed save never holds a notification
//! back (a full disk is exactly when an alert matters): the items are handed from memory, a
//! `hostwatch.persist` critical notification says so, and the save is retried every tick.
//! Workers mark each attempt in the journal before it starts (the crash-loop guard) and
//! report outcomes; an item leaves the outbox only when its receiver accepted it, or with a
//! `delivery_failed` record in the events log.
//!
//! Reloads never wait on a worker: a changed channel's worker is asked to stop and its
//! replacement starts once it has, so there is at most one worker per channel and per-channel
//! order holds.
//!
//! A rate-limited channel (`max_per_hour`) takes notifications only within its budget
//! ([`rate`]): the rest are held back, recorded (`rate_limited`) and counted, and one
//! `held_back` summary per period tells the channel how many.
//!
//! Not for: rendering (each channel does its own) or deciding what to notify (the engine).

mod clock;
mod dry_run;
pub(crate) mod journal;
mod outbox;
mod rate;
mod worker;

pub use dry_run::DryRunRenderer;
pub use outbox::{DeliveryState, OutboxItem};
pub use rate::RATE_LIMIT_RULE;

use super::route::Router;
use crate::alerts::EventKind;
use crate::config::channels::RateLimit;
use crate::config::{Channel, ChannelKind, Config, Delivery, Severity};
use crate::event::{AlertEvent, Notification};
use crate::eventlog::EventLog;
use crate::logging::Throttle;
use crate::state::State;
use clock::MonoClock;
use outbox::Outbox;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, TrySendError};
use std::time::{Duration, Instant};
use worker::{Ack, Job, Worker, WorkerContext};

/// The rule name of hostwatch's own notification about a state it cannot save.
pub const PERSIST_RULE: &str = "hostwatch.persist";

/// One channel's delivery health, for status and metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChannelHealth {
    /// Items waiting in the outbox for this channel.
    pub pending: usize,
    /// Items the receiver accepted since start.
    pub delivered: u64,
    /// Items dropped with a `delivery_failed` record since start.
    pub failed: u64,
    /// Attempts that failed and will be retried, since start.
    pub retried: u64,
    /// Notifications its rate limit held back since start (recorded, never sent).
    pub held_back: u64,
    /// Failed attempts since the last success.
    pub consecutive_failures: u32,
    /// When the receiver last accepted something (Unix seconds).
    pub last_success: Option<f64>,
    /// The last failure's reason.
    pub last_error: Option<String>,
}

/// Why the state cannot be saved, while it cannot.
struct PersistTrouble {
    since: f64,
    error: String,
}

/// Routes notifications, keeps the outbox and runs the channels' workers.
pub struct Dispatcher {
    router: Router,
    policy: Delivery,
    host: String,
    state_dir: PathBuf,
    channels: BTreeMap<String, Channel>,
    workers: BTreeMap<String, Worker>,
    retiring: Vec<Worker>,
    acks_tx: mpsc::Sender<Ack>,
    acks_rx: Receiver<Ack>,
    outbox: Outbox,
    events: EventLog,
    health: BTreeMap<String, ChannelHealth>,
    persist: Option<PersistTrouble>,
    persist_warnings: Throttle,
    /// A full queue is warned about once a minute per channel.
    full_warnings: BTreeMap<String, Throttle>,
    grace: Duration,
    /// Per rate-limited channel, its limit.
    limits: BTreeMap<String, RateLimit>,
    /// Events-log records of this tick's rate-limit decisions, appended by
    /// [`Dispatcher::record`] after the commit.
    pending_records: Vec<serde_json::Value>,
}

impl Dispatcher {
    /// Adopts the persisted outbox (replaying the journal over it) and starts a worker for
    /// every channel of `config`; items are handed to workers by the next
    /// [`Dispatcher::commit`]. Items that were in flight during [`MAX_CRASHED_ATTEMPTS`]
    /// crashes in a row are set aside with a `delivery_failed` record.
    pub fn start(config: &Config, saved: DeliveryState) -> Dispatcher {
        let (acks_tx, acks_rx) = mpsc::channel();
        let (outbox, set_aside) = Outbox::adopt(&config.state_dir, saved, Arc::new(MonoClock));
        let mut dispatcher = Dispatcher {
            router: Router::new(config),
            policy: config.delivery.clone(),
            host: config.host.clone(),
            state_dir: config.state_dir.clone(),
            channels: config.channels.clone(),
            workers: BTreeMap::new(),
            retiring: Vec::new(),
            acks_tx,
            acks_rx,
            outbox,
            events: EventLog::new(&config.state_dir),
            health: BTreeMap::new(),
            persist: None,
            persist_warnings: Throttle::default(),
            full_warnings: BTreeMap::new(),
            grace: grace(config),
            limits: limits(config),
            pending_records: Vec::new(),
        };
        for item in set_aside {
            let reason = format!(
                "in flight during {} crashes of hostwatch in a row (a crashing plugin or \
                 hook?); set aside",
                item.crashed
            );
            log::error!(channel = item.channel.as_str(), key = item.event.key.as_str(); "{reason}");
            dispatcher.record_failure(&item, &reason, true);
            dispatcher.outbox.mark_gone(item.id);
        }
        dispatcher.start_missing_workers();
        let pending = dispatcher.outbox.items().len();
        if pending > 0 {
            log::info!(pending = pending; "delivering notifications left in the outbox");
        }
        dispatcher
    }

    /// How long a stop waits for deliveries in progress: the longest attempt any channel may
    /// take, plus a little.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// Routes one event into the outbox (saved and handed off by the next commit); a
    /// rate-limited channel over its budget holds it back instead (recorded by the next
    /// [`Dispatcher::record`]). hostwatch's own notifications are never held back.
    pub fn enqueue(&mut self, event: AlertEvent) {
        let mut channels = self.router.channels_for(&event);
        let episode = event.episode_key.clone();
        let resolution = event.ends_episode();
        let own = event.rule.starts_with("hostwatch.");
        let now = crate::timefmt::now_unix();
        let (notified, rate) = self.outbox.notified_and_rate_mut();
        let (told, held_on) = if resolution {
            let told = notified.remove(&episode).unwrap_or_default();
            (told, rate.held.remove(&episode).unwrap_or_default())
        } else {
            let told = notified.get(&episode).cloned().unwrap_or_default();
            (told, rate.held.get(&episode).cloned().unwrap_or_default())
        };
        if resolution {
            for c in &told {
                if !channels.contains(c) {
                    channels.push(c.clone());
                }
            }
        }
        // (channel, why) of what is held back.
        let mut held: Vec<(String, &str)> = Vec::new();
        channels.retain(|c| {
            if resolution && held_on.contains(c) && !told.contains(c) {
                // The channel never heard of this alert: its end stays quiet too, limit or not.
                held.push((c.clone(), "its firing was held back by the rate limit"));
                return false;
            }
            let Some(limit) = self.limits.get(c).filter(|_| !own) else { return true };
            let verdict = rate::admit(&mut rate.periods, c, limit, now, &event, told.contains(c));
            if verdict == rate::Verdict::Hold {
                held.push((c.clone(), "over the channel's rate limit"));
            }
            verdict == rate::Verdict::Pass
        });
        if !resolution {
            let told = notified.entry(episode.clone()).or_default();
            for c in &channels {
                if !told.contains(c) {
                    told.push(c.clone());
                }
            }
            // Held where it was never told; told now where it passes.
            let mut held_on = held_on;
            held_on.retain(|c| !channels.contains(c));
            for (c, _) in &held {
                if !told.contains(c) && !held_on.contains(c) {
                    held_on.push(c.clone());
                }
            }
            if held_on.is_empty() {
                rate.held.remove(&episode);
            } else {
                rate.held.insert(episode, held_on);
            }
        }
        for channel in channels {
            self.outbox.push(&channel, event.clone());
        }
        for (channel, why) in held {
            log::info!(
                channel = channel.as_str(), key = event.key.as_str(), rule = event.rule.as_str();
                "notification held back, {why} (recorded in the events log)"
            );
            self.health.entry(channel.clone()).or_default().held_back += 1;
            self.pending_records.push(serde_json::json!({
                "type": "rate_limited", "ts": now, "channel": channel, "key": event.key,
                "reason": why, "event": event,
            }));
        }
    }

    /// Ends the rate limits' periods that are over: each that held something back puts one
    /// `held_back` summary in its channel's outbox (saved and handed off by the next commit,
    /// recorded by the next [`Dispatcher::record`]). Called every tick; changes nothing
    /// (and so saves nothing) while no period ends.
    pub fn close_rate_periods(&mut self) {
        let now = crate::timefmt::now_unix();
        let limits = &self.limits;
        let any_ended = self.outbox.rate().periods.iter().any(|(c, p)| match limits.get(c) {
            Some(l) => now >= p.start + l.per.as_secs_f64() || now < p.start,
            None => true,
        });
        if !any_ended {
            return;
        }
        let (_, rate) = self.outbox.notified_and_rate_mut();
        for (channel, period, limit) in rate::close_ended(&mut rate.periods, &self.limits, now) {
            let description = rate::summary_text(&channel, &period, limit.as_ref(), now);
            let value = format!("{} held back", period.held);
            let threshold = match &limit {
                Some(l) => {
                    format!("{} per {}", l.max, crate::config::units::format_duration(l.per))
                }
                None => "no limit".to_string(),
            };
            let event = AlertEvent::internal(crate::event::Internal {
                host: &self.host,
                rule: RATE_LIMIT_RULE,
                label: ("channel", &channel),
                severity: period.worst.unwrap_or(Severity::Warning),
                kind: EventKind::HeldBack,
                since: period.start,
                seq: 1,
                value_text: &value,
                threshold: &threshold,
                description,
            });
            log::warn!(channel = channel.as_str(), held_back = period.held; "{}", event.description.as_deref().unwrap_or(""));
            // A channel removed since has nobody to tell: its held items have their records.
            if self.channels.contains_key(&channel) {
                self.outbox.push(&channel, event.clone());
                let mut record = serde_json::to_value(&event).unwrap_or_default();
                record["type"] = serde_json::Value::from("notification");
                self.pending_records.push(record);
            }
        }
    }

    /// Puts a report event in the outbox for each of `channels` that exists (no routing, no
    /// episode bookkeeping); saved and handed off by the next commit like any item.
    pub fn enqueue_report(&mut self, event: AlertEvent, channels: &[String]) {
        for channel in channels.iter().filter(|c| self.channels.contains_key(*c)) {
            self.outbox.push(channel, event.clone());
        }
    }

    /// Appends the events-log records of notifications (after the commit that saved them),
    /// then those of what rate limits held back and their summaries.
    pub fn record(&mut self, notifications: &[Notification]) {
        for n in notifications {
            let mut record = n.to_json();
            record["type"] = serde_json::Value::from("notification");
            self.events.append(&record);
        }
        for record in std::mem::take(&mut self.pending_records) {
            self.events.append(&record);
        }
    }

    /// Appends a `silenced` record for each notification a silence held back.
    pub fn record_silenced(&mut self, held: impl IntoIterator<Item = crate::silence::Suppressed>) {
        for s in held {
            self.events.append(&s.to_record());
        }
    }

    /// Hands every state saved from now on to `sink` too (`state.store`).
    pub(crate) fn mirror_to(&mut self, sink: crate::store::mirror::StateSink) {
        self.outbox.mirror_to(sink);
    }

    /// True when [`Dispatcher::commit`] has something to save.
    pub fn needs_commit(&self) -> bool {
        self.outbox.needs_commit()
    }

    /// Saves `state` with the outbox, then hands new items to their workers, whether the save
    /// worked or not. Returns whether it was saved. While saves fail, one `hostwatch.persist`
    /// critical notification goes out (from memory) and the error is logged once a minute;
    /// the first save that works again resolves it.
    pub fn commit(&mut self, state: &mut State) -> bool {
        let saved = self.save(state, false);
        self.hand_off();
        saved
    }

    fn save(&mut self, state: &mut State, clean: bool) -> bool {
        match self.outbox.commit(state, clean) {
            Ok(()) => {
                if let Some(trouble) = self.persist.take() {
                    log::info!(state_dir = self.state_dir.display().to_string(); "the state is saved again");
                    // Held in the outbox and on disk before the events log names it.
                    let event = self.persist_event(&trouble, EventKind::Resolved, 2);
                    self.enqueue(event.clone());
                    if self.outbox.commit(state, clean).is_ok() {
                        self.record_event(&event);
                    } else {
                        self.persist = Some(trouble);
                    }
                }
                true
            }
            Err(e) => {
                let file = crate::state::state_path(&self.state_dir);
                let error = format!("cannot save the state in {}: {e}", file.display());
                // The first failure of an episode is always told; repeats once a minute.
                let new_trouble = self.persist.is_none();
                if self.persist_warnings.ready() || new_trouble {
                    log::error!(file = file.display().to_string(); "{error}; notifications are delivered from memory, saving is retried every tick");
                }
                // At a stop no worker is left to deliver it: the caller records what is lost
                // instead.
                if self.persist.is_none() && !clean {
                    let trouble = PersistTrouble { since: crate::timefmt::now_unix(), error };
                    let event = self.persist_event(&trouble, EventKind::Firing, 1);
                    self.persist = Some(trouble);
                    self.enqueue(event.clone());
                    self.record_event(&event);
                }
                false
            }
        }
    }

    /// hostwatch's own notification about its state directory.
    fn persist_event(&self, trouble: &PersistTrouble, kind: EventKind, seq: u32) -> AlertEvent {
        let dir = self.state_dir.display().to_string();
        let description = match kind {
            EventKind::Resolved => format!("hostwatch saves its state in {dir} again."),
            _ => format!(
                "{}. Notifications are still delivered, from memory; a restart now would \
                 lose what is not saved. Saving is retried every tick.",
                trouble.error
            ),
        };
        AlertEvent::internal(crate::event::Internal {
            host: &self.host,
            rule: PERSIST_RULE,
            label: ("path", &dir),
            severity: Severity::Critical,
            kind,
            since: trouble.since,
            seq,
            value_text: if kind == EventKind::Resolved { "saved" } else { "not saved" },
            threshold: "state saved",
            description,
        })
    }

    /// The events-log record of one of hostwatch's own notifications.
    fn record_event(&mut self, event: &AlertEvent) {
        let mut record = serde_json::to_value(event).unwrap_or_default();
        record["type"] = serde_json::Value::from("notification");
        self.events.append(&record);
    }

    /// Hands the items not yet handed to their workers (after a commit, or on a tick that
    /// had nothing to save). A full queue leaves that channel's later items for the next call
    /// (per-channel order); other channels go on.
    pub fn hand_off(&mut self) {
        let mut blocked: Vec<String> = Vec::new();
        let journal = self.outbox.journal();
        let clock = self.outbox.clock();
        let now = clock.now();
        for p in self.outbox.items_mut().iter_mut().filter(|p| !p.handed) {
            if blocked.contains(&p.item.channel) {
                continue;
            }
            let Some(worker) = self.workers.get(&p.item.channel) else { continue };
            let mut item = p.item.clone();
            match journal.mark(item.id) {
                Some(journal::Mark::Tried) => item.crashed = 0,
                Some(journal::Mark::Attempting(n)) => item.crashed = n,
                Some(journal::Mark::Done) => continue,
                None => {}
            }
            match worker.tx.try_send(Job::Deliver(item, (now - p.born).max(0.0))) {
                Ok(()) => p.handed = true,
                Err(TrySendError::Full(_)) => {
                    if self.full_warnings.entry(p.item.channel.clone()).or_default().ready() {
                        log::warn!(channel = p.item.channel.as_str(); "delivery queue full; notifications wait in the outbox");
                    }
                    blocked.push(p.item.channel.clone());
                }
                Err(TrySendError::Disconnected(_)) => blocked.push(p.item.channel.clone()),
            }
        }
    }

    /// Tells channels (Alertmanager) about an alert still firing after a restart.
    pub fn remember(&mut self, event: &AlertEvent) {
        for channel in self.router.channels_for(event) {
            if let Some(w) = self.workers.get(&channel) {
                let _ = w.tx.try_send(Job::Remember(event.clone()));
            }
        }
    }

    /// Applies the workers' reports (accepted and dropped items leave the outbox, returned
    /// ones are handed again), replaces workers that stopped, gives up on items of
    /// channels no longer configured once older than `give_up_after`, and ends the rate
    /// limits' periods that are over. Never blocks.
    pub fn process_acks(&mut self) {
        while let Ok(ack) = self.acks_rx.try_recv() {
            self.apply(ack);
        }
        self.close_rate_periods();
        self.supervise_workers();
        let limit = self.policy.give_up_after.as_secs_f64();
        let orphans: Vec<u64> = self
            .outbox
            .items()
            .iter()
            .filter(|p| !self.channels.contains_key(&p.item.channel))
            // A retiring worker may still be sending it: wait for its report.
            .filter(|p| !p.handed)
            .filter(|p| self.outbox.age(p) > limit)
            .map(|p| p.item.id)
            .collect();
        for id in orphans {
            let Some(p) = self.outbox.items().iter().find(|p| p.item.id == id) else { continue };
            let item = p.item.clone();
            let reason = format!("channel {} is no longer configured", item.channel);
            log::error!(channel = item.channel.as_str(), key = item.event.key.as_str(); "giving up on a notification: {reason}");
            self.drop_item(&item, &reason, true);
        }
    }

    fn apply(&mut self, ack: Ack) {
        match ack {
            Ack::Delivered { id, channel, answer } => {
                log::debug!(channel = channel.as_str(), answer = answer.as_str(); "delivered");
                let h = self.health.entry(channel).or_default();
                h.delivered += 1;
                h.consecutive_failures = 0;
                h.last_success = Some(crate::timefmt::now_unix());
                self.outbox.remove(id);
            }
            Ack::Dropped { id, channel, reason, gave_up } => {
                let h = self.health.entry(channel).or_default();
                h.failed += 1;
                h.last_error = Some(reason.clone());
                let item = self.outbox.items().iter().find(|p| p.item.id == id);
                if let Some(item) = item.map(|p| p.item.clone()) {
                    self.drop_item(&item, &reason, gave_up);
                }
            }
            Ack::Retrying { channel, reason } => {
                let h = self.health.entry(channel).or_default();
                h.retried += 1;
                h.consecutive_failures += 1;
                h.last_error = Some(reason);
            }
            Ack::Returned { channel, ids } => {
                log::debug!(channel = channel.as_str(), items = ids.len(); "items returned by a stopping worker");
                self.outbox.unhand(&ids);
            }
        }
    }

    /// The record first, then the removal: a crash in between repeats the record, never
    /// loses it.
    fn drop_item(&mut self, item: &OutboxItem, reason: &str, gave_up: bool) {
        self.record_failure(item, reason, gave_up);
        self.outbox.mark_done(item.id);
        self.outbox.remove(item.id);
    }

    /// A `delivery_failed` record in the events log, with the whole event: nothing is lost
    /// without a trace.
    fn record_failure(&mut self, item: &OutboxItem, reason: &str, gave_up: bool) {
        self.events.append(&serde_json::json!({
            "type": "delivery_failed", "ts": crate::timefmt::now_unix(), "channel": item.channel,
            "key": item.event.key, "reason": reason, "gave_up": gave_up, "event": item.event,
        }));
    }

    /// Joins workers that stopped (never waiting on a running one), and starts the ones
    /// missing: a replacement only once its predecessor stopped.
    fn supervise_workers(&mut self) {
        let mut i = 0;
        while i < self.retiring.len() {
            if self.retiring[i].thread.is_finished() {
                let w = self.retiring.swap_remove(i);
                self.reap(w);
            } else {
                i += 1;
            }
        }
        let dead: Vec<String> = self
            .workers
            .iter()
            .filter(|(_, w)| w.thread.is_finished())
            .map(|(n, _)| n.clone())
            .collect();
        for name in dead {
            if let Some(w) = self.workers.remove(&name) {
                log::error!(channel = name.as_str(); "the delivery worker stopped unexpectedly; starting it again");
                self.reap(w);
            }
        }
        self.start_missing_workers();
    }

    /// Joins a worker that has stopped (no wait) and takes its channel's items back: its
    /// final report (items it held) came through the acks before it ended.
    fn reap(&mut self, w: Worker) {
        let name = w.channel.name.clone();
        let _ = w.thread.join();
        while let Ok(ack) = self.acks_rx.try_recv() {
            self.apply(ack);
        }
        self.outbox.unhand_channel(&name);
    }

    fn start_missing_workers(&mut self) {
        for (name, channel) in &self.channels {
            if self.workers.contains_key(name)
                || self.retiring.iter().any(|w| w.channel.name == *name)
            {
                continue;
            }
            let ctx = WorkerContext {
                channel: channel.clone(),
                factory: worker::real_senders(),
                timeout: self.policy.timeout,
                policy: self.policy.clone(),
                acks: self.acks_tx.clone(),
                journal: self.outbox.journal(),
                clock: self.outbox.clock(),
            };
            match worker::spawn(ctx, self.policy.queue) {
                Ok(w) => {
                    self.workers.insert(name.clone(), w);
                }
                Err(e) => {
                    log::error!(channel = name.as_str(); "cannot start the delivery thread: {e}; retrying at the next tick")
                }
            }
        }
    }

    /// Takes a reloaded config: routes change at once; only channels whose settings changed
    /// (or all, when the delivery policy changed) get a new worker, each once its old one has
    /// stopped. Never waits.
    pub fn reload(&mut self, config: &Config) {
        self.router = Router::new(config);
        self.host = config.host.clone();
        let policy_changed = self.policy != config.delivery;
        self.policy = config.delivery.clone();
        self.grace = grace(config);
        self.limits = limits(config);
        self.prune_rate_state(config);
        for (name, w) in std::mem::take(&mut self.workers) {
            if !policy_changed
                && config.channels.get(&name).is_some_and(|c| same_worker(c, &w.channel))
            {
                self.workers.insert(name, w);
            } else {
                log::info!(channel = name.as_str(); "channel changed; its worker stops after the attempt in progress");
                w.retire();
                self.retiring.push(w);
            }
        }
        self.channels = config.channels.clone();
        self.start_missing_workers();
        self.hand_off();
    }

    /// Forgets held-back episodes of channels no longer configured (their periods close, with
    /// no summary, at the next tick).
    fn prune_rate_state(&mut self, config: &Config) {
        let stale = self
            .outbox
            .rate()
            .held
            .values()
            .any(|channels| channels.iter().any(|c| !config.channels.contains_key(c)));
        if stale {
            let (_, rate) = self.outbox.notified_and_rate_mut();
            rate.held.retain(|_, channels| {
                channels.retain(|c| config.channels.contains_key(c));
                !channels.is_empty()
            });
        }
    }

    /// Per channel: outbox depth and delivery health since start.
    pub fn health(&self) -> BTreeMap<String, ChannelHealth> {
        let mut all = self.health.clone();
        for name in self.channels.keys() {
            all.entry(name.clone()).or_default();
        }
        for h in all.values_mut() {
            h.pending = 0;
        }
        // Called every tick the API publishes: no string copied per outbox item (an outbox
        // grows to thousands while a receiver is down).
        for p in self.outbox.items() {
            match all.get_mut(&p.item.channel) {
                Some(h) => h.pending += 1,
                None => all.entry(p.item.channel.clone()).or_default().pending += 1,
            }
        }
        all
    }

    /// True while the state cannot be saved.
    pub fn persist_failing(&self) -> bool {
        self.outbox.failing()
    }

    /// Outbox journal and events log writes that failed since start.
    pub fn write_failures(&self) -> u64 {
        self.outbox.journal_failures() + self.events.failures()
    }

    /// `once`: lets every worker attempt what it holds once, waits for them (at most until
    /// `deadline`), applies their reports and saves (a clean stop).
    pub fn drain(&mut self, state: &mut State, deadline: Instant) -> bool {
        for w in self.workers.values() {
            w.drain();
        }
        self.finish(state, deadline)
    }

    /// Stops the workers (no new attempt starts; the one in progress is waited for until
    /// `deadline`), applies their last reports and saves: what was not accepted stays in the
    /// outbox for the next start.
    pub fn shutdown(&mut self, state: &mut State, deadline: Instant) -> bool {
        for w in self.workers.values() {
            w.retire();
        }
        self.finish(state, deadline)
    }

    fn finish(&mut self, state: &mut State, deadline: Instant) -> bool {
        let mut workers: Vec<Worker> = std::mem::take(&mut self.workers).into_values().collect();
        workers.append(&mut self.retiring);
        for w in workers {
            while !w.thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if w.thread.is_finished() {
                let _ = w.thread.join();
            } else {
                w.retire();
                log::warn!(channel = w.channel.name.as_str(); "delivery still in progress at exit; it will be retried at the next start");
            }
        }
        while let Ok(ack) = self.acks_rx.try_recv() {
            self.apply(ack);
        }
        self.channels.clear();
        // The last save matters most: it is tried again (briefly) before giving up on it.
        let retry_until = Instant::now() + Duration::from_secs(1);
        loop {
            if self.save(state, true) {
                return true;
            }
            if Instant::now() >= retry_until {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        // What never reached the state file is lost with this process: say so, item by item,
        // rather than leave the events log naming notifications nobody will send.
        for item in self.outbox.unsaved() {
            let reason = "not delivered before hostwatch stopped, and the state could not be \
                          saved to keep it for the next start";
            log::error!(channel = item.channel.as_str(), key = item.event.key.as_str(); "{reason}");
            self.record_failure(&item, reason, true);
        }
        false
    }

    /// The outbox in memory (tests).
    #[cfg(test)]
    fn state(&self) -> DeliveryState {
        self.outbox.state()
    }
}

/// True when a worker built for `b` serves `a` as well: a changed rate limit is the
/// dispatcher's business and does not restart the worker (its group timing carries on).
fn same_worker(a: &Channel, b: &Channel) -> bool {
    a.name == b.name && a.kind == b.kind && a.pacing.group == b.pacing.group
}

/// Per rate-limited channel of `config`, its limit.
fn limits(config: &Config) -> BTreeMap<String, RateLimit> {
    config
        .channels
        .iter()
        .filter_map(|(name, c)| c.pacing.rate.clone().map(|r| (name.clone(), r)))
        .collect()
}

/// How long a stop waits for the attempts in progress: the longest one any channel of
/// `config` may take, plus a little.
fn grace(config: &Config) -> Duration {
    longest_attempt(config) + Duration::from_secs(2)
}

/// The longest one attempt may take on any channel of `config`.
fn longest_attempt(config: &Config) -> Duration {
    config
        .channels
        .values()
        .map(|c| match &c.kind {
            ChannelKind::Email(e) => e.timeout,
            ChannelKind::Webhook(w) => w.timeout,
            ChannelKind::Alertmanager(a) => a.timeout,
            ChannelKind::Exec(x) => Some(x.timeout),
            _ => None,
        })
        .map(|t| t.unwrap_or(config.delivery.timeout))
        .max()
        .unwrap_or(config.delivery.timeout)
}

#[cfg(test)]
mod tests;
