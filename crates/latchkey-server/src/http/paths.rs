//! Endpoint paths, shared by the router and the discovery document so they cannot disagree.

/// OpenID Connect Discovery 1.0 §4.
pub const OPENID_CONFIGURATION: &str = "/.well-known/openid-configuration";
/// RFC 8414 §3.
pub const OAUTH_AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";
/// The `jwks_uri`.
pub const JWKS: &str = "/.well-known/jwks.json";
/// Liveness.
pub const HEALTHZ: &str = "/healthz";
/// Prometheus metrics.
pub const METRICS: &str = "/metrics";
/// Readiness: the database answers and static registrations are loaded.
pub const READYZ: &str = "/readyz";
/// The authorization endpoint.
pub const AUTHORIZE: &str = "/authorize";
/// The token endpoint.
pub const TOKEN: &str = "/oauth/token";
/// Token introspection (RFC 7662).
pub const INTROSPECT: &str = "/oauth/introspect";
/// Token revocation (RFC 7009).
pub const REVOKE: &str = "/oauth/revoke";
/// The UserInfo endpoint.
pub const USERINFO: &str = "/userinfo";
/// The login page.
pub const LOGIN: &str = "/login";
/// The consent page.
pub const CONSENT: &str = "/consent";
/// RP-initiated logout (`end_session_endpoint`).
pub const LOGOUT: &str = "/logout";
