//! The browser origins allowed to call the token, revocation and userinfo endpoints: the
//! origins of registered redirect URIs, kept as a set, so that a request costs one hash lookup
//! however many clients there are. Every [`REFRESH_EVERY`] the store's count of client changes
//! is read; only when it moved is the set rebuilt, from the distinct redirect URIs the
//! database lists (no client record is loaded), so a node agrees with the others within the
//! client-cache interval and a database of many clients costs nothing while none changes.

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::clients::cache::CLIENT_CACHE_TTL;
use crate::store::{self, Store};

/// How often the set is rebuilt: the client cache's lifetime, so a registration change reaches
/// CORS as soon as it reaches everything else.
pub const REFRESH_EVERY: Duration = CLIENT_CACHE_TTL;

/// The allowed origins.
#[derive(Debug)]
pub struct CorsOrigins {
    set: RwLock<Arc<HashSet<String>>>,
    /// The count of client changes the set was built at; -1: never built.
    built_at: AtomicI64,
}

impl Default for CorsOrigins {
    fn default() -> Self {
        CorsOrigins { set: RwLock::default(), built_at: AtomicI64::new(-1) }
    }
}

impl CorsOrigins {
    /// Whether `origin` (as a browser sends it: `scheme://host[:port]`) may call.
    pub fn allows(&self, origin: &str) -> bool {
        self.set.read().is_ok_and(|set| set.contains(origin))
    }

    /// Rebuilds the set from the registered redirect URIs if a client changed since the last
    /// build. The count is read first: a change that commits during the rebuild moves it again,
    /// so the next refresh rebuilds once more.
    pub async fn refresh(&self, store: &dyn Store) -> Result<(), store::Error> {
        let epoch = store.client_epoch().await?;
        if epoch == self.built_at.load(Ordering::Relaxed) {
            return Ok(());
        }
        let set = Arc::new(origins(&store.redirect_uris().await?));
        if let Ok(mut current) = self.set.write() {
            *current = set;
            self.built_at.store(epoch, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// The origins of `redirect_uris` (`null` origins, such as custom schemes, are never allowed).
fn origins(redirect_uris: &[String]) -> HashSet<String> {
    redirect_uris
        .iter()
        .filter_map(|uri| url::Url::parse(uri).ok())
        .map(|url| url.origin().ascii_serialization())
        .filter(|origin| origin != "null")
        .collect()
}
