//! Human-readable rendering of metric values by unit (`41.2%`, `1.5 GiB`, `12.0 MiB/s`).

use crate::metrics::Unit;

/// Renders `value` for people, in the metric's unit.
pub fn value(unit: Unit, value: f64) -> String {
    match unit {
        Unit::Percent => format!("{value:.1}%"),
        Unit::Bytes => bytes(value),
        Unit::BytesPerSec => format!("{}/s", bytes(value)),
        Unit::PerSec => format!("{}/s", trim(value)),
        Unit::Load => format!("{value:.2}"),
        Unit::Count => format!("{value:.0}"),
    }
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
}
