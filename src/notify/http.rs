//! HTTP(S) for the channels, the heartbeat and `hostwatch status`: one HTTP/1.1 request (POST,
//! GET) over std `TcpStream` (and rustls, with the process's one shared configuration from
//! [`super::tls`]), and the reading of the answer into accepted / retry later / give up.
//!
//! One deadline (`timeout` from the start of [`request`]) bounds everything on the socket: the
//! connect (`connect_timeout`), the TLS handshake, sending and reading the answer (a read or
//! write timeout set to what is left before every socket call), sub-second included. No thread
//! is started: a receiver that accepts TCP and never speaks costs one socket for at most the
//! timeout. Name resolution (`getaddrinfo`, before the connect) is outside the deadline: the
//! system resolver's own timeouts apply. Redirects are not followed; the answer's body is cut
//! to 64 KiB (a caller reading a whole document sets its own bound: [`request_up_to`]). Once the status line and headers are read, a body cut short (timeout, early
//! close) keeps the status: the receiver has answered.
//!
//! Secrets in URLs never reach a log line or an error message: errors name the redacted URL,
//! parse errors never quote a piece of the URL, and every configured header value (and the
//! URL's user info, as written, decoded and in base64, and its long path segments and query
//! values) is scrubbed from the receiver's answer before anything reads it.

use super::{Receipt, SendError};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A receiver's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: i32,
    /// The body, lossily decoded and cut to 64 KiB.
    pub body: String,
    /// `Retry-After`, when present and readable.
    pub retry_after: Option<Duration>,
}

/// The most of a response body kept for messages.
const BODY_LIMIT: usize = 64 * 1024;

/// The most of a response head (status line and headers) read.
const HEAD_LIMIT: usize = 64 * 1024;

/// What a refused receiver certificate asks the user to do.
const HINTS: super::tls::Hints = super::tls::Hints {
    name_from: "the URL",
    private_ca: "add that CA's certificate (PEM) to the system CA bundle, or point \
                 SSL_CERT_FILE at a bundle that holds it",
};

/// POSTs `body` to `url` with `headers`: [`request`] with `POST`.
pub fn post(
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    timeout: Duration,
) -> Result<HttpResponse, SendError> {
    request("POST", url, headers, body, timeout)
}

/// Sends one `method` request (`GET`, `POST`) with `body` to `url`; a network failure or
/// timeout is transient. A `GET` with an empty body sends no `Content-Length`.
///
/// Redirects are not followed: they would carry the body and every header (tokens, basic
/// auth) to whatever host the `Location` names.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    timeout: Duration,
) -> Result<HttpResponse, SendError> {
    request_up_to(method, url, headers, body, timeout, BODY_LIMIT)
}

/// [`request`] keeping up to `body_limit` bytes of the answer's body instead of 64 KiB (a
/// reader of a whole document, such as `hostwatch status`, whose body is the answer).
pub fn request_up_to(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    timeout: Duration,
    body_limit: usize,
) -> Result<HttpResponse, SendError> {
    let shown = crate::config::redact_url(url);
    let target =
        Target::parse(url).map_err(|e| SendError::permanent(format!("{method} {shown}: {e}")))?;
    let secrets = secrets(&target, headers);
    let request = encode(method, &target, headers, body).map_err(|e| {
        SendError::permanent(format!("{method} {shown}: {}", scrub(&e, url, &secrets)))
    })?;
    let deadline = Deadline { at: Instant::now() + timeout, timeout };
    match exchange(&target, &request, deadline, body_limit) {
        Ok(mut response) => {
            response.body = scrub(&response.body, url, &secrets);
            Ok(response)
        }
        Err(e) => {
            let reason = match e {
                Failure::Io(stage, e) => deadline.describe(stage, &e, &target.host),
                Failure::Tls(e) => super::tls::describe(&e, &target.host, &HINTS),
                Failure::Protocol(m) => m,
            };
            let reason = scrub(&reason, url, &secrets);
            Err(SendError::transient(format!("{method} {shown}: {reason}")))
        }
    }
}

/// What a receiver's answer must not repeat: every header value (and the credential after an
/// `Authorization` scheme word), the URL's user info as written, percent-decoded, its
/// password alone and in its `Basic` base64 form, and the URL's path segments of 16 bytes or
/// more and query values of 8 or more. Longest first, so no secret is left half replaced.
fn secrets(target: &Target, headers: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    const PLAIN: [&str; 4] = ["content-type", "user-agent", "accept", "host"];
    for (k, v) in headers {
        if PLAIN.iter().any(|p| k.eq_ignore_ascii_case(p)) {
            continue;
        }
        let v = v.trim();
        out.push(v.to_string());
        if let Some((_, credential)) = v.split_once(' ') {
            out.push(credential.trim().to_string());
        }
    }
    if let Some(userinfo) = &target.userinfo {
        let decoded = percent_decode(userinfo);
        out.push(userinfo.clone());
        out.push(super::escape::base64(&decoded));
        out.push(String::from_utf8_lossy(&decoded).into_owned());
        if let Some((_, password)) = userinfo.split_once(':') {
            out.push(password.to_string());
            out.push(String::from_utf8_lossy(&percent_decode(password)).into_owned());
        }
    }
    // Webhook URLs carry their secret in the path (Slack, Teams, healthchecks UUIDs) or the
    // query (`?token=`), and receivers echo it (`Cannot POST /hooks/<token>`): every long
    // path segment and query value, as written and decoded.
    let (path, query) = target.path.split_once('?').unwrap_or((&target.path, ""));
    let segments = path.split('/').filter(|s| s.len() >= 16);
    let values = query.split('&').map(|kv| kv.split_once('=').map_or(kv, |(_, v)| v));
    for piece in segments.chain(values.filter(|v| v.len() >= 8)) {
        out.push(piece.to_string());
        out.push(String::from_utf8_lossy(&percent_decode(piece)).into_owned());
    }
    // Very short values (`1`, `on`) would blank out ordinary words, not hide a secret.
    out.retain(|s| s.len() >= 4);
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// The parts of a URL a request needs.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Target {
    tls: bool,
    /// The host, without brackets for IPv6.
    host: String,
    port: u16,
    /// The `Host` header value.
    authority: String,
    /// Path and query (`/` at least); the fragment is dropped.
    path: String,
    /// `user:password` from the URL, sent as basic authentication.
    userinfo: Option<String>,
}

impl Target {
    /// Parses an `http://` or `https://` URL. Config decoding checks URLs with this very
    /// parser, so what `check` accepts is what the client sends to. No error quotes a piece
    /// of the URL (it may hold a password).
    pub(crate) fn parse(url: &str) -> Result<Target, String> {
        let (scheme, rest) = url.split_once("://").ok_or("not an http:// or https:// URL")?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            _ => return Err("unsupported URL scheme (http or https)".into()),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        // `user:pa/ss@host`: the redaction (`config::effective::split_url`) takes all of it
        // before the last `@` for user info; the authority ends at the first `/` for HTTP.
        // Refuse rather than send to a host made of a piece of the password.
        if !authority.contains('@')
            && let Some(at) = rest.rfind('@')
            && at > end
            && rest[..at].find(':').is_some_and(|colon| colon < end)
        {
            return Err("the URL is ambiguous: an '@' after a '/', '?' or '#' with a ':' before \
                        them reads as user info; percent-encode '/', '?' and '#' in a password \
                        (%2F, %3F, %23), or an '@' in the path (%40)"
                .into());
        }
        if authority.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err("spaces or control characters in the URL's host".into());
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_string()), h),
            None => (None, authority),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or("unclosed [ in the URL's host")?;
            if !after.is_empty() && !after.starts_with(':') {
                return Err("text after the ] of the URL's host".into());
            }
            (host, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err("no host in the URL".into());
        }
        let port = match port {
            None | Some("") => {
                if tls {
                    443
                } else {
                    80
                }
            }
            Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => match p.parse::<u16>() {
                Ok(port) if port > 0 => port,
                _ => return Err("the URL's port is out of range (1 to 65535)".into()),
            },
            Some(_) => return Err("bad port in the URL".into()),
        };
        let tail = tail.split('#').next().unwrap_or("");
        let path = if tail.starts_with('/') { tail.to_string() } else { format!("/{tail}") };
        if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err("spaces or control characters in the URL path".into());
        }
        Ok(Target {
            tls,
            host: host.to_string(),
            port,
            authority: hostport.to_string(),
            path,
            userinfo: userinfo.filter(|u| !u.is_empty()),
        })
    }
}

/// The request bytes: head and body. Framing headers from `headers` are ignored (hostwatch
/// sets `Content-Length` and `Connection: close`); a `Host` given there replaces the URL's.
fn encode(
    method: &str,
    target: &Target,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Vec<u8>, String> {
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    let mut head = format!("{method} {} HTTP/1.1\r\n", target.path);
    if !has("host") {
        head.push_str(&format!("Host: {}\r\n", target.authority));
    }
    if let Some(userinfo) = &target.userinfo
        && !has("authorization")
    {
        let auth = super::escape::base64(percent_decode(userinfo).as_slice());
        head.push_str(&format!("Authorization: Basic {auth}\r\n"));
    }
    for (k, v) in headers {
        let lower = k.to_ascii_lowercase();
        if matches!(lower.as_str(), "content-length" | "transfer-encoding" | "connection") {
            continue;
        }
        if k.is_empty() || k.bytes().any(|b| !b.is_ascii_graphic() || b == b':') {
            return Err(format!("header name {k:?} is not a valid HTTP token"));
        }
        if v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(format!("header {k}: the value holds a line break"));
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if method != "GET" || !body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    Ok(out)
}

/// `%XX` decoding (user info in a URL), byte-exact: exactly two hex digits after `%`
/// (no sign, no other form); anything else is kept as written.
pub(crate) fn percent_decode(text: &str) -> Vec<u8> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let pair = bytes.get(i + 1..i + 3).and_then(|h| Some(hex(h[0])? << 4 | hex(h[1])?));
        match (bytes[i], pair) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Where an exchange was when it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Connect,
    Handshake,
    Send,
    Answer,
}

enum Failure {
    Io(Stage, io::Error),
    Tls(rustls::Error),
    Protocol(String),
}

/// The end of one exchange.
#[derive(Clone, Copy, Debug)]
struct Deadline {
    at: Instant,
    timeout: Duration,
}

impl Deadline {
    /// What is left, or a timeout error when nothing is.
    fn left(&self) -> io::Result<Duration> {
        let left = self.at.saturating_duration_since(Instant::now());
        if left < Duration::from_micros(1) {
            Err(io::Error::new(io::ErrorKind::TimedOut, "deadline reached"))
        } else {
            Ok(left)
        }
    }

    fn describe(&self, stage: Stage, e: &io::Error, host: &str) -> String {
        let doing = match stage {
            Stage::Connect => format!("connecting to {host}"),
            Stage::Handshake => format!("in the TLS handshake with {host}"),
            Stage::Send => "sending the request".to_string(),
            Stage::Answer => "waiting for the answer".to_string(),
        };
        match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
                format!("timed out after {} {doing}", shown(self.timeout))
            }
            _ => format!("{doing}: {e}"),
        }
    }
}

fn shown(d: Duration) -> String {
    if d.subsec_nanos() == 0 { format!("{}s", d.as_secs()) } else { format!("{d:?}") }
}

/// A TCP stream whose every read and write is bounded by what is left of the deadline.
struct Bounded {
    tcp: TcpStream,
    deadline: Deadline,
}

impl Read for Bounded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tcp.set_read_timeout(Some(self.deadline.left()?))?;
        self.tcp.read(buf).map_err(timed_out)
    }
}

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.set_write_timeout(Some(self.deadline.left()?))?;
        self.tcp.write(buf).map_err(timed_out)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

/// A socket timeout shows as `WouldBlock` on Unix: name it for what it is.
fn timed_out(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::WouldBlock {
        io::Error::new(io::ErrorKind::TimedOut, "timed out")
    } else {
        e
    }
}

/// Connects to the first address of `target` that answers within the deadline.
fn connect(target: &Target, deadline: Deadline) -> io::Result<TcpStream> {
    let addrs: Vec<SocketAddr> = (target.host.as_str(), target.port).to_socket_addrs()?.collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name has no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, deadline.left()?) {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = timed_out(e),
        }
    }
    Err(last)
}

/// One request and its answer on a fresh connection.
fn exchange(
    target: &Target,
    request: &[u8],
    deadline: Deadline,
    limit: usize,
) -> Result<HttpResponse, Failure> {
    let tcp = connect(target, deadline).map_err(|e| Failure::Io(Stage::Connect, e))?;
    let _ = tcp.set_nodelay(true);
    let mut sock = Bounded { tcp, deadline };
    if !target.tls {
        return talk(&mut sock, request, limit);
    }
    let config = super::tls::client_config(None, false).map_err(Failure::Protocol)?;
    let name = rustls::pki_types::ServerName::try_from(target.host.clone())
        .map_err(|e| Failure::Protocol(format!("{}: not a TLS server name: {e}", target.host)))?;
    let mut conn =
        rustls::ClientConnection::new(Arc::clone(&config), name).map_err(Failure::Tls)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).map_err(|e| tls_failure(Stage::Handshake, e))?;
    }
    let mut stream = rustls::StreamOwned::new(conn, sock);
    talk(&mut stream, request, limit)
}

/// A rustls error inside an I/O error comes out as itself (certificate problems are worded).
fn tls_failure(stage: Stage, e: io::Error) -> Failure {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(tls) => Failure::Tls(tls.clone()),
        None => Failure::Io(stage, e),
    }
}

/// Sends the request and reads the answer.
fn talk<S: Read + Write>(
    stream: &mut S,
    request: &[u8],
    limit: usize,
) -> Result<HttpResponse, Failure> {
    stream
        .write_all(request)
        .and_then(|()| stream.flush())
        .map_err(|e| tls_failure(Stage::Send, e))?;
    let mut reader = Reader { stream, buf: Vec::new(), pos: 0, eof: false };
    read_response(&mut reader, limit)
}

/// Removes the URL itself (I/O errors may quote parts of it) and every secret of
/// [`secrets`] from a text.
fn scrub(text: &str, url: &str, secrets: &[String]) -> String {
    let mut text = if url.is_empty() {
        text.to_string()
    } else {
        text.replace(url, &crate::config::redact_url(url))
    };
    for secret in secrets {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), crate::config::REDACTED);
        }
    }
    text
}

/// Reads an answer: 2xx accepted; 408, 429 and 5xx transient (honouring `Retry-After`); any
/// other status permanent (a 3xx included: redirects are not followed, update the URL).
pub fn classify(what: &str, response: &HttpResponse) -> Result<Receipt, SendError> {
    let body = response.body.trim();
    let answer = if body.is_empty() {
        format!("HTTP {}", response.status)
    } else {
        format!("HTTP {}: {}", response.status, first_line(body))
    };
    match response.status {
        200..=299 => Ok(Receipt { answer }),
        300..=399 => Err(SendError::permanent(format!(
            "{what}: {answer}: redirected, and redirects are not followed (they would carry \
             credentials to another host); set the URL the receiver redirects to"
        ))),
        408 | 429 | 500..=599 => Err(SendError::Transient {
            reason: format!("{what}: {answer}"),
            retry_after: response.retry_after,
        }),
        _ => Err(SendError::permanent(format!("{what}: {answer}"))),
    }
}

fn first_line(text: &str) -> &str {
    let line = text.lines().next().unwrap_or("");
    match line.char_indices().nth(200) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}

/// Parses `Retry-After`: delay seconds, or an HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`).
pub fn parse_retry_after(value: &str, now: f64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
    let parts: Vec<&str> = value.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" {
        return None;
    }
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let day: u32 = parts[1].parse().ok()?;
    let month = MONTHS.iter().position(|m| *m == parts[2])? + 1;
    let year: i32 = parts[3].parse().ok()?;
    let text = format!("{year:04}-{month:02}-{day:02}T{}Z", parts[4]);
    let at = crate::config::parse_rfc3339(&text).ok()?;
    Some(Duration::from_secs_f64((at - now).max(0.0)))
}

mod response;
#[cfg(test)]
mod tests;

use response::{Reader, read_response};
