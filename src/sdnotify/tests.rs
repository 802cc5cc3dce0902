//! Tests of the notification protocol against real unix datagram sockets (a path in a temp
//! dir, and an abstract name), of which environment turns the watchdog on (and how often it
//! may be pinged), of a `READY=1` sent again after a failed send (no socket yet, a full
//! queue), and of a reload before the first tick.

use super::*;
use std::path::PathBuf;

fn temp_socket(name: &str) -> (PathBuf, UnixDatagram) {
    let dir =
        std::env::temp_dir().join(format!("hostwatch-sdnotify-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notify.sock");
    let listener = UnixDatagram::bind(&path).unwrap();
    listener.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    (path, listener)
}

fn recv(listener: &UnixDatagram) -> String {
    let mut buf = [0u8; 1024];
    let n = listener.recv(&mut buf).expect("a datagram");
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

fn nothing_waiting(listener: &UnixDatagram) -> bool {
    listener.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1024];
    let r = listener.recv(&mut buf);
    listener.set_nonblocking(false).unwrap();
    matches!(r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// True once `READY=1` reached the socket.
fn is_ready(sd: &SdNotify) -> bool {
    sd.inner.as_ref().is_some_and(|i| i.ready)
}

const SUMMARY: Summary = Summary { firing: 2, pending: 1, series: 47 };

#[test]
fn without_notify_socket_nothing_is_set_up() {
    let mut sd = SdNotify::from_vars(None, Some("1000000"), None, 1);
    assert!(sd.inner.is_none());
    assert_eq!(sd.next_ping(), None);
    sd.tick_done(SUMMARY);
    sd.stopping(Duration::from_secs(1));
    assert!(SdNotify::from_vars(Some(""), None, None, 1).inner.is_none());
}

#[test]
fn a_relative_or_unknown_socket_name_is_refused_not_fatal() {
    assert!(SdNotify::from_vars(Some("notify.sock"), None, None, 1).inner.is_none());
    assert!(SdNotify::from_vars(Some("vsock:2:1234"), None, None, 1).inner.is_none());
}

#[test]
fn the_watchdog_is_ours_only_when_watchdog_pid_is_unset_or_our_pid() {
    let s = Some("3000000");
    assert_eq!(watchdog_period(s, None, 42), Some(Duration::from_secs(3)));
    assert_eq!(watchdog_period(s, Some(""), 42), Some(Duration::from_secs(3)));
    assert_eq!(watchdog_period(s, Some("42"), 42), Some(Duration::from_secs(3)));
    assert_eq!(watchdog_period(s, Some("41"), 42), None);
    assert_eq!(watchdog_period(s, Some("nope"), 42), None);
    assert_eq!(watchdog_period(Some("0"), None, 42), None);
    assert_eq!(watchdog_period(Some("-5"), None, 42), None);
    assert_eq!(watchdog_period(None, None, 42), None);
}

#[test]
fn the_daemon_lifecycle_reaches_a_path_socket() {
    let (path, listener) = temp_socket("path");
    let mut sd = SdNotify::from_vars(path.to_str(), Some("2000000"), None, std::process::id());
    assert_eq!(sd.ping_every(), Some(Duration::from_secs(1)));
    sd.starting(Duration::from_secs(5), Duration::from_secs(30));
    assert_eq!(
        recv(&listener),
        "EXTEND_TIMEOUT_USEC=35000000\nSTATUS=started; the first tick is due in 5s"
    );
    sd.tick_done(SUMMARY);
    assert_eq!(recv(&listener), "READY=1\nWATCHDOG=1\nSTATUS=2 firing, 1 pending, 47 series");
    // The same numbers: only the ping.
    sd.tick_done(SUMMARY);
    assert_eq!(recv(&listener), "WATCHDOG=1");
    sd.tick_done(Summary { firing: 0, ..SUMMARY });
    assert_eq!(recv(&listener), "WATCHDOG=1\nSTATUS=0 firing, 1 pending, 47 series");

    sd.reloading();
    let msg = recv(&listener);
    let mut lines = msg.lines();
    assert_eq!(lines.next(), Some("RELOADING=1"));
    let usec: u64 = lines.next().unwrap().strip_prefix("MONOTONIC_USEC=").unwrap().parse().unwrap();
    assert!(monotonic_usec().abs_diff(usec) < 5_000_000, "{usec} is CLOCK_MONOTONIC");
    assert_eq!(lines.next(), Some("STATUS=reloading the config"));

    sd.reloaded(false, Duration::ZERO);
    assert_eq!(
        recv(&listener),
        "READY=1\nWATCHDOG=1\nSTATUS=0 firing, 1 pending, 47 series; the last reload failed, \
         running config kept"
    );
    sd.reloaded(true, Duration::ZERO);
    assert_eq!(recv(&listener), "READY=1\nWATCHDOG=1\nSTATUS=0 firing, 1 pending, 47 series");
    sd.stopping(Duration::from_millis(12_500));
    assert_eq!(
        recv(&listener),
        "STOPPING=1\nEXTEND_TIMEOUT_USEC=12500000\nSTATUS=stopping: saving the state"
    );
    assert!(nothing_waiting(&listener));
}

#[test]
fn without_a_watchdog_a_tick_with_the_same_numbers_sends_nothing() {
    let (path, listener) = temp_socket("nowatchdog");
    let mut sd = SdNotify::from_vars(path.to_str(), Some("2000000"), Some("1"), 2);
    assert_eq!(sd.next_ping(), None, "WATCHDOG_PID names another process");
    sd.tick_done(SUMMARY);
    assert_eq!(recv(&listener), "READY=1\nSTATUS=2 firing, 1 pending, 47 series");
    sd.tick_done(SUMMARY);
    sd.ping_if_due(Instant::now() + Duration::from_secs(3600));
    assert!(nothing_waiting(&listener));
}

#[test]
fn pings_between_ticks_come_when_due_only() {
    let (path, listener) = temp_socket("due");
    let mut sd = SdNotify::from_vars(path.to_str(), Some("400000"), None, std::process::id());
    let due = sd.next_ping().unwrap();
    sd.ping_if_due(due - Duration::from_millis(5));
    assert!(nothing_waiting(&listener), "not due yet");
    sd.ping_if_due(due);
    assert_eq!(recv(&listener), "WATCHDOG=1");
    assert_eq!(sd.next_ping(), Some(due + Duration::from_millis(200)));
}

#[test]
fn an_abstract_socket_is_reached() {
    let name = format!("hostwatch-sdnotify-test-{}", std::process::id());
    let listener = UnixDatagram::bind_addr(&abstract_addr(name.as_bytes()).unwrap()).unwrap();
    listener.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut sd = SdNotify::from_vars(Some(&format!("@{name}")), None, None, 1);
    sd.tick_done(SUMMARY);
    assert_eq!(recv(&listener), "READY=1\nSTATUS=2 firing, 1 pending, 47 series");
}

#[test]
fn a_socket_nobody_listens_on_is_not_fatal() {
    let (path, listener) = temp_socket("gone");
    drop(listener);
    std::fs::remove_file(&path).unwrap();
    let mut sd = SdNotify::from_vars(path.to_str(), Some("1000000"), None, std::process::id());
    for _ in 0..3 {
        sd.tick_done(SUMMARY);
    }
    assert!(sd.inner.as_ref().unwrap().failure_logged);
}

#[test]
fn steady_state_messages_reuse_their_buffers() {
    let (path, listener) = temp_socket("reuse");
    let mut sd = SdNotify::from_vars(path.to_str(), Some("1000000"), None, std::process::id());
    let buffers = |sd: &SdNotify| {
        let i = sd.inner.as_ref().unwrap();
        (i.msg.as_ptr(), i.msg.capacity(), i.last_status.as_ptr(), i.last_status.capacity())
    };
    let before = buffers(&sd);
    for k in 0..100 {
        sd.tick_done(Summary { firing: k % 3, pending: k, series: usize::MAX - k });
        sd.ping_if_due(Instant::now() + Duration::from_secs(1));
        recv(&listener);
        recv(&listener);
    }
    assert_eq!(buffers(&sd), before, "no buffer grew or moved");
}

#[test]
fn a_ready_that_could_not_be_sent_is_sent_again_once_the_socket_is_there() {
    let (path, listener) = temp_socket("late");
    drop(listener);
    std::fs::remove_file(&path).unwrap();
    let mut sd = SdNotify::from_vars(path.to_str(), None, None, std::process::id());
    assert_eq!(sd.next_ping(), None, "no watchdog, nothing pending");
    sd.tick_done(SUMMARY);
    assert!(!is_ready(&sd), "the send failed (ENOENT): not ready");
    let retry = sd.next_ping().expect("the loop is asked to wake for a retry");
    sd.ping_if_due(retry - Duration::from_millis(1));
    let listener = UnixDatagram::bind(&path).unwrap();
    listener.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(nothing_waiting(&listener), "not due yet");
    sd.ping_if_due(retry);
    assert_eq!(recv(&listener), "READY=1\nSTATUS=2 firing, 1 pending, 47 series");
    assert!(is_ready(&sd));
    assert_eq!(sd.next_ping(), None, "nothing left to retry");
    sd.tick_done(SUMMARY);
    sd.ping_if_due(Instant::now() + Duration::from_secs(3600));
    assert!(nothing_waiting(&listener), "READY=1 once");
}

#[test]
fn a_ready_dropped_by_a_full_queue_rides_on_the_next_ping_or_tick() {
    let (path, listener) = temp_socket("full");
    let mut sd = SdNotify::from_vars(path.to_str(), Some("2000000"), None, std::process::id());
    // Fill the listener's queue from another socket until the kernel says EAGAIN.
    let filler = UnixDatagram::unbound().unwrap();
    filler.set_nonblocking(true).unwrap();
    let mut filled = false;
    for _ in 0..1_000_000 {
        if let Err(e) = filler.send_to(b"x", &path) {
            assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "{e}");
            filled = true;
            break;
        }
    }
    assert!(filled, "the queue never filled");
    sd.tick_done(SUMMARY);
    assert!(!is_ready(&sd), "EAGAIN: not ready");
    // Empty the queue (the filler's datagrams only).
    listener.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1024];
    while let Ok(n) = listener.recv(&mut buf) {
        assert_eq!(&buf[..n], b"x", "nothing of ours got through");
    }
    listener.set_nonblocking(false).unwrap();
    // The next tick says it, with the status line the dropped message had.
    sd.tick_done(SUMMARY);
    assert_eq!(recv(&listener), "READY=1\nWATCHDOG=1\nSTATUS=2 firing, 1 pending, 47 series");
    assert!(is_ready(&sd));
    sd.tick_done(SUMMARY);
    assert_eq!(recv(&listener), "WATCHDOG=1", "ready once");
}

#[test]
fn a_reload_before_the_first_tick_says_neither_reloading_nor_ready() {
    let (path, listener) = temp_socket("early");
    let mut sd = SdNotify::from_vars(path.to_str(), None, None, std::process::id());
    sd.starting(Duration::from_secs(5), Duration::from_secs(30));
    recv(&listener);
    sd.reloading();
    assert_eq!(recv(&listener), "STATUS=reloading the config");
    sd.reloaded(false, Duration::from_secs(3));
    assert_eq!(
        recv(&listener),
        "EXTEND_TIMEOUT_USEC=33000000\nSTATUS=started; the first tick is due in 3s"
    );
    assert!(!is_ready(&sd));
    assert!(nothing_waiting(&listener));
    sd.tick_done(SUMMARY);
    assert_eq!(
        recv(&listener),
        "READY=1\nSTATUS=2 firing, 1 pending, 47 series; the last reload failed, running \
         config kept"
    );
    // Once ready, a reload is one again.
    sd.reloading();
    assert!(recv(&listener).starts_with("RELOADING=1\nMONOTONIC_USEC="));
    sd.reloaded(true, Duration::ZERO);
    assert_eq!(recv(&listener), "READY=1\nSTATUS=2 firing, 1 pending, 47 series");
}

#[test]
fn a_tiny_watchdog_period_is_pinged_every_100_ms_not_in_a_spin() {
    let (path, _listener) = temp_socket("tiny");
    let every = |usec: &str| {
        SdNotify::from_vars(path.to_str(), Some(usec), None, std::process::id()).ping_every()
    };
    assert_eq!(every("1000"), Some(MIN_PING_EVERY), "WatchdogSec=1ms");
    assert_eq!(every("1"), Some(MIN_PING_EVERY));
    assert_eq!(every("150000"), Some(MIN_PING_EVERY));
    assert_eq!(every("200000"), Some(Duration::from_millis(100)));
    assert_eq!(every("400000"), Some(Duration::from_millis(200)));
}
