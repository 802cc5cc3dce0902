//! Decoding of the `silences` key: planned maintenance kept in configuration management, as
//! [`Silence`] values with an RFC 3339 expiry.
//!
//! What a silence covers is `crate::silence`'s business; this module only reads and checks
//! them. An expired silence is not an error: a config must not turn invalid as time passes.

use super::decode::{Decoder, decode_matchers, matcher_glob, member};
use super::error::index_path;
use super::json::Node;
use crate::silence::Silence;

const SILENCE_KEYS: &[&str] = &["id", "rule", "match", "until", "comment"];
const SILENCE_EXAMPLE: &str =
    "{\"rule\": \"disk_*\", \"until\": \"2026-01-10T06:00:00Z\", \"comment\": \"disk swap\"}";
const TIME_EXAMPLE: &str = "\"2026-01-10T06:00:00Z\"";

/// Decodes the `silences` array; ids default to `config-1`, `config-2`, … by position.
pub(crate) fn decode_silences(d: &mut Decoder<'_>, node: &Node) -> Vec<Silence> {
    let Some(items) = d.array(node, "silences", &format!("[{SILENCE_EXAMPLE}]")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = index_path("silences", i);
        let Some(members) = d.object(item, &path, SILENCE_KEYS, SILENCE_EXAMPLE) else { continue };
        let before = d.errors.len();
        let id = match member(members, &path, "id") {
            Some((n, p)) => d.non_empty(n, &p, "\"db-maintenance\"").inspect(|id| {
                if ids.contains(id) {
                    d.error(n, &p, format!("duplicate silence id {id:?}"));
                }
            }),
            None => Some(format!("config-{}", i + 1)),
        };
        let rule = member(members, &path, "rule").and_then(|(n, p)| matcher_glob(d, n, &p));
        let matchers = member(members, &path, "match")
            .map(|(n, p)| decode_matchers(d, n, &p))
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.as_str().to_owned(), v))
            .collect();
        let until = match member(members, &path, "until") {
            Some((n, p)) => d
                .string(n, &p, TIME_EXAMPLE)
                .and_then(|text| parse_rfc3339(text).map_err(|e| d.error(n, &p, e)).ok()),
            None => {
                d.error(item, &path, "missing required key \"until\"");
                None
            }
        };
        let comment = member(members, &path, "comment")
            .and_then(|(n, p)| d.string(n, &p, "\"disk swap, ticket OPS-123\"").map(str::to_owned))
            .unwrap_or_default();
        if let (Some(id), Some(until)) = (id, until)
            && d.errors.len() == before
        {
            ids.push(id.clone());
            out.push(Silence { id, rule, matchers, until, comment });
        }
    }
    out
}

/// Parses an RFC 3339 time (`2026-01-10T06:00:00Z`, `2026-01-10 07:00:00+01:00`, fractions
/// allowed) into Unix seconds.
pub fn parse_rfc3339(text: &str) -> Result<f64, String> {
    let bad = || format!("invalid time {text:?} (expected RFC 3339 like {TIME_EXAMPLE})");
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(range)?;
        s.bytes().all(|c| c.is_ascii_digit()).then(|| s.parse().ok())?
    };
    let (Some(year), Some(month), Some(day)) = (num(0..4), num(5..7), num(8..10)) else {
        return Err(bad());
    };
    let (Some(hour), Some(minute), Some(second)) = (num(11..13), num(14..16), num(17..19)) else {
        return Err(bad());
    };
    let mut rest = &text[19..];
    let mut fraction = 0.0;
    if let Some(after) = rest.strip_prefix('.') {
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        fraction = format!("0.{}", &after[..digits]).parse().map_err(|_| bad())?;
        rest = &after[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return Err(bad()),
            };
            let (h, m) = rest[1..].split_once(':').ok_or_else(bad)?;
            let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|c| c.is_ascii_digit());
            if !two_digits(h) || !two_digits(m) {
                return Err(bad());
            }
            let (Ok(h), Ok(m)) = (h.parse::<i64>(), m.parse::<i64>()) else { return Err(bad()) };
            if h > 23 || m > 59 {
                return Err(bad());
            }
            sign * (h * 3600 + m * 60)
        }
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&month)
        || day < 1
        || day > month_days[month as usize - 1]
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    let days = days_from_civil(year, month, day);
    Ok((days * 86_400 + hour * 3600 + minute * 60 + second - offset) as f64 + fraction)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_in_utc_and_with_offsets() {
        for bad in [
            "2026-01-01T00:00:00+00:-9223372036854775808",
            "2026-01-01T00:00:00+-5:00",
            "2026-01-01T00:00:00+00:-30",
            "2026-01-01T00:00:00+00:+5",
            "2026-01-01T00:00:00+5:00",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z").unwrap(), 0.0);
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z").unwrap(), 1_700_000_000.0);
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20.5Z").unwrap(), 1_700_000_000.5);
        assert_eq!(parse_rfc3339("2023-11-14T23:13:20+01:00").unwrap(), 1_700_000_000.0);
        assert_eq!(parse_rfc3339("2023-11-14 21:13:20-01:00").unwrap(), 1_700_000_000.0);
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z").unwrap(), 1_709_164_800.0);
    }

    #[test]
    fn rejects_what_is_not_a_time() {
        for text in [
            "2026-01-10",
            "2026-01-10T06:00:00",
            "2026-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2026-01-10T24:00:00Z",
            "2026-01-10T06:00:00+1",
            "tomorrow",
        ] {
            let e = parse_rfc3339(text).unwrap_err();
            assert!(e.contains("expected RFC 3339"), "{text}: {e}");
        }
    }
}
