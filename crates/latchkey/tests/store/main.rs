//! The store conformance suite: every test runs on SQLite and on PostgreSQL.
//!
//! The PostgreSQL half needs `LATCHKEY_TEST_POSTGRES_URL`; each test gets its own schema. When
//! the variable is missing the PostgreSQL tests are skipped, except under `CI=true`, where a
//! skip is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, unreachable_pub)]

mod attempts;
mod conformance;
mod flow;
mod keys;
mod tokens;

use std::sync::Arc;

use latchkey::store::postgres::PgStore;
use latchkey::store::sqlite::SqliteStore;
use latchkey::store::{Store, Synchronous};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// A migrated, empty store and what keeps it alive.
/// A scope set from its space-separated form.
pub fn scopes(value: &str) -> latchkey::model::scope::Scopes {
    latchkey::model::scope::Scopes::from_stored(value).unwrap()
}

pub struct TestDb {
    pub store: Arc<dyn Store>,
    pub location: Location,
    _dir: Option<tempfile::TempDir>,
}

pub enum Location {
    Sqlite(String),
    Postgres(Box<PgConnectOptions>),
}

impl TestDb {
    /// Another handle on the same database, as a second node would have.
    pub async fn open_another(&self) -> Arc<dyn Store> {
        open(&self.location).await
    }
}

async fn open(location: &Location) -> Arc<dyn Store> {
    match location {
        Location::Sqlite(path) => {
            Arc::new(SqliteStore::open(path, Synchronous::Normal).await.unwrap())
        }
        Location::Postgres(options) => {
            Arc::new(PgStore::connect_with(options.as_ref().clone()).await.unwrap())
        }
    }
}

pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db").to_str().unwrap().to_owned();
    let location = Location::Sqlite(path);
    let store = open(&location).await;
    store.migrate().await.unwrap();
    TestDb { store, location, _dir: Some(dir) }
}

/// A fresh schema on the test server, or `None` when no server is configured outside CI.
pub async fn postgres() -> Option<TestDb> {
    let Ok(url) = std::env::var("LATCHKEY_TEST_POSTGRES_URL") else {
        if std::env::var("CI").is_ok_and(|ci| ci == "true") {
            panic!(
                "LATCHKEY_TEST_POSTGRES_URL is not set under CI=true: the PostgreSQL half must run"
            );
        }
        eprintln!("skipped: LATCHKEY_TEST_POSTGRES_URL is not set");
        return None;
    };
    let schema = format!(
        "lk_test_{}",
        latchkey::secret::hex(&latchkey::secret::random_bytes::<8>().unwrap())
    );
    let admin = PgPoolOptions::new().max_connections(1).connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let options: PgConnectOptions = url.parse().unwrap();
    let location =
        Location::Postgres(Box::new(options.options([("search_path", schema.as_str())])));
    let store = open(&location).await;
    store.migrate().await.unwrap();
    Some(TestDb { store, location, _dir: None })
}

/// Declares each listed `async fn name(db: TestDb)` as a test on both engines.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = $crate::postgres().await {
                        super::$name(db).await;
                    }
                }
            )*
        }
    };
}
