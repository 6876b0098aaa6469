//! The PostgreSQL engine, for several stateless nodes sharing one database.
//!
//! sqlx with runtime-checked queries (compile-time checking would tie the build to one live
//! database). Migrations are the SQL files under `migrations/postgres`, embedded in the binary
//! and applied by sqlx's migrator, which holds a PostgreSQL advisory lock while it runs, so
//! nodes starting together apply each migration once.

/// The database's clock in milliseconds, as SQL: one clock for every node, for
/// [`Store::clock_millis`] and the node rows.
macro_rules! db_now_ms {
    () => {
        "(extract(epoch from clock_timestamp()) * 1000)::bigint"
    };
}

mod attempts;

use std::borrow::Cow;
use std::time::Instant;

use async_trait::async_trait;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Row, SqlSafeStr};

use super::purge::{Batches, PurgePlan};
use super::{
    Error, PasswordChange, PurgeCounter, Result, RotationRequest, Store, StoredKey,
    audience_from_json, audience_json, client_record, stored_scopes,
};
use crate::model::key::KeyRecord;
use crate::model::scope::Scopes;
use crate::model::{
    AccessTokenRecord, AttemptEnd, AttemptSlot, AuthorizationCode, ClientRecord, CodeLookup, Grant,
    Issue, Issued, OpaqueAccess, Purged, RefreshRevocation, RefreshToken, Rotation, Session,
    StoredAccess, StoredRefresh, User,
};

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../../../migrations/postgres/0001_initial.sql")),
    (2, "code flow", include_str!("../../../migrations/postgres/0002_code_flow.sql")),
    (3, "tokens", include_str!("../../../migrations/postgres/0003_tokens.sql")),
    (4, "attempts", include_str!("../../../migrations/postgres/0004_attempts.sql")),
    (5, "browser", include_str!("../../../migrations/postgres/0005_browser.sql")),
    (6, "nodes", include_str!("../../../migrations/postgres/0006_nodes.sql")),
    (7, "scale", include_str!("../../../migrations/postgres/0007_scale.sql")),
    (8, "rotation", include_str!("../../../migrations/postgres/0008_rotation.sql")),
    (9, "client origins", include_str!("../../../migrations/postgres/0009_client_origins.sql")),
    (10, "lifecycle", include_str!("../../../migrations/postgres/0010_lifecycle.sql")),
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
        let target = describe_options(&options);
        let user = options.get_username().to_owned();
        let database = options.get_database().unwrap_or(&user).to_owned();
        let (host, port) = (options.get_host().to_owned(), options.get_port());
        // One connection first: the pool retries a failing one until its timeout and then
        // reports only that, where this says why (refused, no such database, wrong password).
        let probe = sqlx::ConnectOptions::connect(&options).await.map_err(|error| {
            Error::Backend(connect_error(&error, &target, &host, port, &database, &user))
        })?;
        drop(probe);
        let pool =
            PgPoolOptions::new().max_connections(POOL_SIZE).connect_with(options).await.map_err(
                |error| {
                    Error::Backend(connect_error(&error, &target, &host, port, &database, &user))
                },
            )?;
        Ok(PgStore { pool })
    }
}

/// Where a connection goes, without credentials: `postgres HOST:PORT/DB as USER`.
fn describe_options(options: &PgConnectOptions) -> String {
    let user = options.get_username();
    let database = options.get_database().unwrap_or(user);
    format!("PostgreSQL at {}:{}/{database} as {user}", options.get_host(), options.get_port())
}

/// A failed connection as one line: where to, the cause, and the fix for the usual ones.
fn connect_error(
    error: &sqlx::Error,
    target: &str,
    host: &str,
    port: u16,
    database: &str,
    user: &str,
) -> String {
    let code = match error {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    };
    let io_kind = match error {
        sqlx::Error::Io(io) => Some(io.kind()),
        _ => None,
    };
    let cause = match (code.as_deref(), io_kind) {
        // PostgreSQL error codes (Appendix A): invalid_catalog_name, invalid_password,
        // invalid_authorization_specification.
        (Some("3D000"), _) => format!(
            "database {database:?} does not exist: create it (`createdb -h {host} -p {port} -U {user} {database}`)"
        ),
        (Some("28P01" | "28000"), _) => format!(
            "authentication failed for user {user:?}: check the user and password in database.url (or the server's pg_hba.conf)"
        ),
        (_, Some(std::io::ErrorKind::ConnectionRefused)) => {
            "connection refused: is PostgreSQL running and listening on that address?".to_owned()
        }
        (_, Some(std::io::ErrorKind::TimedOut)) => {
            "no answer in time: is the host reachable (firewall, address)?".to_owned()
        }
        _ if matches!(error, sqlx::Error::PoolTimedOut) => {
            "no answer in time: is the host reachable (firewall, address)?".to_owned()
        }
        _ => error.to_string(),
    };
    format!("cannot connect to {target}: {cause}")
}

impl PgStore {
    /// Where this store connects, without credentials.
    pub fn describe_url(url: &str) -> Option<String> {
        url.parse::<PgConnectOptions>().ok().map(|options| describe_options(&options))
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

/// What the purge deletes by each row's own expiry, each statement through its table's expiry
/// index (`$1` now, `$2` the batch size). Grants go afterwards, with their refresh tokens
/// ([`DEAD_GRANTS`]): a refresh token expires with its grant (never extended), so it needs no
/// expiry index of its own. `SKIP LOCKED`: nodes purging at the same time share the work instead of
/// waiting.
const PURGE: [(&str, PurgeCounter, &str); 6] = [
    ("authorization_codes", |purged| &mut purged.codes, "DELETE FROM authorization_codes WHERE code_hash IN
        (SELECT code_hash FROM authorization_codes WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)"),
    ("sessions", |purged| &mut purged.sessions, "DELETE FROM sessions WHERE id_hash IN
        (SELECT id_hash FROM sessions WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)"),
    ("access_tokens", |purged| &mut purged.access_tokens, "DELETE FROM access_tokens WHERE jti IN
        (SELECT jti FROM access_tokens WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)"),
    ("client_assertions", |purged| &mut purged.client_assertions, "DELETE FROM client_assertions WHERE (client_id, jti) IN
        (SELECT client_id, jti FROM client_assertions WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)"),
    // A schedule untouched for a day is far past the throttle's window.
    ("login_attempts", |purged| &mut purged.attempts, "DELETE FROM login_attempts WHERE key IN
        (SELECT key FROM login_attempts WHERE updated_at <= $1 - 86400 LIMIT $2 FOR UPDATE SKIP LOCKED)"),
    // A node not heard from for a day has stopped (its row's time is in milliseconds).
    ("nodes", |purged| &mut purged.nodes, "DELETE FROM nodes WHERE node_id IN
        (SELECT node_id FROM nodes WHERE synced_at <= ($1 - 86400) * 1000 LIMIT $2 FOR UPDATE SKIP LOCKED)"),
];

/// Expired grants that no access-token record still names (`$1` now, `$2` the batch size),
/// locked for the batch: each goes with its refresh tokens, found through the grant.
const DEAD_GRANTS: &str = "SELECT g.id FROM grants g WHERE g.expires_at <= $1
    AND NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.grant_id = g.id)
    LIMIT $2 FOR UPDATE OF g SKIP LOCKED";
const GRANT_TOKENS: &str = "DELETE FROM refresh_tokens WHERE grant_id = ANY($1)";
const GRANTS: &str = "DELETE FROM grants WHERE id = ANY($1)";

impl PgStore {
    /// Does what the migrations left for Rust code ([`super::UPKEEP_CLIENT_ORIGINS`]), once:
    /// the task's row is locked first, so a second node starting at once waits and then finds
    /// it gone.
    async fn run_upkeep(&self) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let pending: Option<String> =
            sqlx::query_scalar("SELECT task FROM upkeep WHERE task = $1 FOR UPDATE")
                .bind(super::UPKEEP_CLIENT_ORIGINS)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        if pending.is_none() {
            return Ok(());
        }
        let clients: Vec<(String, String)> =
            sqlx::query_as("SELECT client_id, metadata FROM clients")
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?;
        for (client_id, metadata) in clients {
            clients::write_origins(&mut tx, &client_id, &super::stored_origins(&metadata)?).await?;
        }
        sqlx::query("DELETE FROM upkeep WHERE task = $1")
            .bind(super::UPKEEP_CLIENT_ORIGINS)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    /// Deletes one batch of dead grants with their refresh tokens: (grants, refresh tokens).
    async fn purge_grants(&self, now: i64, limit: i64) -> Result<(u64, u64)> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let ids: Vec<String> = sqlx::query_scalar(DEAD_GRANTS)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        if ids.is_empty() {
            return Ok((0, 0));
        }
        let tokens =
            sqlx::query(GRANT_TOKENS).bind(&ids).execute(&mut *tx).await.map_err(backend)?;
        let grants = sqlx::query(GRANTS).bind(&ids).execute(&mut *tx).await.map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok((grants.rows_affected(), tokens.rows_affected()))
    }
}

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
            .map_err(|error| Error::Backend(format!("migration failed: {error}")))?;
        self.run_upkeep().await
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(drop).map_err(backend)
    }

    async fn clock_millis(&self) -> Result<i64> {
        sqlx::query_scalar(concat!("SELECT ", db_now_ms!()))
            .fetch_one(&self.pool)
            .await
            .map_err(backend)
    }

    async fn purge(&self, now: i64) -> Result<Purged> {
        let mut purged = Purged::default();
        // Each batch is its own short transaction (see `store::purge`).
        for (table, counter, sql) in PURGE {
            let mut batches = Batches::new(table);
            loop {
                let started = Instant::now();
                let removed = sqlx::query(sql)
                    .bind(now)
                    .bind(batches.size())
                    .execute(&self.pool)
                    .await
                    .map_err(backend)?
                    .rows_affected();
                *counter(&mut purged) += removed;
                if !batches.after(removed, started.elapsed()) {
                    break;
                }
            }
        }
        let mut batches = Batches::new("grants");
        loop {
            let started = Instant::now();
            let (grants, tokens) = self.purge_grants(now, batches.size()).await?;
            purged.grants += grants;
            purged.refresh_tokens += tokens;
            super::purge::refresh_tokens_removed(tokens);
            if !batches.after(grants, started.elapsed()) {
                break;
            }
        }
        Ok(purged)
    }

    async fn purge_plans(&self) -> Result<Vec<PurgePlan>> {
        let mut plans = Vec::new();
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // With sequential scans priced out, a plan that still has one has no index to use.
        sqlx::query("SET LOCAL enable_seqscan = off").execute(&mut *tx).await.map_err(backend)?;
        let by_expiry = PURGE.iter().map(|(_, _, sql)| (*sql, false));
        for (statement, by_ids) in
            by_expiry.chain([(DEAD_GRANTS, false), (GRANT_TOKENS, true), (GRANTS, true)])
        {
            let explain = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!(
                "EXPLAIN {statement}"
            )));
            let explain = if by_ids {
                explain.bind(Vec::<String>::new())
            } else {
                explain.bind(0_i64).bind(100_i64)
            };
            let steps = explain.fetch_all(&mut *tx).await.map_err(backend)?;
            plans.push(PurgePlan { statement: statement.to_owned(), plan: steps.join("\n") });
        }
        tx.rollback().await.map_err(backend)?;
        Ok(plans)
    }

    async fn close(&self) -> Result<()> {
        self.pool.close().await;
        Ok(())
    }
}

mod clients;
mod flow;
mod keys;
mod tokens;
mod users;
