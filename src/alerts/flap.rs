//! Flap detection, as Nagios and Icinga do it: the weighted percentage of state changes over
//! the last [`HISTORY`] evaluations of one (rule, series), and whether it is flapping.
//!
//! The state recorded at each evaluation is the rule's check result, not the alert's phase:
//! `critical` when the critical condition holds over the window, `warning` when the warning
//! one does, `ok` when the clear condition holds, and in the band between the clear level and
//! the threshold (where the alert neither fires nor resolves) the state recorded before. So a
//! signal that jitters inside a `for` window the rule was written to ignore never counts, and
//! neither silences, pending nor missing data change the history (an evaluation without data
//! records nothing). Nagios records the check result the same way.
//!
//! Of the `HISTORY - 1` = 20 transitions between consecutive entries, a change weighs from 0.8
//! (oldest) to 1.2 (newest), linearly; the percentage is the sum of the weights of the changes
//! over 20, times 100 (every entry different from the one before: 100 %). The first state
//! recorded fills the whole history, as Nagios fills it with the current state when it
//! starts: until 21 states are recorded the missing older ones count as unchanged, so a short
//! burst of changes right after start-up weighs what it would after a steady stretch.
//! Flapping starts when the percentage exceeds `high` and ends when it drops below `low`
//! (hysteresis).
//!
//! 21 states of two bits are packed in one `u64`: recording and the percentage allocate
//! nothing. Not the place for what a flap means for notifications (`alerts` decides that).

use crate::config::{FlapLimits, Severity};
use serde::{Deserialize, Serialize};

/// Evaluations the history keeps.
pub const HISTORY: u32 = 21;

/// The bits the history uses: two per state.
const MASK: u64 = (1 << (2 * HISTORY)) - 1;

/// The low bit of each of the 20 transitions' pairs.
const PAIRS: u64 = ((1 << (2 * (HISTORY - 1))) - 1) / 3;

/// A check result: what the rule said at one evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Check {
    /// The clear condition holds (or nothing fires).
    Ok = 0,
    /// The warning condition holds over the window.
    Warning = 1,
    /// The critical condition holds over the window.
    Critical = 2,
}

impl Check {
    fn from_bits(bits: u64) -> Check {
        match bits & 3 {
            0 => Check::Ok,
            1 => Check::Warning,
            _ => Check::Critical,
        }
    }

    fn letter(self) -> char {
        match self {
            Check::Ok => 'o',
            Check::Warning => 'w',
            Check::Critical => 'c',
        }
    }
}

/// The flap period in progress: the episode its notifications belong to.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Flapping {
    /// The episode (Unix seconds): the one that was open when flapping started, or the
    /// evaluation's time when none was.
    pub since: f64,
    /// Sequence number of the `flapping` notification within that episode.
    pub seq: u32,
    /// The worst state recorded while it flapped (at least `warning`).
    pub severity: Severity,
    /// True once the `flapping` notification was delivered (not held back by a silence).
    pub announced: bool,
    /// Elapsed seconds since the episode started firing (sum of the steps' `dt`).
    pub elapsed_s: f64,
}

/// One (rule, series)'s state history and flap period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Saved", into = "Saved")]
pub struct Flap {
    /// The states, two bits each, the newest in the lowest bits.
    states: u64,
    /// How many were recorded (at most [`HISTORY`]); 0: none yet.
    len: u8,
    /// Set while flapping.
    pub flapping: Option<Flapping>,
}

impl Flap {
    /// Records one evaluation's state (the first fills the history).
    pub fn record(&mut self, check: Check) {
        let bits = check as u64;
        if self.len == 0 {
            self.states = (0..HISTORY).fold(0, |acc, _| (acc << 2) | bits);
        } else {
            self.states = ((self.states << 2) | bits) & MASK;
        }
        self.len = (self.len + 1).min(HISTORY as u8);
    }

    /// The state recorded last, if any.
    pub fn newest(&self) -> Option<Check> {
        (self.len > 0).then(|| Check::from_bits(self.states))
    }

    /// The worst state in the history.
    pub fn worst(&self) -> Check {
        (0..HISTORY).map(|i| Check::from_bits(self.states >> (2 * i))).max().unwrap_or(Check::Ok)
    }

    /// The weighted percentage of state changes over the history (0 to 100).
    pub fn percent(&self) -> f64 {
        let n = HISTORY - 1;
        // Transition j is between entry j (newer; 0 = the newest) and entry j + 1: their
        // bits differ where `states ^ (states >> 2)` has one in pair j. One bit per change.
        let diff = self.states ^ (self.states >> 2);
        let mut changes = (diff | (diff >> 1)) & PAIRS;
        let mut sum = 0.0;
        while changes != 0 {
            let j = changes.trailing_zeros() / 2;
            sum += 0.8 + 0.4 * f64::from(n - 1 - j) / f64::from(n - 1);
            changes &= changes - 1;
        }
        sum / f64::from(n) * 100.0
    }

    /// True when the history shows no change and nothing flaps: nothing worth saving.
    pub fn settled(&self) -> bool {
        // Every entry equal to the newest: the newest's bits repeated 21 times.
        self.flapping.is_none() && self.states == (self.states & 3) * (MASK / 3)
    }

    /// True while flapping.
    pub fn is_flapping(&self) -> bool {
        self.flapping.is_some()
    }

    /// True when `percent` starts a flap (above `high`).
    pub fn starts(limits: &FlapLimits, percent: f64) -> bool {
        percent > limits.high
    }

    /// True when `percent` ends one (below `low`).
    pub fn ends(limits: &FlapLimits, percent: f64) -> bool {
        percent < limits.low
    }
}

/// The check result of an evaluation: `crit`, `warn`, `clear`, else (the band between clear
/// and threshold) the state recorded before (`ok` when none).
pub fn check_of(crit: bool, warn: bool, clear: bool, before: Option<Check>) -> Check {
    if crit {
        Check::Critical
    } else if warn {
        Check::Warning
    } else if clear {
        Check::Ok
    } else {
        before.unwrap_or(Check::Ok)
    }
}

impl Check {
    /// The severity of a state other than `ok` (`warning` for `ok`).
    pub fn severity(self) -> Severity {
        match self {
            Check::Critical => Severity::Critical,
            _ => Severity::Warning,
        }
    }
}

/// The state file's form: the recorded states as letters (`o`, `w`, `c`), oldest first.
#[derive(Serialize, Deserialize)]
struct Saved {
    #[serde(default)]
    history: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    flapping: Option<Flapping>,
}

impl From<Flap> for Saved {
    fn from(f: Flap) -> Saved {
        let history = (0..u32::from(f.len))
            .rev()
            .map(|i| Check::from_bits(f.states >> (2 * i)).letter())
            .collect();
        Saved { history, flapping: f.flapping }
    }
}

impl From<Saved> for Flap {
    /// A history that is too long or holds another letter (a damaged file) is dropped: the
    /// detection starts over, nothing else is lost.
    fn from(s: Saved) -> Flap {
        let mut f = Flap { flapping: s.flapping, ..Flap::default() };
        if s.history.len() > HISTORY as usize {
            return f;
        }
        let mut checks = [Check::Ok; HISTORY as usize];
        for (slot, c) in checks.iter_mut().zip(s.history.chars()) {
            *slot = match c {
                'o' => Check::Ok,
                'w' => Check::Warning,
                'c' => Check::Critical,
                _ => return f,
            };
        }
        for &c in &checks[..s.history.len()] {
            f.record(c);
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(states: &str) -> Flap {
        Flap::from(Saved { history: states.to_string(), flapping: None })
    }

    #[test]
    fn no_change_is_zero_and_every_change_is_a_hundred() {
        assert_eq!(of("ooooooooooooooooooooo").percent(), 0.0);
        let square = of("owowowowowowowowowowo");
        assert!((square.percent() - 100.0).abs() < 1e-9, "{}", square.percent());
        assert_eq!(of("").percent(), 0.0);
    }

    #[test]
    fn changes_weigh_from_0_8_oldest_to_1_2_newest() {
        // One change, between the two oldest entries: 0.8 / 20.
        let oldest = of("owwwwwwwwwwwwwwwwwwww");
        assert!((oldest.percent() - 4.0).abs() < 1e-9, "{}", oldest.percent());
        // One change, between the two newest: 1.2 / 20.
        let newest = of("oooooooooooooooooooow");
        assert!((newest.percent() - 6.0).abs() < 1e-9, "{}", newest.percent());
        // Changes at transitions 4, 9, 12, 16, 19 and 20 (1 = the oldest): weights
        // 0.8 + 0.4 × (k − 1) / 19, about 5.23 of 20.
        let s = of("oooowwwwwoooccccooowo");
        let expected: f64 = [4, 9, 12, 16, 19, 20]
            .iter()
            .map(|&k| 0.8 + 0.4 * f64::from(k - 1) / 19.0)
            .sum::<f64>()
            / 20.0
            * 100.0;
        assert!((s.percent() - expected).abs() < 1e-9, "{} vs {expected}", s.percent());
        assert_eq!(s.worst(), Check::Critical);
    }

    #[test]
    fn the_first_state_fills_the_history_and_older_states_fall_out() {
        let mut f = Flap::default();
        assert_eq!(f.newest(), None);
        f.record(Check::Warning);
        assert_eq!((f.percent(), f.newest()), (0.0, Some(Check::Warning)));
        f.record(Check::Ok);
        assert!((f.percent() - 6.0).abs() < 1e-9, "one new change: 1.2 / 20");
        for _ in 0..19 {
            f.record(Check::Ok);
        }
        assert!((f.percent() - 4.0).abs() < 1e-9, "now the oldest: 0.8 / 20");
        f.record(Check::Ok);
        assert_eq!(f.percent(), 0.0, "shifted out after 21 evaluations");
        assert!(f.settled());
    }

    #[test]
    fn hysteresis_between_high_and_low() {
        let limits = FlapLimits { high: 50.0, low: 25.0 };
        let mut f = Flap::default();
        let mut flapping = false;
        let mut starts_ends = Vec::new();
        // A square wave for 30 evaluations, then steady.
        for k in 0..60 {
            let c = if k < 30 && k % 2 == 1 { Check::Warning } else { Check::Ok };
            f.record(c);
            let p = f.percent();
            if !flapping && Flap::starts(&limits, p) {
                flapping = true;
                starts_ends.push((k, true));
            } else if flapping && Flap::ends(&limits, p) {
                flapping = false;
                starts_ends.push((k, false));
            }
        }
        // Nine changes on the newest transitions weigh 9 × 1.2 − 0.4 × 36 / 19 = 10.04 of 20
        // (50.2 %, eight: 44.9 %): it starts at the ninth change (k = 9). The last change is
        // at k = 30 (warning at 29, ok from then on); each steady evaluation then ages every
        // change and drops the oldest: it falls under 25 % at k = 45 (21.1 %; 25.6 % at 44).
        assert_eq!(starts_ends, [(9, true), (45, false)]);
    }

    #[test]
    fn the_check_result_keeps_its_state_in_the_band_between_clear_and_threshold() {
        assert_eq!(check_of(true, true, false, None), Check::Critical);
        assert_eq!(check_of(false, true, false, None), Check::Warning);
        assert_eq!(check_of(false, false, true, Some(Check::Warning)), Check::Ok);
        assert_eq!(check_of(false, false, false, Some(Check::Warning)), Check::Warning);
        assert_eq!(check_of(false, false, false, None), Check::Ok);
    }

    #[test]
    fn the_state_file_form_round_trips_and_a_damaged_history_is_dropped() {
        let mut f = of("oowc");
        f.flapping = Some(Flapping {
            since: 10.0,
            seq: 3,
            severity: Severity::Critical,
            announced: true,
            elapsed_s: 5.0,
        });
        let v = serde_json::to_value(f).unwrap();
        assert_eq!(v["history"], "oowc");
        let back: Flap = serde_json::from_value(v).unwrap();
        assert_eq!(back, f);
        let damaged: Flap = serde_json::from_value(serde_json::json!({"history": "oxw"})).unwrap();
        assert_eq!(damaged, Flap::default());
        let long: Flap =
            serde_json::from_value(serde_json::json!({"history": "o".repeat(22)})).unwrap();
        assert_eq!(long.newest(), None);
    }
}
