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
    /// How long to wait before checking a password for `username`.
    pub fn delay(&self, username: &str, now: i64) -> Duration {
        let failures =
            self.failures.lock().map(|map| map.get(&key(username)).copied()).ok().flatten();
        match failures {
            Some((count, last)) if now - last < WINDOW_SECS && count >= FREE_FAILURES => {
                let exponent = (count - FREE_FAILURES).min(10);
                (Duration::from_millis(250) * 2u32.pow(exponent)).min(MAX_DELAY)
            }
            _ => Duration::ZERO,
        }
    }

    /// Records a failed attempt; returns the account's failure count.
    pub fn failed(&self, username: &str, now: i64) -> u32 {
        let Ok(mut map) = self.failures.lock() else { return 0 };
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
        entry.0 += 1;
        entry.1 = now;
        entry.0
    }

    /// Clears the account's failures after a successful login.
    pub fn succeeded(&self, username: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(&key(username));
        }
    }
}

fn key(username: &str) -> String {
    username.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_after_free_failures_and_reset_on_success() {
        let throttle = LoginThrottle::default();
        for _ in 0..FREE_FAILURES {
            assert_eq!(throttle.delay("Alice", 0), Duration::ZERO);
            throttle.failed("alice", 0);
        }
        assert_eq!(throttle.delay("alice", 1), Duration::from_millis(250));
        throttle.failed("ALICE", 1);
        assert_eq!(throttle.delay("alice", 2), Duration::from_millis(500));
        for _ in 0..20 {
            throttle.failed("alice", 3);
        }
        assert_eq!(throttle.delay("alice", 4), MAX_DELAY);
        assert_eq!(throttle.delay("bob", 4), Duration::ZERO);
        assert_eq!(throttle.delay("alice", 4 + WINDOW_SECS), Duration::ZERO, "old failures expire");
        throttle.succeeded("alice");
        assert_eq!(throttle.delay("alice", 5), Duration::ZERO);
    }
}
