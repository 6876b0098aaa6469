//! The behaviour every engine must share.

use latchkey::model::{ClientRecord, ClientSource, PreviousSecret};
use latchkey::store::Error;
use latchkey_testkit::fixtures::{client_record as client, user};

use crate::TestDb;

/// Registers a client `id`, as the flows in the other suites need one.
pub(crate) async fn register(db: &TestDb, id: &str) {
    db.store.upsert_client(&client(id, ClientSource::Cli), 1).await.unwrap();
}

async fn migrations_can_run_again_and_concurrently(db: TestDb) {
    db.store.migrate().await.unwrap();
    // Three more nodes start at once against the same database.
    let mut nodes = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let store = db.open_another().await;
        nodes.spawn(async move { store.migrate().await });
    }
    while let Some(result) = nodes.join_next().await {
        result.unwrap().unwrap();
    }
    db.store.ping().await.unwrap();
    assert!(db.store.clients().await.unwrap().is_empty());
}

async fn clients_round_trip(db: TestDb) {
    let store = &db.store;
    let record = client("photo-app", ClientSource::Config);
    store.upsert_client(&record, 100).await.unwrap();
    assert_eq!(store.client("photo-app").await.unwrap(), Some(record.clone()));
    assert_eq!(store.client("nobody").await.unwrap(), None);

    let mut changed = record.clone();
    changed.client.scopes.push("email".into());
    changed.secret_hash = None;
    store.upsert_client(&changed, 200).await.unwrap();
    // Every write counts a revision.
    assert_eq!(
        store.client("photo-app").await.unwrap(),
        Some(ClientRecord { revision: 1, ..changed })
    );

    store.upsert_client(&client("another", ClientSource::Cli), 300).await.unwrap();
    let ids: Vec<String> =
        store.clients().await.unwrap().into_iter().map(|r| r.client.client_id).collect();
    assert_eq!(ids, ["another", "photo-app"]);

    store.remove_client("photo-app", 400).await.unwrap();
    assert!(matches!(store.remove_client("photo-app", 400).await, Err(Error::NotFound)));
    assert_eq!(store.client("photo-app").await.unwrap(), None);
}

/// `replace_client` writes only over the revision it was read at, keeps a rotated-out
/// secret with its expiry, counts a client change, and follows the redirect URIs' origins.
async fn a_client_is_replaced_only_at_the_revision_it_was_read(db: TestDb) {
    let store = &db.store;
    store.upsert_client(&client("app", ClientSource::Cli), 100).await.unwrap();
    let read = store.client("app").await.unwrap().unwrap();
    let epoch = store.client_epoch().await.unwrap();
    let mut changed = read.clone();
    changed.client.redirect_uris = vec!["https://moved.example.com/cb".into()];
    changed.previous_secret = Some(PreviousSecret { hash: "sha256:old".into(), expires_at: 5_000 });
    changed.secret_hash = Some("sha256:new".into());
    store.replace_client(&changed, 200).await.unwrap();
    assert_eq!(store.client_epoch().await.unwrap(), epoch + 1);
    let stored = store.client("app").await.unwrap().unwrap();
    assert_eq!(stored, ClientRecord { revision: read.revision + 1, ..changed.clone() });
    assert!(store.origin_registered("https://moved.example.com").await.unwrap());
    assert!(!store.origin_registered("https://app.example.com").await.unwrap());

    // The same revision again: another write came first.
    let stale = ClientRecord { secret_hash: None, ..changed };
    assert!(matches!(store.replace_client(&stale, 300).await, Err(Error::Conflict(_))));
    assert_eq!(store.client("app").await.unwrap().unwrap(), stored);
    assert_eq!(store.client_epoch().await.unwrap(), epoch + 1);
    let mut absent = stored;
    absent.client.client_id = "nobody".into();
    assert!(matches!(store.replace_client(&absent, 300).await, Err(Error::NotFound)));
}

async fn config_clients_dropped_from_the_file_are_removed(db: TestDb) {
    let store = &db.store;
    for (id, source) in [
        ("kept", ClientSource::Config),
        ("dropped", ClientSource::Config),
        ("cli", ClientSource::Cli),
    ] {
        store.upsert_client(&client(id, source), 1).await.unwrap();
    }
    let removed = store.remove_config_clients_except(&["kept".to_owned()], 2).await.unwrap();
    assert_eq!(removed, 1);
    let ids: Vec<String> =
        store.clients().await.unwrap().into_iter().map(|r| r.client.client_id).collect();
    assert_eq!(ids, ["cli", "kept"], "CLI-registered clients are never removed by the config");
}

/// RFC 9068 §5: a client may not take a user's subject as its client_id.
async fn a_client_id_may_not_be_a_users_subject(db: TestDb) {
    let store = &db.store;
    store.upsert_user(&user("alice", "sub-1"), 1).await.unwrap();
    let taken = store.upsert_client(&client("sub-1", ClientSource::Cli), 2).await;
    assert!(matches!(taken, Err(Error::Conflict(ref m)) if m.contains("subject")), "{taken:?}");
    assert!(store.client("sub-1").await.unwrap().is_none());
    store.upsert_client(&client("sub-2", ClientSource::Cli), 2).await.unwrap();
}

async fn users_round_trip_and_keep_their_subject(db: TestDb) {
    let store = &db.store;
    let alice = store.upsert_user(&user("alice", "sub-1"), 1).await.unwrap();
    assert_eq!(alice.id, "sub-1");
    // Upserting the same username again (a restart with the config) keeps the subject.
    let mut again = user("alice", "sub-2");
    again.name = Some("Alice".into());
    let alice = store.upsert_user(&again, 2).await.unwrap();
    assert_eq!(alice.id, "sub-1");
    assert_eq!(alice.name.as_deref(), Some("Alice"));
    assert_eq!(store.user_by_username("alice").await.unwrap(), Some(alice.clone()));
    assert_eq!(store.user_by_id("sub-1").await.unwrap(), Some(alice));
    assert_eq!(store.user_by_id("sub-2").await.unwrap(), None);

    store.upsert_user(&user("bob", "sub-3"), 3).await.unwrap();
    let names: Vec<String> = store.users().await.unwrap().into_iter().map(|u| u.username).collect();
    assert_eq!(names, ["alice", "bob"]);

    let change = latchkey::store::PasswordChange { end_sessions: true, from_config: false };
    store.set_password_hash("bob", "$argon2id$new", change, 4).await.unwrap();
    assert_eq!(
        store.user_by_username("bob").await.unwrap().unwrap().password_hash,
        "$argon2id$new"
    );
    assert!(matches!(store.set_password_hash("carol", "h", change, 5).await, Err(Error::NotFound)));

    store.remove_user("bob", 2).await.unwrap();
    assert!(matches!(store.remove_user("bob", 3).await, Err(Error::NotFound)));
    assert_eq!(store.user_by_username("bob").await.unwrap(), None);
}

async fn a_user_id_is_unique(db: TestDb) {
    db.store.upsert_user(&user("alice", "same"), 1).await.unwrap();
    let clash = db.store.upsert_user(&user("bob", "same"), 1).await;
    assert!(matches!(clash, Err(Error::Conflict(_))), "{clash:?}");
}

/// The CORS origins are the origins of registered redirect URIs, kept with every client write
/// (one indexed lookup, no client loaded): normalized as a browser sends them, without
/// custom schemes, and gone with the last client that had them.
async fn the_registered_origins_follow_every_client_change(db: TestDb) {
    let store = &db.store;
    let registered =
        |origin: &'static str| async move { store.origin_registered(origin).await.unwrap() };
    assert!(!registered("https://app.example.com").await);
    for id in ["a", "b"] {
        store.upsert_client(&client(id, ClientSource::Cli), 1).await.unwrap();
    }
    let mut other = client("c", ClientSource::Cli);
    other.client.redirect_uris =
        vec!["https://Other.Example.com:443/cb".into(), "com.example.app:/cb".into()];
    store.upsert_client(&other, 1).await.unwrap();
    assert!(registered("https://app.example.com").await);
    assert!(registered("https://other.example.com").await, "host and port normalized");
    assert!(!registered("null").await, "a custom scheme has no origin");
    assert!(!registered("https://app.example.com.evil.com").await);

    other.client.redirect_uris = vec!["https://third.example.com/cb".into()];
    store.upsert_client(&other, 2).await.unwrap();
    assert!(!registered("https://other.example.com").await, "a removed URI's origin goes");
    assert!(registered("https://third.example.com").await);
    store.remove_client("a", 3).await.unwrap();
    assert!(registered("https://app.example.com").await, "b still has it");
    store.remove_client("b", 3).await.unwrap();
    assert!(!registered("https://app.example.com").await, "gone with the last client");
    assert_eq!(store.remove_config_clients_except(&[], 4).await.unwrap(), 0);
    store.remove_client("c", 4).await.unwrap();
    assert!(!registered("https://third.example.com").await);
}

/// CORS remembers the store's answers until a client changes, and made-up origins never grow
/// what it remembers past its bound.
async fn cors_answers_are_remembered_until_a_client_changes(db: TestDb) {
    use latchkey::cors_origins::{CorsOrigins, MAX_REMEMBERED};
    let store = db.store.as_ref();
    let origins = CorsOrigins::default();
    origins.refresh(store).await.unwrap();
    assert!(!origins.allows("https://app.example.com", store).await.unwrap());
    store.upsert_client(&client("a", ClientSource::Cli), 1).await.unwrap();
    assert!(!origins.allows("https://app.example.com", store).await.unwrap(), "remembered");
    origins.refresh(store).await.unwrap();
    assert!(origins.allows("https://app.example.com", store).await.unwrap(), "after the change");
    for n in 0..MAX_REMEMBERED + 10 {
        assert!(!origins.allows(&format!("https://{n}.example.net"), store).await.unwrap());
    }
    assert!(origins.remembered() <= MAX_REMEMBERED, "{}", origins.remembered());
    let long = format!("https://{}.example.com", "a".repeat(400));
    assert!(!origins.allows(&long, store).await.unwrap());
}

/// Runs `sql` on the test's database directly, as an older version of latchkey left it.
async fn raw(db: &TestDb, sql: &'static str) {
    match db.db.engine() {
        latchkey_testkit::Engine::Sqlite => {
            let connection = rusqlite::Connection::open(db.db.sqlite_path().unwrap()).unwrap();
            connection.execute_batch(sql).unwrap();
        }
        latchkey_testkit::Engine::Postgres => {
            use sqlx::Executor;
            let pool = sqlx::PgPool::connect(&db.db.url).await.unwrap();
            pool.execute(sql).await.unwrap();
            pool.close().await;
        }
    }
}

/// Clients registered before `client_origins` existed get their origins once, when the
/// migration's upkeep task runs (here re-created by hand on a migrated database).
async fn the_origins_of_clients_from_before_the_table_are_written_once(db: TestDb) {
    let store = &db.store;
    store.upsert_client(&client("old", ClientSource::Cli), 1).await.unwrap();
    raw(&db, "DELETE FROM client_origins; INSERT INTO upkeep (task) VALUES ('client_origins');")
        .await;
    assert!(!store.origin_registered("https://app.example.com").await.unwrap());
    store.migrate().await.unwrap();
    assert!(store.origin_registered("https://app.example.com").await.unwrap(), "written");
    // Done once: a later start does not write them again.
    raw(&db, "DELETE FROM client_origins").await;
    store.migrate().await.unwrap();
    assert!(!store.origin_registered("https://app.example.com").await.unwrap());
}

/// Client changes are counted, and nodes record which count they have caught up with: what
/// `latchkey clients remove` waits on.
async fn nodes_record_the_client_changes_they_have_seen(db: TestDb) {
    let store = &db.store;
    let start = store.client_epoch().await.unwrap();
    store.upsert_client(&client("app", ClientSource::Cli), 1).await.unwrap();
    store.upsert_client(&client("app", ClientSource::Cli), 2).await.unwrap();
    assert_eq!(store.client_epoch().await.unwrap(), start + 2, "each write counts");
    // A refused write changes nothing and counts nothing.
    store.upsert_user(&user("alice", "taken"), 1).await.unwrap();
    assert!(store.upsert_client(&client("taken", ClientSource::Cli), 3).await.is_err());
    assert!(store.remove_client("nobody", 3).await.is_err());
    assert_eq!(store.client_epoch().await.unwrap(), start + 2);
    store.remove_client("app", 4).await.unwrap();
    let epoch = store.client_epoch().await.unwrap();
    assert_eq!(epoch, start + 3);

    // A node that has not caught up is behind while it syncs; once caught up it is not.
    assert_eq!(store.sync_node("n1", None).await.unwrap(), epoch, "the current count");
    assert_eq!(store.nodes_behind(epoch, 60_000).await.unwrap(), 1);
    store.sync_node("n2", Some(epoch)).await.unwrap();
    assert_eq!(store.nodes_behind(epoch, 60_000).await.unwrap(), 1, "n2 caught up");
    store.sync_node("n1", Some(epoch - 1)).await.unwrap();
    assert_eq!(store.nodes_behind(epoch, 60_000).await.unwrap(), 1);
    assert_eq!(store.nodes_behind(epoch - 1, 60_000).await.unwrap(), 0);
    // A node that has not synced within the window serves nothing from its cache any more.
    assert_eq!(store.nodes_behind(epoch, -60_000).await.unwrap(), 0);
    store.leave_node("n1").await.unwrap();
    assert_eq!(store.nodes_behind(epoch, 60_000).await.unwrap(), 0, "n1 left");
    // A node silent for a day is purged.
    store.sync_node("n3", None).await.unwrap();
    let now = db.store.clock_millis().await.unwrap() / 1000;
    assert_eq!(store.purge(now).await.unwrap().nodes, 0, "n2 and n3 are recent");
    assert_eq!(store.purge(now + 86_401).await.unwrap().nodes, 2);
}

/// The cache in front of the store: a cache that only expires entries sees a change within its
/// lifetime; unknown ids are looked up every time (so a new client works at once).
async fn the_client_cache_sees_changes_within_its_lifetime(db: TestDb) {
    use latchkey::clients::cache::{CLIENT_CACHE_TTL, ClientCache};
    let cache = ClientCache::default();
    let store = db.store.as_ref();
    assert!(cache.get(store, "app").await.unwrap().is_none());
    db.store.upsert_client(&client("app", ClientSource::Cli), 1).await.unwrap();
    assert!(cache.get(store, "app").await.unwrap().is_some(), "a miss is not remembered");
    db.store.remove_client("app", 2).await.unwrap();
    assert!(cache.get(store, "app").await.unwrap().is_some(), "served from the cache meanwhile");
    tokio::time::sleep(CLIENT_CACHE_TTL + std::time::Duration::from_millis(100)).await;
    assert!(cache.get(store, "app").await.unwrap().is_none(), "removal seen after the lifetime");
}

/// A node's synced cache forgets a changed client at its next sync, and a removal is then
/// confirmed by every node at once; a node that stops syncing is waited for only as long as
/// the cache's lifetime.
async fn a_synced_cache_sees_a_removal_at_its_next_sync(db: TestDb) {
    use latchkey::clients::cache::{ClientCache, Confirmed, confirm_change};
    let store = db.store.as_ref();
    let cache = ClientCache::synced("node-a".into());
    db.store.upsert_client(&client("app", ClientSource::Cli), 1).await.unwrap();
    cache.sync(store).await.unwrap();
    assert!(cache.get(store, "app").await.unwrap().is_some());
    db.store.remove_client("app", 2).await.unwrap();
    // Before its sync the node may still serve the old client, and says it is behind.
    assert!(cache.get(store, "app").await.unwrap().is_some(), "cached until the sync");
    let started = std::time::Instant::now();
    let confirming = confirm_change(store);
    let (confirmed, synced) = tokio::join!(confirming, async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        cache.sync(store).await
    });
    synced.unwrap();
    assert_eq!(confirmed.unwrap(), Confirmed::ByEveryNode);
    assert!(started.elapsed() < latchkey::clients::cache::CLIENT_CACHE_TTL, "no fixed wait");
    assert!(cache.get(store, "app").await.unwrap().is_none(), "forgotten at the sync");

    // A node that never catches up is waited for until its cache may no longer serve (the
    // lifetime after its last sync), and no longer counts after that.
    let stalled = ClientCache::synced("node-b".into());
    stalled.sync(store).await.unwrap();
    let stalled_since = std::time::Instant::now();
    db.store.upsert_client(&client("other", ClientSource::Cli), 3).await.unwrap();
    cache.sync(store).await.unwrap();
    confirm_change(store).await.unwrap();
    let waited = stalled_since.elapsed();
    assert!(waited >= latchkey::clients::cache::CLIENT_CACHE_TTL, "returned after {waited:?}");
}

/// The WAL stays near its limit under steady reads and writes (readers always holding a
/// snapshot once kept it from ever starting over), and closing the store empties it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_wal_stays_bounded_and_is_emptied_at_close() {
    use latchkey::store::{ClientStore, Options, Store, sqlite::SqliteStore};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal.db").to_str().unwrap().to_owned();
    let limit = 256 * 1024;
    let options = Options { wal_limit_bytes: limit, ..Options::default() };
    let store = std::sync::Arc::new(SqliteStore::open(&path, options).await.unwrap());
    store.migrate().await.unwrap();
    let wal = || std::fs::metadata(format!("{path}-wal")).map_or(0, |m| m.len());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let (store, stop) = (store.clone(), stop.clone());
        readers.spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                store.clients().await.unwrap();
            }
        });
    }
    // Far more than the limit goes through the WAL, a client of ~2 KiB at a time.
    let started = std::time::Instant::now();
    let mut n = 0;
    while started.elapsed() < std::time::Duration::from_secs(4) {
        let mut record = client(&format!("app-{}", n % 50), ClientSource::Cli);
        record.client.client_name = Some("x".repeat(2048));
        store.upsert_client(&record, n).await.unwrap();
        n += 1;
    }
    let written = n as u64 * 2048;
    assert!(written > 8 * limit, "the test wrote only {written} bytes");
    // A few intervals with a trickle of writes: the last checkpoint over the limit has
    // started the WAL over and cut its file back. The bound is the limit plus about one
    // interval of writes, so the trickle writes far less than half the limit per interval
    // (4 client upserts of ~5 pages a second; 20 a second once grew it to 1.7× the limit).
    for m in 0..12 {
        store.upsert_client(&client("trickle", ClientSource::Cli), n + m).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let size = wal();
    assert!(size <= limit + limit / 2, "the WAL is {size} bytes after {written} were written");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    readers.join_all().await;
    store.close().await.unwrap();
    assert_eq!(wal(), 0, "closing empties the WAL");
}

#[tokio::test]
async fn sqlite_files_are_created_in_wal_mode() {
    let db: TestDb = latchkey_testkit::prepare(latchkey_testkit::Database::sqlite()).await;
    let connection = rusqlite::Connection::open(db.db.sqlite_path().unwrap()).unwrap();
    let mode: String = connection.query_row("PRAGMA journal_mode", [], |row| row.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

crate::on_both_engines!(
    migrations_can_run_again_and_concurrently,
    clients_round_trip,
    a_client_is_replaced_only_at_the_revision_it_was_read,
    config_clients_dropped_from_the_file_are_removed,
    users_round_trip_and_keep_their_subject,
    a_client_id_may_not_be_a_users_subject,
    a_user_id_is_unique,
    the_client_cache_sees_changes_within_its_lifetime,
    nodes_record_the_client_changes_they_have_seen,
    the_registered_origins_follow_every_client_change,
    cors_answers_are_remembered_until_a_client_changes,
    the_origins_of_clients_from_before_the_table_are_written_once,
    a_synced_cache_sees_a_removal_at_its_next_sync,
);
