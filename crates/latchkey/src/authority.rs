//! The authorization server's operations, each one call for an HTTP handler: log in, decide an
//! authorization request, issue a code, answer a token request, answer userinfo.
//!
//! Everything takes `now`; nothing here knows about HTTP.

use std::net::IpAddr;
use std::sync::Arc;

use crate::client_cache::ClientCache;
use crate::client_keys::ClientKeys;
use crate::client_secrets::VerifiedSecrets;
use crate::keys::KeyManager;
use crate::model::{AttemptEnd, AttemptSlot};
use crate::model::{AuthMethod, Client, ClientRecord, Resource, Session, TokenFormat};
use crate::oauth::authorize::AuthorizationRequest;
use crate::oauth::client_assertion;
use crate::oauth::client_auth::{self, Presented};
use crate::oauth::scope::Scopes;
use crate::oauth::{ErrorCode, OAuthError};
use crate::password::{self, Hasher};
use crate::store::{self, Store};
use crate::throttle::{self, AddressBudget, Subject};
use crate::{model, secret};

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
}

/// Shared state of the authorization server.
pub struct Authority {
    /// The database.
    pub store: Arc<dyn Store>,
    /// Signing keys.
    pub keys: Arc<KeyManager>,
    /// Lifetimes, issuer, resources.
    pub settings: Settings,
    /// Password hashing pool for users (logins, the password grant).
    pub hasher: Hasher,
    /// Hashing pool for human-chosen client secrets, apart from the users' pool so that a
    /// flood of logins queued there cannot hold up client authentication.
    pub client_hasher: Hasher,
    /// Failed attempts per source address, on this node (the per-account and per-client
    /// schedules are in the store, shared by all nodes).
    pub addresses: AddressBudget,
    /// Registered clients, cached briefly.
    pub clients: ClientCache,
    /// Keys of `private_key_jwt` clients.
    pub client_keys: ClientKeys,
    /// Client secrets already verified.
    pub verified_secrets: VerifiedSecrets,
}

impl Authority {
    /// Checks a username and password (same cost whether or not the user exists) and opens a
    /// session on success.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        from: Option<IpAddr>,
        now: i64,
    ) -> Result<Login, Failure> {
        let Some(user) = self.verify_user(username, password, from, now).await? else {
            return Ok(Login::Failed);
        };
        let cookie = secret::generate()?;
        let session = Session {
            id_hash: secret::hash(&cookie),
            user_id: user.id,
            auth_time: now,
            created_at: now,
            expires_at: now + self.settings.session_ttl,
        };
        self.store.create_session(&session).await?;
        Ok(Login::Success { session, cookie })
    }

    /// Checks a username and password from `from`: the same cost whether or not the user
    /// exists, on the account's attempt schedule and the address's budget (see `throttle`).
    pub async fn verify_user(
        &self,
        username: &str,
        password: &str,
        from: Option<IpAddr>,
        now: i64,
    ) -> Result<Option<model::User>, Failure> {
        if username.len() > throttle::MAX_USERNAME_BYTES
            || password.len() > throttle::MAX_PASSWORD_BYTES
        {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "the username may have at most {} bytes and the password {}",
                    throttle::MAX_USERNAME_BYTES,
                    throttle::MAX_PASSWORD_BYTES
                ),
            )
            .into());
        }
        let attempt =
            self.attempt(Subject::Account(username), Throttled::Account, from, now).await?;
        let user = self.store.user_by_username(username).await?;
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        let valid = match self.hasher.verify(password.to_owned(), stored).await {
            Ok(valid) => valid,
            Err(error) => {
                attempt.unchecked().await;
                return Err(error.into());
            }
        };
        let Some(user) = user.filter(|_| valid) else {
            let attempts = attempt.failed().await?;
            self.addresses.failed(from, now);
            metrics::counter!("latchkey_login_failures_total").increment(1);
            tracing::warn!(
                target: "latchkey::security",
                event = "login_failure",
                attempts,
                "failed login"
            );
            return Ok(None);
        };
        attempt.succeeded().await?;
        Ok(Some(user))
    }

    /// Takes a slot on `subject`'s attempt schedule, after the source address's budget.
    async fn attempt(
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
    async fn try_attempt(
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
                Ok(Attempt { store: self.store.clone(), key, failures, now, open: true })
            }
            refused => Err(Refused::Schedule(refused)),
        })
    }

    /// The live session behind a cookie value.
    pub async fn session(&self, cookie: &str, now: i64) -> Result<Option<Session>, Failure> {
        Ok(self.store.session(&secret::hash(cookie), now).await?)
    }

    /// The live session behind a cookie value, with the scopes its user already approved for
    /// the client.
    pub async fn session_and_consent(
        &self,
        cookie: &str,
        client_id: &str,
        now: i64,
    ) -> Result<Option<(Session, Option<Scopes>)>, Failure> {
        let found = self.store.session_and_consent(&secret::hash(cookie), client_id, now).await?;
        Ok(found.map(|(session, scopes)| (session, scopes.and_then(|s| Scopes::parse(&s)))))
    }

    /// The scopes the user already approved for the client.
    pub async fn consented(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Option<Scopes>, Failure> {
        Ok(self.store.consent(user_id, client_id).await?.and_then(|s| Scopes::parse(&s)))
    }

    /// Remembers approval of the request's scopes, on top of earlier ones.
    pub async fn remember_consent(
        &self,
        user_id: &str,
        request: &AuthorizationRequest,
        now: i64,
    ) -> Result<(), Failure> {
        let mut scopes: Vec<String> = self
            .consented(user_id, &request.client.client_id)
            .await?
            .map(|s| s.iter().map(str::to_owned).collect())
            .unwrap_or_default();
        for scope in request.target.scopes.iter() {
            if !scopes.iter().any(|s| s == scope) {
                scopes.push(scope.to_owned());
            }
        }
        self.store.save_consent(user_id, &request.client.client_id, &scopes.join(" "), now).await?;
        Ok(())
    }

    /// Issues an authorization code for an approved request.
    pub async fn issue_code(
        &self,
        request: &AuthorizationRequest,
        session: &Session,
        now: i64,
    ) -> Result<String, Failure> {
        let code = secret::generate()?;
        let record = model::AuthorizationCode {
            code_hash: secret::hash(&code),
            client_id: request.client.client_id.clone(),
            user_id: session.user_id.clone(),
            session_id_hash: session.id_hash.clone(),
            redirect_uri: request.redirect_uri_param.clone().unwrap_or_default(),
            scopes: request.target.scopes.to_param(),
            audience: request.target.audience.clone(),
            nonce: request.nonce.clone(),
            code_challenge: request.code_challenge.clone(),
            auth_time: session.auth_time,
            created_at: now,
            expires_at: now + self.settings.code_ttl,
        };
        self.store.insert_code(&record).await?;
        Ok(code)
    }

    /// A registered client, possibly read up to [`crate::client_cache::CLIENT_CACHE_TTL`] ago.
    pub async fn client(&self, client_id: &str) -> Result<Option<Arc<ClientRecord>>, Failure> {
        Ok(self.clients.get(self.store.as_ref(), client_id).await?)
    }

    /// Authenticates a client with its registered method (RFC 6749 §2.3, RFC 7523 §2.2).
    pub async fn authenticate_client(
        &self,
        presented: &Presented,
        from: Option<IpAddr>,
        now: i64,
    ) -> Result<Client, Failure> {
        let Some(record) = self.client(&presented.client_id).await? else {
            return Err(bad_credentials().into());
        };
        let secret = client_auth::check_method(presented, &record.client)?;
        match (presented.method, secret, presented.assertion.as_deref()) {
            (AuthMethod::None, _, _) => {}
            (AuthMethod::PrivateKeyJwt, _, Some(assertion)) => {
                self.verify_assertion(&record.client, assertion, now).await?;
            }
            (_, Some(secret), _) => self.verify_secret(&record, secret, from, now).await?,
            _ => return Err(bad_credentials().into()),
        }
        Ok(record.client.clone())
    }

    /// A client secret: SHA-256 for generated ones, argon2id (once, then the verified cache)
    /// for human-chosen ones, on the client's attempt schedule like a user account's.
    async fn verify_secret(
        &self,
        record: &ClientRecord,
        secret: &str,
        from: Option<IpAddr>,
        now: i64,
    ) -> Result<(), Failure> {
        let client_id = &record.client.client_id;
        let Some(stored) = record.secret_hash.as_deref() else {
            return Err(bad_credentials().into());
        };
        let mut attempts = None;
        if stored.starts_with("sha256:") {
            // A generated 256-bit secret cannot be guessed: no schedule needed.
            if password::verify(secret, stored) {
                return Ok(());
            }
        } else if self.verified_secrets.contains(client_id, secret, stored) {
            return Ok(());
        } else if secret.len() <= throttle::MAX_PASSWORD_BYTES {
            let Some(attempt) = self.client_attempt(client_id, secret, stored, from, now).await?
            else {
                return Ok(());
            };
            let verified =
                match self.client_hasher.verify(secret.to_owned(), Some(stored.to_owned())).await {
                    Ok(verified) => verified,
                    Err(error) => {
                        attempt.unchecked().await;
                        return Err(error.into());
                    }
                };
            if verified {
                attempt.succeeded().await?;
                self.verified_secrets.remember(client_id, secret, stored);
                return Ok(());
            }
            attempts = Some(attempt.failed().await?);
            self.addresses.failed(from, now);
        }
        metrics::counter!("latchkey_client_auth_failures_total").increment(1);
        tracing::warn!(
            target: "latchkey::security",
            event = "client_authentication_failure",
            %client_id,
            attempts,
            "failed client authentication"
        );
        Err(bad_credentials().into())
    }

    /// The slot for checking a client's human-chosen secret. While another request's check
    /// of the same client holds it, this one waits (a busy client's concurrent requests after
    /// a restart all present the same secret) and is done, with `None`, as soon as that check
    /// has verified its secret; it is refused only if the slot stays busy or the back-off runs.
    async fn client_attempt(
        &self,
        client_id: &str,
        secret: &str,
        stored: &str,
        from: Option<IpAddr>,
        now: i64,
    ) -> Result<Option<Attempt>, Failure> {
        const WAIT_STEP: std::time::Duration = std::time::Duration::from_millis(20);
        const WAIT_STEPS: u32 = 100;
        for _ in 0..WAIT_STEPS {
            match self.try_attempt(Subject::Client(client_id), from, now).await? {
                Ok(attempt) => return Ok(Some(attempt)),
                Err(Refused::Schedule(AttemptSlot::Busy)) => {
                    tokio::time::sleep(WAIT_STEP).await;
                    if self.verified_secrets.contains(client_id, secret, stored) {
                        return Ok(None);
                    }
                }
                Err(refused) => return Err(refusal(refused, Throttled::Client, now)),
            }
        }
        Err(refusal(Refused::Schedule(AttemptSlot::Busy), Throttled::Client, now))
    }

    /// A `private_key_jwt` assertion: signature by a registered key, claims, single use.
    async fn verify_assertion(
        &self,
        client: &Client,
        assertion: &str,
        now: i64,
    ) -> Result<(), Failure> {
        let kid = jsonwebtoken::decode_header(assertion).ok().and_then(|h| h.kid);
        let keys = self.client_keys.keys(client, kid.as_deref()).await.map_err(|error| {
            tracing::warn!(client_id = %client.client_id, %error, "client keys unavailable");
            OAuthError::new(
                ErrorCode::InvalidClient,
                format!("cannot verify the client assertion: {error}"),
            )
        })?;
        let audiences: Vec<&str> =
            self.settings.assertion_audiences.iter().map(String::as_str).collect();
        let verified =
            client_assertion::verify(assertion, &client.client_id, &keys, &audiences, now)?;
        if !self
            .store
            .use_client_assertion(&client.client_id, &verified.jti, verified.expires_at)
            .await?
        {
            return Err(OAuthError::new(
                ErrorCode::InvalidClient,
                "client_assertion was used before: every assertion needs a fresh jti",
            )
            .into());
        }
        Ok(())
    }
}

/// Why [`Authority::try_attempt`] gave no slot.
enum Refused {
    /// The subject's schedule: busy, or its back-off runs.
    Schedule(AttemptSlot),
    /// The source address must wait this many seconds.
    Address(i64),
}

/// The answer to a refused attempt, counted in `latchkey_throttled_total`.
fn refusal(refused: Refused, what: Throttled, now: i64) -> Failure {
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
    Failure::Throttled { what, retry_after: retry_after.max(1) }
}

/// A slot on an attempt schedule, taken by [`Authority::attempt`]. Its outcome is recorded by
/// [`Attempt::succeeded`] or [`Attempt::failed`]; one dropped before that (its request was
/// abandoned mid-check) is recorded as a failure in the background, since its hash ran.
struct Attempt {
    store: Arc<dyn Store>,
    key: String,
    failures: u32,
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
    async fn failed(mut self) -> Result<u32, Failure> {
        self.open = false;
        let (failures, end) = self.failure();
        self.store.end_attempt(&self.key, end, self.now).await?;
        Ok(failures)
    }

    /// Clears the schedule after a right secret.
    async fn succeeded(mut self) -> Result<(), Failure> {
        self.open = false;
        self.store.end_attempt(&self.key, AttemptEnd::Succeeded, self.now).await?;
        Ok(())
    }

    /// Gives the slot back with the record unchanged: the secret was never checked (shed).
    async fn unchecked(mut self) {
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

/// The one answer to a failed client authentication, whatever failed (RFC 6749 §5.2).
pub(crate) fn bad_credentials() -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClient, "unknown client or wrong credentials")
}
