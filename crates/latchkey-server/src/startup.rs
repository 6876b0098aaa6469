//! Bringing a node up: open and migrate the store, load keys, load static registrations, and
//! keep keys fresh in the background.

use std::sync::Arc;

use anyhow::Context;
use latchkey::authority::{Authority, HashLimits, Settings};
use latchkey::clock::{Clock, SystemClock};
use latchkey::cors_origins::CorsOrigins;
use latchkey::forms::FormKey;
use latchkey::keys::KeyManager;
use latchkey::model::{ClientRecord, ClientSource, User};
use latchkey::oidc::discovery;
use latchkey::password::Hasher;
use latchkey::store::timed::TimedStore;
use latchkey::store::{self, Store};
use tokio::sync::watch;

use crate::config::{Config, StaticPassword};
use crate::http::{AppState, Shared, paths};

/// Opens the configured store and applies pending migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let store = store::connect(config.database.url.expose(), config.store_options())
        .await
        .context("opening the database")?;
    store.migrate().await.context("applying database migrations")?;
    Ok(store)
}

/// Everything a node needs before it can answer requests. Static clients and users are loaded
/// in the background (argon2 costs ~40 ms each) while discovery and the JWKS already answer;
/// `/readyz` reports when they are in.
pub async fn boot(config: Config) -> anyhow::Result<AppState> {
    boot_with_clock(config, Arc::new(SystemClock)).await
}

/// [`boot`] with another clock than the system's: tests move it instead of waiting.
pub async fn boot_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<AppState> {
    // Before anything counts: the metrics recorder for /metrics.
    crate::http::metrics::handle();
    let database = store::describe(config.database.url.expose());
    tracing::info!(%database, "connecting to the database");
    let store: Arc<dyn Store> = Arc::new(TimedStore::new(open_store(&config).await?));
    let master = config.master_key()?;
    let keys = KeyManager::start(store.clone(), master, config.key_policy(), clock.now())
        .await
        .context("loading signing keys")?;
    let keys = Arc::new(keys);
    let forms = FormKey::load(store.as_ref(), config.master_key()?.as_ref())
        .await
        .context("loading the form key")?;
    let settings = settings(&config);
    let endpoints = discovery::Endpoints {
        authorization: paths::AUTHORIZE,
        token: paths::TOKEN,
        userinfo: paths::USERINFO,
        jwks: paths::JWKS,
        end_session: paths::LOGOUT,
        introspection: paths::INTROSPECT,
        revocation: paths::REVOKE,
    };
    let metadata = discovery::metadata(&config.issuer, &endpoints, &settings.resources);
    let metadata_json = serde_json::to_vec(&metadata).context("serializing metadata")?.into();
    let (loaded_tx, static_loaded) = watch::channel(false);
    let config = Arc::new(config);
    let limits = HashLimits {
        users: std::thread::available_parallelism().map_or(2, |n| n.get()),
        queue: config.limits.hash_queue,
    };
    let authority =
        Authority::new(store.clone(), keys.clone(), settings, forms, clock.clone(), limits)
            .context("setting up the authorization server")?;
    let authority = Arc::new(authority);
    // One bounded hashing pool for the process: start-up hashing and logins share its limit.
    let hasher = authority.hasher().clone();
    let origins = Arc::new(CorsOrigins::default());
    tokio::spawn(load_static_registrations(
        config.clone(),
        store.clone(),
        hasher,
        origins.clone(),
        clock.clone(),
        loaded_tx,
    ));
    tokio::spawn(refresh_keys(keys.clone(), clock.clone(), config.keys.refresh_interval));
    tokio::spawn(purge_expired(store.clone(), clock.clone()));
    tokio::spawn(watch_clock(authority.clone()));
    tokio::spawn(sync_clients(authority.clone(), origins.clone()));
    Ok(AppState::new(Shared {
        config,
        store,
        keys,
        authority,
        metadata_json,
        static_loaded,
        origins,
    }))
}

/// The protocol settings derived from the config.
pub fn settings(config: &Config) -> Settings {
    use crate::config::secs;
    Settings {
        issuer: config.issuer.clone(),
        access_token_ttl: secs(config.tokens.access_token_ttl),
        refresh_token_ttl: secs(config.tokens.refresh_token_ttl),
        code_ttl: secs(config.tokens.authorization_code_ttl),
        id_token_ttl: secs(config.tokens.id_token_ttl),
        session_ttl: secs(config.tokens.session_ttl),
        refresh_grace_secs: config.tokens.refresh_grace_period.map_or(0, secs),
        resources: config.resources.clone(),
        access_token_format: config.tokens.access_token_format,
        // RFC 7523 §3: the assertion's audience identifies this server: its issuer, or the
        // URL of the endpoint that authenticates the client.
        assertion_audiences: [paths::TOKEN, paths::INTROSPECT, paths::REVOKE]
            .iter()
            .map(|path| discovery::endpoint(&config.issuer, path))
            .chain(std::iter::once(config.issuer.clone()))
            .collect(),
    }
}

async fn load_static_registrations(
    config: Arc<Config>,
    store: Arc<dyn Store>,
    hasher: Hasher,
    origins: Arc<CorsOrigins>,
    clock: Arc<dyn Clock>,
    done: watch::Sender<bool>,
) {
    loop {
        match sync_static(&config, store.as_ref(), &hasher, clock.now()).await {
            Ok(()) => {
                // Ready means the static clients' origins are allowed too: answers remembered
                // before they were stored are forgotten.
                if let Err(error) = origins.refresh(store.as_ref()).await {
                    tracing::warn!(%error, "reading the client changes failed; retrying in 2 s");
                }
                done.send_replace(true);
                return;
            }
            Err(error) => {
                tracing::error!(
                    error = format!("{error:#}"),
                    "loading static clients and users failed; retrying in 5s"
                );
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            }
        }
    }
}

/// Upserts `[[clients]]` and `[[users]]`, hashing secrets first, and drops config clients that
/// are no longer in the file.
pub async fn sync_static(
    config: &Config,
    store: &dyn Store,
    hasher: &Hasher,
    now: i64,
) -> anyhow::Result<()> {
    for entry in &config.clients {
        let secret_hash = match &entry.secret {
            Some(secret) => Some(hasher.hash(secret.expose().to_owned()).await?),
            None => None,
        };
        let record = ClientRecord::new(entry.client.clone(), secret_hash, ClientSource::Config);
        store.upsert_client(&record, now).await?;
    }
    let keep: Vec<String> = config.clients.iter().map(|c| c.client.client_id.clone()).collect();
    let removed = store.remove_config_clients_except(&keep, now).await?;
    if removed > 0 {
        tracing::info!(removed, "removed clients that are no longer in the config");
    }
    for entry in &config.users {
        sync_static_user(entry, store, hasher, now).await?;
    }
    tracing::info!(
        clients = config.clients.len(),
        users = config.users.len(),
        "static registrations loaded"
    );
    Ok(())
}

/// Creates or updates one `[[users]]` entry.
///
/// Which password wins: the config's applies when the user is created and whenever the
/// config's password for the user changes (that change ends the user's sessions and revokes
/// their grants, like any password change). Otherwise the stored one stays, so a password set
/// with `latchkey users set-password` is not reverted by the next restart. The config's last
/// password is recorded as its own argon2 hash to tell the two apart.
async fn sync_static_user(
    entry: &crate::config::StaticUser,
    store: &dyn Store,
    hasher: &Hasher,
    now: i64,
) -> anyhow::Result<()> {
    use latchkey::store::PasswordChange;
    let password = match &entry.password {
        StaticPassword::Plain { password, .. } => password.expose(),
        StaticPassword::Hash(hash) => return sync_static_user_hash(entry, hash, store, now).await,
    };
    let Some(recorded) = store.config_password_hash(&entry.username).await? else {
        let hash = hasher.hash(password.to_owned()).await?;
        return create_static_user(entry, hash, store, now).await;
    };
    let Some(stored) = store.user_by_username(&entry.username).await? else {
        anyhow::bail!("user {:?} vanished while the config was loaded", entry.username);
    };
    // Name and email follow the config; the password does not change here.
    let profile = User { email: entry.email.clone(), name: entry.name.clone(), ..stored.clone() };
    store.upsert_user(&profile, now).await?;
    let reference = recorded.clone().unwrap_or_else(|| stored.password_hash.clone());
    let unchanged = hasher.verify(password.to_owned(), Some(reference.clone())).await?;
    match (unchanged, recorded) {
        (true, Some(_)) => {}
        // Stored by a version that kept no record: remember what the config says now.
        (true, None) => store.record_config_password(&entry.username, &reference).await?,
        (false, None) => {
            tracing::info!(
                user = %entry.username,
                "the stored password differs from the config's (set with `latchkey users set-password`): it stays; a later change of the config's password applies"
            );
            let hash = hasher.hash(password.to_owned()).await?;
            store.record_config_password(&entry.username, &hash).await?;
        }
        (false, Some(_)) => {
            tracing::info!(
                user = %entry.username,
                "the config's password changed: applied; the user's sessions end and grants are revoked"
            );
            let hash = hasher.hash(password.to_owned()).await?;
            let change = PasswordChange { end_sessions: true, from_config: true };
            store.set_password_hash(&entry.username, &hash, change, now).await?;
        }
    }
    Ok(())
}

/// A `[[users]]` entry with `password_hash`: stored as given (and upgraded to latchkey's
/// argon2id at the user's next sign-in); a changed hash in the config applies like a changed
/// password, a password set with the CLI stays otherwise.
async fn sync_static_user_hash(
    entry: &crate::config::StaticUser,
    hash: &str,
    store: &dyn Store,
    now: i64,
) -> anyhow::Result<()> {
    use latchkey::store::PasswordChange;
    let Some(recorded) = store.config_password_hash(&entry.username).await? else {
        return create_static_user(entry, hash.to_owned(), store, now).await;
    };
    let Some(stored) = store.user_by_username(&entry.username).await? else {
        anyhow::bail!("user {:?} vanished while the config was loaded", entry.username);
    };
    let profile = User { email: entry.email.clone(), name: entry.name.clone(), ..stored };
    store.upsert_user(&profile, now).await?;
    match recorded {
        Some(recorded) if recorded == hash => {}
        None => store.record_config_password(&entry.username, hash).await?,
        Some(_) => {
            tracing::info!(
                user = %entry.username,
                "the config's password hash changed: applied; the user's sessions end and grants are revoked"
            );
            let change = PasswordChange { end_sessions: true, from_config: true };
            store.set_password_hash(&entry.username, hash, change, now).await?;
        }
    }
    Ok(())
}

/// Stores a `[[users]]` entry seen for the first time, with `password_hash`.
async fn create_static_user(
    entry: &crate::config::StaticUser,
    password_hash: String,
    store: &dyn Store,
    now: i64,
) -> anyhow::Result<()> {
    let user = User {
        id: new_user_id()?,
        username: entry.username.clone(),
        password_hash,
        email: entry.email.clone(),
        name: entry.name.clone(),
        email_verified: true,
        disabled: false,
    };
    store.upsert_user(&user, now).await?;
    Ok(())
}

/// A new subject identifier: random, so it reveals nothing and is never reused.
pub fn new_user_id() -> anyhow::Result<String> {
    use base64::Engine;
    let bytes = latchkey::secret::random_bytes::<16>()?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// How often expired rows are deleted.
const PURGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Deletes expired codes, sessions, grants, tokens and assertion ids, so the database does not
/// grow with traffic. The store deletes in small batches, each its own short transaction, and
/// counts them in `/metrics`; a backlog that takes longer than the interval delays the next
/// run instead of piling runs up.
async fn purge_expired(store: Arc<dyn Store>, clock: Arc<dyn Clock>) {
    let mut interval = tokio::time::interval(PURGE_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let started = std::time::Instant::now();
        let purged = store.purge(clock.now()).await;
        metrics::gauge!("latchkey_purge_run_seconds").set(started.elapsed().as_secs_f64());
        match purged {
            Ok(purged) if purged.total() > 0 => tracing::info!(?purged, "purged expired records"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "purging expired records failed; will retry"),
        }
    }
}

/// How often a node compares its clock with the database's.
const CLOCK_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(300);

/// Measures this node's clock against the database's at start and every
/// [`CLOCK_CHECK_INTERVAL`]: exported as `latchkey_clock_drift_seconds`, and a warning when it
/// is beyond 2 s (codes, sessions and tokens written by one node are checked by others).
async fn watch_clock(authority: Arc<Authority>) {
    use latchkey::authority::MAX_CLOCK_DRIFT_MILLIS;
    let mut interval = tokio::time::interval(CLOCK_CHECK_INTERVAL);
    loop {
        interval.tick().await;
        let before = authority.clock().now_millis();
        let database = match authority.database_clock_millis().await {
            Ok(millis) => millis,
            Err(error) => {
                tracing::warn!(%error, "reading the database's clock failed");
                continue;
            }
        };
        // The database read its clock somewhere during the round trip: compare with its middle.
        let drift = (before + authority.clock().now_millis()) / 2 - database;
        authority.set_clock_drift(drift);
        metrics::gauge!("latchkey_clock_drift_seconds").set(drift as f64 / 1000.0);
        if drift.abs() > MAX_CLOCK_DRIFT_MILLIS {
            tracing::warn!(
                drift_seconds = drift as f64 / 1000.0,
                "this node's clock differs from the database's by more than 2 s: codes and tokens may expire early or late on some nodes; check NTP"
            );
        }
    }
}

/// Keeps this node's client cache in step with client changes made anywhere, and says so in
/// the store, so that `latchkey clients remove` can return once every node has seen it.
async fn sync_clients(authority: Arc<Authority>, origins: Arc<CorsOrigins>) {
    let mut interval = tokio::time::interval(latchkey::clients::cache::SYNC_EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match authority.sync_clients().await {
            // The CORS answers follow the same count of client changes as the client cache.
            Ok(Some(epoch)) => origins.observe(epoch),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "syncing the client cache failed; clients are read from the database until it succeeds");
            }
        }
    }
}

async fn refresh_keys(keys: Arc<KeyManager>, clock: Arc<dyn Clock>, every: std::time::Duration) {
    let mut interval = tokio::time::interval(every);
    interval.tick().await;
    loop {
        interval.tick().await;
        if let Err(error) = keys.refresh(clock.now()).await {
            tracing::error!(%error, "refreshing signing keys failed; serving the ones loaded before");
        }
    }
}
