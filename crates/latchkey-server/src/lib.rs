//! The latchkey binary's library half: everything with I/O at its edge.
//!
//! # Layout
//!
//! - [`cli`]: command-line parsing; [`admin`]: the admin commands; [`demo`]: `latchkey demo`.
//! - [`config`]: TOML + environment configuration, validated into typed values.
//! - [`startup`]: opening the store, loading keys and static registrations.
//! - [`run`]: serving HTTP or HTTPS with graceful shutdown.
//! - [`http`]: the router, one module per endpoint.

pub mod admin;
pub mod build;
pub mod cli;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
#[cfg(feature = "demo")]
pub mod demo_client;
pub mod http;
pub mod run;
pub mod startup;
pub mod tls;
