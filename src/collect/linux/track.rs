//! Per-thing counter state: one entry per device or interface, its cached series ids, its
//! previous raw counters and when they were read, turned into per-second rates.
//!
//! An entry is discovered (filter consulted, series interned) the first time its name is seen
//! and retired when a read no longer lists it. Steady state allocates nothing: names are
//! compared as bytes by linear scan and entries are updated in place.

use super::parse::label_from_bytes;
use crate::collect::{LabelFilter, Sample};
use crate::metrics::{LabelKey, Metric};
use crate::series::{Registry, SeriesId};
use serde_json::{Map, Value};
use std::time::Instant;

/// What was decided about a thing when it was first seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Status<const N: usize> {
    /// Not looked at by the filter yet (restored from a saved state and not read since).
    Pending,
    /// Left out by the filter; kept so the filter is not asked again every tick.
    Excluded,
    /// Collected under these series ids.
    Live([SeriesId; N]),
}

/// Pushes `scale × Δ/Δt` for each counter that did not go backwards.
///
/// A counter lower than its previous value (wrap, reset, device replaced) yields nothing this
/// tick; the caller stores the new values either way, which rebases it.
pub(super) fn push_rates<const N: usize>(
    out: &mut Sample,
    ids: &[SeriesId; N],
    scale: &[f64; N],
    prev: Option<&([u64; N], Instant)>,
    now: &[u64; N],
    at: Instant,
) {
    let Some((before, then)) = prev else { return };
    let secs = at.saturating_duration_since(*then).as_secs_f64();
    if secs <= 0.0 {
        return;
    }
    for i in 0..N {
        if let Some(delta) = now[i].checked_sub(before[i]) {
            out.points.push((ids[i], delta as f64 * scale[i] / secs));
        }
    }
}

/// Interns one series per metric for a labelled thing.
pub(super) fn intern_all<const N: usize>(
    registry: &mut Registry,
    metrics: &[Metric; N],
    label: &str,
) -> [SeriesId; N] {
    metrics.map(|m| registry.intern(m, Some(label)))
}

/// Retires every series of a thing that went away.
pub(super) fn retire_all<const N: usize>(registry: &mut Registry, status: &Status<N>) {
    if let Status::Live(ids) = status {
        for id in ids {
            registry.retire(*id);
        }
    }
}

/// One device or interface.
#[derive(Debug)]
struct Entry<const N: usize> {
    name: Box<[u8]>,
    status: Status<N>,
    prev: Option<([u64; N], Instant)>,
    seen: bool,
}

/// The counters of every device (or interface) of one file, turned into rates.
#[derive(Debug)]
pub(super) struct CounterTable<const N: usize> {
    key: LabelKey,
    metrics: [Metric; N],
    scale: [f64; N],
    entries: Vec<Entry<N>>,
}

impl<const N: usize> CounterTable<N> {
    /// A table whose counter `i` becomes `metrics[i]`, multiplied by `scale[i]`.
    pub(super) fn new(key: LabelKey, metrics: [Metric; N], scale: [f64; N]) -> Self {
        CounterTable { key, metrics, scale, entries: Vec::new() }
    }

    /// The metrics this table produces.
    pub(super) fn metrics(&self) -> &[Metric; N] {
        &self.metrics
    }

    /// Starts a read: every entry is unseen until `update` names it.
    pub(super) fn begin(&mut self) {
        for e in &mut self.entries {
            e.seen = false;
        }
    }

    /// Records the counters of `name` read at `at`, pushing its rates into `out`.
    /// `excluded_by_default` runs only when `name` is discovered.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn update(
        &mut self,
        name: &[u8],
        values: [u64; N],
        at: Instant,
        registry: &mut Registry,
        filter: &LabelFilter,
        out: &mut Sample,
        excluded_by_default: impl FnOnce(&[u8]) -> bool,
    ) {
        let index = match self.entries.iter().position(|e| &*e.name == name) {
            Some(i) => i,
            None => {
                self.entries.push(Entry {
                    name: name.into(),
                    status: Status::Pending,
                    prev: None,
                    seen: false,
                });
                self.entries.len() - 1
            }
        };
        let entry = &mut self.entries[index];
        if entry.seen {
            // The same name twice in one read: keep the first.
            return;
        }
        entry.seen = true;
        if entry.status == Status::Pending {
            let label = label_from_bytes(name);
            entry.status = if filter.allows(self.key, &label, excluded_by_default(name)) {
                Status::Live(intern_all(registry, &self.metrics, &label))
            } else {
                Status::Excluded
            };
        }
        match &entry.status {
            Status::Live(ids) => {
                push_rates(out, ids, &self.scale, entry.prev.as_ref(), &values, at);
                entry.prev = Some((values, at));
            }
            _ => entry.prev = None,
        }
    }

    /// Ends a read: entries it did not list are retired and forgotten.
    pub(super) fn finish(&mut self, registry: &mut Registry) {
        self.entries.retain(|e| {
            if !e.seen {
                retire_all(registry, &e.status);
            }
            e.seen
        });
    }

    /// The raw counters of the collected entries, by name.
    pub(super) fn save(&self) -> Value {
        let mut map = Map::new();
        for e in &self.entries {
            if let (Status::Live(_), Some((values, _))) = (&e.status, &e.prev) {
                map.insert(label_from_bytes(&e.name), Value::from(values.to_vec()));
            }
        }
        Value::Object(map)
    }

    /// Seeds entries from [`save`](Self::save)'s form as if read at `at`; they are discovered
    /// (filtered, interned) when a read lists them, and dropped if none does.
    pub(super) fn restore(&mut self, saved: &Value, at: Instant) {
        let Some(map) = saved.as_object() else { return };
        for (name, values) in map {
            let Some(values) = counters::<N>(values) else { continue };
            if self.entries.iter().any(|e| &*e.name == name.as_bytes()) {
                continue;
            }
            self.entries.push(Entry {
                name: name.as_bytes().into(),
                status: Status::Pending,
                prev: Some((values, at)),
                seen: false,
            });
        }
    }
}

/// Reads `[u64; N]` from a JSON array of exactly N unsigned integers.
pub(super) fn counters<const N: usize>(v: &Value) -> Option<[u64; N]> {
    let a = v.as_array()?;
    if a.len() != N {
        return None;
    }
    let mut out = [0u64; N];
    for (slot, x) in out.iter_mut().zip(a) {
        *slot = x.as_u64()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CollectConfig;
    use std::time::Duration;

    fn table() -> CounterTable<2> {
        CounterTable::new(LabelKey::Iface, [Metric::NetRxRate, Metric::NetTxRate], [1.0, 1.0])
    }

    fn value(reg: &Registry, out: &Sample, key: &str) -> Option<f64> {
        out.points.iter().find(|(id, _)| &*reg.info(*id).key == key).map(|p| p.1)
    }

    #[test]
    fn first_read_no_rate_then_rates_then_backwards_rebases() {
        let (mut reg, mut out, filter) =
            (Registry::new(), Sample::default(), LabelFilter::new(&CollectConfig::default()));
        let mut t = table();
        let t0 = Instant::now();
        t.begin();
        t.update(b"eth0", [1000, 50], t0, &mut reg, &filter, &mut out, |_| false);
        t.finish(&mut reg);
        assert!(out.points.is_empty(), "first read emits no rate");

        out.points.clear();
        t.begin();
        t.update(
            b"eth0",
            [3000, 150],
            t0 + Duration::from_secs(2),
            &mut reg,
            &filter,
            &mut out,
            |_| false,
        );
        t.finish(&mut reg);
        assert_eq!(value(&reg, &out, "net.rx_rate{iface=eth0}"), Some(1000.0));
        assert_eq!(value(&reg, &out, "net.tx_rate{iface=eth0}"), Some(50.0));

        out.points.clear();
        t.begin();
        t.update(
            b"eth0",
            [10, 250],
            t0 + Duration::from_secs(3),
            &mut reg,
            &filter,
            &mut out,
            |_| false,
        );
        t.finish(&mut reg);
        assert_eq!(value(&reg, &out, "net.rx_rate{iface=eth0}"), None, "counter went backwards");
        assert_eq!(value(&reg, &out, "net.tx_rate{iface=eth0}"), Some(100.0));

        out.points.clear();
        t.begin();
        t.update(
            b"eth0",
            [20, 250],
            t0 + Duration::from_secs(4),
            &mut reg,
            &filter,
            &mut out,
            |_| false,
        );
        t.finish(&mut reg);
        assert_eq!(value(&reg, &out, "net.rx_rate{iface=eth0}"), Some(10.0), "rebased");
    }

    #[test]
    fn vanished_things_are_retired_and_excluded_ones_never_interned() {
        let (mut reg, mut out, filter) =
            (Registry::new(), Sample::default(), LabelFilter::new(&CollectConfig::default()));
        let mut t = table();
        let now = Instant::now();
        t.begin();
        t.update(b"eth0", [1, 1], now, &mut reg, &filter, &mut out, |_| false);
        t.update(b"loop0", [1, 1], now, &mut reg, &filter, &mut out, |_| true);
        t.finish(&mut reg);
        assert_eq!(reg.len(), 2, "only eth0's two series");
        t.begin();
        t.update(b"loop0", [2, 2], now, &mut reg, &filter, &mut out, |_| panic!("asked twice"));
        t.finish(&mut reg);
        assert!(reg.iter().all(|(_, info)| !info.live), "eth0 retired");
    }

    #[test]
    fn save_restore_round_trip() {
        let (mut reg, mut out, filter) =
            (Registry::new(), Sample::default(), LabelFilter::new(&CollectConfig::default()));
        let mut t = table();
        let t0 = Instant::now();
        t.begin();
        t.update(b"eth0", [100, 200], t0, &mut reg, &filter, &mut out, |_| false);
        t.finish(&mut reg);
        let saved = t.save();
        assert_eq!(saved, serde_json::json!({"eth0": [100, 200]}));

        let mut fresh = table();
        fresh.restore(&saved, t0);
        fresh.begin();
        fresh.update(
            b"eth0",
            [600, 200],
            t0 + Duration::from_secs(5),
            &mut reg,
            &filter,
            &mut out,
            |_| false,
        );
        fresh.finish(&mut reg);
        assert_eq!(value(&reg, &out, "net.rx_rate{iface=eth0}"), Some(100.0));
        assert!(counters::<2>(&serde_json::json!([1, -2])).is_none());
    }
}
