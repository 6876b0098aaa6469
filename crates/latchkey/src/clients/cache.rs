//! Registered clients, read through a short-lived in-memory cache.
//!
//! Every authorization and token request needs its client; reading it from the database each
//! time costs a round trip to the store's thread for data that changes a few times a day. An
//! entry lives [`CLIENT_CACHE_TTL`] at most, counted from before the read that filled it, so
//! a change committed at time T is seen by every node from T + [`CLIENT_CACHE_TTL`] on: the
//! CLI waits that long after removing a client before it returns. Unknown client ids are never
//! cached: a flood of made-up ids cannot grow the map, and a newly registered client works at
//! once.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::model::ClientRecord;
use crate::store::{self, Store};

/// The longest a cached client is used before it is read again.
pub const CLIENT_CACHE_TTL: Duration = Duration::from_secs(2);

/// Clients by `client_id`, each with the time it was read.
#[derive(Default)]
pub struct ClientCache {
    entries: RwLock<HashMap<String, (Instant, Arc<ClientRecord>)>>,
}

impl ClientCache {
    /// The client `client_id`, from the cache while fresh, else from `store`.
    pub async fn get(
        &self,
        store: &dyn Store,
        client_id: &str,
    ) -> store::Result<Option<Arc<ClientRecord>>> {
        if let Some(record) = self.fresh(client_id) {
            return Ok(Some(record));
        }
        // Timed from before the read: a read that began before a change committed may return
        // the old record after it, and must not keep it past the change + the lifetime.
        let read_at = Instant::now();
        let loaded = store.client(client_id).await?.map(Arc::new);
        // A poisoned lock only means another thread panicked mid-update of a plain map; the
        // cache stays usable, and skipping the update is always correct.
        if let Ok(mut entries) = self.entries.write() {
            match &loaded {
                Some(record) => {
                    entries.insert(client_id.to_owned(), (read_at, record.clone()));
                }
                None => {
                    entries.remove(client_id);
                }
            }
        }
        Ok(loaded)
    }

    fn fresh(&self, client_id: &str) -> Option<Arc<ClientRecord>> {
        let entries = self.entries.read().ok()?;
        let (read_at, record) = entries.get(client_id)?;
        (read_at.elapsed() < CLIENT_CACHE_TTL).then(|| record.clone())
    }
}
