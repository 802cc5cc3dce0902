//! The evaluation core shared by `run`, `once` and `replay`: samples in, notifications out.
//!
//! Rules are bound to series when a series is discovered (one ring per series, sized to the
//! longest window any bound rule needs); a tick then touches only the series that have a
//! value, does no string work and, in steady state, allocates nothing. Only the clock and the
//! source of samples differ between the commands that drive it.
//!
//! Reminders and escalation run on elapsed time (see `alerts`). Each series' step gets a
//! `dt`: between two samples of this process that carry a monotonic `Sample::at` (`run`),
//! the monotonic difference; otherwise (`once` across cron runs, `replay` on recorded
//! timestamps, the first tick after a reload) the wall difference to the series' previous
//! sample, clamped to `[0, max_gap]`, so a clock step never counts as hours of firing and
//! never as negative time. After a restart the persisted elapsed counters carry the ages;
//! downtime between two processes is counted only as far as that clamped wall difference
//! reaches (for `run`, whose new process has no earlier sample, not at all): an alert's
//! reminder and escalation clocks pause while no hostwatch runs, rather than trust a wall
//! clock that may have jumped meanwhile.
//!
//! Silences: a step whose alert a silence covers is stepped with `silenced`, and the engine
//! asks `AlertState::would_notify` (the same step on a copy, unsilenced) what it held back.
//! Such a notification is kept as a [`Suppressed`] (with the first covering silence) until
//! the caller drains [`Engine::take_suppressed`], once per (episode, event, severity) of a
//! binding: a silenced episode is not recorded again at every tick, only when what it would
//! tell changes (a reminder falls due, it escalates). A new engine (a restart, a reload)
//! records an ongoing one once more. Nothing is asked, kept or allocated for an alert no
//! silence covers; at most `SUPPRESSED_MAX` records wait for a caller that does not drain.

use crate::alerts::{AlertState, Phase};
use crate::collect::Sample;
use crate::config::{Config, Escalation};
use crate::event::Notification;
use crate::ring::Ring;
use crate::rules::CompiledRule;
use crate::rules::window::WindowState;
use crate::series::{Registry, SeriesId};
use crate::silence::{self, Silence, Suppressed};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// How far apart two samples of a series may be, in intervals, before it counts as a gap.
pub const GAP_INTERVALS: f64 = 2.5;

/// Elapsed seconds of firing after which the state is worth saving even without a
/// transition, so the elapsed counters a restart resumes from are at most this stale.
const CHECKPOINT_S: f64 = 60.0;

/// Suppressed notifications kept for a caller that does not drain them; more are dropped.
const SUPPRESSED_MAX: usize = 4096;

/// A rule bound to one series.
#[derive(Debug)]
struct Binding {
    rule: u32,
    series: SeriesId,
    window: WindowState,
    alert: AlertState,
    /// (episode, event, severity) of the notification a silence last held back.
    held: Option<(f64, crate::alerts::EventKind, crate::config::Severity)>,
}

/// One series the engine follows.
#[derive(Debug)]
struct Slot {
    ring: Ring,
    /// Wall (or recorded) time of the series' latest sample.
    last_ts: f64,
    /// Monotonic time of that sample, when it had one.
    last_at: Option<Instant>,
    bindings: Vec<u32>,
}

/// An alert as saved in the state file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SavedAlert {
    /// Rule name.
    pub rule: String,
    /// Series key.
    pub series: String,
    /// Its state.
    pub state: AlertState,
}

/// A ring as saved in the state file (for `once`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SavedRing {
    /// Series key.
    pub series: String,
    /// `[ts, value]` pairs, oldest first.
    pub entries: Vec<(f64, f64)>,
}

/// The evaluation engine.
#[derive(Debug)]
pub struct Engine {
    rules: Vec<CompiledRule>,
    escalation: Escalation,
    host: Arc<str>,
    interval_s: f64,
    max_gap_s: f64,
    slots: Vec<Option<Slot>>,
    bindings: Vec<Option<Binding>>,
    seen_changes: u64,
    silences: Vec<Silence>,
    restored: HashMap<(String, String), AlertState>,
    changed: bool,
    /// Elapsed seconds while something was firing since the state was last worth saving.
    unsaved_firing_s: f64,
    /// Notifications silences held back, until [`Engine::take_suppressed`].
    suppressed: Vec<Suppressed>,
}

impl Engine {
    /// An engine for `config`'s rules; a gap is `GAP_INTERVALS` intervals unless `max_gap_s`.
    pub fn new(config: &Config, max_gap_s: Option<f64>) -> Engine {
        let interval_s = config.interval.as_secs_f64();
        Engine {
            rules: config.rules.iter().map(CompiledRule::new).collect(),
            escalation: config.escalation.clone(),
            host: Arc::from(config.host.as_str()),
            interval_s,
            max_gap_s: max_gap_s.unwrap_or(interval_s * GAP_INTERVALS),
            slots: Vec::new(),
            bindings: Vec::new(),
            seen_changes: u64::MAX,
            silences: config.silences.clone(),
            restored: HashMap::new(),
            changed: false,
            unsaved_firing_s: 0.0,
            suppressed: Vec::new(),
        }
    }

    /// Replaces the silences (the config's plus the ones from `hostwatch silence`).
    pub fn set_silences(&mut self, silences: Vec<Silence>) {
        self.silences = silences;
    }

    /// The silences in force.
    pub fn silences(&self) -> &[Silence] {
        &self.silences
    }

    /// The compiled rules.
    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    /// Alert states to adopt when their (rule, series) gets bound.
    pub fn restore_alerts(&mut self, saved: Vec<SavedAlert>) {
        for a in saved {
            self.restored.insert((a.rule, a.series), a.state);
        }
    }

    /// Binds new series, unbinds vanished ones (their announced alerts resolve into `out`).
    fn rebind(&mut self, registry: &Registry, now: f64, out: &mut Vec<Notification>) {
        if registry.changes() == self.seen_changes {
            return;
        }
        self.seen_changes = registry.changes();
        if self.slots.len() < registry.len() {
            self.slots.resize_with(registry.len(), || None);
        }
        let interval = std::time::Duration::from_secs_f64(self.interval_s);
        for (id, info) in registry.iter() {
            let slot = &mut self.slots[id.0 as usize];
            match (info.live, slot.is_some()) {
                (true, false) => {
                    let rules: Vec<u32> = (0..self.rules.len() as u32)
                        .filter(|&r| self.rules[r as usize].applies_to(info))
                        .collect();
                    if rules.is_empty() {
                        continue;
                    }
                    let capacity = rules
                        .iter()
                        .map(|&r| self.rules[r as usize].ring_capacity(interval))
                        .max()
                        .unwrap_or(1);
                    let mut bindings = Vec::with_capacity(rules.len());
                    for r in rules {
                        let rule = &self.rules[r as usize];
                        let alert = self
                            .restored
                            .remove(&(rule.rule.name.clone(), info.key.to_string()))
                            .unwrap_or_default();
                        let window = WindowState::new(rule, capacity, self.interval_s);
                        bindings.push(self.bindings.len() as u32);
                        self.bindings.push(Some(Binding {
                            rule: r,
                            series: id,
                            window,
                            alert,
                            held: None,
                        }));
                    }
                    *slot = Some(Slot {
                        ring: Ring::new(capacity),
                        last_ts: f64::NEG_INFINITY,
                        last_at: None,
                        bindings,
                    });
                }
                (false, true) => {
                    let old = slot.take().expect("checked is_some");
                    for b in old.bindings {
                        if let Some(mut binding) = self.bindings[b as usize].take() {
                            self.changed |= binding.alert.phase != Phase::Ok;
                            let last = binding.alert;
                            if let Some(t) = binding.alert.vanish() {
                                let rule = &self.rules[binding.rule as usize];
                                out.push(make_notification(
                                    &self.host,
                                    rule,
                                    registry,
                                    binding.series,
                                    now,
                                    &last,
                                    t,
                                ));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// Evaluates one sample; notifications (delivered or not, silenced ones left out) are
    /// appended to `out`.
    pub fn tick(&mut self, registry: &Registry, sample: &Sample, out: &mut Vec<Notification>) {
        self.evaluate(registry, sample, out, true);
    }

    /// Feeds saved rings back into the windows (`once` between runs, `run` across a reload),
    /// for the series that still exist; alert states do not move.
    pub fn warm_rings(&mut self, registry: &Registry, rings: &[SavedRing]) {
        let mut sample = Sample::default();
        for ring in rings {
            let Ok((metric, label)) = crate::series::parse_series_key(&ring.series) else {
                continue;
            };
            let Some(id) = registry.find(metric, label).filter(|&id| registry.info(id).live) else {
                continue;
            };
            // Only finite, plausible times: no content of a state file may panic the windows.
            for &(ts, value) in
                ring.entries.iter().filter(|(ts, v)| ts.is_finite() && *ts >= 0.0 && v.is_finite())
            {
                sample.clear();
                sample.unix_ts = ts;
                sample.points.push((id, value));
                self.warm(registry, &sample);
            }
        }
    }

    /// Feeds a sample into the windows without moving alert states (restoring saved rings).
    pub fn warm(&mut self, registry: &Registry, sample: &Sample) {
        let mut sink = Vec::new();
        self.evaluate(registry, sample, &mut sink, false);
    }

    fn evaluate(
        &mut self,
        registry: &Registry,
        sample: &Sample,
        out: &mut Vec<Notification>,
        step: bool,
    ) {
        let now = sample.unix_ts;
        self.rebind(registry, now, out);
        let Engine {
            rules, escalation, host, max_gap_s, slots, bindings, silences, changed, ..
        } = self;
        let suppressed = &mut self.suppressed;
        let mut firing_dt: f64 = 0.0;
        for &(id, value) in &sample.points {
            let Some(Some(slot)) = slots.get_mut(id.0 as usize) else { continue };
            if !value.is_finite() || now == slot.last_ts {
                continue;
            }
            let dt = step_dt(slot, now, sample.at, *max_gap_s);
            slot.last_at = sample.at;
            // A gap, or a clock that went backwards (an NTP step): the windows restart here
            // rather than freeze until the clock catches up.
            if now < slot.last_ts || now - slot.last_ts > *max_gap_s {
                for &b in &slot.bindings {
                    if let Some(binding) = bindings[b as usize].as_mut() {
                        binding.window.reset(&slot.ring);
                    }
                }
            }
            slot.last_ts = now;
            for &b in &slot.bindings {
                if let Some(binding) = bindings[b as usize].as_mut() {
                    binding.window.before_push(&rules[binding.rule as usize], &slot.ring);
                }
            }
            let seq = slot.ring.push(now, value);
            for &b in &slot.bindings {
                let Some(binding) = bindings[b as usize].as_mut() else { continue };
                let rule = &rules[binding.rule as usize];
                let verdict = binding.window.after_push(rule, &slot.ring, seq);
                if !step {
                    binding.alert.value = verdict.value;
                    continue;
                }
                let may_notify = verdict.warn
                    || verdict.crit
                    || matches!(binding.alert.phase, Phase::Firing { .. });
                let covering = if may_notify && !silences.is_empty() {
                    silence::covering(silences, &rule.name, registry.info(id), now)
                } else {
                    None
                };
                let silenced = covering.is_some();
                let held = covering.and_then(|s| {
                    binding.alert.would_notify(now, dt, &verdict, escalation).map(|t| (s, t))
                });
                let before = std::mem::discriminant(&binding.alert.phase);
                if let Some(t) = binding.alert.step(now, dt, &verdict, escalation, silenced) {
                    out.push(make_notification(host, rule, registry, id, now, &binding.alert, t));
                    *changed = true;
                } else if let Some((s, t)) = held {
                    let what = Some((t.episode, t.event, t.severity));
                    if binding.held != what && suppressed.len() < SUPPRESSED_MAX {
                        binding.held = what;
                        let n = make_notification(host, rule, registry, id, now, &binding.alert, t);
                        suppressed.push(Suppressed {
                            notification: n,
                            silence_id: s.id.clone(),
                            comment: s.comment.clone(),
                            until: s.until,
                        });
                    }
                }
                *changed |= before != std::mem::discriminant(&binding.alert.phase);
                if matches!(binding.alert.phase, Phase::Firing { .. }) {
                    firing_dt = firing_dt.max(dt);
                }
            }
        }
        self.unsaved_firing_s += firing_dt;
        if self.unsaved_firing_s >= CHECKPOINT_S {
            self.changed = true;
        }
    }

    /// The notifications silences held back since the last call, oldest first (see the module
    /// documentation); for the events log. The buffer is kept for the next ones.
    pub fn take_suppressed(&mut self) -> std::vec::Drain<'_, Suppressed> {
        self.suppressed.drain(..)
    }

    /// True (once) when an alert changed phase or notified since the last call: time to save.
    /// Also true about once per `CHECKPOINT_S` of elapsed time while something fires, so the
    /// saved elapsed counters stay fresh for a restart.
    pub fn take_changed(&mut self) -> bool {
        let changed = std::mem::take(&mut self.changed);
        if changed {
            self.unsaved_firing_s = 0.0;
        }
        changed
    }

    /// Ends restored alerts whose series did not come back (call after the first tick of
    /// `run` or `once`): the announced ones resolve into `out`.
    pub fn drop_unbound_restored(&mut self, now: f64, out: &mut Vec<Notification>) {
        self.changed |= !self.restored.is_empty();
        for ((rule_name, series), mut state) in self.restored.drain() {
            let rule = self.rules.iter().find(|r| *r.name == *rule_name);
            let Ok((metric, label)) = crate::series::parse_series_key(&series) else { continue };
            let value = state.value;
            let Some(t) = state.vanish() else { continue };
            // Its series is gone, or its rule was removed from the config: either way the
            // episode is over, and receivers that were told it started are told it ended.
            let (name, threshold, description) = match rule {
                Some(r) => (r.name.clone(), r.clear_text.clone(), r.description.clone()),
                None => {
                    log::info!(rule = rule_name.as_str(), series = series.as_str(); "rule no longer configured; its alert is resolved");
                    (Arc::from(rule_name.as_str()), Arc::from("rule removed from the config"), None)
                }
            };
            out.push(Notification {
                ts: now,
                host: self.host.clone(),
                rule: name,
                series: Arc::from(series.as_str()),
                metric,
                label: metric.label_key().zip(label.map(Arc::from)),
                severity: t.severity,
                event: t.event,
                value,
                threshold,
                since: t.episode,
                seq: t.seq,
                description,
            });
        }
    }

    /// The alert states worth saving (everything not ok).
    pub fn saved_alerts(&self, registry: &Registry) -> Vec<SavedAlert> {
        let mut saved: Vec<SavedAlert> = self
            .bindings
            .iter()
            .flatten()
            .filter(|b| b.alert.phase != Phase::Ok)
            .map(|b| SavedAlert {
                rule: self.rules[b.rule as usize].rule.name.clone(),
                series: registry.info(b.series).key.to_string(),
                state: b.alert,
            })
            .collect();
        saved.extend(self.restored.iter().map(|((rule, series), state)| SavedAlert {
            rule: rule.clone(),
            series: series.clone(),
            state: *state,
        }));
        saved
    }

    /// Every ring's content (for `once`, whose windows span runs).
    pub fn saved_rings(&self, registry: &Registry) -> Vec<SavedRing> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (i, s)))
            .filter(|(_, s)| !s.ring.is_empty())
            .map(|(i, s)| SavedRing {
                series: registry.info(SeriesId(i as u32)).key.to_string(),
                entries: s.ring.iter().map(|e| (e.ts, e.value)).collect(),
            })
            .collect()
    }

    /// A `firing` notification for every alert that is firing and was announced: what
    /// channels that mirror state (Alertmanager) must know after a restart.
    pub fn announced_firing(&self, registry: &Registry, now: f64) -> Vec<Notification> {
        self.bindings
            .iter()
            .flatten()
            .filter_map(|b| match b.alert.phase {
                Phase::Firing { severity, since, seq, announced: true, .. } => {
                    let t = crate::alerts::Transition {
                        event: crate::alerts::EventKind::Firing,
                        severity,
                        episode: since,
                        seq,
                    };
                    let rule = &self.rules[b.rule as usize];
                    Some(make_notification(&self.host, rule, registry, b.series, now, &b.alert, t))
                }
                _ => None,
            })
            .collect()
    }

    /// Every bound (rule, series) with its current state, for `once` output and status pages.
    pub fn alerts<'a>(
        &'a self,
        registry: &'a Registry,
    ) -> impl Iterator<Item = AlertView<'a>> + 'a {
        self.bindings.iter().flatten().map(move |b| AlertView {
            rule: &self.rules[b.rule as usize],
            series: registry.info(b.series),
            state: &b.alert,
        })
    }
}

/// A read-only view of one alert.
#[derive(Debug)]
pub struct AlertView<'a> {
    /// The rule.
    pub rule: &'a CompiledRule,
    /// The series.
    pub series: &'a crate::series::SeriesInfo,
    /// Its state.
    pub state: &'a AlertState,
}

/// The elapsed seconds between a series' previous sample and this one (`now`, `at`): the
/// monotonic difference when both carry a monotonic time, else the wall difference clamped to
/// `[0, max_gap_s]`; 0 for the series' first sample in this engine.
fn step_dt(slot: &Slot, now: f64, at: Option<Instant>, max_gap_s: f64) -> f64 {
    match (at, slot.last_at) {
        (Some(at), Some(last)) => at.saturating_duration_since(last).as_secs_f64(),
        _ if slot.last_ts.is_finite() => (now - slot.last_ts).clamp(0.0, max_gap_s.max(0.0)),
        _ => 0.0,
    }
}

fn make_notification(
    host: &Arc<str>,
    rule: &CompiledRule,
    registry: &Registry,
    id: SeriesId,
    now: f64,
    state: &AlertState,
    t: crate::alerts::Transition,
) -> Notification {
    let info = registry.info(id);
    let threshold = match t.event {
        crate::alerts::EventKind::Resolved => rule.clear_text.clone(),
        _ => rule.threshold_text(t.severity).clone(),
    };
    Notification {
        ts: now,
        host: host.clone(),
        rule: rule.name.clone(),
        series: info.key.clone(),
        metric: info.metric,
        label: info.metric.label_key().zip(info.label.clone()),
        severity: t.severity,
        event: t.event,
        value: state.value,
        threshold,
        since: t.episode,
        seq: t.seq,
        description: rule.description.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::EventKind;
    use crate::config::Severity;
    use crate::metrics::Metric;

    fn config() -> Config {
        let text = r#"{"state_dir": "/tmp/hostwatch-engine-unit", "interval": "5s",
            "rules": [{"name": "disk", "metric": "disk.used_percent", "warn": "> 90"}]}"#;
        crate::config::load_str(text, "t.json", &|_| None).unwrap()
    }

    fn sample(ts: f64, points: &[(SeriesId, f64)]) -> Sample {
        Sample { unix_ts: ts, points: points.to_vec(), ..Sample::default() }
    }

    #[test]
    fn a_silenced_notification_is_kept_once_with_its_silence_until_drained() {
        let mut reg = Registry::new();
        let data = reg.intern(Metric::DiskUsedPercent, Some("/data"));
        let mut engine = Engine::new(&config(), None);
        let quiet = Silence {
            id: "s1".into(),
            rule: Some("di*".into()),
            matchers: Default::default(),
            until: 1e12,
            comment: "disk swap, OPS-1".into(),
        };
        let other = Silence { id: "s2".into(), ..quiet.clone() };
        engine.set_silences(vec![quiet, other]);
        let mut out = Vec::new();
        engine.tick(&reg, &sample(0.0, &[(data, 50.0)]), &mut out);
        assert_eq!(engine.take_suppressed().count(), 0, "nothing held back while ok");
        engine.tick(&reg, &sample(5.0, &[(data, 95.0)]), &mut out);
        assert!(out.is_empty());
        let held: Vec<Suppressed> = engine.take_suppressed().collect();
        assert_eq!(held.len(), 1);
        let n = &held[0].notification;
        assert_eq!(
            (&*n.rule, &*n.series, n.event),
            ("disk", "disk.used_percent{mount=/data}", EventKind::Firing)
        );
        assert_eq!(
            (held[0].silence_id.as_str(), held[0].comment.as_str()),
            ("s1", "disk swap, OPS-1")
        );
        // Still held back at the next ticks, but recorded once.
        engine.tick(&reg, &sample(10.0, &[(data, 96.0)]), &mut out);
        engine.tick(&reg, &sample(15.0, &[(data, 96.0)]), &mut out);
        assert_eq!(engine.take_suppressed().count(), 0);
        // The silence is lifted: the late announcement is the notification that was held.
        engine.set_silences(Vec::new());
        engine.tick(&reg, &sample(20.0, &[(data, 96.0)]), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].event, out[0].episode_key()), (EventKind::Firing, n.episode_key()));
        assert_eq!(engine.take_suppressed().count(), 0);
    }

    #[test]
    fn series_that_appear_later_are_bound_and_vanished_ones_resolve() {
        let mut reg = Registry::new();
        let root = reg.intern(Metric::DiskUsedPercent, Some("/"));
        let mut engine = Engine::new(&config(), None);
        let mut out = Vec::new();
        engine.tick(&reg, &sample(0.0, &[(root, 50.0)]), &mut out);
        assert!(out.is_empty());
        // A disk is mounted: its series is picked up at the next tick and fires on its own.
        let data = reg.intern(Metric::DiskUsedPercent, Some("/data"));
        engine.tick(&reg, &sample(5.0, &[(root, 50.0), (data, 95.0)]), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (&*out[0].series, out[0].event),
            ("disk.used_percent{mount=/data}", EventKind::Firing)
        );
        // It is unmounted while firing: the episode ends with a resolution, and its binding goes.
        out.clear();
        reg.retire(data);
        engine.tick(&reg, &sample(10.0, &[(root, 50.0)]), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (&*out[0].series, out[0].event),
            ("disk.used_percent{mount=/data}", EventKind::Resolved)
        );
        assert_eq!(engine.alerts(&reg).count(), 1, "only / is still bound");
        assert!(engine.take_changed());
    }

    #[test]
    fn an_announced_alert_of_a_removed_rule_resolves() {
        let mut firing = crate::alerts::AlertState::default();
        let verdict = crate::rules::window::Verdict {
            value: 97.0,
            warn: true,
            crit: false,
            clear: false,
            latest_meets: true,
        };
        firing.step(100.0, 0.0, &verdict, &crate::config::Escalation::default(), false);
        let mut engine = Engine::new(&config(), None);
        engine.restore_alerts(vec![SavedAlert {
            rule: "old_rule".into(),
            series: "disk.used_percent{mount=/}".into(),
            state: firing,
        }]);
        let mut out = Vec::new();
        engine.drop_unbound_restored(200.0, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((&*out[0].rule, out[0].event, out[0].seq), ("old_rule", EventKind::Resolved, 2));
        assert_eq!(out[0].value, 97.0);
        assert_eq!(out[0].label.as_ref().map(|(_, v)| &**v), Some("/"));
    }

    #[test]
    fn warmed_rings_carry_a_for_window_into_a_new_engine() {
        let text = r#"{"state_dir": "/tmp/hostwatch-engine-unit", "interval": "5s",
            "rules": [{"name": "hot", "metric": "cpu.usage", "warn": "> 80", "for": "20s"}]}"#;
        let config = crate::config::load_str(text, "t.json", &|_| None).unwrap();
        let mut reg = Registry::new();
        let cpu = reg.intern(Metric::CpuUsage, None);
        let mut first = Engine::new(&config, None);
        let mut out = Vec::new();
        for t in [0.0, 5.0, 10.0] {
            first.tick(&reg, &sample(t, &[(cpu, 90.0)]), &mut out);
        }
        assert!(out.is_empty(), "held 10 s of 20");
        // A reload: a new engine gets the old rings and keeps counting from t=0.
        let rings = first.saved_rings(&reg);
        let mut second = Engine::new(&config, None);
        second.warm_rings(&reg, &rings);
        second.tick(&reg, &sample(15.0, &[(cpu, 90.0)]), &mut out);
        assert!(out.is_empty());
        second.tick(&reg, &sample(20.0, &[(cpu, 90.0)]), &mut out);
        assert_eq!(out.len(), 1, "fires at t=20, not 20 s after the reload");
        assert_eq!(out[0].event, EventKind::Firing);
    }

    fn clock_config() -> Config {
        let text = r#"{"state_dir": "/tmp/hostwatch-engine-unit", "interval": "5s",
            "escalation": {"remind_every": "15s", "critical_after": "60s"},
            "rules": [{"name": "now", "metric": "cpu.usage", "warn": "> 80"},
                      {"name": "held", "metric": "cpu.usage", "warn": "> 80", "for": "10s"}]}"#;
        crate::config::load_str(text, "t.json", &|_| None).unwrap()
    }

    /// (rule, event, episode) of each notification.
    fn events(out: &[Notification]) -> Vec<(String, EventKind, f64)> {
        out.iter().map(|n| (n.rule.to_string(), n.event, n.since)).collect()
    }

    #[test]
    fn reminders_and_escalation_follow_the_monotonic_clock_when_unix_ts_jumps() {
        let mut reg = Registry::new();
        let cpu = reg.intern(Metric::CpuUsage, None);
        let mut engine = Engine::new(&clock_config(), None);
        let base = Instant::now();
        let t0 = 1_800_000_000.0;
        let mut out = Vec::new();
        for k in 0..20u32 {
            // The wall clock steps back 1 h at tick 6 and forward 25 h at tick 12; the
            // monotonic clock advances 5 s every tick.
            let jump = match k {
                0..6 => 0.0,
                6..12 => -3600.0,
                _ => 90_000.0,
            };
            let mut s = sample(t0 + 5.0 * k as f64 + jump, &[(cpu, 90.0)]);
            s.at = Some(base + std::time::Duration::from_secs(5 * k as u64));
            engine.tick(&reg, &s, &mut out);
        }
        let got = events(&out);
        let now: Vec<EventKind> =
            got.iter().filter(|(r, ..)| r == "now").map(|(_, e, _)| *e).collect();
        use EventKind::*;
        assert_eq!(now, [Firing, Reminder, Reminder, Reminder, Escalated, Reminder, Reminder]);
        // The `for` window restarts at each step (a backward clock, then a gap), but a partial
        // window never clears: the alert stays firing, in one episode, and keeps reminding.
        let held: Vec<&(String, EventKind, f64)> =
            got.iter().filter(|(r, ..)| r == "held").collect();
        assert_eq!(held[0].1, Firing, "{held:?}");
        assert!(held.iter().all(|(_, e, since)| *e != Resolved && *since == held[0].2), "{held:?}");
        assert!(held.iter().filter(|(_, e, _)| *e == Reminder).count() >= 4, "{held:?}");
        assert_eq!(held.iter().filter(|(_, e, _)| *e == Escalated).count(), 1, "{held:?}");
        assert!(engine.alerts(&reg).all(|a| a.state.firing_severity() == Some(Severity::Critical)));
    }

    #[test]
    fn without_a_monotonic_clock_wall_steps_are_clamped_to_the_gap() {
        // `once` and `replay`: dt comes from the timestamps, clamped to [0, max_gap].
        let mut reg = Registry::new();
        let cpu = reg.intern(Metric::CpuUsage, None);
        let mut engine = Engine::new(&clock_config(), None);
        let mut out = Vec::new();
        let mut ts = 0.0;
        for step in [0.0, 5.0, 90_000.0, 5.0, -3600.0, 5.0] {
            ts += step;
            engine.tick(&reg, &sample(ts, &[(cpu, 90.0)]), &mut out);
        }
        let now: Vec<EventKind> =
            events(&out).into_iter().filter(|(r, ..)| r == "now").map(|(_, e, _)| e).collect();
        // 0 + 5 + 12.5 (the +25 h step, clamped) + 5 + 0 (backwards) + 5 = 27.5 s of firing:
        // one reminder, no escalation.
        assert_eq!(now, [EventKind::Firing, EventKind::Reminder]);
        let view = engine.alerts(&reg).find(|a| &*a.rule.name == "now").unwrap();
        let Phase::Firing { firing_s, severity, .. } = view.state.phase else { panic!("firing") };
        assert_eq!((firing_s, severity), (27.5, Severity::Warning));
    }

    #[test]
    fn a_restored_alert_resumes_its_elapsed_counters_whatever_the_wall_clock_says() {
        let mut reg = Registry::new();
        let cpu = reg.intern(Metric::CpuUsage, None);
        let saved = serde_json::json!({"phase": "firing", "severity": "warning",
            "since": 1_800_000_000.0, "last_notified": 1_800_000_050.0, "seq": 3,
            "announced": true, "told": "warning", "firing_s": 55.0, "quiet_s": 5.0, "value": 90.0});
        let state: AlertState = serde_json::from_value(saved).unwrap();
        let mut engine = Engine::new(&clock_config(), None);
        engine.restore_alerts(vec![SavedAlert {
            rule: "now".into(),
            series: "cpu.usage".into(),
            state,
        }]);
        let base = Instant::now();
        let mut out = Vec::new();
        // Restarted a day later by the wall: the first step adds no time of its own.
        let mut s = sample(1_800_090_000.0, &[(cpu, 90.0)]);
        s.at = Some(base);
        engine.tick(&reg, &s, &mut out);
        assert!(events(&out).iter().all(|(r, ..)| r != "now"), "{out:?}");
        let mut s = sample(1_800_090_005.0, &[(cpu, 90.0)]);
        s.at = Some(base + std::time::Duration::from_secs(5));
        engine.tick(&reg, &s, &mut out);
        let got: Vec<_> = events(&out).into_iter().filter(|(r, ..)| r == "now").collect();
        assert_eq!(got, [("now".to_string(), EventKind::Escalated, 1_800_000_000.0)]);
    }

    #[test]
    fn the_state_is_worth_saving_once_a_minute_while_something_fires() {
        let mut reg = Registry::new();
        let cpu = reg.intern(Metric::CpuUsage, None);
        let mut engine = Engine::new(&config_without_escalation(), None);
        let base = Instant::now();
        let mut out = Vec::new();
        let mut saves = 0;
        for k in 0..=60u64 {
            let mut s = sample(5.0 * k as f64, &[(cpu, 90.0)]);
            s.at = Some(base + std::time::Duration::from_secs(5 * k));
            engine.tick(&reg, &s, &mut out);
            saves += engine.take_changed() as u32;
        }
        // The firing transition, then one checkpoint per 60 s of the 300 s that followed.
        assert_eq!(saves, 1 + 5);
    }

    fn config_without_escalation() -> Config {
        let text = r#"{"state_dir": "/tmp/hostwatch-engine-unit", "interval": "5s",
            "rules": [{"name": "now", "metric": "cpu.usage", "warn": "> 80"}]}"#;
        crate::config::load_str(text, "t.json", &|_| None).unwrap()
    }
}
