//! The attempt schedules behind login and client-secret throttling (see `throttle`). Both
//! statements of [`begin`] run in one job on the writer thread, so nothing comes between them.

use rusqlite::{Connection, OptionalExtension, params};

use super::backend;
use crate::model::{AttemptEnd, AttemptSlot};
use crate::store::Result;

/// Takes an attempt schedule's slot: the failures so far when granted, no row otherwise.
const BEGIN_ATTEMPT: &str =
    "INSERT INTO login_attempts (key, failures, next_at, busy_until, updated_at)
             VALUES (?1, 0, 0, ?2 + ?3, ?2)
             ON CONFLICT (key) DO UPDATE SET
                 failures = CASE WHEN login_attempts.updated_at <= ?2 - ?4 THEN 0
                                 ELSE login_attempts.failures END,
                 busy_until = ?2 + ?3, updated_at = ?2
             WHERE login_attempts.busy_until <= ?2
               AND (login_attempts.next_at <= ?2 OR login_attempts.updated_at <= ?2 - ?4)
             RETURNING failures";

/// [`crate::store::UserStore::begin_attempt`].
pub(super) fn begin(
    c: &Connection,
    key: &str,
    now: i64,
    lease: i64,
    window: i64,
) -> Result<AttemptSlot> {
    let granted: Option<u32> = c
        .prepare_cached(BEGIN_ATTEMPT)
        .and_then(|mut s| {
            s.query_row(params![key, now, lease, window], |row| row.get(0)).optional()
        })
        .map_err(backend)?;
    if let Some(failures) = granted {
        return Ok(AttemptSlot::Granted { failures });
    }
    let row: Option<(i64, i64)> = c
        .prepare_cached("SELECT busy_until, next_at FROM login_attempts WHERE key = ?1")
        .and_then(|mut s| {
            s.query_row(params![key], |row| Ok((row.get(0)?, row.get(1)?))).optional()
        })
        .map_err(backend)?;
    Ok(AttemptSlot::refused(row, now))
}

/// [`crate::store::UserStore::end_attempt`].
pub(super) fn end(c: &Connection, key: &str, end: AttemptEnd, now: i64) -> Result<()> {
    match end {
        AttemptEnd::Succeeded => c
            .prepare_cached("DELETE FROM login_attempts WHERE key = ?1")
            .and_then(|mut s| s.execute(params![key])),
        AttemptEnd::Failed { failures, next_at } => c
            .prepare_cached(
                "UPDATE login_attempts SET failures = ?2, next_at = ?3, busy_until = 0,
                 updated_at = ?4 WHERE key = ?1",
            )
            .and_then(|mut s| s.execute(params![key, failures, next_at, now])),
    }
    .map(drop)
    .map_err(backend)
}
