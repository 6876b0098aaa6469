//! `private_key_jwt` client authentication (RFC 7523 §2.2 and §3, OIDC Core §9).
//!
//! The client signs a short-lived JWT with its private key; we verify it with the public keys
//! it registered. Verification is jsonwebtoken's; this module only decides which key and
//! algorithm may be used and which claims must hold.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;

use super::{ErrorCode, OAuthError};

/// The only `client_assertion_type` (RFC 7523 §2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The longest an assertion may live: its `jti` is remembered until `exp`, so the bound keeps
/// that record small, and a leaked assertion is useless soon.
pub const MAX_LIFETIME_SECS: i64 = 3600;

/// Clock skew tolerated on `iat` and `nbf`.
const LEEWAY_SECS: i64 = 30;

/// What a verified assertion leaves to check against the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    /// Its `jti`, to be used once.
    pub jti: String,
    /// Its `exp`: the `jti` is remembered until then.
    pub expires_at: i64,
}

#[derive(Debug, Deserialize)]
struct AssertionClaims {
    iss: Option<String>,
    sub: Option<String>,
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
    jti: Option<String>,
}

fn refuse(description: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClient, description)
}

/// The client an assertion claims to come from (`sub`, which must equal `iss`), read before
/// anything is verified: it only says whose keys to verify with.
pub fn claimed_client(assertion: &str) -> Result<String, OAuthError> {
    let claims: AssertionClaims = jsonwebtoken::dangerous::insecure_decode_claims(assertion)
        .map_err(|_| refuse("client_assertion is not a JWT"))?;
    claims.sub.ok_or_else(|| refuse("client_assertion has no sub: it must be the client_id"))
}

/// Verifies `assertion` for `client_id` with the client's `keys`. `audiences` are the values
/// that identify this server (its issuer and endpoint URLs): one must be in `aud`.
pub fn verify(
    assertion: &str,
    client_id: &str,
    keys: &JwkSet,
    audiences: &[&str],
    now: i64,
) -> Result<VerifiedAssertion, OAuthError> {
    let header = decode_header(assertion).map_err(|_| refuse("client_assertion is not a JWT"))?;
    let alg = header.alg;
    if !ALLOWED.contains(&alg) {
        return Err(refuse(format!(
            "client_assertion alg {alg:?} is not accepted: sign with RS256, PS256, ES256, ES384 or EdDSA"
        )));
    }
    let candidates: Vec<&Jwk> = keys
        .keys
        .iter()
        .filter(|key| header.kid.is_none() || key.common.key_id == header.kid)
        .filter(|key| fits(key, alg))
        .collect();
    if candidates.is_empty() {
        return Err(refuse(match &header.kid {
            Some(_) => {
                format!("no registered key of this client has the assertion's kid and fits {alg:?}")
            }
            None => format!("no registered key of this client fits {alg:?}"),
        }));
    }
    let mut validation = Validation::new(alg);
    validation.set_audience(audiences);
    validation.set_issuer(&[client_id]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    validation.leeway = 0;
    validation.validate_nbf = false;
    let mut last = None;
    for key in candidates {
        let Ok(decoding) = DecodingKey::from_jwk(key) else { continue };
        match decode::<AssertionClaims>(assertion, &decoding, &validation) {
            Ok(data) => return check_claims(data.claims, client_id, now),
            Err(error) => last = Some(error),
        }
    }
    Err(refuse(match last.as_ref().map(|e| e.kind()) {
        Some(jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
            "client_assertion has expired".to_owned()
        }
        Some(jsonwebtoken::errors::ErrorKind::InvalidAudience) => format!(
            "client_assertion aud must be this server's issuer or token endpoint ({})",
            audiences.first().copied().unwrap_or_default()
        ),
        Some(jsonwebtoken::errors::ErrorKind::InvalidIssuer) => {
            "client_assertion iss must be the client_id".to_owned()
        }
        Some(jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(claim)) => {
            format!("client_assertion has no {claim} claim")
        }
        _ => "client_assertion signature does not verify with the client's registered keys"
            .to_owned(),
    }))
}

/// Never `none`, never HMAC (a shared secret is not a private key).
const ALLOWED: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Whether `key` can verify `alg`: the right key type and curve, and the key's own `alg`
/// when it names one (RFC 7517 §4.4).
fn fits(key: &Jwk, alg: Algorithm) -> bool {
    if key.common.key_algorithm.is_some_and(|own| Algorithm::try_from(own).ok() != Some(alg)) {
        return false;
    }
    match (&key.algorithm, alg) {
        (AlgorithmParameters::RSA(_), Algorithm::RS256 | Algorithm::RS384 | Algorithm::PS256) => {
            true
        }
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => {
            ec.curve == EllipticCurve::P256
        }
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES384) => {
            ec.curve == EllipticCurve::P384
        }
        (AlgorithmParameters::OctetKeyPair(okp), Algorithm::EdDSA) => {
            okp.curve == EllipticCurve::Ed25519
        }
        _ => false,
    }
}

fn check_claims(
    claims: AssertionClaims,
    client_id: &str,
    now: i64,
) -> Result<VerifiedAssertion, OAuthError> {
    if claims.sub.as_deref() != Some(client_id) || claims.iss.as_deref() != Some(client_id) {
        return Err(refuse("client_assertion iss and sub must both be the client_id"));
    }
    let exp = claims.exp.ok_or_else(|| refuse("client_assertion has no exp claim"))?;
    if exp <= now {
        return Err(refuse("client_assertion has expired"));
    }
    if exp > now + MAX_LIFETIME_SECS {
        return Err(refuse("client_assertion lives too long: exp must be within an hour"));
    }
    if claims.nbf.is_some_and(|nbf| nbf > now + LEEWAY_SECS) {
        return Err(refuse("client_assertion is not valid yet (nbf)"));
    }
    if claims.iat.is_some_and(|iat| iat > now + LEEWAY_SECS) {
        return Err(refuse("client_assertion iat is in the future"));
    }
    let jti = claims
        .jti
        // Stored to be used once: printable only (PostgreSQL text cannot even hold NUL).
        .filter(|jti| !jti.is_empty() && jti.len() <= 256 && !jti.chars().any(char::is_control))
        .ok_or_else(|| refuse("client_assertion needs a printable jti, unique per assertion"))?;
    Ok(VerifiedAssertion { jti, expires_at: exp })
}
