//! Slowing down password guessing without locking anyone out.
//!
//! After a few failures for one account, each further attempt waits longer (doubling, capped),
//! so an online guessing attack crawls while the real user, who tries rarely, barely notices.
//! A success clears the account's record. Kept in memory per node, bounded in size.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Failures allowed before delays start.
const FREE_FAILURES: u32 = 5;
/// Longest delay before an attempt.
const MAX_DELAY: Duration = Duration::from_secs(8);
/// Failures older than this are forgotten.
const WINDOW_SECS: i64 = 15 * 60;
/// Most accounts tracked at once; the oldest records go first beyond it.
const MAX_TRACKED: usize = 100_000;

/// Failure counts per account.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, (u32, i64)>>,
}

impl LoginThrottle {
    /// Records an attempt for `username` and returns how long it must wait before its
    /// password is checked, with the number of attempts in the window, this one included.
    ///
    /// Every attempt counts as a failure until [`LoginThrottle::succeeded`] clears the record:
    /// counting before the check, not after it, makes a burst of concurrent guesses wait as
    /// long as the same guesses sent one after another.
    pub fn attempt(&self, username: &str, now: i64) -> (Duration, u32) {
        let Ok(mut map) = self.failures.lock() else { return (Duration::ZERO, 0) };
        if map.len() >= MAX_TRACKED {
            map.retain(|_, (_, last)| now - *last < WINDOW_SECS);
            if map.len() >= MAX_TRACKED {
                map.clear();
            }
        }
        let entry = map.entry(key(username)).or_insert((0, now));
        if now - entry.1 >= WINDOW_SECS {
            *entry = (0, now);
        }
        let before = entry.0;
        entry.0 += 1;
        entry.1 = now;
        (delay_after(before), entry.0)
    }

    /// Clears the account's failures after a successful login.
    pub fn succeeded(&self, username: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(&key(username));
        }
    }
}

/// The wait before an attempt that follows `failures` unexplained ones.
fn delay_after(failures: u32) -> Duration {
    if failures < FREE_FAILURES {
        return Duration::ZERO;
    }
    let exponent = (failures - FREE_FAILURES).min(10);
    (Duration::from_millis(250) * 2u32.pow(exponent)).min(MAX_DELAY)
}

fn key(username: &str) -> String {
    username.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_after_free_attempts_and_reset_on_success() {
        let throttle = LoginThrottle::default();
        for n in 1..=FREE_FAILURES {
            assert_eq!(throttle.attempt("Alice", 0), (Duration::ZERO, n));
        }
        assert_eq!(throttle.attempt("alice", 1).0, Duration::from_millis(250));
        assert_eq!(throttle.attempt("ALICE", 2).0, Duration::from_millis(500));
        for _ in 0..20 {
            throttle.attempt("alice", 3);
        }
        assert_eq!(throttle.attempt("alice", 4).0, MAX_DELAY);
        assert_eq!(throttle.attempt("bob", 4).0, Duration::ZERO);
        let expired = throttle.attempt("alice", 4 + WINDOW_SECS);
        assert_eq!(expired, (Duration::ZERO, 1), "old attempts expire");
        throttle.succeeded("alice");
        assert_eq!(throttle.attempt("alice", 5), (Duration::ZERO, 1));
    }
}
