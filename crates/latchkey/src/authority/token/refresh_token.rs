//! The refresh token grant (RFC 6749 §6) with rotation, reuse detection and an optional grace
//! window for retries (RFC 9700 §4.14).

use std::sync::Arc;

use aws_lc_rs::digest;

use super::mint::{AccessDraw, IdToken, Subject};
use super::{crypto, invalid_grant, narrow_to_resources, scopes_within, still_registered};
use crate::authority::{Authority, Failure, Settings};
use crate::keys::MasterKey;
use crate::model::scope::Scopes;
use crate::model::{Client, ClientRecord, Grant, RefreshToken, Rotation, StoredRefresh};
use crate::oauth::token::{RefreshTokenRequest, Target, TokenResponse};
use crate::secret;
use crate::store::{RotationPlan, RotationRequest};

impl Authority {
    /// One store transaction reads the presented token and rotates it, deciding by the
    /// [`refresh_target`] rules in between (the plan); the tokens are minted after it. So a
    /// refresh reads nothing on its own beforehand, and a request the rules refuse changes
    /// nothing. What happens after the commit cannot be refused by a rule, only fail inside
    /// (the store for the id_token's profile claims): then the client retries within its grace
    /// period, like one whose answer was lost.
    pub(super) async fn refresh(
        &self,
        record: &Arc<ClientRecord>,
        request: &RefreshTokenRequest,
        now: i64,
    ) -> Result<TokenResponse, Failure> {
        let client = &record.client;
        let presented = request.refresh_token.as_str();
        let successor = secret::generate()?;
        let draw = AccessDraw::new(self.access_format(client))?;
        let plan = self.rotation_plan(record, request, &successor, &draw, now)?;
        let token_hash = secret::hash(presented);
        let Some((stored, rotation)) =
            self.store.rotate_refresh_token(&token_hash, now, plan).await?
        else {
            return Err(invalid_token());
        };
        // The plan's rules again, for the answer: the same inputs, the same result.
        let (scopes, audience) = refresh_target(&self.settings, client, &request.target, &stored)?;
        let successor = match rotation {
            Rotation::Rotated => successor,
            Rotation::Retry { successor_sealed } => {
                open_successor(presented, &stored.grant.id, &successor_sealed)?
            }
            // The rules allowed it, so the plan failed in sealing the successor.
            Rotation::Declined => return Err(crypto("the successor could not be sealed")),
            refused => return Err(refusal(refused, client, &stored.grant)),
        };
        let subject = Subject::user(&stored.grant, &audience);
        // OIDC Core §12.2: a fresh id_token for the same sign-in (same iss, sub, aud and
        // auth_time, no nonce), as most providers send and RPs expect; a client may switch it
        // off (`id_token_on_refresh = false`), since an RS256 signature is most of a refresh.
        let id_token =
            if client.id_token_on_refresh { IdToken::Issue { nonce: None } } else { IdToken::Skip };
        let minted = self.mint_drawn(client, &subject, &scopes, id_token, draw, now).await?;
        Ok(self.response(minted.access_token, &scopes, Some(successor), minted.id_token))
    }

    /// What the rotation stores if the rules allow it: the successor, sealed for retries when
    /// the client has a grace period, and the opaque access token's record.
    fn rotation_plan(
        &self,
        record: &Arc<ClientRecord>,
        request: &RefreshTokenRequest,
        successor: &str,
        draw: &AccessDraw,
        now: i64,
    ) -> Result<RotationPlan, Failure> {
        let grace_secs = record
            .client
            .refresh_grace_period_secs
            .map_or(self.settings.refresh_grace_secs, |s| i64::try_from(s).unwrap_or(0));
        let seal_key =
            if grace_secs > 0 { Some(successor_key(&request.refresh_token)?) } else { None };
        let (record, settings, target) =
            (record.clone(), self.settings.clone(), request.target.clone());
        // Computed here rather than in the plan, which the SQLite writer thread runs.
        let (successor, successor_hash) = (successor.to_owned(), secret::hash(successor));
        let access = draw.clone();
        Ok(Box::new(move |stored: &StoredRefresh| {
            let client = &record.client;
            let (scopes, audience) = refresh_target(&settings, client, &target, stored).ok()?;
            let grant = &stored.grant;
            let successor_sealed = match &seal_key {
                Some(key) => Some(key.seal(&grant.id, successor.as_bytes()).ok()?),
                None => None,
            };
            let subject = Subject::user(grant, &audience);
            let expires_at = now + settings.access_token_ttl;
            Some(RotationRequest {
                successor: RefreshToken {
                    token_hash: successor_hash,
                    grant_id: grant.id.clone(),
                    created_at: now,
                    // A successor expires with its family; grants are never extended.
                    expires_at: grant.expires_at,
                    rotated_at: None,
                },
                successor_sealed,
                access: access.record(client, &subject, &scopes, expires_at, now),
                grace_secs,
            })
        }))
    }
}

/// What a refresh may mint from a presented token: its grant must be this client's and its
/// sign-in must still hold (unless offline, OIDC Core §11); the scopes are the grant's that
/// the client is still registered for, narrowed by the request's `scope` and `resource`.
fn refresh_target(
    settings: &Settings,
    client: &Client,
    target: &Target,
    stored: &StoredRefresh,
) -> Result<(Scopes, Vec<String>), Failure> {
    let grant = &stored.grant;
    if grant.client_id != client.client_id {
        return Err(invalid_grant("the refresh token was issued to another client"));
    }
    if !stored.session_holds() {
        return Err(invalid_grant(
            "the sign-in this refresh token belongs to has ended (logout or session expiry): sign in again, or ask for offline_access to stay signed in",
        ));
    }
    let granted = still_registered(&grant.scopes, client)?;
    let scopes = scopes_within(
        target,
        granted,
        "was not granted: a refresh may narrow the scope, never widen it (RFC 6749 §6)",
    )?;
    narrow_to_resources(&settings.resources, client, &scopes, &grant.audience, target)
}

fn invalid_token() -> Failure {
    invalid_grant("the refresh token is invalid, expired or revoked: sign in again")
}

/// The answer to a rotation that did not happen: a reuse (reported as a security event; the
/// store has revoked the family) or a dead token.
fn refusal(outcome: Rotation, client: &Client, grant: &Grant) -> Failure {
    match outcome {
        Rotation::Reused => {
            metrics::counter!("latchkey_refresh_reuse_total").increment(1);
            tracing::warn!(
                target: "latchkey::security",
                event = "refresh_token_reuse",
                client_id = %client.client_id,
                family = %grant.id,
                source = %crate::audit::source(),
                user_agent = %crate::audit::user_agent(),
                reason = "a rotated refresh token was presented again; its family is revoked",
            );
            invalid_grant(
                "the refresh token was already used; every token of this sign-in is now revoked: sign in again",
            )
        }
        _ => invalid_token(),
    }
}

/// The successor is sealed under a key only the holder of the presented token can derive,
/// so a database reader learns nothing from the stored copy.
fn successor_key(presented: &str) -> Result<MasterKey, Failure> {
    let mut input = b"latchkey refresh successor\0".to_vec();
    input.extend_from_slice(presented.as_bytes());
    let digest = digest::digest(&digest::SHA256, &input);
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    MasterKey::from_bytes(&key).map_err(crypto)
}

fn open_successor(presented: &str, grant_id: &str, sealed: &[u8]) -> Result<String, Failure> {
    let bytes = successor_key(presented)?.open(grant_id, sealed).map_err(crypto)?;
    String::from_utf8(bytes).map_err(crypto)
}
