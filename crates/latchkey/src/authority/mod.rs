//! The authorization server's operations, each one call for an HTTP handler: log in, decide an
//! authorization request, issue a code, answer a token request, answer userinfo.
//!
//! Everything takes `now`; nothing here knows about HTTP.
//!
//! - `login`: a user's password check and the session it opens.
//! - `authorize`: remembered consent and the codes an approved request gets.
//! - `client_auth`: client authentication by secret or `private_key_jwt`.
//! - `attempts`: the attempt schedules both checks run under (rules in [`crate::throttle`]).
//! - `token`: the token endpoint, one module per grant.
//! - `introspect`, `revoke`, `userinfo`, `logout`: the other endpoints, one module each.
//! - here: construction, failures, and what several operations share.

mod attempts;
mod authorize;
mod client_auth;
mod introspect;
mod login;
mod logout;
mod revoke;
mod token;
mod userinfo;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

pub(crate) use client_auth::bad_credentials;

use crate::clients::cache::ClientCache;
use crate::clients::keys::ClientKeys;
use crate::clients::secrets::VerifiedSecrets;
use crate::clock::Clock;
use crate::forms::FormKey;
use crate::keys::KeyManager;
use crate::model::{ClientRecord, Resource, Session, TokenFormat};
use crate::oauth::OAuthError;
use crate::password::{self, Hasher};
use crate::secret;
use crate::store::{self, Store};
use crate::throttle::AddressBudget;
use crate::verified_tokens::VerifiedTokens;

/// Lifetimes and the server's identity.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The issuer identifier.
    pub issuer: String,
    /// Access-token lifetime, seconds.
    pub access_token_ttl: i64,
    /// Refresh-token lifetime, seconds.
    pub refresh_token_ttl: i64,
    /// Authorization-code lifetime, seconds.
    pub code_ttl: i64,
    /// id_token lifetime, seconds.
    pub id_token_ttl: i64,
    /// Login-session lifetime, seconds.
    pub session_ttl: i64,
    /// Grace window for refresh-token retries, seconds, unless a client sets its own (0: strict).
    pub refresh_grace_secs: i64,
    /// The APIs tokens are issued for.
    pub resources: Vec<Resource>,
    /// Access-token format for clients that do not choose one.
    pub access_token_format: TokenFormat,
    /// Values a client assertion's `aud` may hold: the issuer and the endpoint URLs.
    pub assertion_audiences: Vec<String>,
}

/// Failures that are the server's, not the client's: logged, answered with a generic 500.
#[derive(Debug, thiserror::Error)]
pub enum Internal {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// Randomness, hashing or signing failed.
    #[error("{0}")]
    Crypto(String),
}

/// A protocol error for the client, or an internal failure.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Tell the client.
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    /// Log it; tell the client only that something failed.
    #[error(transparent)]
    Internal(#[from] Internal),
    /// Too many password checks are running and waiting: answer 503 with `Retry-After` now
    /// rather than queue without bound.
    #[error("too many password checks are waiting")]
    Busy,
    /// The attempt is outside the schedule of its account, client or source address: refused
    /// without a check; it may come back after `retry_after` seconds (429 + `Retry-After`).
    #[error("too many attempts; retry in {retry_after} s")]
    Throttled {
        /// Whose schedule refused it.
        what: Throttled,
        /// Seconds until an attempt may be checked again.
        retry_after: i64,
    },
}

/// Whose attempt schedule refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    /// The user account's.
    Account,
    /// The client's (human-chosen secrets only).
    Client,
    /// The source address's.
    Address,
}

/// How long a client shed with [`Failure::Busy`] should wait before it retries.
pub const BUSY_RETRY_AFTER_SECS: u64 = 1;

impl From<password::Error> for Failure {
    fn from(error: password::Error) -> Self {
        match error {
            password::Error::Busy => Failure::Busy,
            other => Failure::Internal(Internal::Crypto(other.to_string())),
        }
    }
}

impl From<store::Error> for Failure {
    fn from(error: store::Error) -> Self {
        Failure::Internal(Internal::Store(error))
    }
}

impl From<secret::RandomError> for Failure {
    fn from(error: secret::RandomError) -> Self {
        Failure::Internal(Internal::Crypto(error.to_string()))
    }
}

/// The outcome of a login attempt.
#[derive(Debug)]
pub enum Login {
    /// Signed in: set this cookie value.
    Success {
        /// The session.
        session: Session,
        /// The cookie value (the session id itself; only its hash is stored).
        cookie: String,
    },
    /// Wrong username or password: one answer for both.
    Failed,
    /// The right password of a disabled account.
    Disabled,
}

/// Shared state of the authorization server: built once per node by [`Authority::new`].
pub struct Authority {
    store: Arc<dyn Store>,
    keys: Arc<KeyManager>,
    /// Shared with the refresh grant's rotation plan, which runs on the store's side.
    settings: Arc<Settings>,
    /// Password hashing pool for users (logins, the password grant).
    hasher: Hasher,
    /// Hashing pool for human-chosen client secrets, apart from the users' pool so that a
    /// flood of logins queued there cannot hold up client authentication.
    client_hasher: Hasher,
    /// Failed attempts per source address, on this node (the per-account and per-client
    /// schedules are in the store, shared by all nodes).
    addresses: AddressBudget,
    clients: ClientCache,
    client_keys: ClientKeys,
    verified_secrets: VerifiedSecrets,
    /// JWT access tokens this node has verified (see [`crate::verified_tokens`]).
    verified_tokens: VerifiedTokens,
    /// Signs the anti-CSRF values of the login, consent and logout forms.
    forms: FormKey,
    /// This node's clock minus the database's, milliseconds, as last measured.
    clock_drift_millis: AtomicI64,
    clock: Arc<dyn Clock>,
}

/// How many password checks run at once and how many may wait (see [`Hasher`]).
#[derive(Debug, Clone, Copy)]
pub struct HashLimits {
    /// Concurrent checks of users' passwords (one per core is the natural choice).
    pub users: usize,
    /// Checks that may wait beyond the running ones, per pool.
    pub queue: usize,
}

impl Authority {
    /// An authority over `store` with its signing `keys`: the pieces every operation shares.
    pub fn new(
        store: Arc<dyn Store>,
        keys: Arc<KeyManager>,
        settings: Settings,
        forms: FormKey,
        clock: Arc<dyn Clock>,
        limits: HashLimits,
    ) -> Result<Self, Failure> {
        Ok(Authority {
            store,
            keys,
            client_keys: ClientKeys::new(&settings.issuer),
            settings: Arc::new(settings),
            hasher: Hasher::new(limits.users, limits.queue),
            client_hasher: Hasher::new(1, limits.queue),
            addresses: AddressBudget::default(),
            clients: ClientCache::synced(crate::secret::hex(&crate::secret::random_bytes::<8>()?)),
            verified_secrets: VerifiedSecrets::new()?,
            verified_tokens: VerifiedTokens::default(),
            forms,
            clock_drift_millis: AtomicI64::new(0),
            clock,
        })
    }

    /// Lifetimes, issuer, resources.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The anti-CSRF key of the forms.
    pub fn forms(&self) -> &FormKey {
        &self.forms
    }

    /// The users' password hashing pool (start-up hashing shares its bound).
    pub fn hasher(&self) -> &Hasher {
        &self.hasher
    }

    /// This node's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Records this node's clock minus the database's, as just measured.
    pub fn set_clock_drift(&self, millis: i64) {
        self.clock_drift_millis.store(millis, Ordering::Relaxed);
    }

    /// The database's clock, Unix milliseconds.
    pub async fn database_clock_millis(&self) -> Result<i64, store::Error> {
        self.store.clock_millis().await
    }
}

/// A clock drift beyond this is reported: lifetimes written by one node are checked by others.
pub const MAX_CLOCK_DRIFT_MILLIS: i64 = 2000;

impl Authority {
    /// The current time, seconds since the Unix epoch, by this authority's clock.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> Result<(), store::Error> {
        self.store.ping().await
    }

    /// The last measured drift, when it is beyond [`MAX_CLOCK_DRIFT_MILLIS`].
    pub fn clock_skew(&self) -> Option<i64> {
        let drift = self.clock_drift_millis.load(Ordering::Relaxed);
        (drift.abs() > MAX_CLOCK_DRIFT_MILLIS).then_some(drift)
    }

    /// A registered client, possibly read up to [`crate::clients::cache::CLIENT_CACHE_TTL`] ago.
    pub async fn client(&self, client_id: &str) -> Result<Option<Arc<ClientRecord>>, Failure> {
        Ok(self.clients.get(self.store.as_ref(), client_id).await?)
    }

    /// Syncs this node's client cache with the store's count of client changes (every
    /// [`crate::clients::cache::SYNC_EVERY`]; see [`crate::clients::cache`]); the count it
    /// caught up with.
    pub async fn sync_clients(&self) -> Result<Option<i64>, Failure> {
        Ok(self.clients.sync(self.store.as_ref()).await?)
    }

    /// Tells the store this node stops, so that no client change waits for it.
    pub async fn leave(&self) -> Result<(), Failure> {
        Ok(self.clients.leave(self.store.as_ref()).await?)
    }
}
