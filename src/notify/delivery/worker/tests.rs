//! Tests of the worker: the state machine over a hand-moved clock, and a supervised thread
//! that survives panics outside `send`.

use super::*;
use crate::config::Severity;
use crate::config::channels::Grouping;
use std::sync::Mutex;

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

/// A firing alert notification (test events never share a message).
fn alert(id: u64, severity: Severity) -> OutboxItem {
    let mut event = AlertEvent::test_event("h", severity, 1.0);
    event.test = false;
    event.event = EventKind::Firing;
    event.key = format!("r:{id}:1:1");
    OutboxItem::new(id, "c", event, 0.0)
}

fn grouped(wait: u64, interval: u64, bypass_critical: bool, capacity: usize) -> WorkerCore {
    let mut core = WorkerCore::new(policy(), "g");
    core.set_grouping(Some(Grouping {
        wait: Duration::from_secs(wait),
        interval: Duration::from_secs(interval),
        bypass_critical,
    }));
    core.built(0.0, Ok(None));
    core.set_capacity(capacity);
    core
}

fn ids(acks: &[Ack]) -> Vec<u64> {
    acks.iter()
        .map(|a| match a {
            Ack::Delivered { id, .. } | Ack::Dropped { id, .. } => *id,
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

#[test]
fn grouping_waits_for_the_window_then_sends_everything_queued_as_one_message() {
    let mut core = grouped(30, 60, false, 40);
    core.push(alert(1, Severity::Warning), 0.0);
    assert_eq!(core.next(0.0), Step::Wait(Duration::from_secs(30)));
    core.push(alert(2, Severity::Warning), 10.0);
    core.push(alert(3, Severity::Critical), 29.0);
    assert_eq!(core.next(29.5), Step::Wait(Duration::from_millis(500)));
    assert_eq!(core.next(30.0), Step::Send(3));
    assert_eq!(ids(&core.sent(30.0, 3, &receipt())), [1, 2, 3]);
    // The next group waits its own group_wait and the group_interval since the last message.
    core.push(alert(4, Severity::Warning), 31.0);
    assert_eq!(core.next(61.0), Step::Wait(Duration::from_secs(29)));
    assert_eq!(core.next(90.0), Step::Send(1));
}

#[test]
fn a_critical_bypasses_the_wait_and_takes_the_waiting_ones_along() {
    let mut core = grouped(30, 60, true, 40);
    core.push(alert(1, Severity::Warning), 0.0);
    assert!(matches!(core.next(1.0), Step::Wait(_)));
    core.push(alert(2, Severity::Critical), 2.0);
    assert_eq!(core.next(2.0), Step::Send(2));
    // Without the bypass, the same critical waits with the others.
    let mut core = grouped(30, 60, false, 40);
    core.push(alert(1, Severity::Critical), 0.0);
    assert!(matches!(core.next(1.0), Step::Wait(_)));
}

#[test]
fn a_group_is_cut_at_the_channel_capacity_and_a_full_one_leaves_at_once() {
    let mut core = grouped(30, 60, false, 4);
    for id in 1..=6 {
        core.push(alert(id, Severity::Warning), 0.0);
    }
    assert_eq!(core.next(0.0), Step::Send(4));
    assert_eq!(ids(&core.sent(0.0, 4, &receipt())), [1, 2, 3, 4]);
    // The rest is not full: it waits the interval since the message that just left.
    assert_eq!(core.next(30.0), Step::Wait(Duration::from_secs(30)));
    assert_eq!(core.next(60.0), Step::Send(2));
}

#[test]
fn reports_and_tests_never_share_a_message_and_order_holds() {
    let mut core = grouped(5, 5, false, 40);
    core.push(alert(1, Severity::Warning), 0.0);
    core.push(item(2), 0.0); // a test notification
    core.push(alert(3, Severity::Warning), 0.0);
    assert_eq!(core.next(5.0), Step::Send(1));
    core.sent(5.0, 1, &receipt());
    assert_eq!(core.next(5.0), Step::Send(1), "a test notification leaves alone, at once");
    core.sent(5.0, 1, &receipt());
    assert_eq!(core.next(10.0), Step::Send(1));
}

#[test]
fn a_failed_group_is_retried_whole_with_what_joined_it_and_acks_every_item() {
    let mut core = grouped(1, 1, false, 40);
    core.push(alert(1, Severity::Warning), 0.0);
    core.push(alert(2, Severity::Warning), 0.0);
    assert_eq!(core.next(1.0), Step::Send(2));
    assert!(core.sent(1.0, 2, &Err(SendError::transient("down"))).is_empty());
    core.push(alert(3, Severity::Warning), 1.5);
    assert!(matches!(core.next(1.5), Step::Wait(_)));
    // The retry carries the same two (the same group key); the newcomer waits.
    assert_eq!(core.next(10.0), Step::Send(2));
    assert_eq!(ids(&core.sent(10.0, 2, &receipt())), [1, 2]);
    assert!(matches!(core.next(10.0), Step::Wait(_)), "3 waits for its own group");
    assert_eq!(core.next(11.0), Step::Send(1));
}

#[test]
fn a_group_refused_permanently_is_sent_again_one_by_one_and_only_the_bad_one_drops() {
    let mut core = grouped(1, 1, false, 40);
    for id in 1..=3 {
        core.push(alert(id, Severity::Warning), 0.0);
    }
    assert_eq!(core.next(1.0), Step::Send(3));
    assert!(core.sent(1.0, 3, &Err(SendError::permanent("invalid_blocks"))).is_empty());
    assert_eq!(core.next(1.0), Step::Send(1), "no backoff: one by one at once");
    assert_eq!(ids(&core.sent(1.0, 1, &receipt())), [1]);
    assert_eq!(core.next(1.0), Step::Send(1));
    let acks = core.sent(1.0, 1, &Err(SendError::permanent("bad payload")));
    assert!(matches!(acks.as_slice(), [Ack::Dropped { id: 2, gave_up: false, .. }]));
    assert_eq!(core.next(1.0), Step::Send(1));
    assert_eq!(ids(&core.sent(1.0, 1, &receipt())), [3]);
    // Then grouping resumes.
    core.push(alert(4, Severity::Warning), 1.0);
    core.push(alert(5, Severity::Warning), 1.0);
    assert_eq!(core.next(2.0), Step::Send(2));
}

#[test]
fn an_item_in_flight_during_a_crash_goes_alone_so_the_guard_sets_aside_only_it() {
    let mut core = grouped(1, 1, false, 40);
    let mut crashed = alert(1, Severity::Warning);
    crashed.crashed = 2;
    core.push(alert(9, Severity::Warning), 0.0);
    core.push(crashed, 0.0);
    core.push(alert(2, Severity::Warning), 0.0);
    assert_eq!(core.next(1.0), Step::Send(1), "the group stops before the crashed item");
    core.sent(1.0, 1, &receipt());
    assert_eq!(core.next(2.0), Step::Send(1), "the crashed item alone");
    core.sent(2.0, 1, &receipt());
    assert_eq!(core.next(3.0), Step::Send(1));
}

#[test]
fn giving_up_the_front_of_a_pinned_group_keeps_the_rest_together() {
    let mut core = grouped(1, 1, false, 40);
    core.push(alert(1, Severity::Warning), -98.5);
    core.push(alert(2, Severity::Warning), 0.0);
    core.push(alert(3, Severity::Warning), 0.0);
    assert_eq!(core.next(1.0), Step::Send(3));
    core.sent(1.0, 3, &Err(SendError::transient("down")));
    let Step::GiveUp(_) = core.next(5.0) else { panic!("the oldest is given up") };
    assert!(matches!(core.gave_up("old".into()), Some(Ack::Dropped { id: 1, gave_up: true, .. })));
    assert_eq!(core.next(10.0), Step::Send(2));
}

#[test]
fn draining_sends_what_waits_for_its_group_at_once() {
    let mut core = grouped(300, 300, false, 40);
    core.push(alert(1, Severity::Warning), 0.0);
    core.push(alert(2, Severity::Warning), 0.0);
    core.drain();
    assert_eq!(core.next(0.0), Step::Send(2));
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
    assert_eq!(core.next(0.0), Step::Send(1));
    assert!(core.sent(0.0, 1, &Err(SendError::transient("down"))).is_empty());
    // Equal jitter: the first retry waits between 1 and 2 s.
    match core.next(0.5) {
        Step::Wait(d) => assert!(d.as_secs_f64() >= 0.5 && d.as_secs_f64() <= 1.5, "{d:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(core.next(2.0), Step::Send(1));
    assert_eq!(core.front().unwrap().id, 1, "order holds across retries");
    assert!(matches!(core.sent(2.0, 1, &receipt()).as_slice(), [Ack::Delivered { id: 1, .. }]));
    assert_eq!(core.next(2.0), Step::Send(1), "no wait after a success");
    assert!(matches!(core.sent(2.0, 1, &receipt()).as_slice(), [Ack::Delivered { id: 2, .. }]));
    assert!(matches!(core.next(2.0), Step::Wait(_)));
}

#[test]
fn permanent_failures_drop_and_old_items_are_given_up_on_monotonic_age() {
    let mut core = WorkerCore::new(policy(), "t");
    core.built(0.0, Ok(None));
    core.push(item(1), 0.0);
    core.push(item(2), -50.0); // adopted from the state file, 50 s old already
    assert_eq!(core.next(0.0), Step::Send(1));
    let ack = core.sent(0.0, 1, &Err(SendError::permanent("bad payload")));
    assert!(matches!(ack.as_slice(), [Ack::Dropped { id: 1, gave_up: false, .. }]));
    assert_eq!(core.next(10.0), Step::Send(1));
    assert!(core.sent(10.0, 1, &Err(SendError::transient("down"))).is_empty());
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
    assert_eq!(core.next(60.0), Step::Send(1));
    assert!(core.sent(60.0, 1, &Err(SendError::transient("down"))).is_empty());
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
    assert_eq!(backoff(&policy, 1, Some(Duration::from_secs(30)), &mut j), Duration::from_secs(30));
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
    let text = r#"{"rules": [], "channels": {"fake": {"type": "exec", "command": ["/bin/true"]}}}"#;
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
    let journal = Arc::new(Journal::open(&dir));
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
        clock: Arc::new(crate::notify::delivery::clock::MonoClock),
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
    let records =
        std::fs::read_to_string(crate::notify::delivery::journal::journal_path(&dir)).unwrap();
    let attempts = records.lines().filter(|l| l.contains("attempt")).count();
    assert!(attempts >= 4, "every attempt was marked before it started:\n{records}");
    let _ = std::fs::remove_dir_all(&dir);
}
