//! What the periodic purge shares between the engines: how large each batch is, and what it
//! reports.
//!
//! Every purge statement finds its rows through an index (the store suite checks each plan)
//! and removes at most one batch per transaction. The batch size adapts so that one batch
//! holds the database for about [`BATCH_TARGET`]: on SQLite the purge shares the one writer
//! with every request, and a backlog of millions of rows must be worked off between them, not
//! in front of them.

use std::time::Duration;

/// About how long one batch may hold the writer.
pub(crate) const BATCH_TARGET: Duration = Duration::from_millis(4);

const FIRST_BATCH: i64 = 128;
const MIN_BATCH: i64 = 8;
const MAX_BATCH: i64 = 1024;

/// The batches of one purge statement.
pub(crate) struct Batches {
    table: &'static str,
    size: i64,
}

impl Batches {
    /// The batches that delete from `table`.
    pub(crate) fn new(table: &'static str) -> Self {
        Batches { table, size: FIRST_BATCH }
    }

    /// How many rows the next batch may remove.
    pub(crate) fn size(&self) -> i64 {
        self.size
    }

    /// Records a batch that removed `removed` rows holding the database for `held`; whether
    /// another batch should follow (this one was full).
    pub(crate) fn after(&mut self, removed: u64, held: Duration) -> bool {
        metrics::histogram!("latchkey_purge_batch_seconds", "table" => self.table)
            .record(held.as_secs_f64());
        metrics::counter!("latchkey_purged_rows_total", "table" => self.table).increment(removed);
        let full = removed >= u64::try_from(self.size).unwrap_or(u64::MAX);
        self.size = next_size(self.size, held);
        full
    }
}

/// Counts the refresh tokens a batch of dead grants took with it (they have no purge of their
/// own: a refresh token expires with its grant).
pub(crate) fn refresh_tokens_removed(removed: u64) {
    metrics::counter!("latchkey_purged_rows_total", "table" => "refresh_tokens").increment(removed);
}

/// The next batch size: halved after a batch that held the database too long, doubled after
/// one that was quick, within bounds.
fn next_size(size: i64, held: Duration) -> i64 {
    if held > BATCH_TARGET {
        (size / 2).max(MIN_BATCH)
    } else if held < BATCH_TARGET / 4 {
        (size * 2).min(MAX_BATCH)
    } else {
        size
    }
}

/// A statement of the purge and how the database runs it (`EXPLAIN QUERY PLAN` on SQLite,
/// `EXPLAIN` on PostgreSQL).
#[derive(Debug, Clone)]
pub struct PurgePlan {
    /// The statement.
    pub statement: String,
    /// Its plan, one step per line.
    pub plan: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_size_follows_how_long_a_batch_held_the_database() {
        let slow = BATCH_TARGET * 2;
        let quick = BATCH_TARGET / 8;
        assert_eq!(next_size(128, slow), 64);
        assert_eq!(next_size(MIN_BATCH, slow), MIN_BATCH, "never below the minimum");
        assert_eq!(next_size(128, quick), 256);
        assert_eq!(next_size(MAX_BATCH, quick), MAX_BATCH, "never above the maximum");
        assert_eq!(next_size(128, BATCH_TARGET / 2), 128, "about right: kept");
    }

    #[test]
    fn a_full_batch_asks_for_another() {
        let mut batches = Batches::new("codes");
        assert!(batches.after(128, BATCH_TARGET / 2), "full: there may be more");
        assert!(!batches.after(3, BATCH_TARGET / 2), "short: that was the last");
    }
}
