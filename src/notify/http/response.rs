//! Reading one HTTP/1.1 answer within limits: the status line and headers (at most
//! `HEAD_LIMIT`), then a body framed by `Content-Length`, chunked encoding or the end of the
//! stream, at most the caller's limit. A body cut short keeps the status and what arrived.
//!
//! Not for: connecting, TLS or deadlines (the parent module), or classifying answers.

use super::{Failure, HEAD_LIMIT, HttpResponse, Stage, parse_retry_after, tls_failure};
use std::io::{self, Read};

/// Buffered reading of an answer; a TLS peer that closes without `close_notify` is at EOF.
pub(super) struct Reader<'a, S> {
    pub(super) stream: &'a mut S,
    pub(super) buf: Vec<u8>,
    pub(super) pos: usize,
    pub(super) eof: bool,
}

impl<S: Read> Reader<'_, S> {
    /// Reads more into the buffer; false at EOF.
    fn fill(&mut self) -> Result<bool, Failure> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk) {
            Ok(0) => {
                self.eof = true;
                Ok(false)
            }
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                self.eof = true;
                Ok(false)
            }
            Err(e) => Err(tls_failure(Stage::Answer, e)),
        }
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// One line without its CRLF, or `None` at EOF.
    fn line(&mut self, limit: usize) -> Result<Option<String>, Failure> {
        loop {
            if let Some(i) = self.pending().iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&self.pending()[..i]);
                let line = line.trim_end_matches('\r').to_string();
                self.pos += i + 1;
                return Ok(Some(line));
            }
            if self.pending().len() > limit {
                return Err(Failure::Protocol("the answer's header lines are too long".into()));
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// Up to `n` bytes appended to `out` (fewer at EOF).
    fn take(&mut self, mut n: usize, out: &mut Vec<u8>) -> Result<usize, Failure> {
        let mut got = 0;
        while n > 0 {
            if self.pending().is_empty() && !self.fill()? {
                break;
            }
            let k = n.min(self.pending().len());
            out.extend_from_slice(&self.pending()[..k]);
            self.pos += k;
            n -= k;
            got += k;
        }
        Ok(got)
    }
}

pub(super) fn read_response<S: Read>(
    r: &mut Reader<'_, S>,
    limit: usize,
) -> Result<HttpResponse, Failure> {
    let cut = || {
        Failure::Protocol(
            "the receiver closed the connection before its answer was complete".into(),
        )
    };
    let (status, headers) = loop {
        let line = r.line(HEAD_LIMIT)?.ok_or_else(|| {
            Failure::Protocol("the receiver closed the connection without an answer".into())
        })?;
        let mut parts = line.splitn(3, ' ');
        let (version, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let status = match code.parse::<i32>() {
            Ok(s) if version.starts_with("HTTP/1.") && (100..=999).contains(&s) => s,
            _ => {
                return Err(Failure::Protocol(format!(
                    "not an HTTP/1.x answer: {:?}",
                    line.chars().take(80).collect::<String>()
                )));
            }
        };
        let mut headers = Vec::new();
        let mut size = 0;
        loop {
            let line = r.line(HEAD_LIMIT)?.ok_or_else(cut)?;
            if line.is_empty() {
                break;
            }
            size += line.len();
            if size > HEAD_LIMIT {
                return Err(Failure::Protocol("the answer's headers are too large".into()));
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        // Interim answers (100 Continue and the like) precede the real one.
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        break (status, headers);
    };
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let retry_after =
        header("retry-after").and_then(|v| parse_retry_after(v, crate::timefmt::now_unix()));
    let mut body = Vec::new();
    let chunked = header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().split(',').any(|t| t.trim() == "chunked"));
    // The receiver has answered: a body cut short (a timeout, say, from a keep-alive answer
    // without a length, or an early close) keeps the status and what of the body arrived.
    let _ = read_body(r, status, chunked, header("content-length"), limit, &mut body);
    Ok(HttpResponse { status, body: String::from_utf8_lossy(&body).into_owned(), retry_after })
}

/// Reads the body after the head into `body`; an error leaves in `body` what arrived.
fn read_body<S: Read>(
    r: &mut Reader<'_, S>,
    status: i32,
    chunked: bool,
    content_length: Option<&str>,
    limit: usize,
    body: &mut Vec<u8>,
) -> Result<(), Failure> {
    let cut = || Failure::Protocol("the answer's body was cut short".into());
    if status == 204 || status == 304 || (100..200).contains(&status) {
        // No body.
    } else if chunked {
        while body.len() < limit {
            let line = r.line(1024)?.ok_or_else(cut)?;
            let size = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16)
                .map_err(|_| Failure::Protocol("bad chunk size".into()))?;
            if size == 0 {
                break;
            }
            let want = size.min(limit - body.len());
            if r.take(want, body)? < want {
                return Err(cut());
            }
            if want < size {
                break;
            }
            r.line(1024)?.ok_or_else(cut)?;
        }
    } else if let Some(length) = content_length {
        let length: usize =
            length.parse().map_err(|_| Failure::Protocol("bad Content-Length".into()))?;
        let want = length.min(limit);
        if r.take(want, body)? < want {
            return Err(cut());
        }
    } else {
        r.take(limit, body)?;
    }
    Ok(())
}
