//! The authorization code grant (RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 9700 §2.1.1).

use super::mint::{IdToken, Subject};
use super::{invalid_grant, narrow_to_resources, new_grant, still_registered, user_disabled};
use crate::authority::{Authority, Failure, bad_credentials};
use crate::model::{AuthorizationCode, Client, CodeLookup, Grant, Issued};
use crate::oauth::pkce;
use crate::oauth::token::{AuthorizationCodeRequest, TokenResponse};
use crate::secret;

impl Authority {
    pub(super) async fn exchange_code(
        &self,
        client: &Client,
        request: &AuthorizationCodeRequest,
        now: i64,
    ) -> Result<TokenResponse, Failure> {
        let code_hash = secret::hash(&request.code);
        // The code is only read here; `issue` spends it together with storing the grant, so a
        // crash or a failed check in between leaves it redeemable. Of concurrent exchanges,
        // `issue` lets one through and treats the others as replays.
        let record = match self.store.code(&code_hash, now).await? {
            CodeLookup::Unspent(record) => record,
            // RFC 6749 §4.1.2 revokes what a code issued when it is used twice; but a client
            // that never owned the code proves nothing about its owner's grant, and letting it
            // revoke that grant would let any client that sees a code log its owner's user out.
            CodeLookup::Spent { client_id: owner } if owner != client.client_id => {
                return Err(foreign_code_replayed(&owner, client));
            }
            CodeLookup::Spent { .. } => {
                let family = self.store.replay_code(&code_hash, now).await?;
                return Err(code_replayed(client, family.as_deref()));
            }
            CodeLookup::Invalid => return Err(self.unknown_code()),
        };
        check_code(&record, client, request)?;
        let granted = still_registered(&record.scopes, client)?;
        let (scopes, audience) = narrow_to_resources(
            &self.settings.resources,
            client,
            &granted,
            &record.audience,
            &request.target,
        )?;
        let grant = Grant {
            id: secret::generate()?,
            client_id: client.client_id.clone(),
            user_id: record.user_id.clone(),
            session_id_hash: Some(record.session_id_hash.clone()),
            scopes: granted,
            audience: record.audience.clone(),
            auth_time: record.auth_time,
            created_at: now,
            expires_at: now + self.settings.refresh_token_ttl,
            revoked_at: None,
        };
        let subject = Subject::user(&grant, &audience);
        let id_token = IdToken::Issue { nonce: record.nonce.as_deref() };
        let minted = self.mint(client, &subject, &scopes, id_token, now).await?;
        let (issue, refresh_token) = new_grant(client, grant, minted.access, Some(code_hash), now)?;
        match self.store.issue(&issue).await? {
            Issued::Done => {}
            Issued::CodeSpent { family } => return Err(code_replayed(client, family.as_deref())),
            // Removed while its request was being answered: it no longer exists.
            Issued::ClientRemoved => return Err(bad_credentials().into()),
            Issued::UserDisabled => return Err(user_disabled()),
        }
        Ok(self.response(minted.access_token, &scopes, refresh_token, minted.id_token))
    }

    /// A code that is not stored, or expired: with a hint at skewed clocks when this node's
    /// differs from the database's (codes written by one node are checked by another).
    fn unknown_code(&self) -> Failure {
        let lifetime = self.settings.code_ttl;
        invalid_grant(&match self.clock_skew() {
            None => {
                format!(
                    "the authorization code is invalid or expired (codes live {lifetime} seconds)"
                )
            }
            Some(drift) => format!(
                "the authorization code is invalid or expired (codes live {lifetime} seconds); this node's clock differs from the database's by {:.1} s, so clocks may be skewed: check NTP on the nodes",
                drift as f64 / 1000.0
            ),
        })
    }
}

/// A spent code presented again (RFC 6749 §4.1.2): a security event, and what its first
/// exchange issued has been revoked.
fn code_replayed(client: &Client, family: Option<&str>) -> Failure {
    metrics::counter!("latchkey_code_replays_total").increment(1);
    tracing::warn!(
        target: "latchkey::security",
        event = "authorization_code_replay",
        owner_client_id = %client.client_id,
        presenter_client_id = %client.client_id,
        client_id = %client.client_id,
        source = %crate::audit::source(),
        user_agent = %crate::audit::user_agent(),
        family = family.unwrap_or("none"),
        reason = "a spent code was presented again; the grant it produced is revoked",
    );
    invalid_grant("the authorization code was already used; tokens issued with it are revoked")
}

/// A spent code presented by another client than its owner: a security event, nothing revoked.
fn foreign_code_replayed(owner: &str, presenter: &Client) -> Failure {
    metrics::counter!("latchkey_code_replays_total").increment(1);
    tracing::warn!(
        target: "latchkey::security",
        event = "authorization_code_replay",
        owner_client_id = %owner,
        presenter_client_id = %presenter.client_id,
        client_id = %presenter.client_id,
        source = %crate::audit::source(),
        user_agent = %crate::audit::user_agent(),
        reason = "a spent code was presented by a client it was not issued to; nothing is revoked",
    );
    invalid_grant("the authorization code is invalid, expired or was issued to another client")
}

/// The bindings of a code (RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 9700 §2.1.1).
fn check_code(
    record: &AuthorizationCode,
    client: &Client,
    request: &AuthorizationCodeRequest,
) -> Result<(), Failure> {
    if record.client_id != client.client_id {
        return Err(invalid_grant("the authorization code was issued to another client"));
    }
    if request.redirect_uri.as_deref().unwrap_or("") != record.redirect_uri {
        return Err(invalid_grant(
            "redirect_uri must be identical to the one in the authorization request",
        ));
    }
    match (record.code_challenge.as_deref(), request.code_verifier.as_deref()) {
        (Some(challenge), Some(verifier)) if pkce::verify(verifier, challenge) => Ok(()),
        (Some(_), Some(_)) => Err(invalid_grant("code_verifier does not match the code_challenge")),
        (Some(_), None) => {
            Err(invalid_grant("code_verifier is missing: send the PKCE verifier of this code"))
        }
        // A verifier for a code that had no challenge is a PKCE downgrade attempt.
        (None, Some(_)) => Err(invalid_grant(
            "code_verifier was sent but the authorization request had no code_challenge",
        )),
        (None, None) => Ok(()),
    }
}
