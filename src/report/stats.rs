//! The metric half of a report: per series and per metric min/avg/p95/max over a period's
//! history slots, the top series of each metric, and the metric groups (`cpu`, `mem`, `disk`,
//! … by the metric name's prefix).
//!
//! Plain data in, plain data out: the slots come from the history file (`report::build`), so
//! this is unit-tested on vectors. The p95 is the nearest-rank 95th percentile of the slots'
//! averages (per resolution slot, not per raw sample: the history keeps no more than that).
//!
//! Not for: reading files or rendering.

use super::{Figures, Group, MetricStats, SeriesStats};
use crate::metrics::{Metric, Unit};
use crate::series::parse_series_key;
use std::collections::BTreeMap;

/// Top series listed per metric.
pub(crate) const TOP: usize = 3;

/// One history slot of one series: the history reader's own.
pub(crate) use crate::history::read::SlotPoint as Slot;

/// True when a slot has values to count (a sealed slot whose cells are all finite).
fn usable(s: &Slot) -> bool {
    s.count > 0 && s.min.is_finite() && s.avg.is_finite() && s.max.is_finite()
}

/// The slots of one series over the period.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SeriesSlots {
    /// `disk.used_percent{mount=/}`.
    pub key: String,
    /// By start, ascending.
    pub slots: Vec<Slot>,
}

/// Running aggregate over slots.
#[derive(Default)]
struct Acc {
    min: f64,
    max: f64,
    sum: f64,
    weight: f64,
    avgs: Vec<f64>,
    last: Option<(f64, f64)>,
}

impl Acc {
    fn add(&mut self, s: &Slot) {
        if self.avgs.is_empty() {
            self.min = s.min;
            self.max = s.max;
        } else {
            self.min = self.min.min(s.min);
            self.max = self.max.max(s.max);
        }
        let w = f64::from(s.count.max(1));
        self.sum += s.avg * w;
        self.weight += w;
        self.avgs.push(s.avg);
        if s.last.is_finite() && self.last.is_none_or(|(t, _)| s.start >= t) {
            self.last = Some((s.start, s.last));
        }
    }

    fn figures(&mut self, unit: Option<Unit>) -> Option<Figures> {
        if self.avgs.is_empty() {
            return None;
        }
        let avg = self.sum / self.weight;
        let p95 = p95(&mut self.avgs);
        Some(Figures::new(unit, self.min, avg, p95, self.max, self.last.map(|(_, v)| v)))
    }
}

/// Nearest-rank 95th percentile (sorts `values`); `values` is not empty.
pub(crate) fn p95(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = (0.95 * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// Metrics whose low values are the bad ones: their top series are the lowest minimums.
fn low_is_bad(metric: &str) -> bool {
    matches!(metric, "mem.available" | "disk.free")
}

/// The metric groups of `series`, in the catalogue's order (metrics the catalogue does not
/// know last, by name); series without a usable slot are left out.
pub(crate) fn groups(series: &[SeriesSlots]) -> Vec<Group> {
    // metric name → (its accumulator, per-series figures)
    let mut per_metric: BTreeMap<String, (Acc, Vec<SeriesStats>)> = BTreeMap::new();
    for s in series {
        let (metric, label) = match parse_series_key(&s.key) {
            Ok((m, l)) => (m.name().to_string(), l.map(str::to_string)),
            Err(_) => match s.key.split_once('{') {
                Some((m, _)) => (m.to_string(), None),
                None => (s.key.clone(), None),
            },
        };
        let unit = Metric::parse(&metric).map(Metric::unit);
        let mut own = Acc::default();
        let entry = per_metric.entry(metric).or_default();
        for slot in s.slots.iter().filter(|s| usable(s)) {
            own.add(slot);
            entry.0.add(slot);
        }
        if let Some(figures) = own.figures(unit) {
            entry.1.push(SeriesStats { series: s.key.clone(), label, figures });
        }
    }
    let order =
        |name: &str| Metric::ALL.iter().position(|m| m.name() == name).unwrap_or(usize::MAX);
    let mut metrics: Vec<(String, (Acc, Vec<SeriesStats>))> =
        per_metric.into_iter().filter(|(_, (_, s))| !s.is_empty()).collect();
    metrics.sort_by(|a, b| order(&a.0).cmp(&order(&b.0)).then_with(|| a.0.cmp(&b.0)));
    let mut groups: Vec<Group> = Vec::new();
    for (name, (mut acc, mut series)) in metrics {
        let metric = Metric::parse(&name);
        let Some(figures) = acc.figures(metric.map(Metric::unit)) else { continue };
        let low = low_is_bad(&name);
        if low {
            series.sort_by(|a, b| a.figures.min.total_cmp(&b.figures.min));
        } else {
            series.sort_by(|a, b| b.figures.max.total_cmp(&a.figures.max));
        }
        let count = series.len() as u32;
        series.truncate(TOP);
        let stats = MetricStats {
            metric: name.clone(),
            unit: metric.map_or("", |m| m.unit().as_str()).to_string(),
            series: count,
            slots: acc.avgs.len() as u32,
            figures,
            top_by: if low { "min" } else { "max" }.to_string(),
            // One series is its metric: no top list to repeat it.
            top: if count > 1 { series } else { Vec::new() },
        };
        let group = name.split('.').next().unwrap_or(&name).to_string();
        match groups.last_mut() {
            Some(g) if g.name == group => g.metrics.push(stats),
            _ => groups.push(Group { name: group, metrics: vec![stats] }),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(start: f64, min: f64, avg: f64, max: f64) -> Slot {
        Slot { start, min, avg, max, last: avg, count: 12, partial: false }
    }

    fn series(key: &str, avgs: &[f64]) -> SeriesSlots {
        SeriesSlots {
            key: key.to_string(),
            slots: avgs
                .iter()
                .enumerate()
                .map(|(i, &a)| slot(i as f64 * 60.0, a - 1.0, a, a + 1.0))
                .collect(),
        }
    }

    #[test]
    fn p95_is_the_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(p95(&mut v), 95.0);
        let mut v: Vec<f64> = (1..=20).rev().map(f64::from).collect();
        assert_eq!(p95(&mut v), 19.0);
        assert_eq!(p95(&mut [7.0]), 7.0);
    }

    #[test]
    fn figures_per_series_and_metric() {
        let avgs: Vec<f64> = (1..=100).map(f64::from).collect();
        let g = groups(&[series("cpu.usage", &avgs)]);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].name, "cpu");
        let m = &g[0].metrics[0];
        assert_eq!((m.metric.as_str(), m.series, m.slots), ("cpu.usage", 1, 100));
        let f = &m.figures;
        assert_eq!((f.min, f.avg, f.p95, f.max, f.last), (0.0, 50.5, 95.0, 101.0, Some(100.0)));
        assert_eq!(f.text.p95, "95.0%");
        assert!(m.top.is_empty(), "a single series has no top list");
    }

    #[test]
    fn top_series_by_max_and_by_min_where_low_is_bad() {
        let g = groups(&[
            series("disk.used_percent{mount=/}", &[10.0, 20.0]),
            series("disk.used_percent{mount=/data}", &[90.0, 95.0]),
            series("disk.used_percent{mount=/boot}", &[50.0]),
            series("disk.used_percent{mount=/srv}", &[5.0]),
            series("disk.free{mount=/}", &[5e9]),
            series("disk.free{mount=/data}", &[1e9]),
            series("cpu.usage", &[10.0]),
        ]);
        let names: Vec<&str> = g.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["cpu", "disk"]);
        let used = &g[1].metrics[0];
        assert_eq!(used.metric, "disk.used_percent");
        assert_eq!(used.series, 4);
        let top: Vec<&str> = used.top.iter().map(|s| s.label.as_deref().unwrap()).collect();
        assert_eq!(top, ["/data", "/boot", "/"]);
        // The metric's average weighs every slot alike: (10+20+90+95+50+5)/6.
        assert_eq!(used.figures.avg, 45.0);
        assert_eq!((used.figures.min, used.figures.max), (4.0, 96.0));
        let free = &g[1].metrics[1];
        assert_eq!((free.metric.as_str(), free.top_by.as_str()), ("disk.free", "min"));
        assert_eq!(free.top[0].label.as_deref(), Some("/data"));
    }

    #[test]
    fn empty_and_unusable_slots_are_left_out() {
        let mut s = series("mem.used_percent", &[f64::NAN, 40.0]);
        s.slots.push(Slot { count: 0, ..slot(120.0, 1.0, 1.0, 1.0) });
        let g = groups(&[s, series("load.1", &[])]);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].metrics[0].slots, 1);
        assert_eq!(g[0].metrics[0].figures.avg, 40.0);
    }
}
