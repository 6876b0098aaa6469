//! OAuth 2.0 protocol rules, free of HTTP.

pub mod error;
pub mod pkce;
pub mod redirect_uri;
pub mod scope;

pub use error::{ErrorCode, OAuthError};
