//! A fixed-capacity ring of timestamped samples, allocated once when its series is discovered.
//!
//! Entries carry a monotonically increasing sequence number so several window aggregates can
//! each remember where their window starts without copying values.

/// One stored sample.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Entry {
    /// Unix seconds of the sample.
    pub ts: f64,
    /// The value.
    pub value: f64,
}

/// A ring buffer of the latest `capacity` samples of one series.
#[derive(Clone, Debug)]
pub struct Ring {
    entries: Box<[Entry]>,
    /// Sequence number the next push gets; entry `seq` lives at `seq % capacity`.
    next_seq: u64,
}

impl Ring {
    /// A ring holding at most `capacity` (at least 1) samples.
    pub fn new(capacity: usize) -> Ring {
        Ring { entries: vec![Entry::default(); capacity.max(1)].into_boxed_slice(), next_seq: 0 }
    }

    /// How many samples it can hold.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// How many samples it holds.
    pub fn len(&self) -> usize {
        (self.next_seq as usize).min(self.entries.len())
    }

    /// True before the first push.
    pub fn is_empty(&self) -> bool {
        self.next_seq == 0
    }

    /// Sequence number of the oldest entry still held.
    pub fn first_seq(&self) -> u64 {
        self.next_seq - self.len() as u64
    }

    /// Sequence number the next push will get (one past the newest).
    pub fn end_seq(&self) -> u64 {
        self.next_seq
    }

    /// The sequence number the next push will overwrite, if the ring is full.
    pub fn seq_to_be_overwritten(&self) -> Option<u64> {
        (self.len() == self.capacity()).then(|| self.first_seq())
    }

    /// The entry with sequence number `seq`, if still held.
    pub fn get(&self, seq: u64) -> Option<Entry> {
        (seq >= self.first_seq() && seq < self.next_seq)
            .then(|| self.entries[(seq % self.entries.len() as u64) as usize])
    }

    /// The newest entry.
    #[cfg(test)]
    pub fn last(&self) -> Option<Entry> {
        self.next_seq.checked_sub(1).and_then(|s| self.get(s))
    }

    /// Appends a sample, overwriting the oldest when full; returns its sequence number.
    pub fn push(&mut self, ts: f64, value: f64) -> u64 {
        let seq = self.next_seq;
        let cap = self.entries.len() as u64;
        self.entries[(seq % cap) as usize] = Entry { ts, value };
        self.next_seq += 1;
        seq
    }

    /// The held entries, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = Entry> + '_ {
        (self.first_seq()..self.next_seq).filter_map(|s| self.get(s))
    }
}

#[cfg(test)]
mod tests {
    use super::Ring;

    #[test]
    fn wraps_and_keeps_sequence_numbers() {
        let mut r = Ring::new(3);
        assert!(r.is_empty());
        for i in 0..5 {
            assert_eq!(r.push(i as f64, i as f64 * 10.0), i);
        }
        assert_eq!(r.len(), 3);
        assert_eq!(r.first_seq(), 2);
        assert_eq!(r.get(1), None);
        assert_eq!(r.get(2).unwrap().value, 20.0);
        assert_eq!(r.last().unwrap().value, 40.0);
        assert_eq!(r.seq_to_be_overwritten(), Some(2));
        let values: Vec<f64> = r.iter().map(|e| e.value).collect();
        assert_eq!(values, vec![20.0, 30.0, 40.0]);
    }
}
