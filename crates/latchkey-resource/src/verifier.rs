//! One type for either way of checking tokens, so an API can switch by configuration.

use crate::introspection::Introspector;
use crate::rejection::Rejection;
use crate::validator::{AccessToken, Validator};

/// Checks access tokens locally (JWT) or by asking the issuer (introspection).
pub enum Verifier {
    /// JWT access tokens against the issuer's published keys.
    Jwt(Validator),
    /// Any access token (opaque ones included) through RFC 7662 introspection.
    Introspection(Introspector),
}

impl Verifier {
    /// Validates `token`.
    pub async fn validate(&self, token: &str) -> Result<AccessToken, Rejection> {
        match self {
            Verifier::Jwt(validator) => validator.validate(token).await,
            Verifier::Introspection(introspector) => introspector.validate(token).await,
        }
    }
}
