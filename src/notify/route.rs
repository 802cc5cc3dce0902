//! Routing: which channels a notification goes to. Every matching route sends; a rule may
//! name its own channels too; a resolution goes wherever its episode was announced.

use crate::config::{Config, Route};
use crate::event::AlertEvent;
use crate::glob::glob_match;
use std::collections::BTreeMap;

/// The routes and per-rule channels of a config.
#[derive(Clone, Debug, Default)]
pub struct Router {
    routes: Vec<Route>,
    rule_channels: BTreeMap<String, Vec<String>>,
}

impl Router {
    /// The router of `config`.
    pub fn new(config: &Config) -> Router {
        Router {
            routes: config.routes.clone(),
            rule_channels: config
                .rules
                .iter()
                .filter_map(|r| r.channels.clone().map(|c| (r.name.clone(), c)))
                .collect(),
        }
    }

    /// The channels `event` goes to, each once, in config order.
    pub fn channels_for(&self, event: &AlertEvent) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut add = |name: &String| {
            if !out.contains(name) {
                out.push(name.clone());
            }
        };
        for route in self.routes.iter().filter(|r| matches(r, event)) {
            route.channels.iter().for_each(&mut add);
        }
        if let Some(own) = self.rule_channels.get(&event.rule) {
            own.iter().for_each(&mut add);
        }
        out
    }
}

/// True when every matcher of the route accepts the event.
fn matches(route: &Route, event: &AlertEvent) -> bool {
    route.severity.is_none_or(|s| s == event.severity)
        && route.rule.as_deref().is_none_or(|g| glob_match(g, &event.rule))
        && route
            .matchers
            .iter()
            .all(|(key, glob)| event.label(key).is_some_and(|v| glob_match(glob, v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Severity;

    fn route(
        severity: Option<Severity>,
        rule: Option<&str>,
        m: &[(&str, &str)],
        ch: &[&str],
    ) -> Route {
        Route {
            severity,
            rule: rule.map(str::to_string),
            matchers: m.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            channels: ch.iter().map(|c| c.to_string()).collect(),
        }
    }

    #[test]
    fn every_matching_route_sends_once() {
        let router = Router {
            routes: vec![
                route(Some(Severity::Critical), None, &[], &["pager", "ops"]),
                route(None, Some("disk_*"), &[("mount", "/data*")], &["storage"]),
                route(None, None, &[], &["ops"]),
            ],
            rule_channels: [("disk_root".to_string(), vec!["dba".to_string()])].into(),
        };
        let mut e = crate::event::AlertEvent::test_event("h", Severity::Warning, 0.0);
        e.rule = "disk_root".into();
        e.labels.insert("mount".into(), "/data/x".into());
        assert_eq!(router.channels_for(&e), vec!["storage", "ops", "dba"]);
        e.severity = Severity::Critical;
        e.labels.insert("mount".into(), "/".into());
        assert_eq!(router.channels_for(&e), vec!["pager", "ops", "dba"]);
    }

    #[test]
    fn routes_match_a_rules_static_labels_as_series_labels() {
        let router = Router {
            routes: vec![
                route(None, None, &[("team", "db")], &["dba"]),
                route(None, None, &[("team", "db"), ("mount", "/data*")], &["storage"]),
                route(None, None, &[("service", "*")], &["svc"]),
            ],
            rule_channels: BTreeMap::new(),
        };
        let mut e = crate::event::AlertEvent::test_event("h", Severity::Warning, 0.0);
        assert!(router.channels_for(&e).is_empty());
        e.context.rule_labels.insert("team".into(), "db".into());
        assert_eq!(router.channels_for(&e), vec!["dba"]);
        e.labels.insert("mount".into(), "/data/pg".into());
        assert_eq!(router.channels_for(&e), vec!["dba", "storage"]);
        e.context.rule_labels.insert("team".into(), "web".into());
        assert!(router.channels_for(&e).is_empty());
    }
}
