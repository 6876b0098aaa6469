//! What the authorization code flow stores: sessions, codes, grants and their tokens.
//!
//! Every secret here is its SHA-256 hex (`*_hash`); the values themselves exist only in the
//! responses that carry them.

use super::scope::Scopes;

/// An API that accepts latchkey's access tokens (RFC 8707 resource indicator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Absolute URI, the token's `aud`.
    pub identifier: String,
    /// The scopes it defines.
    pub scopes: Vec<String>,
    /// The client the API itself authenticates as (to introspect its tokens), if any.
    pub client_id: Option<String>,
    /// Plain-words descriptions of its scopes, for the consent page.
    pub descriptions: std::collections::BTreeMap<String, String>,
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

impl Session {
    /// The session's public id: the `sid` claim of the id_tokens it issues (OpenID Connect
    /// Front-/Back-Channel Logout §2.1). See [`sid_of`].
    pub fn sid(&self) -> String {
        sid_of(&self.id_hash)
    }
}

/// The `sid` of the session whose cookie hashes to `id_hash`: a further hash, so the id_token
/// that carries it reveals nothing that opens the session, yet a logout request can find the
/// session by it without the cookie.
pub fn sid_of(id_hash: &str) -> String {
    crate::secret::hash(&format!("sid:{id_hash}"))[..32].to_owned()
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
    /// Granted scopes.
    pub scopes: Scopes,
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

/// What the store holds for a presented code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeLookup {
    /// Unspent and within its lifetime. [`crate::store::TokenStore::issue`] spends it, in the
    /// transaction that stores what it grants.
    Unspent(Box<AuthorizationCode>),
    /// Spent before: presenting it again is a replay
    /// ([`crate::store::FlowStore::replay_code`], RFC 6749 §4.1.2).
    Spent {
        /// The client it was issued to: only its replay revokes what the code granted.
        client_id: String,
    },
    /// Unknown or expired.
    Invalid,
}

/// The result of storing a new grant with [`crate::store::TokenStore::issue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issued {
    /// Stored, and the code (if any) spent.
    Done,
    /// Nothing stored: the code was spent by a concurrent exchange, whose grant (`family`)
    /// has been revoked as for any replay, or deleted with its user.
    CodeSpent {
        /// The revoked grant, if the code's exchange had stored one.
        family: Option<String>,
    },
    /// Nothing stored: the client was removed in the meantime.
    ClientRemoved,
    /// Nothing stored: the user was disabled in the meantime.
    UserDisabled,
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
    /// Granted scopes.
    pub scopes: Scopes,
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

impl Grant {
    /// Whether the grant ends with the browser session that made it: it came from a sign-in
    /// and does not carry `offline_access` (OIDC Core §11). Such a grant's refresh token stops
    /// working at logout or when the session expires; an offline one lives its own lifetime.
    pub fn is_session_bound(&self) -> bool {
        self.session_id_hash.is_some() && !self.scopes.contains("offline_access")
    }
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
    /// When it was rotated (spent), if it was; ignored when a token is stored.
    pub rotated_at: Option<i64>,
}

/// A refresh token as the store finds it: with its grant, and whether the login session the
/// grant came from is live (read in the same query, so a refresh costs one read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRefresh {
    /// The token, in any state.
    pub token: RefreshToken,
    /// Its family.
    pub grant: Grant,
    /// The grant's login session exists and has not expired (false when it has none).
    pub session_live: bool,
}

impl StoredRefresh {
    /// Whether the grant's sign-in still holds: always for an offline grant or one without a
    /// session, while its session lives for a session-bound one (OIDC Core §11).
    pub fn session_holds(&self) -> bool {
        !self.grant.is_session_bound() || self.session_live
    }
}

/// An issued access token, kept until it expires so that it can be revoked with its grant.
///
/// JWTs issued for a user are recorded (their grant can be revoked); client-credentials JWTs
/// are recorded only once revoked. Opaque tokens are always recorded, with what they grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenRecord {
    /// The `jti` claim; for opaque tokens a random id of their own.
    pub jti: String,
    /// The grant it belongs to, if any.
    pub grant_id: Option<String>,
    /// The client it was issued to.
    pub client_id: String,
    /// Expires, Unix seconds.
    pub expires_at: i64,
    /// For opaque tokens: the token's hash and what it grants.
    pub opaque: Option<OpaqueAccess>,
}

/// What an opaque access token stands for (a JWT carries the same in its claims).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpaqueAccess {
    /// SHA-256 of the token.
    pub token_hash: String,
    /// The user, or the client itself for client credentials.
    pub subject: String,
    /// Granted scopes.
    pub scopes: Scopes,
    /// The APIs it is for.
    pub audience: Vec<String>,
    /// Issued, Unix seconds.
    pub issued_at: i64,
    /// When the user authenticated, for tokens issued for a user.
    pub auth_time: Option<i64>,
}

/// A recorded access token with what introspection needs to know about it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAccess {
    /// The record.
    pub record: AccessTokenRecord,
    /// Revoked itself or through its grant.
    pub revoked: bool,
    /// The login name of the user it was issued for, if any.
    pub username: Option<String>,
}

/// What revoking a refresh token did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshRevocation {
    /// Its grant (the whole family and its access tokens) is revoked now or was already.
    Revoked,
    /// The token belongs to another client: nothing changed.
    OtherClient,
    /// No such refresh token.
    Unknown,
}

impl Purged {
    /// All rows removed.
    pub fn total(&self) -> u64 {
        self.codes
            + self.sessions
            + self.grants
            + self.refresh_tokens
            + self.access_tokens
            + self.client_assertions
            + self.attempts
            + self.nodes
    }
}

/// Rows the purge removed, by table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Authorization codes.
    pub codes: u64,
    /// Login sessions.
    pub sessions: u64,
    /// Grants, with their refresh tokens.
    pub grants: u64,
    /// Refresh tokens.
    pub refresh_tokens: u64,
    /// Access-token and revocation records.
    pub access_tokens: u64,
    /// Client-assertion ids.
    pub client_assertions: u64,
    /// Attempt schedules of accounts and clients not tried for a day.
    pub attempts: u64,
    /// Nodes not heard from for a day.
    pub nodes: u64,
}

/// Whether a throttled attempt may be checked now (see `throttle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptSlot {
    /// Check it: the attempt holds the key's slot, after this many recent failures.
    Granted {
        /// Failures within the window before this attempt.
        failures: u32,
    },
    /// Another attempt for the key is being checked right now.
    Busy,
    /// The back-off runs until this time (Unix seconds).
    Wait {
        /// When the next attempt may be checked.
        until: i64,
    },
}

impl AttemptSlot {
    /// The answer to an attempt that did not get the slot, from the schedule's row
    /// (`busy_until`, `next_at`) read after the refused upsert: busy while another check holds
    /// its lease, else wait for the back-off. No row means the check that held the slot
    /// succeeded and cleared it in between: busy, so the caller comes straight back.
    pub fn refused(row: Option<(i64, i64)>, now: i64) -> AttemptSlot {
        match row {
            None => AttemptSlot::Busy,
            Some((busy_until, _)) if busy_until > now => AttemptSlot::Busy,
            Some((_, next_at)) => AttemptSlot::Wait { until: next_at.max(now) },
        }
    }
}

/// How a throttled attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptEnd {
    /// The secret was right: the key's record goes.
    Succeeded,
    /// It was wrong (or its check was abandoned): record the count and the next allowed time.
    Failed {
        /// Failures within the window, this one included.
        failures: u32,
        /// No attempt is checked before this time (Unix seconds).
        next_at: i64,
    },
}

/// Everything one token response stores, in one transaction.
#[derive(Debug, Clone)]
pub struct Issue {
    /// The new grant.
    pub grant: Grant,
    /// Its first refresh token, when one is issued.
    pub refresh: Option<RefreshToken>,
    /// The access token's record, for the tokens that have one (opaque ones; a JWT is
    /// recorded only if revoked).
    pub access: Option<AccessTokenRecord>,
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
    /// The rotation's plan declined it (another client's token, an ended sign-in, a scope
    /// or resource outside the grant): nothing changed.
    Declined,
}
