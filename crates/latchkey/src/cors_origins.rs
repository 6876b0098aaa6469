//! The browser origins allowed to call the token, revocation and userinfo endpoints: the
//! origins of registered redirect URIs. The store keeps them in a table of their own, written
//! with every client change, so whether an origin may call is one indexed lookup however many
//! clients there are; nothing is read at start-up. Answers are remembered in a bounded map
//! that is emptied whenever the store's count of client changes moves, as the client cache's
//! sync sees it ([`CorsOrigins::observe`]), so a node agrees with the others as soon as its
//! client cache does.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::store::{self, Store};

/// Most answers remembered; past it the map starts over, so made-up origins cost a lookup
/// each but never memory.
pub const MAX_REMEMBERED: usize = 4096;

/// No browser origin is longer (scheme, a 253-byte host name and a port); a longer one is
/// refused without a lookup.
const MAX_ORIGIN_BYTES: usize = 300;

/// The answers remembered, and the count of client changes they were read at.
#[derive(Debug)]
pub struct CorsOrigins {
    known: Mutex<Known>,
}

#[derive(Debug)]
struct Known {
    /// The count of client changes the answers are valid for; -1 before the first refresh.
    epoch: i64,
    answers: HashMap<String, bool>,
}

impl Default for CorsOrigins {
    fn default() -> Self {
        CorsOrigins { known: Mutex::new(Known { epoch: -1, answers: HashMap::new() }) }
    }
}

impl CorsOrigins {
    /// Whether `origin` (as a browser sends it: `scheme://host[:port]`) may call.
    pub async fn allows(&self, origin: &str, store: &dyn Store) -> Result<bool, store::Error> {
        if origin.len() > MAX_ORIGIN_BYTES {
            return Ok(false);
        }
        let epoch = {
            let known = self.lock();
            if let Some(&allowed) = known.answers.get(origin) {
                return Ok(allowed);
            }
            known.epoch
        };
        let allowed = store.origin_registered(origin).await?;
        let mut known = self.lock();
        // An answer read while a client changed may be stale: keep it only if no refresh has
        // moved the epoch meanwhile (the next refresh empties the map otherwise).
        if known.epoch == epoch {
            if known.answers.len() >= MAX_REMEMBERED {
                known.answers.clear();
            }
            known.answers.insert(origin.to_owned(), allowed);
        }
        Ok(allowed)
    }

    /// Forgets every answer if a client changed since the last refresh.
    pub async fn refresh(&self, store: &dyn Store) -> Result<(), store::Error> {
        self.observe(store.client_epoch().await?);
        Ok(())
    }

    /// Forgets every answer unless they were read at `epoch`, the store's count of client
    /// changes as a sync has just read it.
    pub fn observe(&self, epoch: i64) {
        let mut known = self.lock();
        if known.epoch != epoch {
            known.answers.clear();
            known.epoch = epoch;
        }
    }

    /// How many answers are remembered.
    pub fn remembered(&self) -> usize {
        self.lock().answers.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        // The map holds only answers the store can give again: a poisoned one is still usable.
        self.known.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
