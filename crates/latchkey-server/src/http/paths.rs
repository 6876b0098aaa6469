//! Endpoint paths, shared by the router and the discovery document so they cannot disagree.

/// OpenID Connect Discovery 1.0 §4.
pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
/// RFC 8414 §3.
pub const OAUTH_AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
/// The `jwks_uri`.
pub const JWKS: &str = "/.well-known/jwks.json";
/// Liveness.
pub const HEALTHZ: &str = "/healthz";
/// Readiness: the database answers and static registrations are loaded.
pub const READYZ: &str = "/readyz";
