//! Calendar formatting of Unix timestamps (RFC 3339, RFC 2822) without a date crate, and
//! times for people in the display zone (`display.timezone`).
//!
//! Machine formats (JSON, webhooks, Alertmanager, the events log, log lines) use
//! [`rfc3339`] in UTC; text for people (chat messages, e-mail bodies, reports, the status
//! page, command output) uses [`human`]. The display zone is process-wide, set when a config
//! is loaded or reloaded ([`set_display_zone`]); UTC until then.

use crate::zone::Zone;
use std::sync::{Arc, Mutex};

/// Splits days since 1970-01-01 into (year, month 1..=12, day 1..=31) (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Broken-down UTC time of a Unix timestamp.
struct Utc {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    millis: u32,
    weekday: u32,
}

fn utc(unix: f64) -> Utc {
    let millis_total = (unix * 1000.0).floor() as i64;
    let secs = millis_total.div_euclid(1000);
    let millis = millis_total.rem_euclid(1000) as u32;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    let (year, month, day) = civil_from_days(days);
    Utc {
        year,
        month,
        day,
        hour: rem / 3600,
        minute: rem / 60 % 60,
        second: rem % 60,
        millis,
        weekday: (days + 4).rem_euclid(7) as u32,
    }
}

/// `2026-12-01T05:30:00.123Z`
pub fn rfc3339_millis(unix: f64) -> String {
    let t = utc(unix);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.millis
    )
}

/// `2026-12-01T05:30:00Z`
pub fn rfc3339(unix: f64) -> String {
    let t = utc(unix);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// `Tue, 01 Dec 2026 05:30:00 +0000`, as e-mail `Date:` headers want.
pub fn rfc2822(unix: f64) -> String {
    rfc2822_at(unix, "+0000")
}

/// The wall-clock time `local` (Unix seconds shifted by the offset) with `offset` written.
fn rfc2822_at(local: f64, offset: &str) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let t = utc(local);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} {offset}",
        DAYS[t.weekday as usize],
        t.day,
        MONTHS[t.month as usize - 1],
        t.year,
        t.hour,
        t.minute,
        t.second
    )
}

/// The zone [`human`] renders in; `None`: UTC.
static DISPLAY: Mutex<Option<Arc<Zone>>> = Mutex::new(None);

/// Sets the zone of every time shown to people (at config load and reload).
pub fn set_display_zone(zone: Arc<Zone>) {
    *DISPLAY.lock().unwrap_or_else(|e| e.into_inner()) = Some(zone);
}

/// The zone of every time shown to people.
pub fn display_zone() -> Arc<Zone> {
    let zone = DISPLAY.lock().unwrap_or_else(|e| e.into_inner()).clone();
    zone.unwrap_or_else(|| Arc::new(Zone::utc()))
}

/// A time for people in the display zone: `2026-12-01T05:30:00Z` in UTC (as before the
/// zone was configurable), else `2026-12-01 06:30:00 CET`.
pub fn human(unix: f64) -> String {
    human_in(&display_zone(), unix)
}

/// [`human`] in `zone`; an abbreviation that is not letters (`+0530`, `-03`) is written as
/// the offset, `+05:30`.
pub fn human_in(zone: &Zone, unix: f64) -> String {
    if zone.is_utc() {
        return rfc3339(unix);
    }
    let secs = unix.floor() as i64;
    let local = zone.at(secs);
    let t = utc(secs.saturating_add(i64::from(local.offset)) as f64);
    let named = !local.abbr.is_empty() && local.abbr.bytes().all(|b| b.is_ascii_alphabetic());
    let abbr = if named { local.abbr.clone() } else { offset_text(local.offset, ":") };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} {abbr}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// `+05:30` (`sep` ":") or `+0530` (`sep` ""); seconds only when there are some.
fn offset_text(offset: i32, sep: &str) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let a = offset.unsigned_abs();
    let mut s = format!("{sign}{:02}{sep}{:02}", a / 3600, a / 60 % 60);
    if !a.is_multiple_of(60) {
        s.push_str(&format!("{sep}{:02}", a % 60));
    }
    s
}

/// [`rfc2822`] with the display zone's offset: `Tue, 01 Dec 2026 06:30:00 +0100`.
pub fn rfc2822_display(unix: f64) -> String {
    rfc2822_in(&display_zone(), unix)
}

/// [`rfc2822`] at `zone`'s offset (RFC 2822 has no seconds in an offset: they are dropped).
pub fn rfc2822_in(zone: &Zone, unix: f64) -> String {
    let secs = unix.floor() as i64;
    let offset = zone.at(secs).offset / 60 * 60;
    rfc2822_at(unix + f64::from(offset), &offset_text(offset, ""))
}

/// The current time as Unix seconds.
pub fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_millis(1_700_000_000.5), "2023-11-14T22:13:20.500Z");
        assert_eq!(rfc3339(951_782_400.0), "2000-02-29T00:00:00Z");
        assert_eq!(rfc2822(1_796_083_200.0), "Tue, 01 Dec 2026 00:00:00 +0000");
    }
}
