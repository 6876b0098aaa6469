//! The latchkey authorization server as a library: protocol logic, keys and storage, with no
//! HTTP, templates or CLI (those live in `latchkey-server`).
//!
//! # Layout
//!
//! - [`model`]: clients, users and the protocol vocabulary (grant types, auth methods, ...).
//! - [`authority`]: the server's operations, one call per endpoint step.
//! - [`client_cache`]: registered clients behind a short-lived cache.
//! - [`client_keys`]: public keys of `private_key_jwt` clients, fetched and cached.
//! - [`client_secrets`]: client secrets already verified, so argon2 runs once per secret.
//! - [`keys`]: signing keys, their lifecycle (next → current → retiring) and JWS signing.
//! - [`oauth`]: OAuth 2.0 rules: redirect URIs, scopes.
//! - [`oidc`]: OpenID Connect and RFC 8414 discovery metadata.
//! - [`password`]: argon2id password hashing on a bounded blocking pool.
//! - [`secret`]: random secrets, their hashes, constant-time comparison.
//! - [`store`]: the `Store` trait and its SQLite and PostgreSQL engines.
//! - [`throttle`]: login slow-down per account.

pub mod authority;
pub mod client_cache;
pub mod client_keys;
pub mod client_secrets;
pub mod cors_origins;
pub mod forms;
pub mod keys;
pub mod model;
pub mod oauth;
pub mod oidc;
pub mod password;
pub mod secret;
pub mod store;
pub mod throttle;
