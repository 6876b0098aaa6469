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
use crate::keys::KeyRecord;
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
];

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

/// Ends every session of a user, drops their pending codes and revokes their grants (every
/// token of a grant lives and dies with it), inside the caller's transaction.
async fn end_user_sessions(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    user_id: &str,
    now: i64,
) -> Result<()> {
    for statement in [
        "DELETE FROM sessions WHERE user_id = $1",
        "DELETE FROM authorization_codes WHERE user_id = $1",
    ] {
        sqlx::query(statement).bind(user_id).execute(&mut **tx).await.map_err(backend)?;
    }
    sqlx::query("UPDATE grants SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
        .bind(user_id)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    Ok(())
}

fn session_from_row(row: &PgRow) -> Result<Session> {
    Ok(Session {
        id_hash: row.try_get("id_hash").map_err(backend)?,
        user_id: row.try_get("user_id").map_err(backend)?,
        auth_time: row.try_get("auth_time").map_err(backend)?,
        created_at: row.try_get("created_at").map_err(backend)?,
        expires_at: row.try_get("expires_at").map_err(backend)?,
    })
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

type Tx<'a> = sqlx::Transaction<'a, sqlx::Postgres>;

fn code_from_row(row: &PgRow) -> Result<AuthorizationCode> {
    let get = |error| backend(error);
    let audience: String = row.try_get("audience").map_err(get)?;
    Ok(AuthorizationCode {
        code_hash: row.try_get("code_hash").map_err(get)?,
        client_id: row.try_get("client_id").map_err(get)?,
        user_id: row.try_get("user_id").map_err(get)?,
        session_id_hash: row.try_get("session_id_hash").map_err(get)?,
        redirect_uri: row.try_get("redirect_uri").map_err(get)?,
        scopes: stored_scopes(row.try_get("scopes").map_err(get)?)?,
        audience: audience_from_json(&audience)?,
        nonce: row.try_get("nonce").map_err(get)?,
        code_challenge: row.try_get("code_challenge").map_err(get)?,
        auth_time: row.try_get("auth_time").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
        expires_at: row.try_get("expires_at").map_err(get)?,
    })
}

fn grant_from_row(row: &PgRow) -> Result<Grant> {
    let get = |error| backend(error);
    let audience: String = row.try_get("g_audience").map_err(get)?;
    Ok(Grant {
        id: row.try_get("g_id").map_err(get)?,
        client_id: row.try_get("g_client_id").map_err(get)?,
        user_id: row.try_get("g_user_id").map_err(get)?,
        session_id_hash: row.try_get("g_session_id_hash").map_err(get)?,
        scopes: stored_scopes(row.try_get("g_scopes").map_err(get)?)?,
        audience: audience_from_json(&audience)?,
        auth_time: row.try_get("g_auth_time").map_err(get)?,
        created_at: row.try_get("g_created_at").map_err(get)?,
        expires_at: row.try_get("g_expires_at").map_err(get)?,
        revoked_at: row.try_get("g_revoked_at").map_err(get)?,
    })
}

/// Deletes the codes and consents of just-deleted clients and revokes their grants and stored
/// access tokens. Each statement runs after the client rows' DELETE, so under READ COMMITTED
/// it sees any grant that a concurrent [`Store::issue`] committed while holding the client row
/// (`FOR KEY SHARE`); a later `issue` finds no client.
async fn revoke_client_holdings(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    client_ids: &[String],
    now: i64,
) -> Result<()> {
    for statement in [
        "DELETE FROM authorization_codes WHERE client_id = ANY($1)",
        "DELETE FROM consents WHERE client_id = ANY($1)",
    ] {
        sqlx::query(statement).bind(client_ids).execute(&mut **tx).await.map_err(backend)?;
    }
    for statement in [
        "UPDATE grants SET revoked_at = $2 WHERE client_id = ANY($1) AND revoked_at IS NULL",
        "UPDATE access_tokens SET revoked_at = $2 WHERE client_id = ANY($1) AND revoked_at IS NULL",
    ] {
        sqlx::query(statement)
            .bind(client_ids)
            .bind(now)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
    }
    Ok(())
}

async fn insert_refresh(tx: &mut Tx<'_>, token: &RefreshToken) -> Result<()> {
    sqlx::query("INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(&token.token_hash)
        .bind(&token.grant_id)
        .bind(token.created_at)
        .bind(token.expires_at)
        .execute(&mut **tx)
        .await
        .map(drop)
        .map_err(backend)
}

async fn insert_access<'c, E: sqlx::PgExecutor<'c>>(
    executor: E,
    access: &AccessTokenRecord,
) -> Result<()> {
    let opaque = access.opaque.as_ref();
    sqlx::query(
        "INSERT INTO access_tokens (jti, grant_id, client_id, expires_at, token_hash, subject, scopes,
             audience, issued_at, auth_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&access.jti)
    .bind(&access.grant_id)
    .bind(&access.client_id)
    .bind(access.expires_at)
    .bind(opaque.map(|o| &o.token_hash))
    .bind(opaque.map(|o| &o.subject))
    .bind(opaque.map(|o| o.scopes.to_param()))
    .bind(opaque.map(|o| audience_json(&o.audience)))
    .bind(opaque.map(|o| o.issued_at))
    .bind(opaque.and_then(|o| o.auth_time))
    .execute(executor)
    .await
    .map(drop)
    .map_err(backend)
}

/// Columns of an access-token row joined with its grant and the grant's user (a macro so
/// that the queries stay static strings).
macro_rules! access_select {
    ($condition:literal) => {
        concat!(
            "SELECT a.jti, a.grant_id, a.client_id, a.expires_at, a.token_hash, a.subject,
                 a.scopes, a.audience, a.issued_at, a.auth_time,
                 (a.revoked_at IS NOT NULL OR g.revoked_at IS NOT NULL) AS revoked, u.username
             FROM access_tokens a LEFT JOIN grants g ON g.id = a.grant_id
                 LEFT JOIN users u ON u.id = g.user_id WHERE ",
            $condition
        )
    };
}

fn stored_access_from_row(row: &PgRow) -> Result<StoredAccess> {
    let token_hash: Option<String> = row.try_get("token_hash").map_err(backend)?;
    let opaque = match token_hash {
        Some(token_hash) => {
            let audience: Option<String> = row.try_get("audience").map_err(backend)?;
            Some(OpaqueAccess {
                token_hash,
                subject: row
                    .try_get::<Option<String>, _>("subject")
                    .map_err(backend)?
                    .unwrap_or_default(),
                scopes: stored_scopes(
                    &row.try_get::<Option<String>, _>("scopes")
                        .map_err(backend)?
                        .unwrap_or_default(),
                )?,
                audience: audience
                    .as_deref()
                    .map(audience_from_json)
                    .transpose()?
                    .unwrap_or_default(),
                issued_at: row
                    .try_get::<Option<i64>, _>("issued_at")
                    .map_err(backend)?
                    .unwrap_or_default(),
                auth_time: row.try_get("auth_time").map_err(backend)?,
            })
        }
        None => None,
    };
    Ok(StoredAccess {
        record: AccessTokenRecord {
            jti: row.try_get("jti").map_err(backend)?,
            grant_id: row.try_get("grant_id").map_err(backend)?,
            client_id: row.try_get("client_id").map_err(backend)?,
            expires_at: row.try_get("expires_at").map_err(backend)?,
            opaque,
        },
        revoked: row.try_get("revoked").map_err(backend)?,
        username: row.try_get("username").map_err(backend)?,
    })
}

/// Rows deleted per purge statement.
const PURGE_BATCH: i64 = 500;

/// What the purge deletes, in an order that never leaves a row pointing at a deleted one.
/// `SKIP LOCKED`: nodes purging at the same time share the work instead of waiting.
const PURGE: [(PurgeCounter, &str); 7] = [
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

    async fn upsert_client(&self, record: &ClientRecord, now: i64) -> Result<()> {
        let metadata = serde_json::to_string(&record.client)
            .map_err(|error| Error::Backend(error.to_string()))?;
        // RFC 9068 §5: a client-credentials token's `sub` is the client_id, so no client may
        // share its id with a user's subject.
        let written = sqlx::query(
            "INSERT INTO clients (client_id, secret_hash, source, metadata, created_at, updated_at)
             SELECT $1, $2, $3, $4, $5, $5 WHERE NOT EXISTS (SELECT 1 FROM users WHERE id = $1)
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
        .map_err(backend)?;
        if written.rows_affected() == 0 {
            Err(super::subject_taken(&record.client.client_id))
        } else {
            Ok(())
        }
    }

    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        // PostgreSQL text cannot hold NUL and refuses such a parameter: no row can match.
        if client_id.contains('\0') {
            return Ok(None);
        }
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

    async fn remove_client(&self, client_id: &str, now: i64) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let removed: Vec<String> =
            sqlx::query_scalar("DELETE FROM clients WHERE client_id = $1 RETURNING client_id")
                .bind(client_id)
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?;
        if removed.is_empty() {
            return Err(Error::NotFound);
        }
        revoke_client_holdings(&mut tx, &removed, now).await?;
        tx.commit().await.map_err(backend)
    }

    async fn remove_config_clients_except(&self, keep: &[String], now: i64) -> Result<u64> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let removed: Vec<String> = sqlx::query_scalar(
            "DELETE FROM clients WHERE source = 'config' AND NOT (client_id = ANY($1))
             RETURNING client_id",
        )
        .bind(keep)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        if !removed.is_empty() {
            revoke_client_holdings(&mut tx, &removed, now).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(removed.len() as u64)
    }

    async fn upsert_user(&self, user: &User, now: i64) -> Result<User> {
        let row = sqlx::query(
            "INSERT INTO users (id, username, password_hash, email, name, created_at, updated_at, config_password_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $6, $3)
             ON CONFLICT (username) DO UPDATE SET
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
        // As for clients: text cannot hold NUL, so no user has it.
        if username.contains('\0') {
            return Ok(None);
        }
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

    async fn user_by_id(&self, id: &str) -> Result<Option<User>> {
        sqlx::query("SELECT id, username, password_hash, email, name FROM users WHERE id = $1")
            .bind(id)
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

    async fn set_password_hash(
        &self,
        username: &str,
        hash: &str,
        change: PasswordChange,
        now: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let id: Option<String> = sqlx::query_scalar(
            "UPDATE users SET password_hash = $1, updated_at = $2,
                 config_password_hash = CASE WHEN $4 THEN $1 ELSE config_password_hash END
             WHERE username = $3 RETURNING id",
        )
        .bind(hash)
        .bind(now)
        .bind(username)
        .bind(change.from_config)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some(id) = id else { return Err(Error::NotFound) };
        if change.end_sessions {
            end_user_sessions(&mut tx, &id, now).await?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn config_password_hash(&self, username: &str) -> Result<Option<Option<String>>> {
        if username.contains('\0') {
            return Ok(None);
        }
        sqlx::query_scalar("SELECT config_password_hash FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)
    }

    async fn record_config_password(&self, username: &str, hash: &str) -> Result<()> {
        sqlx::query("UPDATE users SET config_password_hash = $1 WHERE username = $2")
            .bind(hash)
            .bind(username)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(backend)
    }

    async fn remove_user(&self, username: &str, now: i64) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let id: Option<String> =
            sqlx::query_scalar("DELETE FROM users WHERE username = $1 RETURNING id")
                .bind(username)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        let Some(id) = id else { return Err(Error::NotFound) };
        sqlx::query("DELETE FROM consents WHERE user_id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        end_user_sessions(&mut tx, &id, now).await?;
        tx.commit().await.map_err(backend)
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

    async fn create_session(&self, session: &Session) -> Result<()> {
        sqlx::query("INSERT INTO sessions (id_hash, user_id, auth_time, created_at, expires_at, sid) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&session.id_hash)
            .bind(&session.user_id)
            .bind(session.auth_time)
            .bind(session.created_at)
            .bind(session.expires_at)
            .bind(session.sid())
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(backend)
    }

    async fn session_by_sid(&self, sid: &str, now: i64) -> Result<Option<Session>> {
        let row = sqlx::query(
            "SELECT id_hash, user_id, auth_time, created_at, expires_at FROM sessions WHERE sid = $1 AND expires_at > $2",
        )
        .bind(sid)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn server_secret(
        &self,
        name: &str,
        candidate: &[u8],
        sealed: bool,
    ) -> Result<(Vec<u8>, bool)> {
        // The first node to start stores its candidate; every node reads back the one stored.
        sqlx::query("INSERT INTO server_secrets (name, value, sealed) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(candidate)
            .bind(sealed)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        let row = sqlx::query("SELECT value, sealed FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Ok((row.try_get("value").map_err(backend)?, row.try_get("sealed").map_err(backend)?))
    }

    async fn replace_server_secret(&self, name: &str, value: &[u8], sealed: bool) -> Result<()> {
        sqlx::query("UPDATE server_secrets SET value = $2, sealed = $3 WHERE name = $1")
            .bind(name)
            .bind(value)
            .bind(sealed)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(backend)
    }

    async fn session(&self, id_hash: &str, now: i64) -> Result<Option<Session>> {
        let row = sqlx::query(
            "SELECT id_hash, user_id, auth_time, created_at, expires_at FROM sessions WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn session_and_consent(
        &self,
        id_hash: &str,
        client_id: &str,
        now: i64,
    ) -> Result<Option<(Session, Option<Scopes>)>> {
        let row = sqlx::query(
            "SELECT s.id_hash, s.user_id, s.auth_time, s.created_at, s.expires_at, c.scopes
             FROM sessions s LEFT JOIN consents c ON c.user_id = s.user_id AND c.client_id = $2
             WHERE s.id_hash = $1 AND s.expires_at > $3",
        )
        .bind(id_hash)
        .bind(client_id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        let Some(row) = row else { return Ok(None) };
        let consent: Option<String> = row.try_get("scopes").map_err(backend)?;
        let consent = consent.as_deref().map(stored_scopes).transpose()?;
        Ok(Some((session_from_row(&row)?, consent)))
    }

    async fn end_session(&self, id_hash: &str, now: i64) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // Offline grants (OIDC Core §11) outlive the session.
        sqlx::query(
            "UPDATE grants SET revoked_at = $1 WHERE session_id_hash = $2 AND revoked_at IS NULL
             AND (' ' || scopes || ' ') NOT LIKE '% offline_access %'",
        )
        .bind(now)
        .bind(id_hash)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn consent(&self, user_id: &str, client_id: &str) -> Result<Option<Scopes>> {
        let scopes: Option<String> =
            sqlx::query_scalar("SELECT scopes FROM consents WHERE user_id = $1 AND client_id = $2")
                .bind(user_id)
                .bind(client_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        scopes.as_deref().map(stored_scopes).transpose()
    }

    async fn forget_consent(&self, user_id: &str, client_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(backend)
    }

    async fn save_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &Scopes,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, scopes, granted_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(scopes.to_param())
        .bind(now)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(backend)
    }

    async fn insert_code(&self, code: &AuthorizationCode) -> Result<()> {
        sqlx::query(
            "INSERT INTO authorization_codes (code_hash, client_id, user_id, session_id_hash, redirect_uri,
                 scopes, audience, nonce, code_challenge, auth_time, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&code.code_hash)
        .bind(&code.client_id)
        .bind(&code.user_id)
        .bind(&code.session_id_hash)
        .bind(&code.redirect_uri)
        .bind(code.scopes.to_param())
        .bind(audience_json(&code.audience))
        .bind(&code.nonce)
        .bind(&code.code_challenge)
        .bind(code.auth_time)
        .bind(code.created_at)
        .bind(code.expires_at)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(backend)
    }

    async fn code(&self, code_hash: &str, now: i64) -> Result<CodeLookup> {
        let row = sqlx::query("SELECT * FROM authorization_codes WHERE code_hash = $1")
            .bind(code_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        let Some(row) = row else { return Ok(CodeLookup::Invalid) };
        let redeemed_at: Option<i64> = row.try_get("redeemed_at").map_err(backend)?;
        let code = code_from_row(&row)?;
        Ok(if redeemed_at.is_some() {
            CodeLookup::Spent { client_id: code.client_id }
        } else if code.expires_at <= now {
            CodeLookup::Invalid
        } else {
            CodeLookup::Unspent(Box::new(code))
        })
    }

    async fn replay_code(&self, code_hash: &str, now: i64) -> Result<Option<String>> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let family = replay_code(&mut tx, code_hash, now).await?;
        tx.commit().await.map_err(backend)?;
        Ok(family)
    }

    async fn issue(&self, issue: &Issue) -> Result<Issued> {
        let g = &issue.grant;
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // Locks in the order a client removal takes them, client row first and then its codes,
        // so the two cannot deadlock. The client row is held (FOR KEY SHARE) until the commit:
        // a concurrent removal waits for this grant and then revokes it, or has committed and
        // this stores nothing.
        let client = sqlx::query("SELECT 1 FROM clients WHERE client_id = $1 FOR KEY SHARE")
            .bind(&g.client_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        if client.is_none() {
            return Ok(Issued::ClientRemoved);
        }
        if let Some(code_hash) = &issue.code_hash {
            // Concurrent exchanges of one code queue on its row; the first spends it.
            let spent = sqlx::query(
                "UPDATE authorization_codes SET redeemed_at = $1, grant_id = $2
                 WHERE code_hash = $3 AND redeemed_at IS NULL",
            )
            .bind(g.created_at)
            .bind(&g.id)
            .bind(code_hash)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            if spent.rows_affected() == 0 {
                let family = replay_code(&mut tx, code_hash, g.created_at).await?;
                tx.commit().await.map_err(backend)?;
                return Ok(Issued::CodeSpent { family });
            }
        }
        sqlx::query(
            "INSERT INTO grants (id, client_id, user_id, session_id_hash, scopes, audience, auth_time, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&g.id)
        .bind(&g.client_id)
        .bind(&g.user_id)
        .bind(&g.session_id_hash)
        .bind(g.scopes.to_param())
        .bind(audience_json(&g.audience))
        .bind(g.auth_time)
        .bind(g.created_at)
        .bind(g.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if let Some(refresh) = &issue.refresh {
            insert_refresh(&mut tx, refresh).await?;
        }
        if let Some(access) = &issue.access {
            insert_access(&mut *tx, access).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(Issued::Done)
    }

    async fn refresh_token(&self, token_hash: &str) -> Result<Option<(RefreshToken, Grant)>> {
        let row = sqlx::query(
            "SELECT rt.token_hash, rt.grant_id, rt.created_at, rt.expires_at, rt.rotated_at,
                    g.id AS g_id, g.client_id AS g_client_id, g.user_id AS g_user_id,
                    g.session_id_hash AS g_session_id_hash, g.scopes AS g_scopes, g.audience AS g_audience,
                    g.auth_time AS g_auth_time, g.created_at AS g_created_at, g.expires_at AS g_expires_at,
                    g.revoked_at AS g_revoked_at
             FROM refresh_tokens rt JOIN grants g ON g.id = rt.grant_id WHERE rt.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        let Some(row) = row else { return Ok(None) };
        let token = RefreshToken {
            token_hash: row.try_get("token_hash").map_err(backend)?,
            grant_id: row.try_get("grant_id").map_err(backend)?,
            created_at: row.try_get("created_at").map_err(backend)?,
            expires_at: row.try_get("expires_at").map_err(backend)?,
            rotated_at: row.try_get("rotated_at").map_err(backend)?,
        };
        Ok(Some((token, grant_from_row(&row)?)))
    }

    async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        rotation: &RotationRequest,
        now: i64,
    ) -> Result<Rotation> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // Lock the presented token's row: concurrent rotations of one token serialize here.
        let row = sqlx::query(
            "SELECT rt.grant_id, rt.expires_at, rt.rotated_at, rt.successor_sealed,
                    g.revoked_at AS g_revoked_at, g.expires_at AS g_expires_at
             FROM refresh_tokens rt JOIN grants g ON g.id = rt.grant_id
             WHERE rt.token_hash = $1 FOR UPDATE OF rt",
        )
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some(row) = row else { return Ok(Rotation::Invalid) };
        let grant_id: String = row.try_get("grant_id").map_err(backend)?;
        let expires_at: i64 = row.try_get("expires_at").map_err(backend)?;
        let rotated_at: Option<i64> = row.try_get("rotated_at").map_err(backend)?;
        let sealed: Option<Vec<u8>> = row.try_get("successor_sealed").map_err(backend)?;
        let revoked_at: Option<i64> = row.try_get("g_revoked_at").map_err(backend)?;
        let grant_expires_at: i64 = row.try_get("g_expires_at").map_err(backend)?;
        if revoked_at.is_some() {
            return Ok(Rotation::Invalid);
        }
        if let Some(rotated_at) = rotated_at {
            if let (Some(successor_sealed), true) =
                (sealed, now - rotated_at <= rotation.grace_secs)
            {
                return Ok(Rotation::Retry { successor_sealed });
            }
            revoke_grant(&mut tx, &grant_id, now).await?;
            tx.commit().await.map_err(backend)?;
            return Ok(Rotation::Reused);
        }
        if expires_at <= now || grant_expires_at <= now {
            return Ok(Rotation::Invalid);
        }
        sqlx::query("UPDATE refresh_tokens SET rotated_at = $1, successor_sealed = $2 WHERE token_hash = $3")
            .bind(now)
            .bind(&rotation.successor_sealed)
            .bind(token_hash)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        insert_refresh(&mut tx, &rotation.successor).await?;
        if let Some(access) = &rotation.access {
            insert_access(&mut *tx, access).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(Rotation::Rotated)
    }

    async fn insert_access_token(&self, access: &AccessTokenRecord) -> Result<()> {
        insert_access(&self.pool, access).await
    }

    async fn jwt_status(
        &self,
        jti: &str,
        grant_id: &str,
        now: i64,
    ) -> Result<(bool, Option<String>)> {
        let found: Option<(bool, Option<String>)> = sqlx::query_as(
            "SELECT (g.revoked_at IS NOT NULL OR g.expires_at <= $3
                     OR EXISTS (SELECT 1 FROM access_tokens a WHERE a.jti = $1 AND a.revoked_at IS NOT NULL)),
                    u.username
             FROM grants g LEFT JOIN users u ON u.id = g.user_id WHERE g.id = $2",
        )
        .bind(jti)
        .bind(grant_id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        Ok(found.unwrap_or((true, None)))
    }

    async fn access_token_by_jti(&self, jti: &str, now: i64) -> Result<Option<StoredAccess>> {
        let row = sqlx::query(access_select!("a.jti = $1 AND a.expires_at > $2"))
            .bind(jti)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(stored_access_from_row).transpose()
    }

    async fn access_token_by_hash(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<StoredAccess>> {
        let row = sqlx::query(access_select!("a.token_hash = $1 AND a.expires_at > $2"))
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(stored_access_from_row).transpose()
    }

    async fn revoke_access_token(&self, access: &AccessTokenRecord, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO access_tokens (jti, grant_id, client_id, expires_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (jti) DO UPDATE SET revoked_at = COALESCE(access_tokens.revoked_at, excluded.revoked_at)",
        )
        .bind(&access.jti)
        .bind(&access.grant_id)
        .bind(&access.client_id)
        .bind(access.expires_at)
        .bind(now)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(backend)
    }

    async fn revoke_refresh_token(
        &self,
        token_hash: &str,
        client_id: &str,
        now: i64,
    ) -> Result<RefreshRevocation> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let owner: Option<(String, String)> = sqlx::query_as(
            "SELECT g.id, g.client_id FROM refresh_tokens rt JOIN grants g ON g.id = rt.grant_id
             WHERE rt.token_hash = $1 FOR UPDATE OF g",
        )
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let outcome = match owner {
            None => RefreshRevocation::Unknown,
            Some((_, owner)) if owner != client_id => RefreshRevocation::OtherClient,
            Some((grant_id, _)) => {
                revoke_grant(&mut tx, &grant_id, now).await?;
                RefreshRevocation::Revoked
            }
        };
        tx.commit().await.map_err(backend)?;
        Ok(outcome)
    }

    async fn use_client_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO client_assertions (client_id, jti, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (client_id, jti) DO NOTHING",
        )
        .bind(client_id)
        .bind(jti)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn begin_attempt(
        &self,
        key: &str,
        now: i64,
        lease: i64,
        window: i64,
    ) -> Result<AttemptSlot> {
        attempts::begin(&self.pool, key, now, lease, window).await
    }

    async fn end_attempt(&self, key: &str, end: AttemptEnd, now: i64) -> Result<()> {
        attempts::end(&self.pool, key, end, now).await
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
