//! The client credentials grant (RFC 6749 §4.4): a confidential client acting on its own
//! behalf.

use super::mint::{IdToken, Subject};
use super::{scopes_within, unauthorized};
use crate::authority::{Authority, Failure};
use crate::model::Client;
use crate::model::scope::Scopes;
use crate::oauth::token::{ClientCredentialsRequest, TokenResponse};
use crate::oauth::{ErrorCode, OAuthError, audience};

impl Authority {
    /// RFC 6749 §4.4: a confidential client acting on its own behalf.
    pub(super) async fn client_credentials(
        &self,
        client: &Client,
        request: &ClientCredentialsRequest,
        now: i64,
    ) -> Result<TokenResponse, Failure> {
        if client.is_public() {
            return Err(unauthorized("a public client cannot use client_credentials"));
        }
        // OpenID scopes describe a user; a client acting for itself has none.
        let own_scopes: Vec<&str> = client
            .scopes
            .iter()
            .map(String::as_str)
            .filter(|s| !audience::OPENID_SCOPES.contains(s))
            .collect();
        let scopes = scopes_within(
            &request.target,
            Scopes::from_list(&own_scopes),
            "is not registered for this client's own use",
        )?;
        if scopes.is_empty() {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                "no scope to grant: register API scopes for this client or request some",
            )
            .into());
        }
        let target = audience::resolve(
            &scopes,
            request.target.requested(),
            &request.target.resources(),
            &client.scopes,
            &self.settings.resources,
        )?;
        let subject = Subject {
            id: &client.client_id,
            audience: &target.audience,
            auth_time: None,
            grant_id: None,
            session_id_hash: None,
        };
        let minted = self.mint(client, &subject, &target.scopes, IdToken::Skip, now).await?;
        // A client-credentials JWT needs no record until it is revoked; an opaque token is
        // nothing but its record.
        if let Some(access) = &minted.access {
            self.store.insert_access_token(access).await?;
        }
        Ok(self.response(minted.access_token, &target.scopes, None, None))
    }
}
