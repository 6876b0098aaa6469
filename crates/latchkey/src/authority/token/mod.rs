//! The token endpoint (RFC 6749 §3.2): the dispatch to one module per grant, and what the
//! grants share.
//!
//! - `authorization_code`: RFC 6749 §4.1.3, RFC 7636 §4.6.
//! - `refresh_token`: RFC 6749 §6, rotation with reuse detection (RFC 9700 §4.14).
//! - `client_credentials`: RFC 6749 §4.4.
//! - `password`: RFC 6749 §4.3, for first-party clients registered for it.
//! - `mint`: the access token and id_token every grant issues.

mod authorization_code;
mod client_credentials;
mod mint;
mod password;
mod refresh_token;

use std::net::IpAddr;
use std::sync::Arc;

use super::{Authority, Failure, Internal};
use crate::model::scope::Scopes;
use crate::model::{
    AccessTokenRecord, Client, ClientRecord, Grant, GrantType, Issue, RefreshToken, Resource,
};
use crate::oauth::audience;
use crate::oauth::token::{self, Target, TokenRequest, TokenResponse};
use crate::oauth::{ErrorCode, OAuthError};
use crate::secret;

/// A grant refused because its user is disabled (`latchkey users disable`).
fn user_disabled() -> Failure {
    invalid_grant(
        "the user's account is disabled: an administrator can enable it (`latchkey users enable`)",
    )
}

fn invalid_grant(description: &str) -> Failure {
    OAuthError::new(ErrorCode::InvalidGrant, description).into()
}

fn unauthorized(description: &str) -> Failure {
    OAuthError::new(ErrorCode::UnauthorizedClient, description).into()
}

/// The scopes a token request asks for (RFC 6749 §3.3): its `scope`, each of which must be
/// in `allowed` (else `invalid_scope` naming it, then `why`), or all of `allowed` when it is
/// absent.
fn scopes_within(target: &Target, allowed: Scopes, why: &str) -> Result<Scopes, Failure> {
    let Some(requested) = &target.scope else {
        return Ok(allowed);
    };
    if requested.iter().any(|s| !allowed.contains(s)) {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!("a requested scope {why}; allowed: {}", allowed.to_param()),
        )
        .into());
    }
    Ok(requested.clone())
}

/// What a grant still allows: the scopes it granted that the client is *still* registered
/// for, so that a scope removed from a client stops being minted at once, by refreshes and
/// code exchanges alike. A grant left with nothing is refused rather than minted empty.
fn still_registered(granted: &Scopes, client: &Client) -> Result<Scopes, Failure> {
    let kept: Vec<&str> =
        granted.iter().filter(|scope| client.scopes.iter().any(|s| s == scope)).collect();
    if kept.is_empty() && !granted.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "the client is no longer registered for any scope of this grant: sign in again",
        )
        .into());
    }
    Ok(Scopes::from_list(&kept))
}

/// The access token's scopes and audience: the grant's, or narrowed to the `resource`
/// parameters of the token request, each of which must be in the grant (RFC 8707 §2.2).
fn narrow_to_resources(
    known: &[Resource],
    client: &Client,
    scopes: &Scopes,
    granted_audience: &[String],
    target: &Target,
) -> Result<(Scopes, Vec<String>), Failure> {
    let requested = target.resources();
    if requested.iter().any(|r| !granted_audience.iter().any(|a| a == *r)) {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "a resource parameter was not part of the authorization",
        )
        .into());
    }
    let resources: Vec<&str> = if requested.is_empty() {
        // Without resource parameters: the granted APIs that still own one of the scopes.
        granted_audience
            .iter()
            .filter(|id| {
                known
                    .iter()
                    .any(|r| &r.identifier == *id && r.scopes.iter().any(|s| scopes.contains(s)))
            })
            .map(String::as_str)
            .collect()
    } else {
        requested
    };
    if resources.is_empty() {
        return Ok((scopes.clone(), Vec::new()));
    }
    let target = audience::resolve(scopes, target.requested(), &resources, &client.scopes, known)?;
    Ok((target.scopes, target.audience))
}

fn crypto(error: impl std::fmt::Display) -> Failure {
    Failure::Internal(Internal::Crypto(error.to_string()))
}

impl Authority {
    /// Answers a token request from an authenticated client.
    pub async fn token(
        &self,
        record: &Arc<ClientRecord>,
        request: &TokenRequest,
        from: Option<IpAddr>,
        now: i64,
    ) -> Result<TokenResponse, Failure> {
        let client = &record.client;
        // Checked by the parse already; again here, since the request may come from elsewhere.
        token::check_allowed(client, request.grant_type())?;
        match request {
            TokenRequest::AuthorizationCode(request) => {
                self.exchange_code(client, request, now).await
            }
            TokenRequest::RefreshToken(request) => self.refresh(record, request, now).await,
            TokenRequest::ClientCredentials(request) => {
                self.client_credentials(client, request, now).await
            }
            TokenRequest::Password(request) => self.password(client, request, from, now).await,
        }
    }

    fn response(
        &self,
        access_token: String,
        scopes: &Scopes,
        refresh_token: Option<String>,
        id_token: Option<String>,
    ) -> TokenResponse {
        TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.settings.access_token_ttl,
            scope: scopes.to_param(),
            refresh_token,
            id_token,
        }
    }
}

/// What storing a new grant takes: the grant, its first access token, and a refresh token
/// (returned in the clear, stored hashed) when the client may refresh.
fn new_grant(
    client: &Client,
    grant: Grant,
    access: Option<AccessTokenRecord>,
    code_hash: Option<String>,
    now: i64,
) -> Result<(Issue, Option<String>), Failure> {
    let wanted = client.allows_grant(GrantType::RefreshToken)
        && (client.session_refresh_tokens || !grant.is_session_bound());
    let refresh_token = if wanted { Some(secret::generate()?) } else { None };
    let refresh = refresh_token.as_ref().map(|token| RefreshToken {
        token_hash: secret::hash(token),
        grant_id: grant.id.clone(),
        created_at: now,
        expires_at: grant.expires_at,
        rotated_at: None,
    });
    Ok((Issue { grant, refresh, access, code_hash }, refresh_token))
}
