//! The guide end to end: latchkey issues tokens, the PhotoAPI (latchkey-resource) checks them.

use latchkey_testkit::fixtures::client_credentials;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use latchkey_resource::{Introspector, IntrospectorConfig, Validator, ValidatorConfig, Verifier};
use serde_json::{Value, json};

use crate::{TestDb, TestServer, client};

const API: &str = "https://photos.example.com";

const CONFIG: &str = r#"
[[resources]]
identifier = "https://photos.example.com"
scopes = ["read:photos", "write:photos"]
client_id = "photo-api"

[[clients]]
client_id = "reader"
client_secret = "reader-secret"
grant_types = ["client_credentials"]
scopes = ["read:photos"]

[[clients]]
client_id = "writer"
client_secret = "writer-secret"
grant_types = ["client_credentials"]
scopes = ["read:photos", "write:photos"]

[[clients]]
client_id = "opaque-reader"
client_secret = "opaque-secret"
grant_types = ["client_credentials"]
scopes = ["read:photos"]
access_token_format = "opaque"

[[clients]]
client_id = "photo-api"
client_secret = "photo-api-secret"
grant_types = ["client_credentials"]
scopes = ["read:photos"]

[[resources]]
identifier = "https://mail.example.com"
scopes = ["read:mail"]

[[clients]]
client_id = "mailer"
client_secret = "mailer-secret"
grant_types = ["client_credentials"]
scopes = ["read:mail"]
"#;

async fn latchkey(db: &TestDb, extra: &str) -> TestServer {
    TestServer::start_ready(db, &format!("{extra}\n{CONFIG}")).await
}

/// Starts the PhotoAPI with `verifier` on 127.0.0.1; returns its base URL.
async fn photo_api(verifier: Verifier) -> String {
    let seed = HashMap::from([("reader".to_owned(), vec!["service banner".to_owned()])]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = photo_api::app(Arc::new(verifier), seed);
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

fn jwt_verifier(issuer: &str) -> Verifier {
    let mut config = ValidatorConfig::new(issuer, API);
    config.leeway = Duration::ZERO;
    Verifier::Jwt(Validator::new(config))
}

async fn token(server: &TestServer, id: &str, secret: &str) -> String {
    client_credentials(&server.base, (id, secret), "").await
}

async fn call(method: reqwest::Method, url: &str, token: Option<&str>) -> (u16, String, Value) {
    let mut request = client().request(method.clone(), url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if method == reqwest::Method::POST {
        request = request.json(&json!({ "title": "sunset" }));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, challenge, body)
}

async fn the_photo_api_serves_only_valid_tokens_with_the_right_scope(db: TestDb) {
    let server = latchkey(&db, "").await;
    let api = photo_api(jwt_verifier(&server.base)).await;
    let photos = format!("{api}/photos");
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;

    let reader = token(&server, "reader", "reader-secret").await;
    let (status, _, body) = call(get.clone(), &photos, Some(&reader)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body[0]["title"], "service banner", "a service sees the service's view");

    let (status, challenge, _) = call(get.clone(), &photos, None).await;
    assert_eq!((status, challenge.as_str()), (401, "Bearer realm=\"api\""), "bare challenge");

    let (status, challenge, _) = call(post.clone(), &photos, Some(&reader)).await;
    assert_eq!(status, 403);
    assert!(
        challenge.contains("error=\"insufficient_scope\"")
            && challenge.contains("scope=\"write:photos\""),
        "{challenge}"
    );

    let writer = token(&server, "writer", "writer-secret").await;
    let (status, _, body) = call(post.clone(), &photos, Some(&writer)).await;
    assert_eq!((status, body["owner"].as_str()), (201, Some("writer")), "{body}");

    let (status, challenge, body) = call(get.clone(), &photos, Some("not.a.token")).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert_eq!(body["error"], "invalid_token", "the same answer in a JSON body: {body}");

    // A token for another API says which audience it has and which this API wants.
    let mail = token(&server, "mailer", "mailer-secret").await;
    let (status, challenge, body) = call(get.clone(), &photos, Some(&mail)).await;
    assert_eq!(status, 401);
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.contains("https://mail.example.com") && description.contains(API),
        "{description}"
    );
    assert!(challenge.contains("resource=https://photos.example.com"), "{challenge}");

    // A token in the query is refused with where to put it (OAuth 2.1 §5.1.1).
    let in_query = format!("{photos}?access_token={reader}");
    let (status, challenge, _) = call(get.clone(), &in_query, None).await;
    assert_eq!(status, 400);
    assert!(
        challenge.contains("error=\"invalid_request\"")
            && challenge.contains("Authorization: Bearer"),
        "{challenge}"
    );

    // A token from another latchkey (another issuer, other keys) is refused.
    let foreign_db = crate::TestDb::sqlite();
    let foreign = latchkey(&foreign_db, "").await;
    let stranger = token(&foreign, "reader", "reader-secret").await;
    let (status, challenge, _) = call(get.clone(), &photos, Some(&stranger)).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
}

async fn an_expired_token_is_refused_as_expired(db: TestDb) {
    let server = latchkey(&db, "[tokens]\naccess_token_ttl = \"1s\"").await;
    // The API's clock, moved past the token's lifetime instead of waiting for it.
    let clock = std::sync::Arc::new(latchkey_resource::ManualClock::starting_now());
    let mut config = ValidatorConfig::new(&server.base, API);
    config.leeway = Duration::ZERO;
    let api = photo_api(Verifier::Jwt(Validator::new(config).with_clock(clock.clone()))).await;
    let reader = token(&server, "reader", "reader-secret").await;
    clock.advance(2);
    let (status, challenge, _) =
        call(reqwest::Method::GET, &format!("{api}/photos"), Some(&reader)).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("invalid_token") && challenge.contains("expired"), "{challenge}");
}

async fn opaque_tokens_are_checked_by_introspection(db: TestDb) {
    let server = latchkey(&db, "").await;
    let introspector = Introspector::new(IntrospectorConfig {
        issuer: server.base.clone(),
        endpoint: server.url("/oauth/introspect"),
        client_id: "photo-api".into(),
        client_secret: "photo-api-secret".into(),
        audience: API.into(),
        max_cache: Duration::ZERO,
    });
    let api = photo_api(Verifier::Introspection(introspector)).await;
    let photos = format!("{api}/photos");
    let opaque = token(&server, "opaque-reader", "opaque-secret").await;
    let (status, _, body) = call(reqwest::Method::GET, &photos, Some(&opaque)).await;
    assert_eq!(status, 200, "{body}");
    let revoked = client()
        .post(server.url("/oauth/revoke"))
        .basic_auth("opaque-reader", Some("opaque-secret"))
        .form(&[("token", opaque.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let (status, challenge, _) = call(reqwest::Method::GET, &photos, Some(&opaque)).await;
    assert_eq!(status, 401, "revoked: {challenge}");
}

/// The demo's web client: sign in with code + PKCE, see the photos, and keep seeing them after
/// the access token expired (the client refreshes it when the API says so).
async fn the_demo_client_refreshes_an_expired_access_token(db: TestDb) {
    use latchkey_server::demo_client::DemoClient;

    use crate::code_flow::{browser, sign_in};

    let client_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client_base = format!("http://{}", client_listener.local_addr().unwrap());
    let registration = format!(
        "[tokens]\naccess_token_ttl = \"1s\"\n\n[[clients]]\nclient_id = \"demo-web\"\nclient_secret = \"demo-secret\"\nredirect_uris = [\"{client_base}/callback\"]\ngrant_types = [\"authorization_code\", \"refresh_token\"]\nscopes = [\"openid\", \"profile\", \"offline_access\", \"read:photos\", \"write:photos\"]\nrequire_consent = false\n\n[[users]]\nusername = \"alice\"\npassword = \"alice-password\"\n"
    );
    // One clock for latchkey and the API, moved past the access token's lifetime below.
    let clock = std::sync::Arc::new(latchkey_resource::ManualClock::starting_now());
    let config = format!("{registration}\n{CONFIG}");
    let server = TestServer::start_with_clock(&db, &config, clock.clone()).await;
    let mut validation = ValidatorConfig::new(&server.base, API);
    validation.leeway = Duration::ZERO;
    let verifier = Verifier::Jwt(Validator::new(validation).with_clock(clock.clone()));
    let api = photo_api(verifier).await;
    let demo = DemoClient::new(&server.base, &api, &client_base, "demo-web", "demo-secret");
    tokio::spawn(async move { axum::serve(client_listener, demo.app()).await });

    let browser = browser();
    let follow = |response: reqwest::Response| {
        assert_eq!(response.status(), 303, "expected a redirect");
        response.headers()["location"].to_str().unwrap().to_owned()
    };
    let to_issuer = follow(browser.get(format!("{client_base}/login")).send().await.unwrap());
    let login_page = browser.get(to_issuer).send().await.unwrap().text().await.unwrap();
    let back = follow(sign_in(&browser, &server, &login_page, "alice-password").await);
    assert!(back.starts_with(&format!("{client_base}/callback?")), "{back}");
    let to_photos = follow(browser.get(back).send().await.unwrap());
    let photos_url = format!("{client_base}{to_photos}");
    let page = browser.get(&photos_url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Welcome to latchkey") && page.contains("alice"), "{page}");

    clock.advance(2);
    let page = browser.get(&photos_url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Welcome to latchkey"), "not refreshed:\n{page}");
}

crate::on_both_engines!(
    the_photo_api_serves_only_valid_tokens_with_the_right_scope,
    an_expired_token_is_refused_as_expired,
    opaque_tokens_are_checked_by_introspection,
    the_demo_client_refreshes_an_expired_access_token,
);
