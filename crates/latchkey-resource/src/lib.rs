//! Validate access tokens issued by latchkey in a resource server.
//!
//! # Layout
//!
//! - [`claims`]: the claims of a JWT access token (RFC 9068), shared with the issuer so that
//!   what latchkey signs and what this crate accepts cannot drift apart.
//! - [`jwk`]: JSON Web Keys and key sets (RFC 7517) as published at the issuer's `jwks_uri`.
#![warn(missing_docs)]

pub mod claims;
pub mod jwk;

pub use claims::{AccessTokenClaims, Audience};
pub use jwk::{Jwk, JwkSet};
