//! The PostgreSQL engine, for several stateless nodes sharing one database.
//!
//! sqlx with runtime-checked queries (compile-time checking would tie the build to one live
//! database). Migrations are the SQL files under `migrations/postgres`, embedded in the binary
//! and applied by sqlx's migrator, which holds a PostgreSQL advisory lock while it runs, so
//! nodes starting together apply each migration once.

use std::borrow::Cow;

use async_trait::async_trait;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Row, SqlSafeStr};

use super::{Error, Result, Store, StoredKey, client_record};
use crate::keys::KeyRecord;
use crate::model::{ClientRecord, User};

const MIGRATIONS: &[(i64, &str, &str)] =
    &[(1, "initial", include_str!("../../migrations/postgres/0001_initial.sql"))];

/// Serializes signing-key inserts across nodes (an arbitrary constant: "latchkey keys").
const KEY_LOCK: i64 = 0x6c61_7463_686b_6579;

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
        _ => Error::Backend(error.to_string()),
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

fn client_from_row(row: &PgRow) -> Result<ClientRecord> {
    let metadata: String = row.try_get("metadata").map_err(backend)?;
    let source: String = row.try_get("source").map_err(backend)?;
    client_record(&metadata, row.try_get("secret_hash").map_err(backend)?, &source)
}

fn user_from_row(row: &PgRow) -> Result<User> {
    let get = |error| backend(error);
    Ok(User {
        id: row.try_get("id").map_err(get)?,
        username: row.try_get("username").map_err(get)?,
        password_hash: row.try_get("password_hash").map_err(get)?,
        email: row.try_get("email").map_err(get)?,
        name: row.try_get("name").map_err(get)?,
    })
}

fn key_from_row(row: &PgRow) -> Result<KeyRecord> {
    let get = |error| backend(error);
    StoredKey {
        kid: row.try_get("kid").map_err(get)?,
        purpose: row.try_get("purpose").map_err(get)?,
        alg: row.try_get("alg").map_err(get)?,
        private_key: row.try_get("private_key").map_err(get)?,
        sealed: row.try_get("sealed").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
        activates_at: row.try_get("activates_at").map_err(get)?,
    }
    .into_record()
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

    async fn upsert_client(&self, record: &ClientRecord, now: i64) -> Result<()> {
        let metadata = serde_json::to_string(&record.client)
            .map_err(|error| Error::Backend(error.to_string()))?;
        sqlx::query(
            "INSERT INTO clients (client_id, secret_hash, source, metadata, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (client_id) DO UPDATE SET secret_hash = excluded.secret_hash,
                 source = excluded.source, metadata = excluded.metadata, updated_at = excluded.updated_at",
        )
        .bind(&record.client.client_id)
        .bind(&record.secret_hash)
        .bind(record.source.as_str())
        .bind(metadata)
        .bind(now)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(backend)
    }

    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        sqlx::query("SELECT metadata, secret_hash, source FROM clients WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(client_from_row)
            .transpose()
    }

    async fn clients(&self) -> Result<Vec<ClientRecord>> {
        sqlx::query("SELECT metadata, secret_hash, source FROM clients ORDER BY client_id")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(client_from_row)
            .collect()
    }

    async fn remove_client(&self, client_id: &str) -> Result<()> {
        let result = sqlx::query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        if result.rows_affected() == 0 { Err(Error::NotFound) } else { Ok(()) }
    }

    async fn remove_config_clients_except(&self, keep: &[String]) -> Result<u64> {
        let result = sqlx::query(
            "DELETE FROM clients WHERE source = 'config' AND NOT (client_id = ANY($1))",
        )
        .bind(keep)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(result.rows_affected())
    }

    async fn upsert_user(&self, user: &User, now: i64) -> Result<User> {
        let row = sqlx::query(
            "INSERT INTO users (id, username, password_hash, email, name, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)
             ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash,
                 email = excluded.email, name = excluded.name, updated_at = excluded.updated_at
             RETURNING id, username, password_hash, email, name",
        )
        .bind(&user.id)
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(&user.email)
        .bind(&user.name)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        user_from_row(&row)
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<User>> {
        sqlx::query(
            "SELECT id, username, password_hash, email, name FROM users WHERE username = $1",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(user_from_row)
        .transpose()
    }

    async fn users(&self) -> Result<Vec<User>> {
        sqlx::query("SELECT id, username, password_hash, email, name FROM users ORDER BY username")
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(user_from_row)
            .collect()
    }

    async fn set_password_hash(&self, username: &str, hash: &str, now: i64) -> Result<()> {
        let result =
            sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE username = $3")
                .bind(hash)
                .bind(now)
                .bind(username)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
        if result.rows_affected() == 0 { Err(Error::NotFound) } else { Ok(()) }
    }

    async fn remove_user(&self, username: &str) -> Result<()> {
        let result = sqlx::query("DELETE FROM users WHERE username = $1")
            .bind(username)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        if result.rows_affected() == 0 { Err(Error::NotFound) } else { Ok(()) }
    }

    async fn signing_keys(&self) -> Result<Vec<KeyRecord>> {
        sqlx::query(
            "SELECT kid, purpose, alg, private_key, sealed, created_at, activates_at
             FROM signing_keys ORDER BY activates_at, kid",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(key_from_row)
        .collect()
    }

    async fn add_signing_key(&self, key: &KeyRecord, expected_latest: Option<i64>) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // The lock makes check-then-insert atomic across nodes; it ends with the transaction.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(KEY_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let latest: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(activates_at) FROM signing_keys WHERE purpose = $1 AND alg = $2",
        )
        .bind(key.purpose.as_str())
        .bind(key.alg.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        if latest != expected_latest {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO signing_keys (kid, purpose, alg, private_key, sealed, created_at, activates_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&key.kid)
        .bind(key.purpose.as_str())
        .bind(key.alg.as_str())
        .bind(&key.private_key)
        .bind(key.sealed)
        .bind(key.created_at)
        .bind(key.activates_at)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn replace_private_key(&self, kid: &str, private_key: &[u8], sealed: bool) -> Result<()> {
        sqlx::query("UPDATE signing_keys SET private_key = $1, sealed = $2 WHERE kid = $3")
            .bind(private_key)
            .bind(sealed)
            .bind(kid)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(backend)
    }

    async fn remove_signing_key(&self, kid: &str) -> Result<()> {
        sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
            .bind(kid)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(backend)
    }
}
