//! The API's limits against the real daemon: `hostwatch run` with the API on loopback, then a
//! slowloris flood (1,000 connections trickling header bytes), 10 MB request bodies streamed
//! to `POST /silences`, and 1,000 idle connections. In each phase a legitimate `GET /health`
//! is still answered 200, the daemon's threads do not grow, its open files stay within the
//! connection limit and its RSS within a few MiB. Tick lateness, threads, files and RSS per
//! phase are printed (never asserted: they are timings).
//!
//! The floods run in a Python child (python3 is needed) so this process needs no more file
//! descriptors than usual.

mod common;

use common::daemon::Daemon;
use common::receiver::free_port;
use common::{tempdir, write};
use serde_json::json;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server's connection limit (`server::Limits::default`).
const MAX_CONNECTIONS: usize = 64;
/// Files the daemon may open briefly beyond its baseline besides connections (/proc readers).
const FD_SLACK: usize = 8;
/// RSS growth allowed under attack.
const RSS_SLACK_KIB: u64 = 8 * 1024;

/// A flood of `n` connections: `slowloris` sends one header byte per connection per second,
/// `idle` sends nothing; either reconnects (at most once a second per connection) when the
/// server closes it. Prints its counts as JSON at the end.
const FLOOD: &str = r#"
import errno, json, random, resource, socket, sys, time
mode, port, n, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = n + 64
if soft < want:
    resource.setrlimit(resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))
HEAD = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: "
stats = {"mode": mode, "connects": 0, "closed_by_server": 0, "bytes_sent": 0, "answers": 0}
def opened():
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex(("127.0.0.1", port))
    stats["connects"] += 1
    return s
start = time.monotonic()
conns = [[opened(), start + random.random(), 0] for _ in range(n)]
while time.monotonic() - start < secs:
    now = time.monotonic()
    for c in conns:
        if now < c[1]:
            continue
        c[1] = now + 1.0
        s, dead = c[0], False
        try:
            data = s.recv(4096)
            if data:
                stats["answers"] += 1
            else:
                dead = True
        except BlockingIOError:
            pass
        except OSError:
            dead = True
        if not dead and mode == "slowloris":
            b = HEAD[c[2]:c[2] + 1] if c[2] < len(HEAD) else b"a"
            try:
                if s.send(b) == 1:
                    c[2] += 1
                    stats["bytes_sent"] += 1
            except BlockingIOError:
                pass
            except OSError as e:
                dead = e.errno != errno.ENOTCONN
        if dead:
            s.close()
            stats["closed_by_server"] += 1
            c[0], c[2] = opened(), 0
    time.sleep(0.02)
print(json.dumps(stats), flush=True)
"#;

/// A flood child; killed when dropped.
struct Flood(Child);

impl Flood {
    fn start(mode: &str, port: u16, n: usize, secs: u64) -> Flood {
        let child = Command::new("python3")
            .args(["-c", FLOOD, mode, &port.to_string(), &n.to_string(), &secs.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 is needed for the flood clients (apt-get install python3)");
        Flood(child)
    }

    /// Waits for it to finish and returns its counts.
    fn finish(mut self) -> String {
        let mut out = String::new();
        if let Some(mut s) = self.0.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        let _ = self.0.wait();
        out.trim().to_owned()
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What /proc says about the daemon.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    threads: u64,
    fds: usize,
    rss_kib: u64,
}

fn sample(pid: u32) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("daemon status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("daemon fds").count();
    Sample { threads: field("Threads:"), fds, rss_kib: field("VmRSS:") }
}

/// One `GET /health`: its status, or why there was none.
fn health_once(addr: SocketAddr) -> Result<u16, String> {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    s.write_all(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n").map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    text.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| format!("answer {text:?}"))
}

/// `GET /health` until it is 200 (bounded): how many tries it took and how long.
fn health(addr: SocketAddr, phase: &str) -> (usize, Duration) {
    let started = Instant::now();
    let mut last = String::new();
    for attempt in 1..=20 {
        match health_once(addr) {
            Ok(200) => return (attempt, started.elapsed()),
            Ok(code) => last = format!("status {code}"),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{phase}: GET /health never answered 200 in 20 tries (last: {last})");
}

/// Streams a 10 MB body to `POST /silences`, stopping when an answer arrives: the status and
/// the body bytes sent before it.
fn big_post(addr: SocketAddr) -> (Option<u16>, usize) {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return (None, 0);
    };
    let total = 10 * 1024 * 1024;
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    let head = format!(
        "POST /silences HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {total}\r\n\r\n"
    );
    if s.write_all(head.as_bytes()).is_err() {
        return (None, 0);
    }
    let chunk = vec![b' '; 64 * 1024];
    let mut sent = 0;
    let mut answer = Vec::new();
    while sent < total {
        let _ = s.set_nonblocking(true);
        let mut buf = [0u8; 1024];
        if let Ok(n) = s.read(&mut buf)
            && n > 0
        {
            answer.extend_from_slice(&buf[..n]);
            break;
        }
        let _ = s.set_nonblocking(false);
        match s.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut rest = [0u8; 1024];
    while answer.len() < 12 {
        match s.read(&mut rest) {
            Ok(n) if n > 0 => answer.extend_from_slice(&rest[..n]),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&answer);
    (text.split(' ').nth(1).and_then(|c| c.parse().ok()), sent)
}

/// Percentiles of tick lateness in ms: (median, p99, max, count).
fn lateness(values: &mut [f64]) -> (f64, f64, f64, usize) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN, 0);
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99), values[values.len() - 1], values.len())
}

/// What one phase saw.
#[derive(Debug, Default)]
struct Phase {
    name: &'static str,
    late_ms: Vec<f64>,
    max: Sample,
    health_tries: Vec<usize>,
    health_worst: Duration,
    /// "connection limit reached" warnings logged.
    limit_warnings: usize,
    note: String,
}

/// Runs one phase for `secs`: health checks and /proc samples, tick lateness from stderr;
/// `during` is called once a second (for the big POSTs).
fn phase(
    daemon: &Daemon,
    addr: SocketAddr,
    name: &'static str,
    secs: u64,
    mut during: impl FnMut(),
) -> Phase {
    let mut p = Phase { name, ..Phase::default() };
    let pid = daemon.child.id();
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        during();
        let (tries, took) = health(addr, name);
        p.health_tries.push(tries);
        p.health_worst = p.health_worst.max(took);
        for _ in 0..4 {
            let s = sample(pid);
            p.max.threads = p.max.threads.max(s.threads);
            p.max.fds = p.max.fds.max(s.fds);
            p.max.rss_kib = p.max.rss_kib.max(s.rss_kib);
            std::thread::sleep(Duration::from_millis(250));
        }
        while let Ok(line) = daemon.stderr.try_recv() {
            p.limit_warnings += usize::from(line.contains("connection limit reached"));
            if let Some(v) = line.split("late_ms=").nth(1).and_then(|v| v.trim().parse().ok()) {
                p.late_ms.push(v);
            }
        }
    }
    p
}

fn print(p: &mut Phase) {
    let (median, p99, max, n) = lateness(&mut p.late_ms);
    println!(
        "{:<10} ticks {n:>3}  late ms median {median:7.3} p99 {p99:7.3} max {max:7.3}  threads \
         {} fds {} RSS {} KiB  /health tries max {} worst {:?} {}",
        p.name,
        p.max.threads,
        p.max.fds,
        p.max.rss_kib,
        p.health_tries.iter().max().unwrap_or(&0),
        p.health_worst,
        p.note
    );
}

#[test]
fn slowloris_big_bodies_and_idle_floods_leave_the_daemon_serving_within_its_limits() {
    let dir = tempdir("api-limits");
    let port = free_port();
    let cfg = json!({
        "host": "limits-test", "interval": "500ms",
        "state_dir": dir.join("state").display().to_string(),
        "api": {"listen": format!("127.0.0.1:{port}"), "token": "limits-test-token-0123456789"},
        "rules": [
            {"name": "mem_any", "metric": "mem.used_percent", "warn": "> 100"},
            {"name": "cpu_busy", "metric": "cpu.usage", "warn": "> 99", "for": "10s"}
        ]
    });
    let cfg = write(&dir, "config.json", &cfg.to_string());
    let daemon = Daemon::start_with(&cfg, false, &["--log-level", "debug"]);
    assert!(
        daemon.wait_stderr(Duration::from_secs(20), "api listening").is_some(),
        "the daemon did not start its API"
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    health(addr, "start");

    let mut baseline = phase(&daemon, addr, "baseline", 8, || {});

    let flood = Flood::start("slowloris", port, 1000, 12);
    let mut slowloris = phase(&daemon, addr, "slowloris", 12, || {});
    slowloris.note = flood.finish();

    let mut answers = Vec::new();
    let mut big = phase(&daemon, addr, "10MB-POST", 10, || answers.push(big_post(addr)));
    big.note = format!("(status, body bytes sent before the answer): {answers:?}");

    let flood = Flood::start("idle", port, 1000, 12);
    let mut idle = phase(&daemon, addr, "idle-1000", 12, || {});
    idle.note = flood.finish();

    // After the floods every connection is gone again (bounded: read deadline + linger).
    let pid = daemon.child.id();
    let end = Instant::now() + Duration::from_secs(15);
    while sample(pid).fds > baseline.max.fds && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(200));
    }
    let after = sample(pid);

    for p in [&mut baseline, &mut slowloris, &mut big, &mut idle] {
        print(p);
    }
    println!("after      {after:?}");
    for p in [&slowloris, &big, &idle] {
        assert!(
            p.max.threads <= baseline.max.threads,
            "{}: threads grew from {} to {}",
            p.name,
            baseline.max.threads,
            p.max.threads
        );
        assert!(
            p.max.fds <= baseline.max.fds + MAX_CONNECTIONS + FD_SLACK,
            "{}: open files grew from {} to {}",
            p.name,
            baseline.max.fds,
            p.max.fds
        );
        assert!(
            p.max.rss_kib <= baseline.max.rss_kib + RSS_SLACK_KIB,
            "{}: RSS grew from {} to {} KiB",
            p.name,
            baseline.max.rss_kib,
            p.max.rss_kib
        );
    }
    assert!(!answers.is_empty(), "no big POST was tried");
    assert!(
        answers.iter().all(|&(status, sent)| status == Some(413) && sent < 10 * 1024 * 1024),
        "every 10 MB body is refused 413 before it is all sent: {answers:?}"
    );
    assert!(
        after.fds <= baseline.max.fds,
        "connections left open after the floods: {} files, baseline {}",
        after.fds,
        baseline.max.fds
    );
    assert!(
        slowloris.note.contains("closed_by_server"),
        "the slowloris flood ran: {}",
        slowloris.note
    );
}
