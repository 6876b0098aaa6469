//! The SQLite engine: grants and the tokens issued in them ([`TokenStore`]): issuing, refresh-token
//! rotation with reuse detection, revocation, status.

use async_trait::async_trait;

use super::{
    AccessTokenRecord, Connection, Grant, Issue, Issued, OpaqueAccess, OptionalExtension,
    RefreshRevocation, RefreshToken, Result, Rotation, RotationRequest, Row, SqliteStore,
    StoredAccess, StoredRefresh, audience_from_json, audience_json, backend, params, replay_code,
    revoke_grant, scopes_at, with_audience,
};
use crate::store::RotationPlan;
use rusqlite::types::Value;

use crate::store::rules::{self, RotationStep};
use crate::store::{GrantFilter, TokenStore};

const GRANT_COLUMNS: &str = "g.id, g.client_id, g.user_id, g.session_id_hash, g.scopes, g.audience, \
     g.auth_time, g.created_at, g.expires_at, g.revoked_at";

fn grant_from_row(row: &Row<'_>, at: usize) -> rusqlite::Result<(Grant, String)> {
    let grant = Grant {
        id: row.get(at)?,
        client_id: row.get(at + 1)?,
        user_id: row.get(at + 2)?,
        session_id_hash: row.get(at + 3)?,
        scopes: scopes_at(row, at + 4)?,
        audience: Vec::new(),
        auth_time: row.get(at + 6)?,
        created_at: row.get(at + 7)?,
        expires_at: row.get(at + 8)?,
        revoked_at: row.get(at + 9)?,
    };
    Ok((grant, row.get(at + 5)?))
}

fn insert_refresh(c: &Connection, token: &RefreshToken) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut s| s.execute(params![token.token_hash, token.grant_id, token.created_at, token.expires_at]))
    .map(drop)
    .map_err(backend)
}

fn insert_access(connection: &Connection, access: &AccessTokenRecord) -> Result<()> {
    let opaque = access.opaque.as_ref();
    connection
        .prepare_cached(
            "INSERT INTO access_tokens (jti, grant_id, client_id, expires_at, token_hash, subject, scopes,
                 audience, issued_at, auth_time) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .and_then(|mut s| {
            s.execute(params![
                access.jti,
                access.grant_id,
                access.client_id,
                access.expires_at,
                opaque.map(|o| &o.token_hash),
                opaque.map(|o| &o.subject),
                opaque.map(|o| o.scopes.to_param()),
                opaque.map(|o| audience_json(&o.audience)),
                opaque.map(|o| o.issued_at),
                opaque.and_then(|o| o.auth_time),
            ])
        })
        .map(drop)
        .map_err(backend)
}

/// Columns of an access-token row joined with its grant and the grant's user.
macro_rules! ACCESS_COLUMNS {
    () => {
        "a.jti, a.grant_id, a.client_id, a.expires_at, a.token_hash, a.subject, a.scopes, a.audience,
         a.issued_at, a.auth_time, a.revoked_at IS NOT NULL OR COALESCE(g.revoked_at IS NOT NULL, 0), u.username
         FROM access_tokens a LEFT JOIN grants g ON g.id = a.grant_id LEFT JOIN users u ON u.id = g.user_id"
    };
}

/// An access-token row before its audience JSON is parsed.
struct StoredRow {
    stored: StoredAccess,
    audience: Option<String>,
}

impl StoredRow {
    fn into_stored(mut self) -> Result<StoredAccess> {
        if let (Some(opaque), Some(audience)) = (&mut self.stored.record.opaque, &self.audience) {
            opaque.audience = audience_from_json(audience)?;
        }
        Ok(self.stored)
    }
}

fn stored_access_from_row(row: &Row<'_>) -> rusqlite::Result<StoredRow> {
    let token_hash: Option<String> = row.get(4)?;
    let opaque = match token_hash {
        Some(token_hash) => Some(OpaqueAccess {
            token_hash,
            subject: row.get::<_, Option<String>>(5)?.unwrap_or_default(),
            scopes: scopes_at(row, 6)?,
            audience: Vec::new(),
            issued_at: row.get::<_, Option<i64>>(8)?.unwrap_or_default(),
            auth_time: row.get(9)?,
        }),
        None => None,
    };
    Ok(StoredRow {
        stored: StoredAccess {
            record: AccessTokenRecord {
                jti: row.get(0)?,
                grant_id: row.get(1)?,
                client_id: row.get(2)?,
                expires_at: row.get(3)?,
                opaque,
            },
            revoked: row.get(10)?,
            username: row.get(11)?,
        },
        audience: row.get(7)?,
    })
}

/// A refresh token (in any state) with its grant, whether the grant's session is live at
/// `now`, and its sealed successor if one is kept.
fn read_refresh(
    c: &Connection,
    token_hash: &str,
    now: i64,
) -> Result<Option<(StoredRefresh, Option<Vec<u8>>)>> {
    let row = c
        .prepare_cached(&format!(
            "SELECT rt.token_hash, rt.grant_id, rt.created_at, rt.expires_at, rt.rotated_at,
                    s.id_hash IS NOT NULL, rt.successor_sealed, {GRANT_COLUMNS}
             FROM refresh_tokens rt JOIN grants g ON g.id = rt.grant_id
             LEFT JOIN sessions s ON s.id_hash = g.session_id_hash AND s.expires_at > ?2
             WHERE rt.token_hash = ?1"
        ))
        .and_then(|mut s| {
            s.query_row(params![token_hash, now], |row| {
                let token = RefreshToken {
                    token_hash: row.get(0)?,
                    grant_id: row.get(1)?,
                    created_at: row.get(2)?,
                    expires_at: row.get(3)?,
                    rotated_at: row.get(4)?,
                };
                Ok((token, row.get(5)?, row.get(6)?, grant_from_row(row, 7)?))
            })
            .optional()
        })
        .map_err(backend)?;
    let Some((token, session_live, sealed, grant)) = row else { return Ok(None) };
    let grant = with_audience(grant, |g, a| g.audience = a)?;
    Ok(Some((StoredRefresh { token, grant, session_live }, sealed)))
}

/// Carries out the rotation rule's step for a presented token.
fn rotate(
    c: &Connection,
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
                insert_access(c, access)?;
            }
            Ok(Rotation::Retry { successor_sealed })
        }
        RotationStep::RevokeFamily { grant_id } => {
            revoke_grant(c, &grant_id, now)?;
            Ok(Rotation::Reused)
        }
        RotationStep::Rotate => {
            c.prepare_cached(
                "UPDATE refresh_tokens SET rotated_at = ?1, successor_sealed = ?2 WHERE token_hash = ?3",
            )
            .and_then(|mut s| s.execute(params![now, request.successor_sealed, token_hash]))
            .map_err(backend)?;
            insert_refresh(c, &request.successor)?;
            if let Some(access) = &request.access {
                insert_access(c, access)?;
            }
            Ok(Rotation::Rotated)
        }
    }
}

/// The condition and parameters of a grant filter, each form on its own index (`grants_user`,
/// `grants_client`); `None` when the filter names nothing.
fn grant_condition(filter: &GrantFilter) -> Option<(&'static str, Vec<String>)> {
    match (&filter.user_id, &filter.client_id) {
        (Some(user), Some(client)) => {
            Some(("user_id = ?1 AND client_id = ?2", vec![user.clone(), client.clone()]))
        }
        (Some(user), None) => Some(("user_id = ?1", vec![user.clone()])),
        (None, Some(client)) => Some(("client_id = ?1", vec![client.clone()])),
        (None, None) => None,
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn grants(&self, filter: &GrantFilter, now: i64, limit: usize) -> Result<Vec<Grant>> {
        let Some((condition, values)) = grant_condition(filter) else { return Ok(Vec::new()) };
        let at = values.len();
        let mut values: Vec<Value> = values.into_iter().map(Value::Text).collect();
        values.extend([
            Value::Integer(now),
            Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)),
        ]);
        let sql = format!(
            "SELECT id, client_id, user_id, session_id_hash, scopes, audience, auth_time,
                 created_at, expires_at, revoked_at
             FROM grants WHERE {condition} AND revoked_at IS NULL AND expires_at > ?{}
             ORDER BY created_at DESC, id LIMIT ?{}",
            at + 1,
            at + 2
        );
        let rows = self
            .read(move |c| {
                let mut s = c.prepare_cached(&sql).map_err(backend)?;
                let rows = s
                    .query_map(rusqlite::params_from_iter(&values), |row| grant_from_row(row, 0))
                    .map_err(backend)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
            })
            .await?;
        rows.into_iter()
            .map(|row| with_audience(row, |grant: &mut Grant, audience| grant.audience = audience))
            .collect()
    }

    async fn revoke_grants(&self, filter: &GrantFilter, now: i64) -> Result<u64> {
        let Some((condition, values)) = grant_condition(filter) else { return Ok(0) };
        let at = values.len();
        let mut values: Vec<Value> = values.into_iter().map(Value::Text).collect();
        values.push(Value::Integer(now));
        let sql = format!(
            "UPDATE grants SET revoked_at = ?{} WHERE {condition} AND revoked_at IS NULL",
            at + 1
        );
        self.write(move |c| {
            c.prepare_cached(&sql)
                .and_then(|mut s| s.execute(rusqlite::params_from_iter(&values)))
                .map(|n| n as u64)
                .map_err(backend)
        })
        .await
    }

    async fn issue(&self, issue: &Issue) -> Result<Issued> {
        let issue = issue.clone();
        self.write(move |c| {
            let client_exists = c
                .prepare_cached("SELECT 1 FROM clients WHERE client_id = ?1")
                .and_then(|mut s| s.exists([&issue.grant.client_id]))
                .map_err(backend)?;
            if !client_exists {
                return Ok(Issued::ClientRemoved);
            }
            let disabled = c
                .prepare_cached("SELECT 1 FROM users WHERE id = ?1 AND disabled_at IS NOT NULL")
                .and_then(|mut s| s.exists([&issue.grant.user_id]))
                .map_err(backend)?;
            if disabled {
                return Ok(Issued::UserDisabled);
            }
            if let Some(code_hash) = &issue.code_hash {
                let now = issue.grant.created_at;
                let spent = c
                    .prepare_cached(
                        "UPDATE authorization_codes SET redeemed_at = ?1, grant_id = ?2
                         WHERE code_hash = ?3 AND redeemed_at IS NULL",
                    )
                    .and_then(|mut s| s.execute(params![now, issue.grant.id, code_hash]))
                    .map_err(backend)?;
                if spent == 0 {
                    // Another exchange spent it first: this one is a replay.
                    let family = replay_code(c, code_hash, now)?;
                    return Ok(Issued::CodeSpent { family });
                }
            }
            let g = &issue.grant;
            c.prepare_cached(
                "INSERT INTO grants (id, client_id, user_id, session_id_hash, scopes, audience, auth_time,
                     created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    g.id,
                    g.client_id,
                    g.user_id,
                    g.session_id_hash,
                    g.scopes.to_param(),
                    audience_json(&g.audience),
                    g.auth_time,
                    g.created_at,
                    g.expires_at
                ])
            })
            .map_err(backend)?;
            if let Some(refresh) = &issue.refresh {
                insert_refresh(c, refresh)?;
            }
            if let Some(access) = &issue.access {
                insert_access(c, access)?;
            }
            Ok(Issued::Done)
        })
        .await
    }

    async fn refresh_token(&self, token_hash: &str, now: i64) -> Result<Option<StoredRefresh>> {
        let token_hash = token_hash.to_owned();
        let found = self.read(move |c| read_refresh(c, &token_hash, now)).await?;
        Ok(found.map(|(stored, _)| stored))
    }

    async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        now: i64,
        plan: RotationPlan,
    ) -> Result<Option<(StoredRefresh, Rotation)>> {
        let token_hash = token_hash.to_owned();
        // One writer job: the writer's transaction is the lock concurrent rotations queue on.
        self.write(move |c| {
            let Some((stored, sealed)) = read_refresh(c, &token_hash, now)? else {
                return Ok(None);
            };
            let rotation = match rules::presentation(&stored, sealed, plan, now) {
                None => Rotation::Declined,
                Some((step, request)) => rotate(c, &token_hash, step, &request, now)?,
            };
            Ok(Some((stored, rotation)))
        })
        .await
    }

    async fn insert_access_token(&self, access: &AccessTokenRecord) -> Result<()> {
        let access = access.clone();
        self.write(move |c| insert_access(c, &access)).await
    }

    async fn jwt_status(
        &self,
        jti: &str,
        grant_id: &str,
        now: i64,
    ) -> Result<(bool, Option<String>)> {
        let (jti, grant_id) = (jti.to_owned(), grant_id.to_owned());
        self.read(move |c| {
            c.prepare_cached(
                "SELECT g.revoked_at IS NOT NULL OR g.expires_at <= ?3
                        OR EXISTS (SELECT 1 FROM access_tokens a WHERE a.jti = ?1 AND a.revoked_at IS NOT NULL),
                        u.username
                 FROM grants g LEFT JOIN users u ON u.id = g.user_id WHERE g.id = ?2",
            )
            .and_then(|mut s| s.query_row(params![jti, grant_id, now], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map(|found| found.unwrap_or((true, None)))
            .map_err(backend)
        })
        .await
    }

    async fn access_token_by_jti(&self, jti: &str, now: i64) -> Result<Option<StoredAccess>> {
        let jti = jti.to_owned();
        self.read(move |c| {
            c.prepare_cached(concat!(
                "SELECT ",
                ACCESS_COLUMNS!(),
                " WHERE a.jti = ?1 AND a.expires_at > ?2"
            ))
            .and_then(|mut s| s.query_row(params![jti, now], stored_access_from_row).optional())
            .map_err(backend)?
            .map(StoredRow::into_stored)
            .transpose()
        })
        .await
    }

    async fn access_token_by_hash(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<StoredAccess>> {
        let token_hash = token_hash.to_owned();
        self.read(move |c| {
            c.prepare_cached(concat!(
                "SELECT ",
                ACCESS_COLUMNS!(),
                " WHERE a.token_hash = ?1 AND a.expires_at > ?2"
            ))
            .and_then(|mut s| {
                s.query_row(params![token_hash, now], stored_access_from_row).optional()
            })
            .map_err(backend)?
            .map(StoredRow::into_stored)
            .transpose()
        })
        .await
    }

    async fn revoke_access_token(&self, access: &AccessTokenRecord, now: i64) -> Result<()> {
        let access = access.clone();
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO access_tokens (jti, grant_id, client_id, expires_at, revoked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (jti) DO UPDATE SET revoked_at = COALESCE(access_tokens.revoked_at, excluded.revoked_at)",
            )
            .and_then(|mut s| {
                s.execute(params![access.jti, access.grant_id, access.client_id, access.expires_at, now])
            })
            .map(drop)
            .map_err(backend)
        })
        .await
    }

    async fn revoke_refresh_token(
        &self,
        token_hash: &str,
        client_id: &str,
        now: i64,
    ) -> Result<RefreshRevocation> {
        let (token_hash, client_id) = (token_hash.to_owned(), client_id.to_owned());
        self.write(move |c| {
            let owner: Option<(String, String)> = c
                .prepare_cached(
                    "SELECT g.id, g.client_id FROM refresh_tokens rt JOIN grants g ON g.id = rt.grant_id
                     WHERE rt.token_hash = ?1",
                )
                .and_then(|mut s| s.query_row([&token_hash], |r| Ok((r.get(0)?, r.get(1)?))).optional())
                .map_err(backend)?;
            let outcome = rules::revocation(owner.as_ref().map(|(_, owner)| owner.as_str()), &client_id);
            if let (RefreshRevocation::Revoked, Some((grant_id, _))) = (&outcome, &owner) {
                revoke_grant(c, grant_id, now)?;
            }
            Ok(outcome)
        })
        .await
    }
}
