//! The time tokens are checked against: the system clock in production, a clock a test moves
//! by hand, so that expiry is tested without waiting for it.

use std::fmt::Debug;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time, in seconds since the Unix epoch.
pub trait Clock: Send + Sync + Debug {
    /// The current time, seconds since the Unix epoch.
    fn now(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }

    /// The current time, milliseconds since the Unix epoch.
    fn now_millis(&self) -> i64;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A clock that stands still until it is moved: for tests.
#[derive(Debug)]
pub struct ManualClock {
    millis: AtomicI64,
}

impl ManualClock {
    /// A clock stopped at the system's current time.
    pub fn starting_now() -> Self {
        ManualClock { millis: AtomicI64::new(SystemClock.now_millis()) }
    }

    /// A clock stopped at `secs` seconds since the Unix epoch.
    pub fn at(secs: i64) -> Self {
        ManualClock { millis: AtomicI64::new(secs.saturating_mul(1000)) }
    }

    /// Moves the clock forward by `secs` seconds (backward if negative).
    pub fn advance(&self, secs: i64) {
        self.millis.fetch_add(secs.saturating_mul(1000), Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> i64 {
        self.millis.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::at(1_000);
        assert_eq!(clock.now(), 1_000);
        clock.advance(30);
        assert_eq!((clock.now(), clock.now_millis()), (1_030, 1_030_000));
    }

    #[test]
    fn the_system_clock_is_after_2020() {
        assert!(SystemClock.now() > 1_577_836_800);
    }
}
