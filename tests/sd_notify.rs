//! `hostwatch run` speaks systemd's notification protocol to a real unix datagram socket
//! given as `NOTIFY_SOCKET` (a path in a temp dir, and an abstract name): `READY=1` after the
//! first completed tick and not before (a SIGHUP during the first interval neither says
//! `RELOADING=1` nor brings `READY=1` forward), `WATCHDOG=1` per tick, a `STATUS=` line with
//! the firing and series counts, `RELOADING=1`/`READY=1` around SIGHUP, `STOPPING=1` and exit
//! 0 on SIGTERM. The pings come from the loop only: the stall test holds a tick (test builds'
//! `HOSTWATCH_TEST_STALL_FILE`, which says when the stall began) and the pings stop. Pings
//! between ticks reach an abstract socket. `hostwatch once` sends nothing. No assertion here
//! is on how long something took: each waits for an event, under a generous limit.

mod common;

use common::daemon::Daemon;
use common::{tempdir, write};
use std::ffi::OsStr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// One rule that fires at the first tick (memory is always ≥ 0 % used); no channels.
fn config(dir: &Path) -> PathBuf {
    config_every(dir, "1s")
}

fn config_every(dir: &Path, interval: &str) -> PathBuf {
    let state = dir.join("state");
    write(
        dir,
        "config.json",
        &format!(
            r#"{{"host": "sd-test", "interval": "{interval}", "state_dir": "{}",
                 "rules": [{{"name": "mem_any", "metric": "mem.used_percent", "warn": ">= 0"}}]}}"#,
            state.display()
        ),
    )
}

/// Waits (bounded) until `path` exists.
fn wait_for_file(path: &Path, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// `<stall>.stalled`: the marker a test build's stalled tick creates.
fn stall_marker(stall: &Path) -> PathBuf {
    let mut name = stall.as_os_str().to_owned();
    name.push(".stalled");
    PathBuf::from(name)
}

fn is_ping(message: &str) -> bool {
    message.lines().any(|l| l == "WATCHDOG=1")
}

/// The datagrams a socket receives, each with the time it arrived, read on a thread.
struct Listener {
    rx: Receiver<(Instant, String)>,
}

impl Listener {
    fn new(socket: UnixDatagram) -> Listener {
        socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match socket.recv(&mut buf) {
                    Ok(n) => {
                        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                        if tx.send((Instant::now(), text)).is_err() {
                            return;
                        }
                    }
                    // A timeout: is anyone still listening?
                    Err(_) => {
                        if tx.send((Instant::now(), String::new())).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Listener { rx }
    }

    /// The next datagram within `limit`.
    fn next(&self, limit: Duration) -> Option<(Instant, String)> {
        let end = Instant::now() + limit;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.rx.recv_timeout(left) {
                Ok((_, m)) if m.is_empty() => {}
                Ok(got) => return Some(got),
                Err(_) => return None,
            }
        }
        None
    }

    /// The first datagram within `limit` that has the line `line`.
    fn until(&self, limit: Duration, line: &str) -> Option<(Instant, String)> {
        let end = Instant::now() + limit;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            let got = self.next(left)?;
            if got.1.lines().any(|l| l == line) {
                return Some(got);
            }
        }
        None
    }

    /// Every datagram arriving within `span`.
    fn during(&self, span: Duration) -> Vec<(Instant, String)> {
        let end = Instant::now() + span;
        let mut all = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.next(left) {
                Some(got) => all.push(got),
                None => break,
            }
        }
        all
    }
}

fn path_listener(dir: &Path) -> (PathBuf, Listener) {
    let path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&path);
    let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
    (path, Listener::new(socket))
}

/// The `STATUS=` value of a message, if it has one.
fn status(message: &str) -> Option<&str> {
    message.lines().find_map(|l| l.strip_prefix("STATUS="))
}

/// `(firing, series)` from a status line "F firing, P pending, S series".
fn counts(status: &str) -> (usize, usize) {
    let words: Vec<&str> = status.split([' ', ',', ';']).filter(|w| !w.is_empty()).collect();
    let before = |word: &str| -> usize {
        let i = words.iter().position(|w| *w == word).unwrap_or_else(|| panic!("{status:?}"));
        words[i - 1].parse().unwrap_or_else(|_| panic!("{status:?}"))
    };
    (before("firing"), before("series"))
}

#[test]
fn ready_after_the_first_tick_a_ping_per_tick_reload_and_stop() {
    let dir = tempdir("sd-notify-path");
    let cfg = config(&dir);
    let (sock, listener) = path_listener(&dir);
    let started = Instant::now();
    // Half of 10 s is longer than the 1 s interval: one ping per tick, none in between.
    let mut daemon = Daemon::start_env(
        &cfg,
        false,
        &["--log-format", "json"],
        &[("NOTIFY_SOCKET", sock.as_os_str()), ("WATCHDOG_USEC", OsStr::new("10000000"))],
    );
    // The start asks for time for the first tick (interval 1 s + 30 s), and is not ready yet.
    let (_, first) = listener.next(Duration::from_secs(20)).expect("a first message");
    assert_eq!(
        first.lines().next(),
        Some("EXTEND_TIMEOUT_USEC=31000000"),
        "the start's message: {first:?}"
    );
    let (at, ready) = listener.next(Duration::from_secs(20)).expect("a second message");
    let after = at - started;
    println!("READY=1 {:.0} ms after start: {ready:?}", after.as_secs_f64() * 1000.0);
    assert!(ready.lines().any(|l| l == "READY=1"), "the first message says ready: {ready:?}");
    // That it waits for the first tick is the stall tests' to show (no wall-clock bound here).
    assert!(ready.lines().any(|l| l == "WATCHDOG=1"), "{ready:?}");
    let (firing, series) = counts(status(&ready).expect("a STATUS= line with READY=1"));
    assert_eq!(firing, 1, "mem_any fires at the first tick: {ready:?}");
    assert!(series > 3, "the host's series are counted: {ready:?}");

    // The next ticks ping, and say ready no more.
    let mut pings = Vec::new();
    while pings.len() < 3 {
        let got = listener.next(Duration::from_secs(30)).expect("a ping from a later tick");
        if is_ping(&got.1) {
            pings.push(got);
        }
    }
    assert!(pings.iter().all(|(_, m)| !m.contains("READY=1")), "ready once: {pings:?}");

    daemon.signal("-HUP");
    let (_, reloading) =
        listener.until(Duration::from_secs(10), "RELOADING=1").expect("RELOADING=1");
    assert!(reloading.lines().any(|l| l.starts_with("MONOTONIC_USEC=")), "{reloading:?}");
    let (_, back) = listener.next(Duration::from_secs(10)).expect("a message after RELOADING=1");
    assert!(back.lines().any(|l| l == "READY=1"), "READY=1 right after the reload: {back:?}");

    // A broken config is refused; systemd hears that the running one is kept.
    std::fs::write(&cfg, "{ not json").unwrap();
    daemon.signal("-HUP");
    listener.until(Duration::from_secs(10), "RELOADING=1").expect("RELOADING=1");
    let (_, back) = listener.next(Duration::from_secs(10)).expect("a message after RELOADING=1");
    assert!(back.lines().any(|l| l == "READY=1"), "{back:?}");
    assert!(status(&back).is_some_and(|s| s.contains("reload failed")), "{back:?}");

    daemon.signal("-TERM");
    let (_, stopping) =
        listener.until(Duration::from_secs(10), "STOPPING=1").expect("STOPPING=1 on SIGTERM");
    assert!(stopping.contains("\nEXTEND_TIMEOUT_USEC="), "time for the stop: {stopping:?}");
    let exit = daemon.wait_exit(Duration::from_secs(20)).expect("exits after SIGTERM");
    assert!(exit.success(), "{exit:?}");
}

/// Test builds only: `HOSTWATCH_TEST_STALL_FILE` holds a tick until the file goes away, and
/// `<file>.stalled` says the tick has reached the stall.
#[cfg(debug_assertions)]
#[test]
fn no_ready_until_the_first_tick_completes_and_a_stuck_tick_stops_the_pings() {
    let dir = tempdir("sd-notify-stall");
    let cfg = config_every(&dir, "2s");
    let (sock, listener) = path_listener(&dir);
    let stall = write(&dir, "stall", "");
    let marker = stall_marker(&stall);
    let _daemon = Daemon::start_env(
        &cfg,
        false,
        &[],
        &[
            ("NOTIFY_SOCKET", sock.as_os_str()),
            ("WATCHDOG_USEC", OsStr::new("400000")),
            ("HOSTWATCH_TEST_STALL_FILE", stall.as_os_str()),
        ],
    );
    // The loop pings while it waits for its first tick (every 200 ms), then the tick hangs.
    assert!(wait_for_file(&marker, Duration::from_secs(60)), "the first tick never stalled");
    // What was sent before the stall began is in the socket already.
    let before = listener.during(Duration::from_millis(300));
    assert!(before.iter().all(|(_, m)| !m.contains("READY=1")), "ready while stuck: {before:?}");
    assert!(before.iter().any(|(_, m)| is_ping(m)), "pings while waiting: {before:?}");
    // Six pings would be due in this window: a loop stuck in a tick sends none (no timer
    // thread pings for it).
    let quiet = listener.during(Duration::from_millis(1200));
    assert!(quiet.is_empty(), "a stuck tick goes quiet: {quiet:?}");
    std::fs::remove_file(&stall).unwrap();
    let (_, ready) = listener.next(Duration::from_secs(30)).expect("a message once the tick ends");
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    listener.until(Duration::from_secs(30), "WATCHDOG=1").expect("pings resume");
}

/// A SIGHUP during the first interval reloads, but says neither `RELOADING=1` (systemd never
/// heard `READY=1`) nor `READY=1`: that still waits for the first tick, held here by the stall
/// file until the reload is done.
#[cfg(debug_assertions)]
#[test]
fn a_sighup_before_the_first_tick_sends_no_early_ready() {
    let dir = tempdir("sd-notify-early-hup");
    let cfg = config_every(&dir, "2s");
    let (sock, listener) = path_listener(&dir);
    let hold = dir.join("hold");
    let marker = stall_marker(&hold);
    let daemon = Daemon::start_env(
        &cfg,
        false,
        &[],
        &[("NOTIFY_SOCKET", sock.as_os_str()), ("HOSTWATCH_TEST_STALL_FILE", hold.as_os_str())],
    );
    let (_, first) = listener.next(Duration::from_secs(30)).expect("the start's message");
    assert!(first.starts_with("EXTEND_TIMEOUT_USEC="), "{first:?}");
    // Hold the first tick (whenever it comes) so READY=1 cannot come before we look.
    std::fs::write(&hold, "").unwrap();
    daemon.signal("-HUP");
    daemon.wait_stderr(Duration::from_secs(30), "config reloaded").expect("the reload");
    assert!(
        !marker.exists(),
        "inconclusive: the first tick began before the SIGHUP was handled (a loaded machine?)"
    );
    assert!(wait_for_file(&marker, Duration::from_secs(60)), "the first tick never came");
    let before = listener.during(Duration::from_millis(300));
    for (_, m) in &before {
        assert!(!m.contains("READY=1"), "READY=1 before the first tick: {before:?}");
        assert!(!m.contains("RELOADING=1"), "RELOADING=1 before READY=1: {before:?}");
    }
    assert!(
        before.iter().any(|(_, m)| m.contains("first tick is due")),
        "the reload says when the first tick is: {before:?}"
    );
    std::fs::remove_file(&hold).unwrap();
    let (_, ready) = listener.next(Duration::from_secs(30)).expect("a message after the tick");
    assert!(
        ready.lines().any(|l| l == "READY=1"),
        "READY=1 once the first tick is done: {ready:?}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn an_abstract_socket_hears_pings_between_ticks() {
    use std::os::linux::net::SocketAddrExt;
    let dir = tempdir("sd-notify-abstract");
    let cfg = config_every(&dir, "2s");
    let name = format!("hostwatch-sd-notify-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let listener = Listener::new(UnixDatagram::bind_addr(&addr).expect("bind an abstract socket"));
    let socket = format!("@{name}");
    // Half of 600 ms is shorter than the 2 s interval: the loop wakes to ping between ticks.
    let mut daemon = Daemon::start_env(
        &cfg,
        false,
        &[],
        &[("NOTIFY_SOCKET", OsStr::new(&socket)), ("WATCHDOG_USEC", OsStr::new("600000"))],
    );
    daemon
        .wait_stderr(Duration::from_secs(10), "wakes between ticks")
        .expect("the start says the loop wakes between ticks to ping");
    // Before READY=1 no tick has completed: every ping until then is one between ticks.
    let mut between = 0;
    loop {
        let (_, m) =
            listener.next(Duration::from_secs(60)).expect("READY=1 on the abstract socket");
        if m.lines().any(|l| l == "READY=1") {
            break;
        }
        between += usize::from(is_ping(&m));
    }
    println!("{between} pings before the first tick");
    assert!(between >= 1, "pings between ticks reach the abstract socket");

    daemon.signal("-TERM");
    listener.until(Duration::from_secs(10), "STOPPING=1").expect("STOPPING=1");
    assert!(daemon.wait_exit(Duration::from_secs(20)).expect("exits").success());
}

#[test]
fn once_says_nothing_to_systemd() {
    let dir = tempdir("sd-notify-once");
    let cfg = config(&dir);
    let (sock, listener) = path_listener(&dir);
    let out = std::process::Command::new(common::bin())
        .args(["once", "--config", cfg.to_str().unwrap()])
        .env("NOTIFY_SOCKET", &sock)
        .env("WATCHDOG_USEC", "1000000")
        .output()
        .expect("run hostwatch once");
    assert_eq!(out.status.code(), Some(1), "mem_any is a WARNING: {}", common::stderr(&out));
    let heard = listener.during(Duration::from_millis(300));
    assert!(heard.is_empty(), "once is not a service that notifies: {heard:?}");
}
