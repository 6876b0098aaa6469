//! The authorization server's operations, each one call for an HTTP handler: log in, decide an
//! authorization request, issue a code, answer a token request, answer userinfo.
//!
//! Everything takes `now`; nothing here knows about HTTP.

use std::sync::Arc;

use crate::client_cache::ClientCache;
use crate::client_keys::ClientKeys;
use crate::client_secrets::VerifiedSecrets;
use crate::keys::KeyManager;
use crate::model::{AuthMethod, Client, ClientRecord, Resource, Session, TokenFormat};
use crate::oauth::authorize::AuthorizationRequest;
use crate::oauth::client_assertion;
use crate::oauth::client_auth::{self, Presented};
use crate::oauth::scope::Scopes;
use crate::oauth::{ErrorCode, OAuthError};
use crate::password::{self, Hasher};
use crate::store::{self, Store};
use crate::throttle::LoginThrottle;
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
    /// Login throttling.
    pub throttle: LoginThrottle,
    /// Registered clients, cached briefly.
    pub clients: ClientCache,
    /// Keys of `private_key_jwt` clients.
    pub client_keys: ClientKeys,
    /// Client secrets already verified.
    pub verified_secrets: VerifiedSecrets,
    /// Slow-down of failed client authentication, per client.
    pub client_throttle: LoginThrottle,
}

impl Authority {
    /// Checks a username and password (same cost whether or not the user exists) and opens a
    /// session on success.
    pub async fn login(&self, username: &str, password: &str, now: i64) -> Result<Login, Failure> {
        let Some(user) = self.verify_user(username, password, now).await? else {
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

    /// Checks a username and password: the same cost whether or not the user exists, slowed
    /// down after repeated failures for the account.
    pub async fn verify_user(
        &self,
        username: &str,
        password: &str,
        now: i64,
    ) -> Result<Option<model::User>, Failure> {
        let (delay, attempts) = self.throttle.attempt(username, now);
        if !delay.is_zero() {
            metrics::counter!("latchkey_throttled_total", "kind" => "login").increment(1);
            tokio::time::sleep(delay).await;
        }
        let user = self.store.user_by_username(username).await?;
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        let valid = self
            .hasher
            .verify(password.to_owned(), stored)
            .await
            .map_err(|e| Internal::Crypto(e.to_string()))?;
        let Some(user) = user.filter(|_| valid) else {
            metrics::counter!("latchkey_login_failures_total").increment(1);
            tracing::warn!(
                target: "latchkey::security",
                event = "login_failure",
                attempts,
                delayed_ms = delay.as_millis() as u64,
                "failed login"
            );
            return Ok(None);
        };
        self.throttle.succeeded(username);
        Ok(Some(user))
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
            (_, Some(secret), _) => self.verify_secret(&record, secret, now).await?,
            _ => return Err(bad_credentials().into()),
        }
        Ok(record.client.clone())
    }

    /// A client secret: SHA-256 for generated ones, argon2id (once, then the verified cache)
    /// for human-chosen ones; failures are throttled per client like logins per account.
    async fn verify_secret(
        &self,
        record: &ClientRecord,
        secret: &str,
        now: i64,
    ) -> Result<(), Failure> {
        let client_id = &record.client.client_id;
        let Some(stored) = record.secret_hash.as_deref() else {
            return Err(bad_credentials().into());
        };
        let mut attempts = None;
        if stored.starts_with("sha256:") {
            // A generated 256-bit secret cannot be guessed: no slowdown needed.
            if password::verify(secret, stored) {
                return Ok(());
            }
        } else if self.verified_secrets.contains(client_id, secret, stored) {
            return Ok(());
        } else {
            let (delay, count) = self.client_throttle.attempt(client_id, now);
            attempts = Some(count);
            if !delay.is_zero() {
                metrics::counter!("latchkey_throttled_total", "kind" => "client").increment(1);
                tokio::time::sleep(delay).await;
            }
            let verified = self
                .client_hasher
                .verify(secret.to_owned(), Some(stored.to_owned()))
                .await
                .map_err(|e| Internal::Crypto(e.to_string()))?;
            if verified {
                self.client_throttle.succeeded(client_id);
                self.verified_secrets.remember(client_id, secret, stored);
                return Ok(());
            }
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

/// The one answer to a failed client authentication, whatever failed (RFC 6749 §5.2).
pub(crate) fn bad_credentials() -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClient, "unknown client or wrong credentials")
}
