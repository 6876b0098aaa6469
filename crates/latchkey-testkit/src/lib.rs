//! What latchkey's test suites share: a database on either engine (a temporary SQLite file,
//! or a PostgreSQL schema dropped after the test), the macro that runs a test on both, the
//! in-process test server, and one set of client and user fixtures with the requests made
//! against them.
//!
//! The PostgreSQL half needs `LATCHKEY_TEST_POSTGRES_URL`. Without it the PostgreSQL tests are
//! skipped, except under `CI=true`, where a skip is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod database;
pub mod fixtures;
#[cfg(feature = "server")]
mod server;

pub use database::{Database, Engine, Prepare, prepare};
#[cfg(feature = "server")]
pub use server::{TestServer, client, get_json, oauth_http};

/// Declares each listed `async fn name(db: T)` as a test on SQLite and on PostgreSQL, where
/// `T` is a [`Database`] or anything [`Prepare`]d from one.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::Database::sqlite();
                    super::$name($crate::prepare(db).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = $crate::Database::postgres().await {
                        super::$name($crate::prepare(db).await).await;
                    }
                }
            )*
        }
    };
}

/// Whether a test that needs an outside tool (a browser, a Python or JavaScript client) can
/// run: `true` when `available`; otherwise the test is skipped with a note, except under
/// `CI=true`, where a missing tool is a failure (`install` says how to get it).
pub fn tool_available(available: bool, tool: &str, install: &str) -> bool {
    if available {
        return true;
    }
    assert!(
        !std::env::var("CI").is_ok_and(|ci| ci == "true"),
        "{tool} is not installed under CI=true: {install}"
    );
    eprintln!("skipped: {tool} is not installed ({install})");
    false
}
