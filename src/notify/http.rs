//! HTTP(S) for the channels: one POST with a timeout through minreq (native-tls), and the
//! reading of the answer into accepted / retry later / give up.
//!
//! Secrets in URLs never reach a log line or an error message: errors name the redacted URL.

use super::{Receipt, SendError};
use std::time::Duration;

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

/// POSTs `body` to `url` with `headers`; a network failure or timeout is transient.
pub fn post(
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    timeout: Duration,
) -> Result<HttpResponse, SendError> {
    let secs = timeout.as_secs().max(1);
    // Redirects are not followed: they would carry the body and every header (tokens, basic
    // auth) to whatever host the `Location` names.
    let mut request =
        minreq::post(url).with_timeout(secs).with_follow_redirects(false).with_body(body.to_vec());
    for (k, v) in headers {
        request = request.with_header(k.as_str(), v.as_str());
    }
    let response = request.send().map_err(|e| {
        SendError::transient(format!(
            "POST {}: {}",
            crate::config::redact_url(url),
            scrub(&e.to_string(), url)
        ))
    })?;
    let retry_after = response
        .headers
        .get("retry-after")
        .and_then(|v| parse_retry_after(v, crate::timefmt::now_unix()));
    let raw = response.as_bytes();
    let cut = &raw[..raw.len().min(BODY_LIMIT)];
    Ok(HttpResponse {
        status: response.status_code,
        body: String::from_utf8_lossy(cut).into_owned(),
        retry_after,
    })
}

/// Removes the URL itself from an error text (minreq errors may quote it).
fn scrub(text: &str, url: &str) -> String {
    if url.is_empty() {
        text.to_string()
    } else {
        text.replace(url, &crate::config::redact_url(url))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: i32, body: &str) -> HttpResponse {
        HttpResponse { status, body: body.into(), retry_after: None }
    }

    #[test]
    fn statuses_are_classified() {
        assert_eq!(classify("x", &resp(200, "ok")).unwrap().answer, "HTTP 200: ok");
        assert!(matches!(classify("x", &resp(429, "")), Err(SendError::Transient { .. })));
        assert!(matches!(classify("x", &resp(503, "")), Err(SendError::Transient { .. })));
        assert!(matches!(classify("x", &resp(408, "")), Err(SendError::Transient { .. })));
        assert!(matches!(
            classify("x", &resp(404, "no_service")),
            Err(SendError::Permanent { .. })
        ));
        assert!(matches!(
            classify("x", &resp(400, "invalid_payload")),
            Err(SendError::Permanent { .. })
        ));
        assert!(matches!(classify("x", &resp(307, "")), Err(SendError::Permanent { .. })));
    }

    #[test]
    fn retry_after_in_both_forms() {
        assert_eq!(parse_retry_after("7", 0.0), Some(Duration::from_secs(7)));
        let now = crate::config::parse_rfc3339("2015-10-21T07:27:50Z").unwrap();
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(parse_retry_after("soon", 0.0), None);
    }
}
