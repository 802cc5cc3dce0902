//! Delivery: the outbox and one worker thread per channel.
//!
//! The poll loop routes each notification to its channels and appends one outbox item per
//! channel; the caller persists the outbox (state file) and only then hands the items to the
//! channels' workers through bounded queues, so the loop never blocks on the network and
//! nothing is attempted before it is on disk. A worker sends its items in order (per-alert
//! order holds because a channel's queue is FIFO), retries transient failures with
//! exponential backoff and jitter (honouring `Retry-After`), drops permanent failures and
//! items older than `give_up_after` with an error, and reports each outcome back; an item
//! leaves the outbox only when its receiver accepted it.

use super::route::Router;
use super::{SendError, Sender, build_sender};
use crate::config::{Channel, ChannelKind, Config, Delivery};
use crate::event::AlertEvent;
use crate::eventlog::EventLog;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Deliveries a notification may be in the middle of when the process dies before it is
/// set aside: a notification that crashes its channel (a plugin that segfaults) must not
/// crash hostwatch at every start.
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
    /// When it entered the outbox (Unix seconds); `give_up_after` counts from here.
    pub created: f64,
    /// How many processes handed it to a worker without stopping cleanly afterwards.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub handoffs: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
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
}

/// Work for a channel's worker.
enum Job {
    Deliver(OutboxItem),
    Remember(AlertEvent),
    /// Attempt everything queued once, then stop (`once`).
    Drain,
    Stop,
}

/// What a worker reports back.
#[derive(Debug)]
enum Ack {
    Delivered { id: u64, channel: String, answer: String },
    Dropped { id: u64, channel: String, key: String, reason: String, gave_up: bool },
}

struct Worker {
    tx: SyncSender<Job>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// Routes notifications, keeps the outbox and runs the channels' workers.
pub struct Dispatcher {
    router: Router,
    policy: Delivery,
    workers: BTreeMap<String, Worker>,
    acks_rx: Receiver<Ack>,
    outbox: Vec<(OutboxItem, bool)>,
    next_id: u64,
    notified: BTreeMap<String, Vec<String>>,
    changed: bool,
    events: Option<EventLog>,
    grace: Duration,
}

impl Dispatcher {
    /// Starts a worker for every channel of `config` and adopts the persisted outbox (items
    /// are handed to workers by the next [`Dispatcher::hand_off`]). Items that were in flight
    /// during [`MAX_CRASHED_ATTEMPTS`] crashes in a row are set aside with a record.
    pub fn start(config: &Config, saved: DeliveryState, events: Option<EventLog>) -> Dispatcher {
        let (acks_tx, acks_rx) = mpsc::channel();
        let mut workers = BTreeMap::new();
        for (name, channel) in &config.channels {
            let (tx, rx) = mpsc::sync_channel(config.delivery.queue);
            let stop = Arc::new(AtomicBool::new(false));
            let context = WorkerContext {
                name: name.clone(),
                channel: channel.clone(),
                timeout: config.delivery.timeout,
                policy: config.delivery.clone(),
                acks: acks_tx.clone(),
                stop: stop.clone(),
            };
            let spawned = std::thread::Builder::new()
                .name(format!("deliver-{name}"))
                .spawn(move || worker_loop(context, rx));
            match spawned {
                Ok(thread) => {
                    workers.insert(name.clone(), Worker { tx, stop, thread });
                }
                Err(e) => {
                    log::error!(channel = name.as_str(); "cannot start the delivery thread: {e}")
                }
            }
        }
        let mut dispatcher = Dispatcher {
            router: Router::new(config),
            policy: config.delivery.clone(),
            workers,
            acks_rx,
            changed: false,
            next_id: saved.next_id.max(saved.outbox.iter().map(|i| i.id + 1).max().unwrap_or(0)),
            outbox: Vec::new(),
            notified: saved.notified,
            events,
            grace: longest_attempt(config) + Duration::from_secs(2),
        };
        for item in saved.outbox {
            if item.handoffs >= MAX_CRASHED_ATTEMPTS {
                let reason = format!(
                    "hostwatch stopped without a clean shutdown {} times while delivering it \
                     (a crashing plugin or hook?); set aside",
                    item.handoffs
                );
                log::error!(channel = item.channel.as_str(), key = item.event.key.as_str(); "{reason}");
                dispatcher.record_failure(&item, &reason, true);
                dispatcher.changed = true;
            } else {
                dispatcher.outbox.push((item, false));
            }
        }
        if !dispatcher.outbox.is_empty() {
            log::info!(pending = dispatcher.outbox.len(); "delivering notifications left in the outbox");
        }
        dispatcher
    }

    /// How long a stop waits for deliveries in progress: the longest attempt any channel may
    /// take, plus a little.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// Routes one event into the outbox (not yet handed to workers).
    pub fn enqueue(&mut self, event: AlertEvent) {
        let mut channels = self.router.channels_for(&event);
        let episode = event.episode_key.clone();
        if event.event == crate::alerts::EventKind::Resolved {
            for c in self.notified.remove(&episode).unwrap_or_default() {
                if !channels.contains(&c) {
                    channels.push(c);
                }
            }
        } else {
            let told = self.notified.entry(episode).or_default();
            for c in &channels {
                if !told.contains(c) {
                    told.push(c.clone());
                }
            }
        }
        let now = crate::timefmt::now_unix();
        for channel in channels {
            let id = self.next_id;
            self.next_id += 1;
            let item = OutboxItem { id, channel, event: event.clone(), created: now, handoffs: 0 };
            self.outbox.push((item, false));
        }
        self.changed = true;
    }

    /// Asks for another save (the last one failed).
    pub fn mark_changed(&mut self) {
        self.changed = true;
    }

    /// True (once) when the outbox changed since the last call: time to save the state.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// The persisted form.
    pub fn state(&self) -> DeliveryState {
        DeliveryState {
            outbox: self.outbox.iter().map(|(i, _)| i.clone()).collect(),
            next_id: self.next_id,
            notified: self.notified.clone(),
        }
    }

    /// Hands the items not yet handed to their workers; call after the outbox was saved, and
    /// save again when it returns true (each handed item counts one more hand-off, which is
    /// what sets aside a notification that keeps crashing the process). A full queue leaves
    /// that channel's later items for the next call; other channels go on.
    pub fn hand_off(&mut self) -> bool {
        let mut blocked: Vec<String> = Vec::new();
        let mut handed_any = false;
        for (item, handed) in self.outbox.iter_mut().filter(|(_, h)| !*h) {
            if blocked.contains(&item.channel) {
                continue;
            }
            let Some(worker) = self.workers.get(&item.channel) else { continue };
            let mut sent = item.clone();
            sent.handoffs += 1;
            match worker.tx.try_send(Job::Deliver(sent)) {
                Ok(()) => {
                    *handed = true;
                    item.handoffs += 1;
                    handed_any = true;
                }
                Err(TrySendError::Full(_)) => {
                    log::warn!(channel = item.channel.as_str(); "delivery queue full; the notification waits in the outbox");
                    // Per-channel order: nothing after this one may overtake it.
                    blocked.push(item.channel.clone());
                }
                Err(TrySendError::Disconnected(_)) => blocked.push(item.channel.clone()),
            }
        }
        self.changed |= handed_any;
        handed_any
    }

    /// Tells channels (Alertmanager) about an alert still firing after a restart.
    pub fn remember(&mut self, event: &AlertEvent) {
        for channel in self.router.channels_for(event) {
            if let Some(w) = self.workers.get(&channel) {
                let _ = w.tx.try_send(Job::Remember(event.clone()));
            }
        }
    }

    /// Applies the workers' reports: accepted and dropped items leave the outbox. Items for
    /// channels without a worker (removed from the config) are dropped once older than
    /// `give_up_after`, with a record.
    pub fn process_acks(&mut self) {
        while let Ok(ack) = self.acks_rx.try_recv() {
            match ack {
                Ack::Delivered { id, channel, answer } => {
                    log::debug!(channel = channel.as_str(), answer = answer.as_str(); "delivered");
                    self.remove(id);
                }
                Ack::Dropped { id, channel, key, reason, gave_up } => {
                    if let Some(item) = self.remove(id) {
                        self.record_failure(&item, &reason, gave_up);
                    } else {
                        log::debug!(channel = channel.as_str(), key = key.as_str(); "dropped an item no longer in the outbox");
                    }
                }
            }
        }
        let now = crate::timefmt::now_unix();
        let limit = self.policy.give_up_after.as_secs_f64();
        let orphans: Vec<u64> = self
            .outbox
            .iter()
            .filter(|(i, _)| !self.workers.contains_key(&i.channel) && now - i.created > limit)
            .map(|(i, _)| i.id)
            .collect();
        for id in orphans {
            if let Some(item) = self.remove(id) {
                let reason = format!("channel {} is no longer configured", item.channel);
                log::error!(channel = item.channel.as_str(), key = item.event.key.as_str(); "giving up on a notification: {reason}");
                self.record_failure(&item, &reason, true);
            }
        }
    }

    /// A `delivery_failed` record in the events log, with the whole event: nothing is lost
    /// without a trace.
    fn record_failure(&mut self, item: &OutboxItem, reason: &str, gave_up: bool) {
        if let Some(events) = self.events.as_mut() {
            events.append(&serde_json::json!({
                "type": "delivery_failed", "ts": crate::timefmt::now_unix(), "channel": item.channel,
                "key": item.event.key, "reason": reason, "gave_up": gave_up, "event": item.event,
            }));
        }
    }

    fn remove(&mut self, id: u64) -> Option<OutboxItem> {
        let at = self.outbox.iter().position(|(i, _)| i.id == id)?;
        self.changed = true;
        Some(self.outbox.remove(at).0)
    }

    /// How many items wait in the outbox.
    pub fn pending(&self) -> usize {
        self.outbox.len()
    }

    /// `once`: lets every worker attempt what it holds once, waits for them (at most until
    /// `deadline`), and applies their reports.
    pub fn drain(&mut self, deadline: Instant) {
        for w in self.workers.values() {
            let _ = w.tx.send(Job::Drain);
        }
        self.join_workers(deadline);
        self.process_acks();
    }

    /// Stops the workers: no new attempt starts; the one in progress is waited for until
    /// `deadline`. Their last reports are applied; what was not accepted stays in the outbox.
    pub fn shutdown(&mut self, deadline: Instant) {
        for w in self.workers.values() {
            w.stop.store(true, Ordering::SeqCst);
            let _ = w.tx.try_send(Job::Stop);
        }
        self.join_workers(deadline);
        self.process_acks();
    }

    /// After a clean stop, nothing was in flight when the process died: the hand-off counts
    /// start again from zero.
    fn settle(&mut self) {
        for (item, handed) in &mut self.outbox {
            item.handoffs = 0;
            *handed = false;
        }
    }

    fn join_workers(&mut self, deadline: Instant) {
        let workers = std::mem::take(&mut self.workers);
        let mut all_stopped = true;
        for (name, w) in workers {
            while !w.thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if w.thread.is_finished() {
                let _ = w.thread.join();
            } else {
                all_stopped = false;
                w.stop.store(true, Ordering::SeqCst);
                log::warn!(channel = name.as_str(); "delivery still in progress at exit; it will be retried at the next start");
            }
        }
        if all_stopped {
            self.settle();
        }
    }
}

impl super::Notify for Dispatcher {
    fn notify(&mut self, n: &crate::event::Notification) {
        self.enqueue(n.to_event());
    }
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

/// A small xorshift generator for retry jitter (no cryptographic use).
struct Jitter(u64);

impl Jitter {
    fn new(seed: &str) -> Jitter {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Jitter((t ^ crate::event::fnv1a64(seed.as_bytes()) ^ u64::from(std::process::id())) | 1)
    }

    /// A number in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The delay before retry number `failures` (1-based): `base × 2^(failures-1)` capped at
/// `max`, with "equal jitter" (half fixed, half random), and never shorter than what the
/// receiver asked for.
fn backoff(
    policy: &Delivery,
    failures: u32,
    retry_after: Option<Duration>,
    jitter: &mut Jitter,
) -> Duration {
    let exp =
        policy.retry_base.as_secs_f64() * 2f64.powi(failures.saturating_sub(1).min(30) as i32);
    let capped = exp.min(policy.retry_max.as_secs_f64());
    let delay = Duration::from_secs_f64(capped / 2.0 + capped / 2.0 * jitter.next());
    // A receiver's `Retry-After` is honoured, but never beyond the point where the item would
    // be given up anyway (a huge value must not overflow the clock).
    retry_after.map_or(delay, |r| r.max(delay)).min(policy.give_up_after)
}

/// What a worker thread is given.
struct WorkerContext {
    name: String,
    channel: Channel,
    timeout: Duration,
    policy: Delivery,
    acks: mpsc::Sender<Ack>,
    stop: Arc<AtomicBool>,
}

/// Sends one event, turning a panic inside the channel into a permanent failure.
fn send_guarded(sender: &mut dyn Sender, event: &AlertEvent) -> Result<super::Receipt, SendError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sender.send(event))).unwrap_or_else(
        |panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(SendError::permanent(format!("the channel panicked: {what}")))
        },
    )
}

fn worker_loop(ctx: WorkerContext, rx: Receiver<Job>) {
    let WorkerContext { name, channel, timeout, policy, acks, stop } = ctx;
    let channel_name = name.as_str();
    let mut sender: Option<Box<dyn Sender>> = None;
    let mut remembered: Vec<AlertEvent> = Vec::new();
    let mut queue: VecDeque<OutboxItem> = VecDeque::new();
    let mut failures: u32 = 0;
    let mut next_attempt = Instant::now();
    let mut draining = false;
    let mut next_refresh: Option<Instant> = None;
    let mut jitter = Jitter::new(&name);
    loop {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        // The channel is built here, and built again with backoff while it fails (a plugin
        // whose init asks to retry, a CA file not there yet).
        if sender.is_none() && (draining || Instant::now() >= next_attempt) {
            match build_sender(&channel, timeout) {
                Ok(mut built) => {
                    if failures > 0 {
                        log::info!(channel = channel_name; "channel available again");
                    }
                    failures = 0;
                    for event in remembered.drain(..) {
                        built.remember(&event);
                    }
                    next_refresh = built.refresh_every().map(|d| Instant::now() + d);
                    sender = Some(built);
                }
                Err(e) => {
                    failures += 1;
                    let delay = backoff(&policy, failures, None, &mut jitter);
                    next_attempt = Instant::now() + delay;
                    log::error!(
                        channel = channel_name, kind = channel.kind.type_name(), retry_in_s = delay.as_secs_f64();
                        "channel unavailable, its notifications wait in the outbox: {e}"
                    );
                    if draining {
                        break;
                    }
                }
            }
        }
        let now = Instant::now();
        let mut wait = Duration::from_secs(3600);
        if !queue.is_empty() || sender.is_none() {
            wait = wait.min(next_attempt.saturating_duration_since(now));
        }
        if let Some(t) = next_refresh {
            wait = wait.min(t.saturating_duration_since(now));
        }
        let job = if draining {
            rx.try_recv().ok()
        } else {
            match rx.recv_timeout(wait) {
                Ok(job) => Some(job),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        };
        match job {
            Some(Job::Deliver(item)) => queue.push_back(item),
            Some(Job::Remember(event)) => match sender.as_mut() {
                Some(s) => s.remember(&event),
                None => remembered.push(event),
            },
            Some(Job::Drain) => draining = true,
            Some(Job::Stop) => break,
            None => {}
        }
        if draining && queue.is_empty() {
            break;
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Some(active) = sender.as_mut() else { continue };
        if let Some(item) = queue.front().filter(|_| draining || Instant::now() >= next_attempt) {
            let age = crate::timefmt::now_unix() - item.created;
            if age > policy.give_up_after.as_secs_f64() {
                let reason =
                    format!("not delivered after {age:.0}s of trying ({failures} failures)");
                log::error!(channel = channel_name, key = item.event.key.as_str(); "giving up on a notification: {reason}");
                let _ = acks.send(Ack::Dropped {
                    id: item.id,
                    channel: name.clone(),
                    key: item.event.key.clone(),
                    reason,
                    gave_up: true,
                });
                queue.pop_front();
                continue;
            }
            match send_guarded(active.as_mut(), &item.event) {
                Ok(receipt) => {
                    if failures > 0 {
                        log::info!(channel = channel_name, failures = failures; "channel accepts notifications again");
                    }
                    failures = 0;
                    let _ = acks.send(Ack::Delivered {
                        id: item.id,
                        channel: name.clone(),
                        answer: receipt.answer,
                    });
                    queue.pop_front();
                }
                Err(SendError::Permanent { reason }) => {
                    log::error!(
                        channel = channel_name, key = item.event.key.as_str(), rule = item.event.rule.as_str();
                        "channel {channel_name} refused a notification permanently, not retrying: {reason}"
                    );
                    let _ = acks.send(Ack::Dropped {
                        id: item.id,
                        channel: name.clone(),
                        key: item.event.key.clone(),
                        reason,
                        gave_up: false,
                    });
                    queue.pop_front();
                }
                Err(SendError::Transient { reason, retry_after }) => {
                    failures += 1;
                    let delay = backoff(&policy, failures, retry_after, &mut jitter);
                    next_attempt = Instant::now() + delay;
                    log::warn!(
                        channel = channel_name, failures = failures, retry_in_s = delay.as_secs_f64();
                        "delivery to {channel_name} failed, will retry: {reason}"
                    );
                    if draining {
                        break;
                    }
                }
            }
        }
        if let (Some(every), Some(at)) = (active.refresh_every(), next_refresh)
            && Instant::now() >= at
        {
            if let Err(e) = active.refresh() {
                log::warn!(channel = channel_name; "periodic re-send failed: {e}");
            }
            next_refresh = Some(Instant::now() + every);
        }
    }
}

/// `--dry-run`: what each routed channel would receive, printed as one JSON line per
/// notification; nothing is sent and no plugin is loaded or called.
pub struct DryRunRenderer {
    router: Router,
    senders: BTreeMap<String, Option<Box<dyn Sender>>>,
    kinds: BTreeMap<String, ChannelKind>,
}

impl DryRunRenderer {
    /// Prepares renderers for every channel of `config`.
    pub fn new(config: &Config) -> DryRunRenderer {
        let mut senders = BTreeMap::new();
        let mut kinds = BTreeMap::new();
        for (name, channel) in &config.channels {
            let sender = match channel.kind {
                ChannelKind::Plugin(_) => None,
                _ => build_sender(channel, config.delivery.timeout)
                    .map_err(|e| log::error!(channel = name.as_str(); "channel unavailable: {e}"))
                    .ok(),
            };
            senders.insert(name.clone(), sender);
            kinds.insert(name.clone(), channel.kind.clone());
        }
        DryRunRenderer { router: Router::new(config), senders, kinds }
    }

    /// The deliveries one event would make: channel, type and payload.
    pub fn render(&self, event: &AlertEvent) -> Vec<serde_json::Value> {
        self.router
            .channels_for(event)
            .into_iter()
            .map(|name| {
                let kind = self.kinds.get(&name);
                let payload = match (self.senders.get(&name), kind) {
                    (_, Some(ChannelKind::Plugin(p))) => serde_json::json!({
                        "plugin": p.path.display().to_string(), "receives": event,
                    }),
                    (Some(Some(sender)), _) => {
                        let r = sender.render(event);
                        let body = serde_json::from_str(&r.body).unwrap_or(serde_json::Value::String(r.body));
                        serde_json::json!({"content_type": r.content_type, "body": body})
                    }
                    _ => serde_json::Value::Null,
                };
                serde_json::json!({"channel": name, "type": kind.map(ChannelKind::type_name), "payload": payload})
            })
            .collect()
    }
}

impl super::Notify for DryRunRenderer {
    fn notify(&mut self, n: &crate::event::Notification) {
        use std::io::Write;
        let event = n.to_event();
        let line = serde_json::json!({
            "dry_run": true, "summary": n.summary(), "event": &event, "deliveries": self.render(&event),
        });
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::EventKind;
    use crate::config::Severity;

    #[test]
    fn a_resolution_goes_wherever_its_episode_was_announced() {
        let text = r#"{"state_dir": "/tmp/hostwatch-unit-routes", "rules": [{"name": "r", "metric": "cpu.usage", "warn": "> 1", "crit": "> 2"}],
            "channels": {"warnings": {"type": "exec", "command": ["/bin/true"]}, "pager": {"type": "exec", "command": ["/bin/true"]}},
            "routes": [{"severity": "warning", "channels": ["warnings"]}, {"severity": "critical", "channels": ["pager"]}]}"#;
        let config = crate::config::load_str(text, "t.json", &|_| None).unwrap();
        let mut d = Dispatcher::start(
            &Config { channels: BTreeMap::new(), ..config },
            DeliveryState::default(),
            None,
        );
        let mut e = AlertEvent::test_event("h", Severity::Warning, 1.0);
        d.enqueue(e.clone());
        e.event = EventKind::Escalated;
        e.severity = Severity::Critical;
        d.enqueue(e.clone());
        e.event = EventKind::Resolved;
        d.enqueue(e.clone());
        let channels: Vec<String> = d.state().outbox.into_iter().map(|i| i.channel).collect();
        assert_eq!(channels, vec!["warnings", "pager", "pager", "warnings"]);
        assert!(d.state().notified.is_empty(), "the episode is forgotten once resolved");
        assert!(d.take_changed());
    }

    #[test]
    fn backoff_grows_caps_and_honours_retry_after() {
        let policy = Delivery {
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(60),
            ..Delivery::default()
        };
        let mut j = Jitter::new("t");
        for (failures, full) in [(1, 2.0), (2, 4.0), (3, 8.0), (10, 60.0)] {
            let d = backoff(&policy, failures, None, &mut j).as_secs_f64();
            assert!(d >= full / 2.0 && d <= full, "failure {failures}: {d}");
        }
        assert_eq!(
            backoff(&policy, 1, Some(Duration::from_secs(30)), &mut j),
            Duration::from_secs(30)
        );
        assert_eq!(
            backoff(&policy, 1, Some(Duration::from_secs(u64::MAX)), &mut j),
            policy.give_up_after
        );
    }
}
