//! Validate access tokens issued by latchkey in a resource server.
//!
//! # Layout
//!
//! - [`clock`]: [`Clock`], the time tokens are checked against (a test can move it).
//! - [`claims`]: the claims of a JWT access token (RFC 9068), shared with the issuer so that
//!   what latchkey signs and what this crate accepts cannot drift apart.
//! - [`jwk`]: JSON Web Keys and key sets (RFC 7517) as published at the issuer's `jwks_uri`.
//! - [`validator`]: [`Validator`], which checks JWT access tokens against the issuer's keys.
//! - [`rejection`]: [`Rejection`], why a token was refused, as RFC 6750 errors.
//! - [`introspection`]: [`Introspector`], for opaque tokens (RFC 7662) with a bounded cache.
//! - [`verifier`]: [`Verifier`], either of the two, chosen by configuration.
//! - `axum` (feature `axum`): [`AccessToken`] as an extractor, [`Rejection`] as a response.
//!
//! # Example
//!
//! ```no_run
//! use latchkey_resource::{Rejection, Validator, ValidatorConfig, bearer_token};
//!
//! # async fn handle(authorization: Option<&str>) -> Result<String, Rejection> {
//! // Once, at start-up: the issuer and this API's identifier (the tokens' `aud`).
//! let validator = Validator::new(ValidatorConfig::new(
//!     "https://auth.example.com",
//!     "https://photos.example.com/api",
//! ));
//! // Per request: the bearer token, validated, with the scope this route needs.
//! let token = validator.validate_with_scope(bearer_token(authorization)?, "read:photos").await?;
//! Ok(format!("photos of {} (asked by {})", token.sub(), token.client_id()))
//! # }
//! ```
//!
//! A [`Rejection`] knows its HTTP status and its RFC 6750 `WWW-Authenticate` challenge.
#![warn(missing_docs)]

#[cfg(feature = "axum")]
pub mod axum;
pub mod claims;
pub mod clock;
pub mod introspection;
pub mod jwk;
mod keys;
pub mod rejection;
pub mod validator;
pub mod verifier;

pub use claims::{AccessTokenClaims, Audience};
pub use clock::{Clock, ManualClock, SystemClock};
pub use introspection::{Introspector, IntrospectorConfig};
pub use jwk::{Jwk, JwkSet};
pub use rejection::Rejection;
pub use validator::{AccessToken, Validator, ValidatorConfig, bearer_token};
pub use verifier::Verifier;
