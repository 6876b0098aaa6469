//! Who a security event is about: the caller of the request that caused it.
//!
//! The HTTP layer runs each request of the endpoints that can log security events inside
//! [`with_caller`], with the source address (after trusted proxies) and the `User-Agent`. The
//! events (failed logins and client authentications, throttling, refresh-token reuse, code
//! replay) read it back through [`source`] and [`user_agent`], so the operations need no extra
//! parameters and a request that logs nothing pays only the task-local's scope. Whatever
//! comes from the request is cut to a bounded length and has its control characters escaped,
//! so a log line cannot be forged or made huge through it.

use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use reqwest::header::HeaderValue;

/// The caller of the current request.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// Its address.
    pub source: Option<IpAddr>,
    /// Its `User-Agent` header, as sent.
    pub user_agent: Option<HeaderValue>,
}

tokio::task_local! {
    static CALLER: Caller;
}

/// Runs `work` with `caller` as the current request's caller.
pub async fn with_caller<F: std::future::Future>(caller: Caller, work: F) -> F::Output {
    CALLER.scope(caller, work).await
}

/// The longest user agent logged, in characters.
const USER_AGENT_CHARS: usize = 200;
/// The longest account name logged, in characters.
const ACCOUNT_CHARS: usize = 64;

/// The current caller's address, or `-`.
pub fn source() -> String {
    CALLER
        .try_with(|caller| caller.source.map(|ip| ip.to_string()))
        .ok()
        .flatten()
        .unwrap_or_else(|| "-".into())
}

/// The current caller's user agent, bounded and escaped, or `-`.
pub fn user_agent() -> String {
    CALLER
        .try_with(|caller| {
            caller
                .user_agent
                .as_ref()
                .map(|ua| escape(&String::from_utf8_lossy(ua.as_bytes()), USER_AGENT_CHARS))
        })
        .ok()
        .flatten()
        .unwrap_or_else(|| "-".into())
}

/// An account name as typed, bounded and escaped, for the log.
pub fn account(typed: &str) -> String {
    escape(typed, ACCOUNT_CHARS)
}

/// At most `limit` characters of `text`, control characters written as `\u{…}` escapes
/// (and a cut marked with `…`).
fn escape(text: &str, limit: usize) -> String {
    let mut out = String::with_capacity(text.len().min(limit * 2));
    for (count, c) in text.chars().enumerate() {
        if count == limit {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// Lets one event of a kind through per second and counts the ones it holds back, so that a
/// flood (of throttled requests, say) is visible in the log without flooding it.
pub struct Sampler {
    second: AtomicI64,
    held_back: AtomicU64,
}

impl Sampler {
    /// A sampler that has let nothing through yet.
    pub const fn new() -> Self {
        Sampler { second: AtomicI64::new(i64::MIN), held_back: AtomicU64::new(0) }
    }

    /// `Some(held back since the last one)` when an event at `now` may be logged.
    pub fn admit(&self, now: i64) -> Option<u64> {
        let last = self.second.load(Ordering::Relaxed);
        if last != now
            && self.second.compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed).is_ok()
        {
            return Some(self.held_back.swap(0, Ordering::AcqRel));
        }
        self.held_back.fetch_add(1, Ordering::Relaxed);
        None
    }
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_text_is_bounded_and_escaped() {
        assert_eq!(account("alice"), "alice");
        assert_eq!(account("al\nice\u{1b}[31m"), "al\\u{a}ice\\u{1b}[31m");
        let long = "x".repeat(500);
        assert_eq!(account(&long).chars().count(), ACCOUNT_CHARS + 1);
        assert!(account(&long).ends_with('…'));
    }

    #[tokio::test]
    async fn the_caller_is_known_inside_its_request_only() {
        assert_eq!((source(), user_agent()), ("-".into(), "-".into()));
        let caller = Caller {
            source: Some("203.0.113.7".parse().unwrap()),
            user_agent: Some(HeaderValue::from_static("curl/8.5")),
        };
        let seen = with_caller(caller, async { (source(), user_agent()) }).await;
        assert_eq!(seen, ("203.0.113.7".into(), "curl/8.5".into()));
    }

    #[test]
    fn a_sampler_lets_one_a_second_through_and_counts_the_rest() {
        let sampler = Sampler::new();
        assert_eq!(sampler.admit(10), Some(0));
        assert_eq!(sampler.admit(10), None);
        assert_eq!(sampler.admit(10), None);
        assert_eq!(sampler.admit(11), Some(2));
    }
}
