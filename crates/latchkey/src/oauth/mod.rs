//! OAuth 2.0 protocol rules, free of HTTP.

pub mod audience;
pub mod authorize;
pub mod client_assertion;
pub mod client_auth;
pub mod error;
pub mod introspect;
pub mod params;
pub mod pkce;
pub mod redirect_uri;
pub mod token;

pub use error::{ErrorCode, OAuthError};
pub use params::Params;
