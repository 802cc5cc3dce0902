//! The dead-man's switch end to end, on a real `hostwatch run` (interval 1 s): heartbeats
//! reach a recording receiver about once per `every` and never in a burst (GET, and POST
//! with its JSON); a stalled loop sends none until it ticks again; a receiver that accepts
//! and never answers delays no tick and grows no threads; an Alertmanager channel with
//! `watchdog: true` keeps a firing `HostwatchWatchdog` alert in a real Alertmanager, which
//! resolves it by itself once hostwatch stops; an https URL works through rustls; a reload
//! adds and removes the heartbeat; the heartbeat URL never reaches the log.

mod common;

use common::alertmanager::Alertmanager;

use common::daemon::Daemon;
use common::receiver::Receiver;
use common::{tempdir, write};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A check id as healthchecks.io gives them: the secret part of the URL.
const UUID: &str = "5f0c4e2a-9b1d-4c3e-8f7a-1d2e3f4a5b6c";

/// A config with `interval: 1s`, a rule that never fires, and `extra` merged in.
fn config(dir: &Path, extra: Value) -> PathBuf {
    let mut cfg = json!({
        "host": "hb-host", "interval": "1s",
        "state_dir": dir.join("state").display().to_string(),
        "rules": [{"name": "never", "metric": "load.1", "warn": "> 100000"}],
    });
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    write(dir, "config.json", &cfg.to_string())
}

/// The receiver's requests to `/ping/UUID`.
fn pings(r: &Receiver) -> Vec<Value> {
    r.requests()
        .into_iter()
        .filter(|q| q["path"].as_str() == Some(&format!("/ping/{UUID}")))
        .collect()
}

/// Waits (bounded) until the receiver has `n` pings; returns them.
fn wait_pings(r: &Receiver, n: usize) -> Vec<Value> {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let got = pings(r);
        if got.len() >= n {
            return got;
        }
        assert!(Instant::now() < end, "only {} heartbeats arrived: {got:#?}", got.len());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Seconds between consecutive requests (the receiver's arrival times).
fn spacing(requests: &[Value]) -> Vec<f64> {
    let t: Vec<f64> = requests.iter().map(|q| q["t"].as_f64().unwrap()).collect();
    t.windows(2).map(|w| w[1] - w[0]).collect()
}

/// SIGTERM, a bounded wait for the exit, then every stderr line the daemon wrote.
fn stop(mut daemon: Daemon) -> Vec<String> {
    daemon.signal("-TERM");
    let end = Instant::now() + Duration::from_secs(30);
    while daemon.child.try_wait().expect("try_wait").is_none() {
        assert!(Instant::now() < end, "the daemon did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut lines = Vec::new();
    while let Ok(line) = daemon.stderr.recv_timeout(Duration::from_secs(2)) {
        lines.push(line);
    }
    lines
}

#[test]
fn get_heartbeats_about_once_per_period_never_in_a_burst_and_the_url_stays_out_of_the_log() {
    let dir = tempdir("hb-get");
    let receiver = Receiver::start();
    // The first answer is an error page that quotes the path: the log must not repeat it.
    let path = format!("/ping/{UUID}");
    receiver.script(&path, json!([{"status": 500, "body": format!("no check at {path}")}]));
    let url = receiver.url(&path);
    let cfg = config(&dir, json!({"heartbeat": {"url": url, "every": "1s"}}));
    let daemon = Daemon::start_with(&cfg, false, &["--log-level", "debug"]);
    let got = wait_pings(&receiver, 5);
    let gaps = spacing(&got);
    println!("heartbeat spacing (s): {gaps:.3?}");
    assert!(got.iter().all(|q| q["method"] == "GET"), "{got:#?}");
    assert!(gaps.iter().all(|g| *g >= 0.5), "a burst: {gaps:?}");
    let log = stop(daemon);
    assert!(log.iter().any(|l| l.contains("heartbeat failed")), "the 500 was logged: {log:#?}");
    let leaks: Vec<&String> = log.iter().filter(|l| l.contains(UUID)).collect();
    assert!(leaks.is_empty(), "the heartbeat URL reached the log: {leaks:#?}");
}

#[test]
fn post_heartbeats_carry_host_version_ticks_and_firing_once_per_period_of_fast_ticks() {
    let dir = tempdir("hb-post");
    let receiver = Receiver::start();
    let url = receiver.url(&format!("/ping/{UUID}"));
    let firing = json!([{"name": "load_any", "metric": "load.1", "warn": ">= 0"}]);
    let heartbeat = json!({"url": url, "every": "1s", "method": "post"});
    // Ticks four times per period: still one heartbeat per period.
    let extra = json!({"heartbeat": heartbeat, "rules": firing, "interval": "250ms"});
    let cfg = config(&dir, extra);
    let daemon = Daemon::start(&cfg, false);
    let got = wait_pings(&receiver, 4);
    let gaps = spacing(&got);
    println!("heartbeat spacing at interval 250ms, every 1s (s): {gaps:.3?}");
    assert!(gaps.iter().all(|g| *g >= 0.5), "more than one per period: {gaps:?}");
    stop(daemon);
    for q in &got {
        assert_eq!(q["method"], "POST");
        let body: Value = serde_json::from_str(q["body"].as_str().unwrap()).expect("JSON body");
        assert_eq!(body["host"], "hb-host");
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
        assert!(body["firing"].as_u64().is_some_and(|n| n <= 1), "{body}");
        assert!(body["ticks"].as_u64().is_some_and(|t| t >= 1), "{body}");
    }
    let ticks: Vec<u64> = got
        .iter()
        .map(|q| {
            serde_json::from_str::<Value>(q["body"].as_str().unwrap()).unwrap()["ticks"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(ticks.windows(2).all(|w| w[1] > w[0]), "ticks grow: {ticks:?}");
    let last: Value = serde_json::from_str(got.last().unwrap()["body"].as_str().unwrap()).unwrap();
    assert_eq!(last["firing"], 1, "the firing rule is counted: {last}");
}

#[test]
fn a_reload_adds_and_removes_the_heartbeat() {
    let dir = tempdir("hb-reload");
    let receiver = Receiver::start();
    let url = receiver.url(&format!("/ping/{UUID}"));
    let cfg = config(&dir, json!({}));
    let daemon = Daemon::start(&cfg, false);
    assert!(daemon.wait_stderr(Duration::from_secs(20), "hostwatch started").is_some());
    config(&dir, json!({"heartbeat": {"url": url, "every": "1s"}}));
    daemon.signal("-HUP");
    let got = wait_pings(&receiver, 2);
    println!("heartbeats after the reload that added it: {}", got.len());
    config(&dir, json!({}));
    daemon.signal("-HUP");
    // The first reload's line, then the second's.
    assert!(daemon.wait_stderr(Duration::from_secs(20), "config reloaded").is_some());
    assert!(daemon.wait_stderr(Duration::from_secs(20), "config reloaded").is_some());
    // A beat in flight at the reload may still land; then nothing.
    std::thread::sleep(Duration::from_millis(1500));
    let before = pings(&receiver).len();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(pings(&receiver).len(), before, "heartbeats went on after the reload removed it");
    stop(daemon);
}

/// `hostwatch run` with extra environment, output discarded (or stderr piped).
fn spawn(cfg: &Path, env: &[(&str, &Path)], global: &[&str], stderr: Stdio) -> Child {
    let mut cmd = Command::new(common::bin());
    cmd.args(global).args(["run", "--config", cfg.to_str().unwrap()]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::null()).stderr(stderr).spawn().expect("start hostwatch run")
}

#[test]
fn a_stalled_loop_sends_no_heartbeat_until_it_ticks_again() {
    let dir = tempdir("hb-stall");
    let receiver = Receiver::start();
    let url = receiver.url(&format!("/ping/{UUID}"));
    let cfg = config(&dir, json!({"heartbeat": {"url": url, "every": "1s"}}));
    let stall = dir.join("stall");
    let mut child = spawn(&cfg, &[("HOSTWATCH_TEST_STALL_FILE", &stall)], &[], Stdio::null());
    wait_pings(&receiver, 2);
    std::fs::write(&stall, "").unwrap();
    // A tick past its stall check may still beat once; then nothing.
    std::thread::sleep(Duration::from_millis(1500));
    let before = pings(&receiver).len();
    std::thread::sleep(Duration::from_secs(3));
    let during = pings(&receiver).len();
    println!("heartbeats while stalled for 3 s: {}", during - before);
    assert_eq!(during, before, "a stalled loop kept sending heartbeats");
    std::fs::remove_file(&stall).unwrap();
    let after = wait_pings(&receiver, during + 2);
    println!("heartbeats after the stall ended: {}", after.len() - during);
    let _ = child.kill();
    let _ = child.wait();
}

/// The child's stderr lines, as they come.
fn stderr_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// `Threads:` of /proc/PID/status.
fn threads(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status.lines().find(|l| l.starts_with("Threads:")).expect("Threads line");
    line["Threads:".len()..].trim().parse().expect("thread count")
}

#[test]
fn a_receiver_that_never_answers_delays_no_tick_and_grows_no_threads() {
    let dir = tempdir("hb-hang");
    // Accepts every connection and never reads or answers; keeps the sockets open.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&accepted);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(s);
        }
    });
    let url = format!("http://127.0.0.1:{port}/ping/{UUID}");
    let cfg = config(&dir, json!({"heartbeat": {"url": url, "every": "1s", "timeout": "1s"}}));
    let mut child = spawn(&cfg, &[], &["--log-level", "debug"], Stdio::piped());
    let rx = stderr_lines(&mut child);
    let pid = child.id();
    let mut counts = Vec::new();
    let mut late_ms: Vec<f64> = Vec::new();
    let mut lines = Vec::new();
    let end = Instant::now() + Duration::from_secs(22);
    std::thread::sleep(Duration::from_secs(2));
    while Instant::now() < end {
        counts.push(threads(pid));
        // One second of log lines between two thread counts.
        let second = Instant::now() + Duration::from_secs(1);
        while let Some(left) = second.checked_duration_since(Instant::now()) {
            let Ok(line) = rx.recv_timeout(left) else { break };
            if let Some(v) = line.split("late_ms=").nth(1) {
                late_ms.push(v.split_whitespace().next().unwrap().parse().unwrap());
            }
            lines.push(line);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let max_late = late_ms.iter().cloned().fold(0.0, f64::max);
    let n = accepted.load(std::sync::atomic::Ordering::SeqCst);
    println!(
        "ticks: {}, tick lateness max {max_late:.1} ms; threads over 20 s: {counts:?}; \
         connections the hung receiver accepted: {n}",
        late_ms.len()
    );
    assert!(late_ms.len() >= 10, "the loop stopped ticking: {lines:#?}");
    assert!(n >= 3, "heartbeats kept being attempted, one at a time: {n}");
    let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
    assert!(hi - lo <= 1, "the thread count grew: {counts:?}");
    assert!(lines.iter().any(|l| l.contains("heartbeat failed")), "{lines:#?}");
    assert!(lines.iter().all(|l| !l.contains(UUID)), "the heartbeat URL reached the log");
}

#[test]
fn the_watchdog_alert_fires_in_alertmanager_and_resolves_there_once_hostwatch_stops() {
    let dir = tempdir("hb-watchdog");
    let am = Alertmanager::start("hb-watchdog");
    let channel = json!({"type": "alertmanager", "url": am.base(), "resend_every": "1s",
                         "watchdog": true, "timeout": "2s"});
    let cfg = config(&dir, json!({"channels": {"am": channel}, "routes": [{"channels": ["am"]}]}));
    let daemon = Daemon::start(&cfg, false);
    let end = Instant::now() + Duration::from_secs(30);
    let alert = loop {
        let found =
            am.alerts("HostwatchWatchdog").into_iter().find(|a| a["labels"]["host"] == "hb-host");
        if let Some(a) = found {
            break a;
        }
        assert!(Instant::now() < end, "Alertmanager never showed the watchdog");
        std::thread::sleep(Duration::from_millis(200));
    };
    println!("watchdog in Alertmanager: {alert}");
    assert_eq!(alert["status"]["state"], "active", "{alert:#}");
    assert_eq!(alert["labels"]["severity"], "none");
    let ends = alert["endsAt"].as_str().unwrap().to_string();
    // Re-sent every second: its end moves on.
    let end = Instant::now() + Duration::from_secs(30);
    while am.alerts("HostwatchWatchdog").iter().all(|a| a["endsAt"].as_str() == Some(&ends)) {
        assert!(Instant::now() < end, "the watchdog was not re-sent");
        std::thread::sleep(Duration::from_millis(200));
    }
    let started = Instant::now();
    stop(daemon);
    let end = Instant::now() + Duration::from_secs(60);
    while !am.alerts("HostwatchWatchdog").is_empty() {
        assert!(
            Instant::now() < end,
            "the watchdog never resolved: {:#?}",
            am.alerts("HostwatchWatchdog")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    println!("watchdog resolved {:.1} s after the stop", started.elapsed().as_secs_f64());
}

#[test]
fn https_heartbeats_go_through_rustls_against_the_trusted_cas() {
    let dir = tempdir("hb-tls");
    let certs = common::make_certs(&dir);
    let receiver = Receiver::start_tls(&certs.join("server.pem"), &certs.join("server.key"));
    let url = format!("https://localhost:{}/ping/{UUID}", receiver.port);
    let cfg = config(&dir, json!({"heartbeat": {"url": url, "every": "1s"}}));
    let ca = certs.join("ca.pem");
    let mut child =
        spawn(&cfg, &[("SSL_CERT_FILE", &ca)], &["--log-level", "debug"], Stdio::piped());
    // The receiver speaks TLS only, so the daemon's own log tells what it answered.
    let rx = stderr_lines(&mut child);
    let mut lines = Vec::new();
    let end = Instant::now() + Duration::from_secs(30);
    while lines.len() < 2
        && let Some(left) = end.checked_duration_since(Instant::now())
        && let Ok(line) = rx.recv_timeout(left)
    {
        if line.contains("heartbeat") {
            lines.push(line);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    println!("{lines:#?}");
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(lines.iter().all(|l| l.contains("heartbeat sent status=200")), "{lines:#?}");
    assert!(lines.iter().all(|l| !l.contains(UUID)));
}
