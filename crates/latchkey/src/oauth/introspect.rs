//! What latchkey says about one of its own tokens: a live access token's claims, why a token
//! is not live, and the introspection response (RFC 7662 §2.2). The checks themselves are in
//! `authority::introspect`.

use latchkey_resource::{AccessTokenClaims, Audience};
use serde::Serialize;

/// A live access token, whatever its format, as the claims a JWT would carry.
#[derive(Debug, Clone)]
pub struct LiveAccess {
    /// The claims (for an opaque token, rebuilt from its record).
    pub claims: AccessTokenClaims,
    /// The login name of its user, if it was issued for one.
    pub username: Option<String>,
}

/// Why a token is not live; the text is for `WWW-Authenticate` descriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dead {
    /// Not a token of this server, or tampered with.
    Invalid,
    /// Past `exp`.
    Expired,
    /// Revoked, itself or with its grant.
    Revoked,
    /// A JWT of another kind (an id_token, say).
    NotAccessToken,
}

impl Dead {
    /// A description for the client.
    pub fn describe(self) -> &'static str {
        match self {
            Dead::Invalid => "the access token is invalid",
            Dead::Expired => "the access token has expired",
            Dead::Revoked => "the access token was revoked",
            Dead::NotAccessToken => {
                "not an access token (typ must be at+jwt): an id_token cannot be used here"
            }
        }
    }
}

/// The RFC 7662 §2.2 response. An inactive token is `{"active": false}` and nothing else.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Introspection {
    /// Whether the token is live.
    pub active: bool,
    /// Granted scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The client it was issued to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The user's login name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `Bearer` for access tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    /// Expiry, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Issue time, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// The user, or the client for client-credentials tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The APIs it is for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// This server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The token's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// For a refresh token: whether it ends with the browser session that issued it (granted
    /// without `offline_access`, OIDC Core §11) or lives on after logout (`false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_bound: Option<bool>,
}

impl Introspection {
    /// `{"active": false}`.
    pub fn inactive() -> Self {
        Introspection::default()
    }
}
