//! Proves that rule and alert evaluation allocate nothing per tick in steady state, with a
//! counting global allocator around `Engine::tick` (every window form, firing and quiet
//! alerts, silences in force, holding back a firing alert, scheduled silences in and out of
//! their windows, process-group series).

use hostwatch::collect::Sample;
use hostwatch::config;
use hostwatch::engine::Engine;
use hostwatch::metrics::Metric;
use hostwatch::series::Registry;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const CONFIG: &str = r#"{
  "host": "alloc-test", "interval": "5s", "state_dir": "/tmp/hostwatch-alloc-test",
  "rules": [
    {"name": "latest", "metric": "cpu.usage", "warn": "> 50"},
    {"name": "for", "metric": "cpu.usage", "warn": "> 50", "for": "1m"},
    {"name": "avg", "metric": "cpu.iowait", "warn": "> 20", "avg": "1m"},
    {"name": "max", "metric": "load.1", "warn": "> 2", "max": "2m"},
    {"name": "min", "metric": "load.5", "warn": "> 2", "min": "2m"},
    {"name": "occ", "metric": "tcp.established", "warn": "> 5000", "occurrences": "3/5"},
    {"name": "cores", "metric": "cpu.core.usage", "warn": "> 95", "crit": "> 99", "for": "30s"},
    {"name": "disk", "metric": "disk.used_percent", "match": {"mount": "/*"}, "warn": "> 90", "clear": "< 85"},
    {"name": "nginx_down", "metric": "proc.count", "match": {"name": "nginx"}, "crit": "< 1"},
    {"name": "proc_cpu", "metric": "proc.cpu", "warn": "> 150", "avg": "1m"}
  ],
  "escalation": {"remind_every": "24h", "critical_after": "24h"},
  "silences": [{"rule": "disk", "match": {"mount": "/data*"}, "until": "2286-11-20T17:46:39Z"},
               {"rule": "latest", "schedule": {"days": ["sun"], "from": "02:00", "to": "03:00", "tz": "Europe/Lisbon"}},
               {"rule": "cores", "match": {"core": "3"}, "schedule": {"from": "00:00", "to": "23:59", "tz": "America/New_York"}}]
}"#;

#[test]
fn steady_state_ticks_allocate_nothing() {
    let config = config::load_str(CONFIG, "alloc-test.json", &|_| None).expect("valid config");
    let mut registry = Registry::new();
    let mut ids = vec![
        registry.intern(Metric::CpuUsage, None),
        registry.intern(Metric::CpuIowait, None),
        registry.intern(Metric::Load1, None),
        registry.intern(Metric::Load5, None),
        registry.intern(Metric::TcpEstablished, None),
    ];
    for core in 0..16 {
        ids.push(registry.intern(Metric::CpuCoreUsage, Some(&core.to_string())));
    }
    for mount in ["/", "/data", "/data/b", "/var"] {
        ids.push(registry.intern(Metric::DiskUsedPercent, Some(mount)));
    }
    // Process groups: quiet (a count of 95, 95 % of one core).
    ids.push(registry.intern(Metric::ProcCount, Some("nginx")));
    ids.push(registry.intern(Metric::ProcCpu, Some("nginx")));
    let mut engine = Engine::new(&config, None);
    let mut sample = Sample::default();
    sample.points.reserve(ids.len());
    let mut out = Vec::with_capacity(1024);
    // Values: cpu.usage high (a firing alert stays firing), the rest oscillating below or
    // around their thresholds without changing state; core 3 pinned high (firing).
    let value = |i: usize, tick: usize| -> f64 {
        match i {
            0 => 80.0 + (tick % 3) as f64,
            1 => 5.0 + (tick % 4) as f64,
            2 | 3 => 0.5 + (tick % 5) as f64 * 0.1,
            4 => 100.0 + (tick % 7) as f64,
            8 => 99.5,
            _ if i >= 21 => 95.0,
            _ => 10.0 + (tick % 10) as f64,
        }
    };
    let mut run_ticks = |engine: &mut Engine, range: std::ops::Range<usize>, out: &mut Vec<_>| {
        for tick in range {
            sample.clear();
            sample.unix_ts = 1_000_000.0 + 5.0 * tick as f64;
            for (i, &id) in ids.iter().enumerate() {
                sample.points.push((id, value(i, tick)));
            }
            engine.tick(&registry, &sample, out);
        }
    };
    // Warm-up: bind series, fill every ring, let alerts reach their steady phase.
    run_ticks(&mut engine, 0..200, &mut out);
    assert!(out.iter().any(|n| &*n.rule == "latest"), "a firing alert is part of the steady state");
    assert!(out.iter().any(|n| &*n.rule == "disk" && n.series.contains("mount=/var")));
    // The silenced firing alerts on /data and /data/b, and core 3 inside its window (a
    // Monday morning in New York; `latest`'s Sunday window is not open), were recorded once,
    // in the warm-up.
    let held: Vec<String> =
        engine.take_suppressed().map(|s| s.notification.series.to_string()).collect();
    assert_eq!(
        held,
        [
            "disk.used_percent{mount=/data}",
            "disk.used_percent{mount=/data/b}",
            "cpu.core.usage{core=3}"
        ]
    );
    out.clear();
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    run_ticks(&mut engine, 200..1200, &mut out);
    COUNTING.store(false, Ordering::SeqCst);
    let allocations = ALLOCATIONS.load(Ordering::SeqCst);
    assert!(out.is_empty(), "steady state produced notifications: {out:?}");
    assert_eq!(engine.take_suppressed().count(), 0, "a held-back episode recorded again");
    assert_eq!(allocations, 0, "heap allocations in 1000 steady-state ticks");
}
