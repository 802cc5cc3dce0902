//! The status page's inline SVG sparkline: one series' recent values as a path (a gap where a
//! tick had no value, a dot for a value alone between gaps), two grid lines and the axis'
//! top and bottom values as labels.
//!
//! Contract: the chart is built from numbers only (coordinates written with `write!`, one
//! decimal); its only text, the axis labels, goes through [`Esc`]. Nothing is allocated per
//! point. The y axis runs 0..100 for percentages and from min(0, lowest) to the highest value
//! otherwise; x spreads `slots` ticks over the width, the newest at the right, so rows of one
//! page line up in time.
//!
//! Not for: choosing what to chart (`page`).

use super::html::{Esc, value_into};
use crate::metrics::Unit;
use std::fmt::Write;

/// Width of the plot area (the labels sit to its right).
const PLOT_W: f64 = 140.0;
/// Width of the whole chart.
const W: f64 = 206.0;
/// Height of the chart.
const H: f64 = 40.0;
/// Top and bottom margin of the plot area.
const PAD: f64 = 5.0;

/// The y range the chart of `values` shows.
pub(crate) fn domain(unit: Unit, values: impl Iterator<Item = f32>) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(f64::from(v));
        hi = hi.max(f64::from(v));
    }
    if !lo.is_finite() {
        return None;
    }
    if unit == Unit::Percent {
        return Some((lo.min(0.0), hi.max(100.0)));
    }
    let lo = lo.min(0.0);
    if hi <= lo {
        // A flat line at zero: give it a range so it draws at the bottom.
        return Some((lo, lo + 1.0));
    }
    Some((lo, hi))
}

/// Appends the chart of the `len` values `values()` yields (oldest first, NaN = no value) as
/// the newest of `slots` ticks, in `unit`; `title` is the chart's accessible name (escaped
/// here). `values` is called twice (the range, then the path).
pub(crate) fn chart<I: Iterator<Item = f32>>(
    out: &mut String,
    unit: Unit,
    values: impl Fn() -> I,
    len: usize,
    slots: usize,
    title: &str,
) {
    let _ = write!(
        out,
        "<svg class=\"chart\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\">\
         <title>{}</title>\
         <line class=\"grid\" x1=\"0\" y1=\"{PAD}\" x2=\"{PLOT_W}\" y2=\"{PAD}\"/>\
         <line class=\"grid\" x1=\"0\" y1=\"{b}\" x2=\"{PLOT_W}\" y2=\"{b}\"/>",
        Esc(title),
        b = H - PAD,
    );
    let Some((lo, hi)) = domain(unit, values()) else {
        let _ = write!(
            out,
            "<text class=\"none\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">no data yet</text></svg>",
            PLOT_W / 2.0,
            H / 2.0 + 3.0
        );
        return;
    };
    let slots = slots.max(len).max(1);
    let first_slot = slots - len;
    let x_of = |i: usize| {
        if slots == 1 { PLOT_W } else { (first_slot + i) as f64 * PLOT_W / (slots - 1) as f64 }
    };
    let y_of = |v: f64| PAD + (hi - v) / (hi - lo) * (H - 2.0 * PAD);

    out.push_str("<path class=\"line\" d=\"");
    let mut run = 0usize;
    let mut last = None;
    for (i, v) in values().enumerate() {
        if !v.is_finite() {
            if run == 1 {
                out.push_str("h0");
            }
            run = 0;
            continue;
        }
        let (x, y) = (x_of(i), y_of(f64::from(v)));
        let _ = write!(out, "{}{x:.1} {y:.1}", if run == 0 { 'M' } else { 'L' });
        run += 1;
        last = Some((x, y));
    }
    if run == 1 {
        out.push_str("h0");
    }
    out.push_str("\"/>");
    if let Some((x, y)) = last {
        let _ = write!(out, "<circle class=\"dot\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2\"/>");
    }
    let _ = write!(out, "<text x=\"{W}\" y=\"{}\" text-anchor=\"end\">", PAD + 4.0);
    value_into(out, unit, hi);
    let _ = write!(out, "</text><text x=\"{W}\" y=\"{}\" text-anchor=\"end\">", H - PAD + 2.0);
    value_into(out, unit, lo);
    out.push_str("</text></svg>");
}
