//! What the authorization code flow stores: sessions, codes, grants and their tokens.
//!
//! Every secret here is its SHA-256 hex (`*_hash`); the values themselves exist only in the
//! responses that carry them.

/// An API that accepts latchkey's access tokens (RFC 8707 resource indicator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Absolute URI, the token's `aud`.
    pub identifier: String,
    /// The scopes it defines.
    pub scopes: Vec<String>,
}

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 of the cookie value.
    pub id_hash: String,
    /// The user.
    pub user_id: String,
    /// When the user authenticated (OIDC `auth_time`).
    pub auth_time: i64,
    /// Created, Unix seconds.
    pub created_at: i64,
    /// Ends, Unix seconds.
    pub expires_at: i64,
}

/// An issued authorization code and everything it is bound to (RFC 6749 §4.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    /// SHA-256 of the code.
    pub code_hash: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The user who approved it.
    pub user_id: String,
    /// The session it came from (logout revokes what it issued).
    pub session_id_hash: String,
    /// The redirect URI of the request, to compare at the token endpoint (RFC 6749 §4.1.3).
    pub redirect_uri: String,
    /// Granted scopes, space-separated.
    pub scopes: String,
    /// Audience of the access tokens.
    pub audience: Vec<String>,
    /// OIDC nonce, copied into the id_token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// When the user authenticated.
    pub auth_time: i64,
    /// Issued, Unix seconds.
    pub created_at: i64,
    /// Expires, Unix seconds.
    pub expires_at: i64,
}

/// The result of presenting a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// First use within its lifetime: the code, now spent.
    Fresh(Box<AuthorizationCode>),
    /// Used before: whatever the first use issued has been revoked (RFC 6749 §4.1.2).
    Replayed,
    /// Unknown or expired.
    Invalid,
}

/// What a user granted a client: the family that refresh tokens rotate within.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Random id.
    pub id: String,
    /// The client.
    pub client_id: String,
    /// The user.
    pub user_id: String,
    /// The login session it came from, if any.
    pub session_id_hash: Option<String>,
    /// Granted scopes, space-separated.
    pub scopes: String,
    /// Audience of its access tokens.
    pub audience: Vec<String>,
    /// When the user authenticated.
    pub auth_time: i64,
    /// Created, Unix seconds.
    pub created_at: i64,
    /// The refresh-token lifetime ends here.
    pub expires_at: i64,
    /// Set once revoked: nothing it issued works after that.
    pub revoked_at: Option<i64>,
}

/// A refresh token of a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// SHA-256 of the token.
    pub token_hash: String,
    /// Its family.
    pub grant_id: String,
    /// Issued, Unix seconds.
    pub created_at: i64,
    /// Expires, Unix seconds.
    pub expires_at: i64,
}

/// An issued access token, kept until it expires so that it can be revoked with its grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenRecord {
    /// The `jti` claim (or, for opaque tokens, the token's hash).
    pub jti: String,
    /// The grant it belongs to, if any.
    pub grant_id: Option<String>,
    /// The client it was issued to.
    pub client_id: String,
    /// Expires, Unix seconds.
    pub expires_at: i64,
}

/// Everything one token response stores, in one transaction.
#[derive(Debug, Clone)]
pub struct Issue {
    /// The new grant.
    pub grant: Grant,
    /// Its first refresh token, when one is issued.
    pub refresh: Option<RefreshToken>,
    /// The access token.
    pub access: AccessTokenRecord,
    /// The code being exchanged: if it was replayed meanwhile, nothing is stored.
    pub code_hash: Option<String>,
}

/// The result of presenting a refresh token for rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was live: it is now rotated and the successor is stored.
    Rotated,
    /// Presented again inside the grace window: the sealed successor from the first rotation.
    Retry {
        /// The successor token, sealed under a key derived from the presented token.
        successor_sealed: Vec<u8>,
    },
    /// Presented again after rotation: the whole family is now revoked (RFC 9700 §4.14.2).
    Reused,
    /// Unknown, expired, or its grant was revoked.
    Invalid,
}
