//! OAuth 2.0 protocol rules, free of HTTP.

pub mod redirect_uri;
pub mod scope;
