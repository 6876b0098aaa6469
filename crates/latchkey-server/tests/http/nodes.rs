//! Several nodes on one database share their keys.

use latchkey_testkit::fixtures::{MACHINE_SECRET, client_credentials};
use serde_json::Value;

use crate::{TestDb, TestServer, client, get_json};

const MACHINE: &str = concat!(
    r#"
[[resources]]
identifier = "https://photos.example.com"
scopes = ["read:photos"]
"#,
    latchkey_testkit::client_machine!()
);

/// The `kid` of a client-credentials access token from `server`.
async fn signing_kid(server: &TestServer) -> String {
    let token = client_credentials(&server.base, ("machine", MACHINE_SECRET), "").await;
    jsonwebtoken::decode_header(&token).unwrap().kid.unwrap()
}

async fn jwks_of(server: &TestServer) -> Value {
    get_json(&client(), &server.url("/.well-known/jwks.json")).await
}

async fn two_nodes_publish_the_same_jwks_and_follow_rotation(db: TestDb) {
    let a = TestServer::start_ready(&db, MACHINE).await;
    let b = TestServer::start_ready(&db, MACHINE).await;
    assert_eq!(jwks_of(&a).await, jwks_of(&b).await);
    let slots = latchkey::keys::SLOTS.len();
    assert_eq!(jwks_of(&a).await["keys"].as_array().unwrap().len(), slots);

    // A key rotated through node A is published by node B at its next refresh.
    let now = a.state.now();
    a.state.keys.rotate(now).await.unwrap();
    b.state.keys.refresh(now).await.unwrap();
    let published = jwks_of(&b).await;
    assert_eq!(published["keys"].as_array().unwrap().len(), 2 * slots);
    assert_eq!(jwks_of(&a).await, published);

    // Both keep signing with the old key until the successor's activation, then both switch.
    let old = signing_kid(&a).await;
    assert_eq!(signing_kid(&b).await, old);
    let activation = now + a.state.config.key_policy().prepublication + 1;
    for node in [&a, &b] {
        node.state.keys.refresh(activation).await.unwrap();
    }
    let new = signing_kid(&a).await;
    assert_ne!(new, old, "the successor signs once active");
    assert_eq!(signing_kid(&b).await, new, "both nodes sign with the same key");
    let kids: Vec<&str> =
        published["keys"].as_array().unwrap().iter().filter_map(|k| k["kid"].as_str()).collect();
    assert!(kids.contains(&new.as_str()), "the new key was published before it signed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_postgres_database() {
    if let Some(db) = crate::TestDb::postgres().await {
        two_nodes_publish_the_same_jwks_and_follow_rotation(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_sqlite_file() {
    two_nodes_publish_the_same_jwks_and_follow_rotation(crate::TestDb::sqlite()).await;
}
