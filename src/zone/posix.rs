//! POSIX TZ rules (`CET-1CEST,M3.5.0,M10.5.0/3`, `<+0530>-5:30`): the footer of a TZif file
//! and a `TZ` value that names no file. Parsing (every input ends in a rule or `None`, never a
//! panic) and the local time type a rule gives an instant. Not the place for TZif files
//! (`zone`).

use super::LocalType;

/// The instants a rule is evaluated at are clamped to this many seconds from 1970.
const MAX_RULE_SECS: i64 = 10_000_000_000_000;

/// A POSIX TZ rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Rule {
    /// One local time type all year.
    Fixed(LocalType),
    /// Standard and daylight saving time, switched at `start` and `end` each year.
    Dst { std: LocalType, dst: LocalType, start: Switch, end: Switch },
}

/// A yearly switch: a day of the year and the local time of day (seconds, may be negative
/// or beyond 24 h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Switch {
    pub(super) day: Day,
    pub(super) time: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Day {
    /// `Jn`: 1..=365, February 29 never counted.
    Julian1(u16),
    /// `n`: 0..=365, February 29 counted.
    Julian0(u16),
    /// `Mm.w.d`: weekday `d` (0 Sunday) of week `w` (5: the last) of month `m`.
    Month { m: u8, w: u8, d: u8 },
}

impl Rule {
    pub(super) fn first_type(&self) -> LocalType {
        match self {
            Rule::Fixed(t) | Rule::Dst { std: t, .. } => t.clone(),
        }
    }

    pub(super) fn at(&self, unix: i64) -> &LocalType {
        let (std, dst, start, end) = match self {
            Rule::Fixed(t) => return t,
            Rule::Dst { std, dst, start, end } => (std, dst, start, end),
        };
        // Beyond ±300,000 years every instant is given that year's type (no overflow).
        let unix = unix.clamp(-MAX_RULE_SECS, MAX_RULE_SECS);
        let year = year_of(unix + i64::from(std.offset));
        // Each switch is at local time: the start in standard time, the end in DST.
        let begins = start.utc(year, std.offset);
        let ends = end.utc(year, dst.offset);
        let in_dst = if begins < ends {
            begins <= unix && unix < ends
        } else {
            !(ends <= unix && unix < begins)
        };
        if in_dst { dst } else { std }
    }
}

impl Switch {
    /// The instant of this switch in `year`, its time read at `offset`.
    pub(super) fn utc(&self, year: i64, offset: i32) -> i64 {
        let leap = is_leap(year);
        let jan1 = days_from_civil(year, 1, 1);
        let day = match self.day {
            Day::Julian1(n) => jan1 + i64::from(n) - 1 + i64::from(leap && n >= 60),
            Day::Julian0(n) => jan1 + i64::from(n),
            Day::Month { m, w, d } => {
                let first = days_from_civil(year, u32::from(m), 1);
                let weekday = (first + 4).rem_euclid(7);
                let mut day = (i64::from(d) - weekday).rem_euclid(7) + 7 * (i64::from(w) - 1);
                let len = month_len(year, u32::from(m));
                while day >= len {
                    day -= 7;
                }
                first + day
            }
        };
        day * 86_400 + i64::from(self.time) - i64::from(offset)
    }
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn month_len(y: i64, m: u32) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub(super) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The year of Unix seconds.
fn year_of(unix: i64) -> i64 {
    crate::timefmt::civil_from_days(unix.div_euclid(86_400)).0
}

/// Parses a POSIX TZ string (`EST5EDT,M3.2.0,M11.1.0`, `<+0530>-5:30`); `None` if invalid.
pub(super) fn parse_rule(text: &[u8]) -> Option<Rule> {
    let mut p = Posix { s: text, at: 0 };
    let std_abbr = p.abbr()?;
    let std_offset = -p.hms(24)?;
    let std = LocalType { offset: std_offset, dst: false, abbr: std_abbr };
    if p.done() {
        return Some(Rule::Fixed(std));
    }
    let dst_abbr = p.abbr()?;
    let dst_offset = if p.peek().is_some_and(|c| c == b'+' || c == b'-' || c.is_ascii_digit()) {
        -p.hms(24)?
    } else {
        std_offset + 3600
    };
    let dst = LocalType { offset: dst_offset, dst: true, abbr: dst_abbr };
    let (start, end) = if p.done() {
        // POSIX leaves the default to the implementation; glibc's is the US rule.
        let m = |m, w| Switch { day: Day::Month { m, w, d: 0 }, time: 7200 };
        (m(3, 2), m(11, 1))
    } else {
        p.eat(b',')?;
        let start = p.switch()?;
        p.eat(b',')?;
        let end = p.switch()?;
        (start, end)
    };
    p.done().then_some(Rule::Dst { std, dst, start, end })
}

struct Posix<'a> {
    s: &'a [u8],
    at: usize,
}

impl Posix<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn done(&self) -> bool {
        self.at == self.s.len()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek() == Some(c)).then(|| self.at += 1)
    }

    /// `CET`, or a quoted `<+0530>`: at least three characters.
    fn abbr(&mut self) -> Option<String> {
        let start = self.at;
        let text = if self.eat(b'<').is_some() {
            while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'-') {
                self.at += 1;
            }
            let text = &self.s[start + 1..self.at];
            self.eat(b'>')?;
            text
        } else {
            while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
                self.at += 1;
            }
            &self.s[start..self.at]
        };
        (text.len() >= 3).then(|| String::from_utf8_lossy(text).into_owned())
    }

    fn number(&mut self, max: i32) -> Option<i32> {
        let start = self.at;
        let mut n: i32 = 0;
        while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
            n = n.checked_mul(10)?.checked_add(i32::from(c - b'0'))?;
            self.at += 1;
            if self.at - start > 3 {
                return None;
            }
        }
        (self.at > start && n <= max).then_some(n)
    }

    /// `[+-]hh[:mm[:ss]]` in seconds, hours at most `max_hours`.
    fn hms(&mut self, max_hours: i32) -> Option<i32> {
        let sign = match self.peek() {
            Some(b'-') => {
                self.at += 1;
                -1
            }
            Some(b'+') => {
                self.at += 1;
                1
            }
            _ => 1,
        };
        let mut secs = self.number(max_hours)? * 3600;
        if self.eat(b':').is_some() {
            secs += self.number(59)? * 60;
            if self.eat(b':').is_some() {
                secs += self.number(59)?;
            }
        }
        Some(sign * secs)
    }

    /// `Jn`, `n` or `Mm.w.d`, then an optional `/time` (default 02:00).
    fn switch(&mut self) -> Option<Switch> {
        let day = match self.peek()? {
            b'J' => {
                self.at += 1;
                Day::Julian1(u16::try_from(self.number(365)?).ok().filter(|&n| n >= 1)?)
            }
            b'M' => {
                self.at += 1;
                let m = self.number(12)?;
                self.eat(b'.')?;
                let w = self.number(5)?;
                self.eat(b'.')?;
                let d = self.number(6)?;
                if m == 0 || w == 0 {
                    return None;
                }
                Day::Month { m: m as u8, w: w as u8, d: d as u8 }
            }
            _ => Day::Julian0(self.number(365)? as u16),
        };
        let time = if self.eat(b'/').is_some() { self.hms(167)? } else { 7200 };
        Some(Switch { day, time })
    }
}
