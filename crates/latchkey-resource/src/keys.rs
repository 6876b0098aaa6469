//! The issuer's signing keys, fetched from its discovery document and `jwks_uri` and cached.
//!
//! - The set is used for as long as the JWKS response's `Cache-Control: max-age` says (within
//!   bounds), then fetched again on the next validation.
//! - A token whose `kid` is not in the set triggers one early fetch, at most once per
//!   `min_refetch_interval`, and only one at a time (callers wait for the fetch in flight
//!   rather than starting their own): a flood of forged `kid`s costs the issuer one request
//!   per interval.
//! - When the issuer cannot be reached the cached keys keep working.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

/// Bounds on how long a fetched key set is trusted, whatever `max-age` says.
const MIN_FRESH: Duration = Duration::from_secs(30);
const MAX_FRESH: Duration = Duration::from_secs(24 * 3600);
/// Used when the response has no `max-age`.
const DEFAULT_FRESH: Duration = Duration::from_secs(300);
/// The largest key set or discovery document accepted.
const MAX_BYTES: usize = 256 * 1024;

/// A key ready to verify with, and the one algorithm it may verify.
#[derive(Clone)]
pub(crate) struct VerifyingKey {
    pub(crate) alg: Algorithm,
    pub(crate) key: Arc<DecodingKey>,
}

/// One fetched key set.
struct KeySet {
    keys: HashMap<String, VerifyingKey>,
    fetched_at: Instant,
    fresh_for: Duration,
}

/// Where to fetch from and how often.
pub(crate) struct KeyCache {
    /// `None` for a key set given at construction: never fetched, never replaced.
    http: Option<reqwest::Client>,
    issuer: String,
    allowed: Vec<Algorithm>,
    min_refetch_interval: Duration,
    current: RwLock<Option<Arc<KeySet>>>,
    /// Held while fetching: one fetch at a time; also records when the last one started.
    fetching: tokio::sync::Mutex<Option<Instant>>,
}

/// A key lookup's outcome.
pub(crate) enum Lookup {
    Found(VerifyingKey),
    Unknown,
    Unavailable,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl KeyCache {
    pub(crate) fn new(
        http: reqwest::Client,
        issuer: String,
        allowed: Vec<Algorithm>,
        min_refetch_interval: Duration,
    ) -> Self {
        KeyCache {
            http: Some(http),
            issuer,
            allowed,
            min_refetch_interval,
            current: RwLock::new(None),
            fetching: tokio::sync::Mutex::new(None),
        }
    }

    /// A cache holding `set` for good, with no issuer to fetch from.
    pub(crate) fn pinned(set: &JwkSet, allowed: Vec<Algorithm>) -> Self {
        let keys = usable_keys(set, &allowed);
        let set = KeySet { keys, fetched_at: Instant::now(), fresh_for: Duration::MAX };
        KeyCache {
            http: None,
            issuer: String::new(),
            allowed,
            min_refetch_interval: Duration::MAX,
            current: RwLock::new(Some(Arc::new(set))),
            fetching: tokio::sync::Mutex::new(None),
        }
    }

    /// The key `kid`, fetching the set when it is missing, stale or lacks the key.
    pub(crate) async fn key(&self, kid: &str) -> Lookup {
        let snapshot = self.snapshot();
        let fresh = snapshot.as_ref().filter(|set| set.fetched_at.elapsed() < set.fresh_for);
        if let Some(found) = fresh.and_then(|set| set.keys.get(kid)) {
            return Lookup::Found(found.clone());
        }
        self.refresh(snapshot.as_ref().map(|s| s.fetched_at)).await;
        match self.snapshot() {
            Some(set) => match set.keys.get(kid) {
                Some(found) => Lookup::Found(found.clone()),
                None => Lookup::Unknown,
            },
            None => Lookup::Unavailable,
        }
    }

    fn snapshot(&self) -> Option<Arc<KeySet>> {
        self.current.read().ok().and_then(|current| current.clone())
    }

    /// Fetches a new set unless another caller did since `seen` or one was fetched too
    /// recently.
    async fn refresh(&self, seen: Option<Instant>) {
        if self.http.is_none() {
            return;
        }
        let mut last_fetch = self.fetching.lock().await;
        let current = self.snapshot();
        if current.as_ref().map(|s| s.fetched_at) != seen {
            return; // somebody fetched while we waited
        }
        // Whatever the reason (unknown kid, stale set, issuer down), at most one fetch per
        // interval; meanwhile the keys we have are used.
        if last_fetch.is_some_and(|at| at.elapsed() < self.min_refetch_interval) {
            return;
        }
        *last_fetch = Some(Instant::now());
        match self.fetch().await {
            Ok(set) => {
                if let Ok(mut slot) = self.current.write() {
                    *slot = Some(Arc::new(set));
                }
            }
            Err(error) => {
                // Keep the old keys: an issuer that is briefly down must not take the API
                // down with it.
                tracing::warn!(issuer = %self.issuer, %error, "fetching the issuer's keys failed");
            }
        }
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        let discovery_url =
            format!("{}/.well-known/openid-configuration", self.issuer.trim_end_matches('/'));
        let (discovery, _) = self.get(&discovery_url).await?;
        let discovery: Discovery =
            serde_json::from_slice(&discovery).map_err(|e| format!("discovery: {e}"))?;
        // RFC 8414 §3.3: the document must name exactly the issuer we trust.
        if discovery.issuer != self.issuer {
            return Err(format!("discovery names issuer {:?}", discovery.issuer));
        }
        let (body, max_age) = self.get(&discovery.jwks_uri).await?;
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| format!("jwks: {e}"))?;
        let keys = usable_keys(&set, &self.allowed);
        let fresh_for = max_age.unwrap_or(DEFAULT_FRESH).clamp(MIN_FRESH, MAX_FRESH);
        Ok(KeySet { keys, fetched_at: Instant::now(), fresh_for })
    }

    async fn get(&self, url: &str) -> Result<(bytes::Bytes, Option<Duration>), String> {
        let http = self.http.as_ref().ok_or("a pinned key set is never fetched")?;
        let response = http.get(url).send().await.map_err(|e| format!("{url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{url} answered {}", response.status()));
        }
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|value| value.to_str().ok())
            .and_then(max_age);
        let body = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
        if body.len() > MAX_BYTES {
            return Err(format!("{url} sent more than {MAX_BYTES} bytes"));
        }
        Ok((body, max_age))
    }
}

/// The keys of `set` that have a `kid` and an allowed algorithm, by `kid`.
fn usable_keys(set: &JwkSet, allowed: &[Algorithm]) -> HashMap<String, VerifyingKey> {
    set.keys
        .iter()
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let alg = algorithm(jwk).filter(|alg| allowed.contains(alg))?;
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some((kid, VerifyingKey { alg, key: Arc::new(key) }))
        })
        .collect()
}

/// `max-age` of a `Cache-Control` value; `no-store`/`no-cache` mean "fetch each time" (the
/// lower bound then applies).
fn max_age(value: &str) -> Option<Duration> {
    value.split(',').map(str::trim).find_map(|directive| {
        if directive.eq_ignore_ascii_case("no-store") || directive.eq_ignore_ascii_case("no-cache")
        {
            return Some(Duration::ZERO);
        }
        let (name, seconds) = directive.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| seconds.trim().parse().ok())?
            .map(Duration::from_secs)
    })
}

/// The one algorithm a published key may verify: its `alg` member, else what its type
/// implies. Symmetric keys (`oct`) never qualify: a public key set has no shared secrets, and
/// accepting one would let a token be "signed" with public data.
fn algorithm(jwk: &Jwk) -> Option<Algorithm> {
    let implied = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Algorithm::ES256,
            EllipticCurve::P384 => Algorithm::ES384,
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        _ => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(implied),
        Some(named) => {
            let named = Algorithm::try_from(named).ok()?;
            let same_family = match (&jwk.algorithm, named) {
                (
                    AlgorithmParameters::RSA(_),
                    Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512,
                ) => true,
                _ => named == implied,
            };
            same_family.then_some(named)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(max_age("public, max-age=300"), Some(Duration::from_secs(300)));
        assert_eq!(max_age("max-age = 60"), Some(Duration::from_secs(60)));
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=abc"), None);
    }

    #[test]
    fn symmetric_and_mismatched_keys_verify_nothing() {
        let oct: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "oct", "kid": "k", "k": "c2VjcmV0", "alg": "HS256"
        }))
        .unwrap();
        assert_eq!(algorithm(&oct), None);
        let ec_claiming_rsa: Jwk = serde_json::from_value(serde_json::json!({
            "kty": "EC", "kid": "k", "crv": "P-256", "alg": "RS256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
        }))
        .unwrap();
        assert_eq!(algorithm(&ec_claiming_rsa), None);
    }
}
