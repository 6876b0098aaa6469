//! Token revocation (RFC 7009).

use super::{Authority, Failure};
use crate::model::{AccessTokenRecord, Client, RefreshRevocation};
use crate::oauth::introspect::Dead;
use crate::oauth::{ErrorCode, OAuthError, Params};
use crate::secret;

fn not_yours() -> Failure {
    // RFC 7009 §2.1: a token issued to another client is refused, and nothing changes.
    OAuthError::new(
        ErrorCode::UnauthorizedClient,
        "this token was issued to another client: a client can revoke only its own tokens",
    )
    .into()
}

impl Authority {
    /// Revokes a token of the authenticated `caller`. Unknown, expired and already revoked
    /// tokens succeed silently (RFC 7009 §2.2): there is nothing left to revoke.
    pub async fn revoke(&self, caller: &Client, params: &Params, now: i64) -> Result<(), Failure> {
        let token = params.require("token")?;
        let hint = params.get("token_type_hint")?;
        // The hint orders the search; any token type is still found (RFC 7009 §2.1).
        if hint == Some("access_token") && self.revoke_access(caller, token, now).await? {
            return Ok(());
        }
        let token_hash = secret::hash(token);
        match self.store.revoke_refresh_token(&token_hash, &caller.client_id, now).await? {
            RefreshRevocation::Revoked => return Ok(()),
            RefreshRevocation::OtherClient => return Err(not_yours()),
            RefreshRevocation::Unknown => {}
        }
        if hint != Some("access_token") {
            self.revoke_access(caller, token, now).await?;
        }
        Ok(())
    }

    /// Revokes `token` if it is a live access token of `caller`; whether it was one.
    async fn revoke_access(&self, caller: &Client, token: &str, now: i64) -> Result<bool, Failure> {
        let live = match self.inspect_access_token(token, now).await? {
            Ok(live) => live,
            Err(Dead::Revoked | Dead::Expired | Dead::Invalid | Dead::NotAccessToken) => {
                return Ok(false);
            }
        };
        if live.claims.client_id != caller.client_id {
            return Err(not_yours());
        }
        // A JWT stays valid to anyone who checks only its signature until `exp`; recording its
        // `jti` until then makes introspection and /userinfo answer that it is revoked.
        let record = AccessTokenRecord {
            jti: live.claims.jti,
            grant_id: live.claims.grant_id,
            client_id: live.claims.client_id,
            expires_at: live.claims.exp,
            opaque: None,
        };
        self.store.revoke_access_token(&record, now).await?;
        Ok(true)
    }
}
