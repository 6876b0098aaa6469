//! The SQLite engine: one file, WAL mode, rusqlite with cached prepared statements.
//!
//! rusqlite was chosen over sqlx's SQLite driver by measurement on this hardware (see the
//! README): a point select costs ~8 µs of CPU against 75–100 µs, an insert ~38 µs against
//! 150–190 µs. Writes go to one thread that owns the writing connection and commits them in
//! groups ([`writer`]); reads go to a few threads that own the other connections ([`reader`]).
//! Nothing touches the database on the async runtime's threads.

use std::path::Path;
use std::time::Instant;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::purge::{Batches, PurgePlan};
use super::{
    Error, Options, PasswordChange, PurgeCounter, Result, RotationRequest, Store, StoredKey,
    Synchronous, audience_from_json, audience_json, client_record,
};
use crate::model::key::KeyRecord;
use crate::model::scope::Scopes;
use crate::model::{
    AccessTokenRecord, AttemptEnd, AttemptSlot, AuthorizationCode, ClientRecord, CodeLookup, Grant,
    Issue, Issued, OpaqueAccess, Purged, RefreshRevocation, RefreshToken, Rotation, Session,
    StoredAccess, StoredRefresh, User,
};

/// The database's clock in milliseconds, as SQL (this machine's: SQLite has no server), for
/// [`Store::clock_millis`] and the node rows.
macro_rules! db_now_ms {
    () => {
        "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
    };
}

mod attempts;
mod checkpoint;
mod migrate;
mod reader;
mod writer;

use checkpoint::Checkpointer;
use reader::Readers;
use writer::Writer;

const READERS: usize = 4;

/// A SQLite database file.
pub struct SqliteStore {
    writer: Writer,
    checkpointer: Checkpointer,
    readers: Readers,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` in WAL mode.
    pub async fn open(path: &str, options: Options) -> Result<Self> {
        if path.is_empty() || path.contains('?') {
            return Err(Error::Url(format!(
                "sqlite://{path}: give a file path, e.g. sqlite://latchkey.db or sqlite:///var/lib/latchkey/latchkey.db"
            )));
        }
        let path = path.to_owned();
        let synchronous = options.synchronous;
        blocking(move || {
            create_owner_only(Path::new(&path))?;
            let writer = open_connection(&path, synchronous)?;
            // The checkpointer copies the WAL (see `checkpoint`); when the writer starts the WAL
            // over, its file is cut back to the limit (journal_size_limit).
            writer
                .execute_batch(&format!(
                    "PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {};",
                    options.wal_limit_bytes
                ))
                .map_err(backend)?;
            let checkpointer = Checkpointer::start(
                open_connection(&path, synchronous)?,
                format!("{path}-wal"),
                options.wal_limit_bytes,
            )?;
            let readers = (0..READERS)
                .map(|_| open_connection(&path, synchronous))
                .collect::<Result<Vec<_>>>()?;
            Ok(SqliteStore {
                writer: Writer::start(writer)?,
                checkpointer,
                readers: Readers::start(readers)?,
            })
        })
        .await
    }

    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.writer.write(work).await
    }

    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.readers.read(work).await
    }
}

/// Creates the database's missing directories (0700) and the file itself (0600) before SQLite
/// opens it: SQLite gives its `-wal` and `-shm` files the database file's permissions, so
/// none of the three is readable by other users of the machine (the database holds hashed
/// secrets, and the signing keys in the clear when no master key is set).
fn create_owner_only(path: &Path) -> Result<()> {
    let failed = |what: &Path, error: std::io::Error| {
        Error::Backend(format!("cannot create {}: {error}", what.display()))
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(parent).map_err(|error| failed(parent, error))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(failed(path, error)),
    }
}

/// The database's files (the file, `-wal`, `-shm`) that exist and that users other than the
/// owner may read or write, with their modes: `latchkey serve` and `check` refuse to run then.
pub fn exposed_files(path: &str) -> Vec<(String, u32)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        ["", "-wal", "-shm"]
            .iter()
            .map(|suffix| format!("{path}{suffix}"))
            .filter_map(|file| {
                let mode = std::fs::metadata(&file).ok()?.permissions().mode() & 0o777;
                (mode & 0o077 != 0).then_some((file, mode))
            })
            .collect()
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Vec::new()
    }
}

fn open_connection(path: &str, synchronous: Synchronous) -> Result<Connection> {
    let connection = Connection::open(path)
        .map_err(|error| Error::Backend(format!("cannot open SQLite database {path}: {error}")))?;
    let synchronous = match synchronous {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    // WAL: readers never block the writer. busy_timeout: other processes (the admin CLI, a
    // second server) wait for the write lock instead of failing.
    connection
        .execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; \
             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;"
        ))
        .map_err(backend)?;
    Ok(connection)
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| Error::Backend(format!("SQLite task failed: {error}")))?
}

/// Runs one job of a store thread: a panic in it becomes an error for its caller instead of
/// ending the thread that every later job needs.
fn contained<T>(thread: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
        .unwrap_or_else(|_| Err(Error::Backend(format!("a SQLite {thread} job panicked"))))
}

fn backend(error: rusqlite::Error) -> Error {
    match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => Error::Conflict(error.to_string()),
        _ => Error::Engine(Box::new(error)),
    }
}

/// The scopes in column `index`: corrupt data is an error, never "no scopes".
fn scopes_at(row: &Row<'_>, index: usize) -> rusqlite::Result<Scopes> {
    let value: Option<String> = row.get(index)?;
    let value = value.unwrap_or_default();
    Scopes::from_stored(&value).ok_or_else(|| {
        let message = format!("stored scopes are invalid: {value:?}");
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            message.into(),
        )
    })
}

fn with_audience<T>(
    (mut value, audience): (T, String),
    set: impl FnOnce(&mut T, Vec<String>),
) -> Result<T> {
    set(&mut value, audience_from_json(&audience)?);
    Ok(value)
}

/// What the purge deletes by each row's own expiry, each statement through its table's expiry
/// index (`?1` now, `?2` the batch size). Grants go afterwards, with their refresh tokens
/// ([`DEAD_GRANTS`]): a refresh token expires with its grant, so it needs no expiry index of
/// its own (one B-tree fewer to write at every rotation).
const PURGE: [(&str, PurgeCounter, &str); 6] = [
    (
        "authorization_codes",
        |purged| &mut purged.codes,
        "DELETE FROM authorization_codes WHERE rowid IN
        (SELECT rowid FROM authorization_codes WHERE expires_at <= ?1 LIMIT ?2)",
    ),
    (
        "sessions",
        |purged| &mut purged.sessions,
        "DELETE FROM sessions WHERE rowid IN
        (SELECT rowid FROM sessions WHERE expires_at <= ?1 LIMIT ?2)",
    ),
    (
        "access_tokens",
        |purged| &mut purged.access_tokens,
        "DELETE FROM access_tokens WHERE rowid IN
        (SELECT rowid FROM access_tokens WHERE expires_at <= ?1 LIMIT ?2)",
    ),
    (
        "client_assertions",
        |purged| &mut purged.client_assertions,
        "DELETE FROM client_assertions WHERE rowid IN
        (SELECT rowid FROM client_assertions WHERE expires_at <= ?1 LIMIT ?2)",
    ),
    // A schedule untouched for a day is far past the throttle's window.
    (
        "login_attempts",
        |purged| &mut purged.attempts,
        "DELETE FROM login_attempts WHERE key IN
        (SELECT key FROM login_attempts WHERE updated_at <= ?1 - 86400 LIMIT ?2)",
    ),
    // A node not heard from for a day has stopped (its row's time is in milliseconds).
    (
        "nodes",
        |purged| &mut purged.nodes,
        "DELETE FROM nodes WHERE node_id IN
        (SELECT node_id FROM nodes WHERE synced_at <= (?1 - 86400) * 1000 LIMIT ?2)",
    ),
];

/// Expired grants that no access-token record still names (`?1` now, `?2` the batch size):
/// each goes with its refresh tokens ([`GRANT_TOKENS`], [`GRANT`]), found through the grant.
const DEAD_GRANTS: &str = "SELECT g.id FROM grants g WHERE g.expires_at <= ?1
    AND NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.grant_id = g.id) LIMIT ?2";
const GRANT_TOKENS: &str = "DELETE FROM refresh_tokens WHERE grant_id = ?1";
const GRANT: &str = "DELETE FROM grants WHERE id = ?1";

/// Deletes one batch of dead grants with their refresh tokens: (grants, refresh tokens).
fn purge_grants(c: &Connection, now: i64, limit: i64) -> Result<(u64, u64)> {
    let ids: Vec<String> = {
        let mut s = c.prepare_cached(DEAD_GRANTS).map_err(backend)?;
        let rows = s.query_map(params![now, limit], |row| row.get(0)).map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)?
    };
    let mut tokens = 0;
    for id in &ids {
        tokens +=
            c.prepare_cached(GRANT_TOKENS).and_then(|mut s| s.execute([id])).map_err(backend)?;
        c.prepare_cached(GRANT).and_then(|mut s| s.execute([id])).map_err(backend)?;
    }
    Ok((ids.len() as u64, tokens as u64))
}

/// Marks a spent code replayed and revokes the grant its exchange stored, if any: its id.
fn replay_code(c: &Connection, code_hash: &str, now: i64) -> Result<Option<String>> {
    let grant_id: Option<Option<String>> = c
        .prepare_cached(
            "UPDATE authorization_codes SET replayed_at = COALESCE(replayed_at, ?1)
             WHERE code_hash = ?2 RETURNING grant_id",
        )
        .and_then(|mut s| s.query_row(params![now, code_hash], |row| row.get(0)))
        .optional()
        .map_err(backend)?;
    let grant_id = grant_id.flatten();
    if let Some(grant_id) = &grant_id {
        revoke_grant(c, grant_id, now)?;
    }
    Ok(grant_id)
}

fn revoke_grant(connection: &Connection, grant_id: &str, now: i64) -> Result<()> {
    connection
        .prepare_cached("UPDATE grants SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL")
        .and_then(|mut s| s.execute(params![now, grant_id]))
        .map(drop)
        .map_err(backend)
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<()> {
        self.writer.alone(migrate::migrate).await
    }

    async fn ping(&self) -> Result<()> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(backend)).await
    }

    async fn clock_millis(&self) -> Result<i64> {
        // The same machine's clock: SQLite has no server of its own.
        self.read(|c| {
            c.query_row(concat!("SELECT ", db_now_ms!()), [], |row| row.get(0)).map_err(backend)
        })
        .await
    }

    async fn purge(&self, now: i64) -> Result<Purged> {
        let mut purged = Purged::default();
        // Each batch is its own writer job, timed on the writer: requests interleave between
        // batches, and the batch size keeps each one short (see `store::purge`).
        for (table, counter, sql) in PURGE {
            let mut batches = Batches::new(table);
            loop {
                let limit = batches.size();
                let (removed, held) = self
                    .write(move |c| {
                        let started = Instant::now();
                        let removed = c
                            .prepare_cached(sql)
                            .and_then(|mut s| s.execute(params![now, limit]))
                            .map_err(backend)?;
                        Ok((removed as u64, started.elapsed()))
                    })
                    .await?;
                *counter(&mut purged) += removed;
                if !batches.after(removed, held) {
                    break;
                }
            }
        }
        let mut batches = Batches::new("grants");
        loop {
            let limit = batches.size();
            let ((grants, tokens), held) = self
                .write(move |c| {
                    let started = Instant::now();
                    Ok((purge_grants(c, now, limit)?, started.elapsed()))
                })
                .await?;
            purged.grants += grants;
            purged.refresh_tokens += tokens;
            super::purge::refresh_tokens_removed(tokens);
            if !batches.after(grants, held) {
                break;
            }
        }
        Ok(purged)
    }

    async fn purge_plans(&self) -> Result<Vec<PurgePlan>> {
        let statements: Vec<&'static str> = PURGE
            .iter()
            .map(|(_, _, sql)| *sql)
            .chain([DEAD_GRANTS, GRANT_TOKENS, GRANT])
            .collect();
        self.read(move |c| {
            statements
                .into_iter()
                .map(|statement| {
                    let mut s =
                        c.prepare(&format!("EXPLAIN QUERY PLAN {statement}")).map_err(backend)?;
                    // The plan does not depend on the values: zeros for every parameter.
                    let zeros = rusqlite::params_from_iter(vec![0_i64; s.parameter_count()]);
                    let steps =
                        s.query_map(zeros, |row| row.get::<_, String>(3)).map_err(backend)?;
                    let plan = steps.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)?;
                    Ok(PurgePlan { statement: statement.to_owned(), plan: plan.join("\n") })
                })
                .collect()
        })
        .await
    }

    async fn close(&self) -> Result<()> {
        // Copies the whole WAL into the database file and empties it, so a stopped node
        // leaves one file behind, not a WAL of any size.
        self.checkpointer.truncate().await
    }
}

mod clients;
mod flow;
mod keys;
mod tokens;
mod users;

#[cfg(test)]
mod tests {
    use super::*;

    fn connection() -> Connection {
        Connection::open_in_memory().unwrap()
    }

    fn answer(c: &Connection) -> Result<i64> {
        c.query_row("SELECT 41 + 1", [], |row| row.get(0)).map_err(backend)
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_its_thread_serves_on() {
        let readers = Readers::start(vec![connection()]).unwrap();
        let failed = readers.read(|_| -> Result<i64> { panic!("a bug in a read") }).await;
        assert!(matches!(failed, Err(Error::Backend(m)) if m.contains("read job panicked")));
        assert_eq!(readers.read(answer).await.unwrap(), 42, "the one reader still answers");

        let writer = Writer::start(connection()).unwrap();
        let failed = writer.write(|_| -> Result<i64> { panic!("a bug in a write") }).await;
        assert!(matches!(failed, Err(Error::Backend(m)) if m.contains("write job panicked")));
        assert_eq!(writer.write(answer).await.unwrap(), 42, "the writer still answers");
    }

    #[test]
    fn an_engine_error_keeps_its_source_and_a_constraint_is_a_conflict() {
        let c = connection();
        let error = c.execute("SELECT * FROM nowhere", []).map_err(backend).unwrap_err();
        let source = std::error::Error::source(&error).map(ToString::to_string);
        assert!(source.is_some_and(|s| s.contains("nowhere")), "{error:?}");
        c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)", []).unwrap();
        c.execute("INSERT INTO t VALUES (1)", []).unwrap();
        let twice = c.execute("INSERT INTO t VALUES (1)", []).map_err(backend).unwrap_err();
        assert!(matches!(twice, Error::Conflict(_)), "{twice:?}");
    }
}
