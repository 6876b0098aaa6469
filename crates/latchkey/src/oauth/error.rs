//! The error codes of the OAuth 2.0 family of specifications, and nothing else.

use std::fmt;

/// An error code a client can act on, as the specifications name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request is missing a required parameter, includes an invalid parameter value,
    /// includes a parameter more than once, or is otherwise malformed (RFC 6749 §4.1.2.1, §5.2).
    InvalidRequest,
    /// Client authentication failed (RFC 6749 §5.2).
    InvalidClient,
    /// The provided authorization grant or refresh token is invalid, expired, revoked, does not
    /// match the redirection URI used in the authorization request, or was issued to another
    /// client (RFC 6749 §5.2).
    InvalidGrant,
    /// The client is not authorized to request an authorization code or to use this grant type
    /// (RFC 6749 §4.1.2.1, §5.2).
    UnauthorizedClient,
    /// The authorization grant type is not supported by the authorization server (RFC 6749 §5.2).
    UnsupportedGrantType,
    /// The authorization server does not support obtaining an authorization code using this
    /// method (RFC 6749 §4.1.2.1).
    UnsupportedResponseType,
    /// The requested scope is invalid, unknown, or malformed (RFC 6749 §4.1.2.1, §5.2).
    InvalidScope,
    /// The resource owner or authorization server denied the request (RFC 6749 §4.1.2.1).
    AccessDenied,
    /// The requested resource is invalid, missing, unknown, or malformed (RFC 8707 §2).
    InvalidTarget,
    /// The authorization server requires end-user authentication (OIDC Core §3.1.2.6).
    LoginRequired,
    /// The authorization server requires end-user consent (OIDC Core §3.1.2.6).
    ConsentRequired,
    /// The access token is expired, revoked, malformed, or invalid (RFC 6750 §3.1).
    InvalidToken,
    /// The request requires higher privileges than provided by the access token (RFC 6750 §3.1).
    InsufficientScope,
    /// The authorization server encountered an unexpected condition (RFC 6749 §4.1.2.1).
    ServerError,
    /// The authorization server is currently unable to handle the request due to a temporary
    /// overloading or maintenance of the server (RFC 6749 §4.1.2.1).
    TemporarilyUnavailable,
    /// The OP does not support use of the request parameter (OIDC Core §3.1.2.6).
    RequestNotSupported,
    /// The OP does not support use of the request_uri parameter (OIDC Core §3.1.2.6).
    RequestUriNotSupported,
}

impl ErrorCode {
    /// The registered string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A protocol error: the code and a description that tells the developer how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    /// What went wrong, as the spec names it.
    pub code: ErrorCode,
    /// Human-readable, ASCII, without secrets (RFC 6749 §5.2 `error_description`).
    pub description: String,
}

impl OAuthError {
    /// An error with a description, kept to the characters RFC 6749 §4.1.2.1 and §5.2 allow
    /// in `error_description` (%x20-21 / %x23-5B / %x5D-7E): any other is replaced, so a
    /// description can never carry quotes, backslashes, controls or non-ASCII text to a client.
    /// Descriptions never quote request values either; this is the backstop.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        let mut description = description.into();
        if !description.bytes().all(is_description_char) {
            let mut kept = String::with_capacity(description.len());
            for c in description.chars() {
                match c {
                    '"' => kept.push('\''),
                    '§' => kept.push_str("section "),
                    c if c.is_ascii() && is_description_char(c as u8) => kept.push(c),
                    _ => kept.push('?'),
                }
            }
            description = kept;
        }
        OAuthError { code, description }
    }
}

/// RFC 6749 Appendix A.7: `error-description = 1*( %x20-21 / %x23-5B / %x5D-7E )`.
pub fn is_description_char(byte: u8) -> bool {
    matches!(byte, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_keep_to_the_rfc_character_set() {
        let error = OAuthError::new(ErrorCode::InvalidRequest, "a \"b\" \\ c\u{e9}\n<d>");
        assert_eq!(error.description, "a 'b' ? c??<d>");
        assert!(error.description.bytes().all(is_description_char));
        let cited = OAuthError::new(ErrorCode::InvalidRequest, "use S256 (RFC 7636 §4.3)");
        assert_eq!(cited.description, "use S256 (RFC 7636 section 4.3)");
    }
}
