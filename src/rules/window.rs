//! Incremental window aggregates: each tick adds one sample and evicts what fell out, so a
//! rule costs O(1) amortised per tick and allocates nothing after construction.
//!
//! `for` keeps the time since each threshold started to hold; `avg` a running sum; `max`/`min`
//! a monotonic deque of ring sequence numbers; `occurrences` running counts. A gap in the
//! samples resets the window ([`WindowState::reset`]), so a gap never counts as "held".

use super::CompiledRule;
use crate::config::Window;
use crate::ring::Ring;

/// Recompute the running sum from the ring this often, so float error cannot build up.
const RESUM_EVERY: u32 = 4096;

/// What a window says after a sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Verdict {
    /// The value to report: the latest sample, or the aggregate for `avg`/`max`/`min`.
    pub value: f64,
    /// The warning condition holds over the window.
    pub warn: bool,
    /// The critical condition holds over the window.
    pub crit: bool,
    /// The clear (recovery) condition holds.
    pub clear: bool,
    /// The latest sample alone meets warn or crit (an alert is at least pending).
    pub latest_meets: bool,
}

/// Per (rule, series) window state.
#[derive(Clone, Debug)]
pub struct WindowState {
    form: Window,
    /// Sequence number of the oldest ring entry inside the window.
    start_seq: u64,
    /// Number of entries inside the window.
    count: u32,
    /// Timestamp of the first sample since the last reset.
    reset_ts: Option<f64>,
    /// Tolerance for comparing sampled times with window lengths (half an interval).
    slack: f64,
    /// The sampling interval, seconds.
    interval: f64,
    sum: f64,
    pushes_since_resum: u32,
    deque: Box<[u64]>,
    dq_head: usize,
    dq_len: usize,
    warn_since: Option<f64>,
    crit_since: Option<f64>,
    occ_warn: u32,
    occ_crit: u32,
    occ_unclear: u32,
}

impl WindowState {
    /// A window for `rule` over a ring of `ring_capacity` entries sampled every `interval_s`.
    pub fn new(rule: &CompiledRule, ring_capacity: usize, interval_s: f64) -> WindowState {
        let deque_len = match rule.rule.window {
            Window::Max(_) | Window::Min(_) => ring_capacity.max(1),
            _ => 0,
        };
        WindowState {
            form: rule.rule.window,
            start_seq: 0,
            count: 0,
            reset_ts: None,
            slack: interval_s * 0.5,
            interval: interval_s,
            sum: 0.0,
            pushes_since_resum: 0,
            deque: vec![0; deque_len].into_boxed_slice(),
            dq_head: 0,
            dq_len: 0,
            warn_since: None,
            crit_since: None,
            occ_warn: 0,
            occ_crit: 0,
            occ_unclear: 0,
        }
    }

    /// Forgets everything: the window restarts with the ring's next sample.
    pub fn reset(&mut self, ring: &Ring) {
        self.start_seq = ring.end_seq();
        self.count = 0;
        self.reset_ts = None;
        self.sum = 0.0;
        self.dq_len = 0;
        self.warn_since = None;
        self.crit_since = None;
        self.occ_warn = 0;
        self.occ_crit = 0;
        self.occ_unclear = 0;
    }

    /// Call before pushing into a full ring: drops the entry about to be overwritten.
    pub fn before_push(&mut self, rule: &CompiledRule, ring: &Ring) {
        if let Some(seq) = ring.seq_to_be_overwritten()
            && self.count > 0
            && seq == self.start_seq
        {
            self.evict_front(rule, ring);
            // Samples came faster than the ring was sized for: the window now holds less time
            // than its duration, so it only counts as covered again from its new start.
            if matches!(self.form, Window::Avg(_) | Window::Max(_) | Window::Min(_)) {
                self.reset_ts = ring.get(self.start_seq).map(|e| e.ts);
            }
        }
    }

    /// Adds the entry `seq` just pushed into `ring` and says what the window now holds.
    pub fn after_push(&mut self, rule: &CompiledRule, ring: &Ring, seq: u64) -> Verdict {
        let Some(entry) = ring.get(seq) else {
            return Verdict {
                value: f64::NAN,
                warn: false,
                crit: false,
                clear: false,
                latest_meets: false,
            };
        };
        let (ts, v) = (entry.ts, entry.value);
        if self.count == 0 {
            self.start_seq = seq;
            self.reset_ts.get_or_insert(ts);
        }
        self.count += 1;
        let meets_warn = rule.warn.is_some_and(|p| p.holds(v));
        let meets_crit = rule.crit.is_some_and(|p| p.holds(v));
        let latest_meets = meets_warn || meets_crit;
        let mut verdict = Verdict {
            value: v,
            warn: false,
            crit: false,
            clear: rule.clear.holds(v),
            latest_meets,
        };
        match self.form {
            Window::Latest => {
                verdict.warn = meets_warn;
                verdict.crit = meets_crit;
                self.evict_before(rule, ring, seq);
            }
            Window::For(d) => {
                let d = d.as_secs_f64() - self.slack;
                self.warn_since =
                    if meets_warn { Some(self.warn_since.unwrap_or(ts)) } else { None };
                self.crit_since =
                    if meets_crit { Some(self.crit_since.unwrap_or(ts)) } else { None };
                verdict.warn = self.warn_since.is_some_and(|t| ts - t >= d);
                verdict.crit = self.crit_since.is_some_and(|t| ts - t >= d);
                self.evict_before(rule, ring, seq);
            }
            Window::Avg(d) | Window::Max(d) | Window::Min(d) => {
                self.add_aggregate(ring, seq, v);
                let d = d.as_secs_f64();
                while self.count > 1 {
                    match ring.get(self.start_seq) {
                        Some(old) if old.ts <= ts - d + 1e-9 => self.evict_front(rule, ring),
                        _ => break,
                    }
                }
                let agg = self.aggregate(ring);
                let covered =
                    self.reset_ts.is_some_and(|r| ts - r >= d - self.interval - self.slack);
                verdict.value = agg;
                verdict.warn = covered && rule.warn.is_some_and(|p| p.holds(agg));
                verdict.crit = covered && rule.crit.is_some_and(|p| p.holds(agg));
                // A partial window (after a restart, a reload or a gap) cannot clear a firing
                // alert either: one calm sample is not a calm minute.
                verdict.clear = covered && rule.clear.holds(agg);
            }
            Window::Occurrences { n, m } => {
                self.occ_warn += u32::from(meets_warn);
                self.occ_crit += u32::from(meets_crit);
                self.occ_unclear += u32::from(!rule.clear.holds(v));
                while self.count > m {
                    self.evict_front(rule, ring);
                }
                verdict.warn = self.occ_warn >= n;
                verdict.crit = self.occ_crit >= n;
                // Clear only when certain: fewer than N would be "unclear" even if every sample
                // not yet seen (after a restart or a gap) were.
                verdict.clear = self.occ_unclear + (m - self.count.min(m)) < n;
            }
        }
        verdict
    }

    /// Windows that only look at the latest sample keep just it.
    fn evict_before(&mut self, rule: &CompiledRule, ring: &Ring, seq: u64) {
        while self.start_seq < seq && self.count > 1 {
            self.evict_front(rule, ring);
        }
    }

    fn add_aggregate(&mut self, ring: &Ring, seq: u64, v: f64) {
        match self.form {
            Window::Avg(_) => {
                self.sum += v;
                self.pushes_since_resum += 1;
                if self.pushes_since_resum >= RESUM_EVERY {
                    self.pushes_since_resum = 0;
                    self.sum =
                        (self.start_seq..=seq).filter_map(|s| ring.get(s)).map(|e| e.value).sum();
                }
            }
            Window::Max(_) | Window::Min(_) => {
                let is_max = matches!(self.form, Window::Max(_));
                let cap = self.deque.len();
                while self.dq_len > 0 {
                    let back = self.deque[(self.dq_head + self.dq_len - 1) % cap];
                    let bv = ring.get(back).map_or(f64::NAN, |e| e.value);
                    let dominated = if is_max { bv <= v } else { bv >= v };
                    if dominated || bv.is_nan() {
                        self.dq_len -= 1;
                    } else {
                        break;
                    }
                }
                if self.dq_len == cap {
                    self.dq_head = (self.dq_head + 1) % cap;
                    self.dq_len -= 1;
                }
                self.deque[(self.dq_head + self.dq_len) % cap] = seq;
                self.dq_len += 1;
            }
            _ => {}
        }
    }

    fn aggregate(&self, ring: &Ring) -> f64 {
        match self.form {
            Window::Avg(_) if self.count > 0 => self.sum / f64::from(self.count),
            Window::Max(_) | Window::Min(_) if self.dq_len > 0 => {
                ring.get(self.deque[self.dq_head]).map_or(f64::NAN, |e| e.value)
            }
            _ => f64::NAN,
        }
    }

    /// Removes the oldest entry of the window from every aggregate.
    fn evict_front(&mut self, rule: &CompiledRule, ring: &Ring) {
        if self.count == 0 {
            return;
        }
        let seq = self.start_seq;
        if let Some(old) = ring.get(seq) {
            match self.form {
                Window::Avg(_) => self.sum -= old.value,
                Window::Max(_) | Window::Min(_)
                    if self.dq_len > 0 && self.deque[self.dq_head] == seq =>
                {
                    self.dq_head = (self.dq_head + 1) % self.deque.len();
                    self.dq_len -= 1;
                }
                Window::Occurrences { .. } => {
                    let v = old.value;
                    self.occ_warn -= u32::from(rule.warn.is_some_and(|p| p.holds(v)));
                    self.occ_crit -= u32::from(rule.crit.is_some_and(|p| p.holds(v)));
                    self.occ_unclear -= u32::from(!rule.clear.holds(v));
                }
                _ => {}
            }
        }
        self.start_seq += 1;
        self.count -= 1;
    }
}
