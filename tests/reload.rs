//! SIGHUP never stalls the loop: a reload while a hook hangs keeps ticking (the lateness of
//! each tick after the reload is printed, not asserted), only the channel whose settings
//! changed gets a new worker, the unchanged one keeps delivering, and there is never more
//! than one worker thread per channel.

mod common;

use common::daemon::Daemon;
use common::{tempdir, write};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

fn config(dir: &Path, slow_timeout: &str) -> Value {
    let record = dir.join("fast.jsonl");
    json!({
        "host": "reload-test", "interval": "1s", "state_dir": dir.join("state").display().to_string(),
        "rules": [{"name": "mem_any", "metric": "mem.used_percent", "warn": ">= 0"}],
        "escalation": {"remind_every": "1s"},
        "channels": {
            // Busy for 20 s with every notification: its worker is mid-attempt at the reload.
            "slow": {"type": "exec", "command": ["/bin/sleep", "20"], "timeout": slow_timeout},
            "fast": {"type": "exec", "command": ["/bin/sh", "-c", format!("cat >> {}", record.display())]}
        },
        "routes": [{"channels": ["slow", "fast"]}]
    })
}

/// Threads of `pid` named `deliver-<channel>`. A new thread carries its parent's name until
/// it names itself (hook I/O threads do so at once), so a thread counts only when it still
/// has the name 20 ms later.
fn workers_named(pid: u32, channel: &str) -> usize {
    let name = format!("deliver-{channel}");
    let named = || -> Vec<String> {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
        tasks
            .filter_map(Result::ok)
            .filter(|t| {
                std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name)
            })
            .map(|t| t.file_name().to_string_lossy().into_owned())
            .collect()
    };
    let first = named();
    std::thread::sleep(Duration::from_millis(20));
    let second = named();
    first.iter().filter(|tid| second.contains(tid)).count()
}

fn fast_received(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("fast.jsonl")).unwrap_or_default().lines().count()
}

#[test]
fn sighup_while_a_hook_hangs_keeps_ticking_and_rebuilds_only_the_changed_channel() {
    let dir = tempdir("reload-busy");
    let cfg = write(&dir, "config.json", &config(&dir, "30s").to_string());
    let daemon = Daemon::start_with(&cfg, false, &["--log-format", "json", "--log-level", "debug"]);
    let pid = daemon.child.id();
    // The slow hook is running once the first notification went out.
    let end = Instant::now() + Duration::from_secs(20);
    while fast_received(&dir) == 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(fast_received(&dir) > 0, "the fast channel delivered the first notification");
    write(&dir, "config.json", &config(&dir, "25s").to_string());
    daemon.signal("-HUP");
    let hup = Instant::now();
    let mut late_ms: Vec<f64> = Vec::new();
    let mut retired: Vec<String> = Vec::new();
    let mut max_workers = 0;
    let before = fast_received(&dir);
    let window = Instant::now() + Duration::from_secs(8);
    while Instant::now() < window {
        let (s, f) = (workers_named(pid, "slow"), workers_named(pid, "fast"));
        max_workers = max_workers.max(s).max(f);
        while let Ok(line) = daemon.stderr.try_recv() {
            let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
            let message = v["message"].as_str().unwrap_or("");
            if message == "tick" {
                late_ms.push(v["fields"]["late_ms"].as_f64().unwrap_or(f64::NAN));
            } else if message.contains("its worker stops") {
                retired.push(v["fields"]["channel"].as_str().unwrap_or("").to_string());
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let after = fast_received(&dir);
    late_ms.sort_by(f64::total_cmp);
    println!(
        "ticks in the 8 s after SIGHUP: {}; lateness ms: median {:.2}, max {:.2}; \
         fast deliveries meanwhile: {}; most worker threads per channel: {max_workers}",
        late_ms.len(),
        late_ms.get(late_ms.len() / 2).copied().unwrap_or(f64::NAN),
        late_ms.last().copied().unwrap_or(f64::NAN),
        after - before
    );
    assert!(hup.elapsed() >= Duration::from_secs(8));
    assert!(late_ms.len() >= 5, "the loop kept ticking while the old worker was busy: {late_ms:?}");
    assert_eq!(retired, vec!["slow".to_string()], "only the changed channel was rebuilt");
    assert!(after > before, "the unchanged channel kept delivering through the reload");
    assert!(max_workers <= 1, "at most one worker per channel at any time");
    daemon.signal("-TERM");
}

#[test]
fn sighup_to_a_config_that_can_never_work_keeps_the_running_one() {
    let dir = tempdir("reload-refused");
    let cfg = write(&dir, "config.json", &config(&dir, "30s").to_string());
    let daemon = Daemon::start(&cfg, false);
    let end = Instant::now() + Duration::from_secs(20);
    while fast_received(&dir) == 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(fast_received(&dir) > 0);
    let mut broken = config(&dir, "30s");
    broken["channels"]["fast"]["command"] = json!(["/nonexistent/hostwatch-hook"]);
    write(&dir, "config.json", &broken.to_string());
    daemon.signal("-HUP");
    let line = daemon.wait_stderr(Duration::from_secs(10), "config reload refused");
    let line = line.expect("the reload was refused");
    assert!(
        line.contains("channel fast") && line.contains("/nonexistent/hostwatch-hook"),
        "{line}"
    );
    let before = fast_received(&dir);
    let end = Instant::now() + Duration::from_secs(15);
    while fast_received(&dir) <= before && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(fast_received(&dir) > before, "the running config goes on delivering");
    daemon.signal("-TERM");
}
