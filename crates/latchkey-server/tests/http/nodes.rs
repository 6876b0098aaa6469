//! Several nodes on one database share their keys.

use serde_json::Value;

use crate::{TestDb, TestServer, client, get_json};

async fn jwks_of(server: &TestServer) -> Value {
    get_json(&client(), &server.url("/.well-known/jwks.json")).await
}

async fn two_nodes_publish_the_same_jwks_and_follow_rotation(db: TestDb) {
    let a = TestServer::start(&db, "").await;
    let b = TestServer::start(&db, "").await;
    assert_eq!(jwks_of(&a).await, jwks_of(&b).await);
    let slots = latchkey::keys::SLOTS.len();
    assert_eq!(jwks_of(&a).await["keys"].as_array().unwrap().len(), slots);

    // A key rotated through node A is published by node B at its next refresh.
    let now = latchkey_server::startup::unix_now();
    a.state.keys.rotate(now).await.unwrap();
    b.state.keys.refresh(now).await.unwrap();
    let published = jwks_of(&b).await;
    assert_eq!(published["keys"].as_array().unwrap().len(), 2 * slots);
    assert_eq!(jwks_of(&a).await, published);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_postgres_database() {
    if let Some(db) = crate::postgres_db().await {
        two_nodes_publish_the_same_jwks_and_follow_rotation(db).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_sqlite_file() {
    two_nodes_publish_the_same_jwks_and_follow_rotation(crate::sqlite_db()).await;
}
