//! axum integration (feature `axum`): [`AccessToken`] as an extractor and [`Rejection`] as a
//! response.
//!
//! Put an `Arc<Verifier>` in the router state (or anything it can be taken from with
//! `FromRef`); a handler that takes an `AccessToken` only runs for a valid token, and checks
//! the scope its route needs with [`AccessToken::require_scope`]:
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::{Router, routing::get};
//! use latchkey_resource::{AccessToken, Rejection, Validator, ValidatorConfig, Verifier};
//!
//! async fn photos(token: AccessToken) -> Result<String, Rejection> {
//!     token.require_scope("read:photos")?;
//!     Ok(format!("photos of {}", token.sub()))
//! }
//!
//! let verifier = Arc::new(Verifier::Jwt(Validator::new(ValidatorConfig::new(
//!     "https://auth.example.com",
//!     "https://photos.example.com/api",
//! ))));
//! let app: Router = Router::new().route("/photos", get(photos)).with_state(verifier);
//! ```

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::rejection::Rejection;
use crate::validator::{AccessToken, bearer_token};
use crate::verifier::Verifier;

/// The realm named in `WWW-Authenticate` challenges.
const REALM: &str = "api";

impl<S> FromRequestParts<S> for AccessToken
where
    Arc<Verifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Arc::<Verifier>::from_ref(state);
        let in_query = parts.uri.query().is_some_and(|query| {
            query.split('&').any(|pair| pair.split('=').next() == Some("access_token"))
        });
        if in_query {
            return Err(Rejection::TokenInQuery);
        }
        let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
        let first = values.next();
        if values.next().is_some() {
            return Err(Rejection::MalformedHeader);
        }
        let header = match first {
            None => None,
            Some(value) => Some(value.to_str().map_err(|_| Rejection::MalformedHeader)?),
        };
        verifier.validate(bearer_token(header)?).await
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::UNAUTHORIZED);
        // The header is the standard answer (RFC 6750 §3); the same in a JSON body is what
        // people read in a browser or a log.
        let mut response = match self.error_code() {
            Some(code) => (
                status,
                axum::Json(serde_json::json!({
                    "error": code,
                    "error_description": self.description(),
                })),
            )
                .into_response(),
            None => status.into_response(),
        };
        // 503 is the issuer's trouble, not a challenge to the caller.
        if status != StatusCode::SERVICE_UNAVAILABLE
            && let Ok(value) = HeaderValue::from_str(&self.challenge(REALM))
        {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}
