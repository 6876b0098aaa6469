//! The latchkey authorization server as a library: protocol logic, keys and storage, with no
//! HTTP, templates or CLI (those live in `latchkey-server`).
//!
//! # Layout
//!
//! - [`model`]: clients, users and the protocol vocabulary (grant types, auth methods, ...).
//! - [`audit`]: the caller of a request, for its security events.
//! - [`authority`]: the server's operations, one call per endpoint step.
//! - [`clock`]: the time every expiry is checked against (system, or moved by a test).
//! - [`clients`]: the registration rules (one `validate` for every way a client is
//!   registered), the client cache, `private_key_jwt` keys and verified secrets.
//! - [`cors_origins`]: the browser origins allowed to call the token, userinfo and revocation
//!   endpoints.
//! - [`forms`]: anti-CSRF values of the login, consent and logout forms.
//! - [`keys`]: signing keys, their lifecycle (next → current → retiring) and JWS signing.
//! - [`oauth`]: OAuth 2.0 rules and wire types: parameters, PKCE, scopes, audiences,
//!   redirect URIs, client assertions, authorization requests, error codes.
//! - [`oidc`]: OpenID Connect rules and wire types: discovery metadata, id_token and
//!   userinfo claims, logout requests.
//! - [`password`]: argon2id password hashing on a bounded blocking pool.
//! - [`secret`]: random secrets, their hashes, constant-time comparison.
//! - [`store`]: the `Store` trait and its SQLite and PostgreSQL engines.
//! - [`throttle`]: login slow-down per account.
//! - [`users`]: the rules a user account must meet.
//! - [`verified_tokens`]: JWT access tokens whose signature this node has verified.

pub mod audit;
pub mod authority;
pub mod clients;
pub use latchkey_resource::clock;
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
pub mod users;
pub mod verified_tokens;
