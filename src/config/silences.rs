//! Decoding of the `silences` key: planned maintenance kept in configuration management, as
//! [`Silence`] values with an RFC 3339 expiry, a recurring `schedule`, or both (the expiry
//! then ends the recurrence).
//!
//! What a silence covers is `crate::silence`'s business; this module only reads and checks
//! them. An expired silence is not an error: a config must not turn invalid as time passes.
//! A schedule's `tz` is read from the time zone database here (an unknown one is refused
//! with its position); without one, the display zone (`display.timezone`) applies.

use super::DisplayConfig;
use super::decode::{Decoder, decode_matchers, get, matcher_glob, member};
use super::error::{index_path, key_path};
use super::json::{Node, NodeValue};
use crate::silence::{EVERY_DAY, Schedule, Silence, parse_days, parse_time};
use std::sync::Arc;

const SILENCE_KEYS: &[&str] = &["id", "rule", "match", "until", "schedule", "comment", "host"];
const SCHEDULE_KEYS: &[&str] = &["days", "from", "to", "tz"];
const SCHEDULE_EXAMPLE: &str =
    "{\"days\": [\"sun\"], \"from\": \"02:00\", \"to\": \"04:00\", \"tz\": \"Europe/Lisbon\"}";
const SILENCE_EXAMPLE: &str =
    "{\"rule\": \"disk_*\", \"until\": \"2026-01-10T06:00:00Z\", \"comment\": \"disk swap\"}";
const TIME_EXAMPLE: &str = "\"2026-01-10T06:00:00Z\"";

/// Decodes the `silences` array; ids default to `config-1`, `config-2`, … by position.
pub(crate) fn decode_silences(
    d: &mut Decoder<'_>,
    node: &Node,
    display: &DisplayConfig,
) -> Vec<Silence> {
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
        let schedule =
            member(members, &path, "schedule").map(|(n, p)| decode_schedule(d, n, &p, display));
        let until = match member(members, &path, "until") {
            Some((n, p)) => d
                .string(n, &p, TIME_EXAMPLE)
                .and_then(|text| parse_rfc3339(text).map_err(|e| d.error(n, &p, e)).ok()),
            None if schedule.is_some() => Some(f64::INFINITY),
            None => {
                d.error(item, &path, "missing required key \"until\" (or a \"schedule\")");
                None
            }
        };
        let host = member(members, &path, "host").and_then(|(n, p)| matcher_glob(d, n, &p));
        let comment = member(members, &path, "comment")
            .and_then(|(n, p)| d.string(n, &p, "\"disk swap, ticket OPS-123\"").map(str::to_owned))
            .unwrap_or_default();
        if let (Some(id), Some(until)) = (id, until)
            && d.errors.len() == before
        {
            ids.push(id.clone());
            out.push(Silence {
                host,
                id,
                rule,
                matchers,
                until,
                schedule: schedule.flatten(),
                comment,
            });
        }
    }
    out
}

/// Decodes a `schedule` object; `None` (with the errors recorded) when it is wrong.
fn decode_schedule(
    d: &mut Decoder<'_>,
    node: &Node,
    path: &str,
    display: &DisplayConfig,
) -> Option<Schedule> {
    let members = d.object(node, path, SCHEDULE_KEYS, SCHEDULE_EXAMPLE)?;
    let before = d.errors.len();
    let mut days = EVERY_DAY;
    if let Some((n, p)) = member(members, path, "days") {
        days = 0;
        match &n.value {
            NodeValue::Array(items) if items.is_empty() => {
                d.error(n, &p, "no day given (leave \"days\" out for every day)");
            }
            NodeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let ip = index_path(&p, i);
                    if let Some(name) = d.string(item, &ip, "\"sun\" or \"mon-fri\"") {
                        match parse_days(std::iter::once(name)) {
                            Ok(bits) => days |= bits,
                            Err(e) => d.error(item, &ip, e),
                        }
                    }
                }
            }
            _ => d.wrong_type(n, &p, "an array like [\"mon-fri\"] or [\"sat\", \"sun\"]"),
        }
    }
    let mut time = |key: &str| {
        let n = d.required(get(members, key), node, path, key)?;
        let p = key_path(path, key);
        let text = d.string(n, &p, "\"02:00\"")?;
        parse_time(text).map_err(|e| d.error(n, &p, e)).ok().map(|t| (t, n))
    };
    let (from, to) = (time("from"), time("to"));
    let zone =
        match member(members, path, "tz") {
            Some((n, p)) => d.non_empty(n, &p, "\"Europe/Lisbon\"").and_then(|name| {
                match crate::zone::Zone::by_name(&name) {
                    Ok(z) => Some((Some(name), Arc::new(z))),
                    Err(e) => {
                        d.error(n, &p, e);
                        None
                    }
                }
            }),
            None => Some((None, display.zone.clone())),
        };
    let (Some((from, _)), Some((to, to_node)), Some((tz, zone))) = (from, to, zone) else {
        return None;
    };
    if d.errors.len() != before {
        return None;
    }
    Schedule::new(days, from, to, tz, Ok(zone))
        .map_err(|e| d.error(to_node, &key_path(path, "to"), e))
        .ok()
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

    fn errors(text: &str) -> Vec<String> {
        match crate::config::load_str(text, "t.json", &|_| None) {
            Ok(_) => Vec::new(),
            Err(e) => e.to_string().lines().map(str::to_owned).collect(),
        }
    }

    #[test]
    fn scheduled_silences_decode_in_their_zone_or_the_display_zone() {
        let text = r#"{"rules": [], "display": {"timezone": "America/New_York"},
          "silences": [
            {"id": "backup", "rule": "disk_*", "schedule": {"days": ["sun"], "from": "02:00", "to": "04:00", "tz": "Europe/Lisbon"}},
            {"schedule": {"days": ["Mon-Fri", "sun"], "from": "22:00", "to": "06:00"}, "until": "2030-01-01T00:00:00Z"},
            {"schedule": {"from": "3:00", "to": "03:30"}}
          ]}"#;
        let c = crate::config::load_str(text, "t.json", &|_| None).unwrap();
        let shown: Vec<String> =
            c.silences.iter().map(|s| s.schedule.as_ref().unwrap().to_string()).collect();
        assert_eq!(
            shown,
            [
                "sun 02:00-04:00 Europe/Lisbon",
                "mon-fri,sun 22:00-06:00 America/New_York",
                "every day 03:00-03:30 America/New_York"
            ]
        );
        assert!(c.silences[0].until.is_infinite());
        assert_eq!(c.silences[1].until, 1_893_456_000.0);
        // 2027-03-28 is a Sunday: 02:00 WEST is 01:00 UTC.
        let sunday = parse_rfc3339("2027-03-28T01:30:00Z").unwrap();
        assert_eq!(
            c.silences[0].covers_until(sunday),
            parse_rfc3339("2027-03-28T03:00:00Z").unwrap()
        );
        let effective = c.to_effective_json();
        assert_eq!(
            effective["silences"][0]["schedule"],
            serde_json::json!({"days": ["sun"], "from": "02:00", "to": "04:00", "tz": "Europe/Lisbon"})
        );
        assert!(effective["silences"][0].get("until").is_none());
    }

    #[test]
    fn a_wrong_schedule_is_refused_with_its_position_and_key() {
        let text = "{\"rules\": [], \"silences\": [{\"schedule\": {\"days\": [\"sun\", \"sunday-fry\"],\n  \"from\": \"02:00\", \"to\": \"25:00\", \"tz\": \"Europe/Lisbn\", \"tzz\": 1}}]}";
        assert_eq!(
            errors(text),
            [
                "t.json:1:58: silences[0].schedule.days[1]: unknown day \"fry\" (expected mon, tue, wed, thu, fri, sat, sun or a range like \"mon-fri\")",
                "t.json:2:26: silences[0].schedule.to: invalid time \"25:00\" (expected HH:MM, 00:00 to 23:59)",
                "t.json:2:41: silences[0].schedule.tz: unknown time zone \"Europe/Lisbn\" (did you mean \"Europe/Lisbon\"?)",
                "t.json:2:57: silences[0].schedule.tzz: unknown key (did you mean \"tz\"?)",
            ]
        );
        let e = errors(
            r#"{"rules": [], "silences": [{"schedule": {"from": "02:00", "to": "02:00"}}]}"#,
        );
        assert_eq!(
            e,
            [
                "t.json:1:65: silences[0].schedule.to: from and to are both 02:00: a window needs an end (a to earlier than from ends the next day)"
            ]
        );
        let e = errors(r#"{"rules": [], "silences": [{"schedule": {"to": "02:00", "days": []}}]}"#);
        assert_eq!(
            e,
            [
                "t.json:1:41: silences[0].schedule: missing required key \"from\"",
                "t.json:1:65: silences[0].schedule.days: no day given (leave \"days\" out for every day)",
            ]
        );
        let e = errors(r#"{"rules": [], "silences": [{"schedule": "sun 02:00-04:00"}]}"#);
        assert!(e[0].contains("silences[0].schedule: expected an object like {\"days\""), "{e:?}");
    }

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
