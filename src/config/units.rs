//! Units in config strings: durations (`1h30m`), sizes (`500MB`), rates (`800Mbps`), window
//! counts (`3/5`) and thresholds (`> 85`), converted to the metric's base unit.
//!
//! Every function returns the operator-facing message on error, without position: `decode`
//! adds the file, line, column and key path. Not the place for which key takes which unit.

use super::{Op, Threshold};
use crate::metrics::Unit;
use std::time::Duration;

/// Duration suffixes and their length in milliseconds.
const DURATION_UNITS: &[(&str, u64)] =
    &[("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)];

/// Byte-count suffixes (decimal = 1000, binary = 1024).
const SIZE_UNITS: &[(&str, f64)] = &[
    ("B", 1.0),
    ("KB", 1e3),
    ("kB", 1e3),
    ("MB", 1e6),
    ("GB", 1e9),
    ("TB", 1e12),
    ("KiB", 1024.0),
    ("MiB", 1_048_576.0),
    ("GiB", 1_073_741_824.0),
    ("TiB", 1_099_511_627_776.0),
];
const SIZE_EXPECTED: &str = "B, KB, MB, GB, TB, KiB, MiB, GiB, TiB";

/// Rate suffixes and their size in bytes per second (bits are divided by 8).
const RATE_UNITS: &[(&str, f64)] = &[
    ("bps", 0.125),
    ("Kbps", 125.0),
    ("kbps", 125.0),
    ("Mbps", 125_000.0),
    ("Gbps", 125_000_000.0),
    ("B/s", 1.0),
    ("KB/s", 1e3),
    ("kB/s", 1e3),
    ("MB/s", 1e6),
    ("GB/s", 1e9),
    ("KiB/s", 1024.0),
    ("MiB/s", 1_048_576.0),
    ("GiB/s", 1_073_741_824.0),
];
const RATE_EXPECTED: &str = "bps, Kbps, Mbps, Gbps, B/s, KB/s, MB/s, GB/s, KiB/s, MiB/s, GiB/s";

/// The longest duration accepted (100 years), so arithmetic on it never overflows.
const MAX_DURATION_MS: f64 = 100.0 * 365.0 * 86_400_000.0;

/// The largest M of an `occurrences` window.
pub const MAX_OCCURRENCES: u32 = 10_000;

/// Parses a duration such as `500ms`, `5s`, `2m`, `1h30m` or `1d`; it must be greater than
/// zero and a whole number of milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = |why: &str| format!("invalid duration {text:?}: {why}");
    let expected = "expected a number and a unit (ms, s, m, h, d), like \"5s\" or \"1h30m\"";
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(format!("empty duration ({expected})"));
    }
    let mut total_ms = 0.0;
    while !rest.is_empty() {
        let (number, after) = split_number(rest);
        let Some(number) = number else {
            return Err(invalid(expected));
        };
        let after = after.trim_start();
        let unit_len = after.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(invalid("missing unit (expected ms, s, m, h or d, like \"5s\")"));
        }
        let Some((_, ms)) = DURATION_UNITS.iter().find(|(u, _)| *u == unit) else {
            return Err(invalid(&format!("unknown unit {unit:?} (expected ms, s, m, h or d)")));
        };
        total_ms += number * *ms as f64;
        rest = after.trim_start();
    }
    if total_ms > MAX_DURATION_MS {
        return Err(invalid("longer than 100 years"));
    }
    // Decimal fractions are inexact in binary ("2.01s" is 2010.0000000000002 ms): compare
    // with the nearest whole millisecond, not with the float itself.
    let whole_ms = total_ms.round();
    if (total_ms - whole_ms).abs() > 1e-6 {
        return Err(invalid("durations are counted in whole milliseconds"));
    }
    if whole_ms == 0.0 {
        return Err(invalid("must be greater than zero"));
    }
    Ok(Duration::from_millis(whole_ms as u64))
}

/// Writes a duration the way configs spell it: `2m`, `1h30m`, `1d`, `500ms`.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return if d.is_zero() { "0s".to_owned() } else { format!("{}us", d.as_micros()) };
    }
    let mut out = String::new();
    for (unit, len) in DURATION_UNITS.iter().rev() {
        let len = u128::from(*len);
        if ms >= len {
            out.push_str(&format!("{}{unit}", ms / len));
            ms %= len;
        }
    }
    out
}

/// Splits a leading unsigned decimal number (`12`, `1.5`) off `text`.
fn split_number(text: &str) -> (Option<f64>, &str) {
    let end = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (num, rest) = text.split_at(end);
    let ok = num.starts_with(|c: char| c.is_ascii_digit()) && !num.ends_with('.');
    (num.parse::<f64>().ok().filter(|_| ok), rest)
}

/// Parses a number with an optional unit from `table`; `None` for the unit means bare.
fn number_with_unit(
    text: &str,
    table: &[(&str, f64)],
    bare: Option<f64>,
    expected: &str,
) -> Result<f64, String> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err("negative values are not allowed (metrics are never negative)".to_owned());
    }
    let (number, unit) = split_number(text);
    let Some(number) = number else {
        return Err(format!("expected a number, found {text:?}"));
    };
    let unit = unit.trim();
    if unit.starts_with(',') {
        return Err(format!("write {text:?} without thousands separators"));
    }
    if unit.is_empty() {
        return match bare {
            Some(factor) => Ok(number * factor),
            None => Err(format!("missing unit (expected one of {expected})")),
        };
    }
    match table.iter().find(|(u, _)| *u == unit) {
        Some((_, factor)) => Ok(number * factor),
        None => Err(format!("unknown unit {unit:?} ({})", expected_text(table, expected))),
    }
}

fn expected_text(table: &[(&str, f64)], expected: &str) -> String {
    if table.len() > 1 { format!("expected one of {expected}") } else { expected.to_owned() }
}

/// Parses a byte count such as `500MB`, `1GiB` or `1.5 GB` into bytes; a unit is required.
pub fn parse_size(text: &str) -> Result<f64, String> {
    number_with_unit(text, SIZE_UNITS, None, SIZE_EXPECTED)
}

/// Parses a rate such as `10MiB/s`, `500KB/s` or `800Mbps` into bytes per second.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    number_with_unit(text, RATE_UNITS, None, RATE_EXPECTED)
}

/// Parses a value in the unit of a metric, returning it in the metric's base unit.
pub fn parse_value(text: &str, unit: Unit) -> Result<f64, String> {
    match unit {
        Unit::Bytes => parse_size(text),
        Unit::BytesPerSec => parse_rate(text),
        Unit::Percent => {
            let v = number_with_unit(text, &[("%", 1.0)], Some(1.0), "expected \"%\" or no unit")?;
            if v > 100.0 {
                return Err(format!("percent value {v} is out of range (0 to 100)"));
            }
            Ok(v)
        }
        Unit::CorePercent => number_with_unit(
            text,
            &[("%", 1.0)],
            Some(1.0),
            "expected \"%\" (of one core) or no unit",
        ),
        Unit::PerSec => {
            number_with_unit(text, &[("/s", 1.0)], Some(1.0), "expected \"/s\" or no unit")
        }
        Unit::Load => number_with_unit(text, &[], Some(1.0), "load averages take no unit"),
        Unit::Count => number_with_unit(text, &[], Some(1.0), "counts take no unit"),
    }
}

/// Parses a threshold: an operator (`>`, `>=`, `<`, `<=`; space optional) and a value in the
/// metric's unit, like `> 85`, `<500MB` or `> 800Mbps`.
pub fn parse_threshold(text: &str, unit: Unit) -> Result<Threshold, String> {
    let trimmed = text.trim();
    let (op_text, value_text) = split_operator(trimmed);
    let op = match op_text {
        ">" => Op::Gt,
        ">=" => Op::Ge,
        "<" => Op::Lt,
        "<=" => Op::Le,
        "" => {
            return Err(format!(
                "missing operator in {trimmed:?} (expected >, >=, < or <= before the value, \
                 like \"> 85\")"
            ));
        }
        other => return Err(format!("unknown operator {other:?} (expected >, >=, < or <=)")),
    };
    if value_text.trim().is_empty() {
        return Err(format!("missing value after {op_text:?} (like \"{op_text} 85\")"));
    }
    let value = parse_value(value_text, unit)?;
    Ok(Threshold { op, value, text: trimmed.to_owned() })
}

/// Splits a threshold's text into its operator and its value (`"> 85"` → `(">", " 85")`).
fn split_operator(text: &str) -> (&str, &str) {
    let text = text.trim();
    let op_len = text.find(|c: char| !matches!(c, '<' | '>' | '=' | '!')).unwrap_or(text.len());
    text.split_at(op_len)
}

impl Threshold {
    /// The condition under which this threshold no longer holds, as people write it: the
    /// operator flipped, the value as written (`> 80` → `<= 80`, `< 500MB` → `>= 500MB`).
    pub fn negated_text(&self) -> String {
        let op = match self.op {
            Op::Gt => "<=",
            Op::Ge => "<",
            Op::Lt => ">=",
            Op::Le => ">",
        };
        format!("{op} {}", split_operator(&self.text).1.trim())
    }
}

/// Parses an `occurrences` window `"N/M"`: at least N of the last M samples, with
/// 1 <= N <= M <= 10000.
pub fn parse_occurrences(text: &str) -> Result<(u32, u32), String> {
    let shape = "expected \"N/M\" like \"3/5\" (N of the last M samples)";
    let Some((n, m)) = text.split_once('/') else {
        return Err(format!("invalid occurrences {text:?}: {shape}"));
    };
    let int = |s: &str| -> Option<u32> {
        let s = s.trim();
        (!s.is_empty() && s.chars().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().unwrap_or(u32::MAX))
    };
    let (Some(n), Some(m)) = (int(n), int(m)) else {
        return Err(format!("invalid occurrences {text:?}: {shape}"));
    };
    let bad = |why: String| Err(format!("invalid occurrences {text:?}: {why}"));
    if n < 1 {
        return bad("N must be at least 1".to_owned());
    }
    if m > MAX_OCCURRENCES {
        return bad(format!("M must be at most {MAX_OCCURRENCES}"));
    }
    if n > m {
        return bad(format!("N ({n}) must not be larger than M ({m})"));
    }
    Ok((n, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_negated_threshold_flips_the_operator_and_keeps_the_value_as_written() {
        let negated = |text: &str, unit| parse_threshold(text, unit).unwrap().negated_text();
        assert_eq!(negated("> 80", Unit::Percent), "<= 80");
        assert_eq!(negated(">=90", Unit::Percent), "< 90");
        assert_eq!(negated("< 500MB", Unit::Bytes), ">= 500MB");
        assert_eq!(negated("<= 1GiB", Unit::Bytes), "> 1GiB");
    }

    fn ms(text: &str) -> u128 {
        parse_duration(text).unwrap().as_millis()
    }

    #[test]
    fn decimal_durations_that_are_whole_milliseconds_parse() {
        for (text, ms) in [
            ("2.01s", 2010),
            ("16.1s", 16_100),
            ("8.05s", 8050),
            ("1.005s", 1005),
            ("0.5m", 30_000),
        ] {
            assert_eq!(parse_duration(text), Ok(Duration::from_millis(ms)), "{text}");
        }
        assert!(parse_duration("1.0005s").unwrap_err().contains("whole milliseconds"));
    }

    #[test]
    fn durations_parse_and_format_back() {
        assert_eq!(ms("500ms"), 500);
        assert_eq!(ms("5s"), 5_000);
        assert_eq!(ms("2m"), 120_000);
        assert_eq!(ms("1h30m"), 5_400_000);
        assert_eq!(ms("1d"), 86_400_000);
        assert_eq!(ms("1.5s"), 1_500);
        assert_eq!(ms(" 1h 30m "), 5_400_000);
        for text in ["500ms", "5s", "2m", "1h30m", "1d", "1d2h3m4s5ms"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
    }

    #[test]
    fn durations_reject_what_they_cannot_mean() {
        let e = |t: &str| parse_duration(t).unwrap_err();
        assert_eq!(e("0s"), "invalid duration \"0s\": must be greater than zero");
        assert_eq!(
            e("5"),
            "invalid duration \"5\": missing unit (expected ms, s, m, h or d, like \"5s\")"
        );
        assert_eq!(
            e("5x"),
            "invalid duration \"5x\": unknown unit \"x\" (expected ms, s, m, h or d)"
        );
        assert_eq!(
            e("5 mins"),
            "invalid duration \"5 mins\": unknown unit \"mins\" (expected ms, s, m, h or d)"
        );
        assert!(e("-5s").contains("expected a number and a unit"));
        assert!(e("").starts_with("empty duration"));
        assert!(e("0.5ms").contains("whole milliseconds"));
        assert!(e("1000000d").contains("100 years"));
    }

    #[test]
    fn sizes_use_decimal_and_binary_multiples() {
        assert_eq!(parse_size("500MB").unwrap(), 500e6);
        assert_eq!(parse_size("1GiB").unwrap(), 1_073_741_824.0);
        assert_eq!(parse_size("1.5 GB").unwrap(), 1.5e9);
        assert_eq!(parse_size("10kB").unwrap(), 10e3);
        assert_eq!(parse_size("10KB").unwrap(), 10e3);
        assert_eq!(parse_size("7B").unwrap(), 7.0);
        assert_eq!(parse_size("2TiB").unwrap(), 2.0 * 1_099_511_627_776.0);
        assert_eq!(
            parse_size("500").unwrap_err(),
            "missing unit (expected one of B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"
        );
        assert_eq!(
            parse_size("5mb").unwrap_err(),
            "unknown unit \"mb\" (expected one of B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"
        );
    }

    #[test]
    fn rates_take_bytes_or_bits_per_second() {
        assert_eq!(parse_rate("10MiB/s").unwrap(), 10.0 * 1_048_576.0);
        assert_eq!(parse_rate("500KB/s").unwrap(), 500e3);
        assert_eq!(parse_rate("8B/s").unwrap(), 8.0);
        assert_eq!(parse_rate("800Mbps").unwrap(), 100e6);
        assert_eq!(parse_rate("8bps").unwrap(), 1.0);
        assert_eq!(parse_rate("8kbps").unwrap(), 1000.0);
        assert_eq!(parse_rate("8Kbps").unwrap(), 1000.0);
        assert_eq!(parse_rate("1Gbps").unwrap(), 125e6);
        assert_eq!(
            parse_rate("800Mbs").unwrap_err(),
            "unknown unit \"Mbs\" (expected one of bps, Kbps, Mbps, Gbps, B/s, KB/s, MB/s, GB/s, KiB/s, MiB/s, GiB/s)"
        );
    }

    #[test]
    fn values_follow_the_metric_unit() {
        assert_eq!(parse_value("85", Unit::Percent).unwrap(), 85.0);
        assert_eq!(parse_value("85%", Unit::Percent).unwrap(), 85.0);
        assert_eq!(
            parse_value("150", Unit::Percent).unwrap_err(),
            "percent value 150 is out of range (0 to 100)"
        );
        assert_eq!(
            parse_value("5MB", Unit::Percent).unwrap_err(),
            "unknown unit \"MB\" (expected \"%\" or no unit)"
        );
        assert_eq!(parse_value("100/s", Unit::PerSec).unwrap(), 100.0);
        assert_eq!(parse_value("100", Unit::PerSec).unwrap(), 100.0);
        assert_eq!(parse_value("4.5", Unit::Load).unwrap(), 4.5);
        assert_eq!(
            parse_value("4%", Unit::Load).unwrap_err(),
            "unknown unit \"%\" (load averages take no unit)"
        );
        assert_eq!(parse_value("5000", Unit::Count).unwrap(), 5000.0);
        assert_eq!(
            parse_value("5,000", Unit::Count).unwrap_err(),
            "write \"5,000\" without thousands separators"
        );
        assert!(parse_value("-1", Unit::Count).unwrap_err().contains("negative"));
        assert_eq!(
            parse_value("abc", Unit::Count).unwrap_err(),
            "expected a number, found \"abc\""
        );
    }

    #[test]
    fn thresholds_need_an_operator_and_a_value() {
        let t = parse_threshold("> 85", Unit::Percent).unwrap();
        assert_eq!((t.op, t.value, t.text.as_str()), (Op::Gt, 85.0, "> 85"));
        assert_eq!(parse_threshold(">=85", Unit::Percent).unwrap().op, Op::Ge);
        assert_eq!(parse_threshold("<= 1", Unit::Load).unwrap().op, Op::Le);
        let t = parse_threshold("< 500MB", Unit::Bytes).unwrap();
        assert_eq!((t.op, t.value), (Op::Lt, 500e6));
        assert_eq!(parse_threshold("> 800Mbps", Unit::BytesPerSec).unwrap().value, 100e6);
        assert_eq!(
            parse_threshold("=> 85", Unit::Percent).unwrap_err(),
            "unknown operator \"=>\" (expected >, >=, < or <=)"
        );
        assert_eq!(
            parse_threshold("== 85", Unit::Percent).unwrap_err(),
            "unknown operator \"==\" (expected >, >=, < or <=)"
        );
        assert!(
            parse_threshold("85", Unit::Percent)
                .unwrap_err()
                .starts_with("missing operator in \"85\"")
        );
        assert_eq!(
            parse_threshold(">", Unit::Percent).unwrap_err(),
            "missing value after \">\" (like \"> 85\")"
        );
        assert_eq!(
            parse_threshold("> 101%", Unit::Percent).unwrap_err(),
            "percent value 101 is out of range (0 to 100)"
        );
    }

    #[test]
    fn occurrences_are_n_of_m() {
        assert_eq!(parse_occurrences("3/5").unwrap(), (3, 5));
        assert_eq!(parse_occurrences("10000/10000").unwrap(), (10000, 10000));
        assert_eq!(
            parse_occurrences("6/5").unwrap_err(),
            "invalid occurrences \"6/5\": N (6) must not be larger than M (5)"
        );
        assert_eq!(
            parse_occurrences("0/5").unwrap_err(),
            "invalid occurrences \"0/5\": N must be at least 1"
        );
        assert_eq!(
            parse_occurrences("1/10001").unwrap_err(),
            "invalid occurrences \"1/10001\": M must be at most 10000"
        );
        assert!(parse_occurrences("3 of 5").unwrap_err().contains("expected \"N/M\""));
        assert!(parse_occurrences("a/5").is_err());
    }
}
