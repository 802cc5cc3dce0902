//! The portable collector, over the sysinfo crate: CPU, load, memory, swap use, space per
//! mount, bytes per disk and per-interface network rates on every platform sysinfo supports.
//!
//! What sysinfo cannot give (iowait, swap paging rates, disk operations, the TCP connection
//! count, inodes) is reported unsupported, never zero. On Unix the space of a mount comes from
//! `statvfs` so `disk.used_percent` means what df shows (root-reserved blocks excluded), as
//! with the `/proc` collector; elsewhere it is (total − available) / total. Rates are computed
//! here from sysinfo's running totals over our own monotonic clock. What sysinfo reads behind
//! each refresh on Linux: `/proc/stat` (CPU), `/proc/meminfo` (memory), `/proc/loadavg`,
//! `/proc/mounts` + `/dev/disk/by-id` + `/proc/diskstats` (disks) and, per interface, ten
//! files under `/sys/class/net` plus `getifaddrs` (networks). Not the place for `/proc`
//! parsing.

use super::filter::{is_pseudo_fs, is_virtual_block_device};
use super::{Backend, LabelFilter, Sample, global};
use crate::metrics::{LabelKey, Metric};
use crate::series::{Registry, SeriesId};
use std::time::Instant;
use sysinfo::{DiskRefreshKind, Disks, MemoryRefreshKind, Networks, System};

/// What sysinfo cannot provide on any platform.
const NEVER: [Metric; 6] = [
    Metric::CpuIowait,
    Metric::SwapInRate,
    Metric::SwapOutRate,
    Metric::DiskReadOps,
    Metric::DiskWriteOps,
    Metric::TcpEstablished,
];
/// Process checks read `/proc/[pid]` (the proc backend); sysinfo's process table would read
/// a dozen files per process per tick.
const PROC: [Metric; 4] = [Metric::ProcCount, Metric::ProcCpu, Metric::ProcRss, Metric::ProcFds];
/// Inodes come from statvfs; without it (not Unix) there are none.
const INODES: [Metric; 2] = [Metric::DiskInodesUsedPercent, Metric::DiskInodesFree];
const CPU: [Metric; 2] = [Metric::CpuUsage, Metric::CpuCoreUsage];
const MEM: [Metric; 4] =
    [Metric::MemUsed, Metric::MemUsedPercent, Metric::MemAvailable, Metric::SwapUsedPercent];
const LOAD: [Metric; 3] = [Metric::Load1, Metric::Load5, Metric::Load15];
const MOUNT: [Metric; 4] = [
    Metric::DiskUsedPercent,
    Metric::DiskFree,
    Metric::DiskInodesUsedPercent,
    Metric::DiskInodesFree,
];
const DISK_IO: [Metric; 2] = [Metric::DiskReadRate, Metric::DiskWriteRate];
const NET: [Metric; 6] = [
    Metric::NetRxRate,
    Metric::NetTxRate,
    Metric::NetRxPackets,
    Metric::NetTxPackets,
    Metric::NetRxErrors,
    Metric::NetTxErrors,
];

/// One core, mount, device or interface: its series (`None` when the filter left it out),
/// its previous counters and whether this tick listed it.
#[derive(Debug)]
struct Tracked<const N: usize> {
    label: String,
    ids: Option<[SeriesId; N]>,
    prev: Option<([u64; N], Instant)>,
    seen: bool,
}

/// The things of one kind, found by label with a linear scan (no allocation once known).
#[derive(Debug)]
struct Table<const N: usize> {
    key: LabelKey,
    metrics: [Metric; N],
    entries: Vec<Tracked<N>>,
}

impl<const N: usize> Table<N> {
    fn new(key: LabelKey, metrics: [Metric; N]) -> Self {
        Table { key, metrics, entries: Vec::new() }
    }

    fn begin(&mut self) {
        for e in &mut self.entries {
            e.seen = false;
        }
    }

    /// The entry for `label`, discovered (filtered, interned) if new; `None` if it was
    /// already listed this tick (a duplicate keeps the first).
    fn entry(
        &mut self,
        label: &str,
        excluded_by_default: bool,
        registry: &mut Registry,
        filter: &LabelFilter,
    ) -> Option<&mut Tracked<N>> {
        let index = match self.entries.iter().position(|e| e.label == label) {
            Some(i) => i,
            None => {
                let ids = filter
                    .allows(self.key, label, excluded_by_default)
                    .then(|| self.metrics.map(|m| registry.intern(m, Some(label))));
                self.entries.push(Tracked {
                    label: label.to_string(),
                    ids,
                    prev: None,
                    seen: false,
                });
                self.entries.len() - 1
            }
        };
        let e = &mut self.entries[index];
        if e.seen {
            return None;
        }
        e.seen = true;
        Some(e)
    }

    /// Records running totals and pushes `Δ/Δt` for each that did not go backwards.
    #[allow(clippy::too_many_arguments)]
    fn counters(
        &mut self,
        label: &str,
        excluded_by_default: bool,
        now: [u64; N],
        at: Instant,
        registry: &mut Registry,
        filter: &LabelFilter,
        out: &mut Sample,
    ) {
        let Some(e) = self.entry(label, excluded_by_default, registry, filter) else { return };
        let Some(ids) = e.ids else { return };
        if let Some((before, then)) = e.prev {
            let secs = at.saturating_duration_since(then).as_secs_f64();
            if secs > 0.0 {
                for i in 0..N {
                    if let Some(delta) = now[i].checked_sub(before[i]) {
                        out.points.push((ids[i], delta as f64 / secs));
                    }
                }
            }
        }
        e.prev = Some((now, at));
    }

    /// Retires and forgets what this tick did not list.
    fn finish(&mut self, registry: &mut Registry) {
        self.entries.retain(|e| {
            if !e.seen {
                for id in e.ids.iter().flatten() {
                    registry.retire(*id);
                }
            }
            e.seen
        });
    }
}

/// The sysinfo collector.
pub struct SysinfoBackend {
    filter: LabelFilter,
    system: Option<System>,
    disks: Option<Disks>,
    networks: Option<Networks>,
    /// Series of the unlabelled metrics, interned on first use.
    globals: Vec<(Metric, SeriesId)>,
    /// Process groups are configured: `proc.*` is reported unsupported.
    processes: bool,
    /// False until the first CPU refresh, which gives no usage yet.
    cpu_primed: bool,
    cores: Table<1>,
    mounts: Table<4>,
    devices: Table<2>,
    ifaces: Table<6>,
}

impl std::fmt::Debug for SysinfoBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SysinfoBackend").field("filter", &self.filter).finish_non_exhaustive()
    }
}

impl SysinfoBackend {
    /// A collector keeping what `filter` allows; what sysinfo cannot set up on this platform
    /// is logged once and reported unsupported.
    /// With `processes` (process groups configured, which `check` refuses for this backend
    /// but `sample --backend sysinfo` can still ask for), `proc.*` is reported unsupported.
    pub fn new(filter: LabelFilter, processes: bool) -> SysinfoBackend {
        fn ok<T>(what: &str, r: Result<T, sysinfo::Error>) -> Option<T> {
            r.map_err(|e| log::warn!("sysinfo cannot read {what} here: {e}; reported unsupported"))
                .ok()
        }
        SysinfoBackend {
            filter,
            processes,
            system: ok("CPU and memory", System::new()),
            disks: ok("disks", Disks::new()),
            networks: ok("network interfaces", Networks::new()),
            globals: Vec::new(),
            cpu_primed: false,
            cores: Table::new(LabelKey::Core, [Metric::CpuCoreUsage]),
            mounts: Table::new(LabelKey::Mount, MOUNT),
            devices: Table::new(LabelKey::Device, DISK_IO),
            ifaces: Table::new(LabelKey::Iface, NET),
        }
    }

    fn cpu_and_memory(&mut self, registry: &mut Registry, out: &mut Sample) {
        let Some(system) = self.system.as_mut() else {
            out.unsupported.extend_from_slice(&CPU);
            out.unsupported.extend_from_slice(&MEM);
            return;
        };
        system.refresh_cpu_usage();
        if system.cpus().is_empty() {
            out.unsupported.extend_from_slice(&CPU);
        } else {
            let primed = std::mem::replace(&mut self.cpu_primed, true);
            if primed {
                let id = global(&mut self.globals, registry, Metric::CpuUsage);
                out.points.push((id, f64::from(system.global_cpu_usage())));
            }
            self.cores.begin();
            for (index, cpu) in system.cpus().iter().enumerate() {
                let num = core_number(cpu.name()).unwrap_or(index);
                let mut buf = itoa_buf();
                let label = fmt_usize(num, &mut buf);
                let Some(e) = self.cores.entry(label, false, registry, &self.filter) else {
                    continue;
                };
                if let (true, Some([id])) = (primed, e.ids) {
                    out.points.push((id, f64::from(cpu.usage())));
                }
            }
            self.cores.finish(registry);
        }

        system.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram().with_swap());
        let total = system.total_memory();
        if total == 0 {
            out.unsupported.extend_from_slice(&MEM);
            return;
        }
        let available = system.available_memory().min(total);
        let used = total - available;
        let swap_total = system.total_swap();
        let swap = if swap_total == 0 {
            0.0
        } else {
            100.0 * swap_total.saturating_sub(system.free_swap()) as f64 / swap_total as f64
        };
        let values = [used as f64, 100.0 * used as f64 / total as f64, available as f64, swap];
        for (metric, value) in MEM.into_iter().zip(values) {
            out.points.push((global(&mut self.globals, registry, metric), value));
        }
    }

    fn load(&mut self, registry: &mut Registry, out: &mut Sample) {
        match System::load_average() {
            Ok(l) => {
                for (metric, value) in LOAD.into_iter().zip([l.one, l.five, l.fifteen]) {
                    out.points.push((global(&mut self.globals, registry, metric), value));
                }
            }
            Err(_) => out.unsupported.extend_from_slice(&LOAD),
        }
    }

    fn disks(&mut self, registry: &mut Registry, out: &mut Sample) {
        let Some(disks) = self.disks.as_mut() else {
            out.unsupported.extend_from_slice(&MOUNT);
            out.unsupported.extend_from_slice(&DISK_IO);
            return;
        };
        let kind = DiskRefreshKind::nothing().with_io_usage();
        // Space comes from statvfs on Unix; elsewhere sysinfo reads it.
        let kind = if cfg!(unix) { kind } else { kind.with_storage() };
        disks.refresh_specifics(true, kind);
        let at = Instant::now();
        let filter = &self.filter;
        let mut io_seen = false;
        self.mounts.begin();
        self.devices.begin();
        for disk in disks.iter() {
            let mount = disk.mount_point().to_string_lossy();
            let pseudo = is_pseudo_fs(disk.file_system().as_encoded_bytes());
            if let Some(e) = self.mounts.entry(&mount, pseudo, registry, filter)
                && let Some([used_id, free_id, inodes_id, ifree_id]) = e.ids
                && let Some(((used_percent, free), inodes)) = space(disk)
            {
                out.points.push((used_id, used_percent));
                out.points.push((free_id, free));
                // A file system that reports no inodes gets no value, never 0.
                if let Some((inodes_percent, inodes_free)) = inodes {
                    out.points.push((inodes_id, inodes_percent));
                    out.points.push((ifree_id, inodes_free));
                }
            }
            let usage = disk.usage();
            let totals = [usage.total_read_bytes, usage.total_written_bytes];
            if totals == [0, 0] {
                continue; // no I/O statistics for this one
            }
            io_seen = true;
            let name = disk.name().to_string_lossy();
            let device = name.strip_prefix("/dev/").unwrap_or(&name);
            let virtual_dev = is_virtual_block_device(device.as_bytes());
            self.devices.counters(device, virtual_dev, totals, at, registry, filter, out);
        }
        self.mounts.finish(registry);
        self.devices.finish(registry);
        if !io_seen {
            out.unsupported.extend_from_slice(&DISK_IO);
        }
    }

    fn networks(&mut self, registry: &mut Registry, out: &mut Sample) {
        let Some(networks) = self.networks.as_mut() else {
            out.unsupported.extend_from_slice(&NET);
            return;
        };
        networks.refresh(true);
        let at = Instant::now();
        self.ifaces.begin();
        for (name, data) in networks.iter() {
            let totals = [
                data.total_received(),
                data.total_transmitted(),
                data.total_packets_received(),
                data.total_packets_transmitted(),
                data.total_errors_on_received(),
                data.total_errors_on_transmitted(),
            ];
            self.ifaces.counters(
                &name.to_string_lossy(),
                false,
                totals,
                at,
                registry,
                &self.filter,
                out,
            );
        }
        self.ifaces.finish(registry);
    }
}

/// (used percent, free) of a mount's space or inodes.
type Pair = (f64, f64);

/// df's figures for a mount: used percent of what non-root users can reach and bytes free,
/// and as `df -i` computes them inodes used percent and inodes free (`None` when the file
/// system reports no inodes).
#[cfg(unix)]
fn space(disk: &sysinfo::Disk) -> Option<(Pair, Option<Pair>)> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(disk.mount_point().as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is NUL-terminated and `st` is a valid place for the kernel to fill.
    if unsafe { libc::statvfs(path.as_ptr(), st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)] // u32 or u64 depending on the target
    let (blocks, bfree, bavail, frsize) =
        (st.f_blocks as u64, st.f_bfree as u64, st.f_bavail as u64, st.f_frsize as u64);
    let used = blocks.saturating_sub(bfree).saturating_mul(frsize) as f64;
    let avail = bavail.saturating_mul(frsize) as f64;
    #[allow(clippy::unnecessary_cast)] // u32 or u64 depending on the target
    let (files, ffree, favail) = (st.f_files as u64, st.f_ffree as u64, st.f_favail as u64);
    let iused = files.saturating_sub(ffree) as f64;
    let inodes = (files > 0 && iused + favail as f64 > 0.0)
        .then(|| (100.0 * iused / (iused + favail as f64), favail as f64));
    (blocks > 0 && used + avail > 0.0).then(|| ((100.0 * used / (used + avail), avail), inodes))
}

/// Used percent and bytes free from sysinfo's total and available space.
#[cfg(not(unix))]
fn space(disk: &sysinfo::Disk) -> Option<(Pair, Option<Pair>)> {
    let (total, avail) = (disk.total_space(), disk.available_space());
    (total > 0)
        .then(|| ((100.0 * total.saturating_sub(avail) as f64 / total as f64, avail as f64), None))
}

/// The number at the end of a CPU name (`cpu3` → 3), if any.
fn core_number(name: &str) -> Option<usize> {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    name[name.len() - digits..].parse().ok()
}

fn itoa_buf() -> [u8; 20] {
    [0; 20]
}

/// Formats `n` into `buf` without allocating.
fn fmt_usize(mut n: usize, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

impl Backend for SysinfoBackend {
    fn collect(&mut self, registry: &mut Registry, out: &mut Sample) {
        out.clear();
        out.stamp_now();
        self.cpu_and_memory(registry, out);
        self.load(registry, out);
        self.disks(registry, out);
        self.networks(registry, out);
        out.unsupported.extend_from_slice(&NEVER);
        if self.processes {
            out.unsupported.extend_from_slice(&PROC);
        }
        if cfg!(not(unix)) {
            out.unsupported.extend_from_slice(&INODES);
        }
    }

    fn name(&self) -> &'static str {
        "sysinfo"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CollectConfig;
    use std::time::Duration;

    #[test]
    fn helpers() {
        assert_eq!(core_number("cpu12"), Some(12));
        assert_eq!(core_number("CPU 3"), Some(3));
        assert_eq!(core_number("cpu"), None);
        let mut buf = itoa_buf();
        assert_eq!(fmt_usize(0, &mut buf), "0");
        let mut buf = itoa_buf();
        assert_eq!(fmt_usize(1234, &mut buf), "1234");
    }

    #[test]
    fn table_rates_first_read_backwards_and_retire() {
        let (mut reg, mut out, filter) =
            (Registry::new(), Sample::default(), LabelFilter::new(&CollectConfig::default()));
        let mut t: Table<1> = Table::new(LabelKey::Device, [Metric::DiskReadRate]);
        let t0 = Instant::now();
        let mut tick = |t: &mut Table<1>, v: u64, s: u64, out: &mut Sample| {
            out.points.clear();
            t.begin();
            t.counters("sda", false, [v], t0 + Duration::from_secs(s), &mut reg, &filter, out);
            t.finish(&mut reg);
        };
        tick(&mut t, 100, 0, &mut out);
        assert!(out.points.is_empty(), "first read");
        tick(&mut t, 300, 2, &mut out);
        assert_eq!(out.points.first().map(|p| p.1), Some(100.0));
        tick(&mut t, 5, 3, &mut out);
        assert!(out.points.is_empty(), "went backwards");
        tick(&mut t, 15, 4, &mut out);
        assert_eq!(out.points.first().map(|p| p.1), Some(10.0), "rebased");
        t.begin();
        t.finish(&mut reg);
        assert!(reg.iter().all(|(_, i)| !i.live), "retired when gone");
    }

    #[test]
    fn collects_memory_and_marks_the_rest_unsupported() {
        let (mut reg, mut out) = (Registry::new(), Sample::default());
        let mut b = SysinfoBackend::new(LabelFilter::new(&CollectConfig::default()), false);
        b.collect(&mut reg, &mut out);
        let cpu = reg.find(Metric::CpuUsage, None);
        assert!(cpu.is_none_or(|id| !out.points.iter().any(|p| p.0 == id)), "no CPU on first read");
        for m in NEVER {
            assert!(out.unsupported.contains(&m));
        }
        let avail = reg.find(Metric::MemAvailable, None).expect("memory");
        assert!(out.points.iter().any(|p| p.0 == avail && p.1 > 0.0));
        std::thread::sleep(Duration::from_millis(250));
        b.collect(&mut reg, &mut out);
        let cpu = reg.find(Metric::CpuUsage, None).expect("cpu");
        assert!(out.points.iter().any(|p| p.0 == cpu && (0.0..=100.0).contains(&p.1)));
    }
}
