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
//! the caller drains [`Engine::take_suppressed`], once per (episode, event, severity) of an
//! alert: a silenced episode is not recorded again at every tick, only when what it would
//! tell changes (a reminder falls due, it escalates). What was recorded is kept in the alert
//! state (`AlertState::held`) and saved with it, so a new engine (a restart, a reload, the
//! next `once` run) does not record it again. Nothing is asked, kept or allocated for an alert no
//! silence covers; at most `SUPPRESSED_MAX` records wait for a caller that does not drain.

use crate::alerts::{AlertState, Cause, EscalatedBy, NoDataReason, Phase, Transition};
use crate::collect::Sample;
use crate::config::Severity;
use crate::config::{Config, Escalation, FlapLimits};
use crate::event::Notification;
use crate::ring::Ring;
use crate::rules::CompiledRule;
use crate::rules::window::WindowState;
use crate::series::{Registry, SeriesId, SeriesInfo};
use crate::silence::{self, Silence, Suppressed};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// How far apart two samples of a series may be, in intervals, before it counts as a gap.
pub const GAP_INTERVALS: f64 = 2.5;

/// How long a live series of a pending alert may bring no sample before the alert opens a
/// provisional episode with a `nodata` (a firing one says so after a gap).
const PENDING_GRACE_S: f64 = 60.0;

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
}

/// One series the engine follows.
#[derive(Debug)]
struct Slot {
    ring: Ring,
    /// Wall (or recorded) time of the series' latest sample.
    last_ts: f64,
    /// Monotonic time of that sample, when it had one.
    last_at: Option<Instant>,
    /// Wall time the series was bound: how long it has been silent when it never brought a
    /// sample in this engine.
    bound_at: f64,
    bindings: Vec<u32>,
}

/// An open alert whose series is not live (gone, or not seen since a restart): it waits
/// without data for its series to come back, or for `nodata_resolve_after`.
#[derive(Debug)]
struct Orphan {
    rule: u32,
    info: SeriesInfo,
    alert: AlertState,
}

/// A rule's `absent` watch: an alert on a series that is not there.
#[derive(Debug)]
struct Absence {
    rule: u32,
    /// `absent(metric{label=pattern})`, not live: no collector makes it.
    info: SeriesInfo,
    limit_s: f64,
    /// Elapsed seconds without a sample of any series the rule applies to; NaN until the
    /// first step (then derived from a restored pending alert's wall time, for `once`).
    missing_s: f64,
    alert: AlertState,
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
    orphans: Vec<Orphan>,
    absences: Vec<Absence>,
    /// Per rule: a series it applies to brought a sample this tick (for `absent`).
    seen: Vec<bool>,
    /// Per rule: `nodata_resolve_after` in seconds.
    resolve_after_s: Vec<f64>,
    /// Per rule: flap detection's thresholds (`None`: off).
    flap: Vec<Option<FlapLimits>>,
    /// Wall and monotonic time of the previous evaluating tick.
    last_tick: Option<(f64, Option<Instant>)>,
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
        let rules: Vec<CompiledRule> = config.rules.iter().map(CompiledRule::new).collect();
        let absences = rules
            .iter()
            .enumerate()
            .filter_map(|(r, rule)| {
                let limit = rule.rule.absent?;
                Some(Absence {
                    rule: r as u32,
                    info: absent_series(rule),
                    limit_s: limit.as_secs_f64(),
                    missing_s: f64::NAN,
                    alert: AlertState::default(),
                })
            })
            .collect();
        let resolve_after_s = rules
            .iter()
            .map(|r| {
                r.rule.nodata_resolve_after.unwrap_or(config.nodata_resolve_after).as_secs_f64()
            })
            .collect();
        let flap = rules.iter().map(|r| r.rule.flap.resolve(config.flap)).collect();
        Engine {
            seen: vec![false; rules.len()],
            resolve_after_s,
            flap,
            absences,
            orphans: Vec::new(),
            last_tick: None,
            rules,
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
        for absence in &mut self.absences {
            let rule = self.rules[absence.rule as usize].rule.name.clone();
            if let Some(state) = self.restored.remove(&(rule, absence.info.key.to_string())) {
                absence.alert = state;
            }
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
                            .or_else(|| {
                                let i = self
                                    .orphans
                                    .iter()
                                    .position(|o| o.rule == r && o.info.key == info.key)?;
                                Some(self.orphans.swap_remove(i).alert)
                            })
                            .unwrap_or_default();
                        let window = WindowState::new(rule, capacity, self.interval_s);
                        bindings.push(self.bindings.len() as u32);
                        self.bindings.push(Some(Binding { rule: r, series: id, window, alert }));
                    }
                    *slot = Some(Slot {
                        ring: Ring::new(capacity),
                        last_ts: f64::NEG_INFINITY,
                        last_at: None,
                        bound_at: now,
                        bindings,
                    });
                }
                (false, true) => {
                    // The series went away (a mount unmounted, an interface removed): its open
                    // alerts say so and wait for it, never "resolved".
                    let old = slot.take().expect("checked is_some");
                    for b in old.bindings {
                        let Some(mut binding) = self.bindings[b as usize].take() else { continue };
                        let rule = &self.rules[binding.rule as usize];
                        let t = if binding.alert.phase == Phase::Ok {
                            // Only a flap period the series took with it has anything to say.
                            let Some(t) = binding.alert.end_flap_with_series() else { continue };
                            Some(t)
                        } else {
                            let hold = Hold {
                                host: &self.host,
                                silences: &self.silences,
                                suppressed: &mut self.suppressed,
                            };
                            lose_data(
                                hold,
                                (rule, info),
                                &mut binding.alert,
                                now,
                                old.last_ts,
                                NoDataReason::SeriesGone,
                            )
                        };
                        self.changed = true;
                        if let Some(t) = t {
                            out.push(make_notification(
                                &self.host,
                                rule,
                                info,
                                now,
                                &binding.alert,
                                t,
                            ));
                        }
                        if binding.alert.phase != Phase::Ok {
                            self.orphans.push(Orphan {
                                rule: binding.rule,
                                info: info.clone(),
                                alert: binding.alert,
                            });
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
        let first_tick = self.last_tick.is_none();
        let tick_dt = if step { self.tick_dt(now, sample.at) } else { 0.0 };
        let Engine {
            rules,
            escalation,
            host,
            max_gap_s,
            slots,
            bindings,
            silences,
            changed,
            seen,
            flap,
            ..
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
                seen[binding.rule as usize] = true;
                let limits = flap[binding.rule as usize].as_ref();
                let may_notify = verdict.warn
                    || verdict.crit
                    || matches!(binding.alert.phase, Phase::Firing { .. })
                    || binding.alert.flap.is_flapping();
                let covering = if may_notify && !silences.is_empty() {
                    silence::covering(silences, &rule.name, registry.info(id), now)
                } else {
                    None
                };
                let silenced = covering.is_some();
                let held = covering.and_then(|s| {
                    let alert = &binding.alert;
                    alert.would_notify(now, dt, &verdict, escalation, limits).map(|t| (s, t))
                });
                let before = std::mem::discriminant(&binding.alert.phase);
                let lost = binding.alert.nodata().is_some();
                let flap_before = (binding.alert.flap.newest(), binding.alert.flap.is_flapping());
                binding.alert.note_peak(verdict.value, rule.rising);
                let t = binding.alert.evaluate(now, dt, &verdict, escalation, silenced, limits);
                if let Some(t) = t {
                    let info = registry.info(id);
                    out.push(make_notification(host, rule, info, now, &binding.alert, t));
                    *changed = true;
                    // Told: a later hold of the same kind is news again.
                    binding.alert.held = None;
                } else if let Some((s, t)) = held {
                    let what = Some(crate::alerts::Held {
                        episode: t.episode,
                        event: t.event,
                        severity: t.severity,
                    });
                    if binding.alert.held != what && suppressed.len() < SUPPRESSED_MAX {
                        binding.alert.held = what;
                        *changed = true;
                        let info = registry.info(id);
                        let n = make_notification(host, rule, info, now, &binding.alert, t);
                        suppressed.push(Suppressed::new(n, s, now));
                    }
                }
                *changed |= lost || before != std::mem::discriminant(&binding.alert.phase);
                // A new state in the flap history, or a flap starting or ending, is saved at
                // once; the history ageing while changes are in it, at the checkpoint.
                let flap_now = (binding.alert.flap.newest(), binding.alert.flap.is_flapping());
                *changed |= flap_before != flap_now;
                if matches!(binding.alert.phase, Phase::Firing { .. })
                    || !binding.alert.flap.settled()
                {
                    firing_dt = firing_dt.max(dt);
                }
            }
        }
        if step {
            if self.without_data(registry, now, tick_dt, first_tick, out) {
                // Time without data counts towards `nodata_resolve_after`: worth saving too.
                self.unsaved_firing_s += tick_dt;
            }
            self.step_absences(now, tick_dt, out);
        }
        self.unsaved_firing_s += firing_dt;
        if self.unsaved_firing_s >= CHECKPOINT_S {
            self.changed = true;
        }
    }

    /// The elapsed seconds since the previous evaluating tick, as `step_dt` measures a
    /// series' (0 at the first).
    fn tick_dt(&mut self, now: f64, at: Option<Instant>) -> f64 {
        let dt = match self.last_tick {
            Some((_, Some(last))) if at.is_some() => {
                at.expect("checked").saturating_duration_since(last).as_secs_f64()
            }
            Some((last, _)) if last.is_finite() => (now - last).clamp(0.0, self.max_gap_s.max(0.0)),
            _ => 0.0,
        };
        self.last_tick = Some((now, at));
        dt
    }

    /// Open alerts without data (true when there are any): those of live series that brought no sample for longer than
    /// a gap get their `nodata`; those already without data (bound or orphaned) count
    /// `tick_dt` towards `nodata_resolve_after`.
    fn without_data(
        &mut self,
        registry: &Registry,
        now: f64,
        tick_dt: f64,
        first_tick: bool,
        out: &mut Vec<Notification>,
    ) -> bool {
        let Engine {
            rules,
            host,
            max_gap_s,
            slots,
            bindings,
            silences,
            orphans,
            changed,
            resolve_after_s,
            suppressed,
            ..
        } = self;
        // The first tick of a process (each `once` run): an alert already without data
        // resumes its count from when it was last advanced, clamped like any wall difference.
        let resumed = |alert: &AlertState| match alert.nodata() {
            Some(n) if first_tick && n.counted_at.is_finite() => n.resumed_dt(now, *max_gap_s),
            _ => tick_dt,
        };
        let mut waiting = !orphans.is_empty();
        for (i, slot) in slots.iter().enumerate() {
            let Some(slot) = slot else { continue };
            // Silent since its last sample, or since it was bound if it brought none here.
            let last = if slot.last_ts.is_finite() { slot.last_ts } else { slot.bound_at };
            if !(last.is_finite() && now - last > *max_gap_s) {
                continue;
            }
            let quiet_s = now - last;
            let info = registry.info(SeriesId(i as u32));
            for &b in &slot.bindings {
                let Some(binding) = bindings[b as usize].as_mut() else { continue };
                if binding.alert.phase == Phase::Ok {
                    continue;
                }
                // A pending alert is not worth a message for a collector's hiccup: only a
                // longer silence opens a provisional episode.
                if matches!(binding.alert.phase, Phase::Pending { .. })
                    && quiet_s <= PENDING_GRACE_S
                {
                    continue;
                }
                let rule = &rules[binding.rule as usize];
                let resolve_after = resolve_after_s[binding.rule as usize];
                let t = if binding.alert.nodata().is_some() {
                    waiting = true;
                    let dt = resumed(&binding.alert);
                    binding.alert.elapse_without_data(now, dt, resolve_after)
                } else {
                    *changed = true;
                    lose_data(
                        Hold { host, silences, suppressed },
                        (rule, info),
                        &mut binding.alert,
                        now,
                        slot.last_ts,
                        NoDataReason::NoSamples,
                    )
                };
                if let Some(t) = t {
                    *changed = true;
                    out.push(make_notification(host, rule, info, now, &binding.alert, t));
                }
            }
        }
        let mut i = 0;
        while i < orphans.len() {
            let o = &mut orphans[i];
            let resolve_after = resolve_after_s[o.rule as usize];
            if let Some(t) = o.alert.elapse_without_data(now, tick_dt, resolve_after) {
                let rule = &rules[o.rule as usize];
                out.push(make_notification(host, rule, &o.info, now, &o.alert, t));
            }
            if o.alert.phase == Phase::Ok {
                *changed = true;
                orphans.swap_remove(i);
            } else {
                i += 1;
            }
        }
        waiting
    }

    /// Steps every `absent` watch: missing while no series of its rule brought a sample this
    /// tick, firing once missing for the rule's `absent`, resolved when a series reports.
    fn step_absences(&mut self, now: f64, tick_dt: f64, out: &mut Vec<Notification>) {
        let Engine {
            rules, escalation, host, silences, absences, seen, changed, suppressed, ..
        } = self;
        for a in absences.iter_mut() {
            let rule = &rules[a.rule as usize];
            let present = seen[a.rule as usize];
            a.missing_s = match (present, a.alert.phase) {
                (true, _) => 0.0,
                (false, _) if a.missing_s.is_finite() => a.missing_s + tick_dt,
                // The first step of this process: a restored watch resumes from its state.
                (false, Phase::Pending { since }) => (now - since).clamp(0.0, a.limit_s),
                (false, Phase::Firing { .. }) => a.limit_s,
                (false, Phase::Ok) => 0.0,
            };
            let missing = !present && a.missing_s >= a.limit_s;
            let critical = rule.crit.is_some() || rule.warn.is_none();
            let verdict = crate::rules::window::Verdict {
                value: f64::NAN,
                warn: missing && !critical,
                crit: missing && critical,
                clear: present,
                latest_meets: !present,
            };
            let covering = if missing || matches!(a.alert.phase, Phase::Firing { .. }) {
                silence::covering(silences, &rule.name, &a.info, now)
            } else {
                None
            };
            let held = covering.and_then(|s| {
                let mut probe = a.alert;
                let t = probe.step(now, tick_dt, &verdict, escalation, false)?;
                Some((s, t, probe))
            });
            let before = std::mem::discriminant(&a.alert.phase);
            if let Some(t) = a.alert.step(now, tick_dt, &verdict, escalation, covering.is_some()) {
                out.push(make_notification(host, rule, &a.info, now, &a.alert, t));
                a.alert.held = None;
                *changed = true;
            } else if let Some((s, t, probe)) = held {
                let n = make_notification(host, rule, &a.info, now, &probe, t);
                *changed |= record_held(suppressed, &mut a.alert, s, n, t);
            }
            *changed |= before != std::mem::discriminant(&a.alert.phase);
        }
        seen.iter_mut().for_each(|s| *s = false);
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

    /// Settles restored alerts whose series did not come back (call after the first tick of
    /// `run` or `once`): those of configured rules stay open without data (one `nodata` if
    /// that is news) until their series returns or `nodata_resolve_after` passes; those of
    /// rules removed from the config resolve into `out` if they were announced.
    pub fn drop_unbound_restored(&mut self, now: f64, out: &mut Vec<Notification>) {
        self.changed |= !self.restored.is_empty();
        let mut restored: Vec<_> = self.restored.drain().collect();
        // A stable order: notifications and orphans do not depend on the hash map's.
        restored.sort_by(|a, b| a.0.cmp(&b.0));
        for ((rule_name, series), mut state) in restored {
            let inner = crate::series::absent_inner(&series);
            let Ok((metric, label)) = crate::series::parse_series_key(inner.unwrap_or(&series))
            else {
                log::warn!(rule = rule_name.as_str(), series = series.as_str(); "a saved alert names a series that cannot exist; it is dropped");
                continue;
            };
            let position = self.rules.iter().position(|r| *r.name == *rule_name);
            let info = SeriesInfo {
                metric,
                label: label.map(Arc::from),
                key: Arc::from(series.as_str()),
                live: false,
            };
            let (Some(r), None) = (position, inner) else {
                // Its rule was removed from the config (or no longer watches for absence):
                // the episode is over, and receivers that were told it started are told it
                // ended.
                let value = state.value;
                let Some(t) = state.vanish() else { continue };
                log::info!(rule = rule_name.as_str(), series = series.as_str(); "rule no longer configured; its alert is resolved");
                out.push(Notification {
                    ts: now,
                    host: self.host.clone(),
                    rule: Arc::from(rule_name.as_str()),
                    series: info.key.clone(),
                    metric,
                    label: metric.label_key().zip(info.label.clone()),
                    severity: t.severity,
                    event: t.event,
                    value,
                    threshold: Arc::from("rule removed from the config"),
                    since: t.episode,
                    seq: t.seq,
                    description: None,
                    reason: Some(Arc::from("rule removed from the config")),
                    last_seen: None,
                    firing_s: t.firing_s,
                    peak: t.peak,
                    escalated_by: t.escalated_by,
                    style: crate::humanize::Style::Binary,
                    flap: None,
                    rule_context: None,
                });
                continue;
            };
            let rule = &self.rules[r];
            let resolve_after = self.resolve_after_s[r];
            if let Some(t) = state.end_flap_with_series() {
                out.push(make_notification(&self.host, rule, &info, now, &state, t));
                continue;
            }
            if let Some(n) = state.nodata() {
                // Already without data in the previous process: the count goes on from when
                // it was last advanced (clamped, as any wall difference is).
                let dt = n.resumed_dt(now, self.max_gap_s);
                if let Some(t) = state.elapse_without_data(now, dt, resolve_after) {
                    out.push(make_notification(&self.host, rule, &info, now, &state, t));
                }
                if state.phase != Phase::Ok {
                    self.orphans.push(Orphan { rule: r as u32, info, alert: state });
                }
                continue;
            }
            let held = match state.phase {
                Phase::Firing { last_notified, .. } => last_notified,
                Phase::Pending { since } => since,
                Phase::Ok => now,
            };
            let hold = Hold {
                host: &self.host,
                silences: &self.silences,
                suppressed: &mut self.suppressed,
            };
            let t = lose_data(
                hold,
                (rule, &info),
                &mut state,
                now,
                held.min(now),
                NoDataReason::SeriesGone,
            );
            if let Some(t) = t {
                out.push(make_notification(&self.host, rule, &info, now, &state, t));
            }
            if state.phase != Phase::Ok {
                self.orphans.push(Orphan { rule: r as u32, info, alert: state });
            }
        }
    }

    /// The alert states worth saving (everything not ok, and ok ones whose flap history
    /// holds a change).
    pub fn saved_alerts(&self, registry: &Registry) -> Vec<SavedAlert> {
        let mut saved: Vec<SavedAlert> = self
            .bindings
            .iter()
            .flatten()
            .filter(|b| b.alert.phase != Phase::Ok || !b.alert.flap.settled())
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
        saved.extend(self.unbound().filter(|(_, _, a)| a.phase != Phase::Ok).map(
            |(rule, info, state)| SavedAlert {
                rule: self.rules[rule as usize].rule.name.clone(),
                series: info.key.to_string(),
                state: *state,
            },
        ));
        saved
    }

    /// The alerts that have no live series: orphans and `absent` watches.
    fn unbound(&self) -> impl Iterator<Item = (u32, &SeriesInfo, &AlertState)> {
        let orphans = self.orphans.iter().map(|o| (o.rule, &o.info, &o.alert));
        orphans.chain(self.absences.iter().map(|a| (a.rule, &a.info, &a.alert)))
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

    /// A `firing` notification for every alert that is firing and was announced (a
    /// `flapping` for one whose flapping was): what channels that mirror state
    /// (Alertmanager) must know after a restart.
    pub fn announced_firing(&self, registry: &Registry, now: f64) -> Vec<Notification> {
        let bound =
            self.bindings.iter().flatten().map(|b| (b.rule, registry.info(b.series), &b.alert));
        bound
            .chain(self.unbound())
            .filter_map(|(r, info, alert)| match alert.phase {
                _ if alert.flap.is_flapping() => {
                    let f = alert.flap.flapping.filter(|f| f.announced)?;
                    let t = Transition {
                        event: crate::alerts::EventKind::Flapping,
                        severity: f.severity,
                        episode: f.since,
                        seq: f.seq,
                        cause: None,
                        firing_s: f.elapsed_s,
                        peak: f64::NAN,
                        escalated_by: None,
                    };
                    let rule = &self.rules[r as usize];
                    Some(make_notification(&self.host, rule, info, now, alert, t))
                }
                Phase::Firing { severity, since, seq, announced: true, .. } => {
                    let t = Transition {
                        event: crate::alerts::EventKind::Firing,
                        severity,
                        episode: since,
                        seq,
                        cause: None,
                        firing_s: 0.0,
                        peak: f64::NAN,
                        escalated_by: None,
                    };
                    let (t, rule) = (with_episode(t, alert), &self.rules[r as usize]);
                    Some(make_notification(&self.host, rule, info, now, alert, t))
                }
                _ => None,
            })
            .collect()
    }

    /// Every (rule, series) alert with its current state, for `once` output and status
    /// pages: the bound ones, then those without a live series (no data, `absent`).
    pub fn alerts<'a>(
        &'a self,
        registry: &'a Registry,
    ) -> impl Iterator<Item = AlertView<'a>> + 'a {
        let bound = self.bindings.iter().flatten().map(move |b| AlertView {
            rule: &self.rules[b.rule as usize],
            series: registry.info(b.series),
            state: &b.alert,
        });
        bound.chain(self.unbound().map(move |(r, info, state)| AlertView {
            rule: &self.rules[r as usize],
            series: info,
            state,
        }))
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

/// Where a held-back notification goes: what it needs to be made and recorded.
struct Hold<'a> {
    host: &'a Arc<str>,
    silences: &'a [Silence],
    suppressed: &'a mut Vec<Suppressed>,
}

/// [`AlertState::lose_data`] for `alert` of (`rule`, `info`),
/// silenced if a silence covers it; what a silence holds back is recorded as for any other
/// notification (once per episode, event and severity).
fn lose_data(
    hold: Hold<'_>,
    (rule, info): (&CompiledRule, &SeriesInfo),
    alert: &mut AlertState,
    now: f64,
    last_seen: f64,
    reason: NoDataReason,
) -> Option<Transition> {
    let covering = if hold.silences.is_empty() {
        None
    } else {
        silence::covering(hold.silences, &rule.name, info, now)
    };
    let mut probe = *alert;
    let t = alert.lose_data(now, last_seen, reason, covering.is_some());
    if let (Some(s), None) = (covering, t)
        && let Some(would) = probe.lose_data(now, last_seen, reason, false)
    {
        let n = make_notification(hold.host, rule, info, now, &probe, would);
        record_held(hold.suppressed, alert, s, n, would);
    }
    t
}

/// Records `n` (transition `t`), held back from `alert` by silence `s`, unless the same was
/// recorded last (or the buffer is full); true when it was.
fn record_held(
    suppressed: &mut Vec<Suppressed>,
    alert: &mut AlertState,
    s: &Silence,
    n: Notification,
    t: Transition,
) -> bool {
    let what =
        Some(crate::alerts::Held { episode: t.episode, event: t.event, severity: t.severity });
    if alert.held == what || suppressed.len() >= SUPPRESSED_MAX {
        return false;
    }
    alert.held = what;
    let now = n.ts;
    suppressed.push(Suppressed::new(n, s, now));
    true
}

/// The key of a rule's `absent` watch: `absent(metric{label=pattern})`, or `absent(metric)`
/// for a rule without a matcher. No collected series has a key of that form.
fn absent_series(rule: &CompiledRule) -> SeriesInfo {
    let metric = rule.rule.metric;
    let label = rule.rule.matchers.first().map(|(_, pattern)| Arc::<str>::from(pattern.as_str()));
    let inner = crate::series::series_key(metric, label.as_deref());
    SeriesInfo { metric, label, key: Arc::from(crate::series::absent_key(&inner)), live: false }
}

fn is_absence(info: &SeriesInfo) -> bool {
    !info.live && crate::series::absent_inner(&info.key).is_some()
}

/// Why a transition happened, in words, when its cause is more than the verdict.
fn reason_text(cause: Cause, info: &SeriesInfo) -> String {
    match cause {
        Cause::NoData(reason) => reason.text(info.metric).to_string(),
        Cause::DataBack => "data is back".to_string(),
        Cause::NoDataTimeout { after_s } => format!(
            "no data for {} (nodata_resolve_after); resolved without a current value",
            duration_text(after_s)
        ),
    }
}

/// `t` with the episode's figures of `state` (for a notification made outside a step).
fn with_episode(t: Transition, state: &AlertState) -> Transition {
    match state.phase {
        Phase::Firing { firing_s, peak, escalated_by, .. } => Transition {
            firing_s: if firing_s.is_finite() { firing_s } else { 0.0 },
            peak,
            escalated_by,
            ..t
        },
        _ => t,
    }
}

fn duration_text(seconds: f64) -> String {
    let whole = if seconds.is_finite() { seconds.max(0.0).round() as u64 } else { 0 };
    crate::config::units::format_duration(std::time::Duration::from_secs(whole))
}

fn make_notification(
    host: &Arc<str>,
    rule: &CompiledRule,
    info: &SeriesInfo,
    now: f64,
    state: &AlertState,
    t: Transition,
) -> Notification {
    use crate::alerts::EventKind;
    use crate::event::{CurrentState, FlapNote};
    let flap = match t.event {
        EventKind::Flapping => Some(FlapNote { percent: state.flap.percent(), state: None }),
        EventKind::FlapEnd => Some(FlapNote {
            percent: state.flap.percent(),
            state: Some(if state.firing_severity().is_some() {
                CurrentState::Firing
            } else {
                CurrentState::Ok
            }),
        }),
        _ => None,
    };
    let ended = flap.and_then(|f| f.state) == Some(CurrentState::Ok);
    let threshold = match (t.event, t.cause) {
        (EventKind::Resolved, Some(Cause::NoDataTimeout { after_s })) => {
            Arc::from(format!("no data for {}", duration_text(after_s)))
        }
        _ if is_absence(info) => {
            let limit = rule.rule.absent.unwrap_or_default();
            let limit = crate::config::units::format_duration(limit);
            Arc::from(match t.event {
                EventKind::Resolved => "a series reports again".to_string(),
                _ => format!("no series for {limit}"),
            })
        }
        (EventKind::Resolved, _) => rule.clear_text.clone(),
        _ if ended => rule.clear_text.clone(),
        // Critical by policy: the threshold that held is the warning one.
        _ if t.escalated_by == Some(EscalatedBy::Time) => {
            rule.threshold_text(Severity::Warning).clone()
        }
        _ => rule.threshold_text(t.severity).clone(),
    };
    let reason = match (t.cause, t.event, t.escalated_by) {
        (Some(c), ..) => Some(reason_text(c, info)),
        (None, EventKind::Escalated, Some(EscalatedBy::Time)) => Some(format!(
            "warning for {}, escalated to critical by policy (critical_after)",
            duration_text(t.firing_s)
        )),
        _ => flap.map(|f| {
            let share = format!("{:.1}% of the last 21 evaluations changed state", f.percent);
            match f.state {
                None => format!("flapping: {share}; no firing or resolved until it settles"),
                Some(CurrentState::Ok) => format!("no longer flapping ({share}); ok"),
                Some(CurrentState::Firing) => format!("no longer flapping ({share}); still firing"),
            }
        }),
    };
    let last_seen = state.nodata().map(|n| n.last_seen);
    Notification {
        ts: now,
        host: host.clone(),
        rule: rule.name.clone(),
        series: info.key.clone(),
        metric: info.metric,
        label: info.metric.label_key().zip(info.label.clone()),
        severity: t.severity,
        event: t.event,
        // Resolved for want of data: there is no current value to show.
        value: if matches!(t.cause, Some(Cause::NoDataTimeout { .. })) {
            f64::NAN
        } else {
            state.value
        },
        threshold,
        since: t.episode,
        seq: t.seq,
        description: rule.description.clone(),
        reason: reason.map(Arc::from),
        last_seen,
        firing_s: t.firing_s,
        peak: t.peak,
        escalated_by: t.escalated_by,
        style: rule.style,
        flap,
        rule_context: rule.context.clone(),
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

    /// An announced warning that started firing at `since` with `value`, as a state file
    /// holds one.
    fn firing_at(since: f64, value: f64) -> AlertState {
        let mut firing = AlertState::default();
        let hot = crate::rules::window::Verdict {
            value,
            warn: true,
            crit: false,
            clear: false,
            latest_meets: true,
        };
        firing.step(since, 0.0, &hot, &Escalation::default(), false);
        firing
    }

    /// (event, series, reason) of each notification.
    fn told(out: &[Notification]) -> Vec<(EventKind, String, Option<String>)> {
        out.iter()
            .map(|n| (n.event, n.series.to_string(), n.reason.as_deref().map(str::to_string)))
            .collect()
    }

    fn told_one(
        kind: EventKind,
        series: &str,
        reason: Option<&str>,
    ) -> Vec<(EventKind, String, Option<String>)> {
        vec![(kind, series.to_string(), reason.map(str::to_string))]
    }

    #[test]
    fn notifications_share_their_rules_context_built_once() {
        let text = r#"{"state_dir": "/tmp/hostwatch-engine-unit", "interval": "5s",
            "rules": [{"name": "disk", "metric": "disk.used_percent", "warn": "> 90",
                       "summary": "Disk almost full", "runbook_url": "https://wiki/disk",
                       "labels": {"team": "db"}}]}"#;
        let config = crate::config::load_str(text, "t.json", &|_| None).unwrap();
        let mut reg = Registry::new();
        let a = reg.intern(Metric::DiskUsedPercent, Some("/a"));
        let b = reg.intern(Metric::DiskUsedPercent, Some("/b"));
        let mut engine = Engine::new(&config, None);
        let mut out = Vec::new();
        engine.tick(&reg, &sample(0.0, &[(a, 95.0), (b, 95.0)]), &mut out);
        assert_eq!(out.len(), 2);
        let (ca, cb) =
            (out[0].rule_context.as_ref().unwrap(), out[1].rule_context.as_ref().unwrap());
        assert!(Arc::ptr_eq(ca, cb), "one context per rule, shared");
        let e = out[0].to_event();
        assert_eq!(e.context.summary.as_deref(), Some("Disk almost full"));
        assert_eq!(e.context.runbook_url.as_deref(), Some("https://wiki/disk"));
        assert_eq!(e.label("team"), Some("db"));
        assert_eq!(e.label("mount"), Some("/a"));
        // A rule without any has none.
        let mut engine = Engine::new(&super::tests::config(), None);
        engine.tick(&reg, &sample(0.0, &[(a, 95.0)]), &mut out);
        assert!(out[2].rule_context.is_none());
    }

    #[test]
    fn a_silenced_notification_is_kept_once_with_its_silence_until_drained() {
        let mut reg = Registry::new();
        let data = reg.intern(Metric::DiskUsedPercent, Some("/data"));
        let mut engine = Engine::new(&config(), None);
        let quiet = Silence {
            host: None,
            id: "s1".into(),
            rule: Some("di*".into()),
            matchers: Default::default(),
            until: 1e12,
            schedule: None,
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
    fn a_series_that_vanishes_while_firing_has_no_data_not_a_resolution_and_comes_back() {
        let mut reg = Registry::new();
        let root = reg.intern(Metric::DiskUsedPercent, Some("/"));
        let mut engine = Engine::new(&config(), None);
        let mut out = Vec::new();
        engine.tick(&reg, &sample(0.0, &[(root, 50.0)]), &mut out);
        assert!(out.is_empty());
        // A disk is mounted: its series is picked up at the next tick and fires on its own.
        let data = reg.intern(Metric::DiskUsedPercent, Some("/data"));
        engine.tick(&reg, &sample(5.0, &[(root, 50.0), (data, 95.0)]), &mut out);
        let key = "disk.used_percent{mount=/data}";
        assert_eq!(told(&out), told_one(EventKind::Firing, key, None));
        // It is unmounted while firing: one `nodata`, never "resolved", and it stays open.
        out.clear();
        reg.retire(data);
        engine.tick(&reg, &sample(10.0, &[(root, 50.0)]), &mut out);
        assert_eq!(told(&out), told_one(EventKind::Nodata, key, Some("mount disappeared")));
        assert_eq!((out[0].seq, out[0].value, out[0].last_seen), (2, 95.0, Some(5.0)));
        assert_eq!(&*out[0].threshold, "> 90", "the condition that was firing");
        assert!(engine.take_changed());
        out.clear();
        for t in [15.0, 20.0, 25.0] {
            engine.tick(&reg, &sample(t, &[(root, 50.0)]), &mut out);
        }
        assert!(out.is_empty(), "said once: {out:?}");
        let open: Vec<_> = engine.alerts(&reg).filter(|a| a.state.nodata().is_some()).collect();
        assert_eq!(open.len(), 1, "listed while it waits");
        let saved = engine.saved_alerts(&reg);
        assert!(saved.iter().any(|a| a.series == key && a.state.nodata().is_some()), "{saved:?}");
        // Mounted again and healthy: the same episode resolves, saying why.
        let again = reg.intern(Metric::DiskUsedPercent, Some("/data"));
        assert_eq!(again, data, "the registry revives the id");
        engine.tick(&reg, &sample(30.0, &[(root, 50.0), (data, 40.0)]), &mut out);
        assert_eq!(told(&out), told_one(EventKind::Resolved, key, Some("data is back")));
        assert_eq!((out[0].since, out[0].seq, &*out[0].threshold), (5.0, 3, "<= 90"));
        assert!(engine.alerts(&reg).all(|a| a.state.phase == Phase::Ok));
    }

    #[test]
    fn data_back_while_still_firing_says_so_and_keeps_the_episode() {
        let mut reg = Registry::new();
        let data = reg.intern(Metric::DiskUsedPercent, Some("/data"));
        let mut engine = Engine::new(&config(), None);
        let mut out = Vec::new();
        engine.tick(&reg, &sample(0.0, &[(data, 95.0)]), &mut out);
        reg.retire(data);
        engine.tick(&reg, &sample(5.0, &[]), &mut out);
        reg.intern(Metric::DiskUsedPercent, Some("/data"));
        engine.tick(&reg, &sample(10.0, &[(data, 97.0)]), &mut out);
        let kinds: Vec<_> = out.iter().map(|n| (n.event, n.since, n.seq)).collect();
        use EventKind::*;
        assert_eq!(kinds, [(Firing, 0.0, 1), (Nodata, 0.0, 2), (Reminder, 0.0, 3)]);
        assert_eq!(out[2].reason.as_deref(), Some("data is back"));
        assert_eq!(out[2].value, 97.0);
    }

    #[test]
    fn a_live_series_without_samples_has_no_data_and_resolves_after_nodata_resolve_after() {
        let text = r#"{"state_dir": "/tmp/hostwatch-engine-unit", "interval": "5s",
            "nodata_resolve_after": "1m",
            "rules": [{"name": "disk", "metric": "disk.used_percent", "warn": "> 90"},
                      {"name": "short", "metric": "disk.used_percent", "warn": "> 90",
                       "nodata_resolve_after": "20s"}]}"#;
        let config = crate::config::load_str(text, "t.json", &|_| None).unwrap();
        let mut reg = Registry::new();
        let root = reg.intern(Metric::DiskUsedPercent, Some("/"));
        let cpu = reg.intern(Metric::CpuUsage, None);
        let mut engine = Engine::new(&config, None);
        let mut out = Vec::new();
        engine.tick(&reg, &sample(0.0, &[(root, 95.0), (cpu, 1.0)]), &mut out);
        assert_eq!(out.len(), 2);
        out.clear();
        // The collector fails for / (the series stays listed, NaN or nothing): after more
        // than a gap (12.5 s), `nodata`.
        let mut t = 0.0;
        let mut at = Vec::new();
        while t < 120.0 {
            t += 5.0;
            engine.tick(&reg, &sample(t, &[(root, f64::NAN), (cpu, 1.0)]), &mut out);
            at.extend(out.drain(..).map(|n| (t, n.rule.to_string(), n.event, n.reason)));
        }
        use EventKind::*;
        let no_samples = Some(Arc::from("no samples from the collector"));
        assert_eq!(at[0], (15.0, "disk".into(), Nodata, no_samples.clone()));
        assert_eq!(at[1], (15.0, "short".into(), Nodata, no_samples));
        // Elapsed time without data counts from the `nodata`: 20 s for `short`, 1 m else.
        assert_eq!((at[2].0, &*at[2].1, at[2].2), (35.0, "short", Resolved));
        assert_eq!((at[3].0, &*at[3].1, at[3].2), (75.0, "disk", Resolved));
        assert_eq!(
            at[3].3.as_deref(),
            Some("no data for 1m (nodata_resolve_after); resolved without a current value")
        );
        assert_eq!(at.len(), 4, "{at:?}");
    }

    #[test]
    fn a_pending_alert_that_loses_its_series_opens_a_provisional_episode() {
        let text = r#"{"state_dir": "/tmp/hostwatch-engine-unit", "interval": "5s",
            "rules": [{"name": "held", "metric": "net.rx_rate", "warn": "> 1MB/s", "for": "1m"}]}"#;
        let config = crate::config::load_str(text, "t.json", &|_| None).unwrap();
        let mut reg = Registry::new();
        let eth = reg.intern(Metric::NetRxRate, Some("eth1"));
        let mut engine = Engine::new(&config, None);
        let mut out = Vec::new();
        engine.tick(&reg, &sample(0.0, &[(eth, 5e6)]), &mut out);
        assert!(matches!(engine.alerts(&reg).next().unwrap().state.phase, Phase::Pending { .. }));
        reg.retire(eth);
        engine.tick(&reg, &sample(5.0, &[]), &mut out);
        assert_eq!(
            told(&out),
            told_one(EventKind::Nodata, "net.rx_rate{iface=eth1}", Some("interface removed"))
        );
        assert_eq!((out[0].severity, out[0].seq), (Severity::Warning, 1));
        out.clear();
        // Back, and not firing (the window restarts): the provisional episode ends.
        reg.intern(Metric::NetRxRate, Some("eth1"));
        engine.tick(&reg, &sample(10.0, &[(eth, 10.0)]), &mut out);
        assert_eq!(
            told(&out),
            told_one(EventKind::Resolved, "net.rx_rate{iface=eth1}", Some("data is back"))
        );
    }

    #[test]
    fn a_restored_alert_whose_series_is_missing_has_no_data_once_across_restarts() {
        let firing = firing_at(100.0, 97.0);
        let saved = vec![SavedAlert {
            rule: "disk".into(),
            series: "disk.used_percent{mount=/gone}".into(),
            state: firing,
        }];
        let reg = Registry::new();
        let mut first = Engine::new(&config(), None);
        first.restore_alerts(saved);
        let mut out = Vec::new();
        first.tick(&reg, &sample(200.0, &[]), &mut out);
        first.drop_unbound_restored(200.0, &mut out);
        let reason = Some("mount disappeared");
        assert_eq!(
            told(&out),
            told_one(EventKind::Nodata, "disk.used_percent{mount=/gone}", reason)
        );
        // Another restart: still without data, and nothing new to say.
        let mut second = Engine::new(&config(), None);
        second.restore_alerts(first.saved_alerts(&reg));
        out.clear();
        second.tick(&reg, &sample(300.0, &[]), &mut out);
        second.drop_unbound_restored(300.0, &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(second.alerts(&reg).count(), 1);
    }

    #[test]
    fn a_restored_alert_whose_live_series_brings_nothing_has_no_data_after_a_gap() {
        let firing = firing_at(100.0, 97.0);
        let mut reg = Registry::new();
        let root = reg.intern(Metric::DiskUsedPercent, Some("/"));
        let mut engine = Engine::new(&config(), None);
        engine.restore_alerts(vec![SavedAlert {
            rule: "disk".into(),
            series: "disk.used_percent{mount=/}".into(),
            state: firing,
        }]);
        let mut out = Vec::new();
        for t in [200.0, 205.0, 210.0, 215.0] {
            engine.tick(&reg, &sample(t, &[(root, f64::NAN)]), &mut out);
        }
        let reason = Some("no samples from the collector");
        assert_eq!(told(&out), told_one(EventKind::Nodata, "disk.used_percent{mount=/}", reason));
    }

    #[test]
    fn a_provisional_episode_waits_for_its_restarted_window_before_it_ends() {
        let text = r#"{"state_dir": "/tmp/hostwatch-engine-unit", "interval": "5s",
            "rules": [{"name": "held", "metric": "cpu.usage", "warn": "> 80", "for": "20s"}]}"#;
        let config = crate::config::load_str(text, "t.json", &|_| None).unwrap();
        let mut reg = Registry::new();
        let cpu = reg.intern(Metric::CpuUsage, None);
        let mut engine = Engine::new(&config, None);
        let mut out = Vec::new();
        engine.tick(&reg, &sample(0.0, &[(cpu, 90.0)]), &mut out);
        // Silent for more than a minute while pending: a provisional episode.
        engine.tick(&reg, &sample(70.0, &[]), &mut out);
        assert_eq!(out.iter().map(|n| n.event).collect::<Vec<_>>(), [EventKind::Nodata]);
        out.clear();
        // Back and still above 80: no resolution while the window restarts; it fires.
        for k in 0..=4 {
            engine.tick(&reg, &sample(75.0 + 5.0 * k as f64, &[(cpu, 90.0)]), &mut out);
        }
        let got: Vec<_> = out.iter().map(|n| (n.event, n.ts, n.seq)).collect();
        assert_eq!(got, [(EventKind::Firing, 95.0, 2)]);
    }

    #[test]
    fn a_nodata_or_absent_alert_held_back_by_a_silence_is_recorded_once() {
        let text = r#"{"state_dir": "/tmp/hostwatch-engine-unit", "interval": "5s",
            "rules": [{"name": "disk", "metric": "disk.used_percent", "warn": "> 90"},
                      {"name": "data_mounted", "metric": "disk.used_percent",
                       "match": {"mount": "/data"}, "absent": "10s"}]}"#;
        let config = crate::config::load_str(text, "t.json", &|_| None).unwrap();
        let mut reg = Registry::new();
        let data = reg.intern(Metric::DiskUsedPercent, Some("/data"));
        let mut engine = Engine::new(&config, None);
        let mut out = Vec::new();
        engine.tick(&reg, &sample(0.0, &[(data, 95.0)]), &mut out);
        assert_eq!(out.len(), 1, "firing, before any silence");
        out.clear();
        engine.set_silences(vec![Silence {
            host: None,
            id: "s1".into(),
            rule: None,
            matchers: Default::default(),
            until: 1e12,
            schedule: None,
            comment: "swap the disk".into(),
        }]);
        reg.retire(data);
        for t in [5.0, 10.0, 15.0, 20.0, 25.0] {
            engine.tick(&reg, &sample(t, &[]), &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
        let held: Vec<(String, EventKind, String)> = engine
            .take_suppressed()
            .map(|s| (s.notification.rule.to_string(), s.notification.event, s.silence_id))
            .collect();
        assert_eq!(
            held,
            [
                ("disk".to_string(), EventKind::Nodata, "s1".to_string()),
                ("data_mounted".to_string(), EventKind::Firing, "s1".to_string())
            ]
        );
    }

    #[test]
    fn absent_fires_when_no_series_matches_for_that_long_and_resolves_when_one_reports() {
        let text = r#"{"state_dir": "/tmp/hostwatch-engine-unit", "interval": "5s",
            "rules": [{"name": "data_mounted", "metric": "disk.used_percent",
                       "match": {"mount": "/data"}, "absent": "20s"}]}"#;
        let config = crate::config::load_str(text, "t.json", &|_| None).unwrap();
        let mut reg = Registry::new();
        let root = reg.intern(Metric::DiskUsedPercent, Some("/"));
        let mut engine = Engine::new(&config, None);
        let mut out = Vec::new();
        let mut events = Vec::new();
        for k in 0..8 {
            let t = 5.0 * k as f64;
            engine.tick(&reg, &sample(t, &[(root, 50.0)]), &mut out);
            events.extend(out.drain(..).map(|n| (t, n.event, n.severity, n.threshold)));
        }
        let key = "absent(disk.used_percent{mount=/data})";
        assert_eq!(
            events,
            [(20.0, EventKind::Firing, Severity::Critical, Arc::from("no series for 20s"))]
        );
        assert!(engine.alerts(&reg).any(|a| &*a.series.key == key));
        // Saved and restored like any alert (a restart does not re-fire it).
        let saved = engine.saved_alerts(&reg);
        assert!(saved.iter().any(|a| a.series == key), "{saved:?}");
        let data = reg.intern(Metric::DiskUsedPercent, Some("/data"));
        engine.tick(&reg, &sample(40.0, &[(root, 50.0), (data, 10.0)]), &mut out);
        assert_eq!(told(&out), told_one(EventKind::Resolved, key, None));
        assert_eq!(&*out[0].threshold, "a series reports again");
    }

    #[test]
    fn an_escalation_by_time_says_so_and_a_resolution_carries_duration_and_peak() {
        let text = r#"{"state_dir": "/tmp/hostwatch-engine-unit", "interval": "5s",
            "host": "engine-unit", "escalation": {"critical_after": "20s"},
            "rules": [{"name": "disk", "metric": "disk.used_percent", "warn": "> 50",
                       "crit": "> 90"}]}"#;
        let config = crate::config::load_str(text, "t.json", &|_| None).unwrap();
        let mut reg = Registry::new();
        let root = reg.intern(Metric::DiskUsedPercent, Some("/"));
        let mut engine = Engine::new(&config, None);
        let mut out = Vec::new();
        for (k, v) in [59.4, 63.0, 61.0, 58.0, 59.4, 40.0].into_iter().enumerate() {
            engine.tick(&reg, &sample(5.0 * k as f64, &[(root, v)]), &mut out);
        }
        let kinds: Vec<_> = out.iter().map(|n| n.event).collect();
        assert_eq!(kinds, [EventKind::Firing, EventKind::Escalated, EventKind::Resolved]);
        let esc = out[1].to_event();
        assert_eq!(esc.context.escalated_by, Some(EscalatedBy::Time));
        assert_eq!(esc.threshold, "> 50", "the threshold that held, not crit's > 90");
        assert_eq!(
            esc.context.reason.as_deref(),
            Some("warning for 20s, escalated to critical by policy (critical_after)")
        );
        assert_eq!(
            esc.summary(),
            "CRITICAL escalated disk on engine-unit: disk.used_percent{mount=/} = 59.4% (warning \
             threshold > 50); warning for 20s, escalated to critical by policy (critical_after)"
        );
        let json = out[1].to_json();
        assert_eq!(
            (json["escalated_by"].as_str(), json["episode_duration_s"].as_f64()),
            (Some("time"), Some(20.0))
        );
        let resolved = out[2].to_event();
        assert_eq!(resolved.threshold, "<= 50");
        assert_eq!(resolved.context.episode_duration_s, Some(25.0));
        assert_eq!(
            (resolved.context.peak, resolved.context.peak_text.as_deref()),
            (Some(63.0), Some("63.0%"))
        );
        assert!(
            resolved.summary().ends_with("= 40.0% (<= 50); lasted 25s, peak 63.0%"),
            "{}",
            resolved.summary()
        );
    }

    #[test]
    fn values_are_written_in_the_threshold_s_unit_family() {
        let text = r#"{"state_dir": "/tmp/hostwatch-engine-unit", "interval": "5s",
            "rules": [{"name": "wan", "metric": "net.rx_rate", "warn": "> 800Mbps"},
                      {"name": "low", "metric": "mem.available", "crit": "< 500MB"}]}"#;
        let config = crate::config::load_str(text, "t.json", &|_| None).unwrap();
        let mut reg = Registry::new();
        let eth = reg.intern(Metric::NetRxRate, Some("eth0"));
        let mem = reg.intern(Metric::MemAvailable, None);
        let mut engine = Engine::new(&config, None);
        let mut out = Vec::new();
        engine.tick(&reg, &sample(0.0, &[(eth, 110e6), (mem, 480e6)]), &mut out);
        let texts: Vec<_> = out.iter().map(|n| n.to_event().value_text).collect();
        assert_eq!(texts, ["880.0 Mbps", "480.0 MB"]);
    }

    #[test]
    fn an_announced_alert_of_a_removed_rule_resolves() {
        let firing = firing_at(100.0, 97.0);
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

    /// Ticks a square wave on `data` (95 at odd k, 50 at even k, for `n` samples) every 5 s
    /// from `from`; every notification told.
    fn square_ticks(
        engine: &mut Engine,
        reg: &Registry,
        data: SeriesId,
        ks: std::ops::Range<usize>,
        n: usize,
    ) -> Vec<Notification> {
        let mut out = Vec::new();
        for k in ks {
            let v = if k < n && k % 2 == 1 { 95.0 } else { 50.0 };
            engine.tick(reg, &sample(5.0 * k as f64, &[(data, v)]), &mut out);
        }
        out
    }

    #[test]
    fn a_silenced_flapping_is_recorded_once_and_a_restart_tells_mirrors_it_flaps() {
        let mut reg = Registry::new();
        let data = reg.intern(Metric::DiskUsedPercent, Some("/data"));
        let mut engine = Engine::new(&config(), None);
        let mut out = square_ticks(&mut engine, &reg, data, 0..9, 30);
        assert_eq!(out.len(), 8, "firing and resolved until the ninth change");
        engine.set_silences(vec![Silence {
            host: None,
            id: "s1".into(),
            rule: Some("disk".into()),
            matchers: Default::default(),
            until: 1e12,
            comment: "flappy disk".into(),
            schedule: None,
        }]);
        out = square_ticks(&mut engine, &reg, data, 9..14, 30);
        assert!(out.is_empty(), "{out:?}");
        let held: Vec<_> = engine.take_suppressed().map(|s| s.notification).collect();
        assert_eq!(held.len(), 1, "once, not at every tick: {held:?}");
        assert_eq!((held[0].event, held[0].since, held[0].seq), (EventKind::Flapping, 45.0, 1));
        // The silence ends while it still flaps: told late, in the same episode.
        engine.set_silences(Vec::new());
        out = square_ticks(&mut engine, &reg, data, 14..15, 30);
        // The share as it is now (14 changes).
        let reason = "flapping: 74.4% of the last 21 evaluations changed state; no firing or \
                      resolved until it settles";
        assert_eq!(
            told(&out),
            told_one(EventKind::Flapping, "disk.used_percent{mount=/data}", Some(reason))
        );
        assert_eq!((out[0].since, out[0].seq), (45.0, 1));
        // A new process adopting the saved state tells Alertmanager-like channels it flaps.
        let saved = engine.saved_alerts(&reg);
        assert_eq!(saved.len(), 1);
        assert!(saved[0].state.flap.is_flapping());
        let mut next = Engine::new(&config(), None);
        next.restore_alerts(saved);
        let mut sink = Vec::new();
        next.tick(&reg, &sample(75.0, &[(data, 95.0)]), &mut sink);
        let mirrored = next.announced_firing(&reg, 75.0);
        assert_eq!(mirrored.len(), 1);
        assert_eq!(
            (mirrored[0].event, mirrored[0].since, mirrored[0].seq),
            (EventKind::Flapping, 45.0, 1)
        );
    }
}
