//! Validation of opaque access tokens by asking the issuer (RFC 7662), with a cache.
//!
//! A cached answer is reused until the token's `exp` or [`IntrospectorConfig::max_cache`],
//! whichever comes first, so a revocation reaches this API within `max_cache` at worst. Only
//! active answers are cached; an inactive or failed answer is asked again next time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::claims::{AccessTokenClaims, Audience};
use crate::clock::{Clock, SystemClock};
use crate::rejection::Rejection;
use crate::validator::AccessToken;

/// The most tokens remembered at once.
const MAX_ENTRIES: usize = 10_000;

/// Where and as whom to introspect.
#[derive(Debug, Clone)]
pub struct IntrospectorConfig {
    /// The issuer identifier: answers must name it in `iss` when they carry one.
    pub issuer: String,
    /// The introspection endpoint URL.
    pub endpoint: String,
    /// This API's client id at the issuer.
    pub client_id: String,
    /// Its client secret (sent with HTTP Basic).
    pub client_secret: String,
    /// This API's identifier: `aud` must contain it.
    pub audience: String,
    /// The longest an answer is reused.
    pub max_cache: Duration,
}

/// Asks the issuer about tokens and remembers active answers briefly.
pub struct Introspector {
    config: IntrospectorConfig,
    http: reqwest::Client,
    cache: Mutex<HashMap<String, (Instant, AccessToken)>>,
    /// What `exp` is checked against.
    clock: Arc<dyn Clock>,
}

#[derive(Deserialize)]
struct Answer {
    active: bool,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    jti: Option<String>,
}

impl Introspector {
    /// An introspector with its own HTTP client.
    pub fn new(config: IntrospectorConfig) -> Self {
        let http =
            reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap_or_default();
        Introspector {
            config,
            http,
            cache: Mutex::new(HashMap::new()),
            clock: Arc::new(SystemClock),
        }
    }

    /// The same introspector, checking `exp` against `clock` instead of the system's.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Validates `token` through the issuer (or a fresh cached answer).
    pub async fn validate(&self, token: &str) -> Result<AccessToken, Rejection> {
        if token.is_empty() || token.len() > 8192 {
            return Err(Rejection::Malformed);
        }
        if let Some(cached) = self.cached(token) {
            return Ok(cached);
        }
        let response = self
            .http
            .post(&self.config.endpoint)
            .basic_auth(&self.config.client_id, Some(&self.config.client_secret))
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .map_err(|_| Rejection::IssuerUnavailable)?;
        if !response.status().is_success() {
            tracing::warn!(status = %response.status(), "introspection refused this API's request");
            return Err(Rejection::IssuerUnavailable);
        }
        let answer: Answer = response.json().await.map_err(|_| Rejection::IssuerUnavailable)?;
        let token_info = self.check(answer)?;
        self.remember(token, &token_info);
        Ok(token_info)
    }

    fn check(&self, answer: Answer) -> Result<AccessToken, Rejection> {
        if !answer.active {
            return Err(Rejection::Inactive);
        }
        let exp = answer.exp.ok_or(Rejection::Inactive)?;
        if exp <= self.clock.now() {
            return Err(Rejection::Expired);
        }
        if answer.iss.as_deref().is_some_and(|iss| iss != self.config.issuer) {
            return Err(Rejection::WrongIssuer);
        }
        let wrong = |found: Vec<String>| {
            tracing::debug!(expected = %self.config.audience, found = ?found, "access token for another audience");
            Rejection::WrongAudience { expected: self.config.audience.clone(), found }
        };
        let Some(aud) = answer.aud else { return Err(wrong(Vec::new())) };
        if !aud.contains(&self.config.audience) {
            return Err(wrong(aud.to_vec()));
        }
        Ok(AccessToken {
            claims: AccessTokenClaims {
                iss: self.config.issuer.clone(),
                sub: answer.sub.unwrap_or_default(),
                aud,
                exp,
                iat: answer.iat.unwrap_or_default(),
                nbf: None,
                jti: answer.jti.unwrap_or_default(),
                client_id: answer.client_id.unwrap_or_default(),
                scope: answer.scope,
                auth_time: None,
                grant_id: None,
            },
        })
    }

    fn cached(&self, token: &str) -> Option<AccessToken> {
        let cache = self.cache.lock().ok()?;
        let (until, found) = cache.get(token)?;
        (Instant::now() < *until && found.claims.exp > self.clock.now()).then(|| found.clone())
    }

    fn remember(&self, token: &str, found: &AccessToken) {
        let left = u64::try_from(found.claims.exp - self.clock.now()).unwrap_or(0);
        let keep = Duration::from_secs(left).min(self.config.max_cache);
        let Ok(mut cache) = self.cache.lock() else { return };
        if cache.len() >= MAX_ENTRIES {
            let now = Instant::now();
            cache.retain(|_, (until, _)| *until > now);
            if cache.len() >= MAX_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(token.to_owned(), (Instant::now() + keep, found.clone()));
    }
}
