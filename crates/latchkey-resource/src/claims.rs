//! The claims of a JWT access token, as RFC 9068 §2.2 lists them.

use serde::{Deserialize, Serialize};

/// The JOSE `typ` header value of a JWT access token (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Whether a JOSE `typ` header names a JWT access token (RFC 9068 §2.1: `at+jwt`, or its
/// full media type `application/at+jwt`; case-insensitive, RFC 7515 §4.1.9). Both the issuer
/// and resource servers ask this, so that an id_token can never pass as an access token, nor
/// an access token as an id_token.
pub fn is_access_token_typ(typ: Option<&str>) -> bool {
    typ.is_some_and(|typ| {
        typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || typ.eq_ignore_ascii_case("application/at+jwt")
    })
}

/// Claims of a JWT access token (RFC 9068 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// The issuer identifier, exactly as in the issuer's metadata.
    pub iss: String,
    /// The resource owner, or the client itself for client-credentials tokens.
    pub sub: String,
    /// The resource server(s) this token is meant for.
    pub aud: Audience,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issue time, seconds since the Unix epoch.
    pub iat: i64,
    /// Not before, seconds since the Unix epoch (latchkey does not set it; other issuers may).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Unique token id, used for revocation.
    pub jti: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// Space-separated granted scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// When the user authenticated, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// latchkey's identifier of the sign-in (grant) the token belongs to: revoking the grant
    /// (logout, refresh-token reuse, code replay) revokes the token. Not a credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
}

/// The `aud` claim: a single string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// One audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `identifier` is among the audiences.
    pub fn contains(&self, identifier: &str) -> bool {
        match self {
            Audience::One(aud) => aud == identifier,
            Audience::Many(auds) => auds.iter().any(|aud| aud == identifier),
        }
    }

    /// The audiences, as a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Audience::One(aud) => vec![aud.clone()],
            Audience::Many(auds) => auds.clone(),
        }
    }
}

impl AccessTokenClaims {
    /// The granted scopes, one by one.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.as_deref().unwrap_or("").split(' ').filter(|s| !s.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_access_token_typ_in_both_spellings_and_nothing_else() {
        for typ in ["at+jwt", "AT+JWT", "application/at+jwt"] {
            assert!(is_access_token_typ(Some(typ)), "{typ}");
        }
        for typ in [None, Some("JWT"), Some("application/jwt"), Some("at+jwt ")] {
            assert!(!is_access_token_typ(typ), "{typ:?}");
        }
    }

    #[test]
    fn audience_is_a_string_or_an_array() {
        let one: Audience = serde_json::from_str(r#""https://api""#).unwrap();
        assert!(one.contains("https://api"));
        assert!(!one.contains("https://other"));
        let many: Audience = serde_json::from_str(r#"["a","b"]"#).unwrap();
        assert!(many.contains("b"));
        assert!(!many.contains("c"));
    }
}
