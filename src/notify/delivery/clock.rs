//! Monotonic time for delivery: every deadline (retry backoff, `give_up_after`, periodic
//! re-sends) is measured on it, so a wall clock that steps ±25 h drops nothing and mutes
//! nothing. Seconds as `f64` from a process-wide origin; values before the origin (the age of
//! an item adopted from the state file) are negative.
//!
//! Not for: display or the state file; those keep wall-clock Unix seconds.

use std::sync::OnceLock;
use std::time::Instant;

/// A source of monotonic seconds; injected so the worker's state machine is testable
/// without sleeping.
pub(crate) trait Clock: Send + Sync {
    /// Seconds since an arbitrary fixed origin; never goes backwards.
    fn now(&self) -> f64;
}

/// The process's monotonic clock.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MonoClock;

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

impl Clock for MonoClock {
    fn now(&self) -> f64 {
        origin().elapsed().as_secs_f64()
    }
}

#[cfg(test)]
pub(crate) mod manual {
    //! A clock the tests move by hand.
    use std::sync::Mutex;

    /// Starts at 0; [`ManualClock::advance`] moves it.
    #[derive(Debug, Default)]
    pub(crate) struct ManualClock(Mutex<f64>);

    impl ManualClock {
        pub(crate) fn advance(&self, secs: f64) {
            *self.0.lock().unwrap() += secs;
        }
    }

    impl super::Clock for ManualClock {
        fn now(&self) -> f64 {
            *self.0.lock().unwrap()
        }
    }
}
