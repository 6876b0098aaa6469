//! WAL checkpoints on a thread of their own.
//!
//! By default SQLite checkpoints inside the commit that grows the WAL past 1,000 pages: that
//! one request then copies pages into the database file and fsyncs it, and with group commit
//! every request in its batch waits too (the benchmark's p99 showed it). Instead the writer
//! never checkpoints (`wal_autocheckpoint = 0`) and this thread runs a PASSIVE checkpoint a few
//! times a second on its own connection: it copies what no reader still needs, never blocks
//! the writer or readers, and the writer restarts the WAL from the top once it is all copied.

use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

use crate::store::{Error, Result};

/// How often the WAL is copied into the database file.
const INTERVAL: Duration = Duration::from_millis(1000);

/// Runs checkpoints until dropped.
pub(super) struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    /// Starts checkpointing through `connection`.
    pub(super) fn start(connection: Connection) -> Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("latchkey-sqlite-checkpoint".into())
            .spawn(move || {
                // Ends when the store drops its sender.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                    if let Err(error) =
                        connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!(%error, "SQLite checkpoint failed; will retry");
                    }
                }
            })
            .map_err(|error| {
                Error::Backend(format!("cannot start the SQLite checkpointer: {error}"))
            })?;
        Ok(Checkpointer { _stop: stop })
    }
}
