//! The large database: fills the benchmark's database (SQLite, or a PostgreSQL schema) to the
//! shape of about a year of real use, so that every scenario can be measured on it beside the
//! empty one.
//!
//! Rows are generated inside the database (a recursive series on SQLite, `generate_series` on
//! PostgreSQL; `INSERT … SELECT`), one table per transaction, while the server is stopped: minutes for the full shape instead of the
//! hours that writes through the server would take. Every user shares one password hash (the
//! benchmark user's), every client is a copy of one registration. Every row is live, as the
//! purge keeps a real database; `BENCH_BACKLOG=1` instead lets 1 % of the grants (with their
//! refresh tokens) and sessions expire, so the purge has a backlog to work off while the
//! scenarios run.

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
    /// Whether 1 % of the grants and sessions have expired and wait for the purge.
    backlog: bool,
}

impl Shape {
    /// The shape of a year of use (1 M users, 100 k clients, 5 M grants, 8.6 M refresh
    /// tokens, 1 M sessions and consents), times `scale`; with `backlog`, 1 % of the grants
    /// and sessions expired an hour ago.
    pub(crate) fn scaled(scale: f64, backlog: bool) -> Shape {
        let of = |full: f64| ((full * scale).round() as u64).max(1);
        Shape {
            users: of(1e6),
            clients: of(1e5),
            grants: of(5e6),
            refresh_tokens: of(8.6e6),
            sessions: of(1e6),
            consents: of(1e6),
            backlog,
        }
    }
}

/// Where the two engines' SQL differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// A `FROM` item of the numbers `i` from 0 to `count - 1`.
    fn series(self, count: u64) -> String {
        match self {
            Dialect::Sqlite => format!(
                "(WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {count}) SELECT i FROM n)"
            ),
            Dialect::Postgres => format!("generate_series(0, {}) AS s(i)", count - 1),
        }
    }

    /// `prefix` and then `value` with zeros in front up to `width` digits.
    fn padded(self, prefix: &str, width: u32, value: &str) -> String {
        match self {
            Dialect::Sqlite => format!("printf('{prefix}%0{width}d', {value})"),
            Dialect::Postgres => format!("'{prefix}' || lpad(({value})::text, {width}, '0')"),
        }
    }

    /// The JSON registration `metadata` with its client_id replaced by `id`.
    fn with_client_id(self, metadata: &str, id: &str) -> String {
        match self {
            Dialect::Sqlite => format!("json_set({metadata}, '$.client_id', {id})"),
            Dialect::Postgres => {
                format!("jsonb_set({metadata}::jsonb, '{{client_id}}', to_jsonb({id}))::text")
            }
        }
    }

    /// The statement's one parameter (the password hash).
    fn parameter(self) -> &'static str {
        match self {
            Dialect::Sqlite => "?1",
            Dialect::Postgres => "$1",
        }
    }
}

/// The expiry of row `column`: up to a month after `now`; with a `backlog`, one row in 100
/// ended an hour ago.
fn expiry(column: &str, now: u64, backlog: bool) -> String {
    let month = 30 * 86_400;
    let live = format!("{now} + 1 + {column} % {month}");
    if backlog {
        format!("CASE WHEN {column} % 100 = 0 THEN {now} - 3600 ELSE {live} END")
    } else {
        live
    }
}

/// The statements that fill users, clients, sessions and consents, by table.
fn accounts(sql: Dialect, shape: &Shape, now: u64) -> Vec<(&'static str, String)> {
    let Shape { users, clients, sessions, consents, backlog, .. } = *shape;
    let hash = sql.parameter();
    let metadata = sql.with_client_id("t.metadata", "'pop-client-' || i");
    vec![
        (
            "users",
            format!(
                "INSERT INTO users (id, username, password_hash, email, name, created_at, updated_at)
                 SELECT 'pop-user-id-' || i, 'pop-user-' || i, {hash}, 'user' || i || '@example.com',
                        NULL, {now}, {now} FROM {}",
                sql.series(users)
            ),
        ),
        (
            "clients",
            format!(
                "INSERT INTO clients (client_id, secret_hash, source, metadata, created_at, updated_at)
                 SELECT 'pop-client-' || i, NULL, 'cli', {metadata}, {now}, {now}
                 FROM {}, (SELECT metadata FROM clients WHERE client_id = 'bench-rs256') t",
                sql.series(clients)
            ),
        ),
        (
            // The copies' CORS origins are the template's, as their redirect URIs are.
            "client_origins",
            "INSERT INTO client_origins (origin, client_id)
             SELECT o.origin, c.client_id FROM clients c, client_origins o
             WHERE o.client_id = 'bench-rs256' AND c.client_id LIKE 'pop-client-%'"
                .to_owned(),
        ),
        (
            "sessions",
            format!(
                "INSERT INTO sessions (id_hash, user_id, auth_time, created_at, expires_at, sid)
                 SELECT {}, 'pop-user-id-' || (i % {users}), {now} - 3600, {now} - 3600, {},
                        'pop-sid-' || i FROM {}",
                sql.padded("pop-session-", 52, "i"),
                expiry("i", now, backlog),
                sql.series(sessions)
            ),
        ),
        (
            "consents",
            format!(
                "INSERT INTO consents (user_id, client_id, scopes, granted_at)
                 SELECT 'pop-user-id-' || (i % {users}), 'pop-client-' || (i % {clients}),
                        'openid profile', {now} FROM {} WHERE true ON CONFLICT DO NOTHING",
                sql.series(consents)
            ),
        ),
    ]
}

/// The statements that fill grants and refresh tokens: one live token per grant, the rest
/// the rotated tokens of the same families.
fn grants(sql: Dialect, shape: &Shape, now: u64) -> Vec<(&'static str, String)> {
    let Shape { users, clients, grants, refresh_tokens, backlog, .. } = *shape;
    vec![
        (
            "grants",
            format!(
                "INSERT INTO grants (id, client_id, user_id, session_id_hash, scopes, audience,
                                     auth_time, created_at, expires_at, revoked_at)
                 SELECT 'pop-grant-' || i, 'pop-client-' || (i % {clients}),
                        'pop-user-id-' || (i % {users}), NULL, 'openid profile offline_access', '[]',
                        {now} - 86400, {now} - 86400, {}, NULL FROM {}",
                expiry("i", now, backlog),
                sql.series(grants)
            ),
        ),
        (
            "refresh_tokens",
            format!(
                "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at, rotated_at, successor_sealed)
                 SELECT {}, 'pop-grant-' || (i % {grants}), {now} - 86400, {},
                        CASE WHEN i < {grants} THEN NULL ELSE {now} - 3600 END, NULL
                 FROM {}",
                sql.padded("pop-refresh-", 52, "i"),
                expiry(&format!("(i % {grants})"), now, backlog),
                sql.series(refresh_tokens)
            ),
        ),
    ]
}

/// Every statement of the fill, in order, by table.
fn statements(sql: Dialect, shape: &Shape) -> anyhow::Result<Vec<(&'static str, String)>> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    Ok(accounts(sql, shape, now).into_iter().chain(grants(sql, shape, now)).collect())
}

/// Fills the database at `path` (migrated, with the benchmark's clients and user, and no
/// server running on it) to `shape`.
pub(crate) fn sqlite(path: &Path, shape: Shape) -> anyhow::Result<()> {
    let c = Connection::open(path).context("opening the benchmark database")?;
    c.execute_batch("PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;")?;
    let hash: String =
        c.query_row("SELECT password_hash FROM users WHERE username = 'bench'", [], |r| r.get(0))?;
    for (table, sql) in statements(Dialect::Sqlite, &shape)? {
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

/// Fills the PostgreSQL `schema` on `base` (migrated, with the benchmark's clients and user,
/// no server running on it) to `shape`, then analyzes it as autovacuum would have.
pub(crate) async fn postgres(base: &str, schema: &str, shape: Shape) -> anyhow::Result<()> {
    let pool = connect(base, Some(schema)).await?;
    let hash: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'bench'")
            .fetch_one(&pool)
            .await?;
    for (table, sql) in statements(Dialect::Postgres, &shape)? {
        let started = Instant::now();
        let query = sqlx::query(sqlx::AssertSqlSafe(sql));
        let query = if table == "users" { query.bind(&hash) } else { query };
        let rows = query.execute(&pool).await?.rows_affected();
        println!("  populate: {rows} {table} in {:.1} s", started.elapsed().as_secs_f64());
    }
    sqlx::query("ANALYZE").execute(&pool).await?;
    pool.close().await;
    Ok(())
}

/// A pool on `base`, in `schema` when given.
async fn connect(base: &str, schema: Option<&str>) -> anyhow::Result<sqlx::PgPool> {
    let mut options: sqlx::postgres::PgConnectOptions = base.parse()?;
    if let Some(schema) = schema {
        options = options.options([("search_path", schema)]);
    }
    Ok(sqlx::postgres::PgPoolOptions::new().max_connections(1).connect_with(options).await?)
}

/// A fresh schema for one run: its name.
pub(crate) async fn create_schema(base: &str) -> anyhow::Result<String> {
    let pool = connect(base, None).await?;
    let suffix = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() % 1_000_000_000_000;
    let schema = format!("lk_bench_{suffix}");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&pool).await?;
    pool.close().await;
    Ok(schema)
}

/// Drops the run's schema.
pub(crate) async fn drop_schema(base: &str, schema: &str) -> anyhow::Result<()> {
    let pool = connect(base, None).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(())
}

/// The bytes the schema's tables take with their indexes.
pub(crate) async fn postgres_size(base: &str, schema: &str) -> anyhow::Result<f64> {
    let pool = connect(base, None).await?;
    let bytes: Option<i64> = sqlx::query_scalar(
        "SELECT sum(pg_total_relation_size(c.oid))::bigint FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'",
    )
    .bind(schema)
    .fetch_one(&pool)
    .await?;
    pool.close().await;
    Ok(bytes.unwrap_or(0) as f64)
}
