//! The browser forms and sessions (issue 11, items 5–9) through HTTP: anti-CSRF values bound to
//! the browser, the session and the request; login freshness that cannot be skipped; consent
//! for native apps; denial; `id_token_hint` at `/authorize`; logout by the hint's `sid`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::code_flow::{
    SPA_REDIRECT, authorize_url, browser, decide, exchange_spa, hidden, location_params, server,
    sign_in, spa_code, token,
};
use crate::{TestDb, TestServer};

/// A second user, and a public native app with a loopback redirect URI (RFC 8252 §7.3).
const EXTRA: &str = r#"
[[clients]]
client_id = "cli"
application_type = "native"
redirect_uris = ["http://127.0.0.1/cb"]
grant_types = ["authorization_code", "refresh_token"]
scopes = ["openid", "profile"]

[[users]]
username = "bob"
password = "bob-password"
"#;

const EXPIRED_FORM: &str = "This form has expired";

async fn sign_in_as(
    browser: &reqwest::Client,
    server: &TestServer,
    page: &str,
    username: &str,
) -> reqwest::Response {
    let password = format!("{username}-password");
    let form = [
        ("username", username),
        ("password", password.as_str()),
        ("csrf_token", &hidden(page, "csrf_token")),
        ("request", &hidden(page, "request")),
    ];
    browser.post(server.url("/login")).form(&form).send().await.unwrap()
}

async fn page(browser: &reqwest::Client, url: String) -> String {
    let response = browser.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

async fn refused(response: reqwest::Response) {
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains(EXPIRED_FORM));
}

fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The id_token of a full sign-in of `username` in `browser`, and its refresh token.
async fn id_token_of(browser: &reqwest::Client, server: &TestServer, username: &str) -> Value {
    id_token_with(browser, server, username, &[]).await
}

/// [`id_token_of`] with other authorization parameters.
async fn id_token_with(
    browser: &reqwest::Client,
    server: &TestServer,
    username: &str,
    extra: &[(&str, &str)],
) -> Value {
    let login = page(browser, authorize_url(server, "spa", SPA_REDIRECT, extra)).await;
    let consent = sign_in_as(browser, server, &login, username).await.text().await.unwrap();
    let done = decide(browser, server, &consent, "allow").await;
    let (_, params) = location_params(&done);
    let (status, tokens) = exchange_spa(server, &params["code"]).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

async fn a_value_copied_from_a_cookie_does_not_pass(db: TestDb) {
    let server = server(&db, EXTRA).await;
    let browser = browser();
    let first = browser.get(authorize_url(&server, "spa", SPA_REDIRECT, &[])).send().await.unwrap();
    let cookie_values: Vec<String> = first
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next()?.split_once('=').map(|(_, v)| v.into()))
        .collect();
    assert!(!cookie_values.is_empty(), "the login page sets the browser cookie");
    let page = first.text().await.unwrap();
    for value in &cookie_values {
        let form = [
            ("username", "alice"),
            ("password", "alice-password"),
            ("csrf_token", value.as_str()),
            ("request", &hidden(&page, "request")),
        ];
        refused(browser.post(server.url("/login")).form(&form).send().await.unwrap()).await;
    }
    // The page's own value does not pass in another browser either, only in its own.
    refused(sign_in(&crate::code_flow::browser(), &server, &page, "alice-password").await).await;
    // Nor for another request than the one it was shown for.
    let other = authorize_url(&server, "spa", SPA_REDIRECT, &[("state", "other")]);
    let form = [
        ("username", "alice"),
        ("password", "alice-password"),
        ("csrf_token", &hidden(&page, "csrf_token")),
        ("request", other.split_once('?').unwrap().1),
    ];
    refused(browser.post(server.url("/login")).form(&form).send().await.unwrap()).await;
    let consent = sign_in(&browser, &server, &page, "alice-password").await;
    assert_eq!(consent.status(), 200);
    assert!(consent.text().await.unwrap().contains("name=\"decision\""));
}

async fn forms_shown_before_a_login_stop_working_after_it(db: TestDb) {
    let server = server(&db, EXTRA).await;
    let browser = browser();
    let login = page(&browser, authorize_url(&server, "spa", SPA_REDIRECT, &[])).await;
    let consent = sign_in(&browser, &server, &login, "alice-password").await;
    assert_eq!(consent.status(), 200);
    // The same login form again (a second tab, or a replay) after the value rotated.
    refused(sign_in(&browser, &server, &login, "alice-password").await).await;
}

async fn a_consent_page_applies_only_to_the_session_it_was_shown_to(db: TestDb) {
    let server = server(&db, EXTRA).await;
    let browser = browser();
    let login = page(&browser, authorize_url(&server, "spa", SPA_REDIRECT, &[])).await;
    let alice_consent = sign_in(&browser, &server, &login, "alice-password").await;
    let alice_consent = alice_consent.text().await.unwrap();
    assert!(alice_consent.contains("alice"));
    // Someone else signs in at this browser before alice's consent page is answered.
    let again = page(&browser, authorize_url(&server, "spa", SPA_REDIRECT, &[("prompt", "login")]));
    let bob_consent = sign_in_as(&browser, &server, &again.await, "bob").await;
    assert_eq!(bob_consent.status(), 200);
    refused(decide(&browser, &server, &alice_consent, "allow").await).await;
}

async fn prompt_login_cannot_be_skipped_by_posting_to_consent(db: TestDb) {
    let server = server(&db, EXTRA).await;
    let browser = browser();
    spa_code(&browser, &server, &[]).await;
    let login = page(&browser, authorize_url(&server, "spa", SPA_REDIRECT, &[("prompt", "login")]));
    let login = login.await;
    assert!(login.contains("name=\"password\""), "prompt=login asks for the password again");
    // Straight to /consent with what the login page carries: no code without the login.
    refused(decide(&browser, &server, &login, "allow").await).await;
    let (_, params) = location_params(&sign_in(&browser, &server, &login, "alice-password").await);
    assert!(params.contains_key("code"), "signing in answers the request: {params:?}");
}

async fn remembered_consent_does_not_answer_for_a_native_public_client(db: TestDb) {
    let server = server(&db, EXTRA).await;
    let browser = browser();
    let cli = |port: u16, extra: &[(&str, &str)]| {
        let mut all = vec![("scope", "openid profile")];
        all.extend_from_slice(extra);
        authorize_url(&server, "cli", &format!("http://127.0.0.1:{port}/cb"), &all)
    };
    let login = page(&browser, cli(5555, &[])).await;
    let consent = sign_in(&browser, &server, &login, "alice-password").await.text().await.unwrap();
    assert!(consent.contains("127.0.0.1:5555"), "the consent page names the receiving port");
    let (base, params) = location_params(&decide(&browser, &server, &consent, "allow").await);
    assert_eq!(base, "http://127.0.0.1:5555/cb");
    assert!(params.contains_key("code"));
    // Another local program claims the client id on its own port.
    let silent = browser.get(cli(6666, &[("prompt", "none")])).send().await.unwrap();
    let (base, params) = location_params(&silent);
    assert_eq!(base, "http://127.0.0.1:6666/cb");
    assert_eq!(params.get("error").map(String::as_str), Some("consent_required"), "{params:?}");
    assert!(!params.contains_key("code"));
    let asked = page(&browser, cli(6666, &[])).await;
    assert!(asked.contains("name=\"decision\"") && asked.contains("127.0.0.1:6666"));
}

async fn denying_withdraws_the_remembered_consent(db: TestDb) {
    let server = server(&db, EXTRA).await;
    let browser = browser();
    spa_code(&browser, &server, &[]).await;
    let consent =
        page(&browser, authorize_url(&server, "spa", SPA_REDIRECT, &[("prompt", "consent")]));
    let (_, params) = location_params(&decide(&browser, &server, &consent.await, "deny").await);
    assert_eq!(params["error"], "access_denied");
    let silent = browser
        .get(authorize_url(&server, "spa", SPA_REDIRECT, &[("prompt", "none")]))
        .send()
        .await
        .unwrap();
    let (_, params) = location_params(&silent);
    assert_eq!(params.get("error").map(String::as_str), Some("consent_required"), "{params:?}");
}

async fn an_id_token_hint_for_another_user_is_login_required(db: TestDb) {
    let server = server(&db, EXTRA).await;
    let bob = id_token_of(&browser(), &server, "bob").await;
    let alice_browser = browser();
    let alice = id_token_of(&alice_browser, &server, "alice").await;
    let silent = |hint: &str| {
        let url = authorize_url(
            &server,
            "spa",
            SPA_REDIRECT,
            &[("prompt", "none"), ("id_token_hint", hint)],
        );
        alice_browser.get(url).send()
    };
    let (_, params) = location_params(&silent(bob["id_token"].as_str().unwrap()).await.unwrap());
    assert_eq!(params.get("error").map(String::as_str), Some("login_required"), "{params:?}");
    let (_, params) = location_params(&silent(alice["id_token"].as_str().unwrap()).await.unwrap());
    assert!(params.contains_key("code"), "the hint names the signed-in user: {params:?}");
    let (_, params) = location_params(&silent("not.a.token").await.unwrap());
    assert_eq!(params["error"], "invalid_request");
    // Without prompt=none the user is asked to sign in as the hinted account.
    let url = authorize_url(
        &server,
        "spa",
        SPA_REDIRECT,
        &[("id_token_hint", bob["id_token"].as_str().unwrap())],
    );
    assert!(page(&alice_browser, url).await.contains("name=\"password\""));
}

async fn an_expired_hint_does_not_skip_the_logout_confirmation(db: TestDb) {
    let clock = std::sync::Arc::new(latchkey::clock::ManualClock::starting_now());
    let extra = format!("[tokens]\nid_token_ttl = \"1s\"\n{EXTRA}");
    let server = crate::code_flow::server_with_clock(&db, &extra, clock.clone()).await;
    let browser = browser();
    let tokens = id_token_of(&browser, &server, "alice").await;
    clock.advance(2);
    let url = format!(
        "{}?id_token_hint={}&post_logout_redirect_uri=https%3A%2F%2Fspa.example.com%2F",
        server.url("/logout"),
        tokens["id_token"].as_str().unwrap()
    );
    let response = browser.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "asks instead of signing out");
    assert!(response.text().await.unwrap().contains("Sign out?"));
    let silent = browser
        .get(authorize_url(&server, "spa", SPA_REDIRECT, &[("prompt", "none")]))
        .send()
        .await
        .unwrap();
    assert!(location_params(&silent).1.contains_key("code"), "still signed in");
}

async fn a_hint_without_the_cookie_ends_the_session_that_issued_it(db: TestDb) {
    let server = server(&db, EXTRA).await;
    let browser = browser();
    // Without offline_access, so the refresh token belongs to the session (OIDC Core §11).
    let online = [("scope", "openid profile email read:photos")];
    let tokens = id_token_with(&browser, &server, "alice", &online).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    assert!(claims(id_token)["sid"].as_str().is_some_and(|sid| sid.len() >= 16), "sid claim");
    // The RP's cross-site POST: the browser withholds its SameSite=Lax cookies.
    let form = [
        ("id_token_hint", id_token),
        ("post_logout_redirect_uri", "https://spa.example.com/"),
        ("state", "bye"),
    ];
    let cross_site = crate::code_flow::browser();
    let response = cross_site.post(server.url("/logout")).form(&form).send().await.unwrap();
    assert_eq!(response.headers()["location"], "https://spa.example.com/?state=bye");
    let silent = browser
        .get(authorize_url(&server, "spa", SPA_REDIRECT, &[("prompt", "none")]))
        .send()
        .await
        .unwrap();
    let (_, params) = location_params(&silent);
    assert_eq!(params.get("error").map(String::as_str), Some("login_required"), "{params:?}");
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ("client_id", "spa"),
    ];
    assert_eq!(token(&server, &refresh, None).await.1["error"], "invalid_grant");
}

async fn a_cookieless_logout_post_without_a_hint_asks(db: TestDb) {
    let server = server(&db, EXTRA).await;
    let browser = browser();
    spa_code(&browser, &server, &[]).await;
    let form = [("client_id", "spa"), ("post_logout_redirect_uri", "https://spa.example.com/")];
    let cross_site = crate::code_flow::browser();
    let response = cross_site.post(server.url("/logout")).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 200, "cannot tell whether this browser is signed in: asks");
    let page = response.text().await.unwrap();
    assert!(page.contains("Sign out?"));
    // The confirmation is posted from this server's own page, with the browser's cookies.
    let confirm = [
        ("decision", "logout"),
        ("csrf_token", &hidden(&page, "csrf_token")),
        ("request", &hidden(&page, "request")),
    ];
    let forged = [("decision", "logout"), ("csrf_token", "1.AAAA"), ("request", "")];
    refused(browser.post(server.url("/logout")).form(&forged).send().await.unwrap()).await;
    // The page was served to another cookie jar; in the real browser its cookie replaces the
    // withheld one, so the confirmation verifies there.
    let done = cross_site.post(server.url("/logout")).form(&confirm).send().await.unwrap();
    assert_eq!(done.headers()["location"], "https://spa.example.com/");
}

crate::on_both_engines!(
    a_value_copied_from_a_cookie_does_not_pass,
    forms_shown_before_a_login_stop_working_after_it,
    a_consent_page_applies_only_to_the_session_it_was_shown_to,
    prompt_login_cannot_be_skipped_by_posting_to_consent,
    remembered_consent_does_not_answer_for_a_native_public_client,
    denying_withdraws_the_remembered_consent,
    an_id_token_hint_for_another_user_is_login_required,
    an_expired_hint_does_not_skip_the_logout_confirmation,
    a_hint_without_the_cookie_ends_the_session_that_issued_it,
    a_cookieless_logout_post_without_a_hint_asks,
);
