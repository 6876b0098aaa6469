//! Threads that read, each owning a connection.
//!
//! Reads are short indexed lookups. Sending them over a channel to threads that own their
//! connections, as the writer does, costs less than tokio's blocking pool: there a read is a
//! hand-off to whichever pool thread is free, which then waits on the mutex of a connection
//! chosen in turn, busy or not. Here an idle reader takes the next read from one shared queue.

use std::sync::{Arc, Mutex, mpsc};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::contained;
use crate::store::{Error, Result};

type Job = Box<dyn FnOnce(&Connection) + Send>;

/// The handle async code uses; the threads end when it is dropped.
pub(super) struct Readers {
    jobs: mpsc::Sender<Job>,
}

impl Readers {
    /// Starts one thread per connection.
    pub(super) fn start(connections: Vec<Connection>) -> Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for (n, connection) in connections.into_iter().enumerate() {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("latchkey-sqlite-reader-{n}"))
                .spawn(move || run(&connection, &queue))
                .map_err(|error| {
                    Error::Backend(format!("cannot start a SQLite reader: {error}"))
                })?;
        }
        Ok(Readers { jobs })
    }

    /// Runs `work` on the first free reader.
    pub(super) async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |connection: &Connection| {
            // The caller may have gone away (a dropped request); nothing to tell then.
            let _ = answer.send(contained("read", || work(connection)));
        });
        self.jobs.send(job).map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

fn stopped() -> Error {
    Error::Backend("the SQLite readers have stopped".into())
}

fn run(connection: &Connection, queue: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        // The lock is held only while this thread waits for a job; the others queue behind it
        // and take the jobs after.
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(connection),
            Err(_) => return,
        }
    }
}
