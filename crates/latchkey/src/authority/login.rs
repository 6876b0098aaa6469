//! Checking a user's password and opening the session a successful login gets.

use std::net::IpAddr;

use super::attempts::Checked;
use super::{Authority, Failure, Login, Throttled};
use crate::model::{self, Session};
use crate::oauth::{ErrorCode, OAuthError};
use crate::throttle::{self, Subject};
use crate::{password, secret};

impl Authority {
    /// The live session behind a cookie value.
    pub async fn session(&self, cookie: &str, now: i64) -> Result<Option<Session>, Failure> {
        Ok(self.store.session(&secret::hash(cookie), now).await?)
    }

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
        if user.disabled {
            return Ok(Login::Disabled);
        }
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
        // A missing user's check runs against the dummy hash and never matches, so a right
        // password always comes with its user.
        let checked = self.check_secret(attempt, &self.hasher, "login", password, stored).await?;
        let Checked::Wrong(attempts) = checked else {
            if let Some(user) = &user {
                self.upgrade_hash(user, password).await;
                if user.disabled {
                    tracing::warn!(
                        target: "latchkey::security",
                        event = "login_disabled_account",
                        account = %crate::audit::account(username),
                        source = %crate::audit::source(),
                        user_agent = %crate::audit::user_agent(),
                        "the right password of a disabled account"
                    );
                }
            }
            return Ok(user);
        };
        metrics::counter!("latchkey_login_failures_total").increment(1);
        tracing::warn!(
            target: "latchkey::security",
            event = "login_failure",
            account = %crate::audit::account(username),
            attempts,
            source = %crate::audit::source(),
            user_agent = %crate::audit::user_agent(),
            "failed login"
        );
        Ok(None)
    }

    /// Replaces an imported or older hash by latchkey's argon2id once its password has
    /// verified. Best effort: when the hashing pool is busy, or the password changed
    /// meanwhile, the next sign-in tries again (or there is nothing left to upgrade).
    async fn upgrade_hash(&self, user: &model::User, password: &str) {
        if !password::needs_upgrade(&user.password_hash) {
            return;
        }
        let upgraded = match self.hasher.hash(password.to_owned()).await {
            Ok(hash) => {
                self.store.upgrade_password_hash(&user.id, &user.password_hash, &hash).await
            }
            Err(error) => Err(crate::store::Error::Backend(error.to_string())),
        };
        match upgraded {
            Ok(true) => {
                metrics::counter!("latchkey_password_hash_upgrades_total").increment(1);
                tracing::info!(user = %user.username, "password hash upgraded to argon2id");
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(user = %user.username, %error, "password hash not upgraded")
            }
        }
    }
}
