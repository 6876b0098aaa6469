//! Registered clients, read through a short-lived in-memory cache.
//!
//! Every authorization and token request needs its client; reading it from the database each
//! time costs a round trip to the store's thread for data that changes a few times a day. An
//! entry lives [`CLIENT_CACHE_TTL`] at most, counted from before the read that filled it, so
//! a change committed at time T is seen by every node from T + [`CLIENT_CACHE_TTL`] on. Unknown
//! client ids are never cached: a flood of made-up ids cannot grow the map, and a newly
//! registered client works at once.
//!
//! A node's cache also *syncs* ([`ClientCache::sync`], every [`SYNC_EVERY`]): it reads the
//! store's count of client changes, forgets everything when that moved, and records in the
//! store which count it has caught up with. A node serves cached entries only within
//! [`CLIENT_CACHE_TTL`] of its last successful sync, so a command that changed a client can
//! return as soon as every node has caught up ([`confirm_change`]), and otherwise after the
//! lifetime, when no node can still serve the old client.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::model::ClientRecord;
use crate::store::{self, Store};

/// The longest a cached client is used before it is read again.
pub const CLIENT_CACHE_TTL: Duration = Duration::from_secs(2);

/// How often a node syncs its cache with the store's count of client changes.
pub const SYNC_EVERY: Duration = Duration::from_millis(500);

/// Clients by `client_id`, each with the time it was read.
pub struct ClientCache {
    state: RwLock<State>,
    /// `None` for a cache that only expires entries (no node syncs it).
    sync: Option<NodeSync>,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, (Instant, Arc<ClientRecord>)>,
    /// Reads begun before this are older than a change the cache has seen: not kept.
    flushed_at: Option<Instant>,
    /// Entries may be served until then (a synced cache only).
    usable_until: Option<Instant>,
}

struct NodeSync {
    node_id: String,
    /// The count of client changes the cache holds nothing older than; -1: none yet.
    caught_up: AtomicI64,
}

impl Default for ClientCache {
    /// A cache whose entries only expire.
    fn default() -> Self {
        ClientCache { state: RwLock::default(), sync: None }
    }
}

impl ClientCache {
    /// The cache of node `node_id`, usable only while [`ClientCache::sync`] keeps succeeding.
    pub fn synced(node_id: String) -> Self {
        ClientCache {
            state: RwLock::default(),
            sync: Some(NodeSync { node_id, caught_up: AtomicI64::new(-1) }),
        }
    }

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
        if let Ok(mut state) = self.state.write() {
            match &loaded {
                Some(record) if state.flushed_at.is_none_or(|flushed| read_at >= flushed) => {
                    state.entries.insert(client_id.to_owned(), (read_at, record.clone()));
                }
                _ => {
                    state.entries.remove(client_id);
                }
            }
        }
        Ok(loaded)
    }

    fn fresh(&self, client_id: &str) -> Option<Arc<ClientRecord>> {
        let state = self.state.read().ok()?;
        if self.sync.is_some() && state.usable_until.is_none_or(|until| Instant::now() >= until) {
            return None;
        }
        let (read_at, record) = state.entries.get(client_id)?;
        (read_at.elapsed() < CLIENT_CACHE_TTL).then(|| record.clone())
    }

    /// One sync with the store (see the module docs); the count of client changes it caught
    /// up with, `None` for a cache that is not synced. On an error the cache stops serving
    /// entries once its last sync is [`CLIENT_CACHE_TTL`] old, and reads the store instead.
    pub async fn sync(&self, store: &dyn Store) -> store::Result<Option<i64>> {
        let Some(sync) = &self.sync else { return Ok(None) };
        // A second round when the first saw a change: it records the catch-up at once.
        for _ in 0..2 {
            let started = Instant::now();
            let caught_up = sync.caught_up.load(Ordering::Relaxed);
            let epoch =
                store.sync_node(&sync.node_id, (caught_up >= 0).then_some(caught_up)).await?;
            let Ok(mut state) = self.state.write() else { return Ok(Some(epoch)) };
            // The store now says this node synced no earlier than `started`; whoever waits on
            // it waits until then + the lifetime at most, so entries are served no longer.
            state.usable_until = Some(started + CLIENT_CACHE_TTL);
            if epoch == caught_up {
                return Ok(Some(epoch));
            }
            state.entries.clear();
            state.flushed_at = Some(Instant::now());
            sync.caught_up.store(epoch, Ordering::Relaxed);
        }
        Ok(Some(sync.caught_up.load(Ordering::Relaxed)))
    }

    /// Forgets this node in the store (at shutdown), so no one waits for it.
    pub async fn leave(&self, store: &dyn Store) -> store::Result<()> {
        match &self.sync {
            Some(sync) => store.leave_node(&sync.node_id).await,
            None => Ok(()),
        }
    }
}

/// How a client change reached the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmed {
    /// Every running node said it has caught up.
    ByEveryNode,
    /// Some node did not say so: [`CLIENT_CACHE_TTL`] has passed, so none serves it any more.
    ByTheLifetime,
}

/// Waits until no node can still serve a client as it was before a change that has just
/// committed: until every node has caught up with the store's count of changes, or for
/// [`CLIENT_CACHE_TTL`] (with a margin) when some node does not answer.
pub async fn confirm_change(store: &dyn Store) -> store::Result<Confirmed> {
    let started = Instant::now();
    // A node that synced longer ago than its own lifetime serves nothing from its cache; the
    // margin covers the difference between its clock's rate and the database's.
    let limit = CLIENT_CACHE_TTL + Duration::from_millis(200);
    let window = i64::try_from(limit.as_millis()).unwrap_or(i64::MAX);
    let epoch = store.client_epoch().await?;
    while started.elapsed() < limit {
        if store.nodes_behind(epoch, window).await? == 0 {
            return Ok(Confirmed::ByEveryNode);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Confirmed::ByTheLifetime)
}
