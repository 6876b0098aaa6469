//! Signing keys in the store: the compare-and-insert that keeps nodes from forking a slot, and
//! the whole lifecycle next → current → retiring → gone with the clock fixed.

use std::sync::Arc;

use latchkey::keys::{KeyManager, KeyPurpose, KeyRecord, KeyState, MasterKey, Policy, SLOTS};
use latchkey::model::SigningAlg;

use crate::TestDb;

const POLICY: Policy = Policy { prepublication: 3_600, retention: 1_200, rotation_period: 86_400 };
const T0: i64 = 1_800_000_000;

fn record(kid: &str, activates_at: i64) -> KeyRecord {
    KeyRecord {
        kid: kid.into(),
        purpose: KeyPurpose::AccessToken,
        alg: SigningAlg::ES256,
        private_key: vec![1, 2, 3],
        sealed: false,
        created_at: activates_at,
        activates_at,
    }
}

async fn adding_a_key_is_compare_and_insert(db: TestDb) {
    let store = &db.store;
    assert!(store.add_signing_key(&record("a", 10), None).await.unwrap());
    assert!(
        !store.add_signing_key(&record("b", 20), None).await.unwrap(),
        "slot is no longer empty"
    );
    assert!(!store.add_signing_key(&record("b", 20), Some(5)).await.unwrap(), "stale expectation");
    assert!(store.add_signing_key(&record("b", 20), Some(10)).await.unwrap());
    let kids: Vec<String> =
        store.signing_keys().await.unwrap().into_iter().map(|k| k.kid).collect();
    assert_eq!(kids, ["a", "b"]);
    let stored = &store.signing_keys().await.unwrap()[0];
    assert_eq!(
        (stored.purpose, stored.alg, stored.private_key.as_slice()),
        (KeyPurpose::AccessToken, SigningAlg::ES256, &[1u8, 2, 3][..])
    );
    store.remove_signing_key("a").await.unwrap();
    store.remove_signing_key("a").await.unwrap();
    assert_eq!(store.signing_keys().await.unwrap().len(), 1);
}

async fn concurrent_nodes_add_one_successor(db: TestDb) {
    db.store.add_signing_key(&record("first", 10), None).await.unwrap();
    let mut nodes = tokio::task::JoinSet::new();
    for node in 0..8 {
        let store = db.open_another().await;
        nodes.spawn(async move {
            store.add_signing_key(&record(&format!("n{node}"), 20), Some(10)).await
        });
    }
    let mut inserted = 0;
    while let Some(result) = nodes.join_next().await {
        inserted += usize::from(result.unwrap().unwrap());
    }
    assert_eq!(inserted, 1);
    assert_eq!(db.store.signing_keys().await.unwrap().len(), 2);
}

fn published(manager: &KeyManager) -> Vec<String> {
    let mut kids: Vec<String> =
        manager.snapshot().jwks().keys.iter().map(|k| k.kid.clone()).collect();
    kids.sort();
    kids
}

fn signing_kid(manager: &KeyManager) -> String {
    let snapshot = manager.snapshot();
    snapshot.signer((KeyPurpose::AccessToken, SigningAlg::ES256)).unwrap().kid().to_owned()
}

async fn rotation_walks_next_current_retiring_gone(db: TestDb) {
    let manager = KeyManager::start(db.store.clone(), None, POLICY, T0).await.unwrap();
    // First start: one access-token key and one id_token key, both current at once.
    let first = signing_kid(&manager);
    assert_eq!(published(&manager).len(), SLOTS.len());
    assert!(manager.snapshot().signer((KeyPurpose::IdToken, SigningAlg::RS256)).is_some());

    // Rotate: the successor is published immediately but does not sign yet.
    let added = manager.rotate(T0 + 100).await.unwrap();
    let successor =
        added.iter().find(|k| k.purpose == KeyPurpose::AccessToken).unwrap().kid.clone();
    assert!(published(&manager).contains(&successor), "published before first use");
    assert_eq!(signing_kid(&manager), first);
    let states = manager.status(T0 + 100).await.unwrap();
    let state_of = |states: &[latchkey::keys::KeyStatus], kid: &str| {
        states.iter().find(|s| s.record.kid == kid).map(|s| s.state)
    };
    assert_eq!(state_of(&states, &successor), Some(KeyState::Next));
    assert_eq!(state_of(&states, &first), Some(KeyState::Current));

    // After the pre-publication period the successor signs; the old key stays published.
    let switch = T0 + 100 + POLICY.prepublication;
    manager.refresh(switch).await.unwrap();
    assert_eq!(signing_kid(&manager), successor);
    assert!(published(&manager).contains(&first), "still published while its tokens live");
    let states = manager.status(switch).await.unwrap();
    assert_eq!(
        state_of(&states, &first),
        Some(KeyState::Retiring { until: switch + POLICY.retention })
    );

    // Once every token it signed has expired, it is gone from the JWKS and the database.
    manager.refresh(switch + POLICY.retention - 1).await.unwrap();
    assert!(published(&manager).contains(&first));
    manager.refresh(switch + POLICY.retention).await.unwrap();
    assert!(!published(&manager).contains(&first));
    assert!(!db.store.signing_keys().await.unwrap().iter().any(|k| k.kid == first));
}

async fn keys_rotate_automatically_on_schedule(db: TestDb) {
    let manager = KeyManager::start(db.store.clone(), None, POLICY, T0).await.unwrap();
    let first = signing_kid(&manager);
    let due = T0 + POLICY.rotation_period - POLICY.prepublication;
    manager.refresh(due - 1).await.unwrap();
    assert_eq!(published(&manager).len(), SLOTS.len(), "nothing due yet");
    manager.refresh(due).await.unwrap();
    assert_eq!(published(&manager).len(), 2 * SLOTS.len(), "successors pre-published");
    assert_eq!(signing_kid(&manager), first);
    manager.refresh(T0 + POLICY.rotation_period).await.unwrap();
    assert_ne!(signing_kid(&manager), first);

    // A second node refreshing at the same moment adds no second successor.
    let other = KeyManager::start(db.open_another().await, None, POLICY, due).await.unwrap();
    other.refresh(T0 + POLICY.rotation_period).await.unwrap();
    assert_eq!(db.store.signing_keys().await.unwrap().len(), 2 * SLOTS.len());
    assert_eq!(signing_kid(&other), signing_kid(&manager));
}

async fn nodes_share_keys(db: TestDb) {
    let a = KeyManager::start(db.store.clone(), None, POLICY, T0).await.unwrap();
    let b = KeyManager::start(db.open_another().await, None, POLICY, T0).await.unwrap();
    assert_eq!(a.snapshot().jwks(), b.snapshot().jwks());
    a.rotate(T0 + 1).await.unwrap();
    b.refresh(T0 + 1).await.unwrap();
    assert_eq!(a.snapshot().jwks(), b.snapshot().jwks());
    assert_eq!(published(&b).len(), 2 * SLOTS.len());
}

async fn private_keys_are_sealed_under_the_master_key(db: TestDb) {
    let master = || MasterKey::parse("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap();
    let manager = KeyManager::start(db.store.clone(), Some(master()), POLICY, T0).await.unwrap();
    let stored = db.store.signing_keys().await.unwrap();
    assert!(stored.iter().all(|k| k.sealed));
    // The sealed bytes are not a parseable PKCS#8 key.
    for key in &stored {
        assert!(latchkey::keys::Signer::from_pkcs8(&key.kid, key.alg, &key.private_key).is_err());
    }
    let same =
        KeyManager::start(db.open_another().await, Some(master()), POLICY, T0).await.unwrap();
    assert_eq!(same.snapshot().jwks(), manager.snapshot().jwks());
    let without = KeyManager::start(db.open_another().await, None, POLICY, T0).await;
    let message = without.err().unwrap().to_string();
    assert!(message.contains("LATCHKEY_MASTER_KEY"), "{message}");
    let _: Arc<KeyManager> = Arc::new(manager);
}

async fn plain_keys_are_sealed_once_a_master_key_is_configured(db: TestDb) {
    let before = KeyManager::start(db.store.clone(), None, POLICY, T0).await.unwrap();
    assert!(db.store.signing_keys().await.unwrap().iter().all(|k| !k.sealed));
    let master = MasterKey::parse("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=").unwrap();
    let after = KeyManager::start(db.open_another().await, Some(master), POLICY, T0).await.unwrap();
    assert!(db.store.signing_keys().await.unwrap().iter().all(|k| k.sealed));
    assert_eq!(before.snapshot().jwks(), after.snapshot().jwks(), "same keys, now sealed");
}

async fn nodes_starting_together_on_an_empty_database_agree(db: TestDb) {
    let mut nodes = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let store = db.open_another().await;
        nodes.spawn(async move { KeyManager::start(store, None, POLICY, T0).await.unwrap() });
    }
    let mut sets = Vec::new();
    while let Some(manager) = nodes.join_next().await {
        sets.push(manager.unwrap().snapshot().jwks().clone());
    }
    assert!(sets.windows(2).all(|pair| pair[0] == pair[1]));
    assert_eq!(db.store.signing_keys().await.unwrap().len(), SLOTS.len(), "one key per slot");
}

/// A key verifies only what its purpose signs: an id_token key's `kid` finds no access-token
/// verifier, and the reverse.
async fn a_key_verifies_only_its_own_purpose(db: TestDb) {
    let manager = KeyManager::start(db.store.clone(), None, POLICY, T0).await.unwrap();
    let snapshot = manager.snapshot();
    for (purpose, other) in [
        (KeyPurpose::AccessToken, KeyPurpose::IdToken),
        (KeyPurpose::IdToken, KeyPurpose::AccessToken),
    ] {
        let kid = SLOTS
            .iter()
            .find(|slot| slot.0 == purpose)
            .and_then(|slot| snapshot.signer(*slot))
            .map(|signer| signer.kid().to_owned())
            .unwrap();
        assert!(snapshot.verifier(&kid, purpose).is_some(), "{kid} verifies {purpose:?}");
        assert!(snapshot.verifier(&kid, other).is_none(), "{kid} must not verify {other:?}");
    }
}

crate::on_both_engines!(
    a_key_verifies_only_its_own_purpose,
    plain_keys_are_sealed_once_a_master_key_is_configured,
    nodes_starting_together_on_an_empty_database_agree,
    adding_a_key_is_compare_and_insert,
    concurrent_nodes_add_one_successor,
    rotation_walks_next_current_retiring_gone,
    keys_rotate_automatically_on_schedule,
    nodes_share_keys,
    private_keys_are_sealed_under_the_master_key,
);
