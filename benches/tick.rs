//! Tick cost, printed: a full default tick (collect + evaluate) on this machine, rule
//! evaluation alone for 10, 1,000 and 10,000 rules, with flap detection (the default) and
//! without (`"flap": false`), and the process scan of `collect.processes` (comm and pidfile
//! groups; then with a cmdline group too) for this machine's processes and with 1,000 more
//! sleepers spawned, with no process started between ticks (the scan skips the `/proc`
//! listing) and with one started before every tick (it lists). CPU time of this thread (user and kernel), median of many ticks. Run with
//! `cargo bench --bench tick`.

use hostwatch::collect::{self, Sample};
use hostwatch::config::{self, Config};
use hostwatch::engine::Engine;
use hostwatch::metrics::Metric;
use hostwatch::series::Registry;
use serde_json::json;

/// CPU time of the calling thread, nanoseconds.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn p99(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

fn full_default_tick() {
    let config = config::load_str(config::DEFAULT_JSON, "<embedded default>", &|_| None)
        .expect("default config");
    let mut backend = collect::backend(&config.collect);
    let mut registry = Registry::new();
    let mut sample = Sample::default();
    let mut engine = Engine::new(&config, None);
    let mut out = Vec::with_capacity(64);
    backend.collect(&mut registry, &mut sample);
    let (mut collect_ns, mut eval_ns, mut total_ns) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..400 {
        std::thread::sleep(std::time::Duration::from_millis(5));
        let t0 = thread_cpu_ns();
        backend.collect(&mut registry, &mut sample);
        let t1 = thread_cpu_ns();
        out.clear();
        engine.tick(&registry, &sample, &mut out);
        let t2 = thread_cpu_ns();
        if i >= 20 {
            collect_ns.push(t1 - t0);
            eval_ns.push(t2 - t1);
            total_ns.push(t2 - t0);
        }
    }
    println!(
        "full default tick ({} series, {} rules): collect median {:.1} µs, evaluate median {:.2} µs, total median {:.1} µs (p99 {:.1} µs)",
        sample.points.len(),
        config.rules.len(),
        median(collect_ns) as f64 / 1e3,
        median(eval_ns) as f64 / 1e3,
        median(total_ns.clone()) as f64 / 1e3,
        p99(total_ns) as f64 / 1e3,
    );
}

/// A config with `n` rules spread over the unlabelled metrics and every window form.
fn synthetic_config(n: usize, flap: bool) -> Config {
    let metrics = [
        "cpu.usage",
        "cpu.iowait",
        "load.1",
        "load.5",
        "load.15",
        "mem.used_percent",
        "swap.used_percent",
        "swap.in_rate",
        "swap.out_rate",
        "tcp.established",
    ];
    let rules: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let metric = metrics[i % metrics.len()];
            let mut rule = json!({"name": format!("r{i}"), "metric": metric, "warn": format!("> {}", 50 + i % 40)});
            match i % 6 {
                0 => {}
                1 => rule["for"] = json!("2m"),
                2 => rule["avg"] = json!("1m"),
                3 => rule["max"] = json!("5m"),
                4 => rule["min"] = json!("5m"),
                _ => rule["occurrences"] = json!("3/5"),
            }
            rule
        })
        .collect();
    let text = json!({"host": "bench", "interval": "5s", "state_dir": "/tmp/hostwatch-bench",
                      "flap": flap, "rules": rules})
    .to_string();
    config::load_str(&text, "bench.json", &|_| None).expect("synthetic config")
}

fn evaluation_only(n: usize, flap: bool) {
    let config = synthetic_config(n, flap);
    let mut registry = Registry::new();
    let metrics = [
        Metric::CpuUsage,
        Metric::CpuIowait,
        Metric::Load1,
        Metric::Load5,
        Metric::Load15,
        Metric::MemUsedPercent,
        Metric::SwapUsedPercent,
        Metric::SwapInRate,
        Metric::SwapOutRate,
        Metric::TcpEstablished,
    ];
    let ids: Vec<_> = metrics.iter().map(|&m| registry.intern(m, None)).collect();
    let mut engine = Engine::new(&config, None);
    let mut sample = Sample::default();
    let mut out = Vec::with_capacity(n * 4);
    let mut ticks = Vec::new();
    for tick in 0..1500u64 {
        sample.clear();
        sample.unix_ts = 1_000_000.0 + 5.0 * tick as f64;
        for (i, &id) in ids.iter().enumerate() {
            // Values wander over the thresholds, so alerts move between states.
            let v = 40.0 + ((tick * 7 + i as u64 * 13) % 60) as f64;
            sample.points.push((id, v));
        }
        out.clear();
        let t0 = thread_cpu_ns();
        engine.tick(&registry, &sample, &mut out);
        let t1 = thread_cpu_ns();
        if tick >= 100 {
            ticks.push(t1 - t0);
        }
    }
    let med = median(ticks.clone());
    println!(
        "evaluate {n:>6} rules{}: median {:>9.1} µs per tick ({:.0} ns per rule), p99 {:.1} µs",
        if flap { "" } else { " (flap off)" },
        med as f64 / 1e3,
        med as f64 / n as f64,
        p99(ticks) as f64 / 1e3
    );
}

/// The last pid the kernel handed out (`/proc/loadavg`'s last field).
fn last_pid() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().last()?.parse().ok()
}

/// Median CPU time of one collect with `collect` as the config's collect section, and the
/// share of collects before which some pid was handed out (the process scan lists `/proc`
/// then); with `spawn`, a short-lived process is started (and reaped) before each one.
fn collect_median(collect: serde_json::Value, ticks: usize, spawn: bool) -> (f64, f64) {
    let text = json!({"host": "bench", "state_dir": "/tmp/hostwatch-bench", "collect": collect, "rules": []}).to_string();
    let config = config::load_str(&text, "bench.json", &|_| None).expect("bench config");
    let mut backend = collect::backend(&config.collect);
    let mut registry = Registry::new();
    let mut sample = Sample::default();
    backend.collect(&mut registry, &mut sample);
    let mut ns = Vec::with_capacity(ticks);
    let (mut pid, mut moved) = (last_pid(), 0usize);
    for _ in 0..ticks {
        if spawn {
            let _ = std::process::Command::new("true").status();
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
        let now = last_pid();
        moved += usize::from(now != pid);
        pid = now;
        let t0 = thread_cpu_ns();
        backend.collect(&mut registry, &mut sample);
        ns.push(thread_cpu_ns() - t0);
    }
    (median(ns) as f64 / 1e3, moved as f64 / ticks as f64 * 100.0)
}

fn process_count() -> usize {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| {
                    e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
                })
                .count()
        })
        .unwrap_or(0)
}

/// The process scan's cost: a collect with process groups against one without.
fn process_scan(label: &str) {
    let pidfile = std::env::temp_dir().join(format!("hostwatch-bench-{}.pid", std::process::id()));
    let _ = std::fs::write(&pidfile, format!("{}\n", std::os::unix::process::parent_id()));
    // The example groups: a name, a pidfile (of a running process), arguments.
    let comm = json!([
        {"name": "nginx", "comm": "nginx"},
        {"name": "db", "pidfile": pidfile.display().to_string()},
    ]);
    let mut with_cmdline = comm.clone();
    with_cmdline
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "api", "cmdline": "*gunicorn*app:api*"}));
    // Every sleeper matching: `stat` and the descriptor count of each.
    let every_sleeper = json!([{"name": "sleepers", "comm": "sleep"}]);
    let ticks = 200;
    for spawn in [false, true] {
        let (base, _) = collect_median(json!({}), ticks, spawn);
        let (comm_us, started) = collect_median(json!({"processes": comm}), ticks, spawn);
        let (cmd_us, _) = collect_median(json!({"processes": with_cmdline}), ticks, spawn);
        let (all_us, _) = collect_median(json!({"processes": every_sleeper}), ticks, spawn);
        println!(
            "process scan, {label} ({} processes), {}: collect without groups {base:.1} µs; comm + pidfile groups {comm_us:.1} µs (+{:.1} µs); with a cmdline group too {cmd_us:.1} µs (+{:.1} µs); a group every sleeper matches {all_us:.1} µs (+{:.1} µs)",
            process_count(),
            if spawn {
                "a process started before every tick".to_string()
            } else {
                format!(
                    "the machine as it is (a pid handed out before {started:.0} % of the ticks)"
                )
            },
            comm_us - base,
            cmd_us - base,
            all_us - base,
        );
    }
    let _ = std::fs::remove_file(&pidfile);
}

/// Spawned processes, killed and reaped however the bench ends (a panic included).
struct Sleepers(Vec<std::process::Child>);

impl Drop for Sleepers {
    fn drop(&mut self) {
        for s in &mut self.0 {
            let _ = s.kill();
            let _ = s.wait();
        }
    }
}

fn process_scans() {
    process_scan("this machine");
    let sleepers: Vec<std::process::Child> = (0..1000)
        .filter_map(|_| {
            std::process::Command::new("sleep")
                .arg("1000")
                .stdin(std::process::Stdio::null())
                .spawn()
                .ok()
        })
        .collect();
    let sleepers = Sleepers(sleepers);
    assert_eq!(sleepers.0.len(), 1000, "could not spawn 1,000 sleepers");
    process_scan("1,000 sleepers spawned");
    drop(sleepers);
}

fn main() {
    // `cargo test --all-targets` runs this binary without `--bench`: a smoke run only.
    if !std::env::args().any(|a| a == "--bench") {
        evaluation_only(10, true);
        return;
    }
    if std::env::args().any(|a| a == "processes") {
        // `cargo bench --bench tick -- processes`: the process scans only.
        process_scans();
        return;
    }
    full_default_tick();
    for n in [10, 1_000, 10_000] {
        evaluation_only(n, true);
        evaluation_only(n, false);
    }
    process_scans();
}
