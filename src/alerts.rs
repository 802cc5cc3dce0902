//! Alert states per (rule, series) and the notifications their transitions produce.
//!
//! `ok → pending → firing(warning|critical) → resolved (→ ok)`. While firing: a reminder every
//! `remind_every`; a warning escalates to critical when the crit window holds or after
//! `critical_after`; severity never drops within an episode. Whether a notification is
//! delivered (silences) is decided by the caller; the state moves either way.

use crate::config::{Escalation, Severity};
use crate::rules::window::Verdict;
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
    /// The clear condition holds; the episode is over.
    Resolved,
}

impl EventKind {
    /// `firing`, `reminder`, `escalated` or `resolved`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Firing => "firing",
            EventKind::Reminder => "reminder",
            EventKind::Escalated => "escalated",
            EventKind::Resolved => "resolved",
        }
    }
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
        /// When the last notification of this episode was produced.
        last_notified: f64,
        /// Sequence number of the last notification in this episode (1 = the first).
        seq: u32,
        /// True once a notification of this episode was delivered (not silenced).
        announced: bool,
        /// The severity the last delivered notification carried (a higher `severity` not yet
        /// told is announced as `escalated` once no silence holds it back).
        #[serde(default = "warning")]
        told: Severity,
    },
}

fn warning() -> Severity {
    Severity::Warning
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
        AlertState { phase: Phase::Ok, value: f64::NAN }
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
}

impl AlertState {
    /// The severity, when firing.
    pub fn firing_severity(&self) -> Option<Severity> {
        match self.phase {
            Phase::Firing { severity, .. } => Some(severity),
            _ => None,
        }
    }

    /// Advances the state with the window's verdict at time `now`. `silenced` tells whether a
    /// notification made now would be suppressed: a silenced episode is announced (and a
    /// silenced escalation told) when the silence ends; the resolution of an announced episode
    /// is never suppressed; an episode never announced ends without a `resolved`.
    pub fn step(
        &mut self,
        now: f64,
        v: &Verdict,
        esc: &Escalation,
        silenced: bool,
    ) -> Option<Transition> {
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
                self.phase = Phase::Firing {
                    severity,
                    since: now,
                    last_notified: now,
                    seq: 1,
                    announced: !silenced,
                    told: severity,
                };
                (!silenced).then_some(Transition {
                    event: EventKind::Firing,
                    severity,
                    episode: now,
                    seq: 1,
                })
            }
            Phase::Firing { severity, since, last_notified, seq, announced, told } => {
                if v.clear && !v.warn && !v.crit {
                    self.phase = Phase::Ok;
                    // An announced episode always gets its resolution, silence or not: the
                    // receivers' incident must not stay open.
                    return announced.then_some(Transition {
                        event: EventKind::Resolved,
                        severity,
                        episode: since,
                        seq: seq + 1,
                    });
                }
                let escalate = severity == Severity::Warning
                    && (v.crit
                        || esc.critical_after.is_some_and(|d| now - since >= d.as_secs_f64()));
                let new_severity = if escalate { Severity::Critical } else { severity };
                let event = if !announced {
                    Some(EventKind::Firing)
                } else if new_severity > told {
                    // Escalated now, or while a silence held it back.
                    Some(EventKind::Escalated)
                } else if esc.remind_every.is_some_and(|d| now - last_notified >= d.as_secs_f64()) {
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
                    };
                    return None;
                };
                self.phase = Phase::Firing {
                    severity: new_severity,
                    since,
                    last_notified: now,
                    seq: seq + 1,
                    announced: true,
                    told: new_severity,
                };
                Some(Transition { event, severity: new_severity, episode: since, seq: seq + 1 })
            }
        }
    }

    /// Ends the episode because its series went away; returns `resolved` if it was announced.
    pub fn vanish(&mut self) -> Option<Transition> {
        let old = std::mem::take(self);
        match old.phase {
            Phase::Firing { severity, since, seq, announced: true, .. } => Some(Transition {
                event: EventKind::Resolved,
                severity,
                episode: since,
                seq: seq + 1,
            }),
            _ => None,
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
        let t = a.step(0.0, &hot, &esc, false).unwrap();
        assert_eq!((t.event, t.severity, t.seq), (EventKind::Firing, Severity::Warning, 1));
        assert_eq!(a.step(10.0, &hot, &esc, false), None);
        assert_eq!(a.step(30.0, &hot, &esc, false).unwrap().event, EventKind::Reminder);
        let t = a.step(100.0, &hot, &esc, false).unwrap();
        assert_eq!((t.event, t.severity), (EventKind::Escalated, Severity::Critical));
        let t = a.step(110.0, &verdict(false, false, true), &esc, false).unwrap();
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
        assert_eq!(a.step(0.0, &hot, &esc, true), None);
        assert_eq!(a.step(5.0, &hot, &esc, false).unwrap().event, EventKind::Firing);
        let mut b = AlertState::default();
        assert_eq!(b.step(0.0, &hot, &esc, true), None);
        assert_eq!(b.step(5.0, &verdict(false, false, true), &esc, false), None);
        assert_eq!(b.phase, Phase::Ok);
    }

    #[test]
    fn a_silenced_escalation_is_told_when_the_silence_ends_and_resolutions_are_never_silenced() {
        let esc = Escalation::default();
        let mut a = AlertState::default();
        assert_eq!(
            a.step(0.0, &verdict(true, false, false), &esc, false).unwrap().event,
            EventKind::Firing
        );
        // Crit holds while silenced: the state escalates, nobody is told yet.
        assert_eq!(a.step(5.0, &verdict(true, true, false), &esc, true), None);
        assert_eq!(a.firing_severity(), Some(Severity::Critical));
        let t = a.step(10.0, &verdict(true, true, false), &esc, false).unwrap();
        assert_eq!((t.event, t.severity, t.seq), (EventKind::Escalated, Severity::Critical, 2));
        assert_eq!(a.step(15.0, &verdict(true, true, false), &esc, false), None, "told once");
        // It clears under a silence: the announced episode still gets its resolution.
        let t = a.step(20.0, &verdict(false, false, true), &esc, true).unwrap();
        assert_eq!((t.event, t.seq), (EventKind::Resolved, 3));
    }

    #[test]
    fn hysteresis_keeps_firing_until_clear() {
        let esc = Escalation::default();
        let mut a = AlertState::default();
        a.step(0.0, &verdict(true, false, false), &esc, false);
        // Below the threshold but not yet below the clear level: still firing, no event.
        assert_eq!(a.step(5.0, &verdict(false, false, false), &esc, false), None);
        assert!(a.firing_severity().is_some());
    }
}
