//! The behaviour every engine must share.

use latchkey::model::ClientSource;
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
    assert_eq!(store.client("photo-app").await.unwrap(), Some(changed));

    store.upsert_client(&client("another", ClientSource::Cli), 300).await.unwrap();
    let ids: Vec<String> =
        store.clients().await.unwrap().into_iter().map(|r| r.client.client_id).collect();
    assert_eq!(ids, ["another", "photo-app"]);

    store.remove_client("photo-app", 400).await.unwrap();
    assert!(matches!(store.remove_client("photo-app", 400).await, Err(Error::NotFound)));
    assert_eq!(store.client("photo-app").await.unwrap(), None);
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

/// The cache in front of the store: a change reaches it within its lifetime, unknown ids are
/// looked up every time (so a new client works at once).
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
    config_clients_dropped_from_the_file_are_removed,
    users_round_trip_and_keep_their_subject,
    a_client_id_may_not_be_a_users_subject,
    a_user_id_is_unique,
    the_client_cache_sees_changes_within_its_lifetime,
);
