//! The PostgreSQL engine: grants and the tokens issued in them ([`TokenStore`]): issuing, refresh-token
//! rotation with reuse detection, revocation, status.

use async_trait::async_trait;

use super::{
    AccessTokenRecord, Grant, Issue, Issued, OpaqueAccess, PgRow, PgStore, RefreshRevocation,
    RefreshToken, Result, Rotation, RotationRequest, Row, StoredAccess, StoredRefresh, Tx,
    audience_from_json, audience_json, backend, replay_code, revoke_grant, stored_scopes,
};
use crate::store::RotationPlan;
use crate::store::rules::{self, RotationStep};
use crate::store::{GrantFilter, TokenStore};

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

/// A refresh token with its grant, whether the grant's session is live at `$2`, and its sealed
/// successor; the argument is what follows the statement (the rotation's lock).
macro_rules! refresh_select {
    ($tail:literal) => {
        concat!(
            "SELECT rt.token_hash, rt.grant_id, rt.created_at, rt.expires_at, rt.rotated_at,
                    rt.successor_sealed, s.id_hash IS NOT NULL AS session_live,
                    g.id AS g_id, g.client_id AS g_client_id, g.user_id AS g_user_id,
                    g.session_id_hash AS g_session_id_hash, g.scopes AS g_scopes, g.audience AS g_audience,
                    g.auth_time AS g_auth_time, g.created_at AS g_created_at, g.expires_at AS g_expires_at,
                    g.revoked_at AS g_revoked_at
             FROM refresh_tokens rt JOIN grants g ON g.id = rt.grant_id
             LEFT JOIN sessions s ON s.id_hash = g.session_id_hash AND s.expires_at > $2
             WHERE rt.token_hash = $1",
            $tail
        )
    };
}

fn stored_refresh(row: &PgRow) -> Result<StoredRefresh> {
    let token = RefreshToken {
        token_hash: row.try_get("token_hash").map_err(backend)?,
        grant_id: row.try_get("grant_id").map_err(backend)?,
        created_at: row.try_get("created_at").map_err(backend)?,
        expires_at: row.try_get("expires_at").map_err(backend)?,
        rotated_at: row.try_get("rotated_at").map_err(backend)?,
    };
    let session_live = row.try_get("session_live").map_err(backend)?;
    Ok(StoredRefresh { token, grant: grant_from_row(row)?, session_live })
}

/// Carries out the rotation rule's step for a presented token, in its transaction.
async fn rotate(
    tx: &mut Tx<'_>,
    token_hash: &str,
    step: RotationStep,
    request: &RotationRequest,
    now: i64,
) -> Result<Rotation> {
    match step {
        RotationStep::Refuse => Ok(Rotation::Invalid),
        RotationStep::Retry { successor_sealed } => {
            // A retry inside the grace window: the same successor, a fresh access token.
            if let Some(access) = &request.access {
                insert_access(&mut **tx, access).await?;
            }
            Ok(Rotation::Retry { successor_sealed })
        }
        RotationStep::RevokeFamily { grant_id } => {
            revoke_grant(tx, &grant_id, now).await?;
            Ok(Rotation::Reused)
        }
        RotationStep::Rotate => {
            sqlx::query(
                "UPDATE refresh_tokens SET rotated_at = $1, successor_sealed = $2 WHERE token_hash = $3",
            )
            .bind(now)
            .bind(&request.successor_sealed)
            .bind(token_hash)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
            insert_refresh(tx, &request.successor).await?;
            if let Some(access) = &request.access {
                insert_access(&mut **tx, access).await?;
            }
            Ok(Rotation::Rotated)
        }
    }
}

/// A grant listing and a revocation for each form of filter, each on its own index
/// (`grants_user`, `grants_client`); the parameters are the user, the client, then the rest.
const GRANT_LISTS: [&str; 3] = [
    "SELECT id AS g_id, client_id AS g_client_id, user_id AS g_user_id,
         session_id_hash AS g_session_id_hash, scopes AS g_scopes, audience AS g_audience,
         auth_time AS g_auth_time, created_at AS g_created_at, expires_at AS g_expires_at,
         revoked_at AS g_revoked_at
     FROM grants WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL AND expires_at > $3
     ORDER BY created_at DESC, id LIMIT $4",
    "SELECT id AS g_id, client_id AS g_client_id, user_id AS g_user_id,
         session_id_hash AS g_session_id_hash, scopes AS g_scopes, audience AS g_audience,
         auth_time AS g_auth_time, created_at AS g_created_at, expires_at AS g_expires_at,
         revoked_at AS g_revoked_at
     FROM grants WHERE user_id = $1 AND $2::TEXT IS NULL AND revoked_at IS NULL AND expires_at > $3
     ORDER BY created_at DESC, id LIMIT $4",
    "SELECT id AS g_id, client_id AS g_client_id, user_id AS g_user_id,
         session_id_hash AS g_session_id_hash, scopes AS g_scopes, audience AS g_audience,
         auth_time AS g_auth_time, created_at AS g_created_at, expires_at AS g_expires_at,
         revoked_at AS g_revoked_at
     FROM grants WHERE $1::TEXT IS NULL AND client_id = $2 AND revoked_at IS NULL AND expires_at > $3
     ORDER BY created_at DESC, id LIMIT $4",
];
const GRANT_REVOCATIONS: [&str; 3] = [
    "UPDATE grants SET revoked_at = $3 WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL",
    "UPDATE grants SET revoked_at = $3 WHERE user_id = $1 AND $2::TEXT IS NULL AND revoked_at IS NULL",
    "UPDATE grants SET revoked_at = $3 WHERE $1::TEXT IS NULL AND client_id = $2 AND revoked_at IS NULL",
];

/// Which of the statements above a filter takes; `None` when it names nothing (or holds a NUL,
/// which no stored text has).
fn grant_form(filter: &GrantFilter) -> Option<usize> {
    let nul = |value: &Option<String>| value.as_deref().is_some_and(|v| v.contains('\0'));
    if nul(&filter.user_id) || nul(&filter.client_id) {
        return None;
    }
    match (&filter.user_id, &filter.client_id) {
        (Some(_), Some(_)) => Some(0),
        (Some(_), None) => Some(1),
        (None, Some(_)) => Some(2),
        (None, None) => None,
    }
}

#[async_trait]
impl TokenStore for PgStore {
    async fn grants(&self, filter: &GrantFilter, now: i64, limit: usize) -> Result<Vec<Grant>> {
        let Some(form) = grant_form(filter) else { return Ok(Vec::new()) };
        sqlx::query(GRANT_LISTS[form])
            .bind(&filter.user_id)
            .bind(&filter.client_id)
            .bind(now)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(grant_from_row)
            .collect()
    }

    async fn revoke_grants(&self, filter: &GrantFilter, now: i64) -> Result<u64> {
        let Some(form) = grant_form(filter) else { return Ok(0) };
        let revoked = sqlx::query(GRANT_REVOCATIONS[form])
            .bind(&filter.user_id)
            .bind(&filter.client_id)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(revoked.rows_affected())
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
        // Held until the commit, as the client row: a concurrent disabling of the user waits
        // for this grant and then revokes it, or has committed and this stores nothing.
        let disabled: Option<bool> =
            sqlx::query_scalar("SELECT disabled_at IS NOT NULL FROM users WHERE id = $1 FOR SHARE")
                .bind(&g.user_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        if disabled == Some(true) {
            return Ok(Issued::UserDisabled);
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

    async fn refresh_token(&self, token_hash: &str, now: i64) -> Result<Option<StoredRefresh>> {
        let row = sqlx::query(refresh_select!(""))
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.as_ref().map(stored_refresh).transpose()
    }

    async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        now: i64,
        plan: RotationPlan,
    ) -> Result<Option<(StoredRefresh, Rotation)>> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // Lock the presented token's row: concurrent rotations of one token serialize here.
        let row = sqlx::query(refresh_select!(" FOR UPDATE OF rt"))
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        let Some(row) = row else { return Ok(None) };
        let stored = stored_refresh(&row)?;
        let sealed = row.try_get("successor_sealed").map_err(backend)?;
        let rotation = match rules::presentation(&stored, sealed, plan, now) {
            None => Rotation::Declined,
            Some((step, request)) => rotate(&mut tx, token_hash, step, &request, now).await?,
        };
        tx.commit().await.map_err(backend)?;
        Ok(Some((stored, rotation)))
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
        let outcome = rules::revocation(owner.as_ref().map(|(_, owner)| owner.as_str()), client_id);
        if let (RefreshRevocation::Revoked, Some((grant_id, _))) = (&outcome, &owner) {
            revoke_grant(&mut tx, grant_id, now).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(outcome)
    }
}
