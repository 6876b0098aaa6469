//! Service-to-service calls and a token's life through HTTP: client credentials, the password
//! grant, opaque tokens, introspection (RFC 7662), revocation (RFC 7009), private_key_jwt
//! (RFC 7523).

use latchkey_testkit::fixtures::post_form;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use latchkey::clock::ManualClock;
use latchkey_resource::AccessTokenClaims;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{TestDb, TestServer, client, get_json};

const CONFIG: &str = concat!(
    r#"
[[resources]]
identifier = "https://photos.example.com"
scopes = ["read:photos", "write:photos"]
client_id = "photo-api"

[[resources]]
identifier = "https://mail.example.com"
scopes = ["read:mail"]

[[clients]]
client_id = "machine"
client_secret = "machine-secret"
grant_types = ["client_credentials"]
scopes = ["read:photos", "read:mail"]

[[clients]]
client_id = "machine-opaque"
client_secret = "opaque-secret"
grant_types = ["client_credentials"]
scopes = ["read:photos"]
access_token_format = "opaque"

[[clients]]
client_id = "photo-api"
client_secret = "photo-api-secret"
grant_types = ["client_credentials"]
scopes = ["read:photos"]

[[clients]]
client_id = "other"
client_secret = "other-secret"
grant_types = ["client_credentials"]
scopes = ["read:mail"]

[[clients]]
client_id = "first-party"
client_secret = "first-party-secret"
grant_types = ["password", "refresh_token"]
scopes = ["openid", "profile", "offline_access", "read:photos"]

[[clients]]
client_id = "spa"
redirect_uris = ["https://spa.example.com/cb"]
grant_types = ["authorization_code", "refresh_token"]
scopes = ["openid", "read:photos"]
"#,
    latchkey_testkit::user_alice!()
);

async fn server(db: &TestDb, extra: &str) -> TestServer {
    TestServer::start_ready(db, &format!("{extra}\n{CONFIG}")).await
}

/// [`server`] on a clock the test moves.
async fn server_with_clock(db: &TestDb, extra: &str) -> (TestServer, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::starting_now());
    let server =
        TestServer::start_with_clock(db, &format!("{extra}\n{CONFIG}"), clock.clone()).await;
    (server, clock)
}

/// A form POST to `path`, with HTTP Basic credentials when `basic` is given.
async fn post(
    server: &TestServer,
    path: &str,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    post_form(&server.url(path), basic, form).await
}

async fn client_credentials(server: &TestServer, id: &str, secret: &str, scope: &str) -> String {
    latchkey_testkit::fixtures::client_credentials(&server.base, (id, secret), scope).await
}

async fn introspect(server: &TestServer, caller: (&str, &str), token: &str) -> Value {
    let (status, headers, body) =
        post(server, "/oauth/introspect", Some(caller), &[("token", token)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    body
}

fn assert_error(got: (StatusCode, reqwest::header::HeaderMap, Value), status: u16, code: &str) {
    let (got_status, headers, body) = got;
    assert_eq!((got_status.as_u16(), body["error"].as_str()), (status, Some(code)), "{body}");
    if status == 401 {
        assert!(headers.contains_key("www-authenticate"), "401 without a challenge");
    }
}

const INACTIVE: &str = r#"{"active":false}"#;

async fn client_credentials_issue_verifiable_jwts(db: TestDb) {
    let server = server(&db, "").await;
    let (status, headers, body) = post(
        &server,
        "/oauth/token",
        Some(("machine", "machine-secret")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "read:photos read:mail", "the client's scopes by default");
    assert!(body.get("refresh_token").is_none(), "no refresh token for client credentials");
    assert!(body.get("id_token").is_none());
    let token = body["access_token"].as_str().unwrap();
    let jwks: JwkSet = get_json(&client(), &server.url("/.well-known/jwks.json")).await;
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let key = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&["https://photos.example.com", "https://mail.example.com"]);
    validation.set_issuer(&[&server.base]);
    let claims =
        decode::<AccessTokenClaims>(token, &DecodingKey::from_jwk(key).unwrap(), &validation)
            .unwrap()
            .claims;
    assert_eq!((claims.sub.as_str(), claims.client_id.as_str()), ("machine", "machine"));
    assert_eq!(claims.auth_time, None, "no user authenticated");

    // RFC 8707: one resource narrows the audience and the scopes to that API.
    let (status, _, body) = post(
        &server,
        "/oauth/token",
        Some(("machine", "machine-secret")),
        &[("grant_type", "client_credentials"), ("resource", "https://mail.example.com")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "read:mail");
}

async fn client_credentials_errors_say_what_to_fix(db: TestDb) {
    let server = server(&db, "").await;
    let machine = Some(("machine", "machine-secret"));
    let cc = ("grant_type", "client_credentials");
    assert_error(
        post(&server, "/oauth/token", machine, &[cc, ("scope", "write:photos")]).await,
        400,
        "invalid_scope",
    );
    assert_error(
        post(&server, "/oauth/token", machine, &[cc, ("scope", "openid")]).await,
        400,
        "invalid_scope",
    );
    assert_error(
        post(&server, "/oauth/token", machine, &[cc, ("scope", "nope")]).await,
        400,
        "invalid_scope",
    );
    assert_error(
        post(&server, "/oauth/token", machine, &[cc, ("resource", "https://evil.example.com")])
            .await,
        400,
        "invalid_target",
    );
    assert_error(
        post(&server, "/oauth/token", machine, &[("grant_type", "urn:example:unknown")]).await,
        400,
        "unsupported_grant_type",
    );
    assert_error(
        post(
            &server,
            "/oauth/token",
            machine,
            &[("grant_type", "password"), ("username", "alice"), ("password", "alice-password")],
        )
        .await,
        400,
        "unauthorized_client",
    );
    assert_error(
        post(&server, "/oauth/token", Some(("machine", "wrong")), &[cc]).await,
        401,
        "invalid_client",
    );
    assert_error(
        post(&server, "/oauth/token", Some(("nobody", "x")), &[cc]).await,
        401,
        "invalid_client",
    );
    // A public client is never registered for client credentials.
    assert_error(
        post(&server, "/oauth/token", None, &[cc, ("client_id", "spa")]).await,
        400,
        "unauthorized_client",
    );
    // Credentials in the query string are refused, never honoured.
    let response = client()
        .post(server.url("/oauth/token?client_id=machine&client_secret=machine-secret"))
        .form(&[cc])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    // JSON is not a form.
    let response = client()
        .post(server.url("/oauth/token"))
        .basic_auth("machine", Some("machine-secret"))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

async fn introspection_answers_the_audience_and_the_issuing_client_only(db: TestDb) {
    let server = server(&db, "").await;
    let token = client_credentials(&server, "machine", "machine-secret", "read:photos").await;
    let seen = introspect(&server, ("photo-api", "photo-api-secret"), &token).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["client_id"], "machine");
    assert_eq!(seen["sub"], "machine");
    assert_eq!(seen["scope"], "read:photos");
    assert_eq!(seen["aud"], "https://photos.example.com");
    assert_eq!(seen["iss"], server.base);
    assert_eq!(seen["token_type"], "Bearer");
    assert!(seen["exp"].as_i64().unwrap() > seen["iat"].as_i64().unwrap());
    let own = introspect(&server, ("machine", "machine-secret"), &token).await;
    assert_eq!(own["active"], true);
    // RFC 7662 §4: a client the token is neither for nor from learns nothing.
    let foreign = introspect(&server, ("other", "other-secret"), &token).await;
    assert_eq!(foreign.to_string(), INACTIVE);
    // Garbage and tampered tokens are simply inactive.
    for garbage in ["garbage", "a.b.c", "", &format!("{token}x")] {
        if garbage.is_empty() {
            continue;
        }
        let body = introspect(&server, ("photo-api", "photo-api-secret"), garbage).await;
        assert_eq!(body.to_string(), INACTIVE, "{garbage}");
    }
    // A wrong hint still finds the token (RFC 7662 §2.1).
    let (_, _, hinted) = post(
        &server,
        "/oauth/introspect",
        Some(("photo-api", "photo-api-secret")),
        &[("token", &token), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_eq!(hinted["active"], true);
    // Missing token, unauthenticated and public callers.
    assert_error(
        post(&server, "/oauth/introspect", Some(("photo-api", "photo-api-secret")), &[]).await,
        400,
        "invalid_request",
    );
    assert_error(
        post(&server, "/oauth/introspect", None, &[("token", &token)]).await,
        401,
        "invalid_client",
    );
    assert_error(
        post(&server, "/oauth/introspect", None, &[("token", &token), ("client_id", "spa")]).await,
        401,
        "invalid_client",
    );
}

async fn opaque_tokens_carry_the_same_information_and_can_be_revoked(db: TestDb) {
    let server = server(&db, "").await;
    let token = client_credentials(&server, "machine-opaque", "opaque-secret", "").await;
    assert!(!token.contains('.'), "an opaque token is not a JWT: {token}");
    let seen = introspect(&server, ("photo-api", "photo-api-secret"), &token).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["client_id"], "machine-opaque");
    assert_eq!(seen["sub"], "machine-opaque");
    assert_eq!(seen["scope"], "read:photos");
    assert_eq!(seen["aud"], "https://photos.example.com");
    // Another client cannot revoke it; its owner can.
    assert_error(
        post(&server, "/oauth/revoke", Some(("other", "other-secret")), &[("token", &token)]).await,
        400,
        "unauthorized_client",
    );
    assert_eq!(
        introspect(&server, ("photo-api", "photo-api-secret"), &token).await["active"],
        true
    );
    let (status, _, _) = post(
        &server,
        "/oauth/revoke",
        Some(("machine-opaque", "opaque-secret")),
        &[("token", &token)],
    )
    .await;
    assert_eq!(status, 200);
    let seen = introspect(&server, ("photo-api", "photo-api-secret"), &token).await;
    assert_eq!(seen.to_string(), INACTIVE);
    // Revoking again, or an unknown token, is still 200 (RFC 7009 §2.2).
    for again in [token.as_str(), "never-issued"] {
        let (status, _, _) = post(
            &server,
            "/oauth/revoke",
            Some(("machine-opaque", "opaque-secret")),
            &[("token", again)],
        )
        .await;
        assert_eq!(status, 200);
    }
}

async fn a_revoked_jwt_is_inactive_until_it_would_have_expired(db: TestDb) {
    let server = server(&db, "").await;
    let token = client_credentials(&server, "machine", "machine-secret", "read:photos").await;
    let (status, _, _) = post(
        &server,
        "/oauth/revoke",
        Some(("machine", "machine-secret")),
        &[("token", &token), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(status, 200);
    let seen = introspect(&server, ("photo-api", "photo-api-secret"), &token).await;
    assert_eq!(seen.to_string(), INACTIVE);
}

async fn expired_tokens_are_inactive(db: TestDb) {
    let (server, clock) = server_with_clock(&db, "[tokens]\naccess_token_ttl = \"1s\"").await;
    let token = client_credentials(&server, "machine", "machine-secret", "read:photos").await;
    clock.advance(2);
    let seen = introspect(&server, ("photo-api", "photo-api-secret"), &token).await;
    assert_eq!(seen.to_string(), INACTIVE);
}

async fn password_grant(server: &TestServer, password: &str) -> (StatusCode, Value) {
    let (status, _, body) = post(
        server,
        "/oauth/token",
        Some(("first-party", "first-party-secret")),
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", password),
            ("scope", "openid offline_access read:photos"),
        ],
    )
    .await;
    (status, body)
}

async fn the_password_grant_works_only_for_its_clients_with_one_error_for_bad_credentials(
    db: TestDb,
) {
    let server = server(&db, "").await;
    let (status, wrong_password) = password_grant(&server, "nope").await;
    assert_eq!((status.as_u16(), wrong_password["error"].as_str()), (400, Some("invalid_grant")));
    let (_, _, unknown_user) = post(
        &server,
        "/oauth/token",
        Some(("first-party", "first-party-secret")),
        &[("grant_type", "password"), ("username", "mallory"), ("password", "nope")],
    )
    .await;
    assert_eq!(unknown_user, wrong_password, "one answer for a wrong user and a wrong password");
    let (status, tokens) = password_grant(&server, "alice-password").await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["refresh_token"].is_string());
    assert!(tokens["id_token"].is_string(), "openid was granted");
    let seen = introspect(
        &server,
        ("photo-api", "photo-api-secret"),
        tokens["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(seen["active"], true);
    assert_eq!(seen["username"], "alice");
}

async fn revoking_a_refresh_token_revokes_its_family_and_access_tokens(db: TestDb) {
    let server = server(&db, "").await;
    let (_, tokens) = password_grant(&server, "alice-password").await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let first_party = Some(("first-party", "first-party-secret"));
    // Introspecting the refresh token: its owner sees it.
    let (_, _, seen) = post(&server, "/oauth/introspect", first_party, &[("token", refresh)]).await;
    assert_eq!(seen["active"], true, "{seen}");
    // Another client may neither see nor revoke it.
    let (_, _, foreign) = post(
        &server,
        "/oauth/introspect",
        Some(("photo-api", "photo-api-secret")),
        &[("token", refresh)],
    )
    .await;
    assert_eq!(foreign.to_string(), INACTIVE);
    assert_error(
        post(&server, "/oauth/revoke", Some(("machine", "machine-secret")), &[("token", refresh)])
            .await,
        400,
        "unauthorized_client",
    );
    let (status, _, _) = post(
        &server,
        "/oauth/revoke",
        first_party,
        &[("token", refresh), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_eq!(status, 200);
    let seen = introspect(&server, ("photo-api", "photo-api-secret"), access).await;
    assert_eq!(seen.to_string(), INACTIVE, "the access token went with its family");
    assert_error(
        post(
            &server,
            "/oauth/token",
            first_party,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await,
        400,
        "invalid_grant",
    );
    let (_, _, seen) = post(&server, "/oauth/introspect", first_party, &[("token", refresh)]).await;
    assert_eq!(seen.to_string(), INACTIVE);
}

async fn public_clients_revoke_their_own_tokens(db: TestDb) {
    let server = server(&db, "").await;
    let (status, _, _) =
        post(&server, "/oauth/revoke", None, &[("token", "unknown"), ("client_id", "spa")]).await;
    assert_eq!(status, 200);
    assert_error(
        post(&server, "/oauth/revoke", None, &[("token", "unknown"), ("client_id", "nobody")])
            .await,
        401,
        "invalid_client",
    );
}

async fn wrong_client_secrets_are_slowed_down_per_client(db: TestDb) {
    let (server, clock) = server_with_clock(&db, "").await;
    let cc = [("grant_type", "client_credentials")];
    for _ in 0..5 {
        assert_error(
            post(&server, "/oauth/token", Some(("machine", "wrong")), &cc).await,
            401,
            "invalid_client",
        );
    }
    // The back-off after five failures: refused at once with when to retry, without a check
    // (so the right secret is refused too until it has run).
    for secret in ["wrong", "machine-secret"] {
        let (status, headers, body) =
            post(&server, "/oauth/token", Some(("machine", secret)), &cc).await;
        assert_eq!(status, 429, "{body}");
        assert_eq!(body["error"], "invalid_client", "{body}");
        let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=2).contains(&retry), "Retry-After {retry}");
    }
    // Another client is not affected, and the right secret works once the back-off has run.
    client_credentials(&server, "other", "other-secret", "").await;
    clock.advance(2);
    client_credentials(&server, "machine", "machine-secret", "").await;
}

/// An ES256 key pair for a private_key_jwt client: the JWK for its registration, and the
/// key to sign assertions with.
fn client_key(kid: &str) -> (Value, EncodingKey) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let public = pair.public_key().as_ref();
    let jwk = json!({
        "kty": "EC",
        "kid": kid,
        "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&public[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&public[33..65]),
    });
    (jwk, EncodingKey::from_ec_der(pkcs8.as_ref()))
}

/// The registration's inline JWK set for `jwk`, as a TOML inline table.
fn inline_jwks(jwk: &Value) -> String {
    let member = |name: &str| format!("{name} = {}", jwk[name]);
    format!(
        "{{ keys = [ {{ {}, {}, {}, {}, {} }} ] }}",
        member("kty"),
        member("kid"),
        member("crv"),
        member("x"),
        member("y")
    )
}

fn assertion(key: &EncodingKey, kid: &str, claims: Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    encode(&header, &claims, key).unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn assertion_claims(server: &TestServer, jti: &str) -> Value {
    json!({
        "iss": "signed", "sub": "signed", "aud": server.base,
        "exp": now() + 60, "iat": now(), "jti": jti,
    })
}

async fn with_assertion(
    server: &TestServer,
    assertion: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    post(
        server,
        "/oauth/token",
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", assertion),
        ],
    )
    .await
}

async fn private_key_jwt_clients_authenticate_once_per_assertion(db: TestDb) {
    let (jwk, key) = client_key("k1");
    let keys = inline_jwks(&jwk);
    let registration = format!(
        "[[clients]]\nclient_id = \"signed\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\ngrant_types = [\"client_credentials\"]\nscopes = [\"read:photos\"]\njwks = {keys}\n"
    );
    let server = server(&db, &registration).await;
    let signed = assertion(&key, "k1", assertion_claims(&server, "jti-1"));
    let (status, _, body) = with_assertion(&server, &signed).await;
    assert_eq!(status, 200, "{body}");
    // The same assertion again is a replay.
    assert_error(with_assertion(&server, &signed).await, 401, "invalid_client");
    // aud is exactly the issuer, as one string (draft-ietf-oauth-rfc7523bis): not the token
    // endpoint, not a list that holds the issuer, not someone else's.
    for (n, aud) in [
        json!(server.url("/oauth/token")),
        json!([server.base]),
        json!([server.base, "https://other-server.example.com"]),
        json!(format!("{}/", server.base)),
        json!("https://other-server.example.com/token"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut claims = assertion_claims(&server, &format!("jti-aud-{n}"));
        claims["aud"] = aud.clone();
        let (status, _, body) = with_assertion(&server, &assertion(&key, "k1", claims)).await;
        assert_eq!(
            (status.as_u16(), body["error"].as_str()),
            (401, Some("invalid_client")),
            "{aud}"
        );
    }
    // Expired, missing or unprintable jti, wrong iss, a key it never registered, HS256 with a guessable key.
    let mut claims = assertion_claims(&server, "jti-4");
    claims["exp"] = json!(now() - 10);
    assert_error(
        with_assertion(&server, &assertion(&key, "k1", claims)).await,
        401,
        "invalid_client",
    );
    let mut claims = assertion_claims(&server, "jti-5");
    claims.as_object_mut().unwrap().remove("jti");
    assert_error(
        with_assertion(&server, &assertion(&key, "k1", claims)).await,
        401,
        "invalid_client",
    );
    // A jti that cannot be stored as text (PostgreSQL refuses NUL) is refused, not a 500.
    for jti in ["jti\u{0}5", "jti\n5"] {
        assert_error(
            with_assertion(&server, &assertion(&key, "k1", assertion_claims(&server, jti))).await,
            401,
            "invalid_client",
        );
    }
    let mut claims = assertion_claims(&server, "jti-6");
    claims["iss"] = json!("machine");
    assert_error(
        with_assertion(&server, &assertion(&key, "k1", claims)).await,
        401,
        "invalid_client",
    );
    let (_, stranger) = client_key("k1");
    let forged = assertion(&stranger, "k1", assertion_claims(&server, "jti-7"));
    assert_error(with_assertion(&server, &forged).await, 401, "invalid_client");
    let hmac = encode(
        &Header::new(Algorithm::HS256),
        &assertion_claims(&server, "jti-8"),
        &EncodingKey::from_secret(b"signed"),
    )
    .unwrap();
    assert_error(with_assertion(&server, &hmac).await, 401, "invalid_client");
    // The registered method only: a secret is not accepted from this client.
    assert_error(
        post(
            &server,
            "/oauth/token",
            Some(("signed", "anything")),
            &[("grant_type", "client_credentials")],
        )
        .await,
        401,
        "invalid_client",
    );
}

async fn a_legacy_client_may_use_the_token_endpoint_as_audience(db: TestDb) {
    let (jwk, key) = client_key("k1");
    let keys = inline_jwks(&jwk);
    let registration = format!(
        "[[clients]]\nclient_id = \"signed\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\ngrant_types = [\"client_credentials\"]\nscopes = [\"read:photos\"]\nlegacy_assertion_audience = true\njwks = {keys}\n"
    );
    let server = server(&db, &registration).await;
    for (n, aud) in [json!(server.url("/oauth/token")), json!([server.base]), json!(server.base)]
        .into_iter()
        .enumerate()
    {
        let mut claims = assertion_claims(&server, &format!("legacy-{n}"));
        claims["aud"] = aud.clone();
        let (status, _, body) = with_assertion(&server, &assertion(&key, "k1", claims)).await;
        assert_eq!(status, 200, "{aud}: {body}");
    }
    let mut claims = assertion_claims(&server, "legacy-other");
    claims["aud"] = json!("https://other-server.example.com/token");
    assert_error(
        with_assertion(&server, &assertion(&key, "k1", claims)).await,
        401,
        "invalid_client",
    );
}

/// A jwks_uri that streams an endless chunked body is cut off at the cap, not buffered.
async fn a_chunked_jwks_body_is_read_with_a_byte_cap(db: TestDb) {
    let (_, key) = client_key("k1");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_uri = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = sent.clone();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let counter = counter.clone();
            async move {
                // 64 MiB in 64 KiB chunks, without Content-Length.
                let chunks =
                    futures_util::StreamExt::map(futures_util::stream::iter(0..1024), move |_| {
                        counter.fetch_add(65_536, std::sync::atomic::Ordering::Relaxed);
                        Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b' '; 65_536]))
                    });
                axum::body::Body::from_stream(chunks)
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let registration = format!(
        "[[clients]]\nclient_id = \"signed\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\ngrant_types = [\"client_credentials\"]\nscopes = [\"read:photos\"]\njwks_uri = \"{jwks_uri}\"\n"
    );
    let server = server(&db, &registration).await;
    let signed = assertion(&key, "k1", assertion_claims(&server, "chunked"));
    assert_error(with_assertion(&server, &signed).await, 401, "invalid_client");
    let total = sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(total < 8 * 1024 * 1024, "the fetch stopped early, not after {total} bytes");
}

async fn private_key_jwt_keys_come_from_the_jwks_uri(db: TestDb) {
    let (jwk, key) = client_key("remote-1");
    let keys = json!({ "keys": [jwk] });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_uri = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/jwks.json", axum::routing::get(move || async move { axum::Json(keys) }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let registration = format!(
        "[[clients]]\nclient_id = \"signed\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\ngrant_types = [\"client_credentials\"]\nscopes = [\"read:photos\"]\njwks_uri = \"{jwks_uri}\"\n"
    );
    let server = server(&db, &registration).await;
    let signed = assertion(&key, "remote-1", assertion_claims(&server, "remote-jti"));
    let (status, _, body) = with_assertion(&server, &signed).await;
    assert_eq!(status, 200, "{body}");
    // Introspection takes the same client authentication.
    let token = body["access_token"].as_str().unwrap().to_owned();
    let signed = assertion(&key, "remote-1", assertion_claims(&server, "remote-jti-2"));
    let (status, _, seen) = post(
        &server,
        "/oauth/introspect",
        None,
        &[
            ("token", &token),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", &signed),
        ],
    )
    .await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["active"], true);
}

/// The `oauth2` crate, a third-party client, gets a client-credentials token.
async fn the_oauth2_crate_gets_a_client_credentials_token(db: TestDb) {
    use oauth2::basic::BasicClient;
    use oauth2::{ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};
    let server = server(&db, "").await;
    let oauth = BasicClient::new(ClientId::new("machine".into()))
        .set_client_secret(ClientSecret::new("machine-secret".into()))
        .set_token_uri(TokenUrl::new(server.url("/oauth/token")).unwrap());
    let token = oauth
        .exchange_client_credentials()
        .add_scope(Scope::new("read:photos".into()))
        .request_async(&crate::oauth_http)
        .await
        .unwrap();
    assert_eq!(token.scopes().unwrap()[0].as_str(), "read:photos");
    assert!(token.refresh_token().is_none());
    let seen =
        introspect(&server, ("photo-api", "photo-api-secret"), token.access_token().secret()).await;
    assert_eq!(seen["active"], true);
}

crate::on_both_engines!(
    client_credentials_issue_verifiable_jwts,
    client_credentials_errors_say_what_to_fix,
    introspection_answers_the_audience_and_the_issuing_client_only,
    opaque_tokens_carry_the_same_information_and_can_be_revoked,
    a_revoked_jwt_is_inactive_until_it_would_have_expired,
    expired_tokens_are_inactive,
    the_password_grant_works_only_for_its_clients_with_one_error_for_bad_credentials,
    revoking_a_refresh_token_revokes_its_family_and_access_tokens,
    public_clients_revoke_their_own_tokens,
    wrong_client_secrets_are_slowed_down_per_client,
    private_key_jwt_clients_authenticate_once_per_assertion,
    private_key_jwt_keys_come_from_the_jwks_uri,
    a_legacy_client_may_use_the_token_endpoint_as_audience,
    a_chunked_jwks_body_is_read_with_a_byte_cap,
    the_oauth2_crate_gets_a_client_credentials_token,
);

mod limits {
    use crate::{TestServer, client};

    /// Every endpoint that takes a body refuses a 1 MB one with 413, before reading it all.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_megabyte_bodies_are_refused_with_413() {
        let db = crate::TestDb::sqlite();
        let server = TestServer::start_ready(&db, super::CONFIG).await;
        let big = format!("token={}", "a".repeat(1024 * 1024));
        for path in [
            "/oauth/token",
            "/oauth/introspect",
            "/oauth/revoke",
            "/authorize",
            "/login",
            "/consent",
            "/userinfo",
            "/logout",
        ] {
            let response = client()
                .post(server.url(path))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(big.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 413, "{path}");
        }
    }

    /// `/metrics` speaks the Prometheus text format and counts requests and issued tokens.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn metrics_count_requests_and_tokens() {
        let db = crate::TestDb::sqlite();
        let server = TestServer::start_ready(&db, super::CONFIG).await;
        super::client_credentials(&server, "machine", "machine-secret", "").await;
        let response = client().get(server.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        let text = response.text().await.unwrap();
        assert!(
            text.contains("latchkey_tokens_issued_total{grant_type=\"client_credentials\"}"),
            "{text}"
        );
        assert!(
            text.contains("latchkey_http_requests_total{endpoint=\"/oauth/token\",status=\"200\"}"),
            "{text}"
        );
        // Store latency by operation (the first client credentials request read the client) and the age
        // of every signing key in use.
        assert!(
            text.contains("latchkey_store_operation_duration_seconds_count{operation=\"client\"}"),
            "{text}"
        );
        for (purpose, alg) in
            [("access_token", "ES256"), ("id_token", "RS256"), ("id_token", "EdDSA")]
        {
            let gauge =
                format!("latchkey_signing_key_age_seconds{{purpose=\"{purpose}\",alg=\"{alg}\"}}");
            assert!(text.contains(&gauge), "no {gauge} in:\n{text}");
        }
        assert!(!text.contains("latchkey_signing_keys{state=\"current\"} 0"), "{text}");
        assert!(!text.contains("machine-secret"));
    }
}
