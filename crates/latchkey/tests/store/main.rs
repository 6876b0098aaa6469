//! The store conformance suite: every test runs on SQLite and on PostgreSQL.
//!
//! The PostgreSQL half needs `LATCHKEY_TEST_POSTGRES_URL`; each test gets its own schema,
//! dropped afterwards (`latchkey-testkit`). When the variable is missing the PostgreSQL tests
//! are skipped, except under `CI=true`, where a skip is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, unreachable_pub)]

mod attempts;
mod conformance;
mod flow;
mod keys;
mod tokens;

use std::sync::Arc;

use latchkey::store::Store;
pub use latchkey_testkit::on_both_engines;
use latchkey_testkit::{Database, Prepare};

/// A scope set from its space-separated form.
pub fn scopes(value: &str) -> latchkey::model::scope::Scopes {
    latchkey::model::scope::Scopes::from_stored(value).unwrap()
}

/// A migrated, empty store and the database that keeps it alive.
pub struct TestDb {
    pub store: Arc<dyn Store>,
    pub db: Database,
}

impl TestDb {
    /// Another handle on the same database, as a second node would have.
    pub async fn open_another(&self) -> Arc<dyn Store> {
        self.db.open_store().await
    }
}

impl Prepare for TestDb {
    async fn prepare(db: Database) -> Self {
        TestDb { store: db.open_store().await, db }
    }
}
