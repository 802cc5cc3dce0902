//! Silences: a rule glob and label globs with an expiry; they suppress notifications, not state.
//!
//! Silences come from the config (`silences`, for planned maintenance kept in configuration
//! management) and from `hostwatch silence add` (kept in `state_dir/silences.json`).

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

/// True when any silence covers the notification.
pub fn any_covers(silences: &[Silence], rule: &str, series: &SeriesInfo, now: f64) -> bool {
    silences.iter().any(|s| s.covers(rule, series, now))
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
}
