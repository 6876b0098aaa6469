//! WAL checkpoints on a thread of their own.
//!
//! By default SQLite checkpoints inside the commit that grows the WAL past 1,000 pages: that
//! one request then copies pages into the database file and fsyncs it, and with group commit
//! every request in its batch waits too (the benchmark's p99 showed it). Instead the writer
//! never checkpoints (`wal_autocheckpoint = 0`) and this thread runs a PASSIVE checkpoint once
//! a second on its own connection: it copies what no reader still needs, never blocks the
//! writer or readers, and the writer starts the WAL over once it is all copied.
//!
//! Under steady load some reader always holds a snapshot, so the WAL may never start over and
//! would grow without end. Past the size limit, once a PASSIVE checkpoint has copied every
//! frame, a RESTART follows: with nothing left to copy it only waits (within the busy timeout)
//! for readers to move to the newest snapshot, and makes the writer start the WAL over,
//! cutting the file back to the limit (`journal_size_limit`). The WAL therefore stays below
//! the limit plus what is written while the copy catches up (about one interval of writes).

use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

use crate::store::{Error, Result};

/// How often the WAL is copied into the database file.
const INTERVAL: Duration = Duration::from_millis(1000);

/// Runs checkpoints until dropped.
pub(super) struct Checkpointer {
    commands: mpsc::Sender<Truncate>,
}

/// A request to copy the whole WAL into the database and empty it now, answered when done.
struct Truncate(tokio::sync::oneshot::Sender<Result<()>>);

impl Checkpointer {
    /// Starts checkpointing through `connection` the WAL file at `wal`, emptying it once it is
    /// larger than `limit` bytes.
    pub(super) fn start(connection: Connection, wal: String, limit: u64) -> Result<Self> {
        connection
            .execute_batch(&format!("PRAGMA journal_size_limit = {limit};"))
            .map_err(|error| Error::Backend(format!("cannot set the WAL limit: {error}")))?;
        let (commands, received) = mpsc::channel::<Truncate>();
        std::thread::Builder::new()
            .name("latchkey-sqlite-checkpoint".into())
            .spawn(move || {
                // Ends when the store drops its sender.
                loop {
                    match received.recv_timeout(INTERVAL) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            checkpoint(&connection, &wal, limit)
                        }
                        Ok(Truncate(done)) => {
                            let _ = done.send(truncate(&connection));
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
            })
            .map_err(|error| {
                Error::Backend(format!("cannot start the SQLite checkpointer: {error}"))
            })?;
        Ok(Checkpointer { commands })
    }

    /// Copies the whole WAL into the database and empties the WAL file (at shutdown).
    pub(super) async fn truncate(&self) -> Result<()> {
        let (done, answer) = tokio::sync::oneshot::channel();
        self.commands
            .send(Truncate(done))
            .map_err(|_| Error::Backend("the SQLite checkpointer has stopped".into()))?;
        answer.await.map_err(|_| Error::Backend("the SQLite checkpointer has stopped".into()))?
    }
}

/// Copies the whole WAL into the database and empties it. The checkpoint reports `busy` when
/// a reader or the writer still held the WAL past the busy timeout; it is tried again a few
/// times before that is an error, so that "closed" means "emptied".
fn truncate(connection: &Connection) -> Result<()> {
    for _ in 0..20 {
        let busy: i64 = connection
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
            .map_err(super::backend)?;
        if busy == 0 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(Error::Backend("the SQLite WAL stayed busy: it was not emptied".into()))
}

/// One periodic checkpoint: PASSIVE; and once the WAL is past `limit` and that copied every
/// frame, a RESTART, which then has nothing left to copy and only waits for readers to let go
/// of the WAL (a RESTART that had to copy would hold the writer for the whole copy).
fn checkpoint(connection: &Connection, wal: &str, limit: u64) {
    let size = std::fs::metadata(wal).map_or(0, |m| m.len());
    metrics::gauge!("latchkey_sqlite_wal_bytes").set(size as f64);
    // (busy, frames in the WAL, frames copied into the database)
    let passive = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
    });
    match passive {
        Ok((_, frames, copied)) if size > limit && frames == copied => {
            if let Err(error) =
                connection.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
            {
                tracing::warn!(%error, "SQLite WAL restart failed; will retry");
            }
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "SQLite checkpoint failed; will retry"),
    }
}
