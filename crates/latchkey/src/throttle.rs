//! The schedule of password and client-secret attempts: how fast anyone may guess.
//!
//! Per account (and per client with a human-chosen secret) at most one attempt is checked at
//! a time, and after [`FREE_FAILURES`] failures each next one is checked only once the
//! back-off since the last failure has run ([`delay_after`]: 1 s, doubling to 30 s). An attempt
//! outside the schedule is refused at once with the time to retry, never given a free hash, so
//! concurrency buys an attacker nothing: 30 guesses sent together cost one check. The schedule
//! lives in the store ([`crate::store::UserStore::begin_attempt`]), so every node of a cluster
//! shares it and adding nodes does not multiply the budget.
//!
//! Beside it, each source address has a budget of its own ([`AddressBudget`], per node, in
//! memory), so one address cannot spray guesses across many accounts at hashing speed.
//! Records are keyed by fixed-size hashes, and the address table is bounded by evicting its
//! oldest entries, never by clearing it (clearing would reset every account under attack).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::secret;

/// Failures allowed before the back-off starts.
pub const FREE_FAILURES: u32 = 5;
/// The longest back-off, seconds.
pub const MAX_DELAY_SECS: i64 = 30;
/// Failures older than this (seconds since the last attempt) are forgotten.
pub const WINDOW_SECS: i64 = 15 * 60;
/// How long one check may hold an account's slot (seconds) if its node dies mid-check.
pub const LEASE_SECS: i64 = 10;
/// What to tell an attempt that finds another one being checked.
pub const BUSY_RETRY_SECS: i64 = 1;
/// Failures one source address may have before its own back-off starts.
pub const ADDRESS_FREE_FAILURES: u32 = 30;
/// Longest accepted username and password, bytes; longer ones are refused before any lookup.
pub const MAX_USERNAME_BYTES: usize = 256;
/// See [`MAX_USERNAME_BYTES`].
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The back-off after `failures` recent failures, seconds: none for the first
/// [`FREE_FAILURES`], then 1, 2, 4, 8, 16, 30, 30, ...
pub fn delay_after(failures: u32, free: u32) -> i64 {
    if failures < free {
        return 0;
    }
    let exponent = (failures - free).min(10);
    (1i64 << exponent).min(MAX_DELAY_SECS)
}

/// The time at which the next attempt may be checked after a failure at `now` that brought
/// the count to `failures`. One second is added because `now` is truncated to whole seconds:
/// a back-off is never shorter than it says.
pub fn next_attempt_at(failures: u32, now: i64) -> i64 {
    match delay_after(failures, FREE_FAILURES) {
        0 => now,
        delay => now + delay + 1,
    }
}

/// What is throttled: the record key is a hash of the kind and the normalised name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    /// A user account, by username (case and surrounding space ignored).
    Account(&'a str),
    /// A client with a human-chosen secret, by client_id (exact).
    Client(&'a str),
}

impl Subject<'_> {
    /// The fixed-size record key: hex SHA-256, whatever the name's length.
    pub fn key(self) -> String {
        match self {
            Subject::Account(username) => {
                secret::hash(&format!("account:{}", username.trim().to_lowercase()))
            }
            Subject::Client(client_id) => secret::hash(&format!("client:{client_id}")),
        }
    }
}

/// Most source addresses tracked; beyond it the oldest records are evicted first.
const MAX_ADDRESSES: usize = 100_000;

/// Failures per source address (IPv4 address, or IPv6 /64), per node.
#[derive(Debug, Default)]
pub struct AddressBudget {
    records: Mutex<HashMap<[u8; 8], AddressRecord>>,
}

#[derive(Debug, Clone, Copy)]
struct AddressRecord {
    failures: u32,
    last: i64,
}

impl AddressBudget {
    /// `Err(seconds)` when the address must wait that long before its next attempt.
    pub fn check(&self, address: Option<IpAddr>, now: i64) -> Result<(), i64> {
        let Some(address) = address else { return Ok(()) };
        let Ok(records) = self.records.lock() else { return Ok(()) };
        let Some(record) = records.get(&prefix(address)) else { return Ok(()) };
        if now - record.last >= WINDOW_SECS {
            return Ok(());
        }
        let until = record.last + delay_after(record.failures, ADDRESS_FREE_FAILURES);
        if until > now { Err(until - now) } else { Ok(()) }
    }

    /// Counts a failed attempt from `address`.
    pub fn failed(&self, address: Option<IpAddr>, now: i64) {
        let Some(address) = address else { return };
        let Ok(mut records) = self.records.lock() else { return };
        let key = prefix(address);
        if records.len() >= MAX_ADDRESSES && !records.contains_key(&key) {
            evict_oldest(&mut records);
        }
        let record = records.entry(key).or_insert(AddressRecord { failures: 0, last: now });
        if now - record.last >= WINDOW_SECS {
            record.failures = 0;
        }
        record.failures += 1;
        record.last = now;
    }

    /// Addresses tracked now.
    pub fn len(&self) -> usize {
        self.records.lock().map_or(0, |records| records.len())
    }

    /// Whether no address is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Removes the oldest eighth of the records: amortised O(1) per insertion, and the records
/// under attack right now (the newest) stay.
fn evict_oldest(records: &mut HashMap<[u8; 8], AddressRecord>) {
    let mut ages: Vec<i64> = records.values().map(|record| record.last).collect();
    let cut = ages.len() / 8;
    let (_, threshold, _) = ages.select_nth_unstable(cut);
    let threshold = *threshold;
    let mut removed = 0;
    records.retain(|_, record| {
        let keep = record.last > threshold || removed > cut;
        if !keep {
            removed += 1;
        }
        keep
    });
}

/// IPv4 addresses count one by one; IPv6 ones by /64, the block one subscriber gets.
fn prefix(address: IpAddr) -> [u8; 8] {
    match address {
        IpAddr::V4(v4) => {
            let mut key = [0u8; 8];
            key[..4].copy_from_slice(&v4.octets());
            key[7] = 4;
            key
        }
        IpAddr::V6(v6) => {
            let mut key = [0u8; 8];
            key.copy_from_slice(&v6.octets()[..8]);
            key
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_back_off_starts_after_the_free_failures_and_doubles_to_its_cap() {
        let delays: Vec<i64> = (0..13).map(|f| delay_after(f, FREE_FAILURES)).collect();
        assert_eq!(delays, [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(next_attempt_at(4, 100), 100);
        assert_eq!(next_attempt_at(5, 100), 102, "never shorter than it says");
    }

    #[test]
    fn keys_are_fixed_size_and_normalise_usernames() {
        let long = "a".repeat(10_000);
        assert_eq!(Subject::Account(&long).key().len(), 64);
        assert_eq!(Subject::Account(" Alice ").key(), Subject::Account("alice").key());
        assert_ne!(Subject::Account("alice").key(), Subject::Client("alice").key());
        assert_ne!(Subject::Client("Web").key(), Subject::Client("web").key());
    }

    #[test]
    fn an_address_waits_after_its_free_failures_and_ipv6_counts_by_64() {
        let budget = AddressBudget::default();
        let one: IpAddr = "2001:db8::1".parse().unwrap();
        let same_block: IpAddr = "2001:db8::ffff".parse().unwrap();
        for _ in 0..ADDRESS_FREE_FAILURES {
            assert_eq!(budget.check(Some(one), 10), Ok(()));
            budget.failed(Some(one), 10);
        }
        assert_eq!(budget.check(Some(same_block), 10), Err(1));
        assert_eq!(budget.check(Some("2001:db9::1".parse().unwrap()), 10), Ok(()));
        assert_eq!(budget.check(Some(one), 11), Ok(()));
        assert_eq!(budget.check(Some(one), 10 + WINDOW_SECS), Ok(()));
        assert_eq!(budget.check(None, 10), Ok(()));
    }

    #[test]
    fn a_full_address_table_evicts_its_oldest_records_not_all() {
        let budget = AddressBudget::default();
        for n in 0..MAX_ADDRESSES as u32 {
            budget.failed(Some(IpAddr::from(n.to_be_bytes())), i64::from(n));
        }
        // The newest address is under attack: it keeps its record through the eviction.
        let newest = IpAddr::from((MAX_ADDRESSES as u32 - 1).to_be_bytes());
        for _ in 0..ADDRESS_FREE_FAILURES {
            budget.failed(Some(newest), 1_000_000);
        }
        budget.failed(Some("203.0.113.9".parse().unwrap()), 1_000_000);
        assert!(budget.len() < MAX_ADDRESSES, "the oldest were evicted");
        assert!(budget.len() > MAX_ADDRESSES / 2, "not cleared");
        assert!(budget.check(Some(newest), 1_000_000).is_err(), "the attacked record stays");
    }
}
