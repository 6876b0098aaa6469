//! Tokens and credentials (issue 11, items 12–16) through HTTP: code replay by another client,
//! scopes against the current registration, client assertions, client ids and subjects.

use reqwest::StatusCode;
use serde_json::Value;

use crate::code_flow::{CONFIG, browser, exchange_spa, server, spa_code, token};
use crate::{TestDb, TestServer};

/// A refresh by the public client `spa`.
async fn refresh(server: &TestServer, refresh_token: &str) -> (StatusCode, Value) {
    let form =
        [("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", "spa")];
    token(server, &form, None).await
}

async fn a_code_replayed_by_another_client_revokes_nothing(db: TestDb) {
    let server = server(&db, "").await;
    let browser = browser();
    let code = spa_code(&browser, &server, &[]).await;
    let (status, tokens) = exchange_spa(&server, &code).await;
    assert_eq!(status, 200, "{tokens}");
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    // Another (authenticated) client presents the owner's spent code.
    let foreign = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://127.0.0.1:9000/callback"),
    ];
    let (status, body) = token(&server, &foreign, Some(("web", "web-secret"))).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    let (status, rotated) = refresh(&server, &refresh_token).await;
    assert_eq!(status, 200, "the owner's grant survives: {rotated}");
    // The owner's own replay still revokes the grant (RFC 6749 §4.1.2).
    let (status, body) = exchange_spa(&server, &code).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_grant")));
    let (_, body) = refresh(&server, rotated["refresh_token"].as_str().unwrap()).await;
    assert_eq!(body["error"], "invalid_grant", "revoked by the owner's replay");
}

async fn a_scope_removed_from_a_client_stops_being_minted_at_once(db: TestDb) {
    let before = server(&db, "").await;
    let browser = browser();
    let (_, tokens) = exchange_spa(&before, &spa_code(&browser, &before, &[]).await).await;
    assert!(tokens["scope"].as_str().unwrap().contains("read:photos"), "{tokens}");
    let pending = spa_code(&browser, &before, &[]).await;
    drop(before);
    // The operator removes read:photos from the client; the grant and the code predate it.
    let config = CONFIG.replacen(
        "scopes = [\"openid\", \"profile\", \"email\", \"offline_access\", \"read:photos\"]",
        "scopes = [\"openid\", \"profile\", \"email\", \"offline_access\"]",
        1,
    );
    assert_ne!(config, CONFIG);
    let after = TestServer::start_ready(&db, &config).await;
    let (status, refreshed) = refresh(&after, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(refreshed["scope"], "openid profile email offline_access");
    let claims = claims(refreshed["access_token"].as_str().unwrap());
    assert!(!claims["scope"].as_str().unwrap().contains("read:photos"), "{claims}");
    assert_eq!(claims["aud"], after.base, "no API audience is left: {claims}");
    let (status, exchanged) = exchange_spa(&after, &pending).await;
    assert_eq!(status, 200, "{exchanged}");
    assert_eq!(exchanged["scope"], "openid profile email offline_access");
}

fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

crate::on_both_engines!(
    a_code_replayed_by_another_client_revokes_nothing,
    a_scope_removed_from_a_client_stops_being_minted_at_once,
);
