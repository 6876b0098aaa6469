//! Validation of JWT access tokens (RFC 9068 §4) against the issuer's published keys.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation, decode, decode_header};

use crate::claims::{AccessTokenClaims, is_access_token_typ};
use crate::clock::{Clock, SystemClock};
use crate::keys::{KeyCache, Lookup};
use crate::rejection::Rejection;

/// The token in an `Authorization: Bearer <token>` header value (RFC 6750 §2.1; the scheme is
/// case-insensitive). No header is [`Rejection::Missing`]; any other shape is
/// [`Rejection::MalformedHeader`].
pub fn bearer_token(authorization: Option<&str>) -> Result<&str, Rejection> {
    let value = authorization.ok_or(Rejection::Missing)?;
    let (scheme, token) = value.split_once(' ').ok_or(Rejection::MalformedHeader)?;
    let token = token.trim_start_matches(' ');
    // token68 (RFC 7235 §2.1): base64url characters, '.', and trailing '='.
    let token68 = !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b));
    if !scheme.eq_ignore_ascii_case("bearer") || !token68 {
        return Err(Rejection::MalformedHeader);
    }
    Ok(token)
}

/// What a [`Validator`] checks tokens against.
#[derive(Debug, Clone)]
pub struct ValidatorConfig {
    /// The issuer identifier, exactly as in its metadata (`iss` must equal it).
    pub issuer: String,
    /// This API's identifier: `aud` must contain it.
    pub audience: String,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// Signature algorithms accepted; never `none` or HMAC, whatever is listed here.
    pub algorithms: Vec<Algorithm>,
    /// The least time between two fetches of the issuer's keys.
    pub min_refetch_interval: Duration,
}

impl ValidatorConfig {
    /// Defaults: 5 s leeway; ES256, ES384, RS256, PS256 and EdDSA; keys fetched at most once
    /// every 10 s.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        ValidatorConfig {
            issuer: issuer.into(),
            audience: audience.into(),
            leeway: Duration::from_secs(5),
            algorithms: vec![
                Algorithm::ES256,
                Algorithm::ES384,
                Algorithm::RS256,
                Algorithm::PS256,
                Algorithm::EdDSA,
            ],
            min_refetch_interval: Duration::from_secs(10),
        }
    }
}

/// A validated access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    /// All claims.
    pub claims: AccessTokenClaims,
}

impl AccessToken {
    /// The user, or the client itself for client-credentials tokens.
    pub fn sub(&self) -> &str {
        &self.claims.sub
    }

    /// The client the token was issued to.
    pub fn client_id(&self) -> &str {
        &self.claims.client_id
    }

    /// Whether the token grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.claims.scopes().any(|granted| granted == scope)
    }

    /// `Ok` if the token grants `scope`, else the 403 rejection that names it.
    pub fn require_scope(&self, scope: &str) -> Result<(), Rejection> {
        if self.has_scope(scope) { Ok(()) } else { Err(Rejection::InsufficientScope(scope.into())) }
    }
}

/// Validates JWT access tokens of one issuer for one API. Cheap to share (`Arc`); keys are
/// fetched on first use and cached.
pub struct Validator {
    config: ValidatorConfig,
    keys: KeyCache,
    /// The claim checks for each accepted algorithm, built once.
    validations: Vec<(Algorithm, Validation)>,
    /// What `exp`, `nbf` and `iat` are checked against.
    clock: Arc<dyn Clock>,
}

const FORBIDDEN: [Algorithm; 3] = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];

/// The configured algorithms minus the symmetric ones, which a public key set cannot serve.
fn allowed_algorithms(config: &ValidatorConfig) -> Vec<Algorithm> {
    config.algorithms.iter().copied().filter(|alg| !FORBIDDEN.contains(alg)).collect()
}

/// `exp`, `nbf` and `iat` against `now`, each with `leeway` for clock skew (RFC 7519 §4.1.4–6).
fn check_times(claims: &AccessTokenClaims, now: i64, leeway: Duration) -> Result<(), Rejection> {
    let leeway = i64::try_from(leeway.as_secs()).unwrap_or(i64::MAX);
    if claims.exp.saturating_add(leeway) <= now {
        return Err(Rejection::Expired);
    }
    let future = |at: i64| at > now.saturating_add(leeway);
    if claims.nbf.is_some_and(future) || future(claims.iat) {
        return Err(Rejection::NotYetValid);
    }
    Ok(())
}

impl Validator {
    /// A validator that fetches keys with its own HTTP client.
    pub fn new(config: ValidatorConfig) -> Self {
        let http =
            reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap_or_default();
        Validator::with_http_client(config, http)
    }

    /// A validator that fetches keys with `http`.
    pub fn with_http_client(config: ValidatorConfig, http: reqwest::Client) -> Self {
        let allowed = allowed_algorithms(&config);
        let keys = KeyCache::new(http, config.issuer.clone(), allowed, config.min_refetch_interval);
        Validator::with_key_cache(config, keys)
    }

    /// A validator that trusts exactly the keys of `jwks` and never fetches any: for an API
    /// that cannot reach the issuer and has its keys distributed with its configuration.
    /// Keys need a `kid`; keys of other types or algorithms are ignored.
    pub fn with_pinned_keys(config: ValidatorConfig, jwks: &crate::JwkSet) -> Self {
        // The same JSON, read as jsonwebtoken's type, key by key: one odd key cannot void the
        // others.
        let keys = jwks
            .keys
            .iter()
            .filter_map(|jwk| serde_json::to_value(jwk).ok())
            .filter_map(|jwk| serde_json::from_value(jwk).ok())
            .collect();
        let set = jsonwebtoken::jwk::JwkSet { keys };
        let keys = KeyCache::pinned(&set, allowed_algorithms(&config));
        Validator::with_key_cache(config, keys)
    }

    fn with_key_cache(config: ValidatorConfig, keys: KeyCache) -> Self {
        let validations = allowed_algorithms(&config)
            .iter()
            .map(|alg| {
                let mut validation = Validation::new(*alg);
                validation.set_issuer(&[&config.issuer]);
                validation.set_audience(&[&config.audience]);
                // The times are checked against this validator's clock, below.
                validation.validate_exp = false;
                validation.validate_nbf = false;
                validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                (*alg, validation)
            })
            .collect();
        Validator { config, keys, validations, clock: Arc::new(SystemClock) }
    }

    /// The same validator, checking times against `clock` instead of the system's.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &ValidatorConfig {
        &self.config
    }

    /// Validates `token`: signature by a published key with that key's algorithm, `typ`,
    /// `iss`, `aud`, `exp`, `nbf`, `iat`.
    pub async fn validate(&self, token: &str) -> Result<AccessToken, Rejection> {
        let header = decode_header(token).map_err(|_| Rejection::Malformed)?;
        // RFC 9068 §4: typ must be at+jwt (an id_token must not pass as an access token).
        let typ_ok = is_access_token_typ(header.typ.as_deref());
        if FORBIDDEN.contains(&header.alg) || !self.config.algorithms.contains(&header.alg) {
            return Err(Rejection::AlgorithmNotAllowed);
        }
        if !typ_ok {
            return Err(Rejection::NotAnAccessToken);
        }
        let kid = header.kid.as_deref().ok_or(Rejection::UnknownKey)?;
        let key = match self.keys.key(kid).await {
            Lookup::Found(key) => key,
            Lookup::Unknown => return Err(Rejection::UnknownKey),
            Lookup::Unavailable => return Err(Rejection::IssuerUnavailable),
        };
        // The algorithm is the key's, never the token's choice (RFC 8725 §3.1).
        if header.alg != key.alg {
            return Err(Rejection::AlgorithmNotAllowed);
        }
        let validation = self
            .validations
            .iter()
            .find_map(|(alg, validation)| (*alg == key.alg).then_some(validation))
            .ok_or(Rejection::AlgorithmNotAllowed)?;
        let claims = decode::<AccessTokenClaims>(token, &key.key, validation)
            .map_err(|error| match error.kind() {
                ErrorKind::InvalidIssuer => Rejection::WrongIssuer,
                ErrorKind::InvalidAudience => self.wrong_audience(token),
                ErrorKind::InvalidSignature => Rejection::BadSignature,
                ErrorKind::InvalidAlgorithm => Rejection::AlgorithmNotAllowed,
                _ => Rejection::Malformed,
            })?
            .claims;
        check_times(&claims, self.clock.now(), self.config.leeway)?;
        Ok(AccessToken { claims })
    }

    /// The rejection of a token whose signature verified but whose `aud` is another API's.
    fn wrong_audience(&self, token: &str) -> Rejection {
        // The signature has verified (jsonwebtoken checks claims only after it).
        let found = jsonwebtoken::dangerous::insecure_decode_claims::<AccessTokenClaims>(token)
            .map(|claims| claims.aud.to_vec())
            .unwrap_or_default();
        tracing::debug!(expected = %self.config.audience, found = ?found, "access token for another audience");
        Rejection::WrongAudience { expected: self.config.audience.clone(), found }
    }

    /// Validates `token` and requires `scope`.
    pub async fn validate_with_scope(
        &self,
        token: &str,
        scope: &str,
    ) -> Result<AccessToken, Rejection> {
        let token = self.validate(token).await?;
        token.require_scope(scope)?;
        Ok(token)
    }
}
