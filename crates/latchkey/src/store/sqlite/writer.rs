//! The one thread that writes, with group commit.
//!
//! SQLite has a single writer per database, so writes queue somewhere whatever we do. Queueing
//! them on a channel to one thread that owns the connection, instead of on a mutex between
//! blocking-pool threads, saves a thread hand-off and a lock convoy per write. Under load the
//! thread finds several writes waiting and runs them in one transaction, each inside its own
//! savepoint: a write that fails rolls back alone, and nobody is answered before the shared
//! `COMMIT` has succeeded, so a success still means "committed" exactly as with one transaction
//! per write (see the README on durability).

use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::{backend, contained};
use crate::store::{Error, Result};

/// The most writes one transaction groups; bounds the latency a single commit adds.
const MAX_BATCH: usize = 16;

/// Sends a job's outcome once the fate of its transaction is known.
type Reply = Box<dyn FnOnce(Result<()>) + Send>;

/// A write that runs in the shared transaction and returns how to answer once it is decided.
type GroupedWork = Box<dyn FnOnce(&Connection) -> Reply + Send>;

enum Job {
    /// Runs inside the shared transaction, in its own savepoint.
    Grouped(GroupedWork),
    /// Runs on its own, outside any transaction (migrations manage theirs).
    Alone(Box<dyn FnOnce(&mut Connection) + Send>),
}

/// The handle async code uses; the thread ends when the last handle is dropped.
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer thread, which owns `connection` from now on.
    pub(super) fn start(connection: Connection) -> Result<Self> {
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("latchkey-sqlite-writer".into())
            .spawn(move || run(connection, &queue))
            .map_err(|error| Error::Backend(format!("cannot start the SQLite writer: {error}")))?;
        Ok(Writer { jobs })
    }

    /// Runs `work` atomically; its changes are committed before this returns `Ok`.
    pub(super) async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (answer, answered) = oneshot::channel();
        let job = Job::Grouped(Box::new(move |connection: &Connection| {
            let outcome = in_savepoint(connection, work);
            Box::new(move |committed: Result<()>| {
                // The caller may have gone away (a dropped request); nothing to tell then.
                let _ = answer.send(committed.and(outcome));
            })
        }));
        self.jobs.send(job).map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }

    /// Runs `work` with the connection to itself, outside the shared transaction.
    pub(super) async fn alone<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (answer, answered) = oneshot::channel();
        let job = Job::Alone(Box::new(move |connection: &mut Connection| {
            let _ = answer.send(contained("write", || work(connection)));
        }));
        self.jobs.send(job).map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

fn stopped() -> Error {
    Error::Backend("the SQLite writer has stopped".into())
}

fn run(mut connection: Connection, queue: &mpsc::Receiver<Job>) {
    let mut waiting: Option<Job> = None;
    loop {
        let first = match waiting.take() {
            Some(job) => job,
            None => match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        let first = match first {
            Job::Alone(work) => {
                work(&mut connection);
                continue;
            }
            Job::Grouped(work) => work,
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(Job::Grouped(work)) => batch.push(work),
                Ok(alone) => {
                    waiting = Some(alone);
                    break;
                }
                Err(_) => break,
            }
        }
        commit_batch(&connection, batch);
    }
}

fn commit_batch(connection: &Connection, batch: Vec<GroupedWork>) {
    // IMMEDIATE takes the write lock up front: another process (the CLI, a second server on
    // the same file) makes us wait for busy_timeout instead of failing halfway.
    let grouped = execute(connection, "BEGIN IMMEDIATE").is_ok();
    let replies: Vec<Reply> = batch.into_iter().map(|work| work(connection)).collect();
    if !grouped {
        // Outside a transaction each job's savepoint was its own transaction: its outcome is
        // already final.
        for reply in replies {
            reply(Ok(()));
        }
        return;
    }
    let committed = execute(connection, "COMMIT");
    if committed.is_err() {
        let _ = execute(connection, "ROLLBACK");
    }
    for reply in replies {
        reply(match &committed {
            Ok(()) => Ok(()),
            Err(error) => Err(Error::Backend(format!("commit failed: {error}"))),
        });
    }
}

/// Runs `work` in a savepoint: kept on `Ok`, undone on `Err` or panic.
fn in_savepoint<T>(
    connection: &Connection,
    work: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    execute(connection, "SAVEPOINT job")?;
    match contained("write", || work(connection)) {
        Ok(value) => match execute(connection, "RELEASE job") {
            Ok(()) => Ok(value),
            Err(error) => {
                undo(connection);
                Err(error)
            }
        },
        Err(error) => {
            undo(connection);
            Err(error)
        }
    }
}

fn undo(connection: &Connection) {
    let _ = execute(connection, "ROLLBACK TO job");
    let _ = execute(connection, "RELEASE job");
}

fn execute(connection: &Connection, sql: &str) -> Result<()> {
    connection
        .prepare_cached(sql)
        .and_then(|mut statement| statement.execute([]))
        .map(drop)
        .map_err(backend)
}
