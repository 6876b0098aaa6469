//! The PostgreSQL engine, for several stateless nodes sharing one database.
//!
//! sqlx with runtime-checked queries (compile-time checking would tie the build to one live
//! database). Migrations are the SQL files under `migrations/postgres`, embedded in the binary
//! and applied by sqlx's migrator, which holds a PostgreSQL advisory lock while it runs, so
//! nodes starting together apply each migration once.

mod attempts;

use std::borrow::Cow;

use async_trait::async_trait;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Row, SqlSafeStr};

use super::{
    Error, PasswordChange, PurgeCounter, Result, RotationRequest, Store, StoredKey,
    audience_from_json, audience_json, client_record, stored_scopes,
};
use crate::model::key::KeyRecord;
use crate::model::scope::Scopes;
use crate::model::{
    AccessTokenRecord, AttemptEnd, AttemptSlot, AuthorizationCode, ClientRecord, CodeLookup, Grant,
    Issue, Issued, OpaqueAccess, Purged, RefreshRevocation, RefreshToken, Rotation, Session,
    StoredAccess, User,
};

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../../../migrations/postgres/0001_initial.sql")),
    (2, "code flow", include_str!("../../../migrations/postgres/0002_code_flow.sql")),
    (3, "tokens", include_str!("../../../migrations/postgres/0003_tokens.sql")),
    (4, "attempts", include_str!("../../../migrations/postgres/0004_attempts.sql")),
    (5, "browser", include_str!("../../../migrations/postgres/0005_browser.sql")),
    (6, "nodes", include_str!("../../../migrations/postgres/0006_nodes.sql")),
];

const POOL_SIZE: u32 = 16;

/// A PostgreSQL database.
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/db?options...`).
    pub async fn connect(url: &str) -> Result<Self> {
        let options: PgConnectOptions =
            url.parse().map_err(|error| Error::Url(format!("{error}")))?;
        Self::connect_with(options).await
    }

    /// Connects with prepared options (tests use this to pick a schema).
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self> {
        let pool =
            PgPoolOptions::new().max_connections(POOL_SIZE).connect_with(options).await.map_err(
                |error| Error::Backend(format!("cannot connect to PostgreSQL: {error}")),
            )?;
        Ok(PgStore { pool })
    }
}

fn backend(error: sqlx::Error) -> Error {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            Error::Conflict(db.message().to_owned())
        }
        _ => Error::Engine(Box::new(error)),
    }
}

fn migrator() -> Migrator {
    let migrations = MIGRATIONS
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(
                *version,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator::with_migrations(migrations)
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Postgres>;

/// Rows deleted per purge statement.
const PURGE_BATCH: i64 = 500;

/// What the purge deletes, in an order that never leaves a row pointing at a deleted one.
/// `SKIP LOCKED`: nodes purging at the same time share the work instead of waiting.
const PURGE: [(PurgeCounter, &str); 8] = [
    (|purged| &mut purged.codes, "DELETE FROM authorization_codes WHERE code_hash IN
        (SELECT code_hash FROM authorization_codes WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)"),
    (|purged| &mut purged.sessions, "DELETE FROM sessions WHERE id_hash IN
        (SELECT id_hash FROM sessions WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)"),
    (|purged| &mut purged.refresh_tokens, "DELETE FROM refresh_tokens WHERE token_hash IN
        (SELECT rt.token_hash FROM refresh_tokens rt LEFT JOIN grants g ON g.id = rt.grant_id
         WHERE rt.expires_at <= $1 OR g.expires_at <= $1 OR g.id IS NULL LIMIT $2 FOR UPDATE OF rt SKIP LOCKED)"),
    (|purged| &mut purged.access_tokens, "DELETE FROM access_tokens WHERE jti IN
        (SELECT jti FROM access_tokens WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)"),
    (|purged| &mut purged.grants, "DELETE FROM grants WHERE id IN
        (SELECT g.id FROM grants g WHERE g.expires_at <= $1
         AND NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.grant_id = g.id) LIMIT $2 FOR UPDATE SKIP LOCKED)"),
    (|purged| &mut purged.client_assertions, "DELETE FROM client_assertions WHERE (client_id, jti) IN
        (SELECT client_id, jti FROM client_assertions WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)"),
    // A schedule untouched for a day is far past the throttle's window.
    (|purged| &mut purged.attempts, "DELETE FROM login_attempts WHERE key IN
        (SELECT key FROM login_attempts WHERE updated_at <= $1 - 86400 LIMIT $2 FOR UPDATE SKIP LOCKED)"),
    // A node not heard from for a day has stopped (its row's time is in milliseconds).
    (|purged| &mut purged.nodes, "DELETE FROM nodes WHERE node_id IN
        (SELECT node_id FROM nodes WHERE synced_at <= ($1 - 86400) * 1000 LIMIT $2 FOR UPDATE SKIP LOCKED)"),
];

/// Marks a spent code replayed and revokes the grant its exchange stored, if any: its id.
async fn replay_code(tx: &mut Tx<'_>, code_hash: &str, now: i64) -> Result<Option<String>> {
    let grant_id: Option<Option<String>> = sqlx::query_scalar(
        "UPDATE authorization_codes SET replayed_at = COALESCE(replayed_at, $1)
         WHERE code_hash = $2 RETURNING grant_id",
    )
    .bind(now)
    .bind(code_hash)
    .fetch_optional(&mut **tx)
    .await
    .map_err(backend)?;
    let grant_id = grant_id.flatten();
    if let Some(grant_id) = &grant_id {
        revoke_grant(tx, grant_id, now).await?;
    }
    Ok(grant_id)
}

async fn revoke_grant(tx: &mut Tx<'_>, grant_id: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(grant_id)
        .execute(&mut **tx)
        .await
        .map(drop)
        .map_err(backend)
}

#[async_trait]
impl Store for PgStore {
    async fn migrate(&self) -> Result<()> {
        migrator()
            .run(&self.pool)
            .await
            .map_err(|error| Error::Backend(format!("migration failed: {error}")))
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(drop).map_err(backend)
    }

    async fn clock_millis(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)
    }

    async fn purge(&self, now: i64) -> Result<Purged> {
        let mut purged = Purged::default();
        for (counter, sql) in PURGE {
            loop {
                let removed = sqlx::query(sql)
                    .bind(now)
                    .bind(PURGE_BATCH)
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?
                    .rows_affected();
                *counter(&mut purged) += removed;
                if removed < PURGE_BATCH as u64 {
                    break;
                }
            }
        }
        Ok(purged)
    }
}

mod clients;
mod flow;
mod keys;
mod tokens;
mod users;
