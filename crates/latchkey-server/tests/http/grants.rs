//! Tokens and credentials (issue 11, items 12–16) through HTTP: code replay by another client,
//! scopes against the current registration, client assertions, client ids and subjects.

use reqwest::StatusCode;
use serde_json::Value;

use crate::code_flow::{
    CONFIG, SPA_REDIRECT, authorize_url, browser, exchange_spa, location_params, server, sign_in,
    spa_code, token,
};
use crate::process::{ConfigFile, run, stderr};
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

/// Whether `browser` is still signed in (a silent request gets a code).
async fn signed_in(browser: &reqwest::Client, server: &TestServer) -> bool {
    let url = authorize_url(server, "spa", SPA_REDIRECT, &[("prompt", "none")]);
    let (_, params) = location_params(&browser.get(url).send().await.unwrap());
    params.contains_key("code")
}

/// Signs alice in with `password` at a fresh login page; whether it worked.
async fn signs_in_with(browser: &reqwest::Client, server: &TestServer, password: &str) -> bool {
    let url = authorize_url(server, "spa", SPA_REDIRECT, &[("prompt", "login")]);
    let page = browser.get(url).send().await.unwrap().text().await.unwrap();
    let response = sign_in(browser, server, &page, password).await;
    response.status() == StatusCode::SEE_OTHER || response.status() == StatusCode::OK
}

async fn a_password_change_ends_sessions_and_survives_a_restart(db: TestDb) {
    let first = server(&db, "").await;
    let browser = browser();
    let (_, tokens) = exchange_spa(&first, &spa_code(&browser, &first, &[]).await).await;
    assert!(signed_in(&browser, &first).await);
    // The operator changes alice's password with the CLI, on the same database.
    let cli = ConfigFile::new(&format!("[database]\nurl = \"{}\"\n", db.url));
    let output = run(&["users", "set-password", "alice"], &cli.path, "velvet harbor new-123\n");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!signed_in(&browser, &first).await, "the session ended with the change");
    let (_, body) = refresh(&first, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(body["error"], "invalid_grant", "the grants were revoked with it");
    drop(first);

    // A restart with the same config does not revert the CLI's change.
    let second = TestServer::start_ready(&db, CONFIG).await;
    assert!(!signs_in_with(&browser, &second, "alice-password").await, "the old password");
    assert!(signs_in_with(&browser, &second, "velvet harbor new-123").await, "the CLI's password");
    assert!(signed_in(&browser, &second).await);
    drop(second);

    // A changed password in the config applies, and ends the sessions like any change.
    let third =
        TestServer::start_ready(&db, &CONFIG.replace("alice-password", "from-the-config")).await;
    assert!(!signed_in(&browser, &third).await, "the config's change ended the session");
    assert!(signs_in_with(&browser, &third, "from-the-config").await);

    // --keep-sessions keeps them.
    let output = run(
        &["users", "set-password", "alice", "--keep-sessions"],
        &cli.path,
        "another thistle lamp 456\n",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(signed_in(&browser, &third).await, "kept on request");
}

fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The purge that runs at start-up reports itself in `/metrics`: how long the run took, each
/// batch's time on the database and the rows removed, by table (issue 14, item 1).
async fn the_purge_reports_its_runs_in_metrics(db: TestDb) {
    let server = server(&db, "").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let text = loop {
        let text =
            crate::client().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
        if text.contains("latchkey_purge_run_seconds") || std::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    for name in [
        "latchkey_purge_run_seconds",
        "latchkey_purge_batch_seconds_count{table=\"grants\"}",
        "latchkey_purged_rows_total{table=\"refresh_tokens\"}",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
}

crate::on_both_engines!(
    the_purge_reports_its_runs_in_metrics,
    a_code_replayed_by_another_client_revokes_nothing,
    a_scope_removed_from_a_client_stops_being_minted_at_once,
    a_password_change_ends_sessions_and_survives_a_restart,
);
