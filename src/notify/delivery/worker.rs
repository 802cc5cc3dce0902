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
//! Not for: routing, persistence of the outbox, or anything the poll loop must wait on.

use super::clock::Clock;
use super::journal::Journal;
use super::outbox::{OutboxItem, lock};
use crate::config::{Channel, Delivery};
use crate::event::AlertEvent;
use crate::notify::{Receipt, SendError, Sender, build_sender};
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
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
    /// Send the item at the front of the queue.
    Send,
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
        }
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
        if let Some((_, born)) = self.queue.front() {
            let age = now - born;
            let limit = self.policy.give_up_after.as_secs_f64();
            if age > limit {
                return Step::GiveUp(format!(
                    "not delivered after {age:.0}s of trying ({} failures)",
                    self.failures
                ));
            }
            if due {
                return Step::Send;
            }
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
            wait = wait.min(self.next_attempt - now);
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

    /// The front item was sent with this result; returns what to report.
    pub(crate) fn sent(&mut self, now: f64, result: &Result<Receipt, SendError>) -> Option<Ack> {
        let (item, _) = self.queue.front()?;
        let (id, channel) = (item.id, item.channel.clone());
        match result {
            Ok(receipt) => {
                self.failures = 0;
                self.queue.pop_front();
                Some(Ack::Delivered { id, channel, answer: receipt.answer.clone() })
            }
            Err(SendError::Permanent { reason }) => {
                self.queue.pop_front();
                Some(Ack::Dropped { id, channel, reason: reason.clone(), gave_up: false })
            }
            Err(SendError::Transient { retry_after, .. }) => {
                if let Some((item, _)) = self.queue.front_mut() {
                    item.crashed = 0;
                }
                self.failed(now, *retry_after);
                None
            }
        }
    }

    /// The front item is given up.
    pub(crate) fn gave_up(&mut self, reason: String) -> Option<Ack> {
        let (item, _) = self.queue.pop_front()?;
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
    pub(crate) journal: Arc<Mutex<Journal>>,
    pub(crate) clock: Arc<dyn Clock>,
}

/// Starts a worker thread for `ctx.channel`.
pub(crate) fn spawn(ctx: WorkerContext, queue: usize) -> std::io::Result<Worker> {
    let (tx, rx) = mpsc::sync_channel(queue);
    let stop = Arc::new(AtomicBool::new(false));
    let channel = ctx.channel.clone();
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name(format!("deliver-{}", ctx.channel.name))
        .spawn(move || supervise(ctx, rx, flag))?;
    Ok(Worker { tx, stop, thread, channel })
}

impl Worker {
    /// Asks the worker to stop before its next attempt; never blocks.
    pub(crate) fn retire(&self) {
        self.stop.store(true, Ordering::SeqCst);
        match self.tx.try_send(Job::Stop) {
            Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// Runs the worker; a panic restarts it with the same queue after a backoff.
fn supervise(ctx: WorkerContext, rx: Receiver<Job>, stop: Arc<AtomicBool>) {
    let mut core = WorkerCore::new(ctx.policy.clone(), &ctx.channel.name);
    let mut sender: Option<Box<dyn Sender>> = None;
    let mut remembered: Vec<AlertEvent> = Vec::new();
    loop {
        let run = catch_unwind(AssertUnwindSafe(|| {
            work(&ctx, &rx, &stop, &mut core, &mut sender, &mut remembered)
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

/// Sends one event, turning a panic inside the channel into a permanent failure.
fn send_guarded(sender: &mut dyn Sender, event: &AlertEvent) -> Result<Receipt, SendError> {
    catch_unwind(AssertUnwindSafe(|| sender.send(event))).unwrap_or_else(|panic| {
        Err(SendError::permanent(format!("the channel panicked: {}", panic_text(&*panic))))
    })
}

fn work(
    ctx: &WorkerContext,
    rx: &Receiver<Job>,
    stop: &AtomicBool,
    core: &mut WorkerCore,
    sender: &mut Option<Box<dyn Sender>>,
    remembered: &mut Vec<AlertEvent>,
) {
    let name = ctx.channel.name.as_str();
    loop {
        if stop.load(Ordering::SeqCst) {
            core.stop();
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
            Step::Send => {
                let Some(active) = sender.as_mut() else {
                    core.panicked(now);
                    continue;
                };
                let Some(item) = core.front() else { continue };
                let (id, event) = (item.id, item.event.clone());
                lock(&ctx.journal).attempt(id, item.crashed.saturating_add(1));
                let result = send_guarded(active.as_mut(), &event);
                {
                    let mut journal = lock(&ctx.journal);
                    if result.is_ok() { journal.done(id) } else { journal.tried(id) }
                }
                let now = ctx.clock.now();
                match &result {
                    Ok(_) if core.failures() > 0 => {
                        log::info!(channel = name, failures = core.failures(); "channel accepts notifications again");
                    }
                    Ok(_) => {}
                    Err(SendError::Permanent { reason }) => log::error!(
                        channel = name, key = event.key.as_str(), rule = event.rule.as_str();
                        "channel {name} refused a notification permanently, not retrying: {reason}"
                    ),
                    Err(SendError::Transient { reason, .. }) => log::warn!(
                        channel = name, failures = core.failures() + 1;
                        "delivery to {name} failed, will retry: {reason}"
                    ),
                }
                if let Some(ack) = core.sent(now, &result) {
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
                Ok(Job::Deliver(item, age)) => core.push(item, ctx.clock.now() - age),
                Ok(Job::Remember(event)) => match sender.as_mut() {
                    Some(s) => s.remember(&event),
                    None => remembered.push(event),
                },
                Ok(Job::Drain) => core.drain(),
                Ok(Job::Stop) | Err(RecvTimeoutError::Disconnected) => core.stop(),
                Err(RecvTimeoutError::Timeout) => {}
            },
        }
        // Jobs that arrived meanwhile join the queue before the next decision.
        while let Ok(job) = rx.try_recv() {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Severity;

    fn policy() -> Delivery {
        Delivery {
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(60),
            give_up_after: Duration::from_secs(100),
            ..Delivery::default()
        }
    }

    fn item(id: u64) -> OutboxItem {
        OutboxItem::new(id, "c", AlertEvent::test_event("h", Severity::Warning, 1.0), 0.0)
    }

    fn receipt() -> Result<Receipt, SendError> {
        Ok(Receipt { answer: "ok".into() })
    }

    #[test]
    fn builds_then_sends_in_order_and_backs_off_on_transient_failures() {
        let mut core = WorkerCore::new(policy(), "t");
        core.push(item(1), 0.0);
        core.push(item(2), 0.0);
        assert_eq!(core.next(0.0), Step::Build);
        core.built(0.0, Ok(None));
        assert_eq!(core.next(0.0), Step::Send);
        assert!(core.sent(0.0, &Err(SendError::transient("down"))).is_none());
        // Equal jitter: the first retry waits between 1 and 2 s.
        match core.next(0.5) {
            Step::Wait(d) => assert!(d.as_secs_f64() >= 0.5 && d.as_secs_f64() <= 1.5, "{d:?}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(core.next(2.0), Step::Send);
        assert_eq!(core.front().unwrap().id, 1, "order holds across retries");
        assert!(matches!(core.sent(2.0, &receipt()), Some(Ack::Delivered { id: 1, .. })));
        assert_eq!(core.next(2.0), Step::Send, "no wait after a success");
        assert!(matches!(core.sent(2.0, &receipt()), Some(Ack::Delivered { id: 2, .. })));
        assert!(matches!(core.next(2.0), Step::Wait(_)));
    }

    #[test]
    fn permanent_failures_drop_and_old_items_are_given_up_on_monotonic_age() {
        let mut core = WorkerCore::new(policy(), "t");
        core.built(0.0, Ok(None));
        core.push(item(1), 0.0);
        core.push(item(2), -50.0); // adopted from the state file, 50 s old already
        assert_eq!(core.next(0.0), Step::Send);
        let ack = core.sent(0.0, &Err(SendError::permanent("bad payload")));
        assert!(matches!(ack, Some(Ack::Dropped { id: 1, gave_up: false, .. })));
        assert_eq!(core.next(10.0), Step::Send);
        assert!(core.sent(10.0, &Err(SendError::transient("down"))).is_none());
        // 100 s after it entered the outbox, however the wall clock moved.
        let Step::GiveUp(reason) = core.next(51.0) else { panic!("expected a give-up") };
        assert!(reason.contains("101s"), "{reason}");
        assert!(matches!(core.gave_up(reason), Some(Ack::Dropped { id: 2, gave_up: true, .. })));
    }

    #[test]
    fn a_channel_that_cannot_be_built_is_rebuilt_with_backoff_and_a_panic_restarts_it() {
        let mut core = WorkerCore::new(policy(), "t");
        core.push(item(1), 0.0);
        assert_eq!(core.next(0.0), Step::Build);
        core.built(0.0, Err(()));
        assert!(matches!(core.next(0.1), Step::Wait(_)));
        assert_eq!(core.next(2.0), Step::Build);
        core.built(2.0, Ok(None));
        core.panicked(2.0);
        assert!(matches!(core.next(2.1), Step::Wait(_)), "backs off after a panic");
        assert_eq!(core.next(100.0), Step::Build);
        assert_eq!(core.front().unwrap().id, 1, "the panic lost nothing");
    }

    #[test]
    fn drain_attempts_once_then_exits_and_refresh_runs_on_schedule() {
        let mut core = WorkerCore::new(policy(), "t");
        core.built(0.0, Ok(Some(Duration::from_secs(60))));
        assert!(matches!(core.next(30.0), Step::Wait(d) if d == Duration::from_secs(30)));
        assert_eq!(core.next(60.0), Step::Refresh);
        core.refreshed(60.0);
        core.push(item(1), 60.0);
        core.drain();
        assert_eq!(core.next(60.0), Step::Send);
        assert!(core.sent(60.0, &Err(SendError::transient("down"))).is_none());
        assert_eq!(core.next(60.0), Step::Exit);
        assert_eq!(core.take_queue(), vec![1], "the unsent item goes back");
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

    /// A channel that fails in every way a real one can, once each.
    struct Flaky {
        sent: Arc<Mutex<Vec<String>>>,
        /// Shared by every rebuilt sender, so each failure happens once.
        calls: Arc<std::sync::atomic::AtomicU32>,
        refreshes: Arc<std::sync::atomic::AtomicU32>,
    }

    impl Sender for Flaky {
        fn render(&self, _: &AlertEvent) -> crate::notify::Rendered {
            crate::notify::Rendered { content_type: "text/plain".into(), body: String::new() }
        }
        fn send(&mut self, event: &AlertEvent) -> Result<Receipt, SendError> {
            if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
                return Err(SendError::transient("first attempt fails"));
            }
            self.sent.lock().unwrap().push(event.key.clone());
            Ok(Receipt { answer: "ok".into() })
        }
        fn refresh_every(&self) -> Option<Duration> {
            Some(Duration::from_millis(5))
        }
        fn refresh(&mut self) -> Result<(), SendError> {
            if self.refreshes.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("boom in refresh");
            }
            Ok(())
        }
    }

    #[test]
    fn a_supervised_worker_survives_panics_outside_send_and_loses_nothing() {
        let dir = std::env::temp_dir().join(format!("hostwatch-worker-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let text =
            r#"{"rules": [], "channels": {"fake": {"type": "exec", "command": ["/bin/true"]}}}"#;
        let config = crate::config::load_str(text, "t.json", &|_| None).unwrap();
        let channel = config.channels["fake"].clone();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let builds = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let refreshes = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let factory: SenderFactory = {
            let (sent, builds) = (sent.clone(), builds.clone());
            let (calls, refreshes) = (calls.clone(), refreshes.clone());
            Arc::new(move |_: &Channel, _: Duration| -> Result<Box<dyn Sender>, String> {
                if builds.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("boom in build");
                }
                Ok(Box::new(Flaky {
                    sent: sent.clone(),
                    calls: calls.clone(),
                    refreshes: refreshes.clone(),
                }))
            })
        };
        let (acks, acks_rx) = mpsc::channel();
        let journal = Arc::new(Mutex::new(Journal::open(&dir)));
        let policy = Delivery {
            retry_base: Duration::from_millis(10),
            retry_max: Duration::from_millis(20),
            ..Delivery::default()
        };
        let ctx = WorkerContext {
            channel,
            factory,
            timeout: Duration::from_secs(1),
            policy,
            acks,
            journal: journal.clone(),
            clock: Arc::new(super::super::clock::MonoClock),
        };
        let worker = spawn(ctx, 16).unwrap();
        let (a, b) = (item(1), item(2));
        let keys = [a.event.key.clone(), b.event.key.clone()];
        worker.tx.send(Job::Deliver(a, 0.0)).unwrap();
        worker.tx.send(Job::Deliver(b, 0.0)).unwrap();
        let mut delivered = Vec::new();
        let mut retried = 0;
        while delivered.len() < 2 {
            match acks_rx.recv_timeout(Duration::from_secs(20)).expect("the worker reports") {
                Ack::Delivered { id, .. } => delivered.push(id),
                Ack::Retrying { .. } => retried += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(delivered, vec![1, 2], "in order, nothing lost");
        assert_eq!(retried, 1);
        // Two items with the same test key: both arrive.
        assert_eq!(sent.lock().unwrap().len(), 2);
        assert_eq!(sent.lock().unwrap()[0], keys[0]);
        assert!(builds.load(Ordering::SeqCst) >= 2, "rebuilt after the panic in build");
        // The refresh panic restarts the worker too; it goes on delivering afterwards.
        std::thread::sleep(Duration::from_millis(50));
        assert!(refreshes.load(Ordering::SeqCst) >= 2, "refreshed again after the panic");
        worker.tx.send(Job::Deliver(item(3), 0.0)).unwrap();
        loop {
            match acks_rx.recv_timeout(Duration::from_secs(20)).expect("the worker reports") {
                Ack::Delivered { id: 3, .. } => break,
                Ack::Retrying { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        worker.retire();
        worker.thread.join().unwrap();
        let records = std::fs::read_to_string(super::super::journal::journal_path(&dir)).unwrap();
        let attempts = records.lines().filter(|l| l.contains("attempt")).count();
        assert!(attempts >= 4, "every attempt was marked before it started:\n{records}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
