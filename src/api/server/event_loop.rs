//! The server thread's `poll(2)` loop: the wake socket, the listener and at most
//! `max_connections` connections; accepting (and evicting or refusing when full), stepping
//! each connection as its socket allows, deadlines, the handler (panics caught), counts.
//!
//! Not for: the state of one connection (`conn`) or the wire format (`http`, `encode`).

use super::conn::{Conn, Phase, Progress, ReadOutcome};
use super::{Handler, Limits, Request, Response, Stats};
use crate::logging::Throttle;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long accepting pauses after `accept` failed (out of file descriptors: the listener
/// stays readable, and polling it again at once would spin).
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// The answer to a connection refused because every slot is busy writing.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
Content-Length: 30\r\nConnection: close\r\n\r\n{\"error\": \"too many requests\"}";

/// The loop's state, owned by the server thread.
pub(super) struct Server {
    listener: TcpListener,
    woken: UnixStream,
    stop: Arc<AtomicBool>,
    limits: Limits,
    handler: Handler,
    stats: Arc<Stats>,
    conns: Vec<Conn>,
    fds: Vec<libc::pollfd>,
    /// Where every read lands first (one buffer for the whole server).
    scratch: Box<[u8]>,
    accept_paused_until: Option<Instant>,
    limit_warnings: Throttle,
    panic_warnings: Throttle,
    accept_warnings: Throttle,
}

impl Server {
    pub(super) fn new(
        listener: TcpListener,
        woken: UnixStream,
        stop: Arc<AtomicBool>,
        limits: Limits,
        handler: Handler,
        stats: &Arc<Stats>,
    ) -> Server {
        let limits = Limits { max_connections: limits.max_connections.max(1), ..limits };
        Server {
            listener,
            woken,
            stop,
            limits,
            handler,
            stats: Arc::clone(stats),
            conns: Vec::with_capacity(limits.max_connections),
            fds: Vec::with_capacity(limits.max_connections + 2),
            scratch: vec![0; 16 * 1024].into_boxed_slice(),
            accept_paused_until: None,
            limit_warnings: Throttle::default(),
            panic_warnings: Throttle::default(),
            accept_warnings: Throttle::default(),
        }
    }

    /// Serves until stopped.
    pub(super) fn run(mut self) {
        while !self.stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            let accepting = self.accept_paused_until.is_none_or(|t| now >= t);
            if accepting {
                self.accept_paused_until = None;
            }
            self.fds.clear();
            self.fds.push(pollfd(self.woken.as_raw_fd(), libc::POLLIN));
            let listener_fd = if accepting { self.listener.as_raw_fd() } else { -1 };
            self.fds.push(pollfd(listener_fd, libc::POLLIN));
            for c in &self.conns {
                self.fds.push(pollfd(c.fd(), c.events()));
            }
            let timeout = self.poll_timeout(now);
            // SAFETY: `fds` is a valid, initialised array of `fds.len()` pollfd structs that
            // lives across the call; poll writes only their `revents`.
            let n = unsafe {
                libc::poll(self.fds.as_mut_ptr(), self.fds.len() as libc::nfds_t, timeout)
            };
            if n < 0 {
                if std::io::Error::last_os_error().kind() == ErrorKind::Interrupted {
                    continue;
                }
                log::error!(
                    "api: poll failed: {}; the server stops",
                    std::io::Error::last_os_error()
                );
                return;
            }
            if self.fds[0].revents != 0 {
                let mut sink = [0u8; 64];
                while matches!((&self.woken).read(&mut sink), Ok(n) if n > 0) {}
                continue;
            }
            let now = Instant::now();
            // Highest index first: swap_remove then moves an entry already stepped.
            for i in (0..self.conns.len()).rev() {
                let revents = self.fds[2 + i].revents;
                if revents != 0 {
                    self.step(i, now);
                }
            }
            if self.fds[1].revents != 0 {
                self.accept_all(now);
            }
            self.expire(Instant::now());
        }
    }

    /// Milliseconds until the nearest deadline (rounded up), or -1 for none.
    fn poll_timeout(&self, now: Instant) -> libc::c_int {
        let nearest = self.conns.iter().map(Conn::deadline).chain(self.accept_paused_until).min();
        match nearest {
            None => -1,
            Some(t) => {
                let left = t.saturating_duration_since(now);
                let ms = left.as_micros().div_ceil(1000);
                libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
            }
        }
    }

    /// Steps connection `i` as far as its socket allows; removes it when it is finished.
    fn step(&mut self, i: usize, now: Instant) {
        let keep = match self.conns[i].phase() {
            Phase::Head | Phase::Body => {
                let outcome = self.conns[i].read(&mut self.scratch, &self.limits);
                match outcome {
                    ReadOutcome::Pending => true,
                    ReadOutcome::Closed => false,
                    ReadOutcome::Request(req) => {
                        let resp = self.answer(&req);
                        self.conns[i].from_handler = true;
                        self.conns[i].respond(&resp, now, &self.limits);
                        self.write(i, now)
                    }
                    ReadOutcome::Reject(r) => {
                        let counter = match r.status {
                            431 => &self.stats.headers_too_large,
                            413 => &self.stats.bodies_too_large,
                            _ => &self.stats.bad_requests,
                        };
                        Stats::add(counter);
                        self.conns[i].respond(
                            &Response::error(r.status, r.message),
                            now,
                            &self.limits,
                        );
                        self.write(i, now)
                    }
                }
            }
            Phase::Write => self.write(i, now),
            Phase::Linger => {
                self.conns[i].linger(&mut self.scratch, &self.limits) == Progress::Pending
            }
        };
        if !keep {
            self.conns.swap_remove(i);
        }
    }

    /// Writes connection `i`'s answer: false when the connection is finished.
    fn write(&mut self, i: usize, now: Instant) -> bool {
        match self.conns[i].write(now) {
            Progress::Pending => true,
            Progress::Done => {
                if self.conns[i].from_handler {
                    Stats::add(&self.stats.served);
                }
                // Lingering only matters for a client that may still be sending.
                self.conns[i].linger(&mut self.scratch, &self.limits) == Progress::Pending
            }
            Progress::Failed => false,
        }
    }

    /// The handler's answer to `req`; a panic is answered 500.
    fn answer(&mut self, req: &Request) -> Response {
        match catch_unwind(AssertUnwindSafe(|| (self.handler)(req))) {
            Ok(resp) => resp,
            Err(_) => {
                Stats::add(&self.stats.panics);
                if self.panic_warnings.ready() {
                    log::error!(
                        method = req.method.as_str(), path = req.path.as_str(),
                        panics = Stats::get(&self.stats.panics);
                        "api: the handler panicked; answered 500 (a bug: please report it)"
                    );
                }
                Response::error(500, "internal error")
            }
        }
    }

    /// Accepts what the listener has (bounded per round, so open connections get their turn).
    fn accept_all(&mut self, now: Instant) {
        for _ in 0..self.limits.max_connections.max(16) {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    Stats::add(&self.stats.accepted);
                    self.admit(stream, now);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // That one connection failed (reset before it was taken, ...): take the next.
                Err(e) if !exhausted(&e) => Stats::add(&self.stats.accept_errors),
                Err(e) => {
                    Stats::add(&self.stats.accept_errors);
                    if self.accept_warnings.ready() {
                        log::warn!(
                            open = self.conns.len();
                            "api: cannot accept a connection: {e}; pausing accepts briefly"
                        );
                    }
                    self.accept_paused_until = Some(now + ACCEPT_PAUSE);
                    return;
                }
            }
        }
    }

    /// Takes a new connection in, making room (or refusing it) when full, and reads it at once:
    /// a quick client's request is usually there already.
    fn admit(&mut self, stream: TcpStream, now: Instant) {
        if self.conns.len() >= self.limits.max_connections {
            match self.victim() {
                Some(i) => {
                    self.conns.swap_remove(i);
                    Stats::add(&self.stats.evicted);
                }
                None => {
                    Stats::add(&self.stats.refused);
                    let _ = stream.set_nonblocking(true);
                    let _ = (&stream).write(REFUSAL);
                    self.warn_full();
                    return;
                }
            }
            self.warn_full();
        }
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        self.conns.push(Conn::new(stream, now, &self.limits));
        let i = self.conns.len() - 1;
        self.step(i, now);
    }

    /// The connection to close for a new one: a lingering one, else the oldest still reading
    /// its request; none when all are writing answers.
    fn victim(&self) -> Option<usize> {
        let oldest = |phases: &[Phase]| {
            (0..self.conns.len())
                .filter(|&i| phases.contains(&self.conns[i].phase()))
                .min_by_key(|&i| self.conns[i].accepted)
        };
        oldest(&[Phase::Linger]).or_else(|| oldest(&[Phase::Head, Phase::Body]))
    }

    fn warn_full(&mut self) {
        if self.limit_warnings.ready() {
            log::warn!(
                max_connections = self.limits.max_connections,
                evicted = Stats::get(&self.stats.evicted),
                refused = Stats::get(&self.stats.refused);
                "api: connection limit reached: the oldest unfinished request is closed for a \
                 new one (a new one is refused when all are answering); slow or idle clients?"
            );
        }
    }

    /// Deadlines: a request not whole in time is answered 408, an answer not taken in time or
    /// a linger over is closed.
    fn expire(&mut self, now: Instant) {
        for i in (0..self.conns.len()).rev() {
            if self.conns[i].deadline() > now {
                continue;
            }
            let keep = match self.conns[i].phase() {
                Phase::Head | Phase::Body => {
                    Stats::add(&self.stats.read_timeouts);
                    let resp = Response::error(408, "the request was not sent in time");
                    self.conns[i].respond(&resp, now, &self.limits);
                    self.write(i, now)
                }
                Phase::Write => {
                    Stats::add(&self.stats.write_timeouts);
                    false
                }
                Phase::Linger => false,
            };
            if !keep {
                self.conns.swap_remove(i);
            }
        }
    }
}

/// Whether a failed `accept` is out of a resource (descriptors, buffers, memory), so the
/// listener stays readable and retrying at once would spin; otherwise (errors of the one
/// connection: `ECONNABORTED`, and the network errors Linux passes on, see accept(2)) the next
/// connection is taken at once, not 100 ms later.
pub(super) fn exhausted(e: &std::io::Error) -> bool {
    let per_connection = [
        libc::ECONNABORTED,
        libc::EPROTO,
        libc::EPERM,
        libc::ENETDOWN,
        libc::ENOPROTOOPT,
        libc::EHOSTDOWN,
        libc::ENONET,
        libc::EHOSTUNREACH,
        libc::EOPNOTSUPP,
        libc::ENETUNREACH,
    ];
    !e.raw_os_error().is_some_and(|code| per_connection.contains(&code))
}

fn pollfd(fd: std::os::fd::RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd { fd, events, revents: 0 }
}
