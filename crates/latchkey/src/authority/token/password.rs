//! The resource owner password credentials grant (RFC 6749 §4.3), for first-party clients
//! registered for it (RFC 9700 §2.4).

use std::net::IpAddr;

use super::mint::{IdToken, Subject};
use super::{invalid_grant, new_grant, scopes_within, unauthorized, user_disabled};
use crate::authority::{Authority, Failure, bad_credentials};
use crate::model::scope::Scopes;
use crate::model::{Client, Grant, Issued};
use crate::oauth::audience;
use crate::oauth::token::{PasswordRequest, TokenResponse};
use crate::secret;

impl Authority {
    /// RFC 6749 §4.3: only for clients registered for it (first-party apps that cannot use a
    /// browser); never for public clients.
    pub(super) async fn password(
        &self,
        client: &Client,
        request: &PasswordRequest,
        from: Option<IpAddr>,
        now: i64,
    ) -> Result<TokenResponse, Failure> {
        if client.is_public() {
            return Err(unauthorized("a public client cannot use the password grant"));
        }
        let scopes = scopes_within(
            &request.target,
            Scopes::from_list(&client.scopes),
            "is not registered for this client",
        )?;
        let target = audience::resolve(
            &scopes,
            request.target.requested(),
            &request.target.resources(),
            &client.scopes,
            &self.settings.resources,
        )?;
        let Some(user) = self.verify_user(&request.username, &request.password, from, now).await?
        else {
            return Err(invalid_grant("wrong username or password"));
        };
        if user.disabled {
            return Err(user_disabled());
        }
        let grant = Grant {
            id: secret::generate()?,
            client_id: client.client_id.clone(),
            user_id: user.id,
            session_id_hash: None,
            scopes: target.scopes.clone(),
            audience: target.audience.clone(),
            auth_time: now,
            created_at: now,
            expires_at: now + self.settings.refresh_token_ttl,
            revoked_at: None,
        };
        let subject = Subject::user(&grant, &target.audience);
        let minted = self
            .mint(client, &subject, &target.scopes, IdToken::Issue { nonce: None }, now)
            .await?;
        let (issue, refresh_token) = new_grant(client, grant, minted.access, None, now)?;
        match self.store.issue(&issue).await? {
            // The client was removed while its request was being answered.
            Issued::ClientRemoved => return Err(bad_credentials().into()),
            Issued::UserDisabled => return Err(user_disabled()),
            Issued::Done | Issued::CodeSpent { .. } => {}
        }
        Ok(self.response(minted.access_token, &target.scopes, refresh_token, minted.id_token))
    }
}
