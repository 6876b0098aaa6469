//! The authorization code flow through HTTP: pages, codes, tokens, refresh, userinfo.

use latchkey_testkit::fixtures::post_form;
use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use latchkey::oauth::pkce;
use reqwest::StatusCode;
use serde_json::Value;

use crate::{TestDb, TestServer, get_json};

pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const SPA_REDIRECT: &str = "https://spa.example.com/cb";
pub const WEB_REDIRECT: &str = "http://127.0.0.1:9000/callback";

pub const CONFIG: &str = r#"
[[resources]]
identifier = "https://photos.example.com"
scopes = ["read:photos", "write:photos"]

[[clients]]
client_id = "spa"
client_name = "Photo <SPA>"
redirect_uris = ["https://spa.example.com/cb"]
post_logout_redirect_uris = ["https://spa.example.com/"]
grant_types = ["authorization_code", "refresh_token"]
scopes = ["openid", "profile", "email", "offline_access", "read:photos"]

[[clients]]
client_id = "spa-es256"
redirect_uris = ["https://spa.example.com/cb"]
grant_types = ["authorization_code", "refresh_token"]
scopes = ["openid", "profile", "email", "offline_access"]
id_token_signed_response_alg = "ES256"

[[clients]]
client_id = "spa-eddsa"
redirect_uris = ["https://spa.example.com/cb"]
grant_types = ["authorization_code", "refresh_token"]
scopes = ["openid", "profile", "email", "offline_access"]
id_token_signed_response_alg = "EdDSA"

[[clients]]
client_id = "web"
client_secret = "web-secret"
redirect_uris = ["http://127.0.0.1:9000/callback"]
grant_types = ["authorization_code"]
scopes = ["openid", "profile", "read:photos"]
require_consent = false

[[clients]]
client_id = "machine"
client_secret = "machine-secret"
grant_types = ["client_credentials"]
scopes = ["read:photos"]

[[users]]
username = "alice"
password = "alice-password"
email = "alice@example.com"
name = "Alice Example"
"#;

/// A browser: keeps cookies, never follows redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

/// Starts a server with [`CONFIG`] (plus `extra`) and waits for its static registrations.
pub async fn server(db: &TestDb, extra: &str) -> TestServer {
    TestServer::start_ready(db, &format!("{extra}\n{CONFIG}")).await
}

/// [`server`] on a clock the test moves.
pub async fn server_with_clock(
    db: &TestDb,
    extra: &str,
    clock: std::sync::Arc<latchkey::clock::ManualClock>,
) -> TestServer {
    TestServer::start_with_clock(db, &format!("{extra}\n{CONFIG}"), clock).await
}

pub fn authorize_url(
    server: &TestServer,
    client_id: &str,
    redirect_uri: &str,
    extra: &[(&str, &str)],
) -> String {
    let challenge = pkce::s256(VERIFIER);
    let mut pairs: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", "openid profile email offline_access read:photos"),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ];
    for (name, value) in extra {
        pairs.retain(|(n, _)| n != name);
        if !value.is_empty() {
            pairs.push((name, value));
        }
    }
    format!("{}?{}", server.url("/authorize"), serde_urlencoded::to_string(&pairs).unwrap())
}

/// The value of a hidden input in a page, unescaped.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start =
        html.find(&marker).unwrap_or_else(|| panic!("no {name} in:\n{html}")) + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end]
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#38;", "&")
}

/// Query parameters of a redirect's Location.
pub fn location_params(response: &reqwest::Response) -> (String, HashMap<String, String>) {
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "expected a redirect");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let url = url::Url::parse(&location).unwrap();
    // The origin carries a non-default port; the path follows it.
    let base = format!("{}{}", url.origin().ascii_serialization(), url.path());
    (base, url.query_pairs().into_owned().collect())
}

/// Signs in on the login page that `page` is; returns the next response.
pub async fn sign_in(
    browser: &reqwest::Client,
    server: &TestServer,
    page: &str,
    password: &str,
) -> reqwest::Response {
    let form = [
        ("username", "alice"),
        ("password", password),
        ("csrf_token", &hidden(page, "csrf_token")),
        ("request", &hidden(page, "request")),
    ];
    browser.post(server.url("/login")).form(&form).send().await.unwrap()
}

pub async fn decide(
    browser: &reqwest::Client,
    server: &TestServer,
    page: &str,
    decision: &str,
) -> reqwest::Response {
    let form = [
        ("decision", decision),
        ("csrf_token", &hidden(page, "csrf_token")),
        ("request", &hidden(page, "request")),
    ];
    browser.post(server.url("/consent")).form(&form).send().await.unwrap()
}

/// Runs authorize → login → consent for the SPA and returns the code.
pub async fn spa_code(
    browser: &reqwest::Client,
    server: &TestServer,
    extra: &[(&str, &str)],
) -> String {
    let first =
        browser.get(authorize_url(server, "spa", SPA_REDIRECT, extra)).send().await.unwrap();
    let response = if first.status() == StatusCode::SEE_OTHER {
        // Already signed in and consented.
        first
    } else {
        assert_eq!(first.status(), 200);
        let page = first.text().await.unwrap();
        let consent = sign_in(browser, server, &page, "alice-password").await;
        if consent.status() == 200 {
            let page = consent.text().await.unwrap();
            decide(browser, server, &page, "allow").await
        } else {
            consent
        }
    };
    let (base, params) = location_params(&response);
    assert_eq!(base, SPA_REDIRECT);
    assert_eq!(params["state"], "st-123");
    assert_eq!(params["iss"], server.base);
    params["code"].clone()
}

pub async fn token(
    server: &TestServer,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (StatusCode, Value) {
    let (status, headers, body) = post_form(&server.url("/oauth/token"), basic, form).await;
    if status == 200 {
        assert_eq!(headers["cache-control"], "no-store");
    }
    (status, body)
}

/// A refresh by the SPA with no other parameters.
pub async fn refresh(server: &TestServer, refresh_token: &str) -> (StatusCode, Value) {
    token(
        server,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", "spa")],
        None,
    )
    .await
}

pub async fn exchange_spa(server: &TestServer, code: &str) -> (StatusCode, Value) {
    token(
        server,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", SPA_REDIRECT),
            ("client_id", "spa"),
            ("code_verifier", VERIFIER),
        ],
        None,
    )
    .await
}

async fn userinfo(server: &TestServer, access_token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(server.url("/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
}

fn verify(set: &JwkSet, token: &str, alg: Algorithm, audience: &str, issuer: &str) -> Value {
    let header = decode_header(token).unwrap();
    let key = DecodingKey::from_jwk(set.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
    let mut validation = Validation::new(alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[issuer]);
    decode::<Value>(token, &key, &validation).unwrap().claims
}

async fn public_client_flow_with_pkce_issues_verifiable_tokens(db: TestDb) {
    let server = server(&db, "").await;
    let browser = browser();
    let code = spa_code(&browser, &server, &[]).await;
    let (status, body) = exchange_spa(&server, &code).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["scope"], "openid profile email offline_access read:photos");
    assert!(body["refresh_token"].is_string());

    let set: JwkSet =
        get_json(&reqwest::Client::new(), &server.url("/.well-known/jwks.json")).await;
    let access_token = body["access_token"].as_str().unwrap();
    assert_eq!(decode_header(access_token).unwrap().typ.as_deref(), Some("at+jwt"));
    let access =
        verify(&set, access_token, Algorithm::ES256, "https://photos.example.com", &server.base);
    assert_eq!(access["client_id"], "spa");
    assert_eq!(access["scope"], "openid profile email offline_access read:photos");
    let user = server.state.store.user_by_username("alice").await.unwrap().unwrap();
    assert_eq!(access["sub"], user.id);
    for claim in ["iat", "exp", "jti", "auth_time"] {
        assert!(access.get(claim).is_some(), "{claim}");
    }

    let id =
        verify(&set, body["id_token"].as_str().unwrap(), Algorithm::RS256, "spa", &server.base);
    assert_eq!(id["nonce"], "n-456");
    assert_eq!(id["sub"], user.id);
    assert_eq!(id["azp"], "spa");
    let digest = aws_lc_rs_free_sha256(access_token);
    assert_eq!(id["at_hash"], URL_SAFE_NO_PAD.encode(&digest[..16]));

    let info: Value = userinfo(&server, access_token).await.json().await.unwrap();
    assert_eq!(
        info,
        serde_json::json!({"sub": user.id, "preferred_username": "alice", "name": "Alice Example", "email": "alice@example.com", "email_verified": true})
    );
    // The same claims in the id_token (OIDC Core §5.4), for RPs that read them there.
    assert_eq!(id["preferred_username"], "alice");
    assert_eq!(id["name"], "Alice Example");
    assert_eq!(
        (id["email"].as_str(), id["email_verified"].as_bool()),
        (Some("alice@example.com"), Some(true))
    );
}

/// SHA-256 through the server's own dependency, only to compute the expected at_hash.
fn aws_lc_rs_free_sha256(text: &str) -> Vec<u8> {
    let hash = latchkey::secret::hash(text);
    (0..hash.len()).step_by(2).map(|i| u8::from_str_radix(&hash[i..i + 2], 16).unwrap()).collect()
}

async fn confidential_client_without_consent_and_secret_checks(db: TestDb) {
    let server = server(&db, "").await;
    let browser = browser();
    let url = authorize_url(&server, "web", WEB_REDIRECT, &[("scope", "openid read:photos")]);
    let page = browser.get(url).send().await.unwrap().text().await.unwrap();
    // require_consent = false: straight from login to the redirect.
    let (base, params) =
        location_params(&sign_in(&browser, &server, &page, "alice-password").await);
    assert_eq!(base, WEB_REDIRECT);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", params["code"].as_str()),
        ("redirect_uri", WEB_REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let (status, body) = token(&server, &form, Some(("web", "wrong"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let (status, body) = token(&server, &form, Some(("web", "web-secret"))).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none(), "web is not registered for refresh_token");
}

async fn failed_client_authentication_is_401_with_a_challenge(db: TestDb) {
    let server = server(&db, "").await;
    let response = reqwest::Client::new()
        .post(server.url("/oauth/token"))
        .basic_auth("web", Some("nope"))
        .form(&[("grant_type", "authorization_code"), ("code", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Basic realm=\"latchkey\"");
    // A public client cannot pretend to be confidential, nor the reverse.
    let (status, body) = token(
        &server,
        &[("grant_type", "authorization_code"), ("code", "x"), ("client_id", "web")],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
}

async fn authorization_errors_redirect_only_to_verified_uris(db: TestDb) {
    let server = server(&db, "").await;
    let http = browser();
    for url in [
        authorize_url(&server, "nobody", SPA_REDIRECT, &[]),
        authorize_url(&server, "spa", "https://evil.example.com/cb", &[]),
        authorize_url(&server, "spa", "https://spa.example.com/cb/", &[]),
    ] {
        let response = http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 400, "{url}");
        assert!(response.headers().get("location").is_none());
        assert!(response.text().await.unwrap().contains("not valid"));
    }
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("response_type", "token")], "unsupported_response_type"),
        (&[("scope", "openid admin")], "invalid_scope"),
        (&[("scope", "openid write:photos")], "invalid_scope"),
        (&[("code_challenge", ""), ("code_challenge_method", "")], "invalid_request"),
        (&[("code_challenge_method", "plain")], "invalid_request"),
        (&[("resource", "https://elsewhere.example.com")], "invalid_target"),
    ];
    for (extra, code) in cases {
        let response =
            http.get(authorize_url(&server, "spa", SPA_REDIRECT, extra)).send().await.unwrap();
        let (base, params) = location_params(&response);
        assert_eq!(base, SPA_REDIRECT);
        assert_eq!(params["error"], *code, "{extra:?}");
        assert_eq!(params["state"], "st-123");
        assert_eq!(params["iss"], server.base);
        assert!(!params["error_description"].is_empty());
    }
    let twice = format!("{}&scope=openid", authorize_url(&server, "spa", SPA_REDIRECT, &[]));
    let (_, params) = location_params(&http.get(twice).send().await.unwrap());
    assert_eq!(params["error"], "invalid_request");
    let machine = authorize_url(&server, "machine", SPA_REDIRECT, &[]);
    assert_eq!(
        http.get(machine).send().await.unwrap().status(),
        400,
        "machine has no redirect URI to trust"
    );
}

async fn deny_and_prompt_none_go_back_with_errors(db: TestDb) {
    let server = server(&db, "").await;
    let browser = browser();
    let (_, params) = location_params(
        &browser
            .get(authorize_url(&server, "spa", SPA_REDIRECT, &[("prompt", "none")]))
            .send()
            .await
            .unwrap(),
    );
    assert_eq!(params["error"], "login_required");
    let page = browser
        .get(authorize_url(&server, "spa", SPA_REDIRECT, &[]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let consent = sign_in(&browser, &server, &page, "alice-password").await.text().await.unwrap();
    assert!(consent.contains("Photo &#60;SPA&#62;"), "client name is escaped: {consent}");
    assert!(
        consent.contains("name=\"decision\" value=\"allow\"")
            && consent.contains("name=\"decision\" value=\"deny\"")
    );
    let (_, params) = location_params(&decide(&browser, &server, &consent, "deny").await);
    assert_eq!((params["error"].as_str(), params["state"].as_str()), ("access_denied", "st-123"));
    let (_, params) = location_params(
        &browser
            .get(authorize_url(&server, "spa", SPA_REDIRECT, &[("prompt", "none")]))
            .send()
            .await
            .unwrap(),
    );
    assert_eq!(params["error"], "consent_required");
}

async fn consent_is_remembered_and_login_is_generic(db: TestDb) {
    let server = server(&db, "").await;
    let browser = browser();
    let page = browser
        .get(authorize_url(&server, "spa", SPA_REDIRECT, &[]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let failed = sign_in(&browser, &server, &page, "wrong").await;
    assert_eq!(failed.status(), 401);
    assert!(failed.text().await.unwrap().contains("Wrong username or password."));
    spa_code(&browser, &server, &[]).await;
    // Second time: signed in and consented, straight back with a code.
    let response =
        browser.get(authorize_url(&server, "spa", SPA_REDIRECT, &[])).send().await.unwrap();
    assert!(location_params(&response).1.contains_key("code"));
    // prompt=consent asks again; prompt=login signs in again.
    let again = browser
        .get(authorize_url(&server, "spa", SPA_REDIRECT, &[("prompt", "consent")]))
        .send()
        .await
        .unwrap();
    assert!(again.text().await.unwrap().contains("name=\"decision\""));
    let login = browser
        .get(authorize_url(&server, "spa", SPA_REDIRECT, &[("prompt", "login")]))
        .send()
        .await
        .unwrap();
    assert!(login.text().await.unwrap().contains("name=\"password\""));
}

async fn pages_are_locked_down(db: TestDb) {
    let server = server(&db, "").await;
    let browser = browser();
    let response = browser
        .get(authorize_url(
            &server,
            "spa",
            SPA_REDIRECT,
            &[("login_hint", "\"><script>x</script>")],
        ))
        .send()
        .await
        .unwrap();
    let headers = response.headers().clone();
    assert!(
        headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'")
    );
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-store");
    let csrf_cookie = headers["set-cookie"].to_str().unwrap();
    assert!(
        csrf_cookie.contains("HttpOnly") && csrf_cookie.contains("SameSite=Lax"),
        "{csrf_cookie}"
    );
    let page = response.text().await.unwrap();
    assert!(!page.contains("<script>"), "reflected values are escaped");
    assert!(page.contains("<label for=\"username\">") && page.contains("type=\"password\""));

    // A form without the CSRF cookie's value is refused.
    let forged = [
        ("username", "alice"),
        ("password", "alice-password"),
        ("csrf_token", "forged"),
        ("request", &hidden(&page, "request")),
    ];
    let response = browser.post(server.url("/login")).form(&forged).send().await.unwrap();
    assert_eq!(response.status(), 400);

    // The session cookie is new at login (no fixation) and HttpOnly.
    let signed_in = sign_in(&browser, &server, &page, "alice-password").await;
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("latchkey_session=")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
}

async fn token_endpoint_enforces_code_bindings(db: TestDb) {
    let server = server(&db, "").await;
    let browser = browser();
    let base = |code: &str, verifier: &str, redirect: &str| {
        vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), code.to_owned()),
            ("redirect_uri".to_owned(), redirect.to_owned()),
            ("client_id".to_owned(), "spa".to_owned()),
            ("code_verifier".to_owned(), verifier.to_owned()),
        ]
    };
    let wrong_verifier = "a".repeat(43);
    for (verifier, redirect) in
        [(wrong_verifier.as_str(), SPA_REDIRECT), (VERIFIER, "https://spa.example.com/other")]
    {
        let code = spa_code(&browser, &server, &[]).await;
        let form: Vec<(String, String)> = base(&code, verifier, redirect);
        let form: Vec<(&str, &str)> = form.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let (status, body) = token(&server, &form, None).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant")),
            "{body}"
        );
        // A refused exchange spends nothing: the client's corrected request still works.
        let (status, body) = exchange_spa(&server, &code).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = token(
        &server,
        &[
            ("grant_type", "authorization_code"),
            ("code", "made-up"),
            ("client_id", "spa"),
            ("code_verifier", VERIFIER),
        ],
        None,
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let (_, body) = token(&server, &[("grant_type", "password"), ("client_id", "spa")], None).await;
    assert_eq!(body["error"], "unauthorized_client");
    let (_, body) =
        token(&server, &[("grant_type", "urn:made:up"), ("client_id", "spa")], None).await;
    assert_eq!(body["error"], "unsupported_grant_type");
    let response = reqwest::Client::new()
        .post(format!("{}?client_id=spa", server.url("/oauth/token")))
        .form(&[("grant_type", "authorization_code")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "parameters in the query string are refused");
    let response = reqwest::Client::new()
        .post(server.url("/oauth/token"))
        .json(&serde_json::json!({"grant_type": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "JSON is not a form");
}

async fn a_replayed_code_revokes_the_first_exchange(db: TestDb) {
    let server = server(&db, "").await;
    let browser = browser();
    let code = spa_code(&browser, &server, &[]).await;
    let (status, first) = exchange_spa(&server, &code).await;
    assert_eq!(status, 200);
    assert_eq!(userinfo(&server, first["access_token"].as_str().unwrap()).await.status(), 200);
    let (status, replay) = exchange_spa(&server, &code).await;
    assert_eq!(
        (status, replay["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let response = userinfo(&server, first["access_token"].as_str().unwrap()).await;
    assert_eq!(response.status(), 401, "the first exchange's access token is revoked");
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", first["refresh_token"].as_str().unwrap()),
        ("client_id", "spa"),
    ];
    let (_, body) = token(&server, &refresh, None).await;
    assert_eq!(body["error"], "invalid_grant", "and its refresh token");
}

/// RFC 6749 §4.1.2: one code, one exchange. Of concurrent exchanges exactly one gets tokens;
/// the others are replays, so those tokens are revoked too.
async fn twenty_concurrent_exchanges_of_one_code_have_one_winner(db: TestDb) {
    let server = Arc::new(server(&db, "").await);
    let code: Arc<str> = spa_code(&browser(), &server, &[]).await.into();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (server, code) = (server.clone(), code.clone());
        tasks.spawn(async move { exchange_spa(&server, &code).await });
    }
    let results = tasks.join_all().await;
    let winners: Vec<&Value> =
        results.iter().filter(|(status, _)| *status == 200).map(|(_, body)| body).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for (status, body) in &results {
        assert!(*status == 200 || body["error"] == "invalid_grant", "{status} {body}");
    }
    let access_token = winners[0]["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&server, access_token).await.status(), 401, "revoked by the replays");
}

async fn strict_refresh_rotation_and_reuse_detection(db: TestDb) {
    let server = server(&db, "").await;
    let browser = browser();
    let (_, first) = exchange_spa(&server, &spa_code(&browser, &server, &[]).await).await;
    let old = first["refresh_token"].as_str().unwrap().to_owned();
    let (status, second) = token(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &old),
            ("client_id", "spa"),
            ("scope", "openid read:photos"),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["scope"], "openid read:photos", "narrower scope");
    // OIDC Core §12.2: a fresh id_token for the same sign-in, without a nonce.
    let refreshed: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(second["id_token"].as_str().unwrap().split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(refreshed.get("nonce").is_none(), "{refreshed}");
    assert_eq!(refreshed["aud"], "spa");
    let new = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let (_, wider) = token(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &new),
            ("client_id", "spa"),
            ("scope", "openid write:photos"),
        ],
        None,
    )
    .await;
    assert_eq!(wider["error"], "invalid_scope");
    let (_, foreign) = token(
        &server,
        &[("grant_type", "refresh_token"), ("refresh_token", &new), ("client_id", "spa-es256")],
        None,
    )
    .await;
    assert_eq!(foreign["error"], "invalid_grant", "another client's token");
    // Refused requests leave the token as it was: it still rotates, once.
    let (status, third) = refresh(&server, &new).await;
    assert_eq!(status, 200, "{third}");
    let newest = third["refresh_token"].as_str().unwrap();
    // The rotated token comes back: invalid_grant, and the whole family dies.
    let (_, reuse) = refresh(&server, &old).await;
    assert_eq!(reuse["error"], "invalid_grant");
    let (_, after) = refresh(&server, newest).await;
    assert_eq!(after["error"], "invalid_grant");
    for answer in [&second, &third] {
        let access_token = answer["access_token"].as_str().unwrap();
        assert_eq!(userinfo(&server, access_token).await.status(), 401);
    }
}

async fn concurrent_refreshes(
    server: &TestServer,
    token_value: &str,
    count: usize,
) -> Vec<(StatusCode, Value)> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..count {
        let url = server.url("/oauth/token");
        let form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", token_value.to_owned()),
            ("client_id", "spa".to_owned()),
        ];
        tasks.spawn(async move {
            let response = reqwest::Client::new().post(url).form(&form).send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        });
    }
    let mut out = Vec::new();
    while let Some(result) = tasks.join_next().await {
        out.push(result.unwrap());
    }
    out
}

async fn fifty_concurrent_strict_refreshes_have_one_winner(db: TestDb) {
    let server = server(&db, "").await;
    let (_, first) = exchange_spa(&server, &spa_code(&browser(), &server, &[]).await).await;
    let results = concurrent_refreshes(&server, first["refresh_token"].as_str().unwrap(), 50).await;
    let ok = results.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(ok, 1, "{results:?}");
    assert!(
        results.iter().all(|(status, body)| *status == 200 || body["error"] == "invalid_grant")
    );
}

async fn grace_window_gives_concurrent_refreshes_the_same_successor(db: TestDb) {
    let server = server(&db, "[tokens]\nrefresh_grace_period = \"10s\"").await;
    let (_, first) = exchange_spa(&server, &spa_code(&browser(), &server, &[]).await).await;
    let results = concurrent_refreshes(&server, first["refresh_token"].as_str().unwrap(), 50).await;
    assert!(results.iter().all(|(status, _)| *status == 200), "{results:?}");
    let successors: std::collections::HashSet<&str> =
        results.iter().map(|(_, body)| body["refresh_token"].as_str().unwrap()).collect();
    assert_eq!(successors.len(), 1, "one family continues with one successor");
    let successor = successors.into_iter().next().unwrap().to_owned();
    let (status, next) = refresh(&server, &successor).await;
    assert_eq!(status, 200, "{next}");
}

async fn userinfo_accepts_only_openid_access_tokens(db: TestDb) {
    let server = server(&db, "").await;
    let (_, tokens) = exchange_spa(&server, &spa_code(&browser(), &server, &[]).await).await;
    let response = reqwest::Client::new().get(server.url("/userinfo")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"latchkey\"");
    for not_an_access_token in
        [tokens["id_token"].as_str().unwrap(), tokens["refresh_token"].as_str().unwrap(), "garbage"]
    {
        let response = userinfo(&server, not_an_access_token).await;
        assert_eq!(response.status(), 401);
        let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    }
    // Tampering with the payload breaks the signature.
    let access = tokens["access_token"].as_str().unwrap();
    let mut parts: Vec<String> = access.split('.').map(str::to_owned).collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    claims["sub"] = "someone-else".into();
    parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    assert_eq!(userinfo(&server, &parts.join(".")).await.status(), 401);
    // A token without openid gets 403 insufficient_scope.
    let (_, narrow) = token(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", "spa"),
            ("scope", "read:photos"),
        ],
        None,
    )
    .await;
    let response = userinfo(&server, narrow["access_token"].as_str().unwrap()).await;
    assert_eq!(response.status(), 403);
    assert!(response.headers()["www-authenticate"].to_str().unwrap().contains("scope=\"openid\""));
    let post = reqwest::Client::new()
        .post(server.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 200);
}

async fn logout_ends_the_session_and_its_refresh_tokens(db: TestDb) {
    let server = server(&db, "").await;
    let browser = browser();
    // Without offline_access, the refresh token is bound to the session (OIDC Core §11).
    let online = [("scope", "openid profile email read:photos")];
    let (_, tokens) = exchange_spa(&server, &spa_code(&browser, &server, &online).await).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let bad = format!(
        "{}?id_token_hint={id_token}&post_logout_redirect_uri=https://evil.example.com/",
        server.url("/logout")
    );
    assert_eq!(
        browser.get(bad).send().await.unwrap().status(),
        400,
        "unregistered post_logout_redirect_uri"
    );

    let url = format!(
        "{}?id_token_hint={id_token}&post_logout_redirect_uri=https%3A%2F%2Fspa.example.com%2F&state=bye",
        server.url("/logout")
    );
    let response = browser.get(url).send().await.unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "https://spa.example.com/?state=bye");
    let cleared = response.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cleared.starts_with("latchkey_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );

    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ("client_id", "spa"),
    ];
    assert_eq!(
        token(&server, &refresh, None).await.1["error"],
        "invalid_grant",
        "logout revokes the session's refresh tokens"
    );
    let again = browser.get(authorize_url(&server, "spa", SPA_REDIRECT, &[])).send().await.unwrap();
    assert!(
        again.text().await.unwrap().contains("name=\"password\""),
        "signed out: the login page again"
    );
}

async fn logout_without_a_hint_asks_first(db: TestDb) {
    let server = server(&db, "").await;
    let browser = browser();
    let online = [("scope", "openid profile email read:photos")];
    let (_, tokens) = exchange_spa(&server, &spa_code(&browser, &server, &online).await).await;
    let page = browser.get(server.url("/logout")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Sign out?"), "{page}");
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ("client_id", "spa"),
    ];
    let form = [
        ("decision", "logout"),
        ("csrf_token", &hidden(&page, "csrf_token")),
        ("request", &hidden(&page, "request")),
    ];
    let done = browser.post(server.url("/logout")).form(&form).send().await.unwrap();
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("You are signed out"));
    assert_eq!(token(&server, &refresh, None).await.1["error"], "invalid_grant");
}

async fn cors_allows_only_registered_origins_without_credentials(db: TestDb) {
    let server = server(&db, "").await;
    let http = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        http.request(reqwest::Method::OPTIONS, server.url("/oauth/token"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .send()
    };
    let allowed = preflight("https://spa.example.com").await.unwrap();
    assert_eq!(allowed.status(), 204);
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://spa.example.com");
    assert!(allowed.headers().get("access-control-allow-credentials").is_none());
    let denied = preflight("https://evil.example.com").await.unwrap();
    assert!(denied.headers().get("access-control-allow-origin").is_none());
    let post = http
        .post(server.url("/oauth/token"))
        .header("origin", "https://evil.example.com")
        .form(&[("grant_type", "refresh_token"), ("client_id", "spa"), ("refresh_token", "x")])
        .send()
        .await
        .unwrap();
    assert!(post.headers().get("access-control-allow-origin").is_none());
    let userinfo = http
        .get(server.url("/userinfo"))
        .header("origin", "https://spa.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.headers()["access-control-allow-origin"], "https://spa.example.com");
}

async fn token_request_resource_must_be_within_the_grant(db: TestDb) {
    let server = server(&db, "").await;
    let browser = browser();
    let code = spa_code(&browser, &server, &[]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", SPA_REDIRECT),
        ("client_id", "spa"),
        ("code_verifier", VERIFIER),
        ("resource", "https://elsewhere.example.com"),
    ];
    let (status, body) = token(&server, &form, None).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_target")));

    let (_, tokens) = exchange_spa(&server, &spa_code(&browser, &server, &[]).await).await;
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ("client_id", "spa"),
        ("resource", "https://photos.example.com"),
    ];
    let (status, body) = token(&server, &refresh, None).await;
    assert_eq!(status, 200, "{body}");
    let payload = body["access_token"].as_str().unwrap().split('.').nth(1).unwrap().to_owned();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["aud"], "https://photos.example.com");
    assert_eq!(body["scope"], "openid profile email offline_access read:photos");
    let outside = [
        ("grant_type", "refresh_token"),
        ("refresh_token", body["refresh_token"].as_str().unwrap()),
        ("client_id", "spa"),
        ("resource", "https://elsewhere.example.com"),
    ];
    let (status, body) = token(&server, &outside, None).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_target")));
}

crate::on_both_engines!(
    token_request_resource_must_be_within_the_grant,
    logout_ends_the_session_and_its_refresh_tokens,
    logout_without_a_hint_asks_first,
    cors_allows_only_registered_origins_without_credentials,
    public_client_flow_with_pkce_issues_verifiable_tokens,
    confidential_client_without_consent_and_secret_checks,
    failed_client_authentication_is_401_with_a_challenge,
    authorization_errors_redirect_only_to_verified_uris,
    deny_and_prompt_none_go_back_with_errors,
    consent_is_remembered_and_login_is_generic,
    pages_are_locked_down,
    token_endpoint_enforces_code_bindings,
    a_replayed_code_revokes_the_first_exchange,
    twenty_concurrent_exchanges_of_one_code_have_one_winner,
    strict_refresh_rotation_and_reuse_detection,
    fifty_concurrent_strict_refreshes_have_one_winner,
    grace_window_gives_concurrent_refreshes_the_same_successor,
    userinfo_accepts_only_openid_access_tokens,
);
