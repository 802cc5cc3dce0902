//! A channel's worker: one thread per channel that builds the channel, sends its items in
//! order, retries transient failures with backoff, gives up on items older than
//! `give_up_after`, and reports each outcome to the dispatcher.
//!
//! The decisions live in [`WorkerCore`], a plain state machine over an injected [`Clock`]
//! (unit-tested without sleeping); [`spawn`] wraps it in a thread that does the I/O and is
//! supervised: a panic anywhere (building the channel, a periodic re-send) is caught and
//! logged, the channel is rebuilt after a backoff and no queued item is lost. Before each
//! send the attempt is marked in the journal (the crash-loop guard counts only attempts that
//! really started); after it, the outcome.
//!
//! With grouping (`group_wait`), the front items that may share a message leave together
//! once the oldest has waited `group_wait` and `group_interval` has passed since the last
//! grouped message (a critical firing may leave at once: `group_bypass`); each keeps its own
//! item, journal marks and acknowledgement, so a crash inside the window loses nothing.
//! Reports and test notifications always leave alone.
//!
//! Not for: routing, persistence of the outbox, or anything the poll loop must wait on.

use super::clock::Clock;
use super::journal::Journal;
use super::outbox::OutboxItem;
use crate::alerts::EventKind;
use crate::config::channels::Grouping;
use crate::config::{Channel, Delivery, Severity};
use crate::event::AlertEvent;
use crate::notify::{Receipt, SendError, Sender, build_sender};
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Work for a channel's worker.
pub(crate) enum Job {
    /// Send this item (with its age on the monotonic clock at hand-off).
    Deliver(OutboxItem, f64),
    /// An alert still firing after a restart, for channels that mirror state.
    Remember(AlertEvent),
    /// Attempt everything queued once, then stop (`once`).
    Drain,
    /// Stop before the next attempt.
    Stop,
}

/// What a worker reports back.
#[derive(Debug)]
pub(crate) enum Ack {
    /// The receiver accepted the item (already marked done in the journal).
    Delivered { id: u64, channel: String, answer: String },
    /// The item is to leave the outbox with a `delivery_failed` record.
    Dropped { id: u64, channel: String, reason: String, gave_up: bool },
    /// An attempt failed and will be retried.
    Retrying { channel: String, reason: String },
    /// Items the worker held but did not finish (it stopped or restarted): hand them again.
    Returned { channel: String, ids: Vec<u64> },
}

/// What the worker should do next.
#[derive(Debug, PartialEq)]
pub(crate) enum Step {
    /// Build (or rebuild) the channel.
    Build,
    /// Send this many items from the front of the queue (more than one: as one message).
    Send(usize),
    /// The front item is too old: drop it with this reason.
    GiveUp(String),
    /// Run the channel's periodic work.
    Refresh,
    /// Wait for a job at most this long.
    Wait(Duration),
    /// Stop.
    Exit,
}

/// The worker's decisions, free of I/O and threads.
pub(crate) struct WorkerCore {
    policy: Delivery,
    /// Items and the monotonic time they entered the outbox.
    queue: VecDeque<(OutboxItem, f64)>,
    built: bool,
    failures: u32,
    next_attempt: f64,
    refresh_every: Option<f64>,
    next_refresh: Option<f64>,
    draining: bool,
    exit: bool,
    jitter: Jitter,
    grouping: Option<Grouping>,
    /// How many events the built channel puts in one message (1: no grouping).
    capacity: usize,
    /// When the last grouped message left (monotonic seconds).
    last_group: f64,
    /// After a group failed transiently: its size, so the retry carries exactly the same
    /// items (and so the same group key); newcomers wait for the next message.
    pinned: Option<usize>,
    /// After a group failed permanently: how many front items go one by one, so one bad
    /// notification cannot take the others down with it.
    solo: usize,
}

impl WorkerCore {
    pub(crate) fn new(policy: Delivery, seed: &str) -> WorkerCore {
        WorkerCore {
            policy,
            queue: VecDeque::new(),
            built: false,
            failures: 0,
            next_attempt: f64::NEG_INFINITY,
            refresh_every: None,
            next_refresh: None,
            draining: false,
            exit: false,
            jitter: Jitter::new(seed),
            grouping: None,
            capacity: 1,
            last_group: f64::NEG_INFINITY,
            pinned: None,
            solo: 0,
        }
    }

    /// Groups notifications as `grouping` says (`None`: one message each).
    pub(crate) fn set_grouping(&mut self, grouping: Option<Grouping>) {
        self.grouping = grouping;
    }

    /// How many events the built channel can put in one message.
    pub(crate) fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
    }

    /// How many front items the next message carries: 1 without grouping, else the front
    /// run of items that may share a message, up to the channel's capacity.
    /// An item that was in flight during a crash goes alone, so the crash-loop guard sets
    /// aside only the item that crashes, never its companions.
    fn batch_len(&self) -> usize {
        if self.solo > 0 {
            return 1;
        }
        if let Some(n) = self.pinned {
            return n.clamp(1, self.queue.len().max(1));
        }
        if self.grouping.is_none() || self.capacity <= 1 {
            return 1;
        }
        let n = self
            .queue
            .iter()
            .take(self.capacity)
            .take_while(|(item, _)| groupable(&item.event) && item.crashed == 0)
            .count();
        n.max(1)
    }

    /// When a message of the front `n` items may leave (monotonic seconds).
    fn group_ready_at(&self, n: usize) -> f64 {
        let Some(g) = &self.grouping else { return f64::NEG_INFINITY };
        let Some((front, born)) = self.queue.front() else { return f64::NEG_INFINITY };
        // A retry, or a group taken apart, has waited already.
        if !groupable(&front.event) || self.capacity <= 1 || self.pinned.is_some() || self.solo > 0
        {
            return f64::NEG_INFINITY;
        }
        let urgent = g.bypass_critical && self.queue.iter().take(n).any(|(i, _)| urgent(&i.event));
        // A full message has nothing to wait for.
        if urgent || n >= self.capacity {
            return f64::NEG_INFINITY;
        }
        (born + g.wait.as_secs_f64()).max(self.last_group + g.interval.as_secs_f64())
    }

    /// Queues an item that entered the outbox at monotonic time `born`.
    pub(crate) fn push(&mut self, item: OutboxItem, born: f64) {
        self.queue.push_back((item, born));
    }

    /// Attempt what is queued once, then stop.
    pub(crate) fn drain(&mut self) {
        self.draining = true;
    }

    /// Stop before the next attempt.
    pub(crate) fn stop(&mut self) {
        self.exit = true;
    }

    /// The item at the front of the queue.
    pub(crate) fn front(&self) -> Option<&OutboxItem> {
        self.queue.front().map(|(i, _)| i)
    }

    /// Takes every queued item out (the worker stops or restarts).
    pub(crate) fn take_queue(&mut self) -> Vec<u64> {
        self.queue.drain(..).map(|(i, _)| i.id).collect()
    }

    /// Consecutive failures (building or sending).
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    pub(crate) fn next(&mut self, now: f64) -> Step {
        if self.exit {
            return Step::Exit;
        }
        let due = self.draining || now >= self.next_attempt;
        if !self.built {
            return if due { Step::Build } else { Step::Wait(secs(self.next_attempt - now)) };
        }
        let mut send_at = f64::INFINITY;
        if let Some((_, born)) = self.queue.front() {
            let age = now - born;
            let limit = self.policy.give_up_after.as_secs_f64();
            if age > limit {
                return Step::GiveUp(format!(
                    "not delivered after {age:.0}s of trying ({} failures)",
                    self.failures
                ));
            }
            let n = self.batch_len();
            let ready = self.group_ready_at(n);
            if self.draining || (due && now >= ready) {
                return Step::Send(n);
            }
            send_at = self.next_attempt.max(ready);
        }
        if let Some(at) = self.next_refresh
            && now >= at
        {
            return Step::Refresh;
        }
        if self.draining {
            return Step::Exit;
        }
        let mut wait = 3600.0f64;
        if !self.queue.is_empty() {
            wait = wait.min(send_at - now);
        }
        if let Some(at) = self.next_refresh {
            wait = wait.min(at - now);
        }
        Step::Wait(secs(wait))
    }

    /// The channel was built (`refresh_every`: its periodic work) or could not be.
    pub(crate) fn built(&mut self, now: f64, result: Result<Option<Duration>, ()>) {
        match result {
            Ok(every) => {
                self.built = true;
                self.failures = 0;
                self.refresh_every = every.map(|d| d.as_secs_f64());
                self.next_refresh = self.refresh_every.map(|e| now + e);
            }
            Err(()) => self.failed(now, None),
        }
    }

    /// The front `n` items (one message) were sent with this result; returns what to report,
    /// one acknowledgement per item. A group refused permanently is not dropped: its items
    /// are sent again one by one, and only those refused alone are dropped.
    pub(crate) fn sent(
        &mut self,
        now: f64,
        n: usize,
        result: &Result<Receipt, SendError>,
    ) -> Vec<Ack> {
        let n = n.min(self.queue.len());
        if !matches!(result, Err(SendError::Transient { .. })) {
            self.pinned = None;
            self.solo = self.solo.saturating_sub(n);
        }
        match result {
            Ok(receipt) => {
                self.failures = 0;
                let grouped = self.grouping.is_some()
                    && self.queue.front().is_some_and(|(item, _)| groupable(&item.event));
                if n > 1 || grouped {
                    self.last_group = now;
                }
                self.queue
                    .drain(..n)
                    .map(|(item, _)| Ack::Delivered {
                        id: item.id,
                        channel: item.channel,
                        answer: receipt.answer.clone(),
                    })
                    .collect()
            }
            Err(SendError::Permanent { .. }) if n > 1 => {
                self.solo = n;
                Vec::new()
            }
            Err(SendError::Permanent { reason }) => self
                .queue
                .drain(..n)
                .map(|(item, _)| Ack::Dropped {
                    id: item.id,
                    channel: item.channel,
                    reason: reason.clone(),
                    gave_up: false,
                })
                .collect(),
            Err(SendError::Transient { retry_after, .. }) => {
                for (item, _) in self.queue.iter_mut().take(n) {
                    item.crashed = 0;
                }
                if n > 1 {
                    self.pinned = Some(n);
                }
                self.failed(now, *retry_after);
                Vec::new()
            }
        }
    }

    /// The front `n` items, for one message.
    pub(crate) fn batch(&self, n: usize) -> impl Iterator<Item = &OutboxItem> {
        self.queue.iter().take(n).map(|(i, _)| i)
    }

    /// The front item is given up.
    pub(crate) fn gave_up(&mut self, reason: String) -> Option<Ack> {
        let (item, _) = self.queue.pop_front()?;
        self.pinned = self.pinned.and_then(|n| n.checked_sub(1)).filter(|n| *n > 0);
        self.solo = self.solo.saturating_sub(1);
        Some(Ack::Dropped { id: item.id, channel: item.channel, reason, gave_up: true })
    }

    /// The periodic work ran.
    pub(crate) fn refreshed(&mut self, now: f64) {
        self.next_refresh = self.refresh_every.map(|e| now + e);
    }

    /// Something panicked: the channel is rebuilt after a backoff.
    pub(crate) fn panicked(&mut self, now: f64) {
        self.built = false;
        self.failed(now, None);
    }

    /// The delay before the next attempt after this failure.
    fn failed(&mut self, now: f64, retry_after: Option<Duration>) {
        self.failures += 1;
        let delay = backoff(&self.policy, self.failures, retry_after, &mut self.jitter);
        self.next_attempt = now + delay.as_secs_f64();
        if self.draining {
            self.exit = true;
        }
    }

    /// Seconds until the next attempt (for logs).
    pub(crate) fn retry_in(&self, now: f64) -> f64 {
        (self.next_attempt - now).max(0.0)
    }
}

/// Reports and test notifications leave alone; every alert notification may share a message.
fn groupable(event: &AlertEvent) -> bool {
    event.report.is_none() && !event.test && event.event != EventKind::Report
}

/// A critical firing or escalation: what `group_bypass: "critical"` lets leave at once.
fn urgent(event: &AlertEvent) -> bool {
    event.severity == Severity::Critical
        && matches!(event.event, EventKind::Firing | EventKind::Escalated)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, 3600.0))
}

/// A small xorshift generator for retry jitter (no cryptographic use).
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn new(seed: &str) -> Jitter {
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
pub(crate) fn backoff(
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

/// A running worker as the dispatcher holds it.
pub(crate) struct Worker {
    pub(crate) tx: SyncSender<Job>,
    pub(crate) stop: Arc<AtomicBool>,
    /// Attempt what is queued once, then stop (`once`); set without waiting on the queue.
    pub(crate) drain: Arc<AtomicBool>,
    pub(crate) thread: JoinHandle<()>,
    /// The channel config it was built from (a reload rebuilds only changed channels).
    pub(crate) channel: Channel,
}

/// Builds a channel's sender (the real one is [`build_sender`]; tests inject their own).
pub(crate) type SenderFactory =
    Arc<dyn Fn(&Channel, Duration) -> Result<Box<dyn Sender>, String> + Send + Sync>;

/// The factory of the real channels.
pub(crate) fn real_senders() -> SenderFactory {
    Arc::new(build_sender)
}

/// What a worker thread is given.
pub(crate) struct WorkerContext {
    pub(crate) channel: Channel,
    pub(crate) factory: SenderFactory,
    pub(crate) timeout: Duration,
    pub(crate) policy: Delivery,
    pub(crate) acks: mpsc::Sender<Ack>,
    pub(crate) journal: Arc<Journal>,
    pub(crate) clock: Arc<dyn Clock>,
}

/// Starts a worker thread for `ctx.channel`.
pub(crate) fn spawn(ctx: WorkerContext, queue: usize) -> std::io::Result<Worker> {
    let (tx, rx) = mpsc::sync_channel(queue);
    let stop = Arc::new(AtomicBool::new(false));
    let drain = Arc::new(AtomicBool::new(false));
    let channel = ctx.channel.clone();
    let flags = Flags { stop: stop.clone(), drain: drain.clone() };
    let thread = std::thread::Builder::new()
        .name(format!("deliver-{}", ctx.channel.name))
        .spawn(move || supervise(ctx, rx, flags))?;
    Ok(Worker { tx, stop, drain, thread, channel })
}

/// What the dispatcher can ask of a worker without waiting on its queue.
struct Flags {
    stop: Arc<AtomicBool>,
    drain: Arc<AtomicBool>,
}

impl Worker {
    /// Asks the worker to stop before its next attempt; never blocks.
    pub(crate) fn retire(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake(Job::Stop);
    }

    /// Asks the worker to attempt what it holds once, then stop; never blocks.
    pub(crate) fn drain(&self) {
        self.drain.store(true, Ordering::SeqCst);
        self.wake(Job::Drain);
    }

    /// A job that only wakes the worker: a full queue means it is awake anyway.
    fn wake(&self, job: Job) {
        match self.tx.try_send(job) {
            Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// Runs the worker; a panic restarts it with the same queue after a backoff.
fn supervise(ctx: WorkerContext, rx: Receiver<Job>, flags: Flags) {
    let mut core = WorkerCore::new(ctx.policy.clone(), &ctx.channel.name);
    core.set_grouping(ctx.channel.pacing.group.clone());
    let mut sender: Option<Box<dyn Sender>> = None;
    let mut remembered: Vec<AlertEvent> = Vec::new();
    loop {
        let run = catch_unwind(AssertUnwindSafe(|| {
            work(&ctx, &rx, &flags, &mut core, &mut sender, &mut remembered)
        }));
        match run {
            Ok(()) => break,
            Err(panic) => {
                sender = None;
                core.panicked(ctx.clock.now());
                log::error!(
                    channel = ctx.channel.name.as_str(), retry_in_s = core.retry_in(ctx.clock.now());
                    "the delivery worker panicked ({}); restarting it, its notifications wait in the outbox",
                    panic_text(&*panic)
                );
            }
        }
    }
    // What the worker held and did not finish goes back to the outbox's hand-off.
    let mut ids = core.take_queue();
    while let Ok(job) = rx.try_recv() {
        if let Job::Deliver(item, _) = job {
            ids.push(item.id);
        }
    }
    if !ids.is_empty() {
        let _ = ctx.acks.send(Ack::Returned { channel: ctx.channel.name.clone(), ids });
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

/// Sends one message (one event, or several as one grouped message), turning a panic inside
/// the channel into a permanent failure.
fn send_guarded(sender: &mut dyn Sender, events: &[AlertEvent]) -> Result<Receipt, SendError> {
    catch_unwind(AssertUnwindSafe(|| match events {
        [one] => sender.send(one),
        many => sender.send_group(many),
    }))
    .unwrap_or_else(|panic| {
        Err(SendError::permanent(format!("the channel panicked: {}", panic_text(&*panic))))
    })
}

fn work(
    ctx: &WorkerContext,
    rx: &Receiver<Job>,
    flags: &Flags,
    core: &mut WorkerCore,
    sender: &mut Option<Box<dyn Sender>>,
    remembered: &mut Vec<AlertEvent>,
) {
    let name = ctx.channel.name.as_str();
    loop {
        if flags.stop.load(Ordering::SeqCst) {
            core.stop();
        }
        if flags.drain.load(Ordering::SeqCst) {
            core.drain();
        }
        let now = ctx.clock.now();
        match core.next(now) {
            Step::Exit => return,
            Step::Build => match (ctx.factory)(&ctx.channel, ctx.timeout) {
                Ok(mut built) => {
                    if core.failures() > 0 {
                        log::info!(channel = name; "channel available again");
                    }
                    for event in remembered.drain(..) {
                        built.remember(&event);
                    }
                    core.built(ctx.clock.now(), Ok(built.refresh_every()));
                    core.set_capacity(built.group_capacity());
                    *sender = Some(built);
                }
                Err(e) => {
                    core.built(ctx.clock.now(), Err(()));
                    log::error!(
                        channel = name, kind = ctx.channel.kind.type_name(), retry_in_s = core.retry_in(ctx.clock.now());
                        "channel unavailable, its notifications wait in the outbox: {e}"
                    );
                }
            },
            Step::GiveUp(reason) => {
                if let Some(item) = core.front() {
                    log::error!(channel = name, key = item.event.key.as_str(); "giving up on a notification: {reason}");
                }
                if let Some(ack) = core.gave_up(reason) {
                    let _ = ctx.acks.send(ack);
                }
            }
            Step::Send(n) => {
                let Some(active) = sender.as_mut() else {
                    core.panicked(now);
                    continue;
                };
                let mut ids = Vec::with_capacity(n);
                let mut events = Vec::with_capacity(n);
                for item in core.batch(n) {
                    ctx.journal.attempt(item.id, item.crashed.saturating_add(1));
                    ids.push(item.id);
                    events.push(item.event.clone());
                }
                let Some(event) = events.first().cloned() else { continue };
                let result = send_guarded(active.as_mut(), &events);
                for id in &ids {
                    if result.is_ok() {
                        ctx.journal.done(*id);
                    } else {
                        ctx.journal.tried(*id);
                    }
                }
                let now = ctx.clock.now();
                match &result {
                    Ok(_) if core.failures() > 0 => {
                        log::info!(channel = name, failures = core.failures(); "channel accepts notifications again");
                    }
                    Ok(_) => {}
                    Err(SendError::Permanent { reason }) if ids.len() > 1 => log::warn!(
                        channel = name, items = ids.len();
                        "channel {name} refused a grouped message permanently; sending its {} notifications one by one: {reason}",
                        ids.len()
                    ),
                    Err(SendError::Permanent { reason }) => log::error!(
                        channel = name, key = event.key.as_str(), rule = event.rule.as_str();
                        "channel {name} refused a notification permanently, not retrying: {reason}"
                    ),
                    Err(SendError::Transient { reason, .. }) => log::warn!(
                        channel = name, failures = core.failures() + 1;
                        "delivery to {name} failed, will retry: {reason}"
                    ),
                }
                for ack in core.sent(now, ids.len(), &result) {
                    let _ = ctx.acks.send(ack);
                }
                if let Err(SendError::Transient { reason, .. }) = &result {
                    let _ = ctx
                        .acks
                        .send(Ack::Retrying { channel: name.to_string(), reason: reason.clone() });
                }
            }
            Step::Refresh => {
                if let Some(active) = sender.as_mut()
                    && let Err(e) = active.refresh()
                {
                    log::warn!(channel = name; "periodic re-send failed: {e}");
                }
                core.refreshed(ctx.clock.now());
            }
            Step::Wait(wait) => match rx.recv_timeout(wait) {
                Ok(job) => take(ctx, job, core, sender, remembered),
                Err(RecvTimeoutError::Disconnected) => core.stop(),
                Err(RecvTimeoutError::Timeout) => {}
            },
        }
        // Jobs that arrived meanwhile join the queue before the next decision.
        while let Ok(job) = rx.try_recv() {
            take(ctx, job, core, sender, remembered);
        }
    }
}

/// One job from the dispatcher.
fn take(
    ctx: &WorkerContext,
    job: Job,
    core: &mut WorkerCore,
    sender: &mut Option<Box<dyn Sender>>,
    remembered: &mut Vec<AlertEvent>,
) {
    match job {
        Job::Deliver(item, age) => core.push(item, ctx.clock.now() - age),
        Job::Remember(event) => match sender.as_mut() {
            Some(s) => s.remember(&event),
            None => remembered.push(event),
        },
        Job::Drain => core.drain(),
        Job::Stop => core.stop(),
    }
}

#[cfg(test)]
mod tests;
