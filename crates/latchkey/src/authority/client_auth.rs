//! Client authentication (RFC 6749 §2.3, RFC 7523 §2.2): generated and human-chosen secrets,
//! and `private_key_jwt` assertions.

use std::net::IpAddr;
use std::sync::Arc;

use super::attempts::{Attempt, Checked, Refused, refusal};
use super::{Authority, Failure, Throttled};
use crate::model::{AttemptSlot, Client, ClientRecord};
use crate::oauth::client_assertion;
use crate::oauth::client_auth::{self, Credential, Presented};
use crate::oauth::{ErrorCode, OAuthError};
use crate::password;
use crate::throttle::{self, Subject};

impl Authority {
    /// Authenticates a client with its registered method (RFC 6749 §2.3, RFC 7523 §2.2). The
    /// record is the cached one, shared: a request does not copy the registration.
    pub async fn authenticate_client(
        &self,
        presented: &Presented,
        from: Option<IpAddr>,
        now: i64,
    ) -> Result<Arc<ClientRecord>, Failure> {
        let Some(record) = self.client(&presented.client_id).await? else {
            return Err(bad_credentials().into());
        };
        client_auth::check_method(presented, &record.client)?;
        match &presented.credential {
            Credential::None => {}
            Credential::Assertion(assertion) => {
                self.verify_assertion(&record.client, assertion, now).await?;
            }
            Credential::Basic(secret) | Credential::Post(secret) => {
                self.verify_secret(&record, secret, from, now).await?;
            }
        }
        Ok(record)
    }

    /// A client secret: SHA-256 for generated ones, argon2id (once, then the verified cache)
    /// for human-chosen ones, on the client's attempt schedule like a user account's. During
    /// a rotation's overlap the previous secret is accepted too.
    async fn verify_secret(
        &self,
        record: &ClientRecord,
        secret: &str,
        from: Option<IpAddr>,
        now: i64,
    ) -> Result<(), Failure> {
        let client_id = &record.client.client_id;
        let mut attempts = None;
        for stored in record.secret_hashes(now) {
            if stored.starts_with("sha256:") {
                // A generated 256-bit secret cannot be guessed: no schedule needed.
                if password::verify(secret, stored) {
                    return Ok(());
                }
            } else if self.verified_secrets.contains(client_id, secret, stored) {
                return Ok(());
            } else if secret.len() <= throttle::MAX_PASSWORD_BYTES {
                let Some(attempt) =
                    self.client_attempt(client_id, secret, stored, from, now).await?
                else {
                    return Ok(());
                };
                let stored_hash = Some(stored.to_owned());
                match self
                    .check_secret(attempt, &self.client_hasher, "client", secret, stored_hash)
                    .await?
                {
                    Checked::Right => {
                        self.verified_secrets.remember(client_id, secret, stored);
                        return Ok(());
                    }
                    Checked::Wrong(failures) => attempts = Some(failures),
                }
            }
        }
        metrics::counter!("latchkey_client_auth_failures_total").increment(1);
        tracing::warn!(
            target: "latchkey::security",
            event = "client_authentication_failure",
            %client_id,
            attempts,
            source = %crate::audit::source(),
            user_agent = %crate::audit::user_agent(),
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
        let legacy: Vec<&str>;
        let audience = if client.legacy_assertion_audience {
            legacy = self.settings.assertion_audiences.iter().map(String::as_str).collect();
            client_assertion::Audience::Legacy(&legacy)
        } else {
            client_assertion::Audience::Issuer(&self.settings.issuer)
        };
        let verified =
            client_assertion::verify(assertion, &client.client_id, &keys, audience, now)?;
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
