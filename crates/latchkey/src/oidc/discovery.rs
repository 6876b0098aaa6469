//! Authorization server metadata: OpenID Connect Discovery 1.0 §3 and RFC 8414 §2.
//!
//! One document serves both well-known paths. It advertises only what is implemented, so a
//! field appears here in the same change that builds the feature behind it.

use serde::Serialize;

use crate::model::SigningAlg;

/// The metadata document.
#[derive(Debug, Clone, Serialize)]
pub struct Metadata {
    /// Exactly the configured issuer (RFC 8414 §3.3: clients compare it character for character).
    pub issuer: String,
    /// Where the signing keys are published.
    pub jwks_uri: String,
    /// The `response_type` values `/authorize` accepts (none until it exists).
    pub response_types_supported: Vec<&'static str>,
    /// OIDC Discovery: pairwise subjects are not offered.
    pub subject_types_supported: Vec<&'static str>,
    /// The algorithms id_tokens can be signed with.
    pub id_token_signing_alg_values_supported: Vec<SigningAlg>,
}

/// Absolute URL of `path` under `issuer`; every URL latchkey publishes is built here, from the
/// configured issuer and never from request headers.
pub fn endpoint(issuer: &str, path: &str) -> String {
    format!("{}{path}", issuer.trim_end_matches('/'))
}

/// The metadata for `issuer`, with `jwks_path` as the key set's path.
pub fn metadata(issuer: &str, jwks_path: &str) -> Metadata {
    Metadata {
        issuer: issuer.to_owned(),
        jwks_uri: endpoint(issuer, jwks_path),
        response_types_supported: Vec::new(),
        subject_types_supported: vec!["public"],
        id_token_signing_alg_values_supported: vec![SigningAlg::RS256],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_hang_off_the_issuer_whatever_its_trailing_slash() {
        assert_eq!(endpoint("https://id.example.com", "/jwks"), "https://id.example.com/jwks");
        assert_eq!(endpoint("https://id.example.com/", "/jwks"), "https://id.example.com/jwks");
        assert_eq!(endpoint("https://x.com/tenant", "/jwks"), "https://x.com/tenant/jwks");
    }

    #[test]
    fn issuer_is_kept_exactly() {
        let doc = metadata("https://id.example.com/", "/jwks");
        assert_eq!(doc.issuer, "https://id.example.com/");
    }
}
