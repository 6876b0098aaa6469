//! The refresh token grant (RFC 6749 §6) with rotation, reuse detection and an optional grace
//! window for retries (RFC 9700 §4.14).

use aws_lc_rs::digest;

use super::mint::{IdToken, Subject};
use super::{crypto, invalid_grant, scopes_within, still_registered};
use crate::authority::{Authority, Failure};
use crate::keys::MasterKey;
use crate::model::{Client, Grant, RefreshToken, Rotation};
use crate::oauth::token::{RefreshTokenRequest, TokenResponse};
use crate::secret;
use crate::store::RotationRequest;

impl Authority {
    pub(super) async fn refresh(
        &self,
        client: &Client,
        request: &RefreshTokenRequest,
        now: i64,
    ) -> Result<TokenResponse, Failure> {
        let presented = request.refresh_token.as_str();
        let token_hash = secret::hash(presented);
        let grant = self.usable_grant(client, &token_hash, now).await?;
        let granted = still_registered(&grant.scopes, client)?;
        let scopes = scopes_within(
            &request.target,
            granted,
            "was not granted: a refresh may narrow the scope, never widen it (RFC 6749 §6)",
        )?;
        let (token_scopes, token_audience) =
            self.narrow_to_resources(client, &scopes, &grant.audience, &request.target)?;
        let subject = Subject::user(&grant, &token_audience);
        // OIDC Core §12.2: a fresh id_token for the same sign-in (same iss, sub, aud and
        // auth_time, no nonce), as most providers send and RPs expect; a client may switch it
        // off (`id_token_on_refresh = false`), since an RS256 signature is most of a refresh.
        let id_token =
            if client.id_token_on_refresh { IdToken::Issue { nonce: None } } else { IdToken::Skip };
        let minted = self.mint(client, &subject, &token_scopes, id_token, now).await?;
        let successor = secret::generate()?;
        let grace = client
            .refresh_grace_period_secs
            .map_or(self.settings.refresh_grace_secs, |s| i64::try_from(s).unwrap_or(0));
        let successor_sealed =
            if grace > 0 { Some(seal_successor(presented, &grant.id, &successor)?) } else { None };
        let rotation = RotationRequest {
            successor: RefreshToken {
                token_hash: secret::hash(&successor),
                grant_id: grant.id.clone(),
                created_at: now,
                expires_at: grant.expires_at,
                rotated_at: None,
            },
            successor_sealed,
            access: minted.access.clone(),
            grace_secs: grace,
        };
        let successor = match self.store.rotate_refresh_token(&token_hash, &rotation, now).await? {
            Rotation::Rotated => successor,
            Rotation::Retry { successor_sealed } => {
                // A retry inside the grace window: the same successor, a fresh access token.
                if let Some(access) = &minted.access {
                    self.store.insert_access_token(access).await?;
                }
                open_successor(presented, &grant.id, &successor_sealed)?
            }
            refused => return Err(refusal(refused, client, &grant)),
        };
        Ok(self.response(minted.access_token, &token_scopes, Some(successor), minted.id_token))
    }

    /// The grant of a presented refresh token, if this client may use it now: its own, and
    /// (unless offline) its browser session still live (OIDC Core §11).
    async fn usable_grant(
        &self,
        client: &Client,
        token_hash: &str,
        now: i64,
    ) -> Result<Grant, Failure> {
        let Some(stored) = self.store.refresh_token(token_hash, now).await? else {
            return Err(invalid_grant(
                "the refresh token is invalid, expired or revoked: sign in again",
            ));
        };
        if stored.grant.client_id != client.client_id {
            return Err(invalid_grant("the refresh token was issued to another client"));
        }
        if !stored.session_holds() {
            return Err(invalid_grant(
                "the sign-in this refresh token belongs to has ended (logout or session expiry): sign in again, or ask for offline_access to stay signed in",
            ));
        }
        Ok(stored.grant)
    }
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
                reason = "a rotated refresh token was presented again; its family is revoked",
            );
            invalid_grant(
                "the refresh token was already used; every token of this sign-in is now revoked: sign in again",
            )
        }
        _ => invalid_grant("the refresh token is invalid, expired or revoked: sign in again"),
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

fn seal_successor(presented: &str, grant_id: &str, successor: &str) -> Result<Vec<u8>, Failure> {
    successor_key(presented)?.seal(grant_id, successor.as_bytes()).map_err(crypto)
}

fn open_successor(presented: &str, grant_id: &str, sealed: &[u8]) -> Result<String, Failure> {
    let bytes = successor_key(presented)?.open(grant_id, sealed).map_err(crypto)?;
    String::from_utf8(bytes).map_err(crypto)
}
