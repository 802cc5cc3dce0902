//! When a configured report is due, and the memory of what was sent
//! (`state_dir/reports.json`, written atomically: temp file + rename).
//!
//! Periods are aligned to the Unix epoch (midnight UTC) plus `at`, in steps of `every`: a
//! period ends at `at + k·every`. A report is due once its latest completed period is later
//! than the last one sent, and `settle` after that period's end (so the history file holds
//! the period's last slot). However long the daemon was down, it sends ONE report at start,
//! for the latest completed period, never one per missed period. A report configured for the
//! first time (or whose `every`/`at` changed) starts with the next period end: no report of a
//! period before it existed. A wall clock that steps back sends nothing until it passes the
//! last period sent again.
//!
//! The decision is a plain function of explicit times ([`Scheduler::due`]); the daemon calls
//! [`Scheduler::enqueue_due`] once per tick, which returns at once until the precomputed
//! next due time, builds a due report on a thread (reading the history file is not for the
//! loop) and enqueues it at a later tick, once built.
//!
//! Not for: building or rendering a report.

use crate::config::{Config, ReportConfig};
use crate::notify::delivery::Dispatcher;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// The file's name in `state_dir`.
pub(crate) const FILE: &str = "reports.json";

/// What was sent, per report name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Saved {
    #[serde(default)]
    reports: BTreeMap<String, SavedReport>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct SavedReport {
    /// The period length and alignment the period was computed with.
    every_s: u64,
    offset_s: u64,
    /// The end of the last period sent (Unix seconds).
    last_end: f64,
}

/// The latest period `[start, end)` of length `every_s`, aligned at `offset_s` past the
/// epoch, that ended at or before `now`.
pub(crate) fn latest_completed(every_s: u64, offset_s: u64, now: f64) -> (f64, f64) {
    let every = every_s.max(1) as f64;
    let offset = (offset_s % every_s.max(1)) as f64;
    let end = ((now - offset) / every).floor() * every + offset;
    (end - every, end)
}

/// A finished build: the report's config, its period end, the report or why not.
type Built = (ReportConfig, f64, Result<super::Report, String>);

/// The configured reports of one state directory and when each is next due.
pub(crate) struct Scheduler {
    path: PathBuf,
    reports: Vec<ReportConfig>,
    saved: Saved,
    settle: f64,
    next_due: f64,
    /// Sent but not yet written to `reports.json`.
    dirty: bool,
    /// Periods claimed for a build that has not been enqueued yet, per report name: the
    /// end of the latest. Kept in memory only, so `reports.json` never records a period
    /// whose report is not in the outbox (a crash while it builds sends it after the
    /// restart rather than never).
    claimed: BTreeMap<String, f64>,
    /// Reports being built, each on its thread.
    building: Vec<mpsc::Receiver<Built>>,
}

impl Scheduler {
    /// The reports of `config`, with what `reports.json` says was sent; `now` is the wall
    /// time (Unix seconds).
    pub(crate) fn new(config: &Config, now: f64) -> Scheduler {
        let path = config.state_dir.join(FILE);
        let saved = load(&path);
        let mut s = Scheduler {
            path,
            reports: Vec::new(),
            saved,
            settle: 0.0,
            next_due: f64::INFINITY,
            dirty: false,
            claimed: BTreeMap::new(),
            building: Vec::new(),
        };
        s.configure(config, now);
        s
    }

    /// Takes a reloaded config (new reports start with their next period).
    pub(crate) fn configure(&mut self, config: &Config, now: f64) {
        self.reports = config.reports.clone();
        let resolution = config.history.file.as_ref().map_or(0.0, |f| f.resolution.as_secs_f64());
        self.settle = resolution + config.interval.as_secs_f64();
        for r in &self.reports {
            let (every_s, offset_s) = r.alignment();
            let fresh = match self.saved.reports.get(&r.name) {
                Some(s) => {
                    s.every_s != every_s || s.offset_s != offset_s || !s.last_end.is_finite()
                }
                None => true,
            };
            if fresh {
                let (_, end) = latest_completed(every_s, offset_s, now - self.settle);
                self.saved
                    .reports
                    .insert(r.name.clone(), SavedReport { every_s, offset_s, last_end: end });
                self.dirty = true;
            }
        }
        self.plan();
    }

    /// The next time anything is due (wall seconds; infinite without reports).
    #[cfg(test)]
    pub(crate) fn next_due(&self) -> f64 {
        self.next_due
    }

    fn plan(&mut self) {
        self.next_due = self
            .reports
            .iter()
            .filter_map(|r| self.saved.reports.get(&r.name).map(|s| (r, s)))
            .map(|(r, s)| {
                let every = r.alignment().0 as f64;
                let claimed = self.claimed.get(&r.name).copied().unwrap_or(f64::NEG_INFINITY);
                s.last_end.max(claimed) + every + self.settle
            })
            .fold(f64::INFINITY, f64::min);
    }

    /// The reports due at `now` with their period `[start, end)` (one per report, for its
    /// latest completed period), each claimed in memory so it is not due again; only
    /// [`Scheduler::sent`] records it for `reports.json`.
    pub(crate) fn due(&mut self, now: f64) -> Vec<(ReportConfig, f64, f64)> {
        if now < self.next_due {
            return Vec::new();
        }
        let mut out = Vec::new();
        for r in &self.reports {
            let (every_s, offset_s) = r.alignment();
            let (start, end) = latest_completed(every_s, offset_s, now - self.settle);
            let Some(saved) = self.saved.reports.get(&r.name) else { continue };
            let claimed = self.claimed.get(&r.name).copied().unwrap_or(f64::NEG_INFINITY);
            if end > saved.last_end.max(claimed) {
                self.claimed.insert(r.name.clone(), end);
                out.push((r.clone(), start, end));
            }
        }
        self.plan();
        out
    }

    /// Records that the report `r` of the period ending at `end` is in the outbox (or was
    /// given up on): the next [`Scheduler::save`] writes it. A report whose `every`/`at`
    /// changed while it was built does not move the new alignment's memory.
    pub(crate) fn sent(&mut self, r: &ReportConfig, end: f64) {
        let (every_s, offset_s) = r.alignment();
        if let Some(saved) = self.saved.reports.get_mut(&r.name)
            && saved.every_s == every_s
            && saved.offset_s == offset_s
            && end > saved.last_end
        {
            saved.last_end = end;
            self.dirty = true;
        }
        if self.claimed.get(&r.name).is_some_and(|&c| c <= end) {
            self.claimed.remove(&r.name);
        }
        self.plan();
    }

    /// Daemon, once per tick: starts building each report due at the wall time now on a
    /// thread of its own (reading the history file takes a while: never on the loop), and
    /// puts the reports whose build finished in the outbox for their channels (saved and
    /// handed off by the tick's commit). Returns true when it enqueued one (or gave one up);
    /// call [`Scheduler::save`] after that commit, and only if it saved, so a crash in
    /// between sends a report twice rather than never. A report still building is only
    /// claimed in memory: a save meanwhile (another report's) does not record it as sent.
    /// Costs a comparison when nothing is due or building.
    pub(crate) fn enqueue_due(&mut self, config: &Config, dispatcher: &mut Dispatcher) -> bool {
        let mut enqueued = false;
        if !self.building.is_empty() {
            for rx in std::mem::take(&mut self.building) {
                match rx.try_recv() {
                    Ok((r, end, Ok(report))) => {
                        log::info!(report = r.name.as_str(), channels = r.channels.join(",");
                            "report {}: {}", r.name, report.period_text());
                        dispatcher.enqueue_report(super::to_event(report), &r.channels);
                        self.sent(&r, end);
                        enqueued = true;
                    }
                    Ok((r, end, Err(e))) => {
                        log::error!(report = r.name.as_str(); "report {} not sent: {e}", r.name);
                        self.sent(&r, end);
                        enqueued = true;
                    }
                    Err(mpsc::TryRecvError::Empty) => self.building.push(rx),
                    Err(mpsc::TryRecvError::Disconnected) => {
                        log::error!("a report build stopped without a result; not sent")
                    }
                }
            }
        }
        let now = crate::timefmt::now_unix();
        if now < self.next_due {
            return enqueued;
        }
        for (r, start, end) in self.due(now) {
            let (tx, rx) = mpsc::channel();
            let (dir, host) = (config.state_dir.clone(), config.host.clone());
            let name = r.name.clone();
            let spawned =
                std::thread::Builder::new().name("hostwatch-report".into()).spawn(move || {
                    let built = super::build(&dir, &r.name, start, end, &host);
                    let _ = tx.send((r, end, built));
                });
            match spawned {
                Ok(_) => self.building.push(rx),
                Err(e) => {
                    log::error!(report = name.as_str(); "report {name} not sent: cannot start its thread: {e}")
                }
            }
        }
        enqueued
    }

    /// Writes `reports.json` if something changed since the last write.
    pub(crate) fn save(&mut self) {
        if !self.dirty {
            return;
        }
        let bytes = serde_json::to_vec_pretty(&self.saved).unwrap_or_default();
        match crate::state::write_atomic(&self.path, &bytes) {
            Ok(()) => self.dirty = false,
            Err(e) => log::error!(file = self.path.display().to_string();
                "cannot save {}: {e}; a restart may send the last report again", self.path.display()),
        }
    }
}

/// `reports.json`, or nothing when it is missing or unreadable (logged).
fn load(path: &Path) -> Saved {
    match crate::localfile::read_regular(path, 1 << 20) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            log::warn!(file = path.display().to_string(); "ignoring {}: {e}", path.display());
            Saved::default()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Saved::default(),
        Err(e) => {
            log::warn!(file = path.display().to_string(); "ignoring {}: {e}", path.display());
            Saved::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const DAY: f64 = 86_400.0;
    /// 2026-12-01T00:00:00Z.
    const D1: f64 = 1_796_083_200.0;

    fn config(dir: &Path, reports: Vec<ReportConfig>) -> Config {
        let mut c = crate::config::load(None).unwrap();
        c.state_dir = dir.to_path_buf();
        c.interval = Duration::from_secs(5);
        c.reports = reports;
        c
    }

    fn daily(at: Option<u32>) -> ReportConfig {
        ReportConfig {
            name: "daily".into(),
            every: Duration::from_secs(86_400),
            at,
            channels: vec!["ops".into()],
        }
    }

    #[test]
    fn periods_align_to_midnight_plus_at() {
        assert_eq!(latest_completed(86_400, 0, D1 + 3.0 * 3600.0), (D1 - DAY, D1));
        let at8 = 8 * 3600;
        assert_eq!(
            latest_completed(86_400, at8, D1 + 9.0 * 3600.0),
            (D1 + 8.0 * 3600.0 - DAY, D1 + 8.0 * 3600.0)
        );
        assert_eq!(latest_completed(86_400, at8, D1 + 7.0 * 3600.0).1, D1 + 8.0 * 3600.0 - DAY);
        // On the boundary: that period is complete.
        assert_eq!(latest_completed(3600, 0, D1).1, D1);
        assert_eq!(latest_completed(60, 0, D1 + 59.9).1, D1);
    }

    #[test]
    fn due_once_per_period_after_settling() {
        let d = crate::testutil::tempdir("report", "due");
        let c = config(&d, vec![daily(Some(8 * 3600))]);
        let settle = 60.0 + 5.0;
        let at8 = D1 + 8.0 * 3600.0;
        // First start at 07:00: nothing from before it existed.
        let mut s = Scheduler::new(&c, D1 + 7.0 * 3600.0);
        assert!(s.due(D1 + 7.5 * 3600.0).is_empty());
        assert_eq!(s.next_due(), at8 + settle);
        assert!(s.due(at8 + settle - 1.0).is_empty(), "the last slot is not written yet");
        let got = s.due(at8 + settle);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].1, got[0].2), (at8 - DAY, at8));
        assert!(s.due(at8 + settle + 10.0).is_empty(), "sent once");
        assert_eq!(s.next_due(), at8 + DAY + settle);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_long_outage_sends_one_report_for_the_latest_period() {
        let d = crate::testutil::tempdir("report", "outage");
        let c = config(&d, vec![daily(None)]);
        let mut s = Scheduler::new(&c, D1 + 100.0);
        s.save();
        drop(s);
        // Down for five days; started again at noon on day 6.
        let now = D1 + 5.0 * DAY + 12.0 * 3600.0;
        let mut s = Scheduler::new(&c, now);
        let got = s.due(now);
        assert_eq!(got.len(), 1, "one report, not one per missed day");
        assert_eq!((got[0].1, got[0].2), (D1 + 4.0 * DAY, D1 + 5.0 * DAY));
        s.sent(&got[0].0, got[0].2);
        s.save();
        // Restarted again: nothing more until the next period ends.
        let mut s = Scheduler::new(&c, now + 60.0);
        assert!(s.due(now + 60.0).is_empty());
        assert!(s.due(D1 + 6.0 * DAY + 3600.0).len() == 1);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn clock_steps_and_changed_periods_send_nothing_extra() {
        let d = crate::testutil::tempdir("report", "steps");
        let mut c = config(&d, vec![daily(None)]);
        let mut s = Scheduler::new(&c, D1 + 3600.0);
        assert_eq!(s.due(D1 + DAY + 3600.0).len(), 1);
        // The clock steps back a day: nothing is due again.
        assert!(s.due(D1 + 7200.0).is_empty());
        assert!(s.due(D1 + DAY + 7200.0).is_empty());
        // `at` changes: the new alignment starts with its next period.
        c.reports[0].at = Some(6 * 3600);
        s.configure(&c, D1 + DAY + 7.0 * 3600.0);
        assert!(s.due(D1 + DAY + 7.0 * 3600.0).is_empty());
        assert_eq!(s.due(D1 + 2.0 * DAY + 7.0 * 3600.0).len(), 1);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_report_still_building_is_not_saved_as_sent() {
        let d = crate::testutil::tempdir("report", "race");
        let mut hourly = daily(None);
        hourly.name = "hourly".into();
        hourly.every = Duration::from_secs(3600);
        let c = config(&d, vec![daily(None), hourly.clone()]);
        let mut s = Scheduler::new(&c, D1 - 7200.0);
        s.save();
        // Both due at once; the hourly one is built and enqueued, the daily one still builds.
        let now = D1 + 3600.0;
        let got = s.due(now);
        assert_eq!(got.len(), 2);
        assert!(s.due(now + 1.0).is_empty(), "claimed: not due again while building");
        s.sent(&hourly, D1);
        s.save();
        // A crash now: the restarted daemon still owes the daily report.
        let mut s = Scheduler::new(&c, now + 5.0);
        let got = s.due(now + 5.0);
        let names: Vec<&str> = got.iter().map(|g| g.0.name.as_str()).collect();
        assert_eq!(names, ["daily"], "the unfinished daily report is due again");
        assert_eq!((got[0].1, got[0].2), (D1 - DAY, D1));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn reports_json_survives_a_restart_and_garbage_is_ignored() {
        let d = crate::testutil::tempdir("report", "file");
        let c = config(&d, vec![daily(None)]);
        let mut s = Scheduler::new(&c, D1 + 10.0);
        s.save();
        let text = std::fs::read_to_string(d.join(FILE)).unwrap();
        assert!(text.contains("\"last_end\": ") && text.contains("\"daily\""), "{text}");
        std::fs::write(d.join(FILE), b"{not json").unwrap();
        let s = Scheduler::new(&c, D1 + 10.0);
        // Started ten seconds into the day: the day that just ended is reported once settled.
        assert_eq!(s.next_due(), D1 + 65.0);
        let _ = std::fs::remove_dir_all(&d);
    }
}
