//! Silences: a rule glob and label globs with an expiry, or a recurring [`Schedule`] (with an
//! optional expiry ending it); they suppress notifications, not state.
//!
//! Silences come from the config (`silences`, for planned maintenance kept in configuration
//! management) and from `hostwatch silence add` (kept in `state_dir/silences.json`). A
//! scheduled silence covers only inside its windows, judged on the sample's timestamp (so
//! `replay` sees recorded time); when its windows fall is `schedule`'s business.
//!
//! When several silences cover a notification, the first (config silences, then the file's,
//! oldest first) is the one named: by [`covering`], by the API's `silenced_by` and by the
//! [`Suppressed`] record of what it held back, which the engine collects and the commands
//! that keep an events log write there as a `silenced` record.

use crate::event::Notification;
use crate::glob::glob_match;
use crate::series::SeriesInfo;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

mod schedule;

pub use schedule::Schedule;

/// The longest a silence may last (`POST /silences`, shared silences): 366 days.
pub(crate) const MAX_SILENCE_S: f64 = 366.0 * 86_400.0;
pub(crate) use schedule::{EVERY_DAY, parse_days, parse_time};

/// One silence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// Identifier shown by `silence list` and used by `silence remove`.
    #[serde(default)]
    pub id: String,
    /// Glob on the rule name (every rule when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Globs on label values, by label key (`{"mount": "/data*"}`).
    #[serde(default, rename = "match", skip_serializing_if = "BTreeMap::is_empty")]
    pub matchers: BTreeMap<String, String>,
    /// Unix seconds after which the silence no longer applies; infinite (not written) for a
    /// schedule that recurs without end.
    #[serde(default = "no_end", skip_serializing_if = "is_no_end")]
    pub until: f64,
    /// When it recurs; `None`: at all times until `until`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// Why, and who.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// Glob on the host name (`web-*`): an agent applies the silence only when its `host`
    /// matches; every host when absent. Shared silences (`state.store`) carry one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

fn no_end() -> f64 {
    f64::INFINITY
}

fn is_no_end(until: &f64) -> bool {
    until.is_infinite()
}

impl Silence {
    /// True when this silence covers a notification of `rule` on `series` at `now`: in force,
    /// matching, and inside a window of its schedule if it has one. Allocates nothing.
    pub fn covers(&self, rule: &str, series: &SeriesInfo, now: f64) -> bool {
        now < self.until
            && self.rule.as_deref().is_none_or(|g| glob_match(g, rule))
            && self.matchers.iter().all(|(key, pattern)| {
                series
                    .label_pair()
                    .is_some_and(|(k, v)| k.as_str() == key && glob_match(pattern, v))
            })
            && self.schedule.as_ref().is_none_or(|s| s.window_at(now).is_some())
    }

    /// True when it applies to the agent whose `host` is `host` (no glob: every host; host
    /// names compare case-insensitively, as DNS names do).
    pub fn applies_to_host(&self, host: &str) -> bool {
        self.host
            .as_deref()
            .is_none_or(|g| glob_match(&g.to_ascii_lowercase(), &host.to_ascii_lowercase()))
    }

    /// Why a silence read from the shared store may not be applied: it must name its hosts
    /// (a `host` glob: a shared silence without one would mute every agent of the store),
    /// and pass the checks the API's `POST /silences` makes (non-empty globs without control
    /// characters of at most 1024 bytes, known match labels, a known schedule zone, at most
    /// [`MAX_SILENCE_S`] from `now`, an end or a schedule).
    pub(crate) fn shared_error(&self, now: f64) -> Option<String> {
        let glob_error = |what: &str, g: &str| {
            (g.is_empty() || g.len() > 1024 || g.chars().any(char::is_control)).then(|| {
                format!("{what}: not a glob of 1 to 1024 bytes without control characters")
            })
        };
        let Some(host) = self.host.as_deref() else {
            return Some(
                "it has no \"host\" glob (a shared silence must name its hosts)".to_owned(),
            );
        };
        if let Some(e) = glob_error("host", host) {
            return Some(e);
        }
        if let Some(e) = self.rule.as_deref().and_then(|g| glob_error("rule", g)) {
            return Some(e);
        }
        for (k, g) in &self.matchers {
            if crate::metrics::LabelKey::parse(k).is_none() {
                return Some(format!("match: unknown label {k:?}"));
            }
            if let Some(e) = glob_error(&format!("match.{k}"), g) {
                return Some(e);
            }
        }
        if let Some(e) = self.schedule.as_ref().and_then(|s| s.zone_error()) {
            return Some(format!("schedule.tz: {e}"));
        }
        if self.schedule.is_none() && !self.until.is_finite() {
            return Some("it has neither \"until\" nor \"schedule\"".to_owned());
        }
        if self.until.is_nan() || (self.until.is_finite() && self.until - now > MAX_SILENCE_S) {
            return Some("it lasts more than 366 days".to_owned());
        }
        None
    }

    /// True while it may still cover something: before `until` (a scheduled silence is in
    /// force between its windows too).
    pub fn in_force(&self, now: f64) -> bool {
        now < self.until
    }

    /// When what it covers at `now` is released: the end of the current window (or `until`,
    /// if sooner), else `until`.
    pub fn covers_until(&self, now: f64) -> f64 {
        match self.schedule.as_ref().and_then(|s| s.window_at(now)) {
            Some((_, end)) => (end as f64).min(self.until),
            None => self.until,
        }
    }

    /// The window in force at `now` or the next one (start, end in Unix seconds; the end
    /// clipped to `until`); `None` without a schedule, or when no window starts before
    /// `until`.
    pub fn next_window(&self, now: f64) -> Option<(f64, f64)> {
        let (start, end) = self.schedule.as_ref()?.next_window(now)?;
        let (start, end) = (start as f64, (end as f64).min(self.until));
        (start < self.until && end > now).then_some((start, end))
    }

    /// The schedule for machine readers: `{"days": [...], "from", "to", "tz", "next_start",
    /// "next_end"}` (the next window's times RFC 3339 UTC, null when there is none).
    pub fn schedule_json(&self, now: f64) -> Option<serde_json::Value> {
        let s = self.schedule.as_ref()?;
        let (from, to) = s.times();
        let next = self.next_window(now);
        let time = |t: Option<f64>| t.map(crate::timefmt::rfc3339);
        Some(serde_json::json!({
            "days": s.day_names().collect::<Vec<_>>(),
            "from": from,
            "to": to,
            "tz": s.zone_name(),
            "text": s.to_string(),
            "next_start": time(next.map(|w| w.0)),
            "next_end": time(next.map(|w| w.1)),
        }))
    }
}

/// True when any silence covers the notification ([`covering`] without the name).
#[cfg_attr(not(test), allow(dead_code))]
pub fn any_covers(silences: &[Silence], rule: &str, series: &SeriesInfo, now: f64) -> bool {
    covering(silences, rule, series, now).is_some()
}

/// The first silence that covers a notification of `rule` on `series` at `now`. Allocates
/// nothing.
pub fn covering<'a>(
    silences: &'a [Silence],
    rule: &str,
    series: &SeriesInfo,
    now: f64,
) -> Option<&'a Silence> {
    silences.iter().find(|s| s.covers(rule, series, now))
}

/// A notification a silence held back: what would have been sent, and which silence kept it.
#[derive(Clone, Debug, PartialEq)]
pub struct Suppressed {
    /// The notification that was not made.
    pub notification: Notification,
    /// The covering silence's id (`config-1` and the like for the config's).
    pub silence_id: String,
    /// Its comment (why, and who); may be empty.
    pub comment: String,
    /// When what it held back is released (Unix seconds): the silence's end, or for a
    /// scheduled silence the end of the window that held it.
    pub until: f64,
    /// The schedule as text (`sun 02:00-04:00 Europe/Lisbon`), for a scheduled silence.
    pub schedule: Option<String>,
}

impl Suppressed {
    /// What `s` held back: `notification`, made at `now`.
    pub fn new(notification: Notification, s: &Silence, now: f64) -> Suppressed {
        Suppressed {
            notification,
            silence_id: s.id.clone(),
            comment: s.comment.clone(),
            until: s.covers_until(now),
            schedule: s.schedule.as_ref().map(ToString::to_string),
        }
    }
}

impl Suppressed {
    /// The events-log record: the notification's JSON fields (rule, series, labels, event,
    /// severity, ts, key…) with `"type": "silenced"`, `silence_id`, `silence_until` (null for
    /// a silence without end) and, when the silence has them, `silence_comment` and
    /// `silence_schedule`.
    pub fn to_record(&self) -> serde_json::Value {
        let mut record = self.notification.to_json();
        record["type"] = "silenced".into();
        record["silence_id"] = self.silence_id.as_str().into();
        record["silence_until"] = if self.until.is_finite() {
            ((self.until * 1000.0).round() / 1000.0).into()
        } else {
            serde_json::Value::Null
        };
        if !self.comment.is_empty() {
            record["silence_comment"] = self.comment.as_str().into();
        }
        if let Some(s) = &self.schedule {
            record["silence_schedule"] = s.as_str().into();
        }
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metric;
    use crate::series::Registry;

    #[test]
    fn matches_rule_labels_and_expires() {
        let mut reg = Registry::new();
        let id = reg.intern(Metric::DiskUsedPercent, Some("/data/a"));
        let info = reg.info(id);
        let s = Silence {
            host: None,
            id: "s1".into(),
            rule: Some("disk_*".into()),
            matchers: [("mount".to_string(), "/data*".to_string())].into(),
            until: 100.0,
            schedule: None,
            comment: String::new(),
        };
        assert!(s.covers("disk_root", info, 50.0));
        assert!(!s.covers("disk_root", info, 100.0));
        assert!(!s.covers("cpu_total", info, 50.0));
        let other = reg.intern(Metric::DiskUsedPercent, Some("/"));
        assert!(!s.covers("disk_root", reg.info(other), 50.0));
    }

    fn silence(id: &str, rule: &str, until: f64) -> Silence {
        Silence {
            host: None,
            id: id.into(),
            rule: Some(rule.into()),
            matchers: BTreeMap::new(),
            until,
            schedule: None,
            comment: String::new(),
        }
    }

    #[test]
    fn a_scheduled_silence_covers_inside_its_windows_until_its_recurrence_ends() {
        let mut reg = Registry::new();
        let id = reg.intern(Metric::DiskUsedPercent, Some("/data"));
        let info = reg.info(id);
        let zone = std::sync::Arc::new(crate::zone::Zone::by_name("America/New_York").unwrap());
        let schedule =
            Schedule::parse_every("sun 01:30-02:30", Some("America/New_York".into()), Ok(zone));
        let t = |text: &str| crate::config::parse_rfc3339(text).unwrap();
        let s = Silence {
            host: None,
            schedule: Some(schedule.unwrap()),
            // Ends during the window of 2027-11-07 (05:30 to 07:30 UTC across the switch).
            until: t("2027-11-07T07:00:00Z"),
            ..silence("weekly", "disk_*", 0.0)
        };
        assert!(!s.covers("disk_root", info, t("2027-11-07T05:29:59Z")));
        assert!(s.covers("disk_root", info, t("2027-11-07T05:30:00Z")));
        assert_eq!(s.covers_until(t("2027-11-07T06:30:00Z")), t("2027-11-07T07:00:00Z"));
        assert!(!s.covers("disk_root", info, t("2027-11-07T07:00:00Z")), "the recurrence ended");
        assert!(s.in_force(t("2027-11-06T00:00:00Z")) && !s.in_force(t("2027-11-07T07:00:00Z")));
        let next = s.next_window(t("2027-11-01T00:00:00Z"));
        assert_eq!(next, Some((t("2027-11-07T05:30:00Z"), t("2027-11-07T07:00:00Z"))));
        assert_eq!(s.next_window(t("2027-11-07T07:00:00Z")), None, "no window before it ends");
        let open_ended = Silence { host: None, until: f64::INFINITY, ..s.clone() };
        assert_eq!(open_ended.covers_until(t("2027-11-07T06:30:00Z")), t("2027-11-07T07:30:00Z"));
        let json = open_ended.schedule_json(t("2027-11-08T00:00:00Z")).unwrap();
        assert_eq!(json["next_start"], "2027-11-14T06:30:00Z");
        assert_eq!(json["text"], "sun 01:30-02:30 America/New_York");
    }

    #[test]
    fn covering_names_the_first_silence_in_force_that_covers() {
        let mut reg = Registry::new();
        let id = reg.intern(Metric::DiskUsedPercent, Some("/data"));
        let info = reg.info(id);
        let all = [
            silence("expired", "disk_*", 10.0),
            silence("other_rule", "cpu_*", 100.0),
            silence("first", "disk_*", 100.0),
            silence("second", "*", 100.0),
        ];
        assert_eq!(covering(&all, "disk_root", info, 50.0).map(|s| s.id.as_str()), Some("first"));
        assert_eq!(
            covering(&all, "cpu_high", info, 50.0).map(|s| s.id.as_str()),
            Some("other_rule")
        );
        assert_eq!(covering(&all, "mem_high", info, 50.0).map(|s| s.id.as_str()), Some("second"));
        assert_eq!(covering(&all, "disk_root", info, 100.0), None, "all expired");
        assert_eq!(covering(&[], "disk_root", info, 50.0), None);
        assert!(any_covers(&all, "disk_root", info, 50.0));
        assert!(!any_covers(&all[..2], "disk_root", info, 50.0));
    }
}
