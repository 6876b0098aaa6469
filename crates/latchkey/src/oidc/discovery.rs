//! Authorization server metadata: OpenID Connect Discovery 1.0 §3 and RFC 8414 §2.
//!
//! One document serves both well-known paths. It advertises only what is implemented, so a
//! field appears here in the same change that builds the feature behind it.

use serde::Serialize;

use crate::model::{Resource, SigningAlg};
use crate::oauth::audience::OPENID_SCOPES;

/// The metadata document.
#[derive(Debug, Clone, Serialize)]
pub struct Metadata {
    /// Exactly the configured issuer (RFC 8414 §3.3: clients compare it character for character).
    pub issuer: String,
    /// The authorization endpoint.
    pub authorization_endpoint: String,
    /// The token endpoint.
    pub token_endpoint: String,
    /// The UserInfo endpoint.
    pub userinfo_endpoint: String,
    /// Where the signing keys are published.
    pub jwks_uri: String,
    /// RP-Initiated Logout.
    pub end_session_endpoint: String,
    /// Token introspection (RFC 7662).
    pub introspection_endpoint: String,
    /// Token revocation (RFC 7009).
    pub revocation_endpoint: String,
    /// Scopes clients may ask for.
    pub scopes_supported: Vec<String>,
    /// Only the code flow: the implicit and hybrid flows are refused (RFC 9700 §2.1.2).
    pub response_types_supported: Vec<&'static str>,
    /// Responses come back in the query.
    pub response_modes_supported: Vec<&'static str>,
    /// The grants implemented so far.
    pub grant_types_supported: Vec<&'static str>,
    /// How clients authenticate at the token endpoint.
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Algorithms accepted for `private_key_jwt` assertions.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    /// How callers authenticate at the introspection endpoint (public clients cannot).
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    /// How clients authenticate at the revocation endpoint.
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    /// PKCE: S256 only (RFC 7636; `plain` is refused).
    pub code_challenge_methods_supported: Vec<&'static str>,
    /// OIDC Discovery: pairwise subjects are not offered.
    pub subject_types_supported: Vec<&'static str>,
    /// The algorithms id_tokens can be signed with.
    pub id_token_signing_alg_values_supported: Vec<SigningAlg>,
    /// The claims userinfo and id_tokens may carry.
    pub claims_supported: Vec<&'static str>,
    /// `prompt` values understood.
    pub prompt_values_supported: Vec<&'static str>,
    /// RFC 9207: authorization responses carry `iss`.
    pub authorization_response_iss_parameter_supported: bool,
    /// Request objects are not supported.
    pub request_parameter_supported: bool,
    /// `request_uri` is not supported.
    pub request_uri_parameter_supported: bool,
}

/// The paths of the endpoints, joined to the issuer.
#[derive(Debug, Clone, Copy)]
pub struct Endpoints<'a> {
    /// Authorization endpoint path.
    pub authorization: &'a str,
    /// Token endpoint path.
    pub token: &'a str,
    /// UserInfo endpoint path.
    pub userinfo: &'a str,
    /// JWKS path.
    pub jwks: &'a str,
    /// Logout path.
    pub end_session: &'a str,
    /// Introspection path.
    pub introspection: &'a str,
    /// Revocation path.
    pub revocation: &'a str,
}

/// Client authentication methods, at every endpoint that authenticates clients.
const AUTH_METHODS: [&str; 4] =
    ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"];

/// Signature algorithms accepted in client assertions (RFC 7523); never `none` or HMAC.
pub const ASSERTION_ALGS: [&str; 6] = ["RS256", "PS256", "ES256", "ES384", "EdDSA", "RS384"];

/// Absolute URL of `path` under `issuer`; every URL latchkey publishes is built here, from the
/// configured issuer and never from request headers.
pub fn endpoint(issuer: &str, path: &str) -> String {
    format!("{}{path}", issuer.trim_end_matches('/'))
}

/// The metadata for `issuer`.
pub fn metadata(issuer: &str, paths: &Endpoints<'_>, resources: &[Resource]) -> Metadata {
    let mut scopes: Vec<String> = OPENID_SCOPES.iter().map(|s| (*s).to_owned()).collect();
    scopes.extend(resources.iter().flat_map(|r| r.scopes.iter().cloned()));
    Metadata {
        issuer: issuer.to_owned(),
        authorization_endpoint: endpoint(issuer, paths.authorization),
        token_endpoint: endpoint(issuer, paths.token),
        userinfo_endpoint: endpoint(issuer, paths.userinfo),
        jwks_uri: endpoint(issuer, paths.jwks),
        end_session_endpoint: endpoint(issuer, paths.end_session),
        introspection_endpoint: endpoint(issuer, paths.introspection),
        revocation_endpoint: endpoint(issuer, paths.revocation),
        scopes_supported: scopes,
        response_types_supported: vec!["code"],
        response_modes_supported: vec!["query"],
        grant_types_supported: vec![
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "password",
        ],
        token_endpoint_auth_methods_supported: AUTH_METHODS.to_vec(),
        token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGS.to_vec(),
        introspection_endpoint_auth_methods_supported: AUTH_METHODS[..3].to_vec(),
        revocation_endpoint_auth_methods_supported: AUTH_METHODS.to_vec(),
        code_challenge_methods_supported: vec!["S256"],
        subject_types_supported: vec!["public"],
        id_token_signing_alg_values_supported: vec![
            SigningAlg::RS256,
            SigningAlg::ES256,
            SigningAlg::EdDSA,
        ],
        claims_supported: vec![
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "at_hash",
            "azp",
            "name",
            "preferred_username",
            "email",
        ],
        prompt_values_supported: vec!["none", "login", "consent"],
        authorization_response_iss_parameter_supported: true,
        request_parameter_supported: false,
        request_uri_parameter_supported: false,
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
        let paths = Endpoints {
            authorization: "/a",
            token: "/t",
            userinfo: "/u",
            jwks: "/j",
            introspection: "/i",
            revocation: "/r",
            end_session: "/l",
        };
        let doc = metadata("https://id.example.com/", &paths, &[]);
        assert_eq!(doc.issuer, "https://id.example.com/");
        assert_eq!(doc.token_endpoint, "https://id.example.com/t");
    }
}
