//! JWT access tokens whose signature this node has verified, so that a resource server that
//! introspects the same token many times pays for the signature once.
//!
//! Keyed by the SHA-256 of the whole token, an entry holds the verified claims and the `kid`
//! that signed them. It answers only until the token's `exp` (checked against the caller's
//! `now` on every hit), and the caller also checks that the key is still published. Only
//! tokens whose signature verified enter, so presenting garbage cannot grow the map; it holds
//! at most [`MAX_ENTRIES`] (a few megabytes). Revocation is never cached: every use still asks
//! the store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use aws_lc_rs::digest;
use latchkey_resource::AccessTokenClaims;

/// The most tokens remembered (about 0.5 KiB each).
pub const MAX_ENTRIES: usize = 16_384;

/// The SHA-256 of a token: what it is remembered by.
pub type TokenDigest = [u8; 32];

/// Verified access tokens, by digest.
#[derive(Debug, Default)]
pub struct VerifiedTokens {
    entries: RwLock<HashMap<TokenDigest, Verified>>,
    /// When expired entries were last swept out (Unix seconds).
    swept_at: AtomicI64,
}

/// A token that verified: its claims and the key that signed it.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The `kid` of the signing key.
    pub kid: Arc<str>,
    /// The verified claims.
    pub claims: Arc<AccessTokenClaims>,
}

/// The digest `token` is remembered by.
pub fn digest_of(token: &str) -> TokenDigest {
    let mut out = [0; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    out
}

impl VerifiedTokens {
    /// The verified token with this digest, while it has not expired at `now`.
    pub fn get(&self, digest: &TokenDigest, now: i64) -> Option<Verified> {
        let entries = self.entries.read().ok()?;
        entries.get(digest).filter(|verified| verified.claims.exp > now).cloned()
    }

    /// Remembers a token whose signature and claims just verified. When the map is full,
    /// expired entries go (at most once a second), else an arbitrary one.
    pub fn insert(&self, digest: TokenDigest, verified: Verified, now: i64) {
        // A poisoned lock only means another thread panicked mid-update of a plain map; not
        // remembering is always correct.
        let Ok(mut entries) = self.entries.write() else { return };
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&digest) {
            if self.swept_at.swap(now, Ordering::Relaxed) < now {
                entries.retain(|_, verified| verified.claims.exp > now);
            }
            if entries.len() >= MAX_ENTRIES
                && let Some(victim) = entries.keys().next().copied()
            {
                entries.remove(&victim);
            }
        }
        entries.insert(digest, verified);
    }

    /// How many tokens are remembered.
    pub fn len(&self) -> usize {
        self.entries.read().map_or(0, |entries| entries.len())
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use latchkey_resource::Audience;

    use super::*;

    fn verified(jti: &str, exp: i64) -> Verified {
        let claims = AccessTokenClaims {
            iss: "https://auth.example.com".into(),
            sub: "machine".into(),
            aud: Audience::One("https://photos.example.com".into()),
            exp,
            iat: exp - 300,
            nbf: None,
            jti: jti.into(),
            client_id: "machine".into(),
            scope: Some("read:photos".into()),
            auth_time: None,
            grant_id: None,
        };
        Verified { kid: "k1".into(), claims: Arc::new(claims) }
    }

    #[test]
    fn a_token_is_found_by_its_digest_until_it_expires() {
        let cache = VerifiedTokens::default();
        let digest = digest_of("header.payload.signature");
        assert!(cache.get(&digest, 1_000).is_none());
        cache.insert(digest, verified("j1", 1_300), 1_000);
        assert_eq!(cache.get(&digest, 1_299).unwrap().claims.jti, "j1");
        assert!(cache.get(&digest, 1_300).is_none(), "expired at exp");
        assert!(cache.get(&digest_of("header.payload.signaturf"), 1_000).is_none());
    }

    #[test]
    fn the_cache_never_holds_more_than_its_bound() {
        let cache = VerifiedTokens::default();
        for n in 0..MAX_ENTRIES + 500 {
            let token = format!("token-{n}");
            cache.insert(digest_of(&token), verified(&token, 2_000), 1_000);
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
        // Once they have expired, a sweep makes room for live ones.
        cache.insert(digest_of("fresh"), verified("fresh", 9_000), 3_000);
        assert_eq!(cache.len(), 1, "the expired ones were swept out");
        assert!(cache.get(&digest_of("fresh"), 3_000).is_some());
    }
}
