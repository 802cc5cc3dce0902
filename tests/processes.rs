//! Process checks against real processes: `hostwatch sample` follows processes the test starts
//! and kills (matched by arguments, by name and through a pidfile) and agrees with psutil
//! (tests/support/psutil_procs.py) on count, resident memory and descriptors; `once` exits
//! CRITICAL on `proc.count < 1` when the process is gone and OK while it runs; `check` refuses
//! bad groups with file:line:column and key path; a steady collect with process groups
//! allocates nothing (a counting allocator, counting on the test's own thread only).
//!
//! Tolerances: counts and descriptor sums exactly; resident memory within 10 % or 256 KiB
//! (a sleeping process's RSS barely moves between the two reads). psutil is required (a
//! missing one fails the test with a message, never a silent skip).

mod common;

use common::{bin, run, stderr, stdout, tempdir, write};
use serde_json::{Value, json};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A child killed (and reaped) when the test ends, however it ends.
struct Running(Child);

impl Running {
    fn pid(&self) -> u32 {
        self.0.id()
    }
    fn kill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(program: &Path, args: &[&str]) -> Running {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
    Running(child)
}

/// A copy of `sleep` under a name no other process has (its comm).
fn unique_sleep(dir: &Path, tag: &str) -> (PathBuf, String) {
    let name = format!("hw{tag}{}", std::process::id() % 100_000);
    assert!(name.len() <= 15);
    let path = dir.join(&name);
    let sleep = ["/bin/sleep", "/usr/bin/sleep"].into_iter().find(|p| Path::new(p).exists());
    std::fs::copy(sleep.expect("a sleep binary"), &path).expect("copy sleep");
    (path, name)
}

fn config(dir: &Path, groups: &Value, rules: Value) -> PathBuf {
    let cfg = json!({
        "host": "proc-host", "interval": "1s",
        "state_dir": dir.join("state").display().to_string(),
        "collect": {"processes": groups},
        "rules": rules,
    });
    write(dir, "config.json", &cfg.to_string())
}

/// `hostwatch sample --format json`: series key → value, and what it logged.
fn sample(cfg: &Path) -> (serde_json::Map<String, Value>, String) {
    let o =
        run(&["sample", "--format", "json", "--over", "500ms", "--config", cfg.to_str().unwrap()]);
    assert!(o.status.success(), "sample failed: {}", stderr(&o));
    let doc: Value = serde_json::from_str(&stdout(&o)).expect("sample prints JSON");
    (doc["metrics"].as_object().expect("metrics").clone(), stderr(&o))
}

fn get(metrics: &serde_json::Map<String, Value>, key: &str) -> f64 {
    metrics
        .get(key)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no {key} in {:?}", metrics.keys().collect::<Vec<_>>()))
}

/// What psutil sees of `groups`, leaving out `exclude` (no hostwatch runs meanwhile).
fn psutil(groups: &Value) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/psutil_procs.py");
    let o = Command::new("python3").arg(script).arg(groups.to_string()).output();
    let o = o.expect("run python3 (psutil is needed: `python3 -m pip install psutil`)");
    assert!(o.status.success(), "psutil_procs.py failed: {}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("psutil_procs.py prints JSON")
}

#[test]
fn sample_follows_started_and_killed_processes_and_matches_psutil() {
    let _serial = serial();
    let dir = tempdir("procs-sample");
    let (program, comm) = unique_sleep(&dir, "p");
    let arg = format!("1000.{}", std::process::id());
    let pidfile = dir.join("sleeper.pid");
    let groups = json!([
        {"name": "by_args", "cmdline": format!("sleep {arg}")},
        {"name": "by_comm", "comm": comm},
        {"name": "by_pidfile", "pidfile": pidfile.display().to_string()},
        {"name": "absent", "comm": "hw-none-xx"},
    ]);
    let cfg = config(&dir, &groups, json!([]));

    let (before, _) = sample(&cfg);
    for name in ["by_args", "by_comm", "by_pidfile", "absent"] {
        assert_eq!(get(&before, &format!("proc.count{{name={name}}}")), 0.0, "{name}");
        assert_eq!(get(&before, &format!("proc.rss{{name={name}}}")), 0.0, "{name}");
        assert_eq!(get(&before, &format!("proc.fds{{name={name}}}")), 0.0, "{name}");
    }

    let by_args = spawn(Path::new("sleep"), &[&arg]);
    let by_comm: Vec<Running> = (0..3).map(|_| spawn(&program, &["1000"])).collect();
    std::fs::write(&pidfile, format!("{}\n", by_comm[0].pid())).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));

    let ps_before = psutil(&groups);
    let (running, log) = sample(&cfg);
    let ps_after = psutil(&groups);
    assert!(!log.contains("WARN"), "a readable pidfile logs nothing: {log}");
    for (name, count) in [("by_args", 1.0), ("by_comm", 3.0), ("by_pidfile", 1.0), ("absent", 0.0)]
    {
        let key = |m: &str| format!("proc.{m}{{name={name}}}");
        assert_eq!(get(&running, &key("count")), count, "{name}");
        assert_eq!(ps_before[name]["count"], ps_after[name]["count"], "psutil moved: {name}");
        assert_eq!(
            get(&running, &key("count")),
            ps_after[name]["count"].as_f64().unwrap(),
            "{name}"
        );
        assert_eq!(get(&running, &key("fds")), ps_after[name]["fds"].as_f64().unwrap(), "{name}");
        let (rss, ps_rss) = (get(&running, &key("rss")), ps_after[name]["rss"].as_f64().unwrap());
        assert!(
            (rss - ps_rss).abs() <= (0.1 * ps_rss).max(256.0 * 1024.0),
            "{name}: rss {rss} against psutil's {ps_rss}"
        );
        if count > 0.0 {
            assert!(rss > 100_000.0, "{name}: rss {rss}");
            let cpu = get(&running, &key("cpu"));
            assert!((0.0..5.0).contains(&cpu), "{name}: a sleeper uses no CPU: {cpu}");
        }
    }

    // Killed: the pidfile still names the dead pid, the comm group keeps the other two.
    by_args.kill();
    let mut by_comm = by_comm.into_iter();
    by_comm.next().unwrap().kill();
    let (after, log) = sample(&cfg);
    assert_eq!(get(&after, "proc.count{name=by_args}"), 0.0);
    assert_eq!(get(&after, "proc.fds{name=by_args}"), 0.0);
    assert_eq!(get(&after, "proc.count{name=by_comm}"), 2.0);
    assert_eq!(get(&after, "proc.count{name=by_pidfile}"), 0.0);
    assert!(log.contains("names no running process"), "logged once: {log}");

    // A pidfile holding garbage, then none at all: count 0, logged, never fatal.
    std::fs::write(&pidfile, "not a pid\n").unwrap();
    let (garbage, log) = sample(&cfg);
    assert_eq!(get(&garbage, "proc.count{name=by_pidfile}"), 0.0);
    assert!(log.contains("holds no pid"), "{log}");
    std::fs::remove_file(&pidfile).unwrap();
    let (missing, log) = sample(&cfg);
    assert_eq!(get(&missing, "proc.count{name=by_pidfile}"), 0.0);
    assert!(log.contains("cannot be read"), "{log}");
}

#[test]
fn once_is_critical_while_the_process_is_gone_and_ok_while_it_runs() {
    let _serial = serial();
    let dir = tempdir("procs-once");
    let (program, comm) = unique_sleep(&dir, "o");
    let groups = json!([{"name": "worker", "comm": comm}]);
    let rules = json!([{"name": "worker_down", "metric": "proc.count", "match": {"name": "worker"},
                        "crit": "< 1", "description": "worker is down"}]);
    let cfg = config(&dir, &groups, rules);
    let once = || {
        run(&[
            "once",
            "--config",
            cfg.to_str().unwrap(),
            "--format",
            "nagios",
            "--first-interval",
            "200ms",
        ])
    };
    let o = once();
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).starts_with("HOSTWATCH CRITICAL - worker_down "), "{}", stdout(&o));

    let worker = spawn(&program, &["1000"]);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let o = once();
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).starts_with("HOSTWATCH OK - "), "{}", stdout(&o));

    worker.kill();
    let o = once();
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("worker_down"), "{}", stdout(&o));
}

#[test]
fn check_refuses_bad_groups_with_position_and_path() {
    let dir = tempdir("procs-check");
    let text = r#"{"rules": [],
 "collect": {"processes": [
  {"name": "a", "comn": "nginx"},
  {"name": "b", "comm": "nginx", "cmdline": "*nginx*"},
  {"name": "", "comm": "x"},
  {"name": "d", "comm": "x"},
  {"name": "d", "pidfile": "/run/d.pid"}
 ]}}"#;
    let path = write(&dir, "bad.json", text);
    let o =
        Command::new(bin()).args(["check", "--config", path.to_str().unwrap()]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let err = stderr(&o);
    let file = path.display().to_string();
    for expected in [
        format!("{file}:3:17: collect.processes[0].comn: unknown key (did you mean \"comm\"?)"),
        format!(
            "{file}:4:45: collect.processes[1].cmdline: a process group has exactly one matcher"
        ),
        format!("{file}:5:12: collect.processes[2].name: must not be empty"),
        format!("{file}:7:12: collect.processes[4].name: duplicate process group name \"d\""),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
}

thread_local! {
    /// True while this thread's allocations are counted.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

struct CountingAllocator;

fn count() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn a_steady_collect_with_process_groups_allocates_nothing() {
    use hostwatch::collect::{self, Sample};
    use hostwatch::series::Registry;
    let _serial = serial();
    let dir = tempdir("procs-alloc");
    let (program, comm) = unique_sleep(&dir, "a");
    let sleeper = spawn(&program, &["1000"]);
    let pidfile = write(&dir, "s.pid", &format!("{}\n", sleeper.pid()));
    let text = json!({"collect": {"processes": [
        {"name": "by_comm", "comm": comm},
        {"name": "by_args", "cmdline": format!("{}*", program.display())},
        {"name": "by_pidfile", "pidfile": pidfile.display().to_string()},
        {"name": "gone", "pidfile": dir.join("none.pid").display().to_string()},
    ]}, "rules": []})
    .to_string();
    let config = hostwatch::config::load_str(&text, "t.json", &|_| None).expect("config");
    let mut backend = collect::backend(&config.collect);
    let (mut registry, mut sample) = (Registry::new(), Sample::default());
    // Warm up: descriptors opened, buffers and tables sized, series interned, warnings logged.
    for _ in 0..3 {
        backend.collect(&mut registry, &mut sample);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let value = |registry: &Registry, sample: &Sample, key: &str| {
        sample.points.iter().find(|(id, _)| &*registry.info(*id).key == key).map(|p| p.1)
    };
    for name in ["by_comm", "by_args", "by_pidfile"] {
        let key = format!("proc.count{{name={name}}}");
        assert_eq!(value(&registry, &sample, &key), Some(1.0), "{key}");
    }
    // Another process starting on this machine may grow a table once, legitimately: that
    // window was no steady state and is measured again, at most five times.
    let mut counts = Vec::new();
    for _ in 0..5 {
        ALLOCATIONS.store(0, Ordering::Relaxed);
        COUNTING.with(|c| c.set(true));
        for _ in 0..50 {
            backend.collect(&mut registry, &mut sample);
        }
        COUNTING.with(|c| c.set(false));
        counts.push(ALLOCATIONS.load(Ordering::Relaxed));
        if counts.last() == Some(&0) {
            break;
        }
    }
    assert_eq!(value(&registry, &sample, "proc.count{name=by_comm}"), Some(1.0));
    assert_eq!(counts.last(), Some(&0), "allocations per window of 50 collects: {counts:?}");
    sleeper.kill();
}
