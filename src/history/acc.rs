//! The running aggregate of one series over one slot: min, max, sum, count, last.
//!
//! Not for: storage (`format`) or deciding when a slot ends (`recorder`).

use super::sink::Stats;

/// Aggregates values as they come; `last` is the value with the latest time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Acc {
    min: f64,
    max: f64,
    sum: f64,
    count: u32,
    last: f64,
    last_ts: f64,
}

impl Default for Acc {
    fn default() -> Acc {
        Acc {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
            count: 0,
            last: f64::NAN,
            last_ts: f64::NEG_INFINITY,
        }
    }
}

impl Acc {
    /// Adds a value taken at `ts`.
    pub fn add_at(&mut self, v: f64, ts: f64) {
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += v;
        self.count = self.count.saturating_add(1);
        if ts >= self.last_ts {
            self.last = v;
            self.last_ts = ts;
        }
    }

    /// Starts again from a stored slot cell (min, avg, max, last; count).
    pub fn from_cell(cell: [f32; 4], count: u32, ts: f64) -> Acc {
        if count == 0 || cell[1].is_nan() {
            return Acc::default();
        }
        Acc {
            min: cell[0] as f64,
            max: cell[2] as f64,
            sum: cell[1] as f64 * count as f64,
            count,
            last: cell[3] as f64,
            last_ts: ts,
        }
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        *self = Acc::default();
    }

    /// The aggregates, if any value was added.
    pub fn stats(&self) -> Option<Stats> {
        (self.count > 0).then(|| Stats {
            min: self.min,
            avg: self.sum / self.count as f64,
            max: self.max,
            last: self.last,
            count: self.count,
        })
    }

    /// The slot cell to store (NaN and count 0 when empty).
    pub fn cell(&self) -> ([f32; 4], u32) {
        match self.stats() {
            Some(s) => ([s.min as f32, s.avg as f32, s.max as f32, s.last as f32], s.count),
            None => ([f32::NAN; 4], 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_and_last_by_time() {
        let mut a = Acc::default();
        assert_eq!(a.stats(), None);
        a.add_at(3.0, 10.0);
        a.add_at(1.0, 12.0);
        a.add_at(5.0, 11.0);
        let s = a.stats().unwrap();
        assert_eq!((s.min, s.avg, s.max, s.last, s.count), (1.0, 3.0, 5.0, 1.0, 3));
        let (cell, n) = a.cell();
        let b = Acc::from_cell(cell, n, 12.0);
        assert_eq!(b.stats().unwrap().avg, 3.0);
    }
}
