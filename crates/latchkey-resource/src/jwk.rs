//! JSON Web Keys (RFC 7517) carrying public parameters only.
//!
//! The issuer publishes a [`JwkSet`] at its `jwks_uri`; a resource server reads the same type.
//! Private parameters (`d`, `p`, `q`, ...) have no field here, so they cannot be published by
//! mistake.

use serde::{Deserialize, Serialize};

/// A set of public keys (RFC 7517 §5).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    /// The keys, in no particular order.
    pub keys: Vec<Jwk>,
}

/// One public key (RFC 7517 §4, RFC 7518 §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type: `EC`, `RSA` or `OKP`.
    pub kty: String,
    /// Key id, matched against the `kid` header of a JWS.
    pub kid: String,
    /// Intended use; latchkey publishes `sig` only.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    /// The one algorithm this key may be used with (RFC 7517 §4.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Curve of an `EC` or `OKP` key (`P-256`, `Ed25519`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// X coordinate (`EC`) or public key (`OKP`), base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// Y coordinate of an `EC` key, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// Modulus of an `RSA` key, base64url big-endian.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// Public exponent of an `RSA` key, base64url big-endian.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

impl JwkSet {
    /// The key with this `kid`, if the set has one.
    pub fn find(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|key| key.kid == kid)
    }
}
