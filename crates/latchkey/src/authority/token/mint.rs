//! Minting: the access token (a JWT per RFC 9068, or an opaque value) and the id_token (OIDC
//! Core §2) that a grant issues.

use latchkey_resource::claims::ACCESS_TOKEN_TYP;
use latchkey_resource::{AccessTokenClaims, Audience};

use super::crypto;
use crate::authority::{Authority, Failure};
use crate::keys::{KeyPurpose, Snapshot};
use crate::model::scope::Scopes;
use crate::model::{
    AccessTokenRecord, Client, Grant, OpaqueAccess, SigningAlg, TokenFormat, sid_of,
};
use crate::oidc::id_token::{IdTokenClaims, at_hash};
use crate::oidc::userinfo::scope_claims;
use crate::secret;

/// What a grant produces before it is stored.
pub(super) struct Minted {
    pub(super) access_token: String,
    /// The record to store: opaque tokens only. A JWT carries everything in its claims, and its
    /// grant id makes revoking the grant revoke it; it is recorded only if revoked itself.
    pub(super) access: Option<AccessTokenRecord>,
    pub(super) id_token: Option<String>,
}

/// The random values of an access token, drawn before it is minted: a refresh stores an
/// opaque token's record in its rotation, before the token is minted.
#[derive(Clone)]
pub(super) struct AccessDraw {
    jti: String,
    /// The token itself and its hash, for the opaque format.
    opaque: Option<(String, String)>,
}

impl AccessDraw {
    pub(super) fn new(format: TokenFormat) -> Result<Self, Failure> {
        let opaque = match format {
            TokenFormat::Jwt => None,
            TokenFormat::Opaque => {
                let token = secret::generate()?;
                let hash = secret::hash(&token);
                Some((token, hash))
            }
        };
        Ok(AccessDraw { jti: secret::generate()?, opaque })
    }

    /// The record to store of the token drawn: opaque tokens only. A JWT carries everything
    /// in its claims, and its grant id makes revoking the grant revoke it; it is recorded only
    /// if revoked itself.
    pub(super) fn record(
        &self,
        client: &Client,
        subject: &Subject<'_>,
        scopes: &Scopes,
        expires_at: i64,
        now: i64,
    ) -> Option<AccessTokenRecord> {
        let (_, token_hash) = self.opaque.as_ref()?;
        Some(AccessTokenRecord {
            jti: self.jti.clone(),
            grant_id: subject.grant_id.map(str::to_owned),
            client_id: client.client_id.clone(),
            expires_at,
            opaque: Some(OpaqueAccess {
                token_hash: token_hash.clone(),
                subject: subject.id.to_owned(),
                scopes: scopes.clone(),
                audience: subject.audience.to_vec(),
                issued_at: now,
                auth_time: subject.auth_time,
            }),
        })
    }
}

impl Authority {
    /// The format of the access tokens `client` gets.
    pub(super) fn access_format(&self, client: &Client) -> TokenFormat {
        client.access_token_format.unwrap_or(self.settings.access_token_format)
    }

    /// Makes the access token (a JWT or an opaque value, per the client's format) and, when
    /// `openid` is granted, the id_token.
    pub(super) async fn mint(
        &self,
        client: &Client,
        subject: &Subject<'_>,
        scopes: &Scopes,
        id_token: IdToken<'_>,
        now: i64,
    ) -> Result<Minted, Failure> {
        let draw = AccessDraw::new(self.access_format(client))?;
        self.mint_drawn(client, subject, scopes, id_token, draw, now).await
    }

    /// [`Authority::mint`] with the token's random values drawn already.
    pub(super) async fn mint_drawn(
        &self,
        client: &Client,
        subject: &Subject<'_>,
        scopes: &Scopes,
        id_token: IdToken<'_>,
        draw: AccessDraw,
        now: i64,
    ) -> Result<Minted, Failure> {
        let snapshot = self.keys.snapshot();
        let expires_at = now + self.settings.access_token_ttl;
        let access = draw.record(client, subject, scopes, expires_at, now);
        let access_token = match draw.opaque {
            Some((token, _)) => token,
            None => {
                let claims = AccessTokenClaims {
                    iss: self.settings.issuer.clone(),
                    sub: subject.id.to_owned(),
                    aud: self.audience_claim(subject.audience),
                    exp: expires_at,
                    iat: now,
                    nbf: None,
                    jti: draw.jti,
                    client_id: client.client_id.clone(),
                    scope: Some(scopes.to_param()),
                    auth_time: subject.auth_time,
                    grant_id: subject.grant_id.map(str::to_owned),
                };
                let signer = snapshot
                    .signer((KeyPurpose::AccessToken, SigningAlg::ES256))
                    .ok_or_else(|| crypto("no current access-token key"))?;
                signer.sign_jwt(ACCESS_TOKEN_TYP, &claims).map_err(crypto)?
            }
        };
        let id_token = match (id_token, scopes.contains("openid"), subject.auth_time) {
            (IdToken::Issue { nonce }, true, Some(auth_time)) => {
                let user = UserSignIn { subject, auth_time, nonce };
                Some(self.id_token(client, &user, scopes, &access_token, &snapshot, now).await?)
            }
            _ => None,
        };
        Ok(Minted { access_token, access, id_token })
    }

    /// An access token's `aud` (RFC 9068 §3): its resources, one as a string, several as a
    /// list; the issuer when there is none (a token only for userinfo).
    fn audience_claim(&self, audience: &[String]) -> Audience {
        match audience {
            [] => Audience::One(self.settings.issuer.clone()),
            [one] => Audience::One(one.clone()),
            many => Audience::Many(many.to_vec()),
        }
    }

    /// The id_token of a user's sign-in (OIDC Core §2, §3.1.3.6), with the claims of the
    /// granted `profile` and `email` scopes unless the client keeps them userinfo-only.
    async fn id_token(
        &self,
        client: &Client,
        user: &UserSignIn<'_, '_>,
        scopes: &Scopes,
        access_token: &str,
        snapshot: &Snapshot,
        now: i64,
    ) -> Result<String, Failure> {
        let subject = user.subject;
        let wants = |scope: &str| scopes.contains(scope);
        let scope_claims = match (client.claims_in_id_token, wants("profile") || wants("email")) {
            (true, true) => match self.store.user_by_id(subject.id).await? {
                Some(user) => scope_claims(&user, wants),
                None => serde_json::Map::new(),
            },
            _ => serde_json::Map::new(),
        };
        let alg = client.id_token_signed_response_alg.unwrap_or(SigningAlg::RS256);
        let signer = snapshot
            .signer((KeyPurpose::IdToken, alg))
            .ok_or_else(|| crypto(format!("no current {alg} id_token key")))?;
        let claims = IdTokenClaims {
            iss: self.settings.issuer.clone(),
            sub: subject.id.to_owned(),
            aud: client.client_id.clone(),
            exp: now + self.settings.id_token_ttl,
            iat: now,
            auth_time: user.auth_time,
            nonce: user.nonce.map(str::to_owned),
            at_hash: Some(at_hash(alg, access_token)),
            azp: client.client_id.clone(),
            sid: subject.session_id_hash.map(sid_of),
            scope_claims,
        };
        sign_id_token(signer.clone(), claims).await
    }
}

/// The sign-in an id_token speaks for.
struct UserSignIn<'s, 'a> {
    subject: &'s Subject<'a>,
    auth_time: i64,
    nonce: Option<&'a str>,
}

/// Whether a token response carries an id_token (when `openid` is granted to a user).
#[derive(Clone, Copy)]
pub(super) enum IdToken<'a> {
    /// Yes, with the authorization request's nonce.
    Issue {
        /// The `nonce` to echo (OIDC Core §3.1.3.6).
        nonce: Option<&'a str>,
    },
    /// No.
    Skip,
}

/// Whom an access token is for.
pub(super) struct Subject<'a> {
    /// The user, or the client itself (client credentials).
    pub(super) id: &'a str,
    /// The APIs it is for.
    pub(super) audience: &'a [String],
    /// When the user authenticated; `None` for client credentials.
    pub(super) auth_time: Option<i64>,
    /// The grant (refresh-token family) it belongs to.
    pub(super) grant_id: Option<&'a str>,
    /// The login session the grant came from.
    pub(super) session_id_hash: Option<&'a str>,
}

impl<'a> Subject<'a> {
    pub(super) fn user(grant: &'a Grant, audience: &'a [String]) -> Self {
        Subject {
            id: &grant.user_id,
            audience,
            auth_time: Some(grant.auth_time),
            grant_id: Some(&grant.id),
            session_id_hash: grant.session_id_hash.as_deref(),
        }
    }
}

/// Signs an id_token. An RS256 signature costs about a millisecond of CPU, too long for the
/// async runtime, so it runs on the blocking pool; ES256 and EdDSA take microseconds.
async fn sign_id_token(
    signer: std::sync::Arc<crate::keys::Signer>,
    claims: IdTokenClaims,
) -> Result<String, Failure> {
    if signer.alg() == SigningAlg::RS256 {
        tokio::task::spawn_blocking(move || signer.sign_jwt("JWT", &claims))
            .await
            .map_err(crypto)?
            .map_err(crypto)
    } else {
        signer.sign_jwt("JWT", &claims).map_err(crypto)
    }
}
