//! What relying parties need beyond the core flows (issue 12): CORS on the public documents,
//! the origin set, the logout redirect's query.

use crate::code_flow::{browser, exchange_spa, location_params, server, spa_code};
use crate::flood::metric;
use crate::{TestDb, client};

async fn discovery_and_the_jwks_are_readable_from_any_origin(db: TestDb) {
    let server = server(&db, "").await;
    let http = client();
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/.well-known/jwks.json",
    ] {
        let get = http
            .get(server.url(path))
            .header("origin", "https://any-spa.example.org")
            .send()
            .await
            .unwrap();
        assert_eq!(get.status(), 200, "{path}");
        assert_eq!(get.headers()["access-control-allow-origin"], "*", "{path}");
        assert!(get.headers().get("access-control-allow-credentials").is_none(), "{path}");
        let preflight = http
            .request(reqwest::Method::OPTIONS, server.url(path))
            .header("origin", "https://any-spa.example.org")
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "x-requested-with")
            .send()
            .await
            .unwrap();
        assert_eq!(preflight.status(), 204, "{path}");
        assert_eq!(preflight.headers()["access-control-allow-origin"], "*", "{path}");
        assert!(
            preflight.headers()["access-control-allow-methods"].to_str().unwrap().contains("GET")
        );
        assert!(preflight.headers().get("access-control-allow-credentials").is_none());
    }
}

/// The origin check looks an origin up once and then remembers it, not per request, and sees
/// a client added by the CLI within the client-cache interval.
async fn the_cors_origin_check_does_not_read_the_clients_per_request(db: TestDb) {
    let server = server(&db, "").await;
    let http = client();
    let reads = || async {
        let text = http.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
        let count = |operation: &str| {
            let name = format!(
                "latchkey_store_operation_duration_seconds_count{{operation=\"{operation}\"}}"
            );
            if text.contains(&name) { metric(&text, &name) } else { 0.0 }
        };
        count("clients") + count("origin_registered")
    };
    let before = reads().await;
    for _ in 0..50 {
        let response = http
            .request(reqwest::Method::OPTIONS, server.url("/oauth/token"))
            .header("origin", "https://spa.example.com")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["access-control-allow-origin"], "https://spa.example.com");
    }
    let after = reads().await;
    assert!(after - before <= 3.0, "50 CORS requests read the clients {} times", after - before);

    let cli = crate::process::ConfigFile::new(&format!("[database]\nurl = \"{}\"\n", db.url));
    let added = crate::process::run(
        &[
            "clients",
            "add",
            "late-spa",
            "--public",
            "--redirect-uri",
            "https://late.example.com/cb",
        ],
        &cli.path,
        "",
    );
    assert!(added.status.success(), "{}", crate::process::stderr(&added));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let response = http
            .request(reqwest::Method::OPTIONS, server.url("/oauth/token"))
            .header("origin", "https://late.example.com")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        if response.headers().get("access-control-allow-origin").is_some() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the new client's origin never allowed");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// RP-Initiated Logout: no stray `?` without state; a registered URI's query is kept.
async fn the_logout_redirect_keeps_the_registered_query_and_adds_no_stray_question_mark(
    db: TestDb,
) {
    let extra = r#"
[[clients]]
client_id = "query-app"
redirect_uris = ["https://query.example.com/cb"]
post_logout_redirect_uris = ["https://query.example.com/bye?from=idp", "https://query.example.com/bye"]
grant_types = ["authorization_code"]
scopes = ["openid"]
"#;
    let server = server(&db, extra).await;
    let logout = |query: &str| {
        let url = format!("{}?{query}", server.url("/logout"));
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(url)
            .send()
    };
    let plain = logout(
        "client_id=query-app&post_logout_redirect_uri=https%3A%2F%2Fquery.example.com%2Fbye",
    )
    .await
    .unwrap();
    assert_eq!(plain.headers()["location"], "https://query.example.com/bye");
    let with_query = logout(
        "client_id=query-app&post_logout_redirect_uri=https%3A%2F%2Fquery.example.com%2Fbye%3Ffrom%3Didp&state=s1",
    )
    .await
    .unwrap();
    assert_eq!(with_query.headers()["location"], "https://query.example.com/bye?from=idp&state=s1");
    let (base, _) = location_params(&with_query);
    assert_eq!(base, "https://query.example.com/bye");
}

/// RFC 6750 §2.2: a form-encoded body token at /userinfo; never in the query, never twice.
async fn userinfo_takes_a_body_token_and_refuses_one_in_the_query_or_twice(db: TestDb) {
    let server = server(&db, "").await;
    let (_, tokens) = exchange_spa(&server, &spa_code(&browser(), &server, &[]).await).await;
    let access = tokens["access_token"].as_str().unwrap();
    let http = client();
    let body =
        http.post(server.url("/userinfo")).form(&[("access_token", access)]).send().await.unwrap();
    assert_eq!(body.status(), 200);
    let claims: serde_json::Value = body.json().await.unwrap();
    assert!(claims["sub"].is_string(), "{claims}");
    let challenge = |response: &reqwest::Response| {
        response.headers()["www-authenticate"].to_str().unwrap().to_owned()
    };
    let query = http
        .get(format!("{}?access_token={access}", server.url("/userinfo")))
        .send()
        .await
        .unwrap();
    assert_eq!(query.status(), 400);
    let text = challenge(&query);
    assert!(text.contains("invalid_request") && text.contains("Authorization: Bearer"), "{text}");
    let twice = http
        .post(server.url("/userinfo"))
        .bearer_auth(access)
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), 400);
    assert!(challenge(&twice).contains("both in the Authorization header and in the body"));
    // A body that is not a form is not read for a token.
    let json = http
        .post(server.url("/userinfo"))
        .header("content-type", "application/json")
        .body(format!("{{\"access_token\":\"{access}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 401);
}

/// A scope the requested resource does not own is invalid_scope naming its owner, not a token
/// with an empty scope.
async fn a_scope_outside_the_requested_resource_is_invalid_scope(db: TestDb) {
    let extra = r#"
[[resources]]
identifier = "https://mail.example.com"
scopes = ["read:mail"]

[[clients]]
client_id = "worker"
client_secret = "worker-secret-worker-secret-worker-secret"
grant_types = ["client_credentials"]
scopes = ["read:photos", "read:mail"]
"#;
    let server = server(&db, extra).await;
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "read:photos"),
        ("resource", "https://mail.example.com"),
    ];
    let (status, body) = crate::code_flow::token(
        &server,
        &form,
        Some(("worker", "worker-secret-worker-secret-worker-secret")),
    )
    .await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_scope")), "{body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(description.contains("https://photos.example.com"), "{description}");
    // Without a scope parameter the resource narrows the registered scopes, as before.
    let form = [("grant_type", "client_credentials"), ("resource", "https://mail.example.com")];
    let (status, body) = crate::code_flow::token(
        &server,
        &form,
        Some(("worker", "worker-secret-worker-secret-worker-secret")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "read:mail");
}

/// `id_token_on_refresh = false` and `claims_in_id_token = false` switch the two off.
async fn a_client_can_keep_claims_to_userinfo_and_refresh_without_an_id_token(db: TestDb) {
    let extra = r#"
[[clients]]
client_id = "lean"
redirect_uris = ["https://spa.example.com/cb"]
grant_types = ["authorization_code", "refresh_token"]
scopes = ["openid", "profile", "email", "offline_access", "read:photos"]
id_token_on_refresh = false
claims_in_id_token = false
"#;
    let server = server(&db, extra).await;
    let browser = browser();
    let url = crate::code_flow::authorize_url(&server, "lean", crate::code_flow::SPA_REDIRECT, &[]);
    let page = browser.get(url).send().await.unwrap().text().await.unwrap();
    let consent = crate::code_flow::sign_in(&browser, &server, &page, "alice-password").await;
    let consent = consent.text().await.unwrap();
    let (_, params) =
        location_params(&crate::code_flow::decide(&browser, &server, &consent, "allow").await);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", params["code"].as_str()),
        ("redirect_uri", crate::code_flow::SPA_REDIRECT),
        ("client_id", "lean"),
        ("code_verifier", crate::code_flow::VERIFIER),
    ];
    let (status, tokens) = crate::code_flow::token(&server, &form, None).await;
    assert_eq!(status, 200, "{tokens}");
    let payload = tokens["id_token"].as_str().unwrap().split('.').nth(1).unwrap();
    let id: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    assert!(id.get("email").is_none() && id.get("name").is_none(), "{id}");
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ("client_id", "lean"),
    ];
    let (status, refreshed) = crate::code_flow::token(&server, &refresh, None).await;
    assert_eq!(status, 200, "{refreshed}");
    assert!(refreshed.get("id_token").is_none(), "{refreshed}");
}

async fn spa_refresh(
    server: &crate::TestServer,
    token: &str,
) -> (reqwest::StatusCode, serde_json::Value) {
    let form = [("grant_type", "refresh_token"), ("refresh_token", token), ("client_id", "spa")];
    crate::code_flow::token(server, &form, None).await
}

/// OIDC Core §11: a refresh token without offline_access ends with its session (logout or
/// expiry); one with offline_access lives on. Introspection says which; a client can refuse
/// session-bound ones.
async fn offline_access_decides_whether_a_refresh_token_outlives_the_session(db: TestDb) {
    let extra = r#"
[tokens]
session_ttl = "2s"

[[clients]]
client_id = "offline-only"
redirect_uris = ["https://spa.example.com/cb"]
grant_types = ["authorization_code", "refresh_token"]
scopes = ["openid", "offline_access"]
session_refresh_tokens = false
"#;
    let clock = std::sync::Arc::new(latchkey::clock::ManualClock::starting_now());
    let server = crate::code_flow::server_with_clock(&db, extra, clock.clone()).await;
    let online = [("scope", "openid profile")];

    // Logout: the session-bound token dies, the offline one lives.
    let browser = browser();
    let (_, bound) = exchange_spa(&server, &spa_code(&browser, &server, &online).await).await;
    // The same browser session asks again with offline_access: the consent page, then a code.
    let url = crate::code_flow::authorize_url(&server, "spa", crate::code_flow::SPA_REDIRECT, &[]);
    let consent = browser.get(url).send().await.unwrap().text().await.unwrap();
    assert!(consent.contains("name=\"decision\""), "offline_access needs consent");
    let (_, params) =
        location_params(&crate::code_flow::decide(&browser, &server, &consent, "allow").await);
    let (_, offline) = exchange_spa(&server, &params["code"]).await;
    assert!(offline["scope"].as_str().unwrap().contains("offline_access"));
    let id_token = bound["id_token"].as_str().unwrap();
    let logout = format!("{}?id_token_hint={id_token}", server.url("/logout"));
    assert_eq!(browser.get(logout).send().await.unwrap().status(), 200, "signed out");
    let (_, body) = spa_refresh(&server, bound["refresh_token"].as_str().unwrap()).await;
    assert_eq!(body["error"], "invalid_grant", "session-bound: {body}");
    assert!(body["error_description"].as_str().unwrap().contains("offline_access"));
    let (status, offline) = spa_refresh(&server, offline["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "offline_access outlives logout: {offline}");

    // Session expiry: the same.
    let later = crate::code_flow::browser();
    let (_, bound) = exchange_spa(&server, &spa_code(&later, &server, &online).await).await;
    clock.advance(3);
    let (_, body) = spa_refresh(&server, bound["refresh_token"].as_str().unwrap()).await;
    assert_eq!(body["error"], "invalid_grant", "the session expired: {body}");
    let (status, body) = spa_refresh(&server, offline["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{body}");

    // The client that refuses session-bound refresh tokens gets none without offline_access.
    let strict = crate::code_flow::browser();
    let url = crate::code_flow::authorize_url(
        &server,
        "offline-only",
        crate::code_flow::SPA_REDIRECT,
        &[("scope", "openid")],
    );
    let page = strict.get(url).send().await.unwrap().text().await.unwrap();
    let consent = crate::code_flow::sign_in(&strict, &server, &page, "alice-password").await;
    let consent = consent.text().await.unwrap();
    let (_, params) =
        location_params(&crate::code_flow::decide(&strict, &server, &consent, "allow").await);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", params["code"].as_str()),
        ("redirect_uri", crate::code_flow::SPA_REDIRECT),
        ("client_id", "offline-only"),
        ("code_verifier", crate::code_flow::VERIFIER),
    ];
    let (status, tokens) = crate::code_flow::token(&server, &form, None).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
}

/// Introspection says whether a refresh token is bound to its session.
async fn introspection_says_whether_a_refresh_token_is_session_bound(db: TestDb) {
    let extra = r#"
[[clients]]
client_id = "conf"
client_secret = "conf-secret-conf-secret-conf-secret-1"
redirect_uris = ["https://conf.example.com/cb"]
grant_types = ["authorization_code", "refresh_token"]
scopes = ["openid", "offline_access"]
require_consent = false
"#;
    let server = server(&db, extra).await;
    let browser = browser();
    for (scope, bound) in [("openid", true), ("openid offline_access", false)] {
        let url = crate::code_flow::authorize_url(
            &server,
            "conf",
            "https://conf.example.com/cb",
            &[("scope", scope), ("prompt", "login")],
        );
        let page = browser.get(url).send().await.unwrap().text().await.unwrap();
        let done = crate::code_flow::sign_in(&browser, &server, &page, "alice-password").await;
        let (_, params) = location_params(&done);
        let form = [
            ("grant_type", "authorization_code"),
            ("code", params["code"].as_str()),
            ("redirect_uri", "https://conf.example.com/cb"),
            ("code_verifier", crate::code_flow::VERIFIER),
        ];
        let secret = "conf-secret-conf-secret-conf-secret-1";
        let (status, tokens) =
            crate::code_flow::token(&server, &form, Some(("conf", secret))).await;
        assert_eq!(status, 200, "{tokens}");
        let seen: serde_json::Value = client()
            .post(server.url("/oauth/introspect"))
            .basic_auth("conf", Some(secret))
            .form(&[("token", tokens["refresh_token"].as_str().unwrap())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(seen["active"], true, "{seen}");
        assert_eq!(seen["session_bound"], bound, "{scope}: {seen}");
    }
}

/// `[[resources]]` scopes may carry a description; the consent page shows it with the name,
/// the client's name and where the answer goes.
async fn the_consent_page_shows_scope_descriptions_names_and_the_redirect_host(db: TestDb) {
    let extra = r#"
[[resources]]
identifier = "https://albums.example.com"
scopes = [{ name = "read:albums", description = "See your photo albums" }, "write:albums"]

[[clients]]
client_id = "albums-app"
client_name = "Albums"
redirect_uris = ["https://albums-app.example.com/cb"]
grant_types = ["authorization_code"]
scopes = ["openid", "read:albums", "write:albums"]
"#;
    let server = server(&db, extra).await;
    let browser = browser();
    let url = crate::code_flow::authorize_url(
        &server,
        "albums-app",
        "https://albums-app.example.com/cb",
        &[("scope", "openid read:albums write:albums")],
    );
    let page = browser.get(url).send().await.unwrap().text().await.unwrap();
    let consent = crate::code_flow::sign_in(&browser, &server, &page, "alice-password").await;
    let consent = consent.text().await.unwrap();
    for expected in [
        "See your photo albums, on https://albums.example.com (read:albums)",
        "Use write:albums on https://albums.example.com (write:albums)",
        "Sign you in with your account (openid)",
        "Albums wants to access your account",
        "albums-app.example.com:443",
    ] {
        assert!(consent.contains(expected), "missing {expected:?} in:\n{consent}");
    }
}

crate::on_both_engines!(
    the_consent_page_shows_scope_descriptions_names_and_the_redirect_host,
    clock_drift_is_exported_and_named_in_an_expired_code_error,
    offline_access_decides_whether_a_refresh_token_outlives_the_session,
    introspection_says_whether_a_refresh_token_is_session_bound,
    a_client_can_keep_claims_to_userinfo_and_refresh_without_an_id_token,
    a_scope_outside_the_requested_resource_is_invalid_scope,
    userinfo_takes_a_body_token_and_refuses_one_in_the_query_or_twice,
    discovery_and_the_jwks_are_readable_from_any_origin,
    the_cors_origin_check_does_not_read_the_clients_per_request,
    the_logout_redirect_keeps_the_registered_query_and_adds_no_stray_question_mark,
);

/// An introspection answered inactive because the caller may not see the token is logged at
/// debug with both identities, never the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inactive_answer_to_a_caller_outside_the_audience_is_logged_at_debug() {
    use std::time::Duration;

    use crate::process::{ConfigFile, Serving, free_port, wait_until_ok};
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let config = ConfigFile::new(&format!(
        r#"issuer = "{base}"
listen = "127.0.0.1:{port}"
[database]
url = "sqlite://{}"
[log]
level = "latchkey=debug"

[[resources]]
identifier = "https://photos.example.com"
scopes = ["read:photos"]

[[clients]]
client_id = "machine"
client_secret = "machine-secret-machine-secret-machine-1"
grant_types = ["client_credentials"]
scopes = ["read:photos"]

[[clients]]
client_id = "bystander"
client_secret = "bystander-secret-bystander-secret-bys-1"
grant_types = ["client_credentials"]
scopes = ["read:photos"]
"#,
        dir.path().join("latchkey.db").display()
    ));
    let mut server = Serving::start(&config.path);
    let http = client();
    wait_until_ok(&http, &format!("{base}/readyz"), Duration::from_secs(30)).await;
    let token: serde_json::Value = http
        .post(format!("{base}/oauth/token"))
        .basic_auth("machine", Some("machine-secret-machine-secret-machine-1"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = token["access_token"].as_str().unwrap();
    let seen: serde_json::Value = http
        .post(format!("{base}/oauth/introspect"))
        .basic_auth("bystander", Some("bystander-secret-bystander-secret-bys-1"))
        .form(&[("token", access)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen, serde_json::json!({"active": false}));
    assert!(server.terminate(Duration::from_secs(10)).success());
    let log = server.output();
    let line = log
        .lines()
        .find(|line| line.contains("introspection answered inactive"))
        .unwrap_or_else(|| panic!("no debug line in:\n{log}"));
    assert!(line.contains("bystander") && line.contains("machine"), "{line}");
    assert!(!log.contains(access), "the token is never logged");
}

/// The node measures its clock against the database's and says so when a code looks expired
/// on a node whose clock is off.
async fn clock_drift_is_exported_and_named_in_an_expired_code_error(db: TestDb) {
    let server = server(&db, "").await;
    let text = client().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("latchkey_clock_drift_seconds"), "{text}");
    let drift = metric(&text, "latchkey_clock_drift_seconds");
    assert!(drift.abs() < 2.0, "this machine's clocks agree: {drift}");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", "an-expired-or-unknown-code"),
        ("redirect_uri", crate::code_flow::SPA_REDIRECT),
        ("client_id", "spa"),
        ("code_verifier", crate::code_flow::VERIFIER),
    ];
    let (_, body) = crate::code_flow::token(&server, &form, None).await;
    assert!(!body["error_description"].as_str().unwrap().contains("skewed"), "{body}");
    // As measured on a node whose clock runs 5 s ahead of the database's.
    server.state.authority.set_clock_drift(5000);
    let (_, body) = crate::code_flow::token(&server, &form, None).await;
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.contains("clocks may be skewed") && description.contains("5.0 s"),
        "{description}"
    );
}
