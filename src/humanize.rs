//! Human-readable rendering of metric values by unit (`41.2%`, `1.5 GiB`, `12.0 MiB/s`).

use crate::metrics::Unit;

/// Renders `value` for people, in the metric's unit.
pub fn value(unit: Unit, value: f64) -> String {
    match unit {
        Unit::Percent | Unit::CorePercent => format!("{value:.1}%"),
        Unit::Bytes => bytes(value),
        Unit::BytesPerSec => format!("{}/s", bytes(value)),
        Unit::PerSec => format!("{}/s", trim(value)),
        Unit::Load => format!("{value:.2}"),
        Unit::Count => format!("{value:.0}"),
    }
}

/// How byte quantities are written: as a rule's threshold writes them, so a value and its
/// threshold read in the same unit family (`457.8 MiB < 500MB` becomes `480.0 MB < 500MB`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Style {
    /// `KiB`, `MiB`, `GiB` (×1024).
    #[default]
    Binary,
    /// `KB`, `MB`, `GB` (×1000).
    Decimal,
    /// Rates in bits: `bps`, `Kbps`, `Mbps`, `Gbps` (×1000).
    Bits,
}

impl Style {
    /// The style of a threshold's text (`> 800Mbps` → bits, `< 500MB` → decimal, `< 1GiB`
    /// or no unit → binary).
    pub fn of_threshold(text: &str) -> Style {
        if text.contains("bps") {
            Style::Bits
        } else if text.contains("iB") || !text.contains('B') {
            Style::Binary
        } else {
            Style::Decimal
        }
    }
}

/// Renders `value` for people in the metric's unit, byte quantities in `style`.
pub fn styled(unit: Unit, value: f64, style: Style) -> String {
    match (unit, style) {
        (Unit::Bytes, Style::Decimal) => decimal(value, &["B", "KB", "MB", "GB", "TB", "PB"]),
        (Unit::BytesPerSec, Style::Decimal) => {
            format!("{}/s", decimal(value, &["B", "KB", "MB", "GB", "TB", "PB"]))
        }
        (Unit::BytesPerSec, Style::Bits) => {
            decimal(value * 8.0, &["bps", "Kbps", "Mbps", "Gbps", "Tbps", "Pbps"])
        }
        _ => self::value(unit, value),
    }
}

/// `value` scaled by 1000 into `units`: `512 B`, `1.5 KB`, `800.0 Mbps`.
fn decimal(value: f64, units: &[&str; 6]) -> String {
    let mut v = value;
    let mut i = 0;
    while v.abs() >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 { format!("{v:.0} {}", units[0]) } else { format!("{v:.1} {}", units[i]) }
}

/// Binary-prefixed bytes: `512 B`, `1.5 KiB`, `3.2 GiB`.
pub fn bytes(value: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = value;
    let mut i = 0;
    while v.abs() >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 { format!("{v:.0} B") } else { format!("{v:.1} {}", UNITS[i]) }
}

/// A number with at most one decimal, none when it is whole.
fn trim(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// Rounds to three decimals, as stored in JSON samples (keeps lines short, loses nothing useful).
pub fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_each_unit() {
        assert_eq!(value(Unit::Percent, 41.23), "41.2%");
        assert_eq!(value(Unit::Bytes, 512.0), "512 B");
        assert_eq!(value(Unit::Bytes, 1536.0 * 1024.0 * 1024.0), "1.5 GiB");
        assert_eq!(value(Unit::BytesPerSec, 2048.0), "2.0 KiB/s");
        assert_eq!(value(Unit::PerSec, 3.0), "3/s");
        assert_eq!(value(Unit::PerSec, 3.25), "3.2/s");
        assert_eq!(value(Unit::Load, 0.5), "0.50");
        assert_eq!(value(Unit::Count, 42.0), "42");
        assert_eq!(round3(1.23456), 1.235);
    }

    #[test]
    fn values_follow_the_threshold_s_unit_family() {
        let mb = 480e6;
        assert_eq!(styled(Unit::Bytes, mb, Style::of_threshold("< 500MB")), "480.0 MB");
        assert_eq!(styled(Unit::Bytes, mb, Style::of_threshold("< 1GiB")), "457.8 MiB");
        let rate = 110e6;
        assert_eq!(styled(Unit::BytesPerSec, rate, Style::of_threshold("> 800Mbps")), "880.0 Mbps");
        assert_eq!(styled(Unit::BytesPerSec, rate, Style::of_threshold("> 100MB/s")), "110.0 MB/s");
        assert_eq!(
            styled(Unit::BytesPerSec, rate, Style::of_threshold("> 100MiB/s")),
            "104.9 MiB/s"
        );
        assert_eq!(styled(Unit::Percent, 41.23, Style::of_threshold("> 40")), "41.2%");
    }
}
