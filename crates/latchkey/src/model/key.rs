//! Signing keys as stored: what a key signs, its algorithm, and its place in a rotation slot.
//! The lifecycle (next, current, retiring) is `keys`.

use super::SigningAlg;

/// What a key signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyPurpose {
    /// JWT access tokens (RFC 9068).
    AccessToken,
    /// OpenID Connect id_tokens.
    IdToken,
}

impl KeyPurpose {
    /// The stored string.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyPurpose::AccessToken => "access_token",
            KeyPurpose::IdToken => "id_token",
        }
    }

    /// Parses the stored string.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "access_token" => Some(KeyPurpose::AccessToken),
            "id_token" => Some(KeyPurpose::IdToken),
            _ => None,
        }
    }
}

/// A rotation slot: keys of one purpose and one algorithm.
pub type Slot = (KeyPurpose, SigningAlg);

/// The slots latchkey keeps a key in: ES256 access tokens; RS256 id_tokens, OIDC's mandatory
/// default (OIDC Core §15.1), and ES256 and EdDSA ones for clients that register them.
pub const SLOTS: [Slot; 4] = [
    (KeyPurpose::AccessToken, SigningAlg::ES256),
    (KeyPurpose::IdToken, SigningAlg::RS256),
    (KeyPurpose::IdToken, SigningAlg::ES256),
    (KeyPurpose::IdToken, SigningAlg::EdDSA),
];

/// A stored signing key.
#[derive(Clone)]
pub struct KeyRecord {
    /// Key id, published as `kid`.
    pub kid: String,
    /// What it signs.
    pub purpose: KeyPurpose,
    /// Its algorithm.
    pub alg: SigningAlg,
    /// PKCS#8 DER, sealed under the master key when `sealed`.
    pub private_key: Vec<u8>,
    /// Whether `private_key` is encrypted.
    pub sealed: bool,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// When it starts signing, Unix seconds.
    pub activates_at: i64,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("kid", &self.kid)
            .field("purpose", &self.purpose)
            .field("alg", &self.alg)
            .field("sealed", &self.sealed)
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .finish_non_exhaustive()
    }
}

impl KeyRecord {
    /// The slot the key rotates in.
    pub fn slot(&self) -> Slot {
        (self.purpose, self.alg)
    }
}
