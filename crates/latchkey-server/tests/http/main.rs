//! HTTP and CLI tests against real servers on 127.0.0.1 and real databases: an SQLite file,
//! and PostgreSQL (one schema per test) when `LATCHKEY_TEST_POSTGRES_URL` is set. Without it
//! the PostgreSQL tests are skipped, except under `CI=true`, where that is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, unreachable_pub)]

mod abuse;
mod browser;
mod cli;
mod cluster;
mod code_flow;
mod crash;
mod discovery;
mod flood;
mod forms;
mod grants;
mod hardening;
mod hostile;
mod interop;
mod nodes;
mod observability;
mod photo_api;
mod process;
mod races;
mod relying_parties;
mod service;
mod slow;
mod spa;
mod users;

pub use latchkey_testkit::{
    Database as TestDb, TestServer, client, get_json, oauth_http, on_both_engines,
};
