//! A browser single-page app as people write it: `oidc-client-ts` (the library behind most
//! SPA sign-ins) in headless Chromium, on a page served from another 127.0.0.1 port, so every
//! call it makes to latchkey is cross-origin. It runs discovery, the code flow with PKCE as a
//! public client, userinfo, a refresh that returns a fresh id_token, and RP-initiated logout.
//!
//! The page is `tests/interop/spa/{index.html,app.js}`; the library comes from npm
//! (`tests/interop/spa/package.json`, installed by `scripts/test` when npm is present). Without
//! Chromium or the library the test is skipped, except under `CI=true`.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fantoccini::{Client, Locator};
use serde_json::Value;

use crate::browser::{artifacts, browser_available, start_browser};
use crate::{TestDb, TestServer};

const SPA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/spa");

/// The browser bundle of oidc-client-ts, if npm installed it.
fn library() -> Option<String> {
    let bundle =
        Path::new(SPA_DIR).join("node_modules/oidc-client-ts/dist/browser/oidc-client-ts.js");
    let text = std::fs::read_to_string(&bundle).ok();
    let install = format!("npm ci --prefix {SPA_DIR}");
    latchkey_testkit::tool_available(text.is_some(), "oidc-client-ts", &install).then_some(text)?
}

/// Serves the SPA on `listener`: its page (with latchkey's issuer as the authority) at every
/// path the app uses, its script and the library.
fn serve_page(listener: tokio::net::TcpListener, authority: &str, library: String) {
    use axum::response::{Html, IntoResponse};
    use axum::routing::get;

    let page = std::fs::read_to_string(Path::new(SPA_DIR).join("index.html"))
        .unwrap()
        .replace("{{AUTHORITY}}", authority);
    let app_js = std::fs::read_to_string(Path::new(SPA_DIR).join("app.js")).unwrap();
    let script = |text: String| {
        move || async move { ([("content-type", "text/javascript")], text).into_response() }
    };
    let html = move || {
        let page = page.clone();
        async move { Html(page) }
    };
    let app = axum::Router::new()
        .route("/", get(html.clone()))
        .route("/callback.html", get(html.clone()))
        .route("/signed-out.html", get(html))
        .route("/app.js", get(script(app_js)))
        .route("/oidc-client-ts.js", get(script(library)));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
}

/// Waits for the app to report step `id` and returns what it reported; fails with the
/// library's own message if it reported an error instead.
async fn outcome(browser: &Client, id: &str) -> Value {
    let element = browser
        .wait()
        .for_element(Locator::Css(&format!("#{id}, #error")))
        .await
        .unwrap_or_else(|e| panic!("the app never reported {id}: {e}"));
    let reported = element.attr("id").await.unwrap().unwrap_or_default();
    let text = element.text().await.unwrap();
    assert_eq!(reported, id, "oidc-client-ts failed: {text}");
    serde_json::from_str(&text).unwrap()
}

/// The claims of a JWT, read without checking it (oidc-client-ts checked it; this only looks).
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn sign_in(browser: &Client) {
    browser.find(Locator::Id("sign-in")).await.unwrap().click().await.unwrap();
    // Discovery runs first: a CORS failure there shows as the app's #error.
    let landed = browser.wait().for_element(Locator::Css("input[name=username], #error")).await;
    let username = landed.unwrap();
    if username.attr("id").await.unwrap().as_deref() == Some("error") {
        panic!("oidc-client-ts failed: {}", username.text().await.unwrap());
    }
    username.send_keys("alice").await.unwrap();
    let password = browser.find(Locator::Css("input[name=password]")).await.unwrap();
    password.send_keys("alice-password").await.unwrap();
    browser.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    // A public client on a loopback redirect URI is asked for consent every time (RFC 8252 §8.6).
    let allow = browser.wait().for_element(Locator::Css("button[value=allow]")).await.unwrap();
    allow.click().await.unwrap();
}

crate::on_both_engines!(oidc_client_ts_signs_in_refreshes_and_signs_out_in_headless_chromium);

async fn oidc_client_ts_signs_in_refreshes_and_signs_out_in_headless_chromium(db: TestDb) {
    if !browser_available() {
        return;
    }
    let Some(library) = library() else { return };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    // `claims_in_id_token = false`: the name and email the app shows can only have come from
    // its userinfo call.
    let config = format!(
        r#"
[[clients]]
client_id = "spa"
client_name = "Browser SPA"
redirect_uris = ["{origin}/callback.html"]
post_logout_redirect_uris = ["{origin}/signed-out.html"]
grant_types = ["authorization_code", "refresh_token"]
scopes = ["openid", "profile", "email"]
claims_in_id_token = false

[[users]]
username = "alice"
password = "alice-password"
email = "alice@example.com"
name = "Alice Example"
"#
    );
    let server = TestServer::start_ready(&db, &config).await;
    serve_page(listener, &server.base, library);
    let (driver, browser, _profile) = start_browser().await;

    browser.goto(&format!("{origin}/")).await.unwrap();
    sign_in(&browser).await;
    let signed_in = outcome(&browser, "signed-in").await;
    std::fs::write(artifacts().join("spa-signed-in.png"), browser.screenshot().await.unwrap())
        .unwrap();
    assert_eq!(signed_in["state"]["from"], "sign-in", "{signed_in}");
    assert_eq!(signed_in["email"], "alice@example.com", "userinfo was not read: {signed_in}");
    assert_eq!(signed_in["name"], "Alice Example", "{signed_in}");
    let id_token = claims(signed_in["id_token"].as_str().unwrap());
    assert_eq!(id_token["iss"], server.base.as_str());
    assert_eq!(id_token["aud"], "spa");
    assert!(id_token.get("email").is_none(), "{id_token}");
    assert!(signed_in["refresh_token"].as_str().is_some_and(|t| !t.is_empty()), "{signed_in}");

    // A refresh: oidc-client-ts checks that the fresh id_token keeps `sub`, `auth_time` and
    // `azp`, and reads userinfo again with the new access token.
    browser.find(Locator::Id("refresh")).await.unwrap().click().await.unwrap();
    let refreshed = outcome(&browser, "refreshed").await;
    assert_eq!(refreshed["sub"], signed_in["sub"]);
    assert_eq!(refreshed["email"], "alice@example.com", "{refreshed}");
    for rotated in ["access_token", "refresh_token", "id_token"] {
        assert_ne!(refreshed[rotated], signed_in[rotated], "{rotated} was not renewed");
    }
    let fresh = claims(refreshed["id_token"].as_str().unwrap());
    assert_eq!(fresh["auth_time"], id_token["auth_time"]);
    assert!(fresh.get("nonce").is_none(), "{fresh}");

    // RP-initiated logout with the fresh id_token as the hint: back at the app with its state,
    // signed out.
    browser.find(Locator::Id("sign-out")).await.unwrap().click().await.unwrap();
    let signed_out = outcome(&browser, "signed-out").await;
    assert_eq!(signed_out["state"]["from"], "sign-out", "{signed_out}");
    assert!(signed_out["user"].is_null(), "{signed_out}");
    let landed = browser.current_url().await.unwrap();
    assert_eq!(landed.path(), "/signed-out.html", "{landed}");

    // The session ended: its refresh token (bound to it, no offline_access) is dead, and the
    // next sign-in asks for the password again.
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refreshed["refresh_token"].as_str().unwrap()),
        ("client_id", "spa"),
    ];
    let response =
        crate::client().post(server.url("/oauth/token")).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
    browser.find(Locator::Id("sign-in")).await.unwrap().click().await.unwrap();
    browser.wait().for_element(Locator::Css("input[name=password]")).await.unwrap();
    browser.close().await.unwrap();
    drop(driver);
}
