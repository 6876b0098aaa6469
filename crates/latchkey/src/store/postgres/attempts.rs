//! The attempt schedules behind login and client-secret throttling (see `throttle`).

use sqlx::postgres::PgPool;

use super::backend;
use crate::model::{AttemptEnd, AttemptSlot};
use crate::store::Result;

/// Takes an attempt schedule's slot: the failures so far when granted, no row otherwise.
const BEGIN_ATTEMPT: &str =
    "INSERT INTO login_attempts (key, failures, next_at, busy_until, updated_at)
             VALUES ($1, 0, 0, $2 + $3, $2)
             ON CONFLICT (key) DO UPDATE SET
                 failures = CASE WHEN login_attempts.updated_at <= $2 - $4 THEN 0
                                 ELSE login_attempts.failures END,
                 busy_until = $2 + $3, updated_at = $2
             WHERE login_attempts.busy_until <= $2
               AND (login_attempts.next_at <= $2 OR login_attempts.updated_at <= $2 - $4)
             RETURNING failures";

/// [`crate::store::UserStore::begin_attempt`].
pub(super) async fn begin(
    pool: &PgPool,
    key: &str,
    now: i64,
    lease: i64,
    window: i64,
) -> Result<AttemptSlot> {
    let granted: Option<i64> = sqlx::query_scalar(BEGIN_ATTEMPT)
        .bind(key)
        .bind(now)
        .bind(lease)
        .bind(window)
        .fetch_optional(pool)
        .await
        .map_err(backend)?;
    if let Some(failures) = granted {
        return Ok(AttemptSlot::Granted { failures: u32::try_from(failures).unwrap_or(u32::MAX) });
    }
    // Read apart from the upsert: the row may be gone by now (see `AttemptSlot::refused`).
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT busy_until, next_at FROM login_attempts WHERE key = $1")
            .bind(key)
            .fetch_optional(pool)
            .await
            .map_err(backend)?;
    Ok(AttemptSlot::refused(row, now))
}

/// [`crate::store::UserStore::end_attempt`].
pub(super) async fn end(pool: &PgPool, key: &str, end: AttemptEnd, now: i64) -> Result<()> {
    let query = match end {
        AttemptEnd::Succeeded => sqlx::query("DELETE FROM login_attempts WHERE key = $1").bind(key),
        AttemptEnd::Failed { failures, next_at } => sqlx::query(
            "UPDATE login_attempts SET failures = $2, next_at = $3, busy_until = 0,
             updated_at = $4 WHERE key = $1",
        )
        .bind(key)
        .bind(i64::from(failures))
        .bind(next_at)
        .bind(now),
    };
    query.execute(pool).await.map_err(backend)?;
    Ok(())
}
