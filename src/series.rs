//! The series registry: one stable id per (metric, label value) seen on this host.
//!
//! The collector interns a series when it first sees a core, mount, device or interface and
//! retires it when that thing goes away; everything downstream indexes by [`SeriesId`], so a
//! tick never hashes strings. Not the place for values: rings and windows live with the rules.

use crate::metrics::{LabelKey, Metric};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// A stable index into the [`Registry`]; never reused within one process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesId(pub u32);

/// What a series is: its metric, its label value and its printable key.
#[derive(Clone, Debug)]
pub struct SeriesInfo {
    /// The metric measured.
    pub metric: Metric,
    /// The label value (core number, mount point, device, interface), if the metric has one.
    pub label: Option<Arc<str>>,
    /// `metric{label=value}`, or the bare metric name.
    pub key: Arc<str>,
    /// False once the thing measured has gone away.
    pub live: bool,
}

impl SeriesInfo {
    /// The label as a (key, value) pair.
    pub fn label_pair(&self) -> Option<(LabelKey, &str)> {
        match (self.metric.label_key(), &self.label) {
            (Some(k), Some(v)) => Some((k, v)),
            _ => None,
        }
    }
}

/// Every series known to this process.
#[derive(Default, Debug)]
pub struct Registry {
    infos: Vec<SeriesInfo>,
    index: HashMap<(Metric, Option<Arc<str>>), SeriesId>,
    changes: u64,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// The id of `metric{label}`, creating (or reviving) it if needed.
    pub fn intern(&mut self, metric: Metric, label: Option<&str>) -> SeriesId {
        let lookup = (metric, label.map(Arc::<str>::from));
        if let Some(&id) = self.index.get(&lookup) {
            let info = &mut self.infos[id.0 as usize];
            if !info.live {
                info.live = true;
                self.changes += 1;
            }
            return id;
        }
        let id = SeriesId(u32::try_from(self.infos.len()).expect("fewer than 2^32 series"));
        let key: Arc<str> = series_key(metric, lookup.1.as_deref()).into();
        self.infos.push(SeriesInfo { metric, label: lookup.1.clone(), key, live: true });
        self.index.insert(lookup, id);
        self.changes += 1;
        id
    }

    /// Marks a series as gone (its device was removed, its mount unmounted).
    pub fn retire(&mut self, id: SeriesId) {
        if let Some(info) = self.infos.get_mut(id.0 as usize)
            && info.live
        {
            info.live = false;
            self.changes += 1;
        }
    }

    /// Looks a series up by metric and label without creating it.
    pub fn find(&self, metric: Metric, label: Option<&str>) -> Option<SeriesId> {
        self.index.get(&(metric, label.map(Arc::<str>::from))).copied()
    }

    /// The description of a series.
    pub fn info(&self, id: SeriesId) -> &SeriesInfo {
        &self.infos[id.0 as usize]
    }

    /// How many ids were handed out (live or not).
    pub fn len(&self) -> usize {
        self.infos.len()
    }

    /// True when no series was ever interned.
    pub fn is_empty(&self) -> bool {
        self.infos.is_empty()
    }

    /// A counter that moves whenever a series is added, retired or revived; lets consumers
    /// rebind only when something changed.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Every series ever interned, with its id.
    pub fn iter(&self) -> impl Iterator<Item = (SeriesId, &SeriesInfo)> {
        self.infos.iter().enumerate().map(|(i, s)| (SeriesId(i as u32), s))
    }
}

/// The key of a rule's `absent` watch over the series key `inner`:
/// `absent(disk.used_percent{mount=/data})`. No collected series has a key of that form.
pub fn absent_key(inner: &str) -> String {
    format!("absent({inner})")
}

/// The inner series key of an `absent` watch's key, or `None` when `key` is not one.
pub fn absent_inner(key: &str) -> Option<&str> {
    key.strip_prefix("absent(").and_then(|s| s.strip_suffix(')'))
}

/// Formats a series key: `metric{label=value}` or the bare metric name.
pub fn series_key(metric: Metric, label: Option<&str>) -> String {
    match (metric.label_key(), label) {
        (Some(k), Some(v)) => format!("{}{{{}={}}}", metric.name(), k, v),
        _ => metric.name().to_string(),
    }
}

/// Why a series key could not be parsed.
#[derive(Debug, PartialEq, Eq)]
pub struct BadSeriesKey(pub String);

impl fmt::Display for BadSeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses `metric{label=value}` (the value may hold any character; the key's last `}` ends it).
pub fn parse_series_key(key: &str) -> Result<(Metric, Option<&str>), BadSeriesKey> {
    let (name, rest) = match key.find('{') {
        Some(i) => (&key[..i], Some(&key[i + 1..])),
        None => (key, None),
    };
    let metric =
        Metric::parse(name).ok_or_else(|| BadSeriesKey(format!("unknown metric \"{name}\"")))?;
    match (metric.label_key(), rest) {
        (None, None) => Ok((metric, None)),
        (Some(k), Some(rest)) => {
            let body = rest
                .strip_suffix('}')
                .ok_or_else(|| BadSeriesKey(format!("\"{key}\": missing closing '}}'")))?;
            let value = body
                .strip_prefix(k.as_str())
                .and_then(|b| b.strip_prefix('='))
                .ok_or_else(|| BadSeriesKey(format!("\"{key}\": expected label \"{k}=...\"")))?;
            Ok((metric, Some(value)))
        }
        (Some(k), None) => Err(BadSeriesKey(format!("\"{key}\": {name} needs a {k} label"))),
        (None, Some(_)) => Err(BadSeriesKey(format!("\"{key}\": {name} takes no label"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_even_with_hostile_values() {
        for value in ["/", "/mnt/a b", "/x}{=,y}", "eth0"] {
            let key = series_key(Metric::DiskFree, Some(value));
            assert_eq!(parse_series_key(&key), Ok((Metric::DiskFree, Some(value))));
        }
        assert_eq!(parse_series_key("cpu.usage"), Ok((Metric::CpuUsage, None)));
        assert!(parse_series_key("cpu.usage{core=1}").is_err());
        assert!(parse_series_key("disk.free").is_err());
        assert!(parse_series_key("nope").is_err());
    }

    #[test]
    fn ids_are_stable_and_retire_revive() {
        let mut r = Registry::new();
        let a = r.intern(Metric::NetRxRate, Some("eth0"));
        let b = r.intern(Metric::NetRxRate, Some("eth1"));
        assert_ne!(a, b);
        assert_eq!(r.intern(Metric::NetRxRate, Some("eth0")), a);
        let before = r.changes();
        r.retire(a);
        assert!(!r.info(a).live);
        assert_eq!(r.intern(Metric::NetRxRate, Some("eth0")), a);
        assert!(r.info(a).live);
        assert_eq!(r.changes(), before + 2);
        assert_eq!(&*r.info(b).key, "net.rx_rate{iface=eth1}");
    }
}
