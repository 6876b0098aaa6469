//! A database for one test, on either engine.

use std::future::Future;
use std::sync::Arc;

use latchkey::store::{self, Store};

/// Which engine a [`Database`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A database of its own for one test: an SQLite file in a temporary directory, or a fresh
/// PostgreSQL schema. Both are gone once the value is dropped.
pub struct Database {
    /// What a config's `[database] url` names it by.
    pub url: String,
    engine: Engine,
    _cleanup: Cleanup,
}

enum Cleanup {
    Directory(#[allow(dead_code)] tempfile::TempDir),
    Schema { base: String, schema: String },
}

impl Database {
    /// An empty SQLite database file (created by the first store that opens it).
    pub fn sqlite() -> Database {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("latchkey.db").display());
        Database { url, engine: Engine::Sqlite, _cleanup: Cleanup::Directory(dir) }
    }

    /// A fresh, empty schema on `LATCHKEY_TEST_POSTGRES_URL`, or `None` when that is not set
    /// outside CI (under `CI=true` that is a failure: the PostgreSQL half must run).
    pub async fn postgres() -> Option<Database> {
        let Ok(base) = std::env::var("LATCHKEY_TEST_POSTGRES_URL") else {
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
        execute(&base, &[format!("CREATE SCHEMA {schema}")]).await.unwrap();
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
        Some(Database { url, engine: Engine::Postgres, _cleanup: Cleanup::Schema { base, schema } })
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The SQLite file, for tests that look at it directly.
    pub fn sqlite_path(&self) -> Option<&str> {
        self.url.strip_prefix("sqlite://")
    }

    /// A migrated store on this database; each call opens another handle, as another node
    /// would.
    pub async fn open_store(&self) -> Arc<dyn Store> {
        let store = store::connect(&self.url, store::Options::default()).await.unwrap();
        store.migrate().await.unwrap();
        store
    }
}

/// Runs `statements` in order on one connection of their own.
async fn execute(url: &str, statements: &[String]) -> Result<(), sqlx::Error> {
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url).await?;
    let mut done = Ok(());
    for statement in statements {
        done = sqlx::query(sqlx::AssertSqlSafe(statement.clone())).execute(&pool).await.map(|_| ());
        if done.is_err() {
            break;
        }
    }
    pool.close().await;
    done
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Cleanup::Schema { base, schema } = self else { return };
        // Drop runs inside the test's runtime, which cannot block on itself: the schema is
        // dropped from a thread of its own, and the test waits for it. A server that is still
        // shutting down may hold a lock for a moment; the lock timeout bounds the wait.
        let statements = [
            "SET lock_timeout = '10s'".to_owned(),
            format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
        ];
        let base = base.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                execute(&base, &statements).await.map_err(std::io::Error::other)
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test schema {schema}: {dropped:?}");
        }
    }
}

/// What a test on both engines takes as its argument: the [`Database`] itself, or a fixture
/// made from it (a suite implements this for its own).
pub trait Prepare: Sized {
    fn prepare(db: Database) -> impl Future<Output = Self> + Send;
}

impl Prepare for Database {
    async fn prepare(db: Database) -> Self {
        db
    }
}

/// `T` prepared from `db`: what [`crate::on_both_engines`] passes to each test.
pub async fn prepare<T: Prepare>(db: Database) -> T {
    T::prepare(db).await
}
