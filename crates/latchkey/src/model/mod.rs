//! The things latchkey stores: clients and users, and the vocabulary that describes them.
//!
//! Protocol strings are parsed into these enums at the edge (config, CLI, HTTP) so that no
//! other code matches on raw strings.

use std::fmt;

use serde::{Deserialize, Serialize};

mod flow;
pub mod key;
pub mod scope;

pub use flow::{
    AccessTokenRecord, AttemptEnd, AttemptSlot, AuthorizationCode, CodeLookup, Grant, Issue,
    Issued, OpaqueAccess, Purged, RefreshRevocation, RefreshToken, Resource, Rotation, Session,
    StoredAccess, StoredRefresh, sid_of,
};

/// Grant types a client may be registered for (RFC 6749 §4, RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// RFC 6749 §4.1, always with PKCE for public clients.
    AuthorizationCode,
    /// RFC 6749 §6.
    RefreshToken,
    /// RFC 6749 §4.4, confidential clients only.
    ClientCredentials,
    /// RFC 6749 §4.3, first-party confidential clients only, off unless registered.
    Password,
}

impl GrantType {
    /// Every grant type latchkey knows.
    pub const ALL: [GrantType; 4] = [
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
        GrantType::Password,
    ];

    /// Parses a `grant_type` value latchkey knows.
    pub fn parse(value: &str) -> Option<Self> {
        GrantType::ALL.into_iter().find(|grant| grant.as_str() == value)
    }

    /// The registered name.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::Password => "password",
        }
    }
}

/// How a client authenticates at the token endpoint (RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic with the form-encoded id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// Id and secret in the request body (RFC 6749 §2.3.1).
    ClientSecretPost,
    /// A JWT signed with the client's registered key (RFC 7523 §2.2).
    PrivateKeyJwt,
    /// A public client: no authentication, PKCE is mandatory.
    None,
}

impl AuthMethod {
    /// The registered name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::None => "none",
        }
    }

    /// Whether the method authenticates with a shared secret.
    pub fn uses_secret(self) -> bool {
        matches!(self, AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost)
    }
}

/// OIDC Registration `application_type`: decides which redirect URIs are acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationType {
    /// A web application: https redirect URIs (http on loopback only).
    #[default]
    Web,
    /// A native app: custom schemes and loopback redirect URIs on any port (RFC 8252).
    Native,
}

/// The form of access tokens issued to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenFormat {
    /// A signed JWT (RFC 9068), verifiable through the JWKS.
    #[default]
    Jwt,
    /// A random reference, verifiable through introspection (RFC 7662).
    Opaque,
}

/// JWS algorithms latchkey signs with (RFC 7518 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    /// ECDSA with P-256 and SHA-256.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// Ed25519 (RFC 8037).
    EdDSA,
}

impl SigningAlg {
    /// The `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::ES256 => "ES256",
            SigningAlg::RS256 => "RS256",
            SigningAlg::EdDSA => "EdDSA",
        }
    }
}

impl SigningAlg {
    /// Parses an `alg` value latchkey signs with.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "ES256" => Some(SigningAlg::ES256),
            "RS256" => Some(SigningAlg::RS256),
            "EdDSA" => Some(SigningAlg::EdDSA),
            _ => None,
        }
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The browser origin of a URI (`scheme://host[:port]`, as a browser sends it in `Origin`),
/// or `None` for URIs without one (custom schemes, `file:`), which may never call by CORS.
pub fn origin_of(uri: &str) -> Option<String> {
    let origin = url::Url::parse(uri).ok()?.origin().ascii_serialization();
    (origin != "null").then_some(origin)
}

/// A registered client's metadata, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    /// The public identifier.
    pub client_id: String,
    /// A name shown to users on the consent page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Web or native.
    #[serde(default)]
    pub application_type: ApplicationType,
    /// Exact redirect URIs (RFC 9700 §4.1.3).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the user back to.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// The grants this client may use.
    pub grant_types: Vec<GrantType>,
    /// The scopes this client may request.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// How the client authenticates.
    pub token_endpoint_auth_method: AuthMethod,
    /// Whether users are asked before the client gets access.
    pub require_consent: bool,
    /// Whether the client must use PKCE (always true for public clients).
    pub require_pkce: bool,
    /// Where the client publishes its keys (`private_key_jwt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The client's public keys (`private_key_jwt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<latchkey_resource::JwkSet>,
    /// Overrides the server's access-token format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_format: Option<TokenFormat>,
    /// The id_token signing algorithm; RS256 when absent (OIDC Registration §2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_signed_response_alg: Option<SigningAlg>,
    /// Window in seconds in which a rotated refresh token may be retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_grace_period_secs: Option<u64>,
    /// Whether a consent given before answers later requests without asking. Unset: yes,
    /// except for public clients whose redirect URI is loopback or a custom scheme
    /// ([`crate::oauth::authorize::remembered_consent_applies`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remember_consent: Option<bool>,
    /// Accept `private_key_jwt` assertions whose `aud` is an endpoint URL or a list (RFC 7523
    /// as first written) rather than exactly the issuer; for clients that cannot be changed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legacy_assertion_audience: bool,
    /// Whether a refresh response carries a fresh id_token (OIDC Core §12.2; default true).
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub id_token_on_refresh: bool,
    /// Whether id_tokens carry the `profile` and `email` claims (default true) or leave them
    /// to userinfo (OIDC Core §5.4 allows both).
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub claims_in_id_token: bool,
    /// Whether a sign-in without `offline_access` gets a session-bound refresh token (default
    /// true); with false, only `offline_access` grants get one.
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub session_refresh_tokens: bool,
}

fn yes() -> bool {
    true
}

fn is_yes(value: &bool) -> bool {
    *value
}

impl Client {
    /// The distinct browser origins of its redirect URIs: who may call the token, revocation
    /// and userinfo endpoints from a page.
    pub fn origins(&self) -> Vec<String> {
        let mut origins: Vec<String> =
            self.redirect_uris.iter().filter_map(|uri| origin_of(uri)).collect();
        origins.sort_unstable();
        origins.dedup();
        origins
    }

    /// A public client has no credentials of its own (RFC 6749 §2.1).
    pub fn is_public(&self) -> bool {
        self.token_endpoint_auth_method == AuthMethod::None
    }

    /// Whether the client is registered for `grant`.
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
}

/// Where a stored client came from: static ones follow the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientSource {
    /// `[[clients]]` in the config: upserted at start-up, removed when dropped from it.
    Config,
    /// `latchkey clients add`.
    Cli,
}

impl ClientSource {
    /// The stored string.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientSource::Config => "config",
            ClientSource::Cli => "cli",
        }
    }

    /// Parses the stored string; anything unknown is treated as CLI-managed (never auto-removed).
    pub fn parse(value: &str) -> Self {
        if value == "config" { ClientSource::Config } else { ClientSource::Cli }
    }
}

/// A client with its stored credential.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// The metadata.
    pub client: Client,
    /// argon2id PHC string or `sha256:<hex>`; `None` for public and `private_key_jwt` clients.
    pub secret_hash: Option<String>,
    /// Where it came from.
    pub source: ClientSource,
    /// The secret it had before its last rotation, still accepted until it expires.
    pub previous_secret: Option<PreviousSecret>,
    /// How many times the stored client was written: an update names the revision it read,
    /// so that of two concurrent updates the second fails instead of undoing the first.
    pub revision: i64,
}

/// A rotated-out client secret during its overlap.
#[derive(Clone, PartialEq, Eq)]
pub struct PreviousSecret {
    /// Its hash, like [`ClientRecord::secret_hash`].
    pub hash: String,
    /// When it stops being accepted (unix seconds).
    pub expires_at: i64,
}

impl ClientRecord {
    /// A record of a client as first stored.
    pub fn new(client: Client, secret_hash: Option<String>, source: ClientSource) -> Self {
        ClientRecord { client, secret_hash, source, previous_secret: None, revision: 0 }
    }

    /// The hashes of the secrets accepted at `now`: the current one, and the previous one
    /// during its overlap.
    pub fn secret_hashes(&self, now: i64) -> impl Iterator<Item = &str> {
        let previous = self
            .previous_secret
            .as_ref()
            .filter(|previous| now < previous.expires_at)
            .map(|previous| previous.hash.as_str());
        self.secret_hash.as_deref().into_iter().chain(previous)
    }
}

impl fmt::Debug for ClientRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientRecord")
            .field("client", &self.client)
            .field("secret_hash", &self.secret_hash.as_ref().map(|_| "<redacted>"))
            .field("source", &self.source)
            .field(
                "previous_secret_expires_at",
                &self.previous_secret.as_ref().map(|p| p.expires_at),
            )
            .field("revision", &self.revision)
            .finish()
    }
}

/// A local user account.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Stable subject identifier, never reused (the `sub` claim).
    pub id: String,
    /// Login name, unique.
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Email address, if known.
    pub email: Option<String>,
    /// Display name, if known.
    pub name: Option<String>,
    /// Whether the email address is known to belong to the user (the `email_verified` claim).
    pub email_verified: bool,
    /// A disabled user cannot sign in and holds no live grant.
    pub disabled: bool,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &"<redacted>")
            .field("email", &self.email)
            .field("name", &self.name)
            .field("email_verified", &self.email_verified)
            .field("disabled", &self.disabled)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names_round_trip() {
        let grant: GrantType = serde_json::from_str(r#""client_credentials""#).unwrap();
        assert_eq!(grant, GrantType::ClientCredentials);
        let method: AuthMethod = serde_json::from_str(r#""private_key_jwt""#).unwrap();
        assert_eq!(method, AuthMethod::PrivateKeyJwt);
        assert!(serde_json::from_str::<GrantType>(r#""implicit""#).is_err());
        assert_eq!(serde_json::to_string(&SigningAlg::ES256).unwrap(), r#""ES256""#);
        for grant in [
            GrantType::AuthorizationCode,
            GrantType::RefreshToken,
            GrantType::ClientCredentials,
            GrantType::Password,
        ] {
            assert_eq!(serde_json::to_value(grant).unwrap(), grant.as_str());
        }
        for method in [
            AuthMethod::ClientSecretBasic,
            AuthMethod::ClientSecretPost,
            AuthMethod::PrivateKeyJwt,
            AuthMethod::None,
        ] {
            assert_eq!(serde_json::to_value(method).unwrap(), method.as_str());
        }
    }

    #[test]
    fn debug_never_prints_secrets() {
        let user = User {
            id: "u1".into(),
            username: "alice".into(),
            password_hash: "$argon2id$secret".into(),
            email: None,
            name: None,
            email_verified: true,
            disabled: false,
        };
        assert!(!format!("{user:?}").contains("argon2id"));
    }
}
