//! The public keys of `private_key_jwt` clients: registered inline, or fetched from the
//! client's `jwks_uri` and cached.
//!
//! A fetched set is used for [`FRESH_FOR`]; an assertion whose `kid` is not in the set makes
//! one early refetch, at most once per [`REFETCH_GAP`] per client, so that a key rotation by
//! the client is picked up at once while a flood of made-up `kid`s cannot turn latchkey into a
//! request amplifier against the client's server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;

use crate::model::Client;
use crate::oauth::client_assertion;

/// How long a fetched key set is used without asking again.
pub const FRESH_FOR: Duration = Duration::from_secs(300);
/// The least time between two fetches for one client.
pub const REFETCH_GAP: Duration = Duration::from_secs(10);
/// The largest key set accepted.
const MAX_BYTES: usize = 64 * 1024;

/// Why a client's keys could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The client registered neither `jwks` nor `jwks_uri`.
    #[error("the client has no registered keys")]
    None,
    /// The registered keys are not a valid JWK set.
    #[error("the client's registered keys are not a valid JWK set: {0}")]
    Invalid(String),
    /// Fetching `jwks_uri` failed.
    #[error("fetching the client's jwks_uri failed: {0}")]
    Fetch(String),
}

#[derive(Clone)]
struct Fetched {
    at: Instant,
    keys: Arc<JwkSet>,
}

/// Key sets by client, with the HTTP client that fetches them.
pub struct ClientKeys {
    http: reqwest::Client,
    fetched: Mutex<HashMap<String, Fetched>>,
    /// The issuer is on loopback: http `jwks_uri`s on loopback are accepted too.
    loopback_issuer: bool,
}

impl ClientKeys {
    /// Key sets for the server whose issuer is `issuer`.
    pub fn new(issuer: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        ClientKeys {
            http,
            fetched: Mutex::new(HashMap::new()),
            loopback_issuer: client_assertion::is_loopback_issuer(issuer),
        }
    }
}

impl ClientKeys {
    /// The client's keys. With `kid` given and missing from a cached set, refetch once
    /// (rate-limited).
    pub async fn keys(&self, client: &Client, kid: Option<&str>) -> Result<Arc<JwkSet>, KeysError> {
        if let Some(inline) = &client.jwks {
            let value =
                serde_json::to_value(inline).map_err(|e| KeysError::Invalid(e.to_string()))?;
            return serde_json::from_value(value)
                .map(Arc::new)
                .map_err(|e| KeysError::Invalid(e.to_string()));
        }
        let Some(uri) = client.jwks_uri.as_deref() else {
            return Err(KeysError::None);
        };
        let cached = self.cached(&client.client_id);
        if let Some(cached) = &cached {
            let has_kid = kid.is_none_or(|kid| {
                cached.keys.keys.iter().any(|k| k.common.key_id.as_deref() == Some(kid))
            });
            let age = cached.at.elapsed();
            if age < FRESH_FOR && (has_kid || age < REFETCH_GAP) {
                return Ok(cached.keys.clone());
            }
        }
        match self.fetch(uri).await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                if let Ok(mut fetched) = self.fetched.lock() {
                    fetched.insert(
                        client.client_id.clone(),
                        Fetched { at: Instant::now(), keys: keys.clone() },
                    );
                }
                Ok(keys)
            }
            // Keep working with the keys we have while the client's server is briefly down.
            Err(error) => match cached {
                Some(cached) => {
                    tracing::warn!(client_id = %client.client_id, %error, "jwks_uri unreachable; using cached keys");
                    Ok(cached.keys)
                }
                None => Err(error),
            },
        }
    }

    fn cached(&self, client_id: &str) -> Option<Fetched> {
        self.fetched.lock().ok()?.get(client_id).cloned()
    }

    async fn fetch(&self, uri: &str) -> Result<JwkSet, KeysError> {
        // Registrations from the CLI or an older version are checked here too.
        client_assertion::check_jwks_uri(uri, self.loopback_issuer)
            .map_err(|why| KeysError::Fetch(why.to_owned()))?;
        let fetch = |e: reqwest::Error| KeysError::Fetch(e.to_string());
        let too_big = || KeysError::Fetch(format!("{uri} sent more than {MAX_BYTES} bytes"));
        let mut response = self.http.get(uri).send().await.map_err(fetch)?;
        if !response.status().is_success() {
            return Err(KeysError::Fetch(format!("{uri} answered {}", response.status())));
        }
        if response.content_length().is_some_and(|len| len > MAX_BYTES as u64) {
            return Err(too_big());
        }
        // Read chunk by chunk and stop at the cap: a chunked or lying body has no length to
        // check first, and must not be buffered whole.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(fetch)? {
            if body.len() + chunk.len() > MAX_BYTES {
                return Err(too_big());
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| KeysError::Invalid(e.to_string()))
    }
}
