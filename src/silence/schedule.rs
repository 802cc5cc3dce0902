//! Recurring maintenance windows: a silence's `schedule` (days of the week, a local start and
//! end time, a time zone) and when it is active.
//!
//! A schedule's window opens on each listed local day at `from` and closes at `to` the same
//! day, or the next day when `to` <= `from` (`22:00-06:00`): the part after midnight belongs
//! to the window of the day it started. A window is one span of instants: the shortest that
//! holds every instant whose wall time in its zone reads inside it. Across daylight-saving
//! switches, that is:
//! - a start or end that falls in a skipped hour (spring forward) is the first instant after
//!   the gap (a window wholly inside a gap does not happen that day);
//! - a start that falls in a repeated hour (autumn) is its first occurrence, an end its second
//!   (the first when the clock is set back to exactly that time), so the window has no hole.
//!
//! Zones are the project's own (`crate::zone`, read once when the schedule is read, kept in
//! an `Arc`): [`Schedule::window_at`] allocates nothing. Not the place for which silence
//! covers which alert (`crate::silence`) or for decoding the config (`config::silences`).
//! An offset change is found within 30 hours of the wall time asked about: zones that switch
//! twice within 60 hours (none since 2011) may be off by their second switch.

use crate::zone::Zone;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Day names, Monday first (the bit of a day in [`Schedule::days`]).
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const FULL_DAYS: [&str; 7] =
    ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
/// Every day of the week.
pub(crate) const EVERY_DAY: u8 = 0x7f;
/// How far around a wall time an offset change is looked for (more than any UTC offset).
const SPAN: i64 = 30 * 3600;
/// The `--every` grammar, for error messages.
const EVERY_EXAMPLE: &str = "\"sun 02:00-04:00\", \"mon-fri 22:00-06:00\", \"sat,sun 00:00-08:00\" or \"03:00-04:00\" (every day)";

/// A recurring window: the days it starts on, its local start and end, its zone.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "Spec", into = "Spec")]
pub struct Schedule {
    /// Bit `d` set: the window starts on weekday `d` (0 Monday … 6 Sunday).
    days: u8,
    /// Local start, minutes after midnight.
    from: u16,
    /// Local end, minutes after midnight (the next day when <= `from`).
    to: u16,
    /// The zone's name as written; `None`: the display zone.
    tz: Option<String>,
    /// The zone, read when the schedule was; `Err`: why it could not be (the schedule is then
    /// never active, and its holder says why).
    zone: Result<Arc<Zone>, String>,
}

/// The written form: `{"days": ["mon-fri"], "from": "22:00", "to": "06:00", "tz": "Europe/Lisbon"}`.
#[derive(Serialize, Deserialize)]
struct Spec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    days: Option<Vec<String>>,
    from: String,
    to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tz: Option<String>,
}

impl TryFrom<Spec> for Schedule {
    type Error = String;
    /// A `tz` that names no zone is kept (never active, [`Schedule::zone_error`] says why), so
    /// one silence cannot make a whole silences file unreadable; no `tz`: the display zone.
    fn try_from(spec: Spec) -> Result<Schedule, String> {
        let days = match &spec.days {
            Some(list) => parse_days(list.iter().map(String::as_str))?,
            None => EVERY_DAY,
        };
        let zone = match &spec.tz {
            Some(name) => Zone::by_name(name).map(Arc::new),
            None => Ok(crate::timefmt::display_zone()),
        };
        Schedule::new(days, parse_time(&spec.from)?, parse_time(&spec.to)?, spec.tz, zone)
    }
}

impl From<Schedule> for Spec {
    fn from(s: Schedule) -> Spec {
        Spec {
            days: Some(s.day_names().map(str::to_owned).collect()),
            from: hhmm(s.from),
            to: hhmm(s.to),
            tz: s.tz,
        }
    }
}

/// Equal when written the same and in the same zone (compared by pointer first: a steady
/// state compares no transition table).
impl PartialEq for Schedule {
    fn eq(&self, other: &Schedule) -> bool {
        (self.days, self.from, self.to, &self.tz) == (other.days, other.from, other.to, &other.tz)
            && match (&self.zone, &other.zone) {
                (Ok(a), Ok(b)) => Arc::ptr_eq(a, b) || a == b,
                (Err(a), Err(b)) => a == b,
                _ => false,
            }
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({self})")
    }
}

/// `mon-fri 22:00-06:00 Europe/Lisbon` (the `--every` grammar, then the zone's name).
impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}-{} {}", self.days_text(), hhmm(self.from), hhmm(self.to), self.zone_name())
    }
}

impl Schedule {
    /// A schedule from its parts; `from == to` is refused (an empty window, or a whole day:
    /// say `until` instead).
    pub(crate) fn new(
        days: u8,
        from: u16,
        to: u16,
        tz: Option<String>,
        zone: Result<Arc<Zone>, String>,
    ) -> Result<Schedule, String> {
        if from == to {
            return Err(format!(
                "from and to are both {}: a window needs an end (a to earlier than from ends the next day)",
                hhmm(from)
            ));
        }
        if days & EVERY_DAY == 0 {
            return Err("no day given".into());
        }
        Ok(Schedule { days: days & EVERY_DAY, from, to, tz, zone })
    }

    /// Parses `--every`: `[DAYS ]HH:MM-HH:MM`, DAYS a comma-separated list of days and
    /// ranges (`mon-fri`, `sat,sun`); no days: every day. The zone is given apart.
    pub(crate) fn parse_every(
        text: &str,
        tz: Option<String>,
        zone: Result<Arc<Zone>, String>,
    ) -> Result<Schedule, String> {
        let bad = |why: String| format!("{why} (expected {EVERY_EXAMPLE})");
        let words: Vec<&str> = text.split_whitespace().collect();
        let (days, times) = match words.as_slice() {
            [times] => (EVERY_DAY, *times),
            [days, times] => (parse_days(days.split(',')).map_err(bad)?, *times),
            _ => return Err(bad(format!("{text:?} is not DAYS HH:MM-HH:MM"))),
        };
        let Some((from, to)) = times.split_once('-') else {
            return Err(bad(format!("{times:?} is not HH:MM-HH:MM")));
        };
        let from = parse_time(from).map_err(bad)?;
        let to = parse_time(to).map_err(bad)?;
        Schedule::new(days, from, to, tz, zone)
    }

    /// The zone's name: as written, else the display zone's.
    pub fn zone_name(&self) -> &str {
        match (&self.tz, &self.zone) {
            (Some(name), _) => name,
            (None, Ok(z)) => z.name(),
            (None, Err(_)) => "?",
        }
    }

    /// With the zone's name written even when it was the display zone's by default (what is
    /// stored then means the same after `display.timezone` changes).
    pub fn pinned(mut self) -> Schedule {
        if self.tz.is_none() {
            self.tz = self.zone.as_ref().ok().map(|z| z.name().to_owned());
        }
        self
    }

    /// The zone, when it could be read.
    pub fn zone(&self) -> Option<&Arc<Zone>> {
        self.zone.as_ref().ok()
    }

    /// Why the zone could not be read, when it could not (the schedule is never active).
    pub fn zone_error(&self) -> Option<&str> {
        self.zone.as_ref().err().map(String::as_str)
    }

    /// The names of the days it starts on, Monday first.
    pub fn day_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        (0..7).filter(|d| self.days & (1 << d) != 0).map(|d| DAYS[d])
    }

    /// `every day`, `sun`, `mon-fri`, `mon,wed,fri`, `sat,sun`: runs of three or more days
    /// as ranges.
    pub fn days_text(&self) -> String {
        if self.days == EVERY_DAY {
            return "every day".into();
        }
        let mut parts = Vec::new();
        let mut d = 0;
        while d < 7 {
            if self.days & (1 << d) == 0 {
                d += 1;
                continue;
            }
            let start = d;
            while d + 1 < 7 && self.days & (1 << (d + 1)) != 0 {
                d += 1;
            }
            match d - start {
                0 => parts.push(DAYS[start].to_owned()),
                1 => parts.extend([DAYS[start].to_owned(), DAYS[d].to_owned()]),
                _ => parts.push(format!("{}-{}", DAYS[start], DAYS[d])),
            }
            d += 1;
        }
        parts.join(",")
    }

    /// `HH:MM` of the start and end.
    pub fn times(&self) -> (String, String) {
        (hhmm(self.from), hhmm(self.to))
    }

    /// The window (start, end in Unix seconds) that holds instant `t`, if any. Allocates
    /// nothing.
    pub fn window_at(&self, t: f64) -> Option<(i64, i64)> {
        let zone = self.zone.as_ref().ok()?;
        let t = plausible(t)?;
        let today = local_day(zone, t);
        (today - 1..=today + 1)
            .filter_map(|day| self.window_on(zone, day))
            .find(|&(start, end)| start <= t && t < end)
    }

    /// The window that holds `t` or the next one after it (start, end in Unix seconds).
    pub fn next_window(&self, t: f64) -> Option<(i64, i64)> {
        let zone = self.zone.as_ref().ok()?;
        let t = plausible(t)?;
        let today = local_day(zone, t);
        (today - 1..=today + 8).filter_map(|day| self.window_on(zone, day)).find(|&(_, e)| e > t)
    }

    /// The window that starts on local day `day` (days since 1970-01-01), if it is a listed
    /// weekday and the window is not empty.
    fn window_on(&self, zone: &Zone, day: i64) -> Option<(i64, i64)> {
        let weekday = (day + 3).rem_euclid(7);
        if self.days & (1 << weekday) == 0 {
            return None;
        }
        let end_day = if self.to <= self.from { day + 1 } else { day };
        let start = instant_of(zone, day * 86_400 + i64::from(self.from) * 60, false);
        let end = instant_of(zone, end_day * 86_400 + i64::from(self.to) * 60, true);
        (start < end).then_some((start, end))
    }
}

/// `t` in whole seconds when it is a time the arithmetic holds (within ±300,000 years of
/// 1970, no overflow); `None` for anything else, which no window holds.
fn plausible(t: f64) -> Option<i64> {
    (t.is_finite() && t.abs() < 1e13).then(|| t.floor() as i64)
}

/// The local calendar day (days since 1970-01-01) of instant `t` in `zone`.
fn local_day(zone: &Zone, t: i64) -> i64 {
    (t + i64::from(zone.at(t).offset)).div_euclid(86_400)
}

/// The instant at which `zone`'s wall clock shows `wall` (seconds since 1970-01-01 on the
/// wall clock): its first occurrence, or with `last` the last one the clock reaches going
/// forward; a wall time the clock skips is the first instant after the gap.
fn instant_of(zone: &Zone, wall: i64, last: bool) -> i64 {
    let offset = |t: i64| i64::from(zone.at(t).offset);
    let (before, after) = (offset(wall - SPAN), offset(wall + SPAN));
    let (a, b) = (wall - before, wall - after);
    match (offset(a) == before, offset(b) == after) {
        // The end is where the clock last reaches `wall` going forward: the second
        // occurrence, unless the clock was set back to exactly `wall` then.
        (true, true) if last => {
            let second = a.max(b);
            if offset(second - 1) == offset(second) { second } else { a.min(b) }
        }
        (true, true) => a.min(b),
        (true, false) => a,
        (false, true) => b,
        // In a gap (the clock moved forward from `before` to `after`): the switch lies in
        // (b, a]; the first instant on the new offset is it.
        (false, false) if before < after => {
            let (mut lo, mut hi) = (b, a);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if offset(mid) == before { lo = mid } else { hi = mid }
            }
            hi
        }
        (false, false) => a,
    }
}

/// Parses day names and ranges (`mon`, `Sunday`, `mon-fri`, `fri-mon`), case-insensitive.
pub(crate) fn parse_days<'a>(items: impl Iterator<Item = &'a str>) -> Result<u8, String> {
    let day = |name: &str| {
        let lower = name.trim().to_ascii_lowercase();
        DAYS.iter().chain(FULL_DAYS.iter()).position(|d| *d == lower).map(|i| i % 7).ok_or_else(
            || {
                format!(
                    "unknown day {name:?} (expected mon, tue, wed, thu, fri, sat, sun or a range like \"mon-fri\")"
                )
            },
        )
    };
    let mut days = 0u8;
    let mut any = false;
    for item in items {
        any = true;
        match item.split_once('-') {
            Some((first, last)) => {
                let (first, last) = (day(first)?, day(last)?);
                let mut d = first;
                loop {
                    days |= 1 << d;
                    if d == last {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days |= 1 << day(item)?,
        }
    }
    if !any {
        return Err("no day given (leave days out for every day)".into());
    }
    Ok(days)
}

/// Parses `HH:MM` (00:00 to 23:59; one hour digit allowed) into minutes after midnight.
pub(crate) fn parse_time(text: &str) -> Result<u16, String> {
    let bad = || format!("invalid time {text:?} (expected HH:MM, 00:00 to 23:59)");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let digits = |s: &str, n: std::ops::RangeInclusive<usize>| {
        n.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(h, 1..=2) || !digits(m, 2..=2) {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn hhmm(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

#[cfg(test)]
mod tests;
