//! The API's HTTP/1.1 server: one thread (`hostwatch-api`) running a `poll(2)` loop over
//! nonblocking sockets, every request read within fixed limits, answers made by a handler
//! from the published view.
//!
//! Limits ([`Limits`], defaults in brackets), so a slow or hostile client never grows memory
//! or threads and never reaches the loop:
//! - at most `max_connections` [64] sockets open; when full, a new connection evicts one
//!   lingering after its answer, else the oldest one that has not finished sending its
//!   request (a slowloris flood cycles out, a quick client is read the moment it is
//!   accepted); when every one is busy writing, the new one gets a best-effort 503 and is
//!   closed;
//! - the request line and headers within `max_header_bytes` [8 KiB] and at most 100 header
//!   lines (else 431), no control character but tab in a header value (else 400), a body only
//!   with `Content-Length` (`Transfer-Encoding` is 411) of at most `max_body_bytes` [64 KiB]
//!   (else 413, answered from the headers without reading the body);
//! - an absolute `read_timeout` [5 s] from accept to the whole request (else 408: trickling
//!   bytes never extends it; what cannot be HTTP, a method that is no token such as a TLS
//!   hello or a bare LF, is 400 as soon as it is seen), an absolute `write_timeout` [5 s] for
//!   the answer (else closed);
//! - buffers grow with what a connection sent (nothing for an idle one; a body buffer only as
//!   large as its `Content-Length`), so the server holds at most `max_connections` × (header
//!   + body limits) plus the answers being written.
//!
//! Every answer carries `Connection: close`. A `HEAD` answer has the `GET` answer's
//! `Content-Length` and no body. A handler panic is caught and answered 500; the server goes
//! on. What happens is counted in [`Stats`]; evictions and refusals are logged at most once a
//! minute.
//!
//! Why not tiny_http: it hands each connection to a thread pool that grows without bound
//! (1,000 idle connections are 1,000 threads) and has no total deadline per request.
//!
//! Not for: routing or rendering (`routes`), TLS, keep-alive or pipelining, or anything the
//! loop waits on.

mod conn;
mod event_loop;
mod http;
#[cfg(test)]
mod tests;

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// The server's limits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Connections held open at once.
    pub max_connections: usize,
    /// Request line and headers together.
    pub max_header_bytes: usize,
    /// Request body.
    pub max_body_bytes: usize,
    /// From accepting a connection to having read the whole request.
    pub read_timeout: Duration,
    /// From having the answer to having written it.
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 64,
            max_header_bytes: 8 * 1024,
            max_body_bytes: 64 * 1024,
            read_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
        }
    }
}

/// One parsed request.
#[derive(Debug)]
pub(crate) struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query, percent-encoding left as sent.
    pub path: String,
    /// The query string without `?` (empty when none; no route reads one yet).
    #[cfg_attr(not(test), allow(dead_code))]
    pub query: String,
    /// Headers with lower-case names, in order.
    pub headers: Vec<(String, String)>,
    /// The body (at most `max_body_bytes`).
    pub body: Vec<u8>,
}

impl Request {
    /// The first header named `name` (lower case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// One answer.
#[derive(Debug)]
pub(crate) struct Response {
    /// The status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Further headers.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// An answer with `status`, `content_type` and `body`.
    pub(crate) fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Response {
        Response { status, content_type, headers: Vec::new(), body }
    }

    /// `{"error": message}` with `status`, for the answers the server makes itself.
    fn error(status: u16, message: &str) -> Response {
        let body = serde_json::to_vec(&serde_json::json!({ "error": message })).unwrap_or_default();
        let mut resp = Response::new(status, "application/json", body);
        resp.body.push(b'\n');
        resp
    }
}

/// The handler: a pure function of the request (it reads the published view).
pub(crate) type Handler = Box<dyn Fn(&Request) -> Response + Send + 'static>;

/// What the server did since it started (relaxed counters, read by anyone).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Answers from the handler written completely.
    pub served: AtomicU64,
    /// Connections closed to make room for a new one (their request unfinished).
    pub evicted: AtomicU64,
    /// New connections refused because every open one was busy writing.
    pub refused: AtomicU64,
    /// 400 and 411 answers (malformed request, no `Content-Length` framing).
    pub bad_requests: AtomicU64,
    /// 431 answers.
    pub headers_too_large: AtomicU64,
    /// 413 answers.
    pub bodies_too_large: AtomicU64,
    /// 408 answers (the request was not complete within `read_timeout`).
    pub read_timeouts: AtomicU64,
    /// Answers abandoned because the client did not read them within `write_timeout`.
    pub write_timeouts: AtomicU64,
    /// Handler panics (answered 500).
    pub panics: AtomicU64,
    /// Failed `accept` calls (out of file descriptors, which pauses accepting for 100 ms; or
    /// a connection reset before it was taken, which does not).
    pub accept_errors: AtomicU64,
}

impl Stats {
    /// Adds one to `counter`.
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The value of `counter`.
    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// A running server; dropping it stops it too.
#[derive(Debug)]
pub(crate) struct ServerHandle {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    wake: UnixStream,
    stats: Arc<Stats>,
    thread: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// Where it listens (the real port when 0 was asked for).
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the server did so far (shared: the counters keep moving).
    pub(crate) fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    /// Stops the server (open connections are closed) and waits for its thread.
    pub(crate) fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.store(true, Ordering::SeqCst);
            // The loop polls the other end: one byte wakes it (a full socket already will).
            let _ = (&self.wake).write(&[1]);
            let _ = t.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Starts serving on `listener` in a thread of its own.
pub(crate) fn spawn(
    listener: TcpListener,
    limits: Limits,
    handler: Handler,
) -> io::Result<ServerHandle> {
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let (wake, woken) = UnixStream::pair()?;
    wake.set_nonblocking(true)?;
    woken.set_nonblocking(true)?;
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(Stats::default());
    let server =
        event_loop::Server::new(listener, woken, Arc::clone(&stop), limits, handler, &stats);
    let thread =
        std::thread::Builder::new().name("hostwatch-api".into()).spawn(move || server.run())?;
    Ok(ServerHandle { addr, stop, wake, stats, thread: Some(thread) })
}

/// The response's bytes on the wire (always `Connection: close`). A response carrying
/// `X-Head-Length` (the routes' answer to `HEAD`) announces that length and sends no body;
/// the header itself stays off the wire.
#[cfg(test)]
pub(crate) fn encode(resp: &Response) -> Vec<u8> {
    encode_for(resp, false)
}

/// Like [`encode`]; `head` (the request was `HEAD`) sends no body whatever the handler left.
fn encode_for(resp: &Response, head: bool) -> Vec<u8> {
    let head_length = resp
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-head-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok());
    // No body at all for 1xx, 204 and 304, so no framing headers either.
    let bodiless = resp.status < 200 || resp.status == 204 || resp.status == 304;
    let body: &[u8] = if head || bodiless || head_length.is_some() { &[] } else { &resp.body };
    let mut out = Vec::with_capacity(256 + body.len());
    let _ = write!(out, "HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    if !bodiless {
        let length = head_length.unwrap_or(resp.body.len());
        let _ = write!(out, "Content-Type: {}\r\nContent-Length: {length}\r\n", resp.content_type);
    }
    out.extend_from_slice(b"Connection: close\r\n");
    for (n, v) in &resp.headers {
        let unsafe_text = |s: &str| s.bytes().any(|b| b == b'\r' || b == b'\n');
        if n.eq_ignore_ascii_case("x-head-length") || unsafe_text(n) || unsafe_text(v) {
            continue;
        }
        let _ = write!(out, "{n}: {v}\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// The reason phrase of a status code.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    }
}
