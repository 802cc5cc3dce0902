//! A TLS black hole: a receiver on loopback that accepts TCP connections and never says a
//! word, so every HTTPS attempt stops in the handshake. With a 500 ms channel timeout and
//! always-firing rules, `hostwatch run` keeps trying for 60 s (`HOSTWATCH_BLACKHOLE_SECS`
//! to change it; scripts/tls-blackhole.sh runs 5 minutes) while the test samples the threads
//! (`/proc/PID/status`) and open fds (`/proc/PID/fd`) of the daemon: both must stay flat.
//! The figures are printed; nothing asserts wall-clock durations.

mod common;

use common::daemon::Daemon;
use common::{tempdir, write};
use serde_json::json;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Accepts and holds every connection, never writing, until dropped.
struct BlackHole {
    port: u16,
    held: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BlackHole {
    fn start() -> BlackHole {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (held.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => h.lock().unwrap().push(stream),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        BlackHole { port, held, stop, thread: Some(thread) }
    }

    fn accepted(&self) -> usize {
        self.held.lock().unwrap().len()
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.held.lock().unwrap().clear();
    }
}

/// Threads and open fds of process `pid`.
fn usage(pid: u32) -> (usize, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    (threads, fds)
}

#[test]
fn a_tls_black_hole_leaks_no_threads_and_no_fds() {
    let secs: u64 =
        std::env::var("HOSTWATCH_BLACKHOLE_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let hole = BlackHole::start();
    let dir = tempdir("tls-blackhole");
    let cfg = json!({
        "host": "blackhole-test", "interval": "1s",
        "state_dir": dir.join("state").display().to_string(),
        "rules": [
            {"name": "mem_any", "metric": "mem.used_percent", "warn": ">= 0"},
            {"name": "load_any", "metric": "load.1", "warn": ">= 0"}
        ],
        "escalation": {"remind_every": "1s"},
        "channels": {"hook": {
            "type": "webhook", "url": format!("https://127.0.0.1:{}/hook", hole.port),
            "timeout": "500ms"
        }},
        "routes": [{"channels": ["hook"]}],
        "delivery": {"retry_base": "200ms", "retry_max": "500ms"}
    });
    let cfg = write(&dir, "config.json", &cfg.to_string());
    let daemon = Daemon::start(&cfg, false);
    let pid = daemon.child.id();

    // Warm-up: the worker exists and a few handshakes have already timed out.
    let warm = Instant::now() + Duration::from_secs(60);
    while hole.accepted() < 3 && Instant::now() < warm {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(hole.accepted() >= 3, "hostwatch never connected to the black hole");
    std::thread::sleep(Duration::from_secs(2));
    let (threads0, fds0) = usage(pid);
    let attempts0 = hole.accepted();

    let (mut max_threads, mut max_fds) = (threads0, fds0);
    let end = Instant::now() + Duration::from_secs(secs);
    let mut samples = 0;
    while Instant::now() < end {
        std::thread::sleep(Duration::from_secs(1));
        let (t, f) = usage(pid);
        max_threads = max_threads.max(t);
        max_fds = max_fds.max(f);
        samples += 1;
    }
    let (threads1, fds1) = usage(pid);
    let attempts = hole.accepted() - attempts0;
    println!(
        "tls black hole, {secs} s, {samples} samples, {attempts} handshakes held after warm-up: \
         threads {threads0} at warm-up, max {max_threads}, end {threads1}; \
         fds {fds0} at warm-up, max {max_fds}, end {fds1}"
    );
    assert!(attempts >= 3, "only {attempts} attempts after warm-up: the test proves nothing");
    assert!(max_threads <= threads0 + 1, "threads grew: {threads0} -> {max_threads}");
    assert!(max_fds <= fds0 + 3, "fds grew: {fds0} -> {max_fds}");
    drop(daemon);
    drop(hole);
    let _ = std::fs::remove_dir_all(dir);
}
