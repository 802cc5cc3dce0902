//! Time zones for people: the offset and abbreviation in effect at an instant, read from the
//! system's time zone database (TZif files under `/usr/share/zoneinfo`, or `$TZDIR`).
//!
//! A [`Zone`] holds a TZif file's transitions and local time types, and its POSIX TZ footer
//! (`CET-1CEST,M3.5.0,M10.5.0/3`) for instants after the last transition. `local` is the
//! system zone: `TZ` (a zone name, a TZif path or a POSIX TZ string), else `/etc/localtime`.
//! Every byte of a file is checked; no content can panic. Not the place for formatting
//! (`timefmt`) or for choosing the zone (`config`, `display.timezone`); leap seconds are
//! ignored, as Unix time ignores them.

mod posix;

use posix::{Rule, parse_rule};
use std::path::{Path, PathBuf};

/// Where zone files live when `$TZDIR` does not say.
pub const ZONEINFO: &str = "/usr/share/zoneinfo";
/// No TZif file is larger (the largest in tzdata is under 4 KiB).
const MAX_TZIF_BYTES: u64 = 256 * 1024;

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
        // Nothing is allocated for counts the file cannot hold: a hostile header asks for
        // no more memory than the file's own size.
        if h.data_len(time_size)? > r.bytes.len().saturating_sub(r.at) {
            return Err("counts larger than the file".into());
        }
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
        // Transition indices are one byte: more types cannot be referred to.
        if h.typecnt > 256 {
            return Err("more than 256 local time types".into());
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

#[cfg(test)]
mod tests;
