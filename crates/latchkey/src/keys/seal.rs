//! Encryption of private signing keys at rest under the master key (`LATCHKEY_MASTER_KEY`).
//!
//! AES-256-GCM from aws-lc-rs with a random 96-bit nonce per key; the key id is bound as
//! associated data, so a sealed key cannot be swapped onto another row unnoticed.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::secret;

/// The master key: 32 random bytes, given base64-encoded.
pub struct MasterKey(LessSafeKey);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// Errors of sealing and opening. They never carry key material.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The configured master key is not 32 bytes of base64.
    #[error(
        "master key must be 32 random bytes in base64 (for example from `openssl rand -base64 32`)"
    )]
    BadMasterKey,
    /// Decryption failed: wrong master key, or the stored key was altered.
    #[error("cannot decrypt signing key {0}: wrong LATCHKEY_MASTER_KEY or altered data")]
    Open(String),
    /// Encryption failed.
    #[error("cannot encrypt signing key {0}")]
    Seal(String),
}

impl MasterKey {
    /// Parses a base64 (standard or url-safe) 32-byte key.
    pub fn parse(encoded: &str) -> Result<Self, SealError> {
        let encoded = encoded.trim();
        let bytes = STANDARD
            .decode(encoded)
            .or_else(|_| URL_SAFE_NO_PAD.decode(encoded.trim_end_matches('=')))
            .map_err(|_| SealError::BadMasterKey)?;
        if bytes.len() != 32 {
            return Err(SealError::BadMasterKey);
        }
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| SealError::BadMasterKey)?;
        Ok(MasterKey(LessSafeKey::new(key)))
    }

    /// A key from 32 bytes already derived elsewhere (e.g. from a 256-bit token).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, SealError> {
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| SealError::BadMasterKey)?;
        Ok(MasterKey(LessSafeKey::new(key)))
    }

    /// nonce || ciphertext || tag.
    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let failed = || SealError::Seal(kid.to_owned());
        let nonce_bytes = secret::random_bytes::<NONCE_LEN>().map_err(|_| failed())?;
        let mut sealed = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(kid.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| failed())?;
        let mut out = nonce_bytes.to_vec();
        out.append(&mut sealed);
        Ok(out)
    }

    /// Reverses [`MasterKey::seal`].
    pub fn open(&self, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let failed = || SealError::Open(kid.to_owned());
        if sealed.len() < NONCE_LEN {
            return Err(failed());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| failed())?;
        let mut buffer = ciphertext.to_vec();
        let plaintext = self
            .0
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buffer)
            .map_err(|_| failed())?;
        Ok(plaintext.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    #[test]
    fn sealed_keys_open_only_with_the_same_master_key_and_kid() {
        let master = MasterKey::parse(KEY).unwrap();
        let sealed = master.seal("k1", b"private").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"private"));
        assert_eq!(master.open("k1", &sealed).unwrap(), b"private");
        assert!(master.open("k2", &sealed).is_err());
        let other = MasterKey::parse(&STANDARD.encode([7u8; 32])).unwrap();
        assert!(other.open("k1", &sealed).is_err());
        assert!(master.open("k1", &sealed[..5]).is_err());
    }

    #[test]
    fn master_key_must_be_32_bytes_of_base64() {
        assert!(MasterKey::parse("short").is_err());
        assert!(MasterKey::parse(&STANDARD.encode([1u8; 16])).is_err());
        assert!(MasterKey::parse(&URL_SAFE_NO_PAD.encode([1u8; 32])).is_ok());
    }
}
