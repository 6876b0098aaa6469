//! The SQLite engine: users and their passwords ([`UserStore`]), and the attempt schedules that throttle
//! password and secret checks.

use async_trait::async_trait;

use super::{
    AttemptEnd, AttemptSlot, Connection, Error, OptionalExtension, PasswordChange, Result, Row,
    SqliteStore, User, attempts, backend, params,
};
use crate::store::{UserStore, UserUpdate};

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        username: row.get(1)?,
        password_hash: row.get(2)?,
        email: row.get(3)?,
        name: row.get(4)?,
        email_verified: row.get(5)?,
        disabled: row.get(6)?,
    })
}

/// A session from the first five columns: id_hash, user_id, auth_time, created_at, expires_at.
/// Ends every session of a user, drops their pending codes and revokes their grants (every
/// token of a grant lives and dies with it), inside the caller's transaction.
fn end_user_sessions(c: &Connection, user_id: &str, now: i64) -> Result<()> {
    for statement in [
        "DELETE FROM sessions WHERE user_id = ?1",
        "DELETE FROM authorization_codes WHERE user_id = ?1",
    ] {
        c.execute(statement, [user_id]).map_err(backend)?;
    }
    c.execute(
        "UPDATE grants SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
        params![user_id, now],
    )
    .map_err(backend)?;
    Ok(())
}

/// The columns a [`User`] is read from, as a string literal for `concat!`.
macro_rules! user_columns {
    () => {
        "id, username, password_hash, email, name, email_verified, disabled_at IS NOT NULL"
    };
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn upsert_user(&self, user: &User, now: i64) -> Result<User> {
        let user = user.clone();
        self.write(move |c| {
            c.prepare_cached(concat!(
                "INSERT INTO users (id, username, password_hash, email, name, created_at, updated_at,
                     config_password_hash, email_verified, disabled_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?3, ?7, CASE WHEN ?8 THEN ?6 END)
                 ON CONFLICT (username) DO UPDATE SET
                     email = excluded.email, name = excluded.name, updated_at = excluded.updated_at
                 RETURNING ",
                user_columns!()
            ))
            .and_then(|mut s| {
                s.query_row(
                    params![
                        user.id,
                        user.username,
                        user.password_hash,
                        user.email,
                        user.name,
                        now,
                        user.email_verified,
                        user.disabled
                    ],
                    user_from_row,
                )
            })
            .map_err(backend)
        })
        .await
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<User>> {
        let username = username.to_owned();
        self.read(move |c| {
            c.prepare_cached(concat!("SELECT ", user_columns!(), " FROM users WHERE username = ?1"))
                .and_then(|mut s| s.query_row([username], user_from_row).optional())
                .map_err(backend)
        })
        .await
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<User>> {
        let id = id.to_owned();
        self.read(move |c| {
            c.prepare_cached(concat!("SELECT ", user_columns!(), " FROM users WHERE id = ?1"))
                .and_then(|mut s| s.query_row([id], user_from_row).optional())
                .map_err(backend)
        })
        .await
    }

    async fn users(&self) -> Result<Vec<User>> {
        self.read(|c| {
            let mut s = c
                .prepare_cached(concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users ORDER BY username"
                ))
                .map_err(backend)?;
            let rows = s.query_map([], user_from_row).map_err(backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
        .await
    }

    async fn set_password_hash(
        &self,
        username: &str,
        hash: &str,
        change: PasswordChange,
        now: i64,
    ) -> Result<()> {
        let (username, hash) = (username.to_owned(), hash.to_owned());
        let updated = self
            .write(move |c| {
                let id: Option<String> = c
                    .query_row(
                        "UPDATE users SET password_hash = ?1, updated_at = ?2,
                             config_password_hash = CASE WHEN ?4 THEN ?1 ELSE config_password_hash END
                         WHERE username = ?3 RETURNING id",
                        params![hash, now, username, change.from_config],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(backend)?;
                let Some(id) = id else { return Ok(false) };
                if change.end_sessions {
                    end_user_sessions(c, &id, now)?;
                }
                Ok(true)
            })
            .await?;
        if updated { Ok(()) } else { Err(Error::NotFound) }
    }

    async fn update_user(&self, username: &str, update: &UserUpdate, now: i64) -> Result<User> {
        let (username, update) = (username.to_owned(), update.clone());
        let (set_email, email) = (update.email.is_some(), update.email.flatten());
        let (set_name, name) = (update.name.is_some(), update.name.flatten());
        self.write(move |c| {
            c.prepare_cached(concat!(
                "UPDATE users SET updated_at = ?2,
                     email = CASE WHEN ?3 THEN ?4 ELSE email END,
                     name = CASE WHEN ?5 THEN ?6 ELSE name END,
                     email_verified = COALESCE(?7, email_verified)
                 WHERE username = ?1 RETURNING ",
                user_columns!()
            ))
            .and_then(|mut s| {
                s.query_row(
                    params![username, now, set_email, email, set_name, name, update.email_verified],
                    user_from_row,
                )
                .optional()
            })
            .map_err(backend)?
            .ok_or(Error::NotFound)
        })
        .await
    }

    async fn set_user_disabled(&self, username: &str, disabled: bool, now: i64) -> Result<User> {
        let username = username.to_owned();
        self.write(move |c| {
            let user = c
                .prepare_cached(concat!(
                    "UPDATE users SET updated_at = ?2,
                         disabled_at = CASE WHEN ?3 THEN COALESCE(disabled_at, ?2) END
                     WHERE username = ?1 RETURNING ",
                    user_columns!()
                ))
                .and_then(|mut s| {
                    s.query_row(params![username, now, disabled], user_from_row).optional()
                })
                .map_err(backend)?
                .ok_or(Error::NotFound)?;
            if disabled {
                end_user_sessions(c, &user.id, now)?;
            }
            Ok(user)
        })
        .await
    }

    async fn upgrade_password_hash(&self, user_id: &str, old: &str, new: &str) -> Result<bool> {
        let (id, old, new) = (user_id.to_owned(), old.to_owned(), new.to_owned());
        self.write(move |c| {
            c.prepare_cached(
                "UPDATE users SET password_hash = ?3 WHERE id = ?1 AND password_hash = ?2",
            )
            .and_then(|mut s| s.execute(params![id, old, new]))
            .map(|updated| updated > 0)
            .map_err(backend)
        })
        .await
    }

    async fn insert_users(&self, users: &[User], now: i64) -> Result<()> {
        let users = users.to_vec();
        self.write(move |c| {
            let mut insert = c
                .prepare_cached(
                    "INSERT INTO users (id, username, password_hash, email, name, created_at,
                         updated_at, email_verified, disabled_at)
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, CASE WHEN ?8 THEN ?6 END
                     WHERE NOT EXISTS (SELECT 1 FROM users WHERE username = ?2 OR id = ?1)
                         AND NOT EXISTS (SELECT 1 FROM clients WHERE client_id = ?1)",
                )
                .map_err(backend)?;
            for u in &users {
                let written = insert
                    .execute(params![
                        u.id,
                        u.username,
                        u.password_hash,
                        u.email,
                        u.name,
                        now,
                        u.email_verified,
                        u.disabled
                    ])
                    .map_err(backend)?;
                if written == 0 {
                    // The writer job's transaction rolls back on the error: none is kept.
                    return Err(Error::Conflict(format!("user {:?} exists already", u.username)));
                }
            }
            Ok(())
        })
        .await
    }

    async fn config_password_hash(&self, username: &str) -> Result<Option<Option<String>>> {
        let username = username.to_owned();
        self.read(move |c| {
            c.query_row(
                "SELECT config_password_hash FROM users WHERE username = ?1",
                [username],
                |row| row.get(0),
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn record_config_password(&self, username: &str, hash: &str) -> Result<()> {
        let (username, hash) = (username.to_owned(), hash.to_owned());
        self.write(move |c| {
            c.execute(
                "UPDATE users SET config_password_hash = ?1 WHERE username = ?2",
                params![hash, username],
            )
            .map(drop)
            .map_err(backend)
        })
        .await
    }

    async fn remove_user(&self, username: &str, now: i64) -> Result<()> {
        let username = username.to_owned();
        let removed = self
            .write(move |c| {
                let id: Option<String> = c
                    .query_row(
                        "DELETE FROM users WHERE username = ?1 RETURNING id",
                        [&username],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(backend)?;
                let Some(id) = id else { return Ok(false) };
                c.execute("DELETE FROM consents WHERE user_id = ?1", [&id]).map_err(backend)?;
                end_user_sessions(c, &id, now)?;
                Ok(true)
            })
            .await?;
        if removed { Ok(()) } else { Err(Error::NotFound) }
    }

    async fn begin_attempt(
        &self,
        key: &str,
        now: i64,
        lease: i64,
        window: i64,
    ) -> Result<AttemptSlot> {
        let key = key.to_owned();
        self.write(move |c| attempts::begin(c, &key, now, lease, window)).await
    }

    async fn end_attempt(&self, key: &str, end: AttemptEnd, now: i64) -> Result<()> {
        let key = key.to_owned();
        self.write(move |c| attempts::end(c, &key, end, now)).await
    }
}
