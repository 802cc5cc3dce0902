//! Periodic reports: what the host did over a period (per metric group min/avg/p95/max and
//! the top series, from the history file) and what was told about it (alerts fired and
//! resolved with durations, time in alert per rule, alerts still firing, delivery failures,
//! from the events log).
//!
//! [`build`] makes a [`Report`] (plain data, serialised as the documented JSON shape);
//! `render` prints it as text, JSON or HTML; `slack` and `teams` build those channels' forms;
//! `schedule` decides when a configured report is due and remembers the last period sent in
//! `state_dir/reports.json`. A report travels to its channels as an
//! [`crate::event::AlertEvent`] of kind `report` carrying the [`Report`], through the same
//! outbox, journal and workers as alerts, so a channel that is down gets it later.
//!
//! Times are UTC, like every time hostwatch displays.
//!
//! Not for: deciding alerts, routing (a report goes to the channels its config names).

mod events;
pub(crate) mod render;
pub(crate) mod schedule;
#[cfg(feature = "slack")]
pub(crate) mod slack;
mod stats;
#[cfg(feature = "teams")]
pub(crate) mod teams;

use crate::metrics::Unit;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub(crate) use schedule::Scheduler;
pub(crate) use stats::{SeriesSlots, Slot};

/// One report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The configured report's name (`daily`), or `adhoc` for `hostwatch report`.
    pub name: String,
    /// The host it is about.
    pub host: String,
    /// Period start, inclusive (Unix seconds).
    pub since: f64,
    /// Period end, exclusive (Unix seconds).
    pub until: f64,
    /// When it was made (Unix seconds).
    pub generated: f64,
    /// Seconds per history slot (0: no history was read).
    #[serde(default)]
    pub resolution: u32,
    /// What the report could not include, for people (`no history file ...`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Metric groups (`cpu`, `load`, `mem`, `swap`, `disk`, `net`, `tcp`), catalogue order.
    #[serde(default)]
    pub groups: Vec<Group>,
    /// Alerts over the period.
    #[serde(default)]
    pub alerts: Alerts,
    /// Notifications given up on, per channel, over the period.
    #[serde(default)]
    pub delivery_failures: Vec<ChannelFailures>,
}

/// The metrics of one name prefix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// `cpu`, `mem`, `disk`, …
    pub name: String,
    /// Its metrics, catalogue order.
    pub metrics: Vec<MetricStats>,
}

/// One metric over every series of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricStats {
    /// `disk.used_percent`.
    pub metric: String,
    /// `percent`, `bytes`, `bytes/s`, `/s`, `load`, `count` (empty if unknown).
    pub unit: String,
    /// Series with data in the period.
    pub series: u32,
    /// Slots with data, over all series.
    pub slots: u32,
    /// Over every slot of every series.
    pub figures: Figures,
    /// `max` (highest maximum first) or `min` (lowest minimum first: `mem.available`,
    /// `disk.free`).
    pub top_by: String,
    /// The top series (at most 3; empty when the metric has a single series).
    pub top: Vec<SeriesStats>,
}

/// One series over the period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesStats {
    /// `disk.used_percent{mount=/}`.
    pub series: String,
    /// The label's value (`/`), if any.
    pub label: Option<String>,
    /// Its figures.
    pub figures: Figures,
}

/// Min, average, 95th percentile and max (and the last value), raw and for people.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// The lowest slot minimum.
    pub min: f64,
    /// The sample-weighted mean of the slots' averages.
    pub avg: f64,
    /// Nearest-rank 95th percentile of the slots' averages.
    pub p95: f64,
    /// The highest slot maximum.
    pub max: f64,
    /// The last value of the latest slot.
    #[serde(default)]
    pub last: Option<f64>,
    /// The same, rendered in the metric's unit (`41.2%`, `1.5 GiB`).
    pub text: FiguresText,
}

/// [`Figures`] for people.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FiguresText {
    pub min: String,
    pub avg: String,
    pub p95: String,
    pub max: String,
}

impl Figures {
    pub(crate) fn new(
        unit: Option<Unit>,
        min: f64,
        avg: f64,
        p95: f64,
        max: f64,
        last: Option<f64>,
    ) -> Figures {
        let show = |v: f64| match unit {
            Some(u) => crate::humanize::value(u, v),
            None => format!("{v:.2}"),
        };
        let r = crate::humanize::round3;
        Figures {
            min: r(min),
            avg: r(avg),
            p95: r(p95),
            max: r(max),
            last: last.map(r),
            text: FiguresText { min: show(min), avg: show(avg), p95: show(p95), max: show(max) },
        }
    }
}

/// Alerts over the period.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Alerts {
    /// Episodes that started firing in the period.
    pub fired: u32,
    /// Episodes that were resolved in the period.
    pub resolved: u32,
    /// Episodes still firing at the period's end.
    pub still_firing: u32,
    /// Episodes that overlap the period (all of them; `episodes` lists at most 50).
    pub episodes_total: u32,
    /// The episodes, longest time in the period first.
    pub episodes: Vec<Episode>,
    /// Per rule, time in alert within the period, most first.
    pub time_in_alert: Vec<RuleTime>,
}

/// One alert episode that overlaps the period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    pub rule: String,
    pub series: String,
    /// The highest severity it reached.
    pub severity: String,
    /// When it started firing (Unix seconds).
    pub started: f64,
    /// When it was resolved; `None`: still firing at the period's end.
    pub ended: Option<f64>,
    /// From its start to its end (or the period's end).
    pub duration_s: f64,
    /// The part of it within the period.
    pub in_period_s: f64,
    /// Notifications of it up to the period's end.
    pub notifications: u32,
}

/// Time in alert of one rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleTime {
    pub rule: String,
    /// Episodes of it that overlap the period.
    pub episodes: u32,
    /// Seconds any of its series was in alert within the period (summed over series).
    pub in_alert_s: f64,
}

/// Delivery failures of one channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelFailures {
    pub channel: String,
    /// `delivery_failed` records in the period.
    pub failures: u32,
    /// The last one's reason.
    pub last_reason: String,
    /// When the last one was (Unix seconds).
    pub last_ts: f64,
}

/// Builds the report of `[since, until)` from `state_dir`'s history file and events log.
/// A missing history file or events log is a note in the report, not an error; an events log
/// that cannot be read is.
pub(crate) fn build(
    state_dir: &Path,
    name: &str,
    since: f64,
    until: f64,
    host: &str,
) -> Result<Report, String> {
    let mut notes = Vec::new();
    let (resolution, series) = match history_slots(state_dir, since, until) {
        Ok(found) => found,
        Err(note) => {
            notes.push(note);
            (0, Vec::new())
        }
    };
    let records = events::read(state_dir)?;
    Ok(assemble(name, host, since, until, resolution, &series, &records, notes))
}

/// The report of already-read inputs.
#[allow(clippy::too_many_arguments)]
pub(crate) fn assemble(
    name: &str,
    host: &str,
    since: f64,
    until: f64,
    resolution: u32,
    series: &[SeriesSlots],
    records: &[serde_json::Value],
    notes: Vec<String>,
) -> Report {
    Report {
        name: name.to_string(),
        host: host.to_string(),
        since,
        until,
        generated: crate::humanize::round3(crate::timefmt::now_unix()),
        resolution,
        notes,
        groups: stats::groups(series),
        alerts: events::alerts(records, since, until),
        delivery_failures: events::failures(records, since, until),
    }
}

/// Every series' slots of `[since, until)` from the history file, with its resolution;
/// `Err` is a note for the report.
fn history_slots(
    state_dir: &Path,
    since: f64,
    until: f64,
) -> Result<(u32, Vec<SeriesSlots>), String> {
    history_reader::slots(state_dir, since, until)
}

mod history_reader {
    //! The bridge to the history file reader (`history::read`).
    use super::{SeriesSlots, Slot};
    use crate::history::read::{self, HistoryData};
    use std::path::Path;

    /// The slots of every series that overlap `[since, until)`.
    pub(super) fn slots(
        state_dir: &Path,
        since: f64,
        until: f64,
    ) -> Result<(u32, Vec<SeriesSlots>), String> {
        let path = read::path(state_dir);
        if !path.exists() {
            return Err(format!("no history file {} (is \"history\" off?)", path.display()));
        }
        let data = HistoryData::open(&path)?;
        let res = f64::from(data.resolution());
        // A series that left and came back may hold two columns: one series to the report.
        let mut by_key: std::collections::BTreeMap<String, Vec<Slot>> = Default::default();
        for c in data.series() {
            let slots = by_key.entry(c.key).or_default();
            for p in data.slots(c.column, since, until) {
                if p.start < until && p.start + res > since {
                    slots.push(p);
                }
            }
        }
        let series = by_key
            .into_iter()
            .map(|(key, mut slots)| {
                slots.sort_by(|a, b| a.start.total_cmp(&b.start));
                SeriesSlots { key, slots }
            })
            .collect();
        Ok((data.resolution(), series))
    }
}

/// The rule name reports carry in their event (`hostwatch.report`).
pub const REPORT_RULE: &str = "hostwatch.report";

/// The event that carries `report` through the outbox to its channels: kind `report`, key
/// `hostwatch.report:<name>:<period end in ms>` (the same period always has the same key).
pub(crate) fn to_event(report: Report) -> crate::event::AlertEvent {
    let key = format!("{REPORT_RULE}:{}:{}", report.name, (report.until * 1000.0).round() as i64);
    crate::event::AlertEvent {
        ts: report.until,
        host: report.host.clone(),
        rule: REPORT_RULE.to_string(),
        series: format!("{REPORT_RULE}{{report={}}}", report.name),
        metric: REPORT_RULE.to_string(),
        labels: std::collections::BTreeMap::from([("report".to_string(), report.name.clone())]),
        severity: crate::config::Severity::Warning,
        event: crate::alerts::EventKind::Report,
        value: None,
        value_text: report.alerts_line(),
        threshold: String::new(),
        since: report.since,
        seq: 1,
        episode_key: key.clone(),
        key,
        description: Some(format!("{}: {}", report.title(), report.period_text())),
        test: false,
        report: Some(Box::new(report)),
        context: Default::default(),
    }
}

/// `1d 2h`, `3h 20m`, `12m 5s`, `40s`.
pub(crate) fn duration_text(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) if sec == 0 => format!("{m}m"),
        (0, 0, _) => format!("{m}m {sec}s"),
        (0, _, 0) => format!("{h}h"),
        (0, _, _) => format!("{h}h {m}m"),
        (_, 0, _) => format!("{d}d"),
        _ => format!("{d}d {h}h"),
    }
}

impl Report {
    /// `hostwatch report daily for web-01` (raw text: each channel escapes it).
    pub fn title(&self) -> String {
        format!("hostwatch report {} for {}", self.name, self.host)
    }

    /// `2026-12-01T08:00:00Z to 2026-12-02T08:00:00Z (1d, UTC)`, or in another display zone
    /// `2026-12-01 09:00:00 CET to 2026-12-02 09:00:00 CET (1d)`.
    pub fn period_text(&self) -> String {
        let zone = crate::timefmt::display_zone();
        format!(
            "{} to {} ({}{})",
            crate::timefmt::human_in(&zone, self.since),
            crate::timefmt::human_in(&zone, self.until),
            duration_text(self.until - self.since),
            if zone.is_utc() { ", UTC" } else { "" }
        )
    }

    /// `3 alerts fired, 2 resolved, 1 still firing`.
    pub fn alerts_line(&self) -> String {
        let a = &self.alerts;
        format!(
            "{} alert{} fired, {} resolved, {} still firing",
            a.fired,
            if a.fired == 1 { "" } else { "s" },
            a.resolved,
            a.still_firing
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::Sample;
    use crate::metrics::Metric;
    use crate::series::Registry;
    use std::time::Duration;

    #[test]
    fn build_reads_a_history_file_and_the_events_log() {
        let dir = crate::testutil::tempdir("report", "build");
        let mut c = crate::config::load_str("{}", "test", &|_| None).unwrap();
        c.state_dir = dir.clone();
        c.interval = Duration::from_secs(10);
        let mut rec = crate::history::Recorder::open(&c, 6000.0).expect("history on");
        let mut reg = Registry::new();
        // An hour from t=7200: cpu.usage 0..=59 (one value a minute), two mounts.
        for i in 0..(360 + 6) {
            let ts = 7200.0 + 10.0 * f64::from(i);
            let minute = f64::from(i / 6);
            let mut s = Sample { unix_ts: ts, ..Sample::default() };
            s.points.push((reg.intern(Metric::CpuUsage, None), minute));
            s.points.push((reg.intern(Metric::DiskUsedPercent, Some("/")), 40.0));
            s.points
                .push((reg.intern(Metric::DiskUsedPercent, Some("/data")), 70.0 + minute / 10.0));
            rec.record(&reg, &s);
        }
        rec.flush();
        let firing = serde_json::json!({"type": "notification", "rule": "cpu", "series": "cpu.usage",
            "event": "firing", "ts": 8000.0, "since": 8000.0, "severity": "warning", "episode_key": "k"});
        let mut log = crate::eventlog::EventLog::new(&dir);
        log.append(&firing);
        let r = build(&dir, "daily", 7200.0, 10_800.0, "h").unwrap();
        assert_eq!(r.resolution, 60);
        assert!(r.notes.is_empty(), "{:?}", r.notes);
        let cpu = &r.groups[0].metrics[0];
        assert_eq!((cpu.metric.as_str(), cpu.slots), ("cpu.usage", 60));
        let f = &cpu.figures;
        assert_eq!((f.min, f.avg, f.p95, f.max), (0.0, 29.5, 56.0, 59.0));
        let disk = &r.groups[1].metrics[0];
        assert_eq!((disk.series, disk.top[0].label.as_deref()), (2, Some("/data")));
        assert_eq!(disk.top[0].figures.max, 75.9);
        assert_eq!((r.alerts.fired, r.alerts.still_firing), (1, 1));
        assert_eq!(r.alerts.time_in_alert[0].in_alert_s, 2800.0);
        // Without a history file: a note, and the alerts still.
        std::fs::remove_file(crate::history::read::path(&dir)).unwrap();
        let r = build(&dir, "daily", 7200.0, 10_800.0, "h").unwrap();
        assert!(r.groups.is_empty() && r.notes[0].contains("no history file"));
        assert_eq!(r.alerts.fired, 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_report_event_reads_as_a_report_to_exec_hooks_plugins_and_the_log() {
        // SUMMARY (exec hooks), the plugin ABI's `summary` and the log line use this: a
        // report must not read as `WARNING report hostwatch.report ...`.
        let e = to_event(render::tests::sample());
        let s = e.summary();
        assert!(s.starts_with("REPORT hostwatch report daily for "), "{s}");
        assert!(!s.contains("WARNING") && s.contains("still firing") && s.contains("UTC"), "{s}");
        assert_eq!(e.headline(), e.report.as_ref().unwrap().title());
    }

    #[test]
    fn durations_read_well() {
        let cases = [
            (0.0, "0s"),
            (40.0, "40s"),
            (600.0, "10m"),
            (725.0, "12m 5s"),
            (3600.0, "1h"),
            (12_000.0, "3h 20m"),
            (86_400.0, "1d"),
            (93_600.0, "1d 2h"),
        ];
        for (s, want) in cases {
            assert_eq!(duration_text(s), want);
        }
    }
}
