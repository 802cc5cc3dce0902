//! Silences: a rule glob and label globs with an expiry; they suppress notifications, not state.
//!
//! Silences come from the config (`silences`, for planned maintenance kept in configuration
//! management) and from `hostwatch silence add` (kept in `state_dir/silences.json`).
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
    /// Unix seconds after which the silence no longer applies.
    pub until: f64,
    /// Why, and who.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
}

impl Silence {
    /// True when this silence covers a notification of `rule` on `series` at `now`.
    pub fn covers(&self, rule: &str, series: &SeriesInfo, now: f64) -> bool {
        now < self.until
            && self.rule.as_deref().is_none_or(|g| glob_match(g, rule))
            && self.matchers.iter().all(|(key, pattern)| {
                series
                    .label_pair()
                    .is_some_and(|(k, v)| k.as_str() == key && glob_match(pattern, v))
            })
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
    /// When it ends (Unix seconds).
    pub until: f64,
}

impl Suppressed {
    /// The events-log record: the notification's JSON fields (rule, series, labels, event,
    /// severity, ts, key…) with `"type": "silenced"`, `silence_id`, `silence_until` and, when
    /// the silence has one, `silence_comment`.
    pub fn to_record(&self) -> serde_json::Value {
        let mut record = self.notification.to_json();
        record["type"] = "silenced".into();
        record["silence_id"] = self.silence_id.as_str().into();
        record["silence_until"] = ((self.until * 1000.0).round() / 1000.0).into();
        if !self.comment.is_empty() {
            record["silence_comment"] = self.comment.as_str().into();
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
            id: "s1".into(),
            rule: Some("disk_*".into()),
            matchers: [("mount".to_string(), "/data*".to_string())].into(),
            until: 100.0,
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
            id: id.into(),
            rule: Some(rule.into()),
            matchers: BTreeMap::new(),
            until,
            comment: String::new(),
        }
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
