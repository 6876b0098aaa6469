//! Why a request's access token was not accepted, mapped to RFC 6750 §3.1.

use std::fmt;

/// A refused access token (or a missing one), with what to tell the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No token came with the request: a bare `Bearer` challenge (RFC 6750 §3.1).
    Missing,
    /// The `Authorization` header is not `Bearer <token>`: `invalid_request`, 400.
    MalformedHeader,
    /// The token came in the URL query (`?access_token=`), which OAuth 2.1 §5.1.1 forbids:
    /// `invalid_request`, 400, saying where to put it.
    TokenInQuery,
    /// Not a JWT, or its parts do not decode.
    Malformed,
    /// The header names an algorithm this validator does not accept (`none`, HMAC, ...), or
    /// one that differs from the signing key's.
    AlgorithmNotAllowed,
    /// The header names a key the issuer does not publish.
    UnknownKey,
    /// The signature does not verify.
    BadSignature,
    /// `typ` is not `at+jwt`: an id_token or some other JWT.
    NotAnAccessToken,
    /// `iss` is not the configured issuer.
    WrongIssuer,
    /// `aud` does not contain this API: which audience was expected and which the token has
    /// (the token's own claim, signed by the issuer), so the description says what to fix.
    WrongAudience {
        /// This API's identifier.
        expected: String,
        /// The token's `aud` values.
        found: Vec<String>,
    },
    /// Past `exp`.
    Expired,
    /// Before `nbf`, or `iat` in the future.
    NotYetValid,
    /// Revoked or unknown, as the issuer's introspection says.
    Inactive,
    /// The token is valid but lacks this scope: 403 `insufficient_scope`.
    InsufficientScope(String),
    /// The issuer's keys (or its introspection endpoint) could not be had: 503, not the
    /// caller's fault.
    IssuerUnavailable,
}

impl Rejection {
    /// The RFC 6750 error code, `None` for a missing token (a bare challenge).
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            Rejection::Missing | Rejection::IssuerUnavailable => None,
            Rejection::MalformedHeader | Rejection::TokenInQuery => Some("invalid_request"),
            Rejection::InsufficientScope(_) => Some("insufficient_scope"),
            _ => Some("invalid_token"),
        }
    }

    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            Rejection::Missing => 401,
            Rejection::MalformedHeader | Rejection::TokenInQuery => 400,
            Rejection::InsufficientScope(_) => 403,
            Rejection::IssuerUnavailable => 503,
            _ => 401,
        }
    }

    /// A human-readable reason, safe to send back (it never contains the token).
    pub fn description(&self) -> String {
        match self {
            Rejection::Missing => "no access token: send Authorization: Bearer <token>".into(),
            Rejection::MalformedHeader => {
                "the Authorization header must be \"Bearer <token>\"".into()
            }
            Rejection::TokenInQuery => {
                "the access token may not be sent in the URL query: send it as Authorization: Bearer <token>".into()
            }
            Rejection::Malformed => "the access token is malformed".into(),
            Rejection::AlgorithmNotAllowed => {
                "the access token's signing algorithm is not accepted".into()
            }
            Rejection::UnknownKey => "the access token was signed by an unknown key".into(),
            Rejection::BadSignature => "the access token's signature is invalid".into(),
            Rejection::NotAnAccessToken => {
                "not an access token (typ must be at+jwt); an id_token is not accepted".into()
            }
            Rejection::WrongIssuer => "the access token comes from another issuer".into(),
            Rejection::WrongAudience { expected, found } => format!(
                "the access token is for {} but this API is {expected}: request it with resource={expected}",
                if found.is_empty() { "no audience".to_owned() } else { found.join(", ") }
            ),
            Rejection::Expired => "the access token has expired".into(),
            Rejection::NotYetValid => "the access token is not valid yet".into(),
            Rejection::Inactive => "the access token is revoked or unknown".into(),
            Rejection::InsufficientScope(scope) => format!("this request needs scope {scope}"),
            Rejection::IssuerUnavailable => {
                "the token issuer cannot be reached to check the token".into()
            }
        }
    }

    /// The `WWW-Authenticate` value for this rejection (RFC 6750 §3).
    pub fn challenge(&self, realm: &str) -> String {
        let realm = quote(realm);
        match (self, self.error_code()) {
            (Rejection::InsufficientScope(scope), Some(code)) => format!(
                "Bearer realm=\"{realm}\", error=\"{code}\", error_description=\"{}\", scope=\"{}\"",
                quote(&self.description()),
                quote(scope)
            ),
            (_, Some(code)) => format!(
                "Bearer realm=\"{realm}\", error=\"{code}\", error_description=\"{}\"",
                quote(&self.description())
            ),
            (_, None) => format!("Bearer realm=\"{realm}\""),
        }
    }
}

/// RFC 6750 §3: quoted-string values; these never carry quotes or backslashes of their own,
/// but a configured realm or scope might.
fn quote(value: &str) -> String {
    value.replace(['"', '\\'], "'")
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description())
    }
}

impl std::error::Error for Rejection {}
