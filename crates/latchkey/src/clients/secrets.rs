//! Client secrets that already passed a full check, so that a client calling many times a
//! second does not pay an argon2 hash per request.
//!
//! Generated secrets are stored as SHA-256 and need no cache. A human-chosen secret is stored
//! as argon2id; once it verifies, we keep a keyed SHA-256 of (client, secret, stored hash). A
//! later request with the same secret matches that digest in microseconds; any other secret
//! (a wrong one, or the old one after the stored hash changed) still takes the full argon2
//! path. One entry per client, so the map is as small as the client list.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lc_rs::hmac;

use crate::secret;

/// Digests of verified secrets by client.
pub struct VerifiedSecrets {
    key: hmac::Key,
    entries: Mutex<HashMap<String, hmac::Tag>>,
}

impl VerifiedSecrets {
    /// An empty cache under a fresh random key (so a memory dump does not carry a plain
    /// SHA-256 of each secret).
    pub fn new() -> Result<Self, secret::RandomError> {
        let key = secret::random_bytes::<32>()?;
        Ok(VerifiedSecrets {
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            entries: Mutex::new(HashMap::new()),
        })
    }

    fn digest(&self, client_id: &str, presented: &str, stored: &str) -> hmac::Tag {
        let mut context = hmac::Context::with_key(&self.key);
        for part in [client_id, presented, stored] {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part.as_bytes());
        }
        context.sign()
    }

    /// Whether this exact secret was verified against this stored hash before.
    pub fn contains(&self, client_id: &str, presented: &str, stored: &str) -> bool {
        let digest = self.digest(client_id, presented, stored);
        let Ok(entries) = self.entries.lock() else { return false };
        entries
            .get(client_id)
            .is_some_and(|known| secret::constant_time_eq(known.as_ref(), digest.as_ref()))
    }

    /// Remembers a secret that just verified.
    pub fn remember(&self, client_id: &str, presented: &str, stored: &str) {
        let digest = self.digest(client_id, presented, stored);
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(client_id.to_owned(), digest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_verified_secret_for_the_same_stored_hash_matches() {
        let cache = VerifiedSecrets::new().unwrap();
        assert!(!cache.contains("app", "s3cret", "$argon2id$one"));
        cache.remember("app", "s3cret", "$argon2id$one");
        assert!(cache.contains("app", "s3cret", "$argon2id$one"));
        assert!(!cache.contains("app", "wrong", "$argon2id$one"));
        assert!(!cache.contains("app", "s3cret", "$argon2id$two"), "secret was rotated");
        assert!(!cache.contains("other", "s3cret", "$argon2id$one"));
        // Length prefixes keep field boundaries: ("ab", "c") is not ("a", "bc").
        cache.remember("x", "ab", "c");
        assert!(!cache.contains("x", "a", "bc"));
    }
}
