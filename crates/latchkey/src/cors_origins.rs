//! The browser origins allowed to call the token, revocation and userinfo endpoints: the
//! origins of registered redirect URIs, kept as a set that is rebuilt from the store every
//! [`REFRESH_EVERY`], so that a request costs one hash lookup however many clients there are,
//! and every node agrees within the client-cache interval.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::clients::cache::CLIENT_CACHE_TTL;
use crate::model::ClientRecord;
use crate::store::{self, Store};

/// How often the set is rebuilt: the client cache's lifetime, so a registration change reaches
/// CORS as soon as it reaches everything else.
pub const REFRESH_EVERY: Duration = CLIENT_CACHE_TTL;

/// The allowed origins.
#[derive(Debug, Default)]
pub struct CorsOrigins {
    set: RwLock<Arc<HashSet<String>>>,
}

impl CorsOrigins {
    /// Whether `origin` (as a browser sends it: `scheme://host[:port]`) may call.
    pub fn allows(&self, origin: &str) -> bool {
        self.set.read().is_ok_and(|set| set.contains(origin))
    }

    /// Rebuilds the set from the registered clients.
    pub async fn refresh(&self, store: &dyn Store) -> Result<(), store::Error> {
        let set = Arc::new(origins(&store.clients().await?));
        if let Ok(mut current) = self.set.write() {
            *current = set;
        }
        Ok(())
    }
}

/// The origins of every registered redirect URI (`null` origins, such as custom schemes, are
/// never allowed).
fn origins(clients: &[ClientRecord]) -> HashSet<String> {
    clients
        .iter()
        .flat_map(|record| record.client.redirect_uris.iter())
        .filter_map(|uri| url::Url::parse(uri).ok())
        .map(|url| url.origin().ascii_serialization())
        .filter(|origin| origin != "null")
        .collect()
}
