//! Discovery and JWKS over HTTP (OIDC Discovery §4, RFC 8414 §3, RFC 7517).

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use latchkey::keys::KeyPurpose;
use latchkey::model::SigningAlg;
use latchkey_resource::claims::ACCESS_TOKEN_TYP;
use latchkey_resource::{AccessTokenClaims, Audience};
use serde_json::Value;

use crate::{TestDb, TestServer, client, get_json};

async fn both_well_known_documents_match_the_issuer(db: TestDb) {
    let server = TestServer::start(&db, "").await;
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let response = client().get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], "application/json");
        let doc: Value = response.json().await.unwrap();
        assert_eq!(doc["issuer"], server.base, "issuer is exact (RFC 8414 §3.3)");
        assert_eq!(doc["jwks_uri"], server.url("/.well-known/jwks.json"));
        assert_eq!(doc["subject_types_supported"], serde_json::json!(["public"]));
        assert_eq!(
            doc["id_token_signing_alg_values_supported"],
            serde_json::json!(["RS256", "ES256", "EdDSA"])
        );
        assert_eq!(doc["authorization_endpoint"], server.url("/authorize"));
        assert_eq!(doc["token_endpoint"], server.url("/oauth/token"));
        assert_eq!(doc["userinfo_endpoint"], server.url("/userinfo"));
        assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(doc["code_challenge_methods_supported"], serde_json::json!(["S256"]));
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        assert_eq!(doc["end_session_endpoint"], server.url("/logout"));
        assert_eq!(doc["introspection_endpoint"], server.url("/oauth/introspect"));
        assert_eq!(doc["revocation_endpoint"], server.url("/oauth/revoke"));
        assert_eq!(
            doc["grant_types_supported"],
            serde_json::json!([
                "authorization_code",
                "refresh_token",
                "client_credentials",
                "password"
            ]),
            "never implicit"
        );
        // Exactly the methods implemented; public clients cannot introspect.
        let methods = serde_json::json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none"
        ]);
        assert_eq!(doc["token_endpoint_auth_methods_supported"], methods);
        assert_eq!(doc["revocation_endpoint_auth_methods_supported"], methods);
        assert_eq!(
            doc["introspection_endpoint_auth_methods_supported"],
            serde_json::json!(["client_secret_basic", "client_secret_post", "private_key_jwt"])
        );
        let algs = doc["token_endpoint_auth_signing_alg_values_supported"].as_array().unwrap();
        assert!(!algs.iter().any(|a| a == "none" || a.as_str().unwrap().starts_with("HS")));
    }
}

async fn urls_never_come_from_request_headers(db: TestDb) {
    let server = TestServer::start(&db, "").await;
    let doc: Value = client()
        .get(server.url("/.well-known/openid-configuration"))
        .header("host", "evil.example.com")
        .header("x-forwarded-host", "evil.example.com")
        .header("x-forwarded-proto", "https")
        .header("forwarded", "host=evil.example.com;proto=https")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], server.base);
    assert!(!doc.to_string().contains("evil"), "{doc}");
}

async fn jwks_publishes_public_keys_that_a_jose_library_reads(db: TestDb) {
    let server = TestServer::start(&db, "").await;
    let response = client().get(server.url("/.well-known/jwks.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    let raw: Value = response.json().await.unwrap();
    let keys = raw["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 4, "access ES256; id_token RS256, ES256, EdDSA: {raw}");
    for key in keys {
        let fields: Vec<&str> = key.as_object().unwrap().keys().map(String::as_str).collect();
        for field in &fields {
            assert!(
                ["kty", "kid", "use", "alg", "crv", "x", "y", "n", "e"].contains(field),
                "unexpected JWK member {field}: {key}"
            );
        }
        assert_eq!(key["use"], "sig");
    }
    let set: JwkSet = serde_json::from_value(raw).unwrap();
    let mut algs: Vec<String> = Vec::new();
    for jwk in &set.keys {
        DecodingKey::from_jwk(jwk).expect("every published key parses as a JWK");
        algs.push(format!("{:?}", jwk.common.key_algorithm.unwrap()));
    }
    algs.sort();
    assert_eq!(algs, ["ES256", "ES256", "EdDSA", "RS256"]);
}

async fn a_token_signed_by_the_server_verifies_with_the_published_key(db: TestDb) {
    let server = TestServer::start(&db, "").await;
    let claims = AccessTokenClaims {
        iss: server.base.clone(),
        sub: "alice".into(),
        aud: Audience::One("https://photos.example.com".into()),
        exp: 4_000_000_000,
        iat: 1_700_000_000,
        nbf: None,
        jti: "jti-1".into(),
        client_id: "photo-app".into(),
        scope: Some("read:photos".into()),
        auth_time: None,
        grant_id: None,
    };
    let snapshot = server.state.keys.snapshot();
    let signer = snapshot.signer((KeyPurpose::AccessToken, SigningAlg::ES256)).unwrap();
    let token = signer.sign_jwt(ACCESS_TOKEN_TYP, &claims).unwrap();

    let set: JwkSet = get_json(&client(), &server.url("/.well-known/jwks.json")).await;
    let header = decode_header(&token).unwrap();
    let jwk = set.find(header.kid.as_deref().unwrap()).expect("kid is published");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&["https://photos.example.com"]);
    validation.set_issuer(&[&server.base]);
    let decoded =
        decode::<AccessTokenClaims>(&token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
            .unwrap();
    assert_eq!(decoded.claims, claims);
    assert_eq!(decoded.header.typ.as_deref(), Some("at+jwt"));

    // The id_token key (RS256) verifies its own signatures the same way.
    let id_signer = snapshot.signer((KeyPurpose::IdToken, SigningAlg::RS256)).unwrap();
    let id_token = id_signer.sign_jwt("JWT", &claims).unwrap();
    let jwk = set.find(id_signer.kid()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["https://photos.example.com"]);
    decode::<AccessTokenClaims>(&id_token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .unwrap();
}

async fn health_and_readiness(db: TestDb) {
    let server = TestServer::start(&db, "[[users]]\nusername = \"alice\"\npassword = \"pw\"").await;
    let health = client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // Ready once the static user is hashed and stored.
    let mut ready = false;
    for _ in 0..100 {
        let response = client().get(server.url("/readyz")).send().await.unwrap();
        if response.status() == 200 {
            ready = true;
            break;
        }
        assert_eq!(response.status(), 503);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ready, "/readyz never became ready");
    assert!(server.state.store.user_by_username("alice").await.unwrap().is_some());
}

async fn unknown_paths_and_methods_are_client_errors(db: TestDb) {
    let server = TestServer::start(&db, "").await;
    let http = client();
    let missing = http.get(server.url("/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let wrong_method = http.delete(server.url("/.well-known/jwks.json")).send().await.unwrap();
    assert_eq!(wrong_method.status(), 405);
    let big = http.post(server.url("/healthz")).body(vec![b'a'; 1 << 20]).send().await.unwrap();
    assert!(big.status().is_client_error(), "{}", big.status());
    assert_eq!(missing.headers()["x-content-type-options"], "nosniff");
}

crate::on_both_engines!(
    both_well_known_documents_match_the_issuer,
    urls_never_come_from_request_headers,
    jwks_publishes_public_keys_that_a_jose_library_reads,
    a_token_signed_by_the_server_verifies_with_the_published_key,
    health_and_readiness,
    unknown_paths_and_methods_are_client_errors,
);
