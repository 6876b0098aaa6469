//! The attempt schedules that password and client-secret checks run under: a slot taken in
//! the store before a check and the outcome recorded after it (rules in [`crate::throttle`]).

use std::net::IpAddr;
use std::sync::Arc;

use super::{Authority, Failure, Throttled};
use crate::model::{AttemptEnd, AttemptSlot};
use crate::password::{self, Hasher};
use crate::store::Store;
use crate::throttle::{self, Subject};

impl Authority {
    /// Takes a slot on `subject`'s attempt schedule, after the source address's budget.
    pub(super) async fn attempt(
        &self,
        subject: Subject<'_>,
        what: Throttled,
        from: Option<IpAddr>,
        now: i64,
    ) -> Result<Attempt, Failure> {
        match self.try_attempt(subject, from, now).await? {
            Ok(attempt) => Ok(attempt),
            Err(refused) => Err(refusal(refused, what, now)),
        }
    }

    /// [`Authority::attempt`], with the refusal as a value: `Busy`, or `Wait` for the
    /// back-off of the subject's schedule or of the source address.
    pub(super) async fn try_attempt(
        &self,
        subject: Subject<'_>,
        from: Option<IpAddr>,
        now: i64,
    ) -> Result<Result<Attempt, Refused>, Failure> {
        if let Err(wait) = self.addresses.check(from, now) {
            return Ok(Err(Refused::Address(wait)));
        }
        let key = subject.key();
        let slot = self
            .store
            .begin_attempt(&key, now, throttle::LEASE_SECS, throttle::WINDOW_SECS)
            .await?;
        Ok(match slot {
            AttemptSlot::Granted { failures } => {
                Ok(Attempt { store: self.store.clone(), key, failures, from, now, open: true })
            }
            refused => Err(Refused::Schedule(refused)),
        })
    }
}

/// How a secret checked under an attempt slot came out.
pub(super) enum Checked {
    /// It matched; the schedule's record is cleared.
    Right,
    /// It did not: the failures within the window, this one included.
    Wrong(u32),
}

impl Authority {
    /// Checks `presented` against `stored` (`None`: the dummy hash, which nothing matches) on
    /// `hasher` while `attempt` holds the slot, and records the outcome on the schedule and, for
    /// a wrong secret, the source address's budget. A check that never ran (shed by a full
    /// hashing queue, counted in `latchkey_shed_total{kind}`) gives the slot back unchanged.
    pub(super) async fn check_secret(
        &self,
        attempt: Attempt,
        hasher: &Hasher,
        kind: &'static str,
        presented: &str,
        stored: Option<String>,
    ) -> Result<Checked, Failure> {
        let (from, now) = (attempt.from, attempt.now);
        let matched = match hasher.verify(presented.to_owned(), stored).await {
            Ok(matched) => matched,
            Err(error) => {
                attempt.unchecked().await;
                if matches!(error, password::Error::Busy) {
                    metrics::counter!("latchkey_shed_total", "kind" => kind).increment(1);
                }
                return Err(error.into());
            }
        };
        if matched {
            attempt.succeeded().await?;
            return Ok(Checked::Right);
        }
        let failures = attempt.failed().await?;
        self.addresses.failed(from, now);
        Ok(Checked::Wrong(failures))
    }
}

/// Why [`Authority::try_attempt`] gave no slot.
pub(super) enum Refused {
    /// The subject's schedule: busy, or its back-off runs.
    Schedule(AttemptSlot),
    /// The source address must wait this many seconds.
    Address(i64),
}

/// The answer to a refused attempt, counted in `latchkey_throttled_total`.
pub(super) fn refusal(refused: Refused, what: Throttled, now: i64) -> Failure {
    let (what, retry_after) = match refused {
        Refused::Address(wait) => (Throttled::Address, wait),
        Refused::Schedule(AttemptSlot::Wait { until }) => (what, until - now),
        Refused::Schedule(_) => (what, throttle::BUSY_RETRY_SECS),
    };
    let kind = match what {
        Throttled::Account => "login",
        Throttled::Client => "client",
        Throttled::Address => "address",
    };
    metrics::counter!("latchkey_throttled_total", "kind" => kind).increment(1);
    // One line a second at most: a flood of refused attempts is cheap to send.
    static SAMPLER: crate::audit::Sampler = crate::audit::Sampler::new();
    if let Some(held_back) = SAMPLER.admit(now) {
        tracing::warn!(
            target: "latchkey::security",
            event = "throttled",
            kind,
            retry_after,
            similar_held_back = held_back,
            source = %crate::audit::source(),
            user_agent = %crate::audit::user_agent(),
            "attempt refused by the throttle"
        );
    }
    Failure::Throttled { what, retry_after: retry_after.max(1) }
}

/// A slot on an attempt schedule, taken by [`Authority::attempt`]. Its outcome is recorded by
/// [`Attempt::succeeded`] or [`Attempt::failed`]; one dropped before that (its request was
/// abandoned mid-check) is recorded as a failure in the background, since its hash ran.
pub(super) struct Attempt {
    store: Arc<dyn Store>,
    key: String,
    failures: u32,
    /// Where the attempt came from, for the address budget.
    from: Option<IpAddr>,
    now: i64,
    open: bool,
}

impl Attempt {
    fn failure(&self) -> (u32, AttemptEnd) {
        let failures = self.failures.saturating_add(1);
        (
            failures,
            AttemptEnd::Failed { failures, next_at: throttle::next_attempt_at(failures, self.now) },
        )
    }

    /// Records a wrong secret; returns the failures within the window, this one included.
    pub(super) async fn failed(mut self) -> Result<u32, Failure> {
        self.open = false;
        let (failures, end) = self.failure();
        self.store.end_attempt(&self.key, end, self.now).await?;
        Ok(failures)
    }

    /// Clears the schedule after a right secret.
    pub(super) async fn succeeded(mut self) -> Result<(), Failure> {
        self.open = false;
        self.store.end_attempt(&self.key, AttemptEnd::Succeeded, self.now).await?;
        Ok(())
    }

    /// Gives the slot back with the record unchanged: the secret was never checked (shed).
    pub(super) async fn unchecked(mut self) {
        self.open = false;
        let end = AttemptEnd::Failed { failures: self.failures, next_at: self.now };
        if let Err(error) = self.store.end_attempt(&self.key, end, self.now).await {
            tracing::warn!(%error, "releasing an attempt slot failed; its lease will expire");
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        let (_, end) = self.failure();
        let (store, key, now) = (self.store.clone(), std::mem::take(&mut self.key), self.now);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = store.end_attempt(&key, end, now).await {
                    tracing::warn!(%error, "recording an abandoned attempt failed; its lease will expire");
                }
            });
        }
    }
}
