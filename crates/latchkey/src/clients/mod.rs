//! Registered clients: the rules a registration must meet, and what the server keeps of
//! clients at run time.
//!
//! - [`registration`]: one `validate` for the config, the CLI, the admin API and dynamic
//!   registration.
//! - [`lifecycle`]: changing a client in place and rotating its secret.
//! - [`cache`]: registered clients behind a short-lived cache.
//! - [`keys`]: public keys of `private_key_jwt` clients, fetched and cached.
//! - [`secrets`]: client secrets already verified, so argon2 runs once per secret.

pub mod cache;
pub mod keys;
pub mod lifecycle;
pub mod registration;
pub mod secrets;
