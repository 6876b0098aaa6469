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

/// Which `aud` values identify this server in an assertion.
#[derive(Debug, Clone, Copy)]
pub enum Audience<'a> {
    /// The issuer identifier, as a single string and nothing else (draft-ietf-oauth-rfc7523bis
    /// §4: an audience list or an endpoint URL lets an assertion made for one server be
    /// replayed at another that shares an endpoint, the 2025 audience-injection class).
    Issuer(&'a str),
    /// RFC 7523 §3 as first written: the issuer or an endpoint URL, as a string or in a list.
    /// Only for clients registered with `legacy_assertion_audience = true`.
    Legacy(&'a [&'a str]),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_uris_are_https_or_loopback_for_a_loopback_issuer() {
        assert!(check_jwks_uri("https://keys.example.com/jwks.json", false).is_ok());
        assert!(check_jwks_uri("http://127.0.0.1:9000/jwks.json", true).is_ok());
        assert!(check_jwks_uri("http://127.0.0.1:9000/jwks.json", false).is_err());
        assert!(check_jwks_uri("http://keys.example.com/jwks.json", true).is_err());
        assert!(check_jwks_uri("file:///etc/passwd", true).is_err());
        assert!(check_jwks_uri("https://keys.example.com/j#x", false).is_err());
        assert!(
            is_loopback_issuer("http://127.0.0.1:8080") && !is_loopback_issuer("https://a.example")
        );
    }
}

#[derive(Debug, Deserialize)]
struct AssertionClaims {
    aud: Option<serde_json::Value>,
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

/// Verifies `assertion` for `client_id` with the client's `keys`; its `aud` must identify this
/// server as `audience` says.
pub fn verify(
    assertion: &str,
    client_id: &str,
    keys: &JwkSet,
    audience: Audience<'_>,
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
    // `aud` is checked below, exactly; jsonwebtoken would also accept it inside a list.
    validation.validate_aud = false;
    validation.set_issuer(&[client_id]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    // exp, nbf and iat are checked in `check_claims` against `now`, the caller's clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    let mut last = None;
    for key in candidates {
        let Ok(decoding) = DecodingKey::from_jwk(key) else { continue };
        match decode::<AssertionClaims>(assertion, &decoding, &validation) {
            Ok(data) => return check_claims(data.claims, client_id, audience, now),
            Err(error) => last = Some(error),
        }
    }
    Err(refuse(match last.as_ref().map(|e| e.kind()) {
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

/// Whether a client's `jwks_uri` may be fetched: https, or http on a loopback host when the
/// issuer itself is on loopback (local development). Keys fetched over plain http could be
/// replaced by anyone on the path, who could then sign assertions as the client.
pub fn check_jwks_uri(uri: &str, loopback_issuer: bool) -> Result<(), &'static str> {
    let url = url::Url::parse(uri).map_err(|_| "jwks_uri is not an absolute URL")?;
    if url.host().is_none() || url.fragment().is_some() {
        return Err("jwks_uri must be an https URL with a host and no fragment");
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback_issuer && super::redirect_uri::is_loopback(&url) => Ok(()),
        "http" if super::redirect_uri::is_loopback(&url) => {
            Err("jwks_uri must use https: http is allowed only on loopback with a loopback issuer")
        }
        _ => Err("jwks_uri must use https"),
    }
}

/// Whether the issuer is on a loopback host (where http is accepted for local use).
pub fn is_loopback_issuer(issuer: &str) -> bool {
    url::Url::parse(issuer).is_ok_and(|url| super::redirect_uri::is_loopback(&url))
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
    audience: Audience<'_>,
    now: i64,
) -> Result<VerifiedAssertion, OAuthError> {
    let aud_ok = match (&claims.aud, audience) {
        (Some(serde_json::Value::String(aud)), Audience::Issuer(issuer)) => aud == issuer,
        (Some(serde_json::Value::String(aud)), Audience::Legacy(accepted)) => {
            accepted.contains(&aud.as_str())
        }
        (Some(serde_json::Value::Array(list)), Audience::Legacy(accepted)) => {
            list.iter().any(|a| a.as_str().is_some_and(|a| accepted.contains(&a)))
        }
        _ => false,
    };
    if !aud_ok {
        return Err(refuse(match audience {
            Audience::Issuer(issuer) => format!(
                "client_assertion aud must be exactly this server's issuer, as one string: {issuer}"
            ),
            Audience::Legacy(_) => {
                "client_assertion aud must be this server's issuer or token endpoint".to_owned()
            }
        }));
    }
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
