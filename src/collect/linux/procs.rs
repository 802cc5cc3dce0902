//! Process checks (`collect.processes`): `proc.count`, `proc.cpu`, `proc.rss` and `proc.fds`
//! per configured group, from one scan of `/proc` per tick.
//!
//! What is read: the `/proc` listing (`getdents64` into a kept buffer) only when a group
//! matches by `comm` or `cmdline`, and then only when the pids handed out since the last scan
//! are not known (the last field of `/proc/loadavg` says which: none, or up to [`PROBE_MAX`]
//! new ones, each looked up by itself — `stat` of `/proc/<pid>`, `status` for its `Tgid`, so a
//! thread is not taken for a process), and one scan in [`RELIST_TICKS`] at least: listing a
//! thousand pids costs the kernel 0.5 to 1.5 ms here, most of a scan; then a process's `comm`, its `cmdline` only when some
//! group matches arguments, and `stat` (state, CPU ticks, start time, resident pages) and the
//! `fd` directory (and `statm`, for the precise resident set) of the processes that match. Name and arguments are read at each of a
//! process's first [`YOUNG_TICKS`] ticks (a fork `exec`s soon), at every tick while it matches
//! a group (so it stops counting as soon as it stops matching), and otherwise one tick in
//! [`RECHECK_TICKS`], staggered by pid: the bound on how late a process that `exec`s or renames
//! itself into a group later in life is counted. A process is its pid and the inode number of
//! its `/proc/<pid>` entry (procfs gives each process's entry its own), so a reused pid is a
//! new, young process; an entry renumbered after dentry eviction is read again, which is only
//! a cost. A pidfile group reads its file and that one
//! pid's `stat`. The `comm` and `cmdline` files of listed processes stay open and are re-read
//! with `pread` (0.5 µs against 3 µs for open + read + close, measured here), up to a budget of
//! descriptors (a quarter of `RLIMIT_NOFILE`, at most 4096); past it they are opened each tick.
//! A kept descriptor belongs to one process: once it exited the read fails and the path is
//! opened again, so a reused pid is a new process. Buffers and tables are kept across ticks:
//! a steady tick allocates nothing.
//!
//! Semantics: a group's series exist while it is configured (count 0 when nothing matches;
//! rss and fds are sums over its processes, 0 when none); zombies and hostwatch itself are never
//! counted; a process counts in every group it matches. CPU is (utime + stime) ticks over the
//! tick's elapsed monotonic time, percent of one core; a process contributes from its second
//! consecutive matching sighting with the same start time, so a new or reused pid never
//! spikes. The process's text (name, arguments) is only compared, never becomes a label or a
//! message. Not the place for per-thread data or for deciding what a group is (`config`).

use super::parse::{fields, lines, parse_u64};
use crate::collect::Sample;
use crate::config::{ProcessGroup, ProcessMatcher};
use crate::glob::glob_match_bytes;
use crate::metrics::Metric;
use crate::series::{Registry, SeriesId};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::Instant;

/// The series of a group, in this order.
const METRICS: [Metric; 4] = [Metric::ProcCount, Metric::ProcCpu, Metric::ProcRss, Metric::ProcFds];
/// Most process groups (`config` refuses more).
const MAX_GROUPS: usize = crate::config::MAX_PROCESS_GROUPS;
/// Most descriptors kept open for `comm` and `cmdline` files.
const MAX_KEPT: usize = 4096;
/// A new process's name and arguments are read at each of its first this many ticks (a fork
/// that `exec`s soon after is seen under its new name).
const YOUNG_TICKS: u8 = 3;
/// Afterwards, a process that matched no group at its last read is read again once every this
/// many ticks (staggered by pid): the bound on how late a later `exec` or rename is seen.
const RECHECK_TICKS: u64 = 4;
/// At most this many pids handed out since the last scan are looked up one by one; more, and
/// `/proc` is listed (a listing of a thousand processes costs about as much as 150 lookups).
const PROBE_MAX: u64 = 64;
/// `/proc` is listed at least once in this many scans, whatever `loadavg` says: the bound for a
/// `/proc` whose pids `loadavg` does not follow (another pid namespace's), and when the table
/// sheds the entries of processes that exited unmatched.
const RELIST_TICKS: u64 = 12;

/// How one group matches.
#[derive(Debug)]
enum Matcher {
    Comm(Box<[u8]>),
    Cmdline(Box<[u8]>),
    Pidfile {
        path: PathBuf,
        /// The path for `open` (empty when it holds a NUL: never opens).
        cpath: std::ffi::CString,
        state: PidfileState,
    },
}

/// What a pidfile group knows between ticks.
#[derive(Debug, Default)]
struct PidfileState {
    /// The pid, start time and CPU ticks of its process at the last tick.
    prev: Option<(u32, u64, u64)>,
    /// The problem logged last (`None`: none, or recovered).
    warned: Option<PidfileProblem>,
}

/// Why a pidfile group counts 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PidfileProblem {
    Unreadable,
    Garbage,
    NotRunning,
}

/// One group's series and this tick's sums.
#[derive(Debug)]
struct Group {
    name: Box<str>,
    matcher: Matcher,
    /// Interned at the first scan.
    ids: Option<[SeriesId; 4]>,
    count: u64,
    ticks: u64,
    rss: u64,
    fds: u64,
}

impl Group {
    fn add(&mut self, p: &Reading, cpu_ticks: u64) {
        self.count += 1;
        self.ticks += cpu_ticks;
        self.rss += p.rss_bytes;
        self.fds += p.fds;
    }
}

/// A listed process: its kept descriptors, what its last read found, and its CPU ticks at the
/// last matching sighting.
#[derive(Debug)]
struct Proc {
    pid: u32,
    /// The inode of its `/proc/<pid>` entry: another number for the same pid is another
    /// process (procfs numbers the entry of each process anew).
    ino: u64,
    /// Ticks it has been listed, up to [`YOUNG_TICKS`].
    age: u8,
    /// It matched some group at its last read (then it is read every tick).
    matched: bool,
    comm: Option<OwnedFd>,
    cmdline: Option<OwnedFd>,
    /// Start time and utime + stime when it last matched a group (cleared when it does not).
    prev: Option<(u64, u64)>,
}

impl Proc {
    /// A process seen for the first time: young, nothing read, no descriptor.
    fn new(pid: u32, ino: u64) -> Proc {
        let (comm, cmdline, prev) = (None, None, None);
        Proc { pid, ino, age: 0, matched: false, comm, cmdline, prev }
    }

    /// The descriptors it holds.
    fn kept(&self) -> usize {
        usize::from(self.comm.is_some()) + usize::from(self.cmdline.is_some())
    }
}

/// What `stat` and the `fd` directory say about a process.
#[derive(Debug, Default, Clone, Copy)]
struct Reading {
    start: u64,
    ticks: u64,
    rss_bytes: u64,
    fds: u64,
}

/// The process scanner of the `/proc` collector.
#[derive(Debug)]
pub(super) struct Procs {
    groups: Vec<Group>,
    /// Some group matches by `comm` or `cmdline`: the listing is read.
    list: bool,
    /// Some group matches by `cmdline`: every listed process's arguments are read.
    cmdline: bool,
    proc_dir: Option<OwnedFd>,
    dents: Vec<u8>,
    /// This tick's listing: pid and the inode of its entry, in pid order.
    pids: Vec<(u32, u64)>,
    table: Vec<Proc>,
    next: Vec<Proc>,
    /// `cmdline` and `stat` text.
    buf: Vec<u8>,
    kept: usize,
    budget: usize,
    self_pid: u32,
    clk_tck: f64,
    page: u64,
    last_at: Option<Instant>,
    /// Scans so far: staggers the re-reads of [`RECHECK_TICKS`].
    scans: u64,
    /// `/proc/loadavg`, whose last field is the last pid the kernel handed out.
    loadavg: Option<OwnedFd>,
    /// That pid at the last scan (`None`: unknown, list at the next scan).
    seen_last_pid: Option<u64>,
    /// Scans since the last listing.
    unlisted: u64,
    /// True while the failure to list `/proc` has been logged.
    warned: bool,
}

impl Procs {
    /// A scanner for `groups`; nothing is read and no series interned before the first scan.
    pub(super) fn new(groups: &[ProcessGroup]) -> Procs {
        let groups: Vec<Group> = groups
            .iter()
            .map(|g| Group {
                name: g.name.as_str().into(),
                matcher: match &g.matcher {
                    ProcessMatcher::Comm(c) => Matcher::Comm(c.as_bytes().into()),
                    ProcessMatcher::Cmdline(c) => Matcher::Cmdline(c.as_bytes().into()),
                    ProcessMatcher::Pidfile(p) => Matcher::Pidfile {
                        path: p.clone(),
                        cpath: std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
                            .unwrap_or_default(),
                        state: PidfileState::default(),
                    },
                },
                ids: None,
                count: 0,
                ticks: 0,
                rss: 0,
                fds: 0,
            })
            .collect();
        let list = groups.iter().any(|g| !matches!(g.matcher, Matcher::Pidfile { .. }));
        let cmdline = groups.iter().any(|g| matches!(g.matcher, Matcher::Cmdline(_)));
        Procs {
            groups,
            list,
            cmdline,
            proc_dir: None,
            dents: Vec::new(),
            pids: Vec::new(),
            table: Vec::new(),
            next: Vec::new(),
            buf: Vec::new(),
            kept: 0,
            budget: fd_budget(),
            self_pid: std::process::id(),
            // SAFETY: sysconf has no preconditions.
            clk_tck: match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
                n if n > 0 => n as f64,
                _ => 100.0,
            },
            // SAFETY: as above.
            page: match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
                n if n > 0 => n as u64,
                _ => 4096,
            },
            last_at: None,
            scans: 0,
            loadavg: None,
            seen_last_pid: None,
            unlisted: 0,
            warned: false,
        }
    }

    /// Scans once and pushes every group's values; a `/proc` that cannot be listed makes the
    /// `proc.*` metrics unsupported for this tick.
    pub(super) fn update(&mut self, registry: &mut Registry, out: &mut Sample) {
        if self.groups.is_empty() {
            return;
        }
        for g in &mut self.groups {
            (g.count, g.ticks, g.rss, g.fds) = (0, 0, 0, 0);
            if g.ids.is_none() {
                g.ids = Some(METRICS.map(|m| registry.intern(m, Some(&g.name))));
            }
        }
        if self.open_proc().is_err() {
            out.unsupported.extend_from_slice(&METRICS);
            return;
        }
        if self.list {
            let last_pid = self.last_pid();
            match self.news(last_pid) {
                News::None => self.unlisted += 1,
                News::Pids(from, to) => {
                    self.probe(from, to);
                    self.unlisted += 1;
                }
                News::Unknown => {
                    self.seen_last_pid = None;
                    if let Err(e) = self.list_pids() {
                        if !self.warned {
                            self.warned = true;
                            log::warn!("cannot list /proc: {e}; proc.* reported unsupported");
                        }
                        out.unsupported.extend_from_slice(&METRICS);
                        return;
                    }
                    if std::mem::take(&mut self.warned) {
                        log::info!("/proc can be listed again");
                    }
                    self.merge();
                    self.unlisted = 0;
                }
            }
            self.seen_last_pid = last_pid;
            self.match_listed();
        }
        self.pidfiles();
        let at = Instant::now();
        let secs = self.last_at.map(|then| at.saturating_duration_since(then).as_secs_f64());
        self.last_at = Some(at);
        for g in &self.groups {
            let Some([count, cpu, rss, fds]) = g.ids else { continue };
            out.points.push((count, g.count as f64));
            if let Some(secs) = secs.filter(|s| *s > 0.0) {
                out.points.push((cpu, g.ticks as f64 / (secs * self.clk_tck) * 100.0));
            }
            out.points.push((rss, g.rss as f64));
            out.points.push((fds, g.fds as f64));
        }
    }

    /// The last pid the kernel handed out: the last field of `/proc/loadavg`.
    fn last_pid(&mut self) -> Option<u64> {
        let dir = self.dir();
        let mut text = [0u8; 128];
        for _ in 0..2 {
            if self.loadavg.is_none() {
                self.loadavg = open_at(dir, b"loadavg\0", false).ok();
            }
            let fd = self.loadavg.as_ref()?;
            match pread_all(fd.as_raw_fd(), &mut text) {
                Ok(len) => {
                    let text = trim_newline(&text[..len]);
                    return parse_u64(text.rsplit(|&b| b == b' ').next()?);
                }
                Err(_) => self.loadavg = None,
            }
        }
        None
    }

    /// What started since the last scan, from the last pid handed out then and now. Pids are
    /// handed out in increasing order until they wrap at `pid_max`: the same pid means no
    /// process (or thread) started, a few more mean those pids are the only new ones, anything
    /// else (a wrap, a burst, nothing known, [`RELIST_TICKS`] scans without a listing) asks
    /// for a listing.
    fn news(&self, now: Option<u64>) -> News {
        match (self.seen_last_pid, now) {
            _ if self.unlisted + 1 >= RELIST_TICKS => News::Unknown,
            (Some(then), Some(now)) if now == then => News::None,
            (Some(then), Some(now)) if now > then && now - then <= PROBE_MAX => {
                News::Pids(then + 1, now)
            }
            _ => News::Unknown,
        }
    }

    /// Looks up the pids `from..=to` (handed out since the last scan): each one that is a
    /// process (not a thread: its `Tgid` is itself) enters the table as a young process, in
    /// pid order; an entry already there with the same `/proc` inode is kept (a listing
    /// found it), one with another inode was a process that exited and is replaced.
    fn probe(&mut self, from: u64, to: u64) {
        let dir = self.dir();
        for pid in from..=to {
            let Ok(pid) = u32::try_from(pid) else { break };
            let at = self.table.partition_point(|p| p.pid < pid);
            let Some(ino) = process_inode(dir, pid, &mut self.buf) else {
                continue;
            };
            let fresh = Proc::new(pid, ino);
            match self.table.get_mut(at) {
                Some(p) if p.pid == pid && p.ino == ino => {}
                Some(p) if p.pid == pid => {
                    self.kept -= p.kept();
                    *p = fresh;
                }
                _ => self.table.insert(at, fresh),
            }
        }
    }

    fn open_proc(&mut self) -> io::Result<()> {
        if self.proc_dir.is_none() {
            self.proc_dir = Some(open_at(libc::AT_FDCWD, b"/proc\0", true)?);
        }
        Ok(())
    }

    fn dir(&self) -> RawFd {
        self.proc_dir.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }

    /// Reads the pids of `/proc` (ascending, as procfs lists them) into `pids`.
    fn list_pids(&mut self) -> io::Result<()> {
        let fd = self.dir();
        self.pids.clear();
        // SAFETY: lseek on a descriptor we own.
        if unsafe { libc::lseek(fd, 0, libc::SEEK_SET) } < 0 {
            self.proc_dir = None;
            return Err(io::Error::last_os_error());
        }
        let pids = &mut self.pids;
        let result = each_dirent(fd, &mut self.dents, |name, ino| {
            if let Some(pid) = parse_u64(name).and_then(|p| u32::try_from(p).ok()) {
                pids.push((pid, ino));
            }
        });
        if result.is_err() {
            self.proc_dir = None;
        }
        // procfs lists in pid order; sort anyway (a no-op pass when sorted) for the merge.
        if !self.pids.is_sorted() {
            self.pids.sort_unstable();
        }
        result.map(|_| ())
    }

    /// Rebuilds the table in listing order: known processes (same pid, same entry inode) keep
    /// their entry (and descriptors), new ones get an empty entry, gone ones are dropped
    /// (closing their descriptors). Both tables keep their capacity (drained, then swapped).
    fn merge(&mut self) {
        let (kept, next) = (&mut self.kept, &mut self.next);
        next.clear();
        let mut old = self.table.drain(..).peekable();
        for &(pid, ino) in &self.pids {
            while let Some(gone) = old.next_if(|p| p.pid < pid) {
                *kept -= gone.kept();
            }
            match old.next_if(|p| p.pid == pid) {
                Some(p) if p.ino == ino => next.push(p),
                reused => {
                    if let Some(gone) = reused {
                        *kept -= gone.kept();
                    }
                    next.push(Proc::new(pid, ino));
                }
            }
        }
        for gone in old {
            *kept -= gone.kept();
        }
        std::mem::swap(&mut self.table, &mut self.next);
    }

    /// Matches the listed processes against the comm and cmdline groups: each one while it is
    /// young, each one that matched at its last read, and the others in turn, one tick in
    /// [`RECHECK_TICKS`]; a process not read this tick matched nothing at its last read.
    fn match_listed(&mut self) {
        let dir = self.dir();
        let mut comm = [0u8; 64];
        self.scans = self.scans.wrapping_add(1);
        for i in 0..self.table.len() {
            let entry = &mut self.table[i];
            let pid = entry.pid;
            let due = entry.age < YOUNG_TICKS
                || entry.matched
                || (self.scans.wrapping_add(u64::from(pid))) % RECHECK_TICKS == 0;
            entry.age = entry.age.saturating_add(1).min(YOUNG_TICKS);
            if pid == self.self_pid || !due {
                continue;
            }
            entry.matched = false;
            let Some(comm_len) = read_kept(
                dir,
                pid,
                b"comm",
                &mut self.table[i].comm,
                &mut self.kept,
                self.budget,
                Buf::Fixed(&mut comm),
            ) else {
                self.table[i].prev = None;
                continue;
            };
            let name = trim_newline(&comm[..comm_len]);
            let mut args: &[u8] = &[];
            if self.cmdline {
                let len = read_kept(
                    dir,
                    pid,
                    b"cmdline",
                    &mut self.table[i].cmdline,
                    &mut self.kept,
                    self.budget,
                    Buf::Grow(&mut self.buf),
                )
                .unwrap_or(0);
                args = join_args(&mut self.buf[..len]);
            }
            let matches = |m: &Matcher| match m {
                Matcher::Comm(c) => **c == *name,
                Matcher::Cmdline(g) => !args.is_empty() && glob_match_bytes(g, args),
                Matcher::Pidfile { .. } => false,
            };
            // The groups it is in, noted before `stat` reuses the buffer the arguments are in
            // (at most MAX_GROUPS, which `config` enforces).
            let mut hit = [false; MAX_GROUPS];
            let mut any = false;
            for (slot, g) in hit.iter_mut().zip(&self.groups) {
                *slot = matches(&g.matcher);
                any |= *slot;
            }
            if !any {
                self.table[i].prev = None;
                continue;
            }
            self.table[i].matched = true;
            let Some(r) = read_process(dir, pid, &mut self.buf, &mut self.dents, self.page) else {
                self.table[i].prev = None;
                continue;
            };
            let entry = &mut self.table[i];
            let delta = cpu_delta(entry.prev, &r);
            entry.prev = Some((r.start, r.ticks));
            for (g, _) in self.groups.iter_mut().zip(hit).filter(|(_, h)| *h) {
                g.add(&r, delta);
            }
        }
    }

    /// Counts the process of each pidfile group.
    fn pidfiles(&mut self) {
        let dir = self.dir();
        let (self_pid, page) = (self.self_pid, self.page);
        for g in &mut self.groups {
            let Matcher::Pidfile { path, cpath, state } = &mut g.matcher else { continue };
            let found = match read_pidfile(cpath) {
                Err(problem) => Err(problem),
                Ok(pid) if pid == self_pid => Err(PidfileProblem::NotRunning),
                Ok(pid) => read_process(dir, pid, &mut self.buf, &mut self.dents, page)
                    .map(|r| (pid, r))
                    .ok_or(PidfileProblem::NotRunning),
            };
            match found {
                Ok((pid, r)) => {
                    if state.warned.take().is_some() {
                        log::info!("pidfile {}: pid {pid} is running", path.display());
                    }
                    let prev = state.prev.filter(|p| p.0 == pid).map(|p| (p.1, p.2));
                    let delta = cpu_delta(prev, &r);
                    state.prev = Some((pid, r.start, r.ticks));
                    let (count, ticks, rss, fds) = (1, delta, r.rss_bytes, r.fds);
                    (g.count, g.ticks, g.rss, g.fds) = (count, ticks, rss, fds);
                }
                Err(problem) => {
                    state.prev = None;
                    if state.warned != Some(problem) {
                        state.warned = Some(problem);
                        let why = match problem {
                            PidfileProblem::Unreadable => "cannot be read",
                            PidfileProblem::Garbage => "holds no pid",
                            PidfileProblem::NotRunning => "names no running process",
                        };
                        log::warn!("pidfile {} {why}: its group counts 0", path.display());
                    }
                }
            }
        }
    }
}

/// What [`Procs::news`] found.
enum News {
    /// No pid handed out since the last scan.
    None,
    /// These pids (inclusive) were handed out since.
    Pids(u64, u64),
    /// Not known: list `/proc`.
    Unknown,
}

/// The inode number of `/proc/<pid>` when `pid` is a process (a thread's id also resolves
/// there, but its `status` names another `Tgid`); `None` for a thread or a pid that is gone.
fn process_inode(dir: RawFd, pid: u32, buf: &mut Vec<u8>) -> Option<u64> {
    let mut path = [0u8; 48];
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    let entry = pid_path(&mut path, pid, b"")?;
    // SAFETY: fstatat writes into the struct we own; `entry` is NUL-terminated.
    if unsafe { libc::fstatat(dir, entry.as_ptr().cast(), st.as_mut_ptr(), 0) } != 0 {
        return None;
    }
    // SAFETY: fstatat succeeded, so it filled the struct.
    let ino = unsafe { st.assume_init() }.st_ino;
    let mut path = [0u8; 48];
    let status = open_at(dir, pid_path(&mut path, pid, b"status")?, false).ok()?;
    let len = pread_grow(status.as_raw_fd(), buf).ok()?;
    let tgid = lines(&buf[..len]).find_map(|l| l.strip_prefix(b"Tgid:"))?;
    let tgid = parse_u64(tgid.trim_ascii())?;
    (tgid == u64::from(pid)).then_some(ino)
}

/// The CPU ticks a process used since `prev`, when `prev` is the same process (start time).
fn cpu_delta(prev: Option<(u64, u64)>, r: &Reading) -> u64 {
    match prev {
        Some((start, ticks)) if start == r.start => r.ticks.saturating_sub(ticks),
        _ => 0,
    }
}

/// Where a read goes: a fixed buffer (comm) or one that grows (cmdline, stat).
enum Buf<'a> {
    Fixed(&'a mut [u8]),
    Grow(&'a mut Vec<u8>),
}

/// Reads `/proc/<pid>/<name>` through the kept descriptor `slot` (opened when missing, and
/// kept while fewer than `budget` are; opened again once if the kept one fails: it belonged
/// to a process that exited). `None`: the process is gone.
fn read_kept(
    dir: RawFd,
    pid: u32,
    name: &[u8],
    slot: &mut Option<OwnedFd>,
    kept: &mut usize,
    budget: usize,
    mut buf: Buf<'_>,
) -> Option<usize> {
    let mut fd = slot.take();
    if fd.is_some() {
        *kept -= 1;
    }
    for _ in 0..2 {
        let file = match fd.take() {
            Some(f) => f,
            None => {
                let mut path = [0u8; 48];
                open_at(dir, pid_path(&mut path, pid, name)?, false).ok()?
            }
        };
        let read = match &mut buf {
            Buf::Fixed(b) => pread_all(file.as_raw_fd(), b),
            Buf::Grow(v) => pread_grow(file.as_raw_fd(), v),
        };
        if let Ok(len) = read {
            if *kept < budget {
                *kept += 1;
                *slot = Some(file);
            }
            return Some(len);
        }
    }
    None
}

/// Reads a matching process's `stat` and counts its descriptors; `None` when it is gone or
/// a zombie.
fn read_process(
    dir: RawFd,
    pid: u32,
    buf: &mut Vec<u8>,
    dents: &mut Vec<u8>,
    page: u64,
) -> Option<Reading> {
    let mut path = [0u8; 48];
    let stat = open_at(dir, pid_path(&mut path, pid, b"stat")?, false).ok()?;
    let len = pread_grow(stat.as_raw_fd(), buf).ok()?;
    drop(stat);
    let mut r = parse_stat(&buf[..len])?;
    // `stat`'s resident pages are the kernel's approximate per-CPU count (hundreds of KiB low
    // for a small process, measured here); `statm`'s second field is the precise sum, what
    // psutil and `ps` show. `stat`'s stays when `statm` cannot be read.
    let mut path = [0u8; 48];
    if let Some(statm) =
        pid_path(&mut path, pid, b"statm").and_then(|p| open_at(dir, p, false).ok())
        && let Ok(len) = pread_grow(statm.as_raw_fd(), buf)
        && let Some(pages) = fields(&buf[..len]).nth(1).and_then(parse_u64)
    {
        r.rss_bytes = pages;
    }
    r.rss_bytes = r.rss_bytes.saturating_mul(page);
    r.fds = count_fds(dir, pid, dents);
    Some(r)
}

/// Parses `/proc/<pid>/stat`: after the name's closing `)`, the state (field 3), utime and
/// stime (14, 15), the start time (22) and the resident pages (24, left in `rss_bytes`).
/// `None` for a zombie or dead process, or text that is not a stat line.
fn parse_stat(text: &[u8]) -> Option<Reading> {
    let close = text.iter().rposition(|&b| b == b')')?;
    let mut f = fields(&text[close + 1..]);
    let state = f.next()?;
    if matches!(state, b"Z" | b"X" | b"x") {
        return None;
    }
    // Fields 4..=13 come before utime.
    let mut f = f.skip(10);
    let utime = parse_u64(f.next()?)?;
    let stime = parse_u64(f.next()?)?;
    // Fields 16..=21 come before starttime.
    let mut f = f.skip(6);
    let start = parse_u64(f.next()?)?;
    let _vsize = f.next()?;
    let rss = parse_u64(f.next()?)?;
    Some(Reading { start, ticks: utime.saturating_add(stime), rss_bytes: rss, fds: 0 })
}

/// The open descriptors of a process: the size `stat` gives `/proc/<pid>/fd` (Linux 6.2 and
/// later: one call, no listing), else the entries of that directory that can be listed (0
/// without permission).
fn count_fds(dir: RawFd, pid: u32, dents: &mut Vec<u8>) -> u64 {
    let mut path = [0u8; 48];
    let Some(path) = pid_path(&mut path, pid, b"fd") else { return 0 };
    // SAFETY: fstatat writes into the struct we own; `path` is NUL-terminated.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatat(dir, path.as_ptr().cast(), &mut st, 0) } == 0 && st.st_size > 0 {
        return st.st_size as u64;
    }
    let Ok(fd) = open_at(dir, path, true) else { return 0 };
    let mut n = 0u64;
    let _ = each_dirent(fd.as_raw_fd(), dents, |name, _| {
        if name.first() != Some(&b'.') {
            n += 1;
        }
    });
    n
}

/// The pid a pidfile holds: decimal digits, surrounding whitespace allowed, above 0. Only a
/// regular file is read: the path is first opened with `O_PATH` (which opens nothing: a
/// pidfile a service user pointed at `/dev/watchdog` or a tape never reaches its driver) and
/// checked, then that same file is opened for reading through `/proc/self/fd`, non-blocking.
fn read_pidfile(path: &std::ffi::CStr) -> Result<u32, PidfileProblem> {
    let bytes = path.to_bytes_with_nul();
    if bytes.len() < 2 {
        return Err(PidfileProblem::Unreadable);
    }
    // SAFETY: `bytes` is NUL-terminated and outlives the call.
    let fd = unsafe { libc::open(bytes.as_ptr().cast(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(PidfileProblem::Unreadable);
    }
    // SAFETY: open returned a new descriptor that nothing else owns.
    let handle = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: fstat writes into the struct we own (an O_PATH descriptor may be fstat'ed).
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(handle.as_raw_fd(), &mut st) } != 0
        || st.st_mode & libc::S_IFMT != libc::S_IFREG
    {
        return Err(PidfileProblem::Unreadable);
    }
    let mut through = [0u8; 48];
    let mut w = std::io::Cursor::new(&mut through[..]);
    let _ = std::io::Write::write_fmt(&mut w, format_args!("/proc/self/fd/{fd}\0"));
    let flags = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK;
    // SAFETY: `through` holds a NUL-terminated path (48 bytes fit any descriptor number).
    let fd = unsafe { libc::open(through.as_ptr().cast(), flags) };
    if fd < 0 {
        return Err(PidfileProblem::Unreadable);
    }
    // SAFETY: open returned a new descriptor that nothing else owns.
    let file = unsafe { OwnedFd::from_raw_fd(fd) };
    // A pidfile is a line; 64 bytes or more is not one.
    let mut chunk = [0u8; 64];
    let len = pread_all(file.as_raw_fd(), &mut chunk).map_err(|_| PidfileProblem::Unreadable)?;
    let text = chunk[..len].trim_ascii();
    match parse_u64(text).and_then(|p| u32::try_from(p).ok()) {
        Some(pid) if pid > 0 && len < chunk.len() => Ok(pid),
        _ => Err(PidfileProblem::Garbage),
    }
}

/// `comm` ends with a newline.
fn trim_newline(text: &[u8]) -> &[u8] {
    text.strip_suffix(b"\n").unwrap_or(text)
}

/// Turns `cmdline`'s NUL-separated arguments into one space-separated line, in place,
/// without the trailing separators.
fn join_args(text: &mut [u8]) -> &[u8] {
    for b in text.iter_mut() {
        if *b == 0 {
            *b = b' ';
        }
    }
    let end = text.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    &text[..end]
}

/// `<pid>/<name>\0` written into `buf`.
fn pid_path<'a>(buf: &'a mut [u8; 48], pid: u32, name: &[u8]) -> Option<&'a [u8]> {
    let mut digits = [0u8; 10];
    let mut n = pid;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let digits = &digits[i..];
    let len = digits.len() + 1 + name.len() + 1;
    if len > buf.len() {
        return None;
    }
    buf[..digits.len()].copy_from_slice(digits);
    buf[digits.len()] = b'/';
    buf[digits.len() + 1..len - 1].copy_from_slice(name);
    buf[len - 1] = 0;
    Some(&buf[..len])
}

/// Opens `path` (NUL-terminated) relative to `dir`, read-only, close-on-exec.
fn open_at(dir: RawFd, path: &[u8], directory: bool) -> io::Result<OwnedFd> {
    debug_assert_eq!(path.last(), Some(&0));
    let mut flags = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY;
    if directory {
        flags |= libc::O_DIRECTORY;
    }
    // SAFETY: `path` is NUL-terminated and outlives the call.
    let fd = unsafe { libc::openat(dir, path.as_ptr().cast(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: openat returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// One `pread` from offset 0. These procfs files (`comm`, `cmdline`, `stat`) give their
/// whole text to a read large enough, so a read shorter than the buffer is the whole file: no
/// second read to see the end (which would make the kernel generate the text again; for
/// `cmdline` that is a walk of the other process's memory).
fn pread_all(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: the pointer and length describe `buf`.
        let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The most of a process's arguments read: a `cmdline` glob sees this prefix only, so a
/// process with huge arguments cannot make every tick copy megabytes.
const CMDLINE_MAX: usize = 16 * 1024;

/// Reads with [`pread_all`] into `buf` (kept across calls), grown while a read fills it, up
/// to [`CMDLINE_MAX`].
fn pread_grow(fd: RawFd, buf: &mut Vec<u8>) -> io::Result<usize> {
    if buf.is_empty() {
        buf.resize(4096, 0);
    }
    loop {
        let len = pread_all(fd, buf)?;
        if len < buf.len() || buf.len() >= CMDLINE_MAX {
            return Ok(len);
        }
        let bigger = buf.len() * 2;
        buf.resize(bigger, 0);
    }
}

/// Calls `f` with the name and inode number of every entry of the directory `fd` (from its
/// current offset), reading with `getdents64` into `buf`.
fn each_dirent(fd: RawFd, buf: &mut Vec<u8>, mut f: impl FnMut(&[u8], u64)) -> io::Result<()> {
    if buf.is_empty() {
        buf.resize(64 * 1024, 0);
    }
    loop {
        // SAFETY: the kernel writes at most `buf.len()` bytes of dirent64 records into `buf`.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Ok(());
        }
        let records = &buf[..n as usize];
        let mut at = 0;
        // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
        while at + 19 < records.len() {
            let reclen = usize::from(u16::from_ne_bytes([records[at + 16], records[at + 17]]));
            if reclen == 0 || at + reclen > records.len() {
                break;
            }
            let ino = u64::from_ne_bytes(records[at..at + 8].try_into().unwrap_or_default());
            let name = &records[at + 19..at + reclen];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            f(name, ino);
            at += reclen;
        }
    }
}

/// How many `comm`/`cmdline` descriptors may stay open: a quarter of the soft
/// `RLIMIT_NOFILE`, at most [`MAX_KEPT`].
fn fd_budget() -> usize {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    usize::try_from(lim.rlim_cur / 4).unwrap_or(MAX_KEPT).min(MAX_KEPT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    fn group(name: &str, matcher: ProcessMatcher) -> ProcessGroup {
        ProcessGroup { name: name.into(), matcher }
    }

    fn value(reg: &Registry, out: &Sample, key: &str) -> Option<f64> {
        out.points.iter().find(|(id, _)| &*reg.info(*id).key == key).map(|p| p.1)
    }

    fn scan(p: &mut Procs, reg: &mut Registry, out: &mut Sample) {
        out.clear();
        p.update(reg, out);
    }

    #[test]
    fn stat_lines_with_hostile_names() {
        let line = b"42 (a) Z 1 (b) R 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 12345 1000 250 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
        let r = parse_stat(line).unwrap();
        assert_eq!((r.ticks, r.start, r.rss_bytes), (10, 12345, 250));
        let zombie = b"7 (x) Z 1 7 7 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 99 0 0 0\n";
        assert!(parse_stat(zombie).is_none(), "zombies are not counted");
        assert!(parse_stat(b"7 (x) S 1 2").is_none(), "short line");
        assert!(parse_stat(b"garbage").is_none());
    }

    #[test]
    fn arguments_paths_and_pidfiles() {
        let mut args = *b"sleep\x001000.5\x00\x00";
        assert_eq!(join_args(&mut args), b"sleep 1000.5");
        assert_eq!(join_args(&mut []), b"");
        let mut buf = [0u8; 48];
        assert_eq!(pid_path(&mut buf, 4_294_967_295, b"cmdline").unwrap(), b"4294967295/cmdline\0");
        assert_eq!(pid_path(&mut buf, 0, b"fd").unwrap(), b"0/fd\0");

        let dir = std::env::temp_dir().join(format!("hw-pidfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap()
        };
        assert_eq!(read_pidfile(&file("ok", " 1234\n")), Ok(1234));
        assert_eq!(read_pidfile(&file("zero", "0\n")), Err(PidfileProblem::Garbage));
        assert_eq!(read_pidfile(&file("text", "nginx\n")), Err(PidfileProblem::Garbage));
        assert_eq!(read_pidfile(&file("neg", "-5")), Err(PidfileProblem::Garbage));
        assert_eq!(read_pidfile(&file("big", &"1".repeat(80))), Err(PidfileProblem::Garbage));
        let missing =
            std::ffi::CString::new(dir.join("none").into_os_string().into_encoded_bytes());
        assert_eq!(read_pidfile(&missing.unwrap()), Err(PidfileProblem::Unreadable));
        let fifo = dir.join("fifo");
        let cfifo = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo with a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(cfifo.as_ptr(), 0o600) }, 0);
        assert_eq!(read_pidfile(&cfifo), Err(PidfileProblem::Unreadable), "a FIFO never blocks");
        // A symlink to a device is refused without opening the device.
        let link = dir.join("dev");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let clink = std::ffi::CString::new(link.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(read_pidfile(&clink), Err(PidfileProblem::Unreadable));
        // A symlink to a regular pidfile is followed, as daemons' pidfiles sometimes are.
        let good = dir.join("good");
        std::os::unix::fs::symlink(dir.join("ok"), &good).unwrap();
        let cgood = std::ffi::CString::new(good.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(read_pidfile(&cgood), Ok(1234));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn cpu_counts_from_the_second_sighting_of_the_same_process() {
        let r = Reading { start: 500, ticks: 130, rss_bytes: 0, fds: 0 };
        assert_eq!(cpu_delta(None, &r), 0, "first sighting");
        assert_eq!(cpu_delta(Some((500, 100)), &r), 30);
        assert_eq!(cpu_delta(Some((499, 1)), &r), 0, "a reused pid is another process");
    }

    #[test]
    fn a_started_and_killed_process_is_counted_then_not() {
        let arg = format!("{}.{}", 3000 + std::process::id() % 1000, 271);
        let groups = [
            group("sleeper", ProcessMatcher::Cmdline(format!("sleep {arg}"))),
            group("none", ProcessMatcher::Comm("no-such-procxx".into())),
            group("me", ProcessMatcher::Cmdline("*".into())),
        ];
        let (mut reg, mut out) = (Registry::new(), Sample::default());
        let mut p = Procs::new(&groups);
        scan(&mut p, &mut reg, &mut out);
        assert_eq!(value(&reg, &out, "proc.count{name=sleeper}"), Some(0.0));
        assert_eq!(value(&reg, &out, "proc.cpu{name=sleeper}"), None, "no CPU on the first scan");
        let mut child = Command::new("sleep").arg(&arg).stdin(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        scan(&mut p, &mut reg, &mut out);
        assert_eq!(value(&reg, &out, "proc.count{name=sleeper}"), Some(1.0));
        assert_eq!(value(&reg, &out, "proc.count{name=none}"), Some(0.0));
        assert_eq!(value(&reg, &out, "proc.rss{name=none}"), Some(0.0));
        assert!(value(&reg, &out, "proc.rss{name=sleeper}").unwrap() > 100_000.0);
        assert!(value(&reg, &out, "proc.fds{name=sleeper}").unwrap() >= 1.0);
        assert_eq!(value(&reg, &out, "proc.cpu{name=sleeper}"), Some(0.0));
        let all = value(&reg, &out, "proc.count{name=me}").unwrap();
        assert!(all >= 1.0, "every process with arguments but hostwatch itself: {all}");
        child.kill().unwrap();
        child.wait().unwrap();
        scan(&mut p, &mut reg, &mut out);
        assert_eq!(value(&reg, &out, "proc.count{name=sleeper}"), Some(0.0));
        assert_eq!(value(&reg, &out, "proc.fds{name=sleeper}"), Some(0.0));
    }

    #[test]
    fn a_process_that_execs_late_is_counted_within_the_recheck_bound() {
        use std::io::Write;
        let arg = format!("{}.{}", 4000 + std::process::id() % 1000, 314);
        let groups = [group("late", ProcessMatcher::Cmdline(format!("sleep {arg}")))];
        let (mut reg, mut out) = (Registry::new(), Sample::default());
        let mut p = Procs::new(&groups);
        let mut child = Command::new("sh")
            .args(["-c", &format!("read line; exec sleep {arg}")])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        // Past its young ticks, as a shell that waits before it `exec`s.
        for _ in 0..=YOUNG_TICKS {
            scan(&mut p, &mut reg, &mut out);
            assert_eq!(value(&reg, &out, "proc.count{name=late}"), Some(0.0));
        }
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"go\n").unwrap();
        let cmdline = format!("/proc/{}/cmdline", child.id());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !std::fs::read(&cmdline).unwrap_or_default().starts_with(b"sleep\0")
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut seen_at = None;
        for n in 1..=RECHECK_TICKS {
            scan(&mut p, &mut reg, &mut out);
            if value(&reg, &out, "proc.count{name=late}") == Some(1.0) {
                seen_at = Some(n);
                break;
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(seen_at.is_some(), "not counted within {RECHECK_TICKS} scans of its exec");
        // Once matched it is read every tick: its exit is seen at the next scan.
        scan(&mut p, &mut reg, &mut out);
        assert_eq!(value(&reg, &out, "proc.count{name=late}"), Some(0.0));
    }

    #[test]
    fn new_pids_are_looked_up_one_by_one_and_threads_are_left_out() {
        let groups = [group("none", ProcessMatcher::Comm("no-such-procxx".into()))];
        let (mut reg, mut out) = (Registry::new(), Sample::default());
        let mut p = Procs::new(&groups);
        scan(&mut p, &mut reg, &mut out);
        let mut child = Command::new("sleep").arg("30").stdin(Stdio::null()).spawn().unwrap();
        let pid = child.id();
        // SAFETY: gettid has no preconditions.
        let tid = std::thread::spawn(|| unsafe { libc::gettid() } as u32).join().unwrap();
        let (_parked, tid_alive) = {
            let (tx, rx) = std::sync::mpsc::channel();
            let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
            let h = std::thread::spawn(move || {
                // SAFETY: as above.
                tx.send(unsafe { libc::gettid() } as u32).unwrap();
                let _ = stop_rx.recv();
            });
            (stop_tx, (rx.recv().unwrap(), h))
        };
        let (live_tid, handle) = tid_alive;
        p.table.retain(|e| e.pid != pid);
        p.probe(u64::from(pid), u64::from(pid));
        let entry = p.table.iter().find(|e| e.pid == pid).expect("the new process is in the table");
        assert_eq!(entry.age, 0, "a new process is young");
        assert!(p.table.windows(2).all(|w| w[0].pid < w[1].pid), "the table stays in pid order");
        p.probe(u64::from(live_tid), u64::from(live_tid));
        p.probe(u64::from(tid), u64::from(tid));
        assert!(p.table.iter().all(|e| e.pid != live_tid), "a thread is not a process");
        // A listing and a look-up agree on the identity: probing again keeps the entry.
        let before = p.table.len();
        p.probe(u64::from(pid), u64::from(pid));
        assert_eq!(p.table.len(), before);
        drop(_parked);
        handle.join().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn what_started_since_the_last_scan() {
        let mut p = Procs::new(&[group("x", ProcessMatcher::Comm("x".into()))]);
        assert!(matches!(p.news(Some(100)), News::Unknown), "nothing known yet");
        p.seen_last_pid = Some(100);
        assert!(matches!(p.news(Some(100)), News::None));
        assert!(matches!(p.news(Some(103)), News::Pids(101, 103)));
        assert!(matches!(p.news(Some(100 + PROBE_MAX + 1)), News::Unknown), "a burst");
        assert!(matches!(p.news(Some(7)), News::Unknown), "pids wrapped");
        assert!(matches!(p.news(None), News::Unknown));
        p.unlisted = RELIST_TICKS - 1;
        assert!(matches!(p.news(Some(100)), News::Unknown), "listed at least every RELIST_TICKS");
    }

    #[test]
    fn a_busy_process_shows_its_cpu_and_hostwatch_never_counts_itself() {
        // Its own pid in a pidfile: a comm group would race with sibling tests' children,
        // which carry this binary's comm between fork and exec.
        let pidfile = std::env::temp_dir().join(format!("hw-self-{}.pid", std::process::id()));
        std::fs::write(&pidfile, format!("{}\n", std::process::id())).unwrap();
        let groups = [
            group("busy", ProcessMatcher::Cmdline("sh -c while :; do :; done # hw-busy".into())),
            group("self", ProcessMatcher::Pidfile(pidfile.clone())),
        ];
        let mut child = Command::new("sh")
            .args(["-c", "while :; do :; done # hw-busy"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        // What the kernel says the loop used, read around the two scans: on a loaded machine
        // the loop gets less than a core, and the scanner must say what it really got.
        let used_s = |pid: u32| -> f64 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            let f: Vec<f64> = after.split(' ').map(|x| x.parse().unwrap_or(0.0)).collect();
            // utime and stime are fields 14 and 15 of stat, 12 and 13 after the comm.
            // SAFETY: sysconf has no preconditions.
            (f[11] + f[12]) / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
        };
        let (mut reg, mut out) = (Registry::new(), Sample::default());
        let mut p = Procs::new(&groups);
        // Until it has exec'd, the child carries the test binary's arguments.
        let cmdline = format!("/proc/{}/cmdline", child.id());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !std::fs::read(&cmdline).unwrap_or_default().ends_with(b"# hw-busy\0")
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        let (before, started) = (used_s(child.id()), std::time::Instant::now());
        scan(&mut p, &mut reg, &mut out);
        std::thread::sleep(Duration::from_millis(500));
        scan(&mut p, &mut reg, &mut out);
        let (after, elapsed) = (used_s(child.id()), started.elapsed().as_secs_f64());
        child.kill().unwrap();
        child.wait().unwrap();
        let cpu = value(&reg, &out, "proc.cpu{name=busy}").unwrap();
        let kernel = (after - before) / elapsed * 100.0;
        assert!(cpu > 0.0 && cpu <= 100.0 * 1.05, "one busy loop, at most one core: {cpu}");
        // Tick granularity (10 ms of 500) and the reads around the scans: 10 points.
        assert!((cpu - kernel).abs() <= 10.0, "scanner {cpu:.1}% vs kernel {kernel:.1}%");
        // The scanner never counts hostwatch itself.
        assert_eq!(value(&reg, &out, "proc.count{name=self}"), Some(0.0));
        let _ = std::fs::remove_file(&pidfile);
    }
}
