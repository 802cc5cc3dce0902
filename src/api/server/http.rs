//! Parsing one request head (request line and headers) into what the handler sees, or into
//! the 4xx the server answers instead. Pure functions over bytes.
//!
//! Not for: reading sockets or deciding time and size limits of the connection (`conn`).

/// A parsed head.
#[derive(Debug)]
pub(super) struct Head {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    /// From `Content-Length` (0 without one).
    pub content_length: usize,
    /// `Expect: 100-continue` was sent in an HTTP/1.1 request (HTTP/1.0 has no interim
    /// answers: RFC 9110 10.1.1 says to ignore it there).
    pub expect_continue: bool,
}

/// A request the server answers itself.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Reject {
    pub status: u16,
    pub message: &'static str,
}

/// Header lines accepted in one head (each becomes two strings for the handler: without a cap,
/// 8 KiB of `a:` lines would be some 2,000 of them, a quarter MiB per connection).
pub(super) const MAX_HEADERS: usize = 100;

fn reject(status: u16, message: &'static str) -> Reject {
    Reject { status, message }
}

/// The index just past the `\r\n\r\n` ending the head in `buf`, searching from `from` (bytes
/// before it were searched already).
pub(super) fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3);
    buf[start..].windows(4).position(|w| w == b"\r\n\r\n").map(|i| start + i + 4)
}

/// A `tchar` of RFC 9110 (method and header names).
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The longest method taken (`OPTIONS` is 7).
const MAX_METHOD: usize = 16;

/// A 400 for an unfinished head (`buf`, of which `searched` bytes were looked at before) that
/// can already not be HTTP: a method that is no token (a TLS hello, binary junk) or a bare LF
/// (`printf 'GET / HTTP/1.0\n\n'`), so it is told at once rather than by the 408 at the read
/// deadline.
pub(super) fn early_reject(buf: &[u8], searched: usize) -> Option<Reject> {
    let method = buf.iter().take(MAX_METHOD + 1).take_while(|&&b| b != b' ');
    if method.clone().any(|&b| !is_tchar(b)) || method.count() > MAX_METHOD {
        return Some(reject(400, "malformed request line"));
    }
    let from = searched.saturating_sub(1);
    if buf[from..].windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r') || buf.first() == Some(&b'\n')
    {
        return Some(reject(400, "header lines end with CRLF"));
    }
    None
}

/// Parses `head` (ending with `\r\n\r\n`), a body of at most `max_body` bytes allowed.
pub(super) fn parse(head: &[u8], max_body: usize) -> Result<Head, Reject> {
    let text = String::from_utf8_lossy(head);
    let text = text.strip_suffix("\r\n\r\n").unwrap_or(&text);
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or("");
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Err(reject(400, "malformed request line"));
    };
    if !is_token(method) {
        return Err(reject(400, "malformed request line"));
    }
    if !target.starts_with('/') || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(reject(400, "the request target must be a path starting with /"));
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(reject(400, "only HTTP/1.0 and HTTP/1.1 are served"));
    }
    let mut headers = Vec::new();
    let mut content_length: Option<usize> = None;
    let mut expect_continue = false;
    let mut chunked = false;
    for line in lines {
        if line.starts_with([' ', '\t']) {
            return Err(reject(400, "folded header lines are not accepted"));
        }
        if line.contains(['\r', '\n']) {
            return Err(reject(400, "header lines end with CRLF"));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(reject(400, "malformed header line"));
        };
        if !is_token(name) {
            return Err(reject(400, "malformed header name"));
        }
        let name = name.to_ascii_lowercase();
        let value = value.trim_matches([' ', '\t']).to_owned();
        // RFC 9110 5.5: NUL and the other controls (but tab) are no part of a field value.
        if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(reject(400, "control characters in a header value"));
        }
        if headers.len() == MAX_HEADERS {
            return Err(reject(431, "more header lines than the server accepts"));
        }
        match name.as_str() {
            "content-length" => {
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(reject(400, "malformed Content-Length"));
                }
                // All digits: too many of them is simply too large.
                let n = value.parse::<usize>().unwrap_or(usize::MAX);
                if content_length.is_some_and(|m| m != n) {
                    return Err(reject(400, "conflicting Content-Length headers"));
                }
                content_length = Some(n);
            }
            "transfer-encoding" => chunked = true,
            "expect" => {
                expect_continue =
                    version == "HTTP/1.1" && value.eq_ignore_ascii_case("100-continue");
            }
            _ => {}
        }
        headers.push((name, value));
    }
    if chunked {
        return Err(reject(411, "a body needs Content-Length (Transfer-Encoding is not accepted)"));
    }
    let content_length = content_length.unwrap_or(0);
    if content_length > max_body {
        return Err(reject(413, "the body is larger than the server accepts"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(Head {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        content_length,
        expect_continue,
    })
}
