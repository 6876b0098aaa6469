//! Token introspection (RFC 7662) and the verification of latchkey's own access tokens in
//! either format, which `/userinfo` and revocation share.

use std::sync::Arc;

use jsonwebtoken::{Validation, decode, decode_header};
use latchkey_resource::claims::is_access_token_typ;
use latchkey_resource::{AccessTokenClaims, Audience};

use super::{Authority, Failure};
use crate::keys::KeyPurpose;
use crate::model::{Client, StoredAccess};
use crate::oauth::introspect::{Dead, Introspection, LiveAccess};
use crate::oauth::{ErrorCode, OAuthError, Params};
use crate::secret;
use crate::verified_tokens::{self, Verified};

/// Whether `token` looks like a JWT (three base64url parts) rather than an opaque value.
fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

impl Authority {
    /// Verifies one of this server's access tokens, JWT or opaque, and checks it is live:
    /// signature by a published key, `typ`, issuer, expiry, and not revoked (itself or its
    /// grant).
    pub async fn inspect_access_token(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Result<LiveAccess, Dead>, Failure> {
        if !looks_like_jwt(token) {
            let stored = self.store.access_token_by_hash(&secret::hash(token), now).await?;
            return Ok(match stored {
                None => Err(Dead::Invalid),
                Some(stored) if stored.revoked => Err(Dead::Revoked),
                Some(stored) => opaque_claims(stored, &self.settings.issuer),
            });
        }
        let claims = match self.verify_jwt(token, now) {
            Ok(claims) => claims,
            Err(dead) => return Ok(Err(dead)),
        };
        // A token issued for a user lives as long as its grant (logout, refresh-token reuse
        // and code replay revoke the grant) unless revoked itself.
        if let Some(grant_id) = claims.grant_id.as_deref() {
            let (revoked, username) = self.store.jwt_status(&claims.jti, grant_id, now).await?;
            return Ok(if revoked {
                Err(Dead::Revoked)
            } else {
                Ok(LiveAccess { claims, username })
            });
        }
        // A client-credentials token has no grant and is recorded only once revoked.
        Ok(match self.store.access_token_by_jti(&claims.jti, now).await? {
            Some(stored) if stored.revoked || stored.record.client_id != claims.client_id => {
                Err(Dead::Revoked)
            }
            Some(stored) => Ok(LiveAccess { claims, username: stored.username }),
            // A user's token always names its grant; one that does not is not ours to trust.
            None if claims.auth_time.is_some() => Err(Dead::Revoked),
            // Removing a client revokes what is stored of it; its unrecorded client-credentials
            // JWTs die with its registration (seen within the client cache's lifetime).
            None if self.client(&claims.client_id).await?.is_none() => Err(Dead::Revoked),
            None => Ok(LiveAccess { claims, username: None }),
        })
    }

    /// Checks a JWT access token's signature and claims, without the store. A token that
    /// verified before is answered from [`crate::verified_tokens`] while it has not expired and
    /// its key is still published.
    pub fn verify_jwt(&self, token: &str, now: i64) -> Result<AccessTokenClaims, Dead> {
        let digest = verified_tokens::digest_of(token);
        let snapshot = self.keys.snapshot();
        if let Some(known) = self.verified_tokens.get(&digest, now)
            && snapshot.verifier(&known.kid, KeyPurpose::AccessToken).is_some()
        {
            return Ok(known.claims.as_ref().clone());
        }
        let header = decode_header(token).map_err(|_| Dead::Invalid)?;
        if !is_access_token_typ(header.typ.as_deref()) {
            return Err(Dead::NotAccessToken);
        }
        let kid = header.kid.as_deref().ok_or(Dead::Invalid)?;
        let (expected, key) =
            snapshot.verifier(kid, KeyPurpose::AccessToken).ok_or(Dead::Invalid)?;
        // The algorithm comes from our own key, never from the token (RFC 8725 §3.1).
        if header.alg != *expected {
            return Err(Dead::Invalid);
        }
        let mut validation = Validation::new(*expected);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.validate_aud = false;
        // Expiry is checked below against `now`, this authority's clock, not the system's.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let claims =
            decode::<AccessTokenClaims>(token, key, &validation).map_err(|_| Dead::Invalid)?.claims;
        if claims.exp <= now {
            return Err(Dead::Expired);
        }
        let verified = Verified { kid: kid.into(), claims: Arc::new(claims.clone()) };
        self.verified_tokens.insert(digest, verified, now);
        Ok(claims)
    }

    /// Answers an introspection request from an authenticated client (RFC 7662 §2).
    pub async fn introspect(
        &self,
        caller: &Client,
        params: &Params,
        now: i64,
    ) -> Result<Introspection, Failure> {
        if caller.is_public() {
            // RFC 7662 §4: the endpoint needs a caller it can hold to account.
            return Err(OAuthError::new(
                ErrorCode::InvalidClient,
                "public clients cannot introspect tokens: authenticate with a client secret or private_key_jwt",
            )
            .into());
        }
        let token = params.require("token")?;
        let hint = params.get("token_type_hint")?;
        // The hint only orders the search (RFC 7662 §2.1); a wrong one still finds the token.
        let refresh_first = hint == Some("refresh_token");
        for refresh in [refresh_first, !refresh_first] {
            let found = if refresh {
                self.introspect_refresh(caller, token, now).await?
            } else {
                self.introspect_access(caller, token, now).await?
            };
            if let Some(found) = found {
                return Ok(found);
            }
        }
        Ok(Introspection::inactive())
    }

    async fn introspect_access(
        &self,
        caller: &Client,
        token: &str,
        now: i64,
    ) -> Result<Option<Introspection>, Failure> {
        Ok(match self.inspect_access_token(token, now).await? {
            Ok(live) if self.may_see(caller, &live.claims) => Some(access_introspection(live)),
            Ok(live) => {
                // A live token the caller may not see is `{"active": false}` to it (RFC 7662
                // §4); the log says why, with both identities and never the token.
                tracing::debug!(
                    caller = %caller.client_id,
                    token_client = %live.claims.client_id,
                    token_audience = ?live.claims.aud.to_vec(),
                    "introspection answered inactive: the caller is neither the token's client nor a resource of its audience"
                );
                Some(Introspection::inactive())
            }
            Err(_) => None,
        })
    }

    /// RFC 7662 §4: a caller learns about a token only if it was issued to it or is meant for
    /// it (the caller is the client of one of the token's resources).
    fn may_see(&self, caller: &Client, claims: &AccessTokenClaims) -> bool {
        if caller.client_id == claims.client_id {
            return true;
        }
        let audience: &[String] = match &claims.aud {
            Audience::One(one) => std::slice::from_ref(one),
            Audience::Many(many) => many,
        };
        audience.iter().any(|aud| {
            *aud == caller.client_id
                || self.settings.resources.iter().any(|r| {
                    r.identifier == *aud && r.client_id.as_deref() == Some(&caller.client_id)
                })
        })
    }

    async fn introspect_refresh(
        &self,
        caller: &Client,
        token: &str,
        now: i64,
    ) -> Result<Option<Introspection>, Failure> {
        let Some(stored) = self.store.refresh_token(&secret::hash(token), now).await? else {
            return Ok(None);
        };
        let live = stored.session_holds()
            && stored.token.rotated_at.is_none()
            && stored.grant.revoked_at.is_none()
            && stored.token.expires_at > now
            && stored.grant.expires_at > now;
        let (refresh, grant) = (stored.token, stored.grant);
        // Only the client a refresh token belongs to may learn about it.
        if !live || grant.client_id != caller.client_id {
            return Ok(Some(Introspection::inactive()));
        }
        let username = self.store.user_by_id(&grant.user_id).await?.map(|u| u.username);
        let session_bound = grant.is_session_bound();
        Ok(Some(Introspection {
            active: true,
            scope: Some(grant.scopes.to_param()),
            client_id: Some(grant.client_id),
            username,
            token_type: None,
            exp: Some(refresh.expires_at.min(grant.expires_at)),
            iat: Some(refresh.created_at),
            sub: Some(grant.user_id),
            aud: None,
            iss: Some(self.settings.issuer.clone()),
            jti: None,
            session_bound: Some(session_bound),
        }))
    }
}

fn opaque_claims(stored: StoredAccess, issuer: &str) -> Result<LiveAccess, Dead> {
    let StoredAccess { record, username, .. } = stored;
    let Some(opaque) = record.opaque else {
        return Err(Dead::Invalid);
    };
    let aud = match opaque.audience.as_slice() {
        [] => Audience::One(issuer.to_owned()),
        [one] => Audience::One(one.clone()),
        many => Audience::Many(many.to_vec()),
    };
    Ok(LiveAccess {
        claims: AccessTokenClaims {
            iss: issuer.to_owned(),
            sub: opaque.subject,
            aud,
            exp: record.expires_at,
            iat: opaque.issued_at,
            nbf: None,
            jti: record.jti,
            client_id: record.client_id,
            scope: Some(opaque.scopes.to_param()),
            auth_time: opaque.auth_time,
            grant_id: record.grant_id,
        },
        username,
    })
}

fn access_introspection(live: LiveAccess) -> Introspection {
    let LiveAccess { claims, username } = live;
    Introspection {
        active: true,
        scope: claims.scope,
        client_id: Some(claims.client_id),
        username,
        token_type: Some("Bearer"),
        exp: Some(claims.exp),
        iat: Some(claims.iat),
        sub: Some(claims.sub),
        aud: Some(claims.aud),
        iss: Some(claims.iss),
        jti: Some(claims.jti),
        session_bound: None,
    }
}
