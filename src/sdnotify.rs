//! The systemd notification protocol (`sd_notify(3)`) spoken by `hostwatch run`, without
//! libsystemd: one datagram of `KEY=value` lines per message to the unix socket named by
//! `NOTIFY_SOCKET` (a path, or `@name` for an abstract socket). The daemon's poll loop says
//! `READY=1` after its first completed tick, `WATCHDOG=1` after every tick (and in between
//! when the watchdog's half period is shorter than the interval), `RELOADING=1`/`READY=1`
//! around a reload, `STOPPING=1`, and a one-line `STATUS=`; `EXTEND_TIMEOUT_USEC=` at start
//! (the first tick is one interval away, which may be longer than `TimeoutStartSec=`) and at
//! stop (deliveries in progress get their grace, which may be longer than `TimeoutStopSec=`).
//!
//! Sending never blocks (a non-blocking socket; a full queue drops the message), never fails
//! the caller, and a failure is logged once. A `READY=1` that was not sent (a full queue, a
//! socket not there yet) is not taken as said: it is sent again with the next watchdog ping,
//! after [`READY_RETRY`] at the latest, and with the next tick, until one send succeeds. A
//! reload before that (SIGHUP during the first interval) says neither `RELOADING=1` nor
//! `READY=1`, only a status line and the new time to the first tick. The watchdog is pinged
//! every half `WATCHDOG_USEC`, but never more often than every [`MIN_PING_EVERY`] (a smaller
//! `WatchdogSec=` is warned about once at start). Without `NOTIFY_SOCKET` every call returns
//! at once. A steady-state message is written into a buffer kept from the first one: no
//! allocation per tick.
//!
//! Not for: deciding *when* to notify (that is `daemon`'s poll loop, the only caller, so a
//! stuck loop stops the watchdog pings), `hostwatch once`, or reading systemd's replies
//! (the protocol has none).

use std::fmt::Write as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

/// What the status line reports: the numbers the daemon knows after a tick.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Alerts firing.
    pub firing: usize,
    /// Alerts pending (their window does not hold yet).
    pub pending: usize,
    /// Live series.
    pub series: usize,
}

/// The connection to systemd's notification socket, or nothing when not started by systemd.
#[derive(Debug, Default)]
pub struct SdNotify {
    inner: Option<Inner>,
}

#[derive(Debug)]
struct Inner {
    socket: UnixDatagram,
    addr: SocketAddr,
    /// `NOTIFY_SOCKET` as given, for the one log line a failure gets.
    name: String,
    /// Half of `WATCHDOG_USEC` (at least [`MIN_PING_EVERY`]): how often to ping, when the
    /// watchdog is ours.
    ping_every: Option<Duration>,
    last_ping: Instant,
    /// `READY=1` reached the socket (a failed send leaves it false, to be sent again).
    ready: bool,
    /// A tick completed but its `READY=1` was not sent: when to try again between ticks.
    ready_retry: Option<Instant>,
    /// The margin `starting` was given, for the time to the first tick after an early reload.
    start_margin: Duration,
    /// The last summary, and whether the last reload was refused (kept in the status line
    /// until a reload succeeds).
    summary: Summary,
    reload_failed: bool,
    /// The message being built, and the status line last sent (both keep their capacity).
    msg: String,
    last_status: String,
    failure_logged: bool,
}

/// Room for the longest message: a status line with three numbers and a suffix.
const MESSAGE_CAPACITY: usize = 256;

/// The shortest watchdog ping period: a tiny `WATCHDOG_USEC` (`WatchdogSec=1ms`) must not make
/// the loop spin.
pub const MIN_PING_EVERY: Duration = Duration::from_millis(100);

/// How soon a `READY=1` whose send failed is tried again when no watchdog ping comes first.
pub const READY_RETRY: Duration = Duration::from_secs(1);

impl SdNotify {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from the environment.
    pub fn from_env() -> SdNotify {
        let socket = std::env::var("NOTIFY_SOCKET").ok();
        let usec = std::env::var("WATCHDOG_USEC").ok();
        let pid = std::env::var("WATCHDOG_PID").ok();
        SdNotify::from_vars(socket.as_deref(), usec.as_deref(), pid.as_deref(), std::process::id())
    }

    /// The notifier for these variable values, as seen by process `our_pid`. An unusable
    /// value is logged and leaves that part off (no socket: nothing is sent at all).
    pub fn from_vars(
        notify_socket: Option<&str>,
        watchdog_usec: Option<&str>,
        watchdog_pid: Option<&str>,
        our_pid: u32,
    ) -> SdNotify {
        let Some(name) = notify_socket.filter(|s| !s.is_empty()) else {
            return SdNotify::default();
        };
        let (addr, socket) = match socket_addr(name).and_then(|a| Ok((a, open()?))) {
            Ok(pair) => pair,
            Err(e) => {
                log::warn!("NOTIFY_SOCKET {name}: {e}; systemd will not hear from hostwatch");
                return SdNotify::default();
            }
        };
        let ping_every = watchdog_period(watchdog_usec, watchdog_pid, our_pid).map(ping_period);
        SdNotify {
            inner: Some(Inner {
                socket,
                addr,
                name: name.to_string(),
                ping_every,
                last_ping: Instant::now(),
                ready: false,
                ready_retry: None,
                start_margin: Duration::ZERO,
                summary: Summary::default(),
                reload_failed: false,
                msg: String::with_capacity(MESSAGE_CAPACITY),
                last_status: String::with_capacity(MESSAGE_CAPACITY),
                failure_logged: false,
            }),
        }
    }

    /// True when systemd gave a socket to talk to.
    pub fn is_active(&self) -> bool {
        self.inner.is_some()
    }

    /// How often the loop must ping the watchdog: half of `WATCHDOG_USEC`, when the
    /// watchdog is enabled for this process.
    pub fn ping_every(&self) -> Option<Duration> {
        self.inner.as_ref().and_then(|i| i.ping_every)
    }

    /// When the loop must wake next to talk to systemd between ticks: the next watchdog ping,
    /// or the retry of a `READY=1` that was not sent (`None`: neither).
    pub fn next_ping(&self) -> Option<Instant> {
        let i = self.inner.as_ref()?;
        let ping = i.ping_every.map(|every| i.last_ping + every);
        match (ping, i.ready_retry) {
            (Some(p), Some(r)) => Some(p.min(r)),
            (p, r) => p.or(r),
        }
    }

    /// Pings the watchdog when a ping is due at `now` (the loop, between ticks), and sends
    /// again a `READY=1` that did not go out (with the status line) when its retry is due.
    pub fn ping_if_due(&mut self, now: Instant) {
        let Some(i) = self.inner.as_mut() else { return };
        let ping_due = i.ping_every.is_some_and(|every| now >= i.last_ping + every);
        let retry_due = i.ready_retry.is_some_and(|at| now >= at);
        if !ping_due && !retry_due {
            return;
        }
        i.msg.clear();
        if i.ready_retry.is_some() {
            i.msg.push_str("READY=1\n");
        }
        if i.ping_every.is_some() {
            i.msg.push_str("WATCHDOG=1\n");
            i.last_ping = now;
        }
        if i.ready_retry.is_some() {
            i.last_status.clear();
            i.push_status_if_changed();
        }
        i.finish_and_send(now);
    }

    /// At start: the first tick is `first_tick_in` away; systemd is asked to wait that long
    /// and `margin` more before it gives up on `READY=1`.
    pub fn starting(&mut self, first_tick_in: Duration, margin: Duration) {
        let Some(i) = self.inner.as_mut() else { return };
        i.start_margin = margin;
        i.msg.clear();
        i.push_first_tick_due(first_tick_in);
        i.send();
    }

    /// After a completed tick: `READY=1` the first time, `WATCHDOG=1` when the watchdog is
    /// on, and the status line when it changed.
    pub fn tick_done(&mut self, summary: Summary) {
        let Some(i) = self.inner.as_mut() else { return };
        let now = Instant::now();
        i.summary = summary;
        i.msg.clear();
        if !i.ready {
            i.msg.push_str("READY=1\n");
            // Until a send succeeds: `finish_and_send` clears it.
            i.ready_retry = Some(now + READY_RETRY);
        }
        if i.ping_every.is_some() {
            i.msg.push_str("WATCHDOG=1\n");
            i.last_ping = now;
        }
        i.push_status_if_changed();
        i.finish_and_send(now);
    }

    /// Before a reload: `RELOADING=1` with `MONOTONIC_USEC` (systemd 253 and later want it).
    /// Before `READY=1` (a SIGHUP during the first interval) only the status line: systemd
    /// must not hear a reload of a service that never said it was ready.
    pub fn reloading(&mut self) {
        let Some(i) = self.inner.as_mut() else { return };
        i.msg.clear();
        if i.ready {
            let _ = write!(i.msg, "RELOADING=1\nMONOTONIC_USEC={}\n", monotonic_usec());
        }
        i.msg.push_str("STATUS=reloading the config");
        i.last_status.clear();
        i.send();
    }

    /// After a reload (`ok`: the new config is in force; else the running one was kept):
    /// `READY=1`, a watchdog ping, and the status line. Before the first tick completed: no
    /// `READY=1` (that waits for the first tick, `first_tick_in` away now), but the time to it
    /// (`EXTEND_TIMEOUT_USEC`, as at start) and a watchdog ping.
    pub fn reloaded(&mut self, ok: bool, first_tick_in: Duration) {
        let Some(i) = self.inner.as_mut() else { return };
        let now = Instant::now();
        // A tick completed (its READY=1 may still be waiting for a send that works).
        let ticked = i.ready || i.ready_retry.is_some();
        i.reload_failed = !ok;
        i.msg.clear();
        if ticked {
            i.msg.push_str("READY=1\n");
        }
        if i.ping_every.is_some() {
            i.msg.push_str("WATCHDOG=1\n");
            i.last_ping = now;
        }
        if ticked {
            i.push_status_if_changed();
        } else {
            i.push_first_tick_due(first_tick_in);
        }
        i.finish_and_send(now);
    }

    /// When stopping: `STOPPING=1`, and time for the stop to take (`grace`: deliveries in
    /// progress and the last save), should that be longer than `TimeoutStopSec=`.
    pub fn stopping(&mut self, grace: Duration) {
        let Some(i) = self.inner.as_mut() else { return };
        i.msg.clear();
        let _ = write!(
            i.msg,
            "STOPPING=1\nEXTEND_TIMEOUT_USEC={}\nSTATUS=stopping: saving the state",
            grace.as_micros()
        );
        i.send();
    }
}

impl Inner {
    /// Appends the start's message: time for the first tick (`EXTEND_TIMEOUT_USEC`), status.
    fn push_first_tick_due(&mut self, first_tick_in: Duration) {
        let _ = write!(
            self.msg,
            "EXTEND_TIMEOUT_USEC={}\nSTATUS=started; the first tick is due in {:?}",
            (first_tick_in + self.start_margin).as_micros(),
            first_tick_in
        );
        self.last_status.clear();
    }

    /// Sends `msg` (its last newline cut) unless it is empty. A message with `READY=1` that
    /// went out makes the service ready; one that did not keeps the retry, and its status
    /// line is sent again next time.
    fn finish_and_send(&mut self, now: Instant) {
        if self.msg.ends_with('\n') {
            self.msg.pop();
        }
        if self.msg.is_empty() {
            return;
        }
        let sent = self.send();
        let says_ready = self.msg.starts_with("READY=1");
        if sent && says_ready && !self.ready {
            self.ready = true;
            self.ready_retry = None;
        } else if !sent {
            self.last_status.clear();
            if self.ready_retry.is_some() {
                self.ready_retry = Some(now + READY_RETRY);
            }
        }
    }

    /// Appends `STATUS=…\n` when the line differs from the one last sent.
    fn push_status_if_changed(&mut self) {
        let start = self.msg.len();
        let s = self.summary;
        let _ = write!(
            self.msg,
            "STATUS={} firing, {} pending, {} series",
            s.firing, s.pending, s.series
        );
        if self.reload_failed {
            self.msg.push_str("; the last reload failed, running config kept");
        }
        let line = &self.msg[start + "STATUS=".len()..];
        if line == self.last_status {
            self.msg.truncate(start);
        } else {
            self.last_status.clear();
            self.last_status.push_str(line);
            self.msg.push('\n');
        }
    }

    /// Sends `msg` as one datagram; a failure is logged the first time only. True: sent.
    fn send(&mut self) -> bool {
        match self.socket.send_to_addr(self.msg.as_bytes(), &self.addr) {
            Ok(_) => true,
            Err(e) => {
                if !self.failure_logged {
                    self.failure_logged = true;
                    log::warn!(
                        "sd_notify: cannot send to NOTIFY_SOCKET {}: {e} (hostwatch goes on; \
                         READY=1 is sent again until it goes out; further failures are not \
                         logged)",
                        self.name
                    );
                }
                false
            }
        }
    }
}

/// An unbound, non-blocking, close-on-exec datagram socket (a hook never inherits it).
fn open() -> std::io::Result<UnixDatagram> {
    let socket = UnixDatagram::unbound()?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// The address `NOTIFY_SOCKET` names: an absolute path, or `@name` (abstract namespace).
fn socket_addr(name: &str) -> std::io::Result<SocketAddr> {
    if let Some(abstract_name) = name.strip_prefix('@') {
        abstract_addr(abstract_name.as_bytes())
    } else if name.starts_with('/') {
        SocketAddr::from_pathname(name)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "not an absolute path or an @abstract name (the only forms hostwatch speaks)",
        ))
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_addr(name: &[u8]) -> std::io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_addr(_name: &[u8]) -> std::io::Result<SocketAddr> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "abstract unix sockets exist on Linux only",
    ))
}

/// The watchdog period when it is meant for `our_pid`: `WATCHDOG_USEC` is honoured only
/// when `WATCHDOG_PID` is unset or names this process.
fn watchdog_period(usec: Option<&str>, pid: Option<&str>, our_pid: u32) -> Option<Duration> {
    let usec = usec?;
    if let Some(pid) = pid.filter(|p| !p.is_empty())
        && pid.trim().parse::<u32>().ok() != Some(our_pid)
    {
        log::debug!("WATCHDOG_PID {pid} is not this process: no watchdog pings");
        return None;
    }
    match usec.trim().parse::<u64>() {
        Ok(n) if n > 0 => Some(Duration::from_micros(n)),
        _ => {
            log::warn!("WATCHDOG_USEC {usec:?} is not a positive number of microseconds: ignored");
            None
        }
    }
}

/// How often to ping for a watchdog `period`: half of it, but not more often than
/// [`MIN_PING_EVERY`] (said once, at start: systemd will still kill a service whose
/// `WatchdogSec=` is that short).
fn ping_period(period: Duration) -> Duration {
    let half = period / 2;
    if half < MIN_PING_EVERY {
        log::warn!(
            "WATCHDOG_USEC asks for a watchdog ping every {half:?}; hostwatch pings every \
             {MIN_PING_EVERY:?} at most, so systemd may kill it: raise WatchdogSec= (or set \
             WatchdogSec=0)"
        );
        return MIN_PING_EVERY;
    }
    half
}

/// `CLOCK_MONOTONIC` in microseconds, the clock systemd compares `MONOTONIC_USEC` with.
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime fills the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000
}

#[cfg(test)]
mod tests;
