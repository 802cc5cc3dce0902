//! One connection's state machine: reading the head and the body within the limits, writing
//! the answer from a buffer as the socket takes it, then a short lingering close. Every
//! socket call is nonblocking; the event loop calls in when `poll` says so.
//!
//! Not for: choosing which connection to serve or evict (`event_loop`), or parsing (`http`).

use super::http::{self, Head, Reject};
use super::{Limits, Request, Response};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// How long a connection lingers after its answer, discarding what the client still sends,
/// so the answer reaches it before the close (closing with unread input resets it).
const LINGER: Duration = Duration::from_millis(500);

/// Where a connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Reading the request line and headers.
    Head,
    /// Reading a `Content-Length` body.
    Body,
    /// Writing the answer.
    Write,
    /// Answer written, write side shut; discarding input until the client closes.
    Linger,
}

/// What a read step came to.
#[derive(Debug)]
pub(super) enum ReadOutcome {
    /// More is needed (or the socket has nothing now).
    Pending,
    /// The whole request.
    Request(Request),
    /// A request the server answers itself.
    Reject(Reject),
    /// The client closed or the socket failed before a whole request: drop it.
    Closed,
}

/// What a write or linger step came to.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Progress {
    Pending,
    Done,
    Failed,
}

/// One open connection.
#[derive(Debug)]
pub(super) struct Conn {
    stream: TcpStream,
    /// When it was accepted (eviction takes the oldest).
    pub accepted: Instant,
    phase: Phase,
    /// The end of the current phase: read deadline, write deadline or linger end.
    deadline: Instant,
    /// Head bytes (then, briefly, the first body bytes read with them).
    buf: Vec<u8>,
    /// How much of `buf` was searched for the end of the head.
    searched: usize,
    head: Option<Head>,
    body: Vec<u8>,
    out: Vec<u8>,
    sent: usize,
    /// Bytes discarded while lingering.
    discarded: usize,
    /// The request is `HEAD` (the answer has no body).
    head_request: bool,
    /// The answer came from the handler (counted as served when written).
    pub from_handler: bool,
}

impl Conn {
    /// A connection accepted at `now` (`stream` already nonblocking).
    pub(super) fn new(stream: TcpStream, now: Instant, limits: &Limits) -> Conn {
        Conn {
            stream,
            accepted: now,
            phase: Phase::Head,
            deadline: now + limits.read_timeout,
            buf: Vec::new(),
            searched: 0,
            head: None,
            body: Vec::new(),
            out: Vec::new(),
            sent: 0,
            discarded: 0,
            head_request: false,
            from_handler: false,
        }
    }

    pub(super) fn phase(&self) -> Phase {
        self.phase
    }

    pub(super) fn deadline(&self) -> Instant {
        self.deadline
    }

    pub(super) fn fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.stream)
    }

    /// The `poll` events this connection waits for.
    pub(super) fn events(&self) -> libc::c_short {
        match self.phase {
            Phase::Write => libc::POLLOUT,
            _ => libc::POLLIN,
        }
    }

    /// Reads what the socket has (until it would block or the request is whole).
    pub(super) fn read(&mut self, scratch: &mut [u8], limits: &Limits) -> ReadOutcome {
        loop {
            let want = match self.phase {
                Phase::Head => limits.max_header_bytes - self.buf.len(),
                Phase::Body => self.wanted_body(),
                Phase::Write | Phase::Linger => return ReadOutcome::Pending,
            };
            let room = want.min(scratch.len());
            let n = match self.stream.read(&mut scratch[..room]) {
                Ok(0) => return ReadOutcome::Closed,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return ReadOutcome::Pending,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return ReadOutcome::Closed,
            };
            let outcome = match self.phase {
                Phase::Head => self.took_head_bytes(&scratch[..n], limits),
                _ => {
                    self.body.extend_from_slice(&scratch[..n]);
                    self.request_if_whole()
                }
            };
            if !matches!(outcome, ReadOutcome::Pending) {
                return outcome;
            }
        }
    }

    fn wanted_body(&self) -> usize {
        self.head.as_ref().map_or(0, |h| h.content_length - self.body.len())
    }

    fn took_head_bytes(&mut self, bytes: &[u8], limits: &Limits) -> ReadOutcome {
        grow_within(&mut self.buf, bytes.len(), limits.max_header_bytes);
        self.buf.extend_from_slice(bytes);
        let Some(end) = http::head_end(&self.buf, self.searched) else {
            if let Some(r) = http::early_reject(&self.buf, self.searched) {
                return ReadOutcome::Reject(r);
            }
            self.searched = self.buf.len();
            if self.buf.len() >= limits.max_header_bytes {
                return ReadOutcome::Reject(Reject {
                    status: 431,
                    message: "the request line and headers are larger than the server accepts",
                });
            }
            return ReadOutcome::Pending;
        };
        let head = match http::parse(&self.buf[..end], limits.max_body_bytes) {
            Ok(head) => head,
            Err(r) => return ReadOutcome::Reject(r),
        };
        // Exactly the announced body, never more (Content-Length is at most max_body_bytes).
        self.body = Vec::with_capacity(head.content_length);
        let first = &self.buf[end..];
        self.body.extend_from_slice(&first[..first.len().min(head.content_length)]);
        if head.expect_continue && self.body.len() < head.content_length {
            // Best effort: the socket's send buffer is empty now; a client that does not get
            // it sends the body after its own short wait anyway.
            let _ = self.stream.write(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        self.buf = Vec::new();
        self.head = Some(head);
        self.phase = Phase::Body;
        self.request_if_whole()
    }

    fn request_if_whole(&mut self) -> ReadOutcome {
        if self.wanted_body() > 0 {
            return ReadOutcome::Pending;
        }
        let Some(head) = self.head.take() else { return ReadOutcome::Closed };
        self.head_request = head.method == "HEAD";
        ReadOutcome::Request(Request {
            method: head.method,
            path: head.path,
            query: head.query,
            headers: head.headers,
            body: std::mem::take(&mut self.body),
        })
    }

    /// Queues `resp` and starts writing it (the read buffers are released).
    pub(super) fn respond(&mut self, resp: &Response, now: Instant, limits: &Limits) {
        self.out = super::encode_for(resp, self.head_request);
        self.sent = 0;
        self.buf = Vec::new();
        self.body = Vec::new();
        self.head = None;
        self.phase = Phase::Write;
        self.deadline = now + limits.write_timeout;
    }

    /// Writes what the socket takes; when all is written, shuts the write side and lingers.
    pub(super) fn write(&mut self, now: Instant) -> Progress {
        while self.sent < self.out.len() {
            match self.stream.write(&self.out[self.sent..]) {
                Ok(0) => return Progress::Failed,
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Progress::Pending,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Progress::Failed,
            }
        }
        self.out = Vec::new();
        let _ = self.stream.shutdown(Shutdown::Write);
        self.phase = Phase::Linger;
        self.deadline = self.deadline.min(now + LINGER);
        Progress::Done
    }

    /// Discards input while lingering: `Done` when the client closed (or sent too much).
    pub(super) fn linger(&mut self, scratch: &mut [u8], limits: &Limits) -> Progress {
        loop {
            match self.stream.read(scratch) {
                Ok(0) => return Progress::Done,
                Ok(n) => {
                    self.discarded += n;
                    if self.discarded > limits.max_body_bytes {
                        return Progress::Done;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Progress::Pending,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Progress::Failed,
            }
        }
    }
}

/// Reserves room for `extra` more bytes in `buf`, doubling but never beyond `limit`.
fn grow_within(buf: &mut Vec<u8>, extra: usize, limit: usize) {
    let need = buf.len() + extra;
    if need <= buf.capacity() {
        return;
    }
    let target = (buf.capacity() * 2).max(need).max(256).min(limit.max(need));
    buf.reserve_exact(target - buf.len());
}
