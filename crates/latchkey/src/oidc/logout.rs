//! RP-Initiated Logout 1.0: a validated logout request and the id_token_hint it may carry.
//! The checks and the logout itself are `authority::logout`.

use serde::Deserialize;

/// A validated logout request.
#[derive(Debug, Clone, Default)]
pub struct LogoutRequest {
    /// The verified id_token_hint, when one came.
    pub hint: Option<IdTokenHint>,
    /// Where to send the user afterwards, already checked against the client's registration.
    pub post_logout_redirect_uri: Option<String>,
    /// Echoed to the redirect.
    pub state: Option<String>,
}

/// The claims of an `id_token_hint` this server signed (OIDC Core §3.1.2.1, RP-Initiated
/// Logout §2), possibly expired.
#[derive(Debug, Clone, Deserialize)]
pub struct IdTokenHint {
    /// The user.
    pub sub: String,
    /// The client it was issued to.
    pub aud: String,
    /// Its expiry: an expired hint still says who asks, but proves no recent sign-in.
    pub exp: i64,
    /// The session that issued it.
    #[serde(default)]
    pub sid: Option<String>,
}

impl IdTokenHint {
    /// Whether the hint is still within its lifetime.
    pub fn is_live(&self, now: i64) -> bool {
        self.exp > now
    }
}
