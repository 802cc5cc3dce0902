//! The InfluxDB sink: each slot's aggregates pushed as line protocol (`line`) to InfluxDB 1.x
//! (`/write?db=…`, which VictoriaMetrics accepts too) or 2.x (`/api/v2/write?org=…&bucket=…`,
//! `Authorization: Token …`), over the channels' HTTP client (`notify::http`: one request
//! under one deadline, the same TLS configuration).
//!
//! What the server has not accepted waits in a bounded buffer of lines (`buffer` points);
//! beyond it the oldest are dropped and counted (`SinkStats::dropped`). Sent in batches of at
//! most [`BATCH_LINES`] lines. An answer decides:
//! - 2xx: written;
//! - 5xx, 408, 429, any network failure or timeout: kept, retried from `poll` after a backoff
//!   doubling from 5 s to 2 min (a longer `Retry-After` wins), so a down database is not
//!   hammered; a new slot while backing off is only buffered;
//! - 401, 403, 404 (credentials, a missing database or bucket): kept and retried the same
//!   way: the operator can fix the server while the buffer holds the points;
//! - 413: the batch is halved and sent again;
//! - any other 4xx (400: a point the server refuses, such as a field type conflict): the
//!   batch is dropped and counted; InfluxDB keeps the valid points of a partial write.
//!
//! The URL (its user info), the password and the token never reach a message: messages name
//! the base URL with its user info redacted, and `notify::http` redacts and scrubs the rest.
//!
//! Not for: the line format itself (`line`), or deciding when a slot ends (the recorder).

mod line;
#[cfg(test)]
mod tests;

use super::sink::{Sink, SinkStats, SlotBatch};
use crate::config::{InfluxConfig, InfluxTarget, Secret};
use crate::notify::SendError;
use crate::notify::http::{self, HttpResponse};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The most lines sent in one request.
pub(crate) const BATCH_LINES: usize = 5000;
/// The most bytes of lines sent in one request (InfluxDB 1.x refuses bodies over 25 MB).
const BATCH_BYTES: usize = 4 << 20;
/// The first retry delay after a failed write.
const BACKOFF_FIRST: Duration = Duration::from_secs(5);
/// The longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(120);

/// The InfluxDB sink; see the module documentation.
pub(crate) struct InfluxSink {
    /// The write URL, query included (secret: the base may carry user info).
    write_url: Secret,
    /// The base URL with user info redacted, plus the API path, for messages.
    shown: String,
    headers: Vec<(String, String)>,
    timeout: Duration,
    buffer: Buffer,
    backoff: Backoff,
    /// The most lines in the next request (halved by a 413).
    batch_lines: usize,
    stats: Arc<SinkStats>,
    /// Why the last write failed while points wait for a retry.
    waiting: Option<String>,
}

impl InfluxSink {
    /// A sink for `config`; `timeout` bounds one request (the config's, else the delivery
    /// timeout). Nothing is sent before the first slot.
    pub(crate) fn new(
        config: InfluxConfig,
        timeout: Duration,
        stats: Arc<SinkStats>,
    ) -> InfluxSink {
        let base = config.url.expose().trim_end_matches('/');
        let mut headers =
            vec![("Content-Type".to_string(), "text/plain; charset=utf-8".to_string())];
        let (path, query) = match &config.target {
            InfluxTarget::V1 { database, username, password } => {
                if let Some(user) = username {
                    let pass = password.as_ref().map_or("", Secret::expose);
                    let auth = crate::notify::escape::base64(format!("{user}:{pass}").as_bytes());
                    headers.push(("Authorization".to_string(), format!("Basic {auth}")));
                }
                ("/write", format!("db={}&precision=s", query_value(database)))
            }
            InfluxTarget::V2 { org, bucket, token } => {
                headers.push(("Authorization".to_string(), format!("Token {}", token.expose())));
                let q =
                    format!("org={}&bucket={}&precision=s", query_value(org), query_value(bucket));
                ("/api/v2/write", q)
            }
        };
        InfluxSink {
            write_url: Secret::new(format!("{base}{path}?{query}")),
            shown: format!("{}{path}", crate::config::redact_url_secrets(base)),
            headers,
            timeout,
            buffer: Buffer::new(config.buffer),
            backoff: Backoff::default(),
            batch_lines: BATCH_LINES,
            stats,
            waiting: None,
        }
    }

    /// Sends what the buffer holds, batch after batch, until it is empty, a write fails for a
    /// reason worth waiting for, or `until` passes (each request's time limit cut to what is
    /// left). `Err`: what went wrong (for the rate-limited log).
    fn flush(&mut self, now: Instant, until: Option<Instant>) -> Result<(), String> {
        let mut refused: Vec<String> = Vec::new();
        while !self.buffer.is_empty() {
            let timeout = match until {
                None => self.timeout,
                Some(t) => match t.checked_duration_since(Instant::now()) {
                    Some(left) if left >= Duration::from_millis(50) => self.timeout.min(left),
                    _ => break,
                },
            };
            let (body, n) = self.buffer.batch(self.batch_lines, BATCH_BYTES);
            match self.send(&body, n, timeout) {
                Outcome::Written => {
                    self.buffer.consume(n);
                    self.stats.written.fetch_add(n as u64, Ordering::Relaxed);
                    self.backoff.ok();
                    self.waiting = None;
                    self.batch_lines = BATCH_LINES;
                }
                Outcome::TooLarge(_) if n > 1 => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    self.batch_lines = (n / 2).max(1);
                }
                Outcome::TooLarge(reason) | Outcome::Refused(reason) => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    self.buffer.consume(n);
                    self.stats.dropped.fetch_add(n as u64, Ordering::Relaxed);
                    refused.push(format!(
                        "the server refused {n} points, which were dropped: {reason}"
                    ));
                }
                Outcome::Retry { reason, retry_after } => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    let delay = self.backoff.failed(now, retry_after);
                    self.waiting = Some(reason);
                    refused.push(self.waiting_message(Some(delay)));
                    break;
                }
            }
        }
        if refused.is_empty() { Ok(()) } else { Err(refused.join("; ")) }
    }

    /// One request with the first `n` buffered lines.
    fn send(&self, body: &[u8], n: usize, timeout: Duration) -> Outcome {
        let what = format!("POST {} ({n} points)", self.shown);
        match http::post(self.write_url.expose(), &self.headers, body, timeout) {
            Ok(response) => classify(&what, &response),
            // Network failures are transient; a permanent one here is a URL that can never
            // work, which `check` refused already: keep the points all the same. The client
            // names the URL with its whole path redacted; name the API path instead.
            Err(e) => {
                let url = crate::config::redact_url(self.write_url.expose());
                let reason = e.reason();
                let reason = reason.strip_prefix(&format!("POST {url}: ")).unwrap_or(reason);
                Outcome::Retry { reason: format!("{what}: {reason}"), retry_after: None }
            }
        }
    }

    /// Why points are waiting, how many, and when the next try is.
    fn waiting_message(&self, next: Option<Duration>) -> String {
        let reason = self.waiting.as_deref().unwrap_or("an earlier write failed");
        let next = next.map_or(String::new(), |d| format!(", next try in {}s", d.as_secs()));
        format!("{reason}; {} points kept (at most {}){next}", self.buffer.len(), self.buffer.cap)
    }

    /// Buffers a slot's lines, dropping (and counting) the oldest beyond the bound.
    fn take(&mut self, batch: &SlotBatch) -> Option<String> {
        let ts = batch.start.floor() as i64;
        let mut dropped = 0u64;
        let mut line = String::new();
        for row in &batch.rows {
            line.clear();
            if line::encode_row(&mut line, &batch.host, row, ts) {
                dropped += self.buffer.push(line.as_str().into());
            }
        }
        if dropped == 0 {
            return None;
        }
        self.stats.dropped.fetch_add(dropped, Ordering::Relaxed);
        Some(format!(
            "the buffer is full ({} points): dropped the {dropped} oldest ({} dropped in all)",
            self.buffer.cap,
            self.stats.dropped.load(Ordering::Relaxed)
        ))
    }
}

impl Sink for InfluxSink {
    fn slot(&mut self, batch: &SlotBatch) -> Result<(), String> {
        let overflow = self.take(batch);
        let now = Instant::now();
        let sent = if self.backoff.due(now) {
            self.flush(now, None)
        } else {
            Err(self.waiting_message(self.backoff.left(now)))
        };
        match (overflow, sent) {
            (None, r) => r,
            (Some(o), Ok(())) => Err(o),
            (Some(o), Err(e)) => Err(format!("{e}; {o}")),
        }
    }

    fn poll(&mut self) -> Result<(), String> {
        let now = Instant::now();
        if self.buffer.is_empty() {
            return Ok(());
        }
        if !self.backoff.due(now) {
            return Err(self.waiting_message(self.backoff.left(now)));
        }
        self.flush(now, None)
    }

    fn events(&mut self, _events: &[crate::event::AlertEvent]) -> Result<(), String> {
        // Not written here; but an `Ok` would read as "writing again" while points wait.
        match &self.waiting {
            Some(_) if !self.buffer.is_empty() => {
                Err(self.waiting_message(self.backoff.left(Instant::now())))
            }
            _ => Ok(()),
        }
    }

    fn close(&mut self, deadline: Instant) {
        // The last chance: ignore the backoff and send batch after batch until the deadline,
        // but stop at the first failure worth waiting for (a stop must not wait for a dead
        // server; a reload that replaces the sink waits for this).
        let _ = self.flush(Instant::now(), Some(deadline));
        let lost = self.buffer.len();
        if lost > 0 {
            self.stats.dropped.fetch_add(lost as u64, Ordering::Relaxed);
            log::warn!(
                sink = "influxdb", lost = lost;
                "history influxdb: {lost} points not written by the stop deadline are lost ({})",
                self.waiting.as_deref().unwrap_or("the server did not accept them in time")
            );
        }
    }
}

/// What one write's answer means for its batch.
#[derive(Debug, PartialEq)]
enum Outcome {
    Written,
    /// Keep the batch; try again after the backoff.
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Retrying the same points cannot help: drop them.
    Refused(String),
    /// 413: send fewer at a time.
    TooLarge(String),
}

/// Reads a write's answer (see the module documentation).
fn classify(what: &str, response: &HttpResponse) -> Outcome {
    match http::classify(what, response) {
        Ok(_) => Outcome::Written,
        Err(SendError::Transient { reason, retry_after }) => Outcome::Retry { reason, retry_after },
        Err(SendError::Permanent { reason }) => match response.status {
            401 | 403 => Outcome::Retry {
                reason: format!("{reason} (check the credentials)"),
                retry_after: None,
            },
            404 => Outcome::Retry {
                reason: format!("{reason} (does the database or bucket exist?)"),
                retry_after: None,
            },
            413 => Outcome::TooLarge(reason),
            _ => Outcome::Refused(reason),
        },
    }
}

/// The lines the server has not accepted yet, oldest first, at most `cap`.
struct Buffer {
    lines: VecDeque<Box<str>>,
    cap: usize,
}

impl Buffer {
    fn new(cap: usize) -> Buffer {
        let cap = cap.max(1);
        Buffer { lines: VecDeque::with_capacity(cap.min(BATCH_LINES)), cap }
    }

    /// Adds a line; returns how many old ones were dropped to make room (0 or 1).
    fn push(&mut self, line: Box<str>) -> u64 {
        let dropped = if self.lines.len() >= self.cap {
            self.lines.pop_front();
            1
        } else {
            0
        };
        self.lines.push_back(line);
        dropped
    }

    fn len(&self) -> usize {
        self.lines.len()
    }

    fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The body of the next request: the oldest lines, at most `max_lines` and (unless one
    /// line is longer) `max_bytes`, newline-terminated; and how many lines it holds.
    fn batch(&self, max_lines: usize, max_bytes: usize) -> (Vec<u8>, usize) {
        let mut body = Vec::new();
        let mut n = 0;
        for line in self.lines.iter().take(max_lines) {
            if n > 0 && body.len() + line.len() + 1 > max_bytes {
                break;
            }
            body.extend_from_slice(line.as_bytes());
            body.push(b'\n');
            n += 1;
        }
        (body, n)
    }

    /// Forgets the oldest `n` lines (sent, or refused).
    fn consume(&mut self, n: usize) {
        self.lines.drain(..n.min(self.lines.len()));
    }
}

/// When the next write may be tried after failures: 5 s, doubling to 2 min.
#[derive(Debug)]
struct Backoff {
    /// The delay after the next failure.
    delay: Duration,
    /// No write before this.
    until: Option<Instant>,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { delay: BACKOFF_FIRST, until: None }
    }
}

impl Backoff {
    /// A write failed at `now`: wait the current delay (or the server's `Retry-After`, if
    /// longer, at most 2 min), and double the next. Returns the wait.
    fn failed(&mut self, now: Instant, retry_after: Option<Duration>) -> Duration {
        let wait = self.delay.max(retry_after.unwrap_or_default()).min(BACKOFF_MAX);
        self.until = Some(now + wait);
        self.delay = (self.delay * 2).min(BACKOFF_MAX);
        wait
    }

    /// A write worked: the next failure starts from 5 s again.
    fn ok(&mut self) {
        *self = Backoff::default();
    }

    fn due(&self, now: Instant) -> bool {
        self.until.is_none_or(|t| now >= t)
    }

    fn left(&self, now: Instant) -> Option<Duration> {
        self.until.map(|t| t.saturating_duration_since(now))
    }
}

/// A query parameter value, percent-encoded (everything but RFC 3986 unreserved bytes).
fn query_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
