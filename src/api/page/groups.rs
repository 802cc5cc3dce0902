//! The metric groups of the status page: one table per group (a metric name's prefix before
//! the first dot: cpu, load, mem, swap, disk, net, tcp), in catalogue order, live series only.
//!
//! Layout of a table: the group's unlabelled series first (`cpu.usage`); then, per label
//! key, either one row per thing when a single metric of the group carries that key
//! (`core 3`), or one block per thing (`iface eth0`) holding a row per metric (`rx_rate`,
//! `tx_rate`, …). Each row has the latest value and a chart of the recent values. Series that
//! were zero (or had no value) over the whole window and have no alert fold into one line per
//! block, so idle interfaces and error counters do not bury the rest.
//!
//! Contract: labels go through [`Esc`]; nothing is allocated per point beyond the humanized
//! numbers. The work is linear in the series and alerts (a host with a thousand mounts costs a
//! thousand times one mount, not a million): the alerted series are looked up in one map
//! built per page, and the series of a labelled group are split by thing in one pass.
//! Not for: the rest of the page (`page`), the charts themselves (`svg`).

use super::html::{Dur, Esc, value_into};
use super::svg;
use crate::api::daily::{Charts, Day};
use crate::api::view::{SeriesRow, View};
use crate::metrics::{LabelKey, Metric};
use std::collections::HashMap;
use std::fmt::Write;

/// The heading of a metric group.
pub(super) fn title(prefix: &str) -> &str {
    match prefix {
        "cpu" => "CPU",
        "load" => "Load",
        "mem" => "Memory",
        "swap" => "Swap",
        "disk" => "Disks",
        "net" => "Network",
        "tcp" => "TCP",
        "proc" => "Processes",
        other => other,
    }
}

/// The group of a metric: its name's prefix before the first dot.
pub(super) fn prefix(m: Metric) -> &'static str {
    let name = m.name();
    name.split_once('.').map_or(name, |(p, _)| p)
}

/// What a table is being drawn from.
struct Group<'a> {
    view: &'a View,
    /// Series key → true while an alert on it fires, false while one is only pending.
    alerted: &'a HashMap<&'a str, bool>,
    prefix: &'static str,
    /// Ticks the charts span.
    slots: usize,
    /// Seconds the charts span.
    span: f64,
    /// The 24-hour charts, when the history file could be read (a fourth column).
    day: Option<&'a Day>,
}

/// How the rows of a block are named.
#[derive(Clone, Copy)]
enum Naming {
    /// By the full metric name (unlabelled series).
    Metric,
    /// By the thing measured (`/home`, `core 3`), the metric underneath.
    Thing,
    /// By the metric name without the group prefix (`rx_rate`), under a thing's heading.
    Short,
}

impl Group<'_> {
    /// The live series of this group with label key `key`, by metric in catalogue order.
    fn rows(&self, key: Option<LabelKey>) -> Vec<&SeriesRow> {
        let mut rows: Vec<&SeriesRow> = self
            .view
            .series
            .iter()
            .filter(|s| s.live && prefix(s.metric) == self.prefix && s.metric.label_key() == key)
            .collect();
        rows.sort_by_key(|r| catalogue_index(r.metric)); // stable: discovery order within
        rows
    }

    /// `Some(true)` while an alert on `row` fires, `Some(false)` while one is pending.
    fn alerted(&self, row: &SeriesRow) -> Option<bool> {
        self.alerted.get(&*row.key).copied()
    }

    /// True when `row` was zero at every tick it had a value (it had one at least) and no
    /// alert is on it.
    fn quiet(&self, row: &SeriesRow) -> bool {
        let mut seen = false;
        for v in row.recent.iter().filter(|v| v.is_finite()) {
            if v != 0.0 {
                return false;
            }
            seen = true;
        }
        seen && (row.value == 0.0 || row.value.is_nan()) && self.alerted(row).is_none()
    }

    /// Writes the rows of one block, the quiet ones folded into a last line.
    fn block(&self, out: &mut String, rows: &[&SeriesRow], naming: Naming) {
        for row in rows.iter().filter(|r| !self.quiet(r)) {
            self.row(out, row, naming);
        }
        let mut quiet = rows.iter().filter(|r| self.quiet(r)).peekable();
        if quiet.peek().is_none() {
            return;
        }
        let _ = write!(
            out,
            "<tr class=\"zero\"><td colspan=\"{}\">zero for the last {}: ",
            self.columns(),
            Dur(self.span)
        );
        for (i, row) in quiet.enumerate() {
            out.push_str(if i == 0 { "<code>" } else { ", <code>" });
            name_text(out, row, naming);
            out.push_str("</code>");
        }
        out.push_str("</td></tr>");
    }

    /// One series: its name, latest value and chart; marked while an alert on it is pending
    /// or firing.
    fn row(&self, out: &mut String, row: &SeriesRow, naming: Naming) {
        let class = match self.alerted(row) {
            Some(true) => " class=\"hot\"",
            Some(false) => " class=\"warm\"",
            None => "",
        };
        let help = Esc(row.metric.help());
        let _ = write!(out, "<tr{class}><td class=\"name\">");
        match (naming, row.metric.label_key()) {
            (Naming::Thing, Some(key)) => {
                out.push_str("<div class=\"lbl\">");
                name_text(out, row, naming);
                let _ = write!(
                    out,
                    "</div><div class=\"sub\" title=\"{help}\">{} · {}</div>",
                    Esc(row.metric.name()),
                    key.as_str()
                );
            }
            _ => {
                let _ = write!(out, "<div title=\"{help}\">");
                name_text(out, row, naming);
                out.push_str("</div>");
            }
        }
        out.push_str("</td><td class=\"num\">");
        value_into(out, row.metric.unit(), row.value);
        out.push_str("</td><td class=\"spark\">");
        let (unit, len) = (row.metric.unit(), row.recent.len());
        svg::chart(out, unit, || row.recent.iter(), len, self.slots, &row.key);
        if let Some(day) = self.day {
            out.push_str("</td><td class=\"spark\">");
            let avg = day.series.get(&*row.key).map_or(&[][..], |s| &s.avg[..]);
            let title = format!("{} · last 24 h", row.key);
            svg::chart(out, unit, || avg.iter().copied(), avg.len(), day.buckets, &title);
        }
        out.push_str("</td></tr>");
    }
}

/// The position of `m` in the catalogue (the order of rows within a block).
fn catalogue_index(m: Metric) -> usize {
    Metric::ALL.iter().position(|&o| o == m).unwrap_or(usize::MAX)
}

/// Appends the escaped name of `row` as `naming` says.
fn name_text(out: &mut String, row: &SeriesRow, naming: Naming) {
    let name = row.metric.name();
    match (naming, row.metric.label_key(), row.label.as_deref()) {
        (Naming::Thing, Some(LabelKey::Core), Some(l)) => {
            let _ = write!(out, "core {}", Esc(l));
        }
        (Naming::Thing, _, Some(l)) => {
            let _ = write!(out, "{}", Esc(l));
        }
        (Naming::Short, ..) => breakable(out, name.split_once('.').map_or(name, |x| x.1)),
        _ => breakable(out, name),
    }
}

/// Appends a metric name escaped, with a line-break opportunity after each `.` and `_`
/// (`mem.used_percent` wraps as `mem.used_` / `percent` on a phone, not mid-word).
fn breakable(out: &mut String, name: &str) {
    for part in name.split_inclusive(['.', '_']) {
        let _ = write!(out, "{}", Esc(part));
        if part.ends_with(['.', '_']) {
            out.push_str("<wbr>");
        }
    }
}

/// Writes one table per metric group that has a live series, then the metrics this host
/// cannot provide.
pub(super) fn groups(out: &mut String, view: &View, charts: Option<&Charts>) {
    let slots = view.recent_ts.len();
    let span = match (view.recent_ts.first(), view.recent_ts.last()) {
        (Some(a), Some(b)) if slots > 1 => b - a,
        _ => 0.0,
    };
    let mut alerted: HashMap<&str, bool> = HashMap::with_capacity(view.alerts.len());
    for a in &view.alerts {
        let firing = alerted.entry(&*a.series).or_insert(false);
        *firing |= a.firing();
    }
    let alerted = &alerted;
    let day = match charts {
        Some(Charts::Ready(day)) => Some(day),
        Some(Charts::Unavailable(why)) => {
            let _ = write!(out, "<p class=\"mute\">No 24-hour charts: {}.</p>", Esc(why));
            None
        }
        None => None,
    };
    for (i, &m) in Metric::ALL.iter().enumerate() {
        let p = prefix(m);
        if Metric::ALL[..i].iter().any(|&o| prefix(o) == p) {
            continue; // the group was written with its first metric
        }
        let g = Group { view, alerted, prefix: p, slots, span, day };
        if !view.series.iter().any(|s| s.live && prefix(s.metric) == p) {
            continue;
        }
        let _ = write!(
            out,
            "<section class=\"group\" id=\"g-{p}\"><h2>{}</h2><div class=\"scroll\"><table>\
             <thead><tr><th>series</th><th class=\"num\">latest</th><th>last {}</th>{}</tr>\
             </thead><tbody>",
            Esc(title(p)),
            Dur(span),
            if day.is_some() { "<th>last 24 h</th>" } else { "" },
        );
        g.block(out, &g.rows(None), Naming::Metric);
        for key in LabelKey::ALL {
            let metrics =
                Metric::ALL.iter().filter(|&&o| prefix(o) == p && o.label_key() == Some(key));
            match metrics.count() {
                0 => {}
                1 => g.block(out, &g.rows(Some(key)), Naming::Thing),
                _ => g.things(out, key),
            }
        }
        out.push_str("</tbody></table></div></section>");
    }
    if !view.unsupported.is_empty() {
        out.push_str("<p class=\"mute\">Not available on this host: ");
        for (i, m) in view.unsupported.iter().enumerate() {
            let _ = write!(out, "{}<code>{}</code>", if i == 0 { "" } else { ", " }, m.name());
        }
        out.push_str(".</p>");
    }
}

impl Group<'_> {
    /// Columns of the table.
    fn columns(&self) -> usize {
        if self.day.is_some() { 4 } else { 3 }
    }

    /// One block per thing labelled `key` (in the order the things were discovered), under
    /// a heading naming it.
    fn things(&self, out: &mut String, key: LabelKey) {
        // One pass: each thing's rows (by metric in catalogue order), things in discovery order.
        let mut things: Vec<(&str, Vec<&SeriesRow>)> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        let of_key = |s: &&SeriesRow| {
            s.live && prefix(s.metric) == self.prefix && s.metric.label_key() == Some(key)
        };
        for row in self.view.series.iter().filter(of_key) {
            let Some(label) = row.label.as_deref() else { continue };
            let at = *index.entry(label).or_insert_with(|| {
                things.push((label, Vec::new()));
                things.len() - 1
            });
            things[at].1.push(row);
        }
        for (label, rows) in &mut things {
            rows.sort_by_key(|r| catalogue_index(r.metric)); // stable: discovery order within
            let _ = write!(
                out,
                "<tr class=\"thing\"><th colspan=\"{}\"><span class=\"mute\">{}</span> \
                 <span class=\"lbl\">{}</span></th></tr>",
                self.columns(),
                key.as_str(),
                Esc(label)
            );
            self.block(out, rows, Naming::Short);
        }
    }
}
