//! The token endpoint's grants (RFC 6749 §4.1.3, §6; RFC 7636 §4.6; RFC 9700 §4.14).

use std::net::IpAddr;

use aws_lc_rs::digest;
use latchkey_resource::claims::ACCESS_TOKEN_TYP;
use latchkey_resource::{AccessTokenClaims, Audience};
use serde::Serialize;

use super::audience;
use super::params::Params;
use super::scope::Scopes;
use super::{ErrorCode, OAuthError, pkce};
use crate::authority::{Authority, Failure, Internal, bad_credentials};
use crate::keys::{KeyPurpose, MasterKey};
use crate::model::{
    AccessTokenRecord, AuthorizationCode, Client, CodeLookup, Grant, GrantType, Issue, Issued,
    OpaqueAccess, RefreshToken, Rotation, SigningAlg, TokenFormat,
};
use crate::oidc::id_token::{IdTokenClaims, at_hash};
use crate::secret;
use crate::store::RotationRequest;

/// A successful token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The granted scopes.
    pub scope: String,
    /// A refresh token, when the client may refresh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// An id_token, when `openid` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

fn invalid_grant(description: &str) -> Failure {
    OAuthError::new(ErrorCode::InvalidGrant, description).into()
}

/// A spent code presented again (RFC 6749 §4.1.2): a security event, and what its first
/// exchange issued has been revoked.
fn code_replayed(client: &Client, family: Option<&str>) -> Failure {
    metrics::counter!("latchkey_code_replays_total").increment(1);
    tracing::warn!(
        target: "latchkey::security",
        event = "authorization_code_replay",
        client_id = %client.client_id,
        family = family.unwrap_or("none"),
        reason = "a spent code was presented again; the grant it produced is revoked",
    );
    invalid_grant("the authorization code was already used; tokens issued with it are revoked")
}

fn unauthorized(description: &str) -> Failure {
    OAuthError::new(ErrorCode::UnauthorizedClient, description).into()
}

/// The scopes a token request asks for (RFC 6749 §3.3): the `scope` parameter, each of which
/// must be in `allowed` (else `invalid_scope` naming it, then `why`), or all of `allowed`
/// when it is absent.
fn scopes_within(params: &Params, allowed: Scopes, why: &str) -> Result<Scopes, Failure> {
    let Some(value) = params.get("scope")? else {
        return Ok(allowed);
    };
    let requested = Scopes::parse(value).ok_or_else(|| {
        OAuthError::new(
            ErrorCode::InvalidScope,
            "scope must be scope names separated by single spaces",
        )
    })?;
    if let Some(scope) = requested.iter().find(|s| !allowed.contains(s)) {
        return Err(
            OAuthError::new(ErrorCode::InvalidScope, format!("scope {scope:?} {why}")).into()
        );
    }
    Ok(requested)
}

fn crypto(error: impl std::fmt::Display) -> Failure {
    Failure::Internal(Internal::Crypto(error.to_string()))
}

/// What a grant produces before it is stored.
struct Minted {
    access_token: String,
    /// The record to store: opaque tokens only. A JWT carries everything in its claims, and its
    /// grant id makes revoking the grant revoke it; it is recorded only if revoked itself.
    access: Option<AccessTokenRecord>,
    id_token: Option<String>,
}

impl Authority {
    /// Answers a token request from an authenticated client.
    pub async fn token(
        &self,
        client: &Client,
        params: &Params,
        from: Option<IpAddr>,
        now: i64,
    ) -> Result<TokenResponse, Failure> {
        if let Some(name) = params.first_repeat(&["resource"]) {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                format!("parameter {name} is given more than once"),
            )
            .into());
        }
        let grant_type = params.require("grant_type")?;
        let Some(grant) = GrantType::parse(grant_type) else {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!("grant_type {grant_type:?} is not supported (the implicit flow has no token request; use authorization_code with PKCE)"),
            )
            .into());
        };
        if !client.allows_grant(grant) {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                format!("this client is not registered for the {} grant", grant.as_str()),
            )
            .into());
        }
        match grant {
            GrantType::AuthorizationCode => self.exchange_code(client, params, now).await,
            GrantType::RefreshToken => self.refresh(client, params, now).await,
            GrantType::ClientCredentials => self.client_credentials(client, params, now).await,
            GrantType::Password => self.password(client, params, from, now).await,
        }
    }

    /// RFC 6749 §4.4: a confidential client acting on its own behalf.
    async fn client_credentials(
        &self,
        client: &Client,
        params: &Params,
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
            params,
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
        let resources: Vec<&str> = params.all("resource").collect();
        let target =
            audience::resolve(&scopes, &resources, &client.scopes, &self.settings.resources)?;
        let subject = Subject {
            id: &client.client_id,
            audience: &target.audience,
            auth_time: None,
            grant_id: None,
        };
        let minted = self.mint(client, &subject, &target.scopes, IdToken::Skip, now).await?;
        // A client-credentials JWT needs no record until it is revoked; an opaque token is
        // nothing but its record.
        if let Some(access) = &minted.access {
            self.store.insert_access_token(access).await?;
        }
        Ok(self.response(minted.access_token, &target.scopes, None, None))
    }

    /// RFC 6749 §4.3: only for clients registered for it (first-party apps that cannot use a
    /// browser); never for public clients.
    async fn password(
        &self,
        client: &Client,
        params: &Params,
        from: Option<IpAddr>,
        now: i64,
    ) -> Result<TokenResponse, Failure> {
        if client.is_public() {
            return Err(unauthorized("a public client cannot use the password grant"));
        }
        let username = params.require("username")?;
        let password = params.require("password")?;
        let scopes = scopes_within(
            params,
            Scopes::from_list(&client.scopes),
            "is not registered for this client",
        )?;
        let resources: Vec<&str> = params.all("resource").collect();
        let target =
            audience::resolve(&scopes, &resources, &client.scopes, &self.settings.resources)?;
        let Some(user) = self.verify_user(username, password, from, now).await? else {
            return Err(invalid_grant("wrong username or password"));
        };
        let grant = Grant {
            id: secret::generate()?,
            client_id: client.client_id.clone(),
            user_id: user.id,
            session_id_hash: None,
            scopes: target.scopes.to_param(),
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
        if self.store.issue(&issue).await? == Issued::ClientRemoved {
            // The client was removed while its request was being answered.
            return Err(bad_credentials().into());
        }
        Ok(self.response(minted.access_token, &target.scopes, refresh_token, minted.id_token))
    }

    async fn exchange_code(
        &self,
        client: &Client,
        params: &Params,
        now: i64,
    ) -> Result<TokenResponse, Failure> {
        let code = params.require("code")?;
        let code_hash = secret::hash(code);
        // The code is only read here; `issue` spends it together with storing the grant, so a
        // crash or a failed check in between leaves it redeemable. Of concurrent exchanges,
        // `issue` lets one through and treats the others as replays.
        let record = match self.store.code(&code_hash, now).await? {
            CodeLookup::Unspent(record) => record,
            CodeLookup::Spent => {
                let family = self.store.replay_code(&code_hash, now).await?;
                return Err(code_replayed(client, family.as_deref()));
            }
            CodeLookup::Invalid => {
                return Err(invalid_grant(
                    "the authorization code is invalid or expired (codes live 60 seconds)",
                ));
            }
        };
        check_code(&record, client, params)?;
        let granted = Scopes::parse(&record.scopes).unwrap_or_default();
        let (scopes, audience) =
            self.narrow_to_resources(client, &granted, &record.audience, params)?;
        let grant = Grant {
            id: secret::generate()?,
            client_id: client.client_id.clone(),
            user_id: record.user_id.clone(),
            session_id_hash: Some(record.session_id_hash.clone()),
            scopes: record.scopes.clone(),
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
        }
        Ok(self.response(minted.access_token, &scopes, refresh_token, minted.id_token))
    }

    async fn refresh(
        &self,
        client: &Client,
        params: &Params,
        now: i64,
    ) -> Result<TokenResponse, Failure> {
        let presented = params.require("refresh_token")?;
        let token_hash = secret::hash(presented);
        let Some((_, grant)) = self.store.refresh_token(&token_hash).await? else {
            return Err(invalid_grant(
                "the refresh token is invalid, expired or revoked: sign in again",
            ));
        };
        if grant.client_id != client.client_id {
            return Err(invalid_grant("the refresh token was issued to another client"));
        }
        let granted = Scopes::parse(&grant.scopes).unwrap_or_default();
        let scopes = scopes_within(
            params,
            granted,
            "was not granted: a refresh may narrow the scope, never widen it (RFC 6749 §6)",
        )?;
        let (token_scopes, token_audience) =
            self.narrow_to_resources(client, &scopes, &grant.audience, params)?;
        let subject = Subject::user(&grant, &token_audience);
        // OIDC Core §12.2: a refresh response may omit the id_token. The client has one for
        // this sign-in already, and an RS256 signature would be most of the refresh's cost.
        let minted = self.mint(client, &subject, &token_scopes, IdToken::Skip, now).await?;
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
        match self.store.rotate_refresh_token(&token_hash, &rotation, now).await? {
            Rotation::Rotated => Ok(self.response(
                minted.access_token,
                &token_scopes,
                Some(successor),
                minted.id_token,
            )),
            Rotation::Retry { successor_sealed } => {
                // A retry inside the grace window: the same successor, a fresh access token.
                let successor = open_successor(presented, &grant.id, &successor_sealed)?;
                if let Some(access) = &minted.access {
                    self.store.insert_access_token(access).await?;
                }
                Ok(self.response(
                    minted.access_token,
                    &token_scopes,
                    Some(successor),
                    minted.id_token,
                ))
            }
            Rotation::Reused => {
                metrics::counter!("latchkey_refresh_reuse_total").increment(1);
                tracing::warn!(
                    target: "latchkey::security",
                    event = "refresh_token_reuse",
                    client_id = %client.client_id,
                    family = %grant.id,
                    reason = "a rotated refresh token was presented again; its family is revoked",
                );
                Err(invalid_grant(
                    "the refresh token was already used; every token of this sign-in is now revoked: sign in again",
                ))
            }
            Rotation::Invalid => Err(invalid_grant(
                "the refresh token is invalid, expired or revoked: sign in again",
            )),
        }
    }

    /// The access token's scopes and audience: the grant's, or narrowed to the `resource`
    /// parameters of the token request, each of which must be in the grant (RFC 8707 §2.2).
    fn narrow_to_resources(
        &self,
        client: &Client,
        scopes: &Scopes,
        granted_audience: &[String],
        params: &Params,
    ) -> Result<(Scopes, Vec<String>), Failure> {
        let requested: Vec<&str> = params.all("resource").collect();
        if let Some(outside) = requested.iter().find(|r| !granted_audience.iter().any(|a| a == *r))
        {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                format!("resource {outside:?} was not part of the authorization"),
            )
            .into());
        }
        let resources: Vec<&str> = if requested.is_empty() {
            // Without resource parameters: the granted APIs that still own one of the scopes.
            granted_audience
                .iter()
                .filter(|id| {
                    self.settings.resources.iter().any(|r| {
                        &r.identifier == *id && r.scopes.iter().any(|s| scopes.contains(s))
                    })
                })
                .map(String::as_str)
                .collect()
        } else {
            requested
        };
        if resources.is_empty() {
            return Ok((scopes.clone(), Vec::new()));
        }
        let target =
            audience::resolve(scopes, &resources, &client.scopes, &self.settings.resources)?;
        Ok((target.scopes, target.audience))
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

    /// Makes the access token (a JWT or an opaque value, per the client's format) and, when
    /// `openid` is granted, the id_token.
    async fn mint(
        &self,
        client: &Client,
        subject: &Subject<'_>,
        scopes: &Scopes,
        id_token: IdToken<'_>,
        now: i64,
    ) -> Result<Minted, Failure> {
        let snapshot = self.keys.snapshot();
        let jti = secret::generate()?;
        let expires_at = now + self.settings.access_token_ttl;
        let format = client.access_token_format.unwrap_or(self.settings.access_token_format);
        let (access_token, opaque) = match format {
            TokenFormat::Jwt => {
                let audience = match subject.audience {
                    [] => Audience::One(self.settings.issuer.clone()),
                    [one] => Audience::One(one.clone()),
                    many => Audience::Many(many.to_vec()),
                };
                let claims = AccessTokenClaims {
                    iss: self.settings.issuer.clone(),
                    sub: subject.id.to_owned(),
                    aud: audience,
                    exp: expires_at,
                    iat: now,
                    jti: jti.clone(),
                    client_id: client.client_id.clone(),
                    scope: Some(scopes.to_param()),
                    auth_time: subject.auth_time,
                    grant_id: subject.grant_id.map(str::to_owned),
                };
                let signer = snapshot
                    .signer((KeyPurpose::AccessToken, SigningAlg::ES256))
                    .ok_or_else(|| crypto("no current access-token key"))?;
                (signer.sign_jwt(ACCESS_TOKEN_TYP, &claims).map_err(crypto)?, None)
            }
            TokenFormat::Opaque => {
                let token = secret::generate()?;
                let opaque = OpaqueAccess {
                    token_hash: secret::hash(&token),
                    subject: subject.id.to_owned(),
                    scopes: scopes.to_param(),
                    audience: subject.audience.to_vec(),
                    issued_at: now,
                    auth_time: subject.auth_time,
                };
                (token, Some(opaque))
            }
        };
        let id_token = match (id_token, scopes.contains("openid"), subject.auth_time) {
            (IdToken::Issue { nonce }, true, Some(auth_time)) => {
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
                    auth_time,
                    nonce: nonce.map(str::to_owned),
                    at_hash: Some(at_hash(alg, &access_token)),
                    azp: client.client_id.clone(),
                };
                Some(sign_id_token(signer.clone(), claims).await?)
            }
            _ => None,
        };
        let access = opaque.map(|opaque| AccessTokenRecord {
            jti,
            grant_id: subject.grant_id.map(str::to_owned),
            client_id: client.client_id.clone(),
            expires_at,
            opaque: Some(opaque),
        });
        Ok(Minted { access_token, access, id_token })
    }
}

/// Whether a token response carries an id_token (when `openid` is granted to a user).
#[derive(Clone, Copy)]
enum IdToken<'a> {
    /// Yes, with the authorization request's nonce.
    Issue {
        /// The `nonce` to echo (OIDC Core §3.1.3.6).
        nonce: Option<&'a str>,
    },
    /// No.
    Skip,
}

/// Whom an access token is for.
struct Subject<'a> {
    /// The user, or the client itself (client credentials).
    id: &'a str,
    /// The APIs it is for.
    audience: &'a [String],
    /// When the user authenticated; `None` for client credentials.
    auth_time: Option<i64>,
    /// The grant (refresh-token family) it belongs to.
    grant_id: Option<&'a str>,
}

impl<'a> Subject<'a> {
    fn user(grant: &'a Grant, audience: &'a [String]) -> Self {
        Subject {
            id: &grant.user_id,
            audience,
            auth_time: Some(grant.auth_time),
            grant_id: Some(&grant.id),
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
    let refresh_token =
        if client.allows_grant(GrantType::RefreshToken) { Some(secret::generate()?) } else { None };
    let refresh = refresh_token.as_ref().map(|token| RefreshToken {
        token_hash: secret::hash(token),
        grant_id: grant.id.clone(),
        created_at: now,
        expires_at: grant.expires_at,
        rotated_at: None,
    });
    Ok((Issue { grant, refresh, access, code_hash }, refresh_token))
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

/// The bindings of a code (RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 9700 §2.1.1).
fn check_code(record: &AuthorizationCode, client: &Client, params: &Params) -> Result<(), Failure> {
    if record.client_id != client.client_id {
        return Err(invalid_grant("the authorization code was issued to another client"));
    }
    if params.get("redirect_uri")?.unwrap_or("") != record.redirect_uri {
        return Err(invalid_grant(
            "redirect_uri must be identical to the one in the authorization request",
        ));
    }
    match (record.code_challenge.as_deref(), params.get("code_verifier")?) {
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
