//! Alert states per (rule, series) and the notifications their transitions produce.
//!
//! `ok → pending → firing(warning|critical) → resolved (→ ok)`. While firing: a reminder every
//! `remind_every`; a warning escalates to critical when the crit window holds or after
//! `critical_after` (the episode remembers which: `EscalatedBy`); severity never drops
//! within an episode, and the episode keeps its peak. Whether a notification is delivered
//! (silences) is decided by the caller; the state moves either way.
//!
//! No data is not a resolution: `lose_data` marks an open alert without data (one `nodata`;
//! a pending one opens a provisional episode), the next step with data resolves it if the
//! clear condition holds ("data is back") or says it still fires, and `elapse_without_data`
//! ends it after `nodata_resolve_after` of elapsed time. Not the place for deciding when a
//! series has no data (the engine does).
//!
//! Reminders and escalation run on elapsed time that only moves forward: the caller passes
//! each step's `dt` (monotonic, or a clamped wall difference where no monotonic clock spans
//! the steps) and the firing phase accumulates it. Wall-clock times (`since`,
//! `last_notified`) are for display, the episode key and the state file, never for deciding
//! when something is due, so a clock step neither mutes nor bursts notifications.
//!
//! Flapping ([`AlertState::evaluate`], thresholds from the rule's `flap`; the history is
//! `flap`'s): while the weighted percentage of state changes is high, the state moves as
//! always but tells nothing (no firing, resolved, reminder, escalated or nodata); one
//! `flapping` when it starts, one `flap_end` with the current state when it ends. The flap
//! period is one episode: the one open when it started (or one opened then), so `flapping`
//! and `flap_end` share its key, and an alert still firing at `flap_end` goes on in it (its
//! `resolved` follows as usual) while one that is ok is closed by the `flap_end`.

pub mod flap;

use crate::config::{Escalation, FlapLimits, Severity};
use crate::rules::window::Verdict;
use flap::{Flap, Flapping};
use serde::{Deserialize, Serialize};

/// What happened to an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// The alert started firing (or was first announced after a silence ended).
    Firing,
    /// It is still firing; `remind_every` has passed since the last notification.
    Reminder,
    /// A warning became critical.
    Escalated,
    /// The clear condition holds, or the data stayed away past `nodata_resolve_after`; the
    /// episode is over.
    Resolved,
    /// A firing (or pending) series stopped reporting: the alert stays open and says so once.
    Nodata,
    /// Not an alert: a periodic report (`AlertEvent::report` holds it). The engine never
    /// makes one.
    Report,
    /// The alert's state changes too often (the weighted share of changes over the last 21
    /// evaluations passed `flap.high`): no firing or resolved until it settles. Its severity
    /// is the worst state of those evaluations.
    Flapping,
    /// The flapping stopped (the share fell under `flap.low`): the current state, firing at
    /// its current severity (the episode goes on) or ok (the episode is over).
    #[serde(rename = "flap_end")]
    FlapEnd,
    /// Not an alert: a channel's rate limit held notifications back during a period; one
    /// summary per period (`hostwatch.rate_limit`). The engine never makes one.
    #[serde(rename = "held_back")]
    HeldBack,
}

impl EventKind {
    /// `firing`, `reminder`, `escalated`, `resolved`, `nodata`, `report`, `flapping`,
    /// `flap_end` or `held_back`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Firing => "firing",
            EventKind::Reminder => "reminder",
            EventKind::Escalated => "escalated",
            EventKind::Resolved => "resolved",
            EventKind::Nodata => "nodata",
            EventKind::Report => "report",
            EventKind::Flapping => "flapping",
            EventKind::FlapEnd => "flap_end",
            EventKind::HeldBack => "held_back",
        }
    }
}

/// Why an open alert has no data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoDataReason {
    /// The collector no longer lists the series (a mount unmounted, an interface removed, a
    /// process gone), also when that is found at a restart.
    SeriesGone,
    /// The series is still listed but brought no value for longer than a gap (a collector
    /// that fails).
    NoSamples,
}

impl NoData {
    /// The elapsed seconds without data a new process adds at wall time `now`: the wall
    /// difference to when the count was last advanced, clamped to `[0, max_gap_s]` as any
    /// wall difference is (0 when that time is not known).
    pub fn resumed_dt(&self, now: f64, max_gap_s: f64) -> f64 {
        if self.counted_at.is_finite() {
            (now - self.counted_at).clamp(0.0, max_gap_s.max(0.0))
        } else {
            0.0
        }
    }
}

impl NoDataReason {
    /// In words, for a series of `metric`: `mount disappeared`, `interface removed`, `no
    /// samples from the collector`, `not seen since hostwatch restarted`.
    pub fn text(self, metric: crate::metrics::Metric) -> &'static str {
        use crate::metrics::LabelKey;
        match self {
            NoDataReason::SeriesGone => match metric.label_key() {
                Some(LabelKey::Mount) => "mount disappeared",
                Some(LabelKey::Iface) => "interface removed",
                Some(LabelKey::Device) => "device removed",
                Some(LabelKey::Core) => "CPU went offline",
                Some(LabelKey::Name) => "process group no longer configured",
                None => "series disappeared",
            },
            NoDataReason::NoSamples => "no samples from the collector",
        }
    }
}

/// An open alert whose series stopped reporting.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoData {
    /// Wall time of the series' last sample (for an alert restored without its series: the
    /// last time it is known to have held, its latest notification or pending start).
    pub last_seen: f64,
    /// Why.
    pub reason: NoDataReason,
    /// True when the alert was only pending: the episode was opened by the missing data, and
    /// ends as soon as data back shows nothing firing.
    #[serde(default)]
    pub provisional: bool,
    /// Elapsed seconds without data (sum of the engine's tick `dt`s); drives
    /// `nodata_resolve_after`.
    #[serde(default)]
    pub elapsed_s: f64,
    /// Wall time `elapsed_s` was last advanced: a new process (`once` across cron runs)
    /// resumes the count from there, clamped like any wall difference.
    #[serde(default = "unknown_elapsed", with = "nullable_f64")]
    pub counted_at: f64,
}

/// What made a warning critical.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EscalatedBy {
    /// The critical threshold held.
    Threshold,
    /// The warning lasted `critical_after` (a policy, not a measurement).
    Time,
}

impl EscalatedBy {
    /// `threshold` or `time`.
    pub fn as_str(self) -> &'static str {
        match self {
            EscalatedBy::Threshold => "threshold",
            EscalatedBy::Time => "time",
        }
    }
}

/// What made a transition, when it is more than the window's verdict.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cause {
    /// The series stopped reporting (a `nodata` event).
    NoData(NoDataReason),
    /// Data came back after a `nodata`.
    DataBack,
    /// No data for `nodata_resolve_after` (`after_s`, in seconds): resolved without knowing
    /// the value.
    NoDataTimeout {
        /// The `nodata_resolve_after` that passed.
        after_s: f64,
    },
}

/// The phase of one alert.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "lowercase")]
pub enum Phase {
    /// Nothing wrong.
    Ok,
    /// The latest sample meets a threshold; the window does not hold yet.
    Pending {
        /// When the latest sample first met it.
        since: f64,
    },
    /// The window holds.
    Firing {
        /// Current severity.
        severity: Severity,
        /// When this episode started firing (Unix seconds); identifies the episode.
        since: f64,
        /// When the last notification of this episode was produced (Unix seconds, display only).
        last_notified: f64,
        /// Sequence number of the last notification in this episode (1 = the first).
        seq: u32,
        /// True once a notification of this episode was delivered (not silenced).
        announced: bool,
        /// The severity the last delivered notification carried (a higher `severity` not yet
        /// told is announced as `escalated` once no silence holds it back).
        #[serde(default = "warning")]
        told: Severity,
        /// Elapsed seconds this episode has been firing (sum of the steps' `dt`); drives
        /// `critical_after`. NaN (`null`, or absent in a state file of an earlier version):
        /// not known yet, derived once from the wall times at the next step.
        #[serde(default = "unknown_elapsed", with = "nullable_f64")]
        firing_s: f64,
        /// Elapsed seconds since the last notification of this episode; drives
        /// `remind_every`. NaN as for `firing_s`.
        #[serde(default = "unknown_elapsed", with = "nullable_f64")]
        quiet_s: f64,
        /// Set while the series brings no data.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nodata: Option<NoData>,
        /// The worst value of the episode (highest for a rising threshold, lowest for a
        /// falling one); NaN (`null`) when not known.
        #[serde(default = "unknown_elapsed", with = "nullable_f64")]
        peak: f64,
        /// What made it critical, once it is (`None` when it fired critical).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        escalated_by: Option<EscalatedBy>,
    },
}

fn warning() -> Severity {
    Severity::Warning
}

fn unknown_elapsed() -> f64 {
    f64::NAN
}

/// A usable elapsed counter: finite and not negative (anything else came from an older or
/// damaged state file).
fn known(elapsed: f64) -> bool {
    elapsed.is_finite() && elapsed >= 0.0
}

/// One alert's state.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertState {
    /// Where it is.
    #[serde(flatten)]
    pub phase: Phase,
    /// The value the last evaluation reported (NaN, saved as null, when none).
    #[serde(with = "nullable_f64")]
    pub value: f64,
    /// The notification a silence last held back (and the events log recorded), saved so a
    /// new process (each `once` run, a restart) does not record it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Held>,
    /// The state history of flap detection, and the flap period in progress (absent in a
    /// state file of an earlier version, and when there is nothing to remember).
    #[serde(default, skip_serializing_if = "Flap::settled")]
    pub flap: Flap,
}

/// A notification a silence held back: its episode, event and severity.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Held {
    /// Episode start (Unix seconds).
    pub episode: f64,
    /// What it would have said.
    pub event: EventKind,
    /// At which severity.
    pub severity: Severity,
}

/// Serialises a non-finite float as `null` and reads `null` back as NaN.
mod nullable_f64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_finite() { s.serialize_f64(*v) } else { s.serialize_none() }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

impl Default for AlertState {
    fn default() -> Self {
        AlertState { phase: Phase::Ok, value: f64::NAN, held: None, flap: Flap::default() }
    }
}

/// A transition worth notifying about.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transition {
    /// What happened.
    pub event: EventKind,
    /// Severity after the transition (for `resolved`: the severity that ended).
    pub severity: Severity,
    /// Episode start (Unix seconds).
    pub episode: f64,
    /// Sequence number within the episode.
    pub seq: u32,
    /// Set when missing data (or its return) made the transition.
    pub cause: Option<Cause>,
    /// Elapsed seconds the episode had been firing.
    pub firing_s: f64,
    /// The episode's worst value so far (NaN when not known).
    pub peak: f64,
    /// What made it critical, when it escalated.
    pub escalated_by: Option<EscalatedBy>,
}

impl Flapping {
    /// The notification `event` that ends flap period `self` in its episode (the next
    /// sequence number, its worst severity, the time it flapped; peak unknown), if
    /// `flapping` was told: a period never announced ends without a word.
    fn ending(&self, event: EventKind, cause: Option<Cause>) -> Option<Transition> {
        self.announced.then_some(Transition {
            event,
            severity: self.severity,
            episode: self.since,
            seq: self.seq.saturating_add(1),
            cause,
            firing_s: self.elapsed_s,
            peak: f64::NAN,
            escalated_by: None,
        })
    }
}

impl AlertState {
    /// The severity, when firing.
    pub fn firing_severity(&self) -> Option<Severity> {
        match self.phase {
            Phase::Firing { severity, .. } => Some(severity),
            _ => None,
        }
    }

    /// Records `value` as the episode's peak if it is worse (higher when `rising`, else
    /// lower) than the one so far; alerts not firing do not move.
    pub fn note_peak(&mut self, value: f64, rising: bool) {
        if let Phase::Firing { ref mut peak, .. } = self.phase
            && value.is_finite()
            && (peak.is_nan() || (rising && value > *peak) || (!rising && value < *peak))
        {
            *peak = value;
        }
    }

    /// The missing-data marker, when the alert is open without data.
    pub fn nodata(&self) -> Option<&NoData> {
        match &self.phase {
            Phase::Firing { nodata, .. } => nodata.as_ref(),
            _ => None,
        }
    }

    /// Advances the state with the window's verdict at wall time `now`, `dt` elapsed seconds
    /// after this alert's previous step (negative or non-finite counts as 0). `now` only
    /// stamps a new episode (`since`, its key) and `last_notified`; reminders and escalation
    /// are due on the accumulated `dt`. `silenced` tells whether a notification made now
    /// would be suppressed: a silenced episode is announced (and a silenced escalation told)
    /// when the silence ends; the resolution of an announced episode is never suppressed; an
    /// episode never announced ends without a `resolved`. A step of an alert marked
    /// [`NoData`] means its data is back: it resolves if nothing fires, and otherwise says
    /// that it still fires (`firing` for a provisional episode, else `escalated` or a
    /// `reminder`), with [`Cause::DataBack`].
    pub fn step(
        &mut self,
        now: f64,
        dt: f64,
        v: &Verdict,
        esc: &Escalation,
        silenced: bool,
    ) -> Option<Transition> {
        let dt = if dt.is_finite() { dt.max(0.0) } else { 0.0 };
        self.value = v.value;
        match self.phase {
            Phase::Ok | Phase::Pending { .. } => {
                let severity = if v.crit {
                    Severity::Critical
                } else if v.warn {
                    Severity::Warning
                } else {
                    self.phase = match self.phase {
                        Phase::Pending { since } if v.latest_meets => Phase::Pending { since },
                        _ if v.latest_meets => Phase::Pending { since: now },
                        _ => Phase::Ok,
                    };
                    return None;
                };
                self.open_episode(now, severity, v.value, None, silenced, EventKind::Firing, None)
            }
            Phase::Firing {
                severity,
                since,
                last_notified,
                seq,
                announced,
                told,
                firing_s,
                quiet_s,
                nodata,
                peak,
                escalated_by,
            } => {
                let back = nodata.is_some();
                let cause = back.then_some(Cause::DataBack);
                let provisional = nodata.is_some_and(|n| n.provisional);
                // A provisional episode whose data is back still meeting the threshold waits
                // for the restarted window to decide: fire, or end.
                if provisional && v.latest_meets && !v.warn && !v.crit {
                    return None;
                }
                // A provisional episode (opened by missing data while pending) ends when the
                // data back does not fire; any other ends on its clear condition.
                if (v.clear || provisional) && !v.warn && !v.crit {
                    self.phase = Phase::Ok;
                    // An announced episode always gets its resolution, silence or not: the
                    // receivers' incident must not stay open.
                    let firing_s =
                        if known(firing_s) { firing_s + dt } else { (now - since).max(0.0) };
                    return announced.then_some(Transition {
                        event: EventKind::Resolved,
                        severity,
                        episode: since,
                        seq: seq.saturating_add(1),
                        cause,
                        firing_s,
                        peak,
                        escalated_by,
                    });
                }
                // Counters missing (a state file of an earlier version, or a damaged one): the
                // ages are derived from the wall times once, never negative; from then on only
                // `dt` moves them.
                let (firing_s, quiet_s) = if known(firing_s) && known(quiet_s) {
                    (firing_s + dt, quiet_s + dt)
                } else {
                    ((now - since).max(0.0), (now - last_notified).max(0.0))
                };
                let escalate = severity == Severity::Warning
                    && (v.crit || esc.critical_after.is_some_and(|d| firing_s >= d.as_secs_f64()));
                let new_severity = if escalate { Severity::Critical } else { severity };
                // Escalated by time, and the critical threshold holds later: by threshold.
                let escalated_by = match escalated_by {
                    _ if escalate && v.crit => Some(EscalatedBy::Threshold),
                    _ if escalate => Some(EscalatedBy::Time),
                    Some(EscalatedBy::Time) if v.crit => Some(EscalatedBy::Threshold),
                    other => other,
                };
                let event = if !announced || provisional {
                    Some(EventKind::Firing)
                } else if new_severity > told {
                    // Escalated now, or while a silence held it back.
                    Some(EventKind::Escalated)
                } else if back || esc.remind_every.is_some_and(|d| quiet_s >= d.as_secs_f64()) {
                    Some(EventKind::Reminder)
                } else {
                    None
                };
                let Some(event) = event.filter(|_| !silenced) else {
                    self.phase = Phase::Firing {
                        severity: new_severity,
                        since,
                        last_notified,
                        seq,
                        announced,
                        told,
                        firing_s,
                        quiet_s,
                        nodata: None,
                        peak,
                        escalated_by,
                    };
                    return None;
                };
                self.phase = Phase::Firing {
                    severity: new_severity,
                    since,
                    last_notified: now,
                    seq: seq.saturating_add(1),
                    announced: true,
                    told: new_severity,
                    firing_s,
                    quiet_s: 0.0,
                    nodata: None,
                    peak,
                    escalated_by,
                };
                Some(Transition {
                    event,
                    severity: new_severity,
                    episode: since,
                    seq: seq.saturating_add(1),
                    cause,
                    firing_s,
                    peak,
                    escalated_by,
                })
            }
        }
    }

    /// Starts an episode at `now` with its first notification (`event`, `cause`), announced
    /// unless `silenced`.
    #[allow(clippy::too_many_arguments)]
    fn open_episode(
        &mut self,
        now: f64,
        severity: Severity,
        peak: f64,
        nodata: Option<NoData>,
        silenced: bool,
        event: EventKind,
        cause: Option<Cause>,
    ) -> Option<Transition> {
        self.phase = Phase::Firing {
            severity,
            since: now,
            last_notified: now,
            seq: 1,
            announced: !silenced,
            told: severity,
            firing_s: 0.0,
            quiet_s: 0.0,
            nodata,
            peak,
            escalated_by: None,
        };
        (!silenced).then_some(Transition {
            event,
            severity,
            episode: now,
            seq: 1,
            cause,
            firing_s: 0.0,
            peak,
            escalated_by: None,
        })
    }

    /// Marks an open alert as without data at wall time `now` (`last_seen`: the series' last
    /// sample). A firing alert says so once with a `nodata` (if it was announced and no
    /// silence holds it back); a pending one opens a provisional episode whose first
    /// notification is that `nodata`, at `warning`. Ok alerts, and alerts already marked,
    /// do not move.
    pub fn lose_data(
        &mut self,
        now: f64,
        last_seen: f64,
        reason: NoDataReason,
        silenced: bool,
    ) -> Option<Transition> {
        // While flapping nothing is told (its episodes are not announced).
        let silenced = silenced || self.flap.is_flapping();
        let last_seen = if last_seen.is_finite() { last_seen } else { now };
        let mark = |provisional| {
            Some(NoData { last_seen, reason, provisional, elapsed_s: 0.0, counted_at: now })
        };
        match self.phase {
            Phase::Ok | Phase::Firing { nodata: Some(_), .. } => None,
            Phase::Pending { .. } => self.open_episode(
                now,
                Severity::Warning,
                self.value,
                mark(true),
                silenced,
                EventKind::Nodata,
                Some(Cause::NoData(reason)),
            ),
            Phase::Firing {
                severity,
                since,
                last_notified,
                seq,
                announced,
                told,
                firing_s,
                quiet_s,
                peak,
                escalated_by,
                ..
            } => {
                let tell = announced && !silenced;
                self.phase = Phase::Firing {
                    severity,
                    since,
                    last_notified: if tell { now } else { last_notified },
                    seq: if tell { seq.saturating_add(1) } else { seq },
                    announced,
                    told,
                    firing_s,
                    quiet_s: if tell { 0.0 } else { quiet_s },
                    nodata: mark(false),
                    peak,
                    escalated_by,
                };
                tell.then_some(Transition {
                    event: EventKind::Nodata,
                    severity,
                    episode: since,
                    seq: seq.saturating_add(1),
                    cause: Some(Cause::NoData(reason)),
                    firing_s,
                    peak,
                    escalated_by,
                })
            }
        }
    }

    /// Adds `dt` elapsed seconds (at wall time `now`) to an alert without data; once they
    /// reach `resolve_after` the episode ends (`resolved` with [`Cause::NoDataTimeout`] if it
    /// was announced). Alerts with data do not move.
    pub fn elapse_without_data(
        &mut self,
        now: f64,
        dt: f64,
        resolve_after: f64,
    ) -> Option<Transition> {
        let dt = if dt.is_finite() { dt.max(0.0) } else { 0.0 };
        let Phase::Firing {
            severity,
            since,
            seq,
            announced,
            firing_s,
            peak,
            escalated_by,
            nodata: Some(ref mut n),
            ..
        } = self.phase
        else {
            return None;
        };
        n.elapsed_s = if n.elapsed_s.is_finite() { n.elapsed_s.max(0.0) + dt } else { dt };
        n.counted_at = now;
        if n.elapsed_s < resolve_after {
            return None;
        }
        let without_data_s = n.elapsed_s;
        self.phase = Phase::Ok;
        if let Some(f) = self.flap.flapping.take() {
            // The flap period's episode is the one receivers know: it ends, without data.
            let cause = Some(Cause::NoDataTimeout { after_s: resolve_after });
            return f.ending(EventKind::Resolved, cause).map(|t| Transition {
                firing_s: f.elapsed_s + without_data_s,
                peak,
                ..t
            });
        }
        announced.then_some(Transition {
            event: EventKind::Resolved,
            severity,
            episode: since,
            seq: seq.saturating_add(1),
            cause: Some(Cause::NoDataTimeout { after_s: resolve_after }),
            // The episode lasted its firing time and the time without data after it.
            firing_s: if firing_s.is_finite() { firing_s + without_data_s } else { without_data_s },
            peak,
            escalated_by,
        })
    }

    /// An ok alert whose series went away while it flapped: the flap period ends with it
    /// (`resolved` in the flap's episode, if `flapping` was told); `None` for any other.
    pub fn end_flap_with_series(&mut self) -> Option<Transition> {
        if self.phase != Phase::Ok || self.flap.flapping.is_none() {
            return None;
        }
        self.vanish()
    }

    /// Ends the episode at once (its rule is gone); returns `resolved` if it was announced
    /// (a flap period announced with `flapping` is resolved in its episode).
    pub fn vanish(&mut self) -> Option<Transition> {
        let old = std::mem::take(self);
        if let Some(f) = old.flap.flapping {
            return f.ending(EventKind::Resolved, None);
        }
        match old.phase {
            Phase::Firing {
                severity,
                since,
                seq,
                announced: true,
                firing_s,
                peak,
                escalated_by,
                ..
            } => Some(Transition {
                event: EventKind::Resolved,
                severity,
                episode: since,
                seq: seq.saturating_add(1),
                cause: None,
                firing_s,
                peak,
                escalated_by,
            }),
            _ => None,
        }
    }

    /// The transition [`AlertState::step`] would return now were no silence in force,
    /// without moving this state (it steps a copy). The engine asks only while a silence
    /// covers the alert, to record what the silence held back.
    pub fn would_notify(
        &self,
        now: f64,
        dt: f64,
        v: &Verdict,
        esc: &Escalation,
        flap: Option<&FlapLimits>,
    ) -> Option<Transition> {
        let mut probe = *self;
        probe.evaluate(now, dt, v, esc, false, flap)
    }

    /// [`AlertState::step`] with flap detection (`flap`: the rule's thresholds; `None`: off,
    /// which also ends a flap period a reload turned off). Records the evaluation's check
    /// result (see [`flap`]); while flapping, steps without telling anything (its episodes
    /// are not announced) and returns only a `flapping` (when it starts, or late, at the first
    /// step no silence holds it back) or the `flap_end`. A silence holds back a `flapping` and
    /// a `flap_end` that says firing (the episode is then announced as `firing` once the
    /// silence ends); a `flap_end` that says ok closes an announced flap period whatever the
    /// silences, as a resolution does.
    pub fn evaluate(
        &mut self,
        now: f64,
        dt: f64,
        v: &Verdict,
        esc: &Escalation,
        silenced: bool,
        flap: Option<&FlapLimits>,
    ) -> Option<Transition> {
        let dt = if dt.is_finite() { dt.max(0.0) } else { 0.0 };
        let Some(limits) = flap else {
            let Some(f) = self.flap.flapping else { return self.step(now, dt, v, esc, silenced) };
            self.step(now, dt, v, esc, true);
            self.flap = Flap::default();
            return self.end_flap(now, Flapping { elapsed_s: f.elapsed_s + dt, ..f }, silenced);
        };
        let check = flap::check_of(v.crit, v.warn, v.clear, self.flap.newest());
        self.flap.record(check);
        let percent = self.flap.percent();
        match self.flap.flapping {
            None if Flap::starts(limits, percent) => {
                let before = self.phase;
                // What this step would have told is not: the flap period takes over.
                self.step(now, dt, v, esc, true);
                self.keep_quiet();
                let (since, seq, elapsed_s) = match before {
                    Phase::Firing { since, seq, firing_s, .. } => {
                        let firing_s = if known(firing_s) { firing_s + dt } else { 0.0 };
                        (since, seq.saturating_add(1), firing_s)
                    }
                    _ => (now, 1, 0.0),
                };
                let severity = self.flap.worst().severity();
                // An episode announced before the flap is known to receivers: its end is told
                // even if a silence holds `flapping` back now.
                let told_before = matches!(before, Phase::Firing { announced: true, .. });
                let f = Flapping {
                    since,
                    seq,
                    severity,
                    announced: !silenced || told_before,
                    elapsed_s,
                };
                self.flap.flapping = Some(f);
                (!silenced).then(|| self.flapping_transition(f))
            }
            None => self.step(now, dt, v, esc, silenced),
            Some(f) if Flap::ends(limits, percent) => {
                self.step(now, dt, v, esc, true);
                self.flap.flapping = None;
                self.end_flap(now, Flapping { elapsed_s: f.elapsed_s + dt, ..f }, silenced)
            }
            Some(mut f) => {
                self.step(now, dt, v, esc, true);
                self.keep_quiet();
                f.elapsed_s += dt;
                if check != flap::Check::Ok {
                    f.severity = f.severity.max(check.severity());
                }
                // Held back by a silence when it started: told once none holds it back.
                let late = !f.announced && !silenced;
                f.announced |= late;
                self.flap.flapping = Some(f);
                late.then(|| self.flapping_transition(f))
            }
        }
    }

    /// While flapping, the open episode is not announced: nothing it does is told.
    fn keep_quiet(&mut self) {
        if let Phase::Firing { ref mut announced, .. } = self.phase {
            *announced = false;
        }
    }

    /// The `flapping` notification of flap period `f`.
    fn flapping_transition(&self, f: Flapping) -> Transition {
        let peak = match self.phase {
            Phase::Firing { peak, .. } => peak,
            _ => f64::NAN,
        };
        Transition {
            event: EventKind::Flapping,
            severity: f.severity,
            episode: f.since,
            seq: f.seq,
            cause: None,
            firing_s: f.elapsed_s,
            peak,
            escalated_by: None,
        }
    }

    /// Ends flap period `f` at `now` (the state already stepped): a firing alert goes on in
    /// the flap period's episode, announced by this `flap_end` (unless a silence holds it
    /// back: then by a `firing` once none does); an ok one is closed by it. A period never
    /// announced ends without a word, as an episode never announced does.
    fn end_flap(&mut self, now: f64, f: Flapping, silenced: bool) -> Option<Transition> {
        match self.phase {
            Phase::Firing {
                severity,
                ref mut since,
                ref mut last_notified,
                ref mut seq,
                ref mut announced,
                ref mut told,
                ref mut firing_s,
                ref mut quiet_s,
                peak,
                escalated_by,
                ..
            } => {
                *since = f.since;
                *seq = f.seq;
                *firing_s = f.elapsed_s;
                *told = f.severity;
                if !f.announced {
                    *announced = false;
                    return None;
                }
                if silenced {
                    // `flapping` told receivers of this episode: its end must reach them,
                    // even though this `flap_end` is held back.
                    *announced = true;
                    return None;
                }
                *seq = f.seq.saturating_add(1);
                *announced = true;
                *told = severity;
                *last_notified = now;
                *quiet_s = 0.0;
                Some(Transition {
                    event: EventKind::FlapEnd,
                    severity,
                    episode: f.since,
                    seq: *seq,
                    cause: None,
                    firing_s: f.elapsed_s,
                    peak,
                    escalated_by,
                })
            }
            Phase::Ok | Phase::Pending { .. } => f.ending(EventKind::FlapEnd, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn verdict(warn: bool, crit: bool, clear: bool) -> Verdict {
        Verdict { value: 1.0, warn, crit, clear, latest_meets: warn || crit }
    }

    #[test]
    fn full_episode_with_reminder_and_escalation() {
        let esc = Escalation {
            remind_every: Some(Duration::from_secs(30)),
            critical_after: Some(Duration::from_secs(100)),
        };
        let mut a = AlertState::default();
        let hot = verdict(true, false, false);
        let t = a.step(0.0, 0.0, &hot, &esc, false).unwrap();
        assert_eq!((t.event, t.severity, t.seq), (EventKind::Firing, Severity::Warning, 1));
        assert_eq!(a.step(10.0, 10.0, &hot, &esc, false), None);
        assert_eq!(a.step(30.0, 20.0, &hot, &esc, false).unwrap().event, EventKind::Reminder);
        let t = a.step(100.0, 70.0, &hot, &esc, false).unwrap();
        assert_eq!((t.event, t.severity), (EventKind::Escalated, Severity::Critical));
        let t = a.step(110.0, 10.0, &verdict(false, false, true), &esc, false).unwrap();
        assert_eq!(
            (t.event, t.severity, t.episode, t.seq),
            (EventKind::Resolved, Severity::Critical, 0.0, 4)
        );
        assert_eq!(a.phase, Phase::Ok);
    }

    #[test]
    fn silenced_episode_is_announced_late_and_unannounced_one_resolves_quietly() {
        let esc = Escalation::default();
        let mut a = AlertState::default();
        let hot = verdict(true, false, false);
        assert_eq!(a.step(0.0, 0.0, &hot, &esc, true), None);
        assert_eq!(a.step(5.0, 5.0, &hot, &esc, false).unwrap().event, EventKind::Firing);
        let mut b = AlertState::default();
        assert_eq!(b.step(0.0, 0.0, &hot, &esc, true), None);
        assert_eq!(b.step(5.0, 5.0, &verdict(false, false, true), &esc, false), None);
        assert_eq!(b.phase, Phase::Ok);
    }

    #[test]
    fn would_notify_tells_what_a_silence_holds_back_and_moves_nothing() {
        let esc = Escalation::default();
        let mut a = AlertState::default();
        let hot = verdict(true, false, false);
        let t = a.would_notify(0.0, 0.0, &hot, &esc, None).unwrap();
        assert_eq!((t.event, t.seq), (EventKind::Firing, 1));
        assert_eq!(a.phase, Phase::Ok, "the state did not move");
        assert!(a.value.is_nan());
        assert_eq!(a.step(0.0, 0.0, &hot, &esc, true), None);
        // Held back again at every step until the silence ends; the late announcement is it.
        let held = a.would_notify(5.0, 5.0, &hot, &esc, None).unwrap();
        let told = a.step(5.0, 5.0, &hot, &esc, false).unwrap();
        assert_eq!(held, told);
        assert_eq!(a.would_notify(10.0, 5.0, &hot, &esc, None), None, "announced: nothing due");
    }

    #[test]
    fn a_silenced_escalation_is_told_when_the_silence_ends_and_resolutions_are_never_silenced() {
        let esc = Escalation::default();
        let mut a = AlertState::default();
        assert_eq!(
            a.step(0.0, 0.0, &verdict(true, false, false), &esc, false).unwrap().event,
            EventKind::Firing
        );
        // Crit holds while silenced: the state escalates, nobody is told yet.
        assert_eq!(a.step(5.0, 5.0, &verdict(true, true, false), &esc, true), None);
        assert_eq!(a.firing_severity(), Some(Severity::Critical));
        let t = a.step(10.0, 5.0, &verdict(true, true, false), &esc, false).unwrap();
        assert_eq!((t.event, t.severity, t.seq), (EventKind::Escalated, Severity::Critical, 2));
        assert_eq!(a.step(15.0, 5.0, &verdict(true, true, false), &esc, false), None, "told once");
        // It clears under a silence: the announced episode still gets its resolution.
        let t = a.step(20.0, 5.0, &verdict(false, false, true), &esc, true).unwrap();
        assert_eq!((t.event, t.seq), (EventKind::Resolved, 3));
    }

    #[test]
    fn hysteresis_keeps_firing_until_clear() {
        let esc = Escalation::default();
        let mut a = AlertState::default();
        a.step(0.0, 0.0, &verdict(true, false, false), &esc, false);
        // Below the threshold but not yet below the clear level: still firing, no event.
        assert_eq!(a.step(5.0, 5.0, &verdict(false, false, false), &esc, false), None);
        assert!(a.firing_severity().is_some());
    }

    /// Steps `a` once per `dt`-second tick at the wall times `walls`, returning the events.
    fn run_ticks(a: &mut AlertState, walls: &[f64], dt: f64, esc: &Escalation) -> Vec<EventKind> {
        let hot = verdict(true, false, false);
        walls.iter().filter_map(|&now| a.step(now, dt, &hot, esc, false)).map(|t| t.event).collect()
    }

    #[test]
    fn reminders_keep_their_cadence_while_the_wall_clock_jumps_back_and_forward() {
        let esc = Escalation { remind_every: Some(Duration::from_secs(30)), critical_after: None };
        let mut a = AlertState::default();
        let t0 = 1_800_000_000.0;
        assert_eq!(run_ticks(&mut a, &[t0], 0.0, &esc), [EventKind::Firing]);
        // Ticks every 10 s of elapsed time: a reminder every third tick.
        let steady: Vec<f64> = (1..=6).map(|k| t0 + 10.0 * k as f64).collect();
        let got = run_ticks(&mut a, &steady, 10.0, &esc);
        assert_eq!(got, [EventKind::Reminder, EventKind::Reminder]);
        // The wall clock steps back 1 h: the cadence does not stop for an hour.
        let back: Vec<f64> = (1..=6).map(|k| t0 + 60.0 - 3600.0 + 10.0 * k as f64).collect();
        let got = run_ticks(&mut a, &back, 10.0, &esc);
        assert_eq!(got, [EventKind::Reminder, EventKind::Reminder], "muted by a backward step");
        // Forward 25 h: no burst, still one reminder per 30 s.
        let fwd: Vec<f64> = (1..=6).map(|k| t0 + 120.0 + 25.0 * 3600.0 + 10.0 * k as f64).collect();
        let got = run_ticks(&mut a, &fwd, 10.0, &esc);
        assert_eq!(got, [EventKind::Reminder, EventKind::Reminder], "burst on a forward step");
        let Phase::Firing { since, firing_s, quiet_s, seq, .. } = a.phase else {
            panic!("still firing: {a:?}")
        };
        assert_eq!((since, firing_s, quiet_s, seq), (t0, 180.0, 0.0, 7), "the episode key stays");
    }

    #[test]
    fn escalation_follows_elapsed_firing_time_not_the_wall_clock() {
        let esc = Escalation { remind_every: None, critical_after: Some(Duration::from_secs(100)) };
        let mut a = AlertState::default();
        let t0 = 1_800_000_000.0;
        assert_eq!(run_ticks(&mut a, &[t0], 0.0, &esc), [EventKind::Firing]);
        // +25 h on the wall after 10 s of firing: not critical yet.
        assert!(run_ticks(&mut a, &[t0 + 10.0 + 90_000.0], 10.0, &esc).is_empty());
        // −1 h: still counting.
        let back: Vec<f64> = (1..=8).map(|k| t0 - 3600.0 + 10.0 * k as f64).collect();
        assert!(run_ticks(&mut a, &back, 10.0, &esc).is_empty(), "90 s of 100");
        assert_eq!(a.firing_severity(), Some(Severity::Warning));
        let got = run_ticks(&mut a, &[t0 - 3500.0], 10.0, &esc);
        assert_eq!(got, [EventKind::Escalated], "after 100 s of firing");
        assert_eq!(a.firing_severity(), Some(Severity::Critical));
    }

    #[test]
    fn a_negative_or_broken_dt_counts_as_nothing() {
        let esc = Escalation { remind_every: Some(Duration::from_secs(30)), critical_after: None };
        let mut a = AlertState::default();
        run_ticks(&mut a, &[0.0], 0.0, &esc);
        for dt in [-3600.0, f64::NAN, f64::NEG_INFINITY] {
            assert!(run_ticks(&mut a, &[0.0], dt, &esc).is_empty());
        }
        let Phase::Firing { firing_s, quiet_s, .. } = a.phase else { panic!("firing") };
        assert_eq!((firing_s, quiet_s), (0.0, 0.0));
    }

    #[test]
    fn counters_survive_the_state_file_and_old_files_derive_them_from_wall_times_once() {
        let esc = Escalation { remind_every: Some(Duration::from_secs(60)), critical_after: None };
        let mut a = AlertState::default();
        run_ticks(&mut a, &[1000.0], 0.0, &esc);
        run_ticks(&mut a, &[1040.0], 40.0, &esc);
        let saved = serde_json::to_value(a).unwrap();
        assert_eq!(
            (saved["firing_s"].as_f64(), saved["quiet_s"].as_f64()),
            (Some(40.0), Some(40.0))
        );
        // A restart: the persisted counters carry the age, whatever the wall clock says now.
        let mut b: AlertState = serde_json::from_value(saved).unwrap();
        assert_eq!(b, a);
        assert!(run_ticks(&mut b, &[1040.0 - 3600.0], 0.0, &esc).is_empty());
        assert_eq!(run_ticks(&mut b, &[1040.0 - 3580.0], 20.0, &esc), [EventKind::Reminder]);

        // A file of the previous version (no counters): derived from the wall times once.
        let old = serde_json::json!({"phase": "firing", "severity": "warning", "since": 1000.0,
            "last_notified": 1030.0, "seq": 1, "announced": true, "value": 1.0});
        let mut c: AlertState = serde_json::from_value(old.clone()).unwrap();
        assert!(run_ticks(&mut c, &[1080.0], 5.0, &esc).is_empty(), "50 s since the last one");
        let Phase::Firing { firing_s, quiet_s, .. } = c.phase else { panic!("firing") };
        assert_eq!((firing_s, quiet_s), (80.0, 50.0), "derived, dt not added on top");
        assert!(run_ticks(&mut c, &[1080.0 + 90_000.0], 5.0, &esc).is_empty(), "then only dt");
        assert_eq!(run_ticks(&mut c, &[0.0], 5.0, &esc), [EventKind::Reminder]);
        // Derived behind a clock that went back: clamped to 0, never negative.
        let mut d: AlertState = serde_json::from_value(old).unwrap();
        run_ticks(&mut d, &[500.0], 5.0, &esc);
        let Phase::Firing { firing_s, quiet_s, .. } = d.phase else { panic!("firing") };
        assert_eq!((firing_s, quiet_s), (0.0, 0.0));
    }

    const FLAP: FlapLimits = FlapLimits { high: 50.0, low: 25.0 };

    /// Evaluates `a` at t = k for each verdict (`true`: warn holds, `false`: clear), under
    /// a silence for the steps `silenced` says; the (k, event, episode, seq) told.
    fn wave(
        a: &mut AlertState,
        from: usize,
        hot: &[bool],
        silenced: impl Fn(usize) -> bool,
    ) -> Vec<(usize, EventKind, f64, u32)> {
        let esc = Escalation::default();
        let mut told = Vec::new();
        for (i, &h) in hot.iter().enumerate() {
            let k = from + i;
            let v = verdict(h, false, !h);
            if let Some(t) = a.evaluate(k as f64, 1.0, &v, &esc, silenced(k), Some(&FLAP)) {
                told.push((k, t.event, t.episode, t.seq));
            }
        }
        told
    }

    /// `n` evaluations of a square wave: hot at odd k.
    fn square(n: usize) -> Vec<bool> {
        (0..n).map(|k| k % 2 == 1).collect()
    }

    #[test]
    fn a_square_wave_flaps_once_then_ends_in_its_episode_with_the_current_state() {
        use EventKind::*;
        let mut a = AlertState::default();
        // Hot at odd k for 30 evaluations, then ok: firing/resolved until the ninth change
        // (k = 9, an opening firing) becomes `flapping` in a new episode; quiet until the
        // share falls under 25 % at k = 45 (see `flap`'s tests); `flap_end` closes it.
        let mut hot = square(30);
        hot.extend([false; 20]);
        let told = wave(&mut a, 0, &hot, |_| false);
        let mut expected = Vec::new();
        for k in (1..9).step_by(2) {
            expected.push((k, Firing, k as f64, 1));
            expected.push((k + 1, Resolved, k as f64, 2));
        }
        expected.push((9, Flapping, 9.0, 1));
        expected.push((45, FlapEnd, 9.0, 2));
        assert_eq!(told, expected);
        assert_eq!(a.phase, Phase::Ok);
        assert!(a.flap.flapping.is_none());

        // Ending hot: `flap_end` says firing in the flap's episode; `resolved` follows it.
        let mut b = AlertState::default();
        let mut hot = square(30);
        hot.extend([true; 20]);
        hot.extend([false; 2]);
        let told = wave(&mut b, 0, &hot, |_| false);
        let tail: Vec<_> = told.iter().filter(|t| t.0 >= 9).copied().collect();
        // The last change is at k = 29 (hot from then on), one before the ok wave's: it ends
        // at k = 44.
        assert_eq!(tail, [(9, Flapping, 9.0, 1), (44, FlapEnd, 9.0, 2), (50, Resolved, 9.0, 3)]);
        assert!(b.phase == Phase::Ok);
    }

    #[test]
    fn flapping_that_starts_while_firing_keeps_that_episode_and_off_is_plain() {
        use EventKind::*;
        // Hot at even k: the ninth change (k = 9) resolves the episode opened at k = 8; the
        // `flapping` takes its place in that episode.
        let mut a = AlertState::default();
        let hot: Vec<bool> = (0..12).map(|k| k % 2 == 0).collect();
        let told = wave(&mut a, 0, &hot, |_| false);
        assert_eq!(told.last(), Some(&(9, Flapping, 8.0, 2)));
        assert_eq!(told.iter().filter(|t| t.1 == Flapping).count(), 1);

        // Flap detection off: the plain firing/resolved sequence.
        let mut b = AlertState::default();
        let esc = Escalation::default();
        let mut events = Vec::new();
        for (k, h) in square(40).into_iter().enumerate() {
            let v = verdict(h, false, !h);
            if let Some(t) = b.evaluate(k as f64, 1.0, &v, &esc, false, None) {
                events.push(t.event);
            }
        }
        let plain: Vec<EventKind> =
            (0..39).map(|k| if k % 2 == 0 { Firing } else { Resolved }).collect();
        assert_eq!(events, plain);
        assert!(b.flap.settled(), "no history kept when off");
    }

    #[test]
    fn a_silence_holds_back_flapping_until_it_ends_and_never_the_ok_flap_end() {
        use EventKind::*;
        let mut a = AlertState::default();
        let mut hot = square(30);
        hot.extend([false; 20]);
        // Silenced from k = 9 to 11: the flapping is told late, at k = 12.
        let told = wave(&mut a, 0, &hot, |k| (9..12).contains(&k));
        let flap: Vec<_> = told.iter().filter(|t| t.0 >= 9).copied().collect();
        assert_eq!(flap, [(12, Flapping, 9.0, 1), (45, FlapEnd, 9.0, 2)]);
        // Silenced at the end too: the ok `flap_end` still closes it.
        let mut b = AlertState::default();
        let told = wave(&mut b, 0, &hot, |k| k >= 40);
        assert_eq!(told.last(), Some(&(45, FlapEnd, 9.0, 2)));
        // Silenced for the whole flap: nothing of it is told.
        let mut c = AlertState::default();
        let told = wave(&mut c, 0, &hot, |k| k >= 9);
        assert!(told.iter().all(|t| t.0 < 9), "{told:?}");
        // would_notify says what the silence held back, and moves nothing.
        let mut d = AlertState::default();
        wave(&mut d, 0, &square(9), |_| false);
        let before = d;
        let held = d.would_notify(
            9.0,
            1.0,
            &verdict(true, false, false),
            &Escalation::default(),
            Some(&FLAP),
        );
        assert_eq!(held.map(|t| t.event), Some(Flapping));
        assert_eq!(d, before);
    }

    #[test]
    fn a_flap_that_ends_firing_under_a_silence_still_resolves_loudly_later() {
        use EventKind::*;
        // Flapping told at k = 9; silenced from k = 35 on; the wave settles hot, so the flap
        // ends firing (its flap_end held back); the resolution after the silence is told.
        let mut a = AlertState::default();
        let mut hot = square(30);
        hot.extend([true; 20]);
        hot.extend([false; 3]);
        let told = wave(&mut a, 0, &hot, |k| (35..50).contains(&k));
        let tail: Vec<_> = told.iter().filter(|t| t.0 >= 9).map(|t| t.1).collect();
        assert_eq!(tail, [Flapping, Resolved], "{told:?}");
        // A firing told before the flap, flapping held back by a silence from then on,
        // ending ok under the silence: the episode is still closed.
        let mut b = AlertState::default();
        let hot: Vec<bool> = (0..12).map(|k| k % 2 == 0).collect();
        let mut all = hot.clone();
        all.extend([false; 40]);
        let told = wave(&mut b, 0, &all, |k| k >= 9);
        assert_eq!(told.last().map(|t| t.1), Some(FlapEnd), "{told:?}");
    }

    #[test]
    fn a_flapping_series_that_goes_away_ends_its_flap_period() {
        let mut a = AlertState::default();
        let mut hot = square(30);
        hot.extend([false; 4]);
        wave(&mut a, 0, &hot, |_| false);
        assert!(a.flap.is_flapping() && a.phase == Phase::Ok);
        let t = a.end_flap_with_series().expect("flapping was told: its end is told");
        assert_eq!((t.event, t.episode, t.seq), (EventKind::Resolved, 9.0, 2));
        assert!(a.end_flap_with_series().is_none(), "once");
    }

    #[test]
    fn nothing_else_is_told_while_flapping_and_the_history_survives_the_state_file() {
        use EventKind::*;
        let esc = Escalation { remind_every: Some(Duration::from_secs(1)), critical_after: None };
        let mut a = AlertState::default();
        wave(&mut a, 0, &square(10), |_| false);
        assert!(a.flap.is_flapping());
        // Hot (firing quietly), a reminder due, critical, no data: no word.
        for k in 10..14 {
            let v = verdict(true, k >= 12, false);
            assert_eq!(a.evaluate(k as f64, 1.0, &v, &esc, false, Some(&FLAP)), None, "k = {k}");
        }
        assert_eq!(a.firing_severity(), Some(Severity::Critical));
        assert_eq!(a.lose_data(14.0, 13.0, NoDataReason::NoSamples, false), None);
        // Saved and read back (a restart): the flap goes on.
        let saved = serde_json::to_value(a).unwrap();
        // The 14 states recorded, oldest first (the first one stands for the older ones).
        assert_eq!(saved["flap"]["history"], "owowowowowwwcc", "{saved}");
        let b: AlertState = serde_json::from_value(saved).unwrap();
        assert_eq!(b, a);
        // A file of the previous version has no history: it loads, nothing flaps.
        let old = serde_json::json!({"phase": "ok", "value": 1.0});
        let c: AlertState = serde_json::from_value(old).unwrap();
        assert!(c.flap.settled());
        // The ok state with nothing in its history is not written.
        assert!(serde_json::to_value(c).unwrap().get("flap").is_none());
        // A rule whose flap detection was turned off ends a flap in progress.
        let mut d = b;
        let t = d.evaluate(15.0, 1.0, &verdict(false, false, true), &esc, false, None).unwrap();
        assert_eq!((t.event, t.episode), (FlapEnd, 9.0));
        assert_eq!(d.flap, flap::Flap::default());
    }
}
