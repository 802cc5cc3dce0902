//! Text helpers of the status page: the one HTML escaping function every piece of data goes
//! through, and allocation-free renderings of durations and times.
//!
//! Contract: [`Esc`] turns `&`, `<`, `>`, `"` and `'` into entities, so its output is safe in
//! HTML text, in a quoted attribute value and in SVG `<text>`. Nothing else is escaped
//! (control characters are harmless in text and attributes). Nothing here allocates except
//! [`When`], which writes an RFC 3339 time.
//!
//! Not for: deciding what the page shows (`page`) or drawing charts (`svg`).

use std::fmt::{self, Display, Formatter, Write};

/// `text`, escaped for HTML text and attribute values.
#[derive(Clone, Copy)]
pub(crate) struct Esc<'a>(pub &'a str);

impl Display for Esc<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let mut from = 0;
        for (i, b) in s.bytes().enumerate() {
            let entity = match b {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                b'\'' => "&#39;",
                _ => continue,
            };
            // `i` is at an ASCII byte, so both slices end on character boundaries.
            f.write_str(&s[from..i])?;
            f.write_str(entity)?;
            from = i + 1;
        }
        f.write_str(&s[from..])
    }
}

/// Appends `text` escaped for HTML text and attribute values.
pub(crate) fn escape_into(out: &mut String, text: &str) {
    let _ = write!(out, "{}", Esc(text));
}

/// A duration in seconds, to two units at most: `45s`, `3m 20s`, `2h 05m`, `4d 3h`, `3y 20d` (years of 365 days); `—` for
/// a negative or non-finite one.
#[derive(Clone, Copy)]
pub(crate) struct Dur(pub f64);

impl Display for Dur {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if !self.0.is_finite() || self.0 < 0.0 {
            return f.write_str("—");
        }
        if self.0 < 10.0 {
            return write!(f, "{:.1}s", self.0);
        }
        let s = self.0.round() as u64;
        match s {
            0..60 => write!(f, "{s}s"),
            60..3600 => write!(f, "{}m {:02}s", s / 60, s % 60),
            3600..86_400 => write!(f, "{}h {:02}m", s / 3600, s / 60 % 60),
            86_400..31_536_000 => write!(f, "{}d {}h", s / 86_400, s / 3600 % 24),
            _ => write!(f, "{}y {}d", s / 31_536_000, s / 86_400 % 365),
        }
    }
}

/// A moment relative to `now` (both Unix seconds) as a `<time>` element: `3m 20s ago` or
/// `in 1h 02m`, with the RFC 3339 time in `datetime` and `title`; `never` for 0, `None` or a
/// non-finite time.
pub(crate) struct When {
    /// The moment.
    pub at: Option<f64>,
    /// Now.
    pub now: f64,
}

impl Display for When {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let Some(at) = self.at.filter(|t| t.is_finite() && *t > 0.0) else {
            return f.write_str("<span class=\"mute\">never</span>");
        };
        let stamp = crate::timefmt::rfc3339(at);
        let shown = crate::timefmt::human(at);
        write!(f, "<time datetime=\"{}\" title=\"{}\">", Esc(&stamp), Esc(&shown))?;
        let delta = self.now - at;
        if delta >= 0.0 {
            write!(f, "{} ago", Dur(delta))?;
        } else {
            write!(f, "in {}", Dur(-delta))?;
        }
        f.write_str("</time>")
    }
}

/// Appends a finite value humanized in `unit` (`41.2%`, `1.5 GiB`), or `—`.
pub(crate) fn value_into(out: &mut String, unit: crate::metrics::Unit, v: f64) {
    if v.is_finite() {
        escape_into(out, &crate::humanize::value(unit, v));
    } else {
        out.push('—');
    }
}
