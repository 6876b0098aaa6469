//! The PostgreSQL engine: the authorization code flow ([`FlowStore`]): login sessions, remembered consent,
//! authorization codes.

use async_trait::async_trait;

use super::{
    AuthorizationCode, CodeLookup, PgRow, PgStore, Result, Row, Scopes, Session,
    audience_from_json, audience_json, backend, replay_code, stored_scopes,
};
use crate::store::rules;
use crate::store::{FlowStore, SessionSummary};

fn session_from_row(row: &PgRow) -> Result<Session> {
    Ok(Session {
        id_hash: row.try_get("id_hash").map_err(backend)?,
        user_id: row.try_get("user_id").map_err(backend)?,
        auth_time: row.try_get("auth_time").map_err(backend)?,
        created_at: row.try_get("created_at").map_err(backend)?,
        expires_at: row.try_get("expires_at").map_err(backend)?,
    })
}

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

#[async_trait]
impl FlowStore for PgStore {
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

    async fn user_sessions(
        &self,
        user_id: &str,
        now: i64,
        limit: usize,
    ) -> Result<Vec<SessionSummary>> {
        if user_id.contains('\0') {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT s.id_hash, s.user_id, s.auth_time, s.created_at, s.expires_at,
                 (SELECT COUNT(*) FROM grants g WHERE g.session_id_hash = s.id_hash
                      AND g.revoked_at IS NULL AND g.expires_at > $2) AS grants
             FROM sessions s WHERE s.user_id = $1 AND s.expires_at > $2
             ORDER BY s.created_at DESC, s.id_hash LIMIT $3",
        )
        .bind(user_id)
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| {
                let grants: i64 = row.try_get("grants").map_err(backend)?;
                Ok(SessionSummary {
                    session: session_from_row(row)?,
                    grants: u64::try_from(grants).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn end_user_sessions(
        &self,
        user_id: &str,
        client_id: Option<&str>,
        now: i64,
    ) -> Result<(u64, u64)> {
        if user_id.contains('\0') || client_id.is_some_and(|id| id.contains('\0')) {
            return Ok((0, 0));
        }
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let revoked = sqlx::query(
            "UPDATE grants SET revoked_at = $2
             WHERE session_id_hash IN (SELECT id_hash FROM sessions WHERE user_id = $1)
                 AND revoked_at IS NULL AND ($3::TEXT IS NULL OR client_id = $3)",
        )
        .bind(user_id)
        .bind(now)
        .bind(client_id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        let ended = match client_id {
            Some(_) => 0,
            None => sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .map_err(backend)?
                .rows_affected(),
        };
        tx.commit().await.map_err(backend)?;
        Ok((ended, revoked))
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
        let code = match row {
            None => None,
            Some(row) => {
                let redeemed_at: Option<i64> = row.try_get("redeemed_at").map_err(backend)?;
                Some((code_from_row(&row)?, redeemed_at.is_some()))
            }
        };
        Ok(rules::code_lookup(code, now))
    }

    async fn replay_code(&self, code_hash: &str, now: i64) -> Result<Option<String>> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let family = replay_code(&mut tx, code_hash, now).await?;
        tx.commit().await.map_err(backend)?;
        Ok(family)
    }
}
