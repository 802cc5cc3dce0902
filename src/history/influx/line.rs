//! InfluxDB line protocol for one slot: one point per series, `metric,tag=v,… min=…,avg=…,
//! max=…,last=…,count=Ni <slot start in seconds>`, written so that InfluxDB 1.x/2.x and
//! VictoriaMetrics read the same point back.
//!
//! Escaping: measurement commas and spaces; tag key and value commas, equals signs and
//! spaces (`\,` `\=` `\ `). Text a line cannot carry is replaced, never passed through:
//! - every control character (newline, carriage return, tab, NUL, DEL, C1) becomes U+FFFD
//!   (`\u{FFFD}`, "�"): a tag value cannot hold a line break, so hostile label text can never
//!   start a second line or a field;
//! - a backslash followed by an ordinary character is written as is (every server keeps it);
//!   a backslash before `\`, `,`, `=`, a space, or at the end of the text becomes U+29F5
//!   (`⧵`, REVERSE SOLIDUS OPERATOR): there InfluxDB 1.x cannot represent it (a trailing `\`
//!   escapes the separator after it) and VictoriaMetrics reads `\\` differently from
//!   InfluxDB, so the only text that means the same everywhere avoids it;
//! - an empty tag value is not allowed by the protocol: the tag is left out.
//!
//! NaN and infinite values are not valid fields: such a field is left out, and a point with
//! no value left (only its count) is not written.
//!
//! Not for: sending (`super`), or reading line protocol.

use crate::history::sink::SlotRow;
use std::fmt::Write as _;

/// What stands for a control character.
pub(crate) const CONTROL: char = '\u{FFFD}';
/// What stands for a backslash no server would read back as one.
pub(crate) const BACKSLASH: char = '\u{29F5}';

/// Appends the line of one series' slot (no trailing newline) to `out`; false (and `out`
/// unchanged) when none of min, avg, max, last is finite (a count alone measures nothing).
pub(crate) fn encode_row(out: &mut String, host: &str, row: &SlotRow, ts: i64) -> bool {
    let s = &row.stats;
    if ![s.min, s.avg, s.max, s.last].iter().any(|v| v.is_finite()) {
        return false;
    }
    escape(out, row.metric.name(), Part::Measurement);
    // Tags sorted by key, as InfluxDB prefers (label keys are `core`, `device`, `iface`,
    // `mount`).
    let label = row.label.as_ref().map(|(k, v)| (k.as_str(), &**v));
    let host_tag = ("host", host);
    let (first, second) = match label {
        Some(l) if l.0 < "host" => (Some(l), Some(host_tag)),
        Some(l) => (Some(host_tag), Some(l)),
        None => (Some(host_tag), None),
    };
    for (key, value) in [first, second].into_iter().flatten() {
        if value.is_empty() {
            continue;
        }
        out.push(',');
        escape(out, key, Part::Tag);
        out.push('=');
        escape(out, value, Part::Tag);
    }
    let mut sep = ' ';
    for (name, v) in [("min", s.min), ("avg", s.avg), ("max", s.max), ("last", s.last)] {
        if v.is_finite() {
            out.push(sep);
            out.push_str(name);
            out.push('=');
            float(out, v);
            sep = ',';
        }
    }
    let _ = write!(out, "{sep}count={}i {ts}", s.count);
    true
}

#[derive(Clone, Copy, PartialEq)]
enum Part {
    Measurement,
    Tag,
}

/// Appends `text` escaped for `part` (see the module documentation).
fn escape(out: &mut String, text: &str, part: Part) {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_control() => out.push(CONTROL),
            '\\' => match chars.peek() {
                None | Some('\\' | ',' | '=' | ' ') => out.push(BACKSLASH),
                Some(_) => out.push('\\'),
            },
            ',' | ' ' => {
                out.push('\\');
                out.push(c);
            }
            '=' if part == Part::Tag => out.push_str("\\="),
            c => out.push(c),
        }
    }
}

/// A finite float as the protocol reads it: the shortest text that reads back as the same
/// value, in exponent form when very large or very small (`1.5e20`, `1e-7`).
fn float(out: &mut String, v: f64) {
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e15).contains(&a) {
        let _ = write!(out, "{v:e}");
    } else {
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::sink::Stats;
    use crate::metrics::{LabelKey, Metric};
    use std::sync::Arc;

    fn row(metric: Metric, label: Option<(LabelKey, &str)>, stats: Stats) -> SlotRow {
        SlotRow {
            key: Arc::from("unused"),
            metric,
            label: label.map(|(k, v)| (k, Arc::from(v))),
            stats,
        }
    }

    fn stats(min: f64, avg: f64, max: f64, last: f64, count: u32) -> Stats {
        Stats { min, avg, max, last, count }
    }

    fn line(host: &str, r: &SlotRow) -> Option<String> {
        let mut out = String::new();
        encode_row(&mut out, host, r, 1_700_000_040).then_some(out)
    }

    #[test]
    fn a_point_has_the_metric_the_tags_the_four_floats_the_count_and_the_slot_start() {
        let r = row(Metric::CpuUsage, None, stats(1.0, 2.5, 4.0, 3.25, 5));
        assert_eq!(
            line("web-1", &r).unwrap(),
            "cpu.usage,host=web-1 min=1,avg=2.5,max=4,last=3.25,count=5i 1700000040"
        );
        let r = row(
            Metric::DiskUsedPercent,
            Some((LabelKey::Mount, "/")),
            stats(1.0, 1.0, 1.0, 1.0, 1),
        );
        assert_eq!(
            line("h", &r).unwrap(),
            "disk.used_percent,host=h,mount=/ min=1,avg=1,max=1,last=1,count=1i 1700000040"
        );
        // Tags sorted by key: `core` and `device` before `host`.
        let r = row(
            Metric::DiskReadRate,
            Some((LabelKey::Device, "sda")),
            stats(0.0, 0.0, 0.0, 0.0, 2),
        );
        assert!(line("h", &r).unwrap().starts_with("disk.read_rate,device=sda,host=h "));
    }

    #[test]
    fn separators_in_labels_and_host_are_escaped() {
        let r = row(
            Metric::DiskFree,
            Some((LabelKey::Mount, "/mnt/a b,c=d")),
            stats(1.0, 1.0, 1.0, 1.0, 1),
        );
        let l = line("my host,x=y", &r).unwrap();
        assert_eq!(
            l,
            "disk.free,host=my\\ host\\,x\\=y,mount=/mnt/a\\ b\\,c\\=d min=1,avg=1,max=1,last=1,count=1i 1700000040"
        );
        let mut m = String::new();
        escape(&mut m, "a b,c=d", Part::Measurement);
        assert_eq!(m, "a\\ b\\,c=d", "an equals sign needs no escape in a measurement");
    }

    /// The parts of a line as a line-protocol reader splits them: on unescaped spaces, then
    /// the series on unescaped commas. Enough to see that hostile text stayed inside its tag.
    fn split_unescaped(text: &str, sep: char) -> Vec<String> {
        let mut parts = vec![String::new()];
        let mut escaped = false;
        for c in text.chars() {
            if c == sep && !escaped {
                parts.push(String::new());
            } else {
                parts.last_mut().unwrap().push(c);
            }
            escaped = c == '\\' && !escaped;
        }
        parts
    }

    #[test]
    fn hostile_label_text_never_makes_a_second_line_a_field_or_a_tag() {
        let hostile = [
            "eth0\ncpu.usage,host=evil min=99 1",
            "x\r\ny",
            "a\\",
            "a\\ b",
            "a\\,evil=1",
            "a\\=b",
            "a\\\\b",
            "q\"uote's",
            "nul\0tab\tdel\u{7f}c1\u{85}",
            " leading and trailing ",
            "\\",
            ",",
            "=",
            " ",
            "a=b c=d,e",
        ];
        for text in hostile {
            let r =
                row(Metric::NetRxRate, Some((LabelKey::Iface, text)), stats(1.0, 2.0, 3.0, 2.0, 3));
            let l = line(text, &r).unwrap();
            assert!(!l.chars().any(char::is_control), "{text:?} gave {l:?}");
            let parts = split_unescaped(&l, ' ');
            assert_eq!(parts.len(), 3, "{text:?} gave {l:?}: series, fields, timestamp");
            assert_eq!(parts[1], "min=1,avg=2,max=3,last=2,count=3i", "{text:?} gave {l:?}");
            assert_eq!(parts[2], "1700000040");
            let series = split_unescaped(&parts[0], ',');
            assert_eq!(series.len(), 3, "{text:?} gave {l:?}: measurement, host, iface");
            assert_eq!(series[0], "net.rx_rate");
            assert!(series[1].starts_with("host="), "{text:?} gave {l:?}");
            assert!(series[2].starts_with("iface="), "{text:?} gave {l:?}");
            // No backslash is ever followed by something a server reads differently, nor
            // ends a value.
            for value in [&series[1][5..], &series[2][6..]] {
                let v: Vec<char> = value.chars().collect();
                for (i, c) in v.iter().enumerate() {
                    if *c == '\\' {
                        let next = v.get(i + 1).copied();
                        assert!(
                            matches!(next, Some(' ' | ',' | '='))
                                || next.is_some_and(|n| n != '\\'),
                            "{text:?} gave {l:?}"
                        );
                    }
                }
            }
        }
        let r =
            row(Metric::NetRxRate, Some((LabelKey::Iface, "a\nb\\")), stats(1.0, 1.0, 1.0, 1.0, 1));
        assert!(line("h", &r).unwrap().contains("iface=a\u{FFFD}b\u{29F5} "));
        let r = row(
            Metric::NetRxRate,
            Some((LabelKey::Iface, "c:\\dir\\x")),
            stats(1.0, 1.0, 1.0, 1.0, 1),
        );
        assert!(line("h", &r).unwrap().contains("iface=c:\\dir\\x "), "ordinary backslashes stay");
    }

    #[test]
    fn non_finite_values_are_left_out_and_a_point_without_fields_is_not_written() {
        let r = row(Metric::Load1, None, stats(f64::NAN, 1.5, f64::INFINITY, f64::NEG_INFINITY, 4));
        assert_eq!(line("h", &r).unwrap(), "load.1,host=h avg=1.5,count=4i 1700000040");
        let r = row(Metric::Load1, None, stats(f64::NAN, f64::INFINITY, f64::NAN, f64::NAN, 2));
        let mut out = String::from("kept");
        assert!(!encode_row(&mut out, "h", &r, 1), "a count alone is no point");
        assert_eq!(out, "kept", "nothing appended");
    }

    #[test]
    fn an_empty_label_value_leaves_the_tag_out() {
        let r = row(Metric::DiskFree, Some((LabelKey::Mount, "")), stats(1.0, 1.0, 1.0, 1.0, 1));
        assert!(line("h", &r).unwrap().starts_with("disk.free,host=h min="));
    }

    #[test]
    fn floats_read_back_as_the_same_value() {
        for v in [
            0.0,
            -0.0,
            1.0,
            0.1,
            99.999,
            1e-4,
            5e-5,
            1.5e20,
            -2.5e300,
            1e15,
            123456789.125,
            f64::MIN_POSITIVE,
        ] {
            let mut out = String::new();
            float(&mut out, v);
            assert_eq!(out.parse::<f64>().unwrap(), v, "{out}");
            assert!(out.len() < 30, "{out}");
        }
    }
}
