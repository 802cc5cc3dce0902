//! Time zones for people: the offset and abbreviation in effect at an instant, read from the
//! system's time zone database (TZif files under `/usr/share/zoneinfo`, or `$TZDIR`).
//!
//! A [`Zone`] holds a TZif file's transitions and local time types, and its POSIX TZ footer
//! (`CET-1CEST,M3.5.0,M10.5.0/3`) for instants after the last transition. `local` is the
//! system zone: `TZ` (a zone name, a TZif path or a POSIX TZ string), else `/etc/localtime`.
//! Every byte of a file is checked; no content can panic. Not the place for formatting
//! (`timefmt`) or for choosing the zone (`config`, `display.timezone`); leap seconds are
//! ignored, as Unix time ignores them.

use std::path::{Path, PathBuf};

/// Where zone files live when `$TZDIR` does not say.
pub const ZONEINFO: &str = "/usr/share/zoneinfo";
/// No TZif file is larger (the largest in tzdata is under 4 KiB).
const MAX_TZIF_BYTES: u64 = 256 * 1024;
/// The instants a POSIX rule is evaluated at are clamped to this many seconds from 1970.
const MAX_RULE_SECS: i64 = 10_000_000_000_000;

/// The local time in effect for a span of instants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalType {
    /// Seconds east of UTC.
    pub offset: i32,
    /// Daylight saving time.
    pub dst: bool,
    /// `CET`, `EDT`, or a numeric one such as `+0530`.
    pub abbr: String,
}

/// A time zone: `UTC`, or a TZif file's rules.
#[derive(Clone, PartialEq, Eq)]
pub struct Zone {
    name: String,
    /// Transition instants (Unix seconds), ascending.
    transitions: Vec<i64>,
    /// The type each transition switches to (index into `types`).
    indices: Vec<u8>,
    /// Local time types; the first is in effect before the first transition.
    types: Vec<LocalType>,
    /// The rule after the last transition (the TZif footer).
    rule: Option<Rule>,
}

/// A POSIX TZ rule.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Rule {
    /// One local time type all year.
    Fixed(LocalType),
    /// Standard and daylight saving time, switched at `start` and `end` each year.
    Dst { std: LocalType, dst: LocalType, start: Switch, end: Switch },
}

/// A yearly switch: a day of the year and the local time of day (seconds, may be negative
/// or beyond 24 h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Switch {
    day: Day,
    time: i32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Day {
    /// `Jn`: 1..=365, February 29 never counted.
    Julian1(u16),
    /// `n`: 0..=365, February 29 counted.
    Julian0(u16),
    /// `Mm.w.d`: weekday `d` (0 Sunday) of week `w` (5: the last) of month `m`.
    Month { m: u8, w: u8, d: u8 },
}

/// The name and sizes only: a config's `{:?}` stays short.
impl std::fmt::Debug for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zone")
            .field("name", &self.name)
            .field("transitions", &self.transitions.len())
            .field("types", &self.types.len())
            .field("rule", &self.rule.is_some())
            .finish()
    }
}

impl Zone {
    /// Coordinated Universal Time.
    pub fn utc() -> Zone {
        let utc = LocalType { offset: 0, dst: false, abbr: "UTC".into() };
        Zone {
            name: "UTC".into(),
            transitions: Vec::new(),
            indices: Vec::new(),
            types: vec![utc],
            rule: None,
        }
    }

    /// The name it was loaded by (`Europe/Berlin`, `UTC`, `local`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True for UTC itself (not for a zone that happens to have offset 0).
    pub fn is_utc(&self) -> bool {
        self.name == "UTC" && self.transitions.is_empty() && self.rule.is_none()
    }

    /// `UTC`, `local` or an IANA name read from the zone database.
    pub fn by_name(name: &str) -> Result<Zone, String> {
        match name {
            "UTC" => Ok(Zone::utc()),
            "local" => Zone::local(),
            _ => Zone::named_in(&zoneinfo_dir(), name),
        }
    }

    /// The zone `name` from the database at `dir`; the error says why, with a suggestion
    /// for a near miss.
    pub fn named_in(dir: &Path, name: &str) -> Result<Zone, String> {
        let valid = !name.is_empty()
            && name.split('/').all(|part| {
                !part.is_empty()
                    && !part.starts_with('.')
                    && part.chars().all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c))
            });
        if !valid {
            return Err(format!(
                "{name:?} is not a time zone name (expected \"UTC\", \"local\" or an IANA name like \"Europe/Berlin\")"
            ));
        }
        let path = dir.join(name);
        match crate::localfile::read_regular(&path, MAX_TZIF_BYTES) {
            Ok(bytes) => {
                Zone::from_tzif(name, &bytes).map_err(|e| format!("{}: {e}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !dir.is_dir() {
                    return Err(format!(
                        "unknown time zone {name:?}: there is no time zone database at {} (install tzdata)",
                        dir.display()
                    ));
                }
                let names = zone_names(dir);
                let lower = name.to_ascii_lowercase();
                let hint = match names.iter().find(|n| n.to_ascii_lowercase() == lower) {
                    Some(n) => Some(n.as_str()),
                    None => crate::config::suggest(name, names.iter().map(String::as_str)),
                };
                Err(match hint {
                    Some(h) => format!("unknown time zone {name:?} (did you mean {h:?}?)"),
                    None => format!(
                        "unknown time zone {name:?} (expected \"UTC\", \"local\" or an IANA name like \"Europe/Berlin\", as in {})",
                        dir.display()
                    ),
                })
            }
            Err(e) => Err(format!("time zone {name:?}: {e}")),
        }
    }

    /// The system zone: `TZ` when set (empty: UTC), else `/etc/localtime`, else UTC.
    pub fn local() -> Result<Zone, String> {
        Zone::local_from(
            std::env::var("TZ").ok().as_deref(),
            &zoneinfo_dir(),
            Path::new("/etc/localtime"),
        )
    }

    fn local_from(tz: Option<&str>, dir: &Path, localtime: &Path) -> Result<Zone, String> {
        let named = |z: Result<Zone, String>| {
            z.map(|mut z| {
                z.name = "local".into();
                z
            })
        };
        let Some(tz) = tz else {
            return match crate::localfile::read_regular(localtime, MAX_TZIF_BYTES) {
                Ok(bytes) => named(
                    Zone::from_tzif("local", &bytes)
                        .map_err(|e| format!("{}: {e}", localtime.display())),
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => named(Ok(Zone::utc())),
                Err(e) => Err(format!("the local time zone: {e}")),
            };
        };
        let spec = tz.strip_prefix(':').unwrap_or(tz);
        if spec.is_empty() || spec == "UTC" {
            return named(Ok(Zone::utc()));
        }
        if spec.starts_with('/') {
            let path = Path::new(spec);
            let bytes = crate::localfile::read_regular(path, MAX_TZIF_BYTES)
                .map_err(|e| format!("TZ: {e}"))?;
            return named(Zone::from_tzif("local", &bytes).map_err(|e| format!("TZ: {spec}: {e}")));
        }
        match Zone::named_in(dir, spec) {
            Ok(z) => named(Ok(z)),
            Err(file_error) => match parse_rule(spec.as_bytes()) {
                Some(rule) => named(Ok(Zone {
                    name: String::new(),
                    transitions: Vec::new(),
                    indices: Vec::new(),
                    types: vec![rule.first_type()],
                    rule: Some(rule),
                })),
                None => Err(format!("TZ={tz:?}: {file_error}, nor a POSIX TZ string")),
            },
        }
    }

    /// Parses a TZif file (RFC 8536, versions 1 to 4); `name` names the zone.
    pub fn from_tzif(name: &str, bytes: &[u8]) -> Result<Zone, String> {
        let mut r = Reader { bytes, at: 0 };
        let v1 = Header::read(&mut r)?;
        let (h, time_size) = if v1.version >= 2 {
            r.skip(v1.data_len(4)?)?;
            let h = Header::read(&mut r)?;
            (h, 8)
        } else {
            (v1, 4)
        };
        let mut transitions = Vec::with_capacity(h.timecnt.min(bytes.len()));
        for _ in 0..h.timecnt {
            let t = if time_size == 8 { r.i64()? } else { i64::from(r.i32()?) };
            if transitions.last().is_some_and(|&last| t <= last) {
                return Err("transition times are not ascending".into());
            }
            transitions.push(t);
        }
        let indices = r.take(h.timecnt)?.to_vec();
        if indices.iter().any(|&i| usize::from(i) >= h.typecnt) {
            return Err("a transition names a local time type that does not exist".into());
        }
        let mut raw_types = Vec::with_capacity(h.typecnt);
        for _ in 0..h.typecnt {
            let offset = r.i32()?;
            let dst = r.u8()?;
            let abbr = r.u8()?;
            if offset == i32::MIN || !(-25 * 3600..=26 * 3600).contains(&offset) || dst > 1 {
                return Err("a local time type is out of range".into());
            }
            raw_types.push((offset, dst == 1, usize::from(abbr)));
        }
        let chars = r.take(h.charcnt)?;
        let mut types = Vec::with_capacity(raw_types.len());
        for (offset, dst, at) in raw_types {
            let abbr = chars
                .get(at..)
                .and_then(|rest| rest.iter().position(|&b| b == 0).map(|end| &rest[..end]))
                .ok_or("a local time type's abbreviation is not in the file")?;
            let abbr = std::str::from_utf8(abbr).map_err(|_| "an abbreviation is not text")?;
            types.push(LocalType { offset, dst, abbr: abbr.to_owned() });
        }
        r.skip(h.leapcnt.checked_mul(time_size + 4).ok_or("too many leap seconds")?)?;
        r.skip(h.isstdcnt)?;
        r.skip(h.isutcnt)?;
        let mut rule = None;
        if h.version >= 2 {
            let rest = &bytes[r.at..];
            let footer = rest
                .strip_prefix(b"\n")
                .and_then(|f| f.iter().position(|&b| b == b'\n').map(|end| &f[..end]))
                .ok_or("the footer is missing")?;
            if !footer.is_empty() {
                rule = Some(parse_rule(footer).ok_or("the footer is not a POSIX TZ string")?);
            }
        }
        Ok(Zone { name: name.to_owned(), transitions, indices, types, rule })
    }

    /// The local time type in effect at `unix` seconds.
    pub fn at(&self, unix: i64) -> &LocalType {
        let n = self.transitions.partition_point(|&t| t <= unix);
        match (n, &self.rule) {
            (0, Some(rule)) if self.transitions.is_empty() => rule.at(unix),
            (0, _) => &self.types[0],
            (n, Some(rule)) if n == self.transitions.len() => rule.at(unix),
            (n, _) => &self.types[usize::from(self.indices[n - 1])],
        }
    }
}

/// `$TZDIR`, else [`ZONEINFO`].
fn zoneinfo_dir() -> PathBuf {
    std::env::var_os("TZDIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from(ZONEINFO), PathBuf::from)
}

/// The zone names of a database (files whose every path part starts with a capital letter,
/// which leaves out `posix/`, `right/` and the tables), for suggestions.
fn zone_names(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, prefix: &str, depth: u32, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with(|c: char| c.is_ascii_uppercase()) {
                continue;
            }
            let full = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
            match e.file_type() {
                Ok(t) if t.is_dir() && depth < 3 => walk(&e.path(), &full, depth + 1, out),
                Ok(t) if !t.is_dir() => out.push(full),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, "", 0, &mut out);
    out.sort();
    out
}

impl Rule {
    fn first_type(&self) -> LocalType {
        match self {
            Rule::Fixed(t) | Rule::Dst { std: t, .. } => t.clone(),
        }
    }

    fn at(&self, unix: i64) -> &LocalType {
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
    fn utc(&self, year: i64, offset: i32) -> i64 {
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
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
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

/// A TZif header: the version and the counts.
struct Header {
    version: u8,
    isutcnt: usize,
    isstdcnt: usize,
    leapcnt: usize,
    timecnt: usize,
    typecnt: usize,
    charcnt: usize,
}

impl Header {
    fn read(r: &mut Reader<'_>) -> Result<Header, String> {
        if r.take(4)? != b"TZif" {
            return Err("not a TZif file".into());
        }
        let version = match r.u8()? {
            0 => 1,
            v @ b'2'..=b'9' => v - b'0',
            _ => return Err("unknown TZif version".into()),
        };
        r.skip(15)?;
        let mut count = || r.u32().map(|n| n as usize);
        let h = Header {
            version,
            isutcnt: count()?,
            isstdcnt: count()?,
            leapcnt: count()?,
            timecnt: count()?,
            typecnt: count()?,
            charcnt: count()?,
        };
        if h.typecnt == 0 || h.charcnt == 0 {
            return Err("no local time types".into());
        }
        if (h.isutcnt != 0 && h.isutcnt != h.typecnt)
            || (h.isstdcnt != 0 && h.isstdcnt != h.typecnt)
        {
            return Err("inconsistent counts".into());
        }
        Ok(h)
    }

    /// The length of the data block that follows, with times of `time_size` bytes.
    fn data_len(&self, time_size: usize) -> Result<usize, String> {
        let parts = [
            self.timecnt.checked_mul(time_size + 1),
            self.typecnt.checked_mul(6),
            Some(self.charcnt),
            self.leapcnt.checked_mul(time_size + 4),
            Some(self.isstdcnt),
            Some(self.isutcnt),
        ];
        parts
            .iter()
            .try_fold(0usize, |sum, p| sum.checked_add((*p)?))
            .ok_or_else(|| "counts too large".into())
    }
}

/// Big-endian reads over a byte slice; running out is an error.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or("the file is cut short")?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn skip(&mut self, n: usize) -> Result<(), String> {
        self.take(n).map(|_| ())
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }

    fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
}

/// Parses a POSIX TZ string (`EST5EDT,M3.2.0,M11.1.0`, `<+0530>-5:30`); `None` if invalid.
fn parse_rule(text: &[u8]) -> Option<Rule> {
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

#[cfg(test)]
mod tests;
