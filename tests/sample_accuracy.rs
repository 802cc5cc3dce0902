//! `hostwatch sample --format json` against independent readers of the same moment: psutil
//! (tests/support/psutil_snapshot.py), `/proc/net/dev` read by the test itself, and real load
//! made by the test (stress-ng, a file written with fsync, loopback TCP transfers and
//! connections).
//!
//! Tolerances, chosen for what can move between the two reads (a few hundred ms apart):
//! - mem.available and mem.used_percent: within 2 % of total memory; swap.used_percent: 1 point;
//! - disk.used_percent: 0.5 point; disk.free: 1 % of the filesystem's size, for every mount
//!   hostwatch reports; every physical partition psutil lists must be reported, unless it is
//!   a subtree (a bind mount) of a filesystem hostwatch reports another mount of;
//! - load.1: within 1.0 or 30 %, whichever is larger;
//! - interface rates times the sampling interval never exceed the byte and packet counters
//!   that moved between two reads of /proc/net/dev around the sample;
//! - tcp.established rises by at least 45 with 50 loopback connections open;
//! - under load: cpu.usage > 50 with one stress-ng CPU worker per core, some device's
//!   disk.write_rate > 1 MB/s while a file is written and fsynced, net.rx_rate{iface=lo}
//!   > 10 MB/s during a loopback transfer.
//!
//! A last test, in process, checks that a steady-state `collect()` of the `/proc` backend
//! allocates nothing (a counting allocator, counting on the test's own thread only).
//!
//! psutil and stress-ng are required (scripts/test.sh installs them); a missing one fails the
//! test with a message saying so, never a silent skip. Tests take a lock so that one test's
//! load does not disturb another's comparison.

use hostwatch::collect::{self, Sample};
use hostwatch::config::{CollectBackend, CollectConfig};
use hostwatch::series::Registry;
use serde_json::Value;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// The interval between the two reads of one sample.
const OVER: Duration = Duration::from_secs(1);

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// One `hostwatch sample --format json` run: metric key → value, and the unsupported list.
struct Sampled {
    metrics: BTreeMap<String, f64>,
    unsupported: Vec<String>,
}

impl Sampled {
    fn get(&self, key: &str) -> Option<f64> {
        self.metrics.get(key).copied()
    }

    fn must(&self, key: &str) -> f64 {
        self.get(key)
            .unwrap_or_else(|| panic!("hostwatch reported no {key}; got {:?}", self.metrics.keys()))
    }

    /// `(label, value)` of every series of `metric`.
    fn labelled<'a>(&'a self, metric: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
        self.metrics.iter().filter_map(move |(key, v)| {
            let label = key.strip_prefix(metric)?.strip_prefix('{')?.strip_suffix('}')?;
            Some((label.split_once('=')?.1, *v))
        })
    }
}

fn hostwatch_sample(backend: &str) -> Sampled {
    let over = format!("{}ms", OVER.as_millis());
    let out = Command::new(env!("CARGO_BIN_EXE_hostwatch"))
        .args(["sample", "--format", "json", "--over", &over, "--backend", backend])
        .output()
        .expect("run hostwatch");
    assert!(
        out.status.success(),
        "hostwatch sample failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("hostwatch printed invalid JSON ({e}): {}", String::from_utf8_lossy(&out.stdout))
    });
    let metrics = doc["metrics"]
        .as_object()
        .expect("a metrics object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_f64().unwrap_or_else(|| panic!("{k}: not a number: {v}"))))
        .collect();
    let unsupported = doc["unsupported"]
        .as_array()
        .expect("an unsupported array")
        .iter()
        .map(|v| v.as_str().expect("metric names").to_string())
        .collect();
    Sampled { metrics, unsupported }
}

fn require_psutil() {
    let ok =
        Command::new("python3").args(["-c", "import psutil"]).status().is_ok_and(|s| s.success());
    assert!(
        ok,
        "psutil is missing (or python3 is): these tests compare hostwatch with psutil. \
         Install it with `python3 -m pip install psutil` (scripts/test.sh does)."
    );
}

fn require_stress_ng() {
    let ok = Command::new("stress-ng")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "stress-ng is missing: install it with `apt-get install stress-ng` (scripts/test.sh does)."
    );
}

/// What psutil sees now; `mounts` restricts the space figures to those mount points.
fn psutil_snapshot(mounts: &[&str]) -> Value {
    require_psutil();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/psutil_snapshot.py");
    let out = Command::new("python3").arg(script).args(mounts).output().expect("run python3");
    assert!(
        out.status.success(),
        "psutil_snapshot.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("psutil_snapshot.py prints JSON")
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn proc_backend_reports_every_metric() {
    let _serial = serial();
    let s = hostwatch_sample("proc");
    assert!(
        s.unsupported.is_empty(),
        "everything is readable here, yet unsupported: {:?}",
        s.unsupported
    );
    for metric in [
        "cpu.usage",
        "cpu.iowait",
        "load.1",
        "load.5",
        "load.15",
        "mem.used",
        "mem.used_percent",
        "mem.available",
        "swap.used_percent",
        "swap.in_rate",
        "swap.out_rate",
        "tcp.established",
    ] {
        s.must(metric);
    }
    for metric in
        ["cpu.core.usage", "disk.used_percent", "disk.free", "net.rx_rate", "net.tx_errors"]
    {
        assert!(s.labelled(metric).next().is_some(), "no {metric} series");
    }
    for (key, v) in &s.metrics {
        assert!(v.is_finite() && *v >= 0.0, "{key} = {v}");
        if key.contains("percent") || key.starts_with("cpu.") {
            assert!(*v <= 100.0, "{key} = {v}");
        }
    }
}

fn check_memory(backend: &str) {
    let s = hostwatch_sample(backend);
    let p = psutil_snapshot(&["/"]);
    let total = num(&p["memory"]["total"]);
    let tolerance = 0.02 * total;
    let (ours, theirs) = (s.must("mem.available"), num(&p["memory"]["available"]));
    assert!(
        (ours - theirs).abs() <= tolerance,
        "{backend}: mem.available {ours} vs psutil {theirs} (±{tolerance})"
    );
    // psutil's percent is (total - available) / total, rounded to 0.1.
    let (ours, theirs) = (s.must("mem.used_percent"), num(&p["memory"]["percent"]));
    assert!(
        (ours - theirs).abs() <= 2.0,
        "{backend}: mem.used_percent {ours} vs psutil {theirs} (±2)"
    );
    let used = s.must("mem.used");
    assert!(
        (used - (total - s.must("mem.available"))).abs() <= 1.0,
        "{backend}: mem.used is total - available"
    );
    let (ours, theirs) = (s.must("swap.used_percent"), num(&p["swap"]["percent"]));
    assert!(
        (ours - theirs).abs() <= 1.0,
        "{backend}: swap.used_percent {ours} vs psutil {theirs} (±1)"
    );
}

#[test]
fn memory_and_swap_match_psutil() {
    let _serial = serial();
    check_memory("proc");
}

#[test]
fn sysinfo_backend_agrees_on_memory_and_reports_what_it_lacks() {
    let _serial = serial();
    check_memory("sysinfo");
    let s = hostwatch_sample("sysinfo");
    for lacking in [
        "cpu.iowait",
        "swap.in_rate",
        "swap.out_rate",
        "disk.read_ops",
        "disk.write_ops",
        "tcp.established",
    ] {
        assert!(
            s.unsupported.iter().any(|m| m == lacking),
            "{lacking} should be unsupported: {:?}",
            s.unsupported
        );
        assert!(s.get(lacking).is_none(), "{lacking} is unsupported yet has a value (never 0)");
    }
    let usage = s.must("cpu.usage");
    assert!((0.0..=100.0).contains(&usage), "cpu.usage {usage}");
}

#[test]
fn disk_space_matches_psutil_for_every_mount() {
    let _serial = serial();
    let s = hostwatch_sample("proc");
    let mounts: Vec<&str> = s.labelled("disk.used_percent").map(|(m, _)| m).collect();
    assert!(mounts.contains(&"/"), "no disk.used_percent for /: {mounts:?}");
    // Labels with \xNN escapes name non-UTF-8 paths psutil cannot be handed back.
    let comparable: Vec<&str> = mounts.iter().copied().filter(|m| !m.contains("\\x")).collect();
    let p = psutil_snapshot(&comparable);
    for mount in &comparable {
        let theirs = &p["space"][*mount];
        if theirs.get("error").is_some() {
            continue; // unmounted in between
        }
        let (used, free, total) =
            (num(&theirs["used"]), num(&theirs["free"]), num(&theirs["total"]));
        let percent = 100.0 * used / (used + free);
        let ours = s.must(&format!("disk.used_percent{{mount={mount}}}"));
        assert!(
            (ours - percent).abs() <= 0.5,
            "{mount}: disk.used_percent {ours} vs psutil {percent} (±0.5)"
        );
        let ours = s.must(&format!("disk.free{{mount={mount}}}"));
        assert!(
            (ours - free).abs() <= 0.01 * total,
            "{mount}: disk.free {ours} vs psutil {free} (±1 % of {total})"
        );
    }
    // Every physical filesystem psutil knows is reported (except read-only images, always
    // full), or else it is a subtree (a bind mount) of a device hostwatch does report: a mount
    // of a whole filesystem is never left out, and what is left out is the same disk again.
    // Mount points are compared decoded (mountinfo writes a space as \040).
    let pseudo = ["squashfs", "iso9660", "overlay", "tmpfs"];
    let table = mount_table();
    let reported_devs: Vec<&str> =
        mounts.iter().filter_map(|m| table.get(*m)).map(|(dev, _)| dev.as_str()).collect();
    for part in p["partitions"].as_array().expect("partitions") {
        let (mount, fstype) =
            (part["mountpoint"].as_str().unwrap_or(""), part["fstype"].as_str().unwrap_or(""));
        let mount = unescape_octal(mount);
        if pseudo.contains(&fstype) || mounts.contains(&mount.as_str()) {
            continue;
        }
        let Some((dev, root)) = table.get(&mount) else {
            continue; // unmounted in between
        };
        assert!(
            root != "/",
            "psutil lists {mount} ({fstype}), a whole filesystem, but hostwatch does not: {mounts:?}"
        );
        assert!(
            reported_devs.contains(&dev.as_str()),
            "psutil lists {mount} ({fstype}, {root} of {dev}) and hostwatch reports no mount of \
             that filesystem: {mounts:?}"
        );
    }
}

/// This process's mount table: mount point → (`major:minor`, mountinfo root), decoded; a
/// mount point listed twice keeps the last entry (the one on top), as hostwatch does.
fn mount_table() -> BTreeMap<String, (String, String)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() > 4).then(|| (unescape_octal(f[4]), (f[2].to_string(), unescape_octal(f[3]))))
        })
        .collect()
}

/// Decodes the kernel's `\ooo` escapes (`\040` space, `\011` tab, `\012`, `\134` backslash).
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn load_matches_psutil() {
    let _serial = serial();
    let s = hostwatch_sample("proc");
    let p = psutil_snapshot(&["/"]);
    for (i, key) in ["load.1", "load.5", "load.15"].into_iter().enumerate() {
        let (ours, theirs) = (s.must(key), num(&p["load"][i]));
        let tolerance = f64::max(1.0, 0.3 * theirs);
        assert!(
            (ours - theirs).abs() <= tolerance,
            "{key} {ours} vs psutil {theirs} (±{tolerance})"
        );
    }
}

/// Per interface: rx bytes, tx bytes, rx packets, tx packets, read by the test itself.
fn read_net_dev() -> BTreeMap<String, [u64; 4]> {
    let mut text = String::new();
    File::open("/proc/net/dev")
        .and_then(|mut f| f.read_to_string(&mut text))
        .expect("read /proc/net/dev");
    let mut out = BTreeMap::new();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.rsplit_once(':') else { continue };
        let v: Vec<u64> = rest.split_whitespace().filter_map(|f| f.parse().ok()).collect();
        if v.len() >= 10 {
            out.insert(name.trim().to_string(), [v[0], v[8], v[1], v[9]]);
        }
    }
    out
}

/// Keeps a loopback TCP transfer running until the guard is dropped; returns bytes sent.
struct LoopbackLoad {
    stop: Arc<AtomicBool>,
    writer: Option<thread::JoinHandle<u64>>,
}

impl LoopbackLoad {
    /// Sends at least `min_bytes`, and keeps sending until stopped.
    fn start(min_bytes: u64) -> LoopbackLoad {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        thread::spawn(move || {
            if let Ok((mut conn, _)) = listener.accept() {
                let mut buf = vec![0u8; 1 << 16];
                while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
            }
        });
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let writer = thread::spawn(move || {
            let mut stream = TcpStream::connect(addr).expect("connect loopback");
            let chunk = vec![0xa5u8; 1 << 16];
            let mut sent = 0u64;
            while sent < min_bytes || !flag.load(Ordering::Relaxed) {
                stream.write_all(&chunk).expect("loopback write");
                sent += chunk.len() as u64;
            }
            sent
        });
        LoopbackLoad { stop, writer: Some(writer) }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.writer.take().map(|w| w.join().expect("writer thread")).unwrap_or(0)
    }
}

impl Drop for LoopbackLoad {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn interface_rates_agree_with_net_dev_and_loopback_transfer_shows() {
    let _serial = serial();
    let load = LoopbackLoad::start(200 << 20);
    thread::sleep(Duration::from_millis(100));
    let before = read_net_dev();
    let s = hostwatch_sample("proc");
    let after = read_net_dev();
    let sent = load.finish();
    assert!(sent >= 200 << 20);

    let over = OVER.as_secs_f64();
    let names = ["net.rx_rate", "net.tx_rate", "net.rx_packets", "net.tx_packets"];
    for (iface, b) in &before {
        let Some(a) = after.get(iface) else { continue };
        for (i, metric) in names.iter().enumerate() {
            let Some(rate) = s.get(&format!("{metric}{{iface={iface}}}")) else {
                panic!("no {metric} for {iface}")
            };
            let moved = a[i].saturating_sub(b[i]) as f64;
            // hostwatch's two reads happened between ours, at least OVER apart.
            assert!(
                rate * over <= moved * 1.01 + 1.0,
                "{metric}{{iface={iface}}} = {rate}/s over {over} s, but only {moved} moved around the sample"
            );
        }
    }
    let lo = s.must("net.rx_rate{iface=lo}");
    assert!(
        lo > 10e6,
        "net.rx_rate{{iface=lo}} = {lo} B/s during a loopback transfer (want > 10 MB/s)"
    );
}

#[test]
fn tcp_established_counts_real_connections() {
    let _serial = serial();
    let before = hostwatch_sample("proc").must("tcp.established");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let mut ends = Vec::new();
    for _ in 0..50 {
        ends.push(TcpStream::connect(addr).expect("connect"));
        ends.push(listener.accept().expect("accept").0);
    }
    let after = hostwatch_sample("proc").must("tcp.established");
    drop(ends);
    assert!(
        after - before >= 45.0,
        "tcp.established went from {before} to {after} with 50 loopback connections open"
    );
}

/// Sends SIGTERM to a child we started (stress-ng then stops its workers) and reaps it.
fn stop(mut child: Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) on the pid of our own child, which has not been reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn cpu_usage_rises_under_stress_ng() {
    let _serial = serial();
    require_stress_ng();
    let idle = hostwatch_sample("proc");
    let cores = idle.labelled("cpu.core.usage").count().max(1);
    let child = Command::new("stress-ng")
        .args(["--cpu", &cores.to_string(), "--timeout", "10s", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start stress-ng");
    thread::sleep(Duration::from_millis(1500));
    let busy = hostwatch_sample("proc");
    stop(child);
    let usage = busy.must("cpu.usage");
    assert!(
        usage > 50.0,
        "cpu.usage = {usage} with {cores} stress-ng CPU workers (a CPU quota on this container would explain it)"
    );
    for (core, v) in busy.labelled("cpu.core.usage") {
        assert!((0.0..=100.0).contains(&v), "core {core}: {v}");
    }
}

#[test]
fn disk_write_rate_rises_while_a_file_is_fsynced() {
    let _serial = serial();
    // On the build's disk (not a tmpfs /tmp), so writes reach a block device.
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("write-load-{}", std::process::id()));
    let stop_flag = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop_flag);
    let file_path = path.clone();
    let writer = thread::spawn(move || -> std::io::Result<u64> {
        let mut f = File::create(&file_path)?;
        // Not zeros, so compressing filesystems still write.
        let mut x: u32 = 0x1234_5678;
        let chunk: Vec<u8> = (0..1 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let mut written = 0u64;
        while !flag.load(Ordering::Relaxed) {
            for _ in 0..8 {
                f.write_all(&chunk)?;
            }
            f.sync_data()?;
            written += 8 << 20;
            if written.is_multiple_of(64 << 20) {
                // Start over so the file stays small.
                f.set_len(0)?;
                f.seek(SeekFrom::Start(0))?;
            }
        }
        Ok(written)
    });
    thread::sleep(Duration::from_millis(200));
    let s = hostwatch_sample("proc");
    stop_flag.store(true, Ordering::Relaxed);
    let written = writer.join().expect("writer thread");
    let _ = std::fs::remove_file(&path);
    let written = written.unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    let rates: Vec<(&str, f64)> = s.labelled("disk.write_rate").collect();
    assert!(
        rates.iter().any(|(_, r)| *r > 1e6),
        "no device wrote > 1 MB/s while the test wrote and fsynced {written} bytes: {rates:?}"
    );
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
fn proc_collect_allocates_nothing_in_steady_state() {
    let _serial = serial();
    let config = CollectConfig { backend: CollectBackend::Proc, ..CollectConfig::default() };
    let mut backend = collect::backend(&config);
    let mut registry = Registry::new();
    let mut sample = Sample::default();
    // Warm up: files opened, buffers sized, every core, mount, device and interface interned.
    for _ in 0..3 {
        backend.collect(&mut registry, &mut sample);
        thread::sleep(Duration::from_millis(20));
    }
    // A mount or interface appearing or going during the window (another test's tmpfs, a
    // lazy unmount completing) allocates once, legitimately: that window was no steady state
    // and is measured again, at most three times.
    let world = || {
        let read = |p: &str| std::fs::read(p).unwrap_or_default();
        (read("/proc/self/mountinfo"), read("/proc/net/dev").split(|&b| b == b':').count())
    };
    let mut n = 0;
    for _ in 0..3 {
        let before = world();
        ALLOCATIONS.store(0, Ordering::Relaxed);
        COUNTING.with(|c| c.set(true));
        for _ in 0..50 {
            backend.collect(&mut registry, &mut sample);
        }
        COUNTING.with(|c| c.set(false));
        n = ALLOCATIONS.load(Ordering::Relaxed);
        if world() == before {
            break;
        }
    }
    assert!(!sample.points.is_empty());
    assert_eq!(n, 0, "{n} allocations in 50 steady-state collects");
}
