//! The PostgreSQL engine: users and their passwords ([`UserStore`]), and the attempt schedules that throttle
//! password and secret checks.

use async_trait::async_trait;

use super::{
    AttemptEnd, AttemptSlot, Error, PasswordChange, PgRow, PgStore, Result, Row, User, attempts,
    backend,
};
use crate::store::{UserStore, UserUpdate};

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

fn user_from_row(row: &PgRow) -> Result<User> {
    let get = |error| backend(error);
    Ok(User {
        id: row.try_get("id").map_err(get)?,
        username: row.try_get("username").map_err(get)?,
        password_hash: row.try_get("password_hash").map_err(get)?,
        email: row.try_get("email").map_err(get)?,
        name: row.try_get("name").map_err(get)?,
        email_verified: row.try_get("email_verified").map_err(get)?,
        disabled: row.try_get("disabled").map_err(get)?,
    })
}

/// The columns a [`User`] is read from, as a string literal for `concat!`.
macro_rules! user_columns {
    () => {
        "id, username, password_hash, email, name, email_verified, disabled_at IS NOT NULL AS disabled"
    };
}

impl PgStore {
    /// The user `select` finds by `value`, its one parameter.
    async fn one_user(&self, select: &'static str, value: &str) -> Result<Option<User>> {
        // As for clients: text cannot hold NUL (PostgreSQL refuses such a parameter), so no
        // user has it.
        if value.contains('\0') {
            return Ok(None);
        }
        sqlx::query(select)
            .bind(value)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }
}

#[async_trait]
impl UserStore for PgStore {
    async fn upsert_user(&self, user: &User, now: i64) -> Result<User> {
        let row = sqlx::query(concat!(
            "INSERT INTO users (id, username, password_hash, email, name, created_at, updated_at,
                 config_password_hash, email_verified, disabled_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6, $3, $7, CASE WHEN $8 THEN $6::BIGINT END)
             ON CONFLICT (username) DO UPDATE SET
                 email = excluded.email, name = excluded.name, updated_at = excluded.updated_at
             RETURNING ",
            user_columns!()
        ))
        .bind(&user.id)
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(&user.email)
        .bind(&user.name)
        .bind(now)
        .bind(user.email_verified)
        .bind(user.disabled)
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        user_from_row(&row)
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<User>> {
        self.one_user(
            concat!("SELECT ", user_columns!(), " FROM users WHERE username = $1"),
            username,
        )
        .await
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<User>> {
        self.one_user(concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1"), id).await
    }

    async fn users(&self) -> Result<Vec<User>> {
        sqlx::query(concat!("SELECT ", user_columns!(), " FROM users ORDER BY username"))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(user_from_row)
            .collect()
    }

    async fn update_user(&self, username: &str, update: &UserUpdate, now: i64) -> Result<User> {
        if username.contains('\0') {
            return Err(Error::NotFound);
        }
        let row = sqlx::query(concat!(
            "UPDATE users SET updated_at = $2,
                 email = CASE WHEN $3 THEN $4 ELSE email END,
                 name = CASE WHEN $5 THEN $6 ELSE name END,
                 email_verified = COALESCE($7, email_verified)
             WHERE username = $1 RETURNING ",
            user_columns!()
        ))
        .bind(username)
        .bind(now)
        .bind(update.email.is_some())
        .bind(update.email.clone().flatten())
        .bind(update.name.is_some())
        .bind(update.name.clone().flatten())
        .bind(update.email_verified)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.as_ref().map(user_from_row).transpose()?.ok_or(Error::NotFound)
    }

    async fn set_user_disabled(&self, username: &str, disabled: bool, now: i64) -> Result<User> {
        if username.contains('\0') {
            return Err(Error::NotFound);
        }
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // The row lock orders this against a grant being issued (TokenStore::issue reads the
        // user FOR SHARE): that grant either commits first and is revoked below, or sees the
        // user disabled.
        let row = sqlx::query(concat!(
            "UPDATE users SET updated_at = $2,
                 disabled_at = CASE WHEN $3 THEN COALESCE(disabled_at, $2) END
             WHERE username = $1 RETURNING ",
            user_columns!()
        ))
        .bind(username)
        .bind(now)
        .bind(disabled)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let user = row.as_ref().map(user_from_row).transpose()?.ok_or(Error::NotFound)?;
        if disabled {
            end_user_sessions(&mut tx, &user.id, now).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(user)
    }

    async fn upgrade_password_hash(&self, user_id: &str, old: &str, new: &str) -> Result<bool> {
        let updated =
            sqlx::query("UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2")
                .bind(user_id)
                .bind(old)
                .bind(new)
                .execute(&self.pool)
                .await
                .map_err(backend)?;
        Ok(updated.rows_affected() > 0)
    }

    async fn insert_users(&self, users: &[User], now: i64) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        for u in users {
            let written = sqlx::query(
                "INSERT INTO users (id, username, password_hash, email, name, created_at,
                     updated_at, email_verified, disabled_at)
                 SELECT $1, $2, $3, $4, $5, $6, $6, $7, CASE WHEN $8 THEN $6::BIGINT END
                 WHERE NOT EXISTS (SELECT 1 FROM clients WHERE client_id = $1)
                 ON CONFLICT DO NOTHING",
            )
            .bind(&u.id)
            .bind(&u.username)
            .bind(&u.password_hash)
            .bind(&u.email)
            .bind(&u.name)
            .bind(now)
            .bind(u.email_verified)
            .bind(u.disabled)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            if written.rows_affected() == 0 {
                // Dropping the transaction rolls it back: none is kept.
                return Err(Error::Conflict(format!("user {:?} exists already", u.username)));
            }
        }
        tx.commit().await.map_err(backend)
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
}
