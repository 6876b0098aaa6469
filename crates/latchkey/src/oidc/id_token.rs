//! id_tokens (OIDC Core §2, §3.1.3.6).

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::model::SigningAlg;

/// The claims of an id_token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// Issuer.
    pub iss: String,
    /// The user.
    pub sub: String,
    /// The client.
    pub aud: String,
    /// Expiry.
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// When the user authenticated.
    pub auth_time: i64,
    /// The nonce of the authorization request, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Half-hash of the access token issued with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// Authorized party: the client.
    pub azp: String,
    /// The login session (OpenID Connect Front-/Back-Channel Logout §2.1): a logout request
    /// with this id_token as its hint ends that session, even without its cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The claims of the granted `profile` and `email` scopes (OIDC Core §5.4), unless the
    /// client keeps them to userinfo.
    #[serde(flatten)]
    pub scope_claims: serde_json::Map<String, serde_json::Value>,
}

/// `at_hash`: base64url of the left half of the hash of the access token, with the hash of the
/// id_token's `alg` (OIDC Core §3.1.3.6): SHA-256 for ES256 and RS256, SHA-512 for EdDSA with
/// Ed25519 (as OpenID's errata and client libraries take it).
pub fn at_hash(alg: SigningAlg, access_token: &str) -> String {
    let algorithm = match alg {
        SigningAlg::ES256 | SigningAlg::RS256 => &digest::SHA256,
        SigningAlg::EdDSA => &digest::SHA512,
    };
    let digest = digest::digest(algorithm, access_token.as_bytes());
    let bytes = digest.as_ref();
    URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_sha256() {
        // Example from OIDC Core Appendix A.3/A.4 is for RS256 with this access token.
        assert_eq!(
            at_hash(SigningAlg::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(at_hash(SigningAlg::EdDSA, "token").len(), 43, "half of SHA-512 is 32 bytes");
    }
}
