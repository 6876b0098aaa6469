//! The large database: fills the benchmark's SQLite file to the shape of about a year of real
//! use, so that every scenario can be measured on it beside the empty one.
//!
//! Rows are generated inside SQLite (a recursive series, `INSERT … SELECT`), one table per
//! transaction, on the server's stopped database: minutes for the full shape instead of the
//! hours that writes through the server would take. Every user shares one password hash (the
//! benchmark user's), every client is a copy of one registration. About 1 % of the grants,
//! with their refresh tokens, and of the sessions have expired and wait for the purge, so the
//! purge has a backlog to work off while the scenarios run.

use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rusqlite::Connection;

/// How many rows of each kind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    users: u64,
    clients: u64,
    grants: u64,
    refresh_tokens: u64,
    sessions: u64,
    consents: u64,
}

impl Shape {
    /// The shape of a year of use (1 M users, 100 k clients, 5 M grants, 8.6 M refresh
    /// tokens, 1 M sessions and consents), times `scale`.
    pub(crate) fn scaled(scale: f64) -> Shape {
        let of = |full: f64| ((full * scale).round() as u64).max(1);
        Shape {
            users: of(1e6),
            clients: of(1e5),
            grants: of(5e6),
            refresh_tokens: of(8.6e6),
            sessions: of(1e6),
            consents: of(1e6),
        }
    }
}

/// A series `i` from 0 to `count - 1`, for `INSERT … SELECT`.
fn series(count: u64) -> String {
    format!("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {count})")
}

/// Fills the database at `path` (migrated, with the benchmark's clients and user, and no
/// server running on it) to `shape`.
pub(crate) fn sqlite(path: &Path, shape: Shape) -> anyhow::Result<()> {
    let c = Connection::open(path).context("opening the benchmark database")?;
    c.execute_batch("PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;")?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let Shape { users, clients, grants, refresh_tokens, sessions, consents } = shape;
    let hash: String =
        c.query_row("SELECT password_hash FROM users WHERE username = 'bench'", [], |r| r.get(0))?;
    let month = 30 * 86_400;
    // Expired rows (1 in 100) ended an hour ago; the others live up to a month more.
    let expiry = |column: &str| {
        format!(
            "CASE WHEN {column} % 100 = 0 THEN {now} - 3600 ELSE {now} + 1 + {column} % {month} END"
        )
    };
    let steps: [(&str, String); 6] = [
        (
            "users",
            format!(
                "{} INSERT INTO users (id, username, password_hash, email, name, created_at, updated_at)
                 SELECT printf('pop-user-id-%d', i), printf('pop-user-%d', i), ?1,
                        printf('user%d@example.com', i), NULL, {now}, {now} FROM n",
                series(users)
            ),
        ),
        (
            "clients",
            format!(
                "{} INSERT INTO clients (client_id, secret_hash, source, metadata, created_at, updated_at)
                 SELECT printf('pop-client-%d', i), NULL, 'cli',
                        json_set(t.metadata, '$.client_id', printf('pop-client-%d', i)), {now}, {now}
                 FROM n, (SELECT metadata FROM clients WHERE client_id = 'bench-rs256') t",
                series(clients)
            ),
        ),
        (
            "sessions",
            format!(
                "{} INSERT INTO sessions (id_hash, user_id, auth_time, created_at, expires_at, sid)
                 SELECT printf('pop-session-%058d', i), printf('pop-user-id-%d', i % {users}),
                        {now} - 3600, {now} - 3600, {}, printf('pop-sid-%d', i) FROM n",
                series(sessions),
                expiry("i")
            ),
        ),
        (
            "consents",
            format!(
                "{} INSERT INTO consents (user_id, client_id, scopes, granted_at)
                 SELECT printf('pop-user-id-%d', i % {users}), printf('pop-client-%d', i % {clients}),
                        'openid profile', {now} FROM n",
                series(consents)
            ),
        ),
        (
            "grants",
            format!(
                "{} INSERT INTO grants (id, client_id, user_id, session_id_hash, scopes, audience,
                                        auth_time, created_at, expires_at, revoked_at)
                 SELECT printf('pop-grant-%d', i), printf('pop-client-%d', i % {clients}),
                        printf('pop-user-id-%d', i % {users}), NULL, 'openid profile offline_access', '[]',
                        {now} - 86400, {now} - 86400, {}, NULL FROM n",
                series(grants),
                expiry("i")
            ),
        ),
        (
            // One live token per grant; the rest are the rotated tokens of the same families.
            "refresh_tokens",
            format!(
                "{} INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at, rotated_at, successor_sealed)
                 SELECT printf('pop-refresh-%052d', i), printf('pop-grant-%d', i % {grants}),
                        {now} - 86400, {}, CASE WHEN i < {grants} THEN NULL ELSE {now} - 3600 END, NULL
                 FROM n",
                series(refresh_tokens),
                expiry(&format!("(i % {grants})"))
            ),
        ),
    ];
    for (table, sql) in steps {
        let started = Instant::now();
        let tx = c.unchecked_transaction()?;
        let rows =
            if table == "users" { tx.execute(&sql, [&hash])? } else { tx.execute(&sql, [])? };
        tx.commit()?;
        println!("  populate: {rows} {table} in {:.1} s", started.elapsed().as_secs_f64());
    }
    // No ANALYZE: latchkey does not run one either, so plans are what a real database gets.
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?;
    Ok(())
}
