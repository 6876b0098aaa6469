//! The validator against a stand-in issuer on 127.0.0.1 that publishes discovery and a JWKS,
//! with tokens signed by jsonwebtoken (an independent JOSE implementation from the signer
//! latchkey itself uses).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use latchkey_resource::{Rejection, Validator, ValidatorConfig};
use serde_json::{Value, json};

const AUDIENCE: &str = "https://photos.example.com";

struct Issuer {
    base: String,
    jwks: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
    up: Arc<std::sync::atomic::AtomicBool>,
}

/// An EC P-256 key: its public JWK and the key to sign with.
fn ec_key(kid: &str) -> (Value, EncodingKey) {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let public = pair.public_key().as_ref();
    let jwk = json!({
        "kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&public[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&public[33..65]),
    });
    (jwk, EncodingKey::from_ec_der(pkcs8.as_ref()))
}

async fn issuer(keys: Vec<Value>) -> Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let jwks = Arc::new(Mutex::new(json!({ "keys": keys })));
    let fetches = Arc::new(AtomicUsize::new(0));
    let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let discovery = json!({ "issuer": base, "jwks_uri": format!("{base}/jwks") });
    let (served, counter, alive) = (jwks.clone(), fetches.clone(), up.clone());
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || async move { axum::Json(discovery) }),
        )
        .route(
            "/jwks",
            axum::routing::get(move || {
                let (served, counter, alive) = (served.clone(), counter.clone(), alive.clone());
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    if !alive.load(Ordering::SeqCst) {
                        return Err(axum::http::StatusCode::SERVICE_UNAVAILABLE);
                    }
                    let body = served.lock().unwrap().clone();
                    Ok(axum::Json(body))
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Issuer { base, jwks, fetches, up }
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn claims(issuer: &Issuer) -> Value {
    json!({
        "iss": issuer.base, "sub": "alice", "aud": AUDIENCE, "exp": now() + 300, "iat": now(),
        "jti": "j1", "client_id": "app", "scope": "read:photos",
    })
}

fn sign(key: &EncodingKey, kid: &str, typ: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.into());
    header.typ = Some(typ.into());
    encode(&header, claims, key).unwrap()
}

fn validator(issuer: &Issuer) -> Validator {
    let mut config = ValidatorConfig::new(&issuer.base, AUDIENCE);
    config.leeway = Duration::from_secs(2);
    config.min_refetch_interval = Duration::from_millis(200);
    Validator::new(config)
}

#[tokio::test]
async fn a_valid_token_passes_with_its_claims() {
    let (jwk, key) = ec_key("k1");
    let issuer = issuer(vec![jwk]).await;
    let validator = validator(&issuer);
    let token = validator.validate(&sign(&key, "k1", "at+jwt", &claims(&issuer))).await.unwrap();
    assert_eq!((token.sub(), token.client_id()), ("alice", "app"));
    assert!(token.has_scope("read:photos"));
    assert_eq!(
        token.require_scope("write:photos"),
        Err(Rejection::InsufficientScope("write:photos".into()))
    );
}

#[tokio::test]
async fn each_broken_rule_has_its_own_rejection() {
    let (jwk, key) = ec_key("k1");
    let issuer = issuer(vec![jwk]).await;
    let validator = validator(&issuer);
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = claims(&issuer);
        change(&mut claims);
        sign(&key, "k1", "at+jwt", &claims)
    };
    let cases: Vec<(&str, String, Rejection)> = vec![
        ("expired", with(&|c| c["exp"] = json!(now() - 60)), Rejection::Expired),
        ("not yet valid", with(&|c| c["nbf"] = json!(now() + 600)), Rejection::NotYetValid),
        ("issued in the future", with(&|c| c["iat"] = json!(now() + 600)), Rejection::NotYetValid),
        (
            "wrong iss",
            with(&|c| c["iss"] = json!("https://evil.example.com")),
            Rejection::WrongIssuer,
        ),
        (
            "wrong aud",
            with(&|c| c["aud"] = json!("https://mail.example.com")),
            Rejection::WrongAudience {
                expected: AUDIENCE.into(),
                found: vec!["https://mail.example.com".into()],
            },
        ),
        ("id_token typ", sign(&key, "k1", "JWT", &claims(&issuer)), Rejection::NotAnAccessToken),
        ("unknown kid", sign(&key, "k9", "at+jwt", &claims(&issuer)), Rejection::UnknownKey),
        ("malformed", "not-a-jwt".into(), Rejection::Malformed),
        ("three garbage parts", "a.b.c".into(), Rejection::Malformed),
    ];
    for (name, token, expected) in cases {
        assert_eq!(validator.validate(&token).await.err(), Some(expected), "{name}");
    }
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    let (jwk, key) = ec_key("k1");
    let issuer = issuer(vec![jwk.clone()]).await;
    let validator = validator(&issuer);
    let good = sign(&key, "k1", "at+jwt", &claims(&issuer));
    // Tampered payload: the same signature over other claims.
    let parts: Vec<&str> = good.split('.').collect();
    let mut widened = claims(&issuer);
    widened["scope"] = json!("read:photos write:photos");
    let payload = URL_SAFE_NO_PAD.encode(widened.to_string());
    let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
    assert_eq!(validator.validate(&tampered).await.err(), Some(Rejection::BadSignature));
    // alg: none.
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"at+jwt","kid":"k1"}"#);
    let unsigned = format!("{header}.{}.", parts[1]);
    assert!(validator.validate(&unsigned).await.is_err(), "alg none must never pass");
    // HS256 "signed" with the public key's bytes (the classic key-confusion attack).
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    header.typ = Some("at+jwt".into());
    let public = jwk.to_string();
    let confused =
        encode(&header, &claims(&issuer), &EncodingKey::from_secret(public.as_bytes())).unwrap();
    assert_eq!(validator.validate(&confused).await.err(), Some(Rejection::AlgorithmNotAllowed));
    // A key of the same kid from someone else.
    let (_, stranger) = ec_key("k1");
    let forged = sign(&stranger, "k1", "at+jwt", &claims(&issuer));
    assert_eq!(validator.validate(&forged).await.err(), Some(Rejection::BadSignature));
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_and_forged_kids_do_not_hammer_the_issuer() {
    let (jwk1, key1) = ec_key("k1");
    let issuer = issuer(vec![jwk1.clone()]).await;
    let validator = validator(&issuer);
    validator.validate(&sign(&key1, "k1", "at+jwt", &claims(&issuer))).await.unwrap();
    assert_eq!(issuer.fetches.load(Ordering::SeqCst), 1);

    // A flood of made-up kids: at most one fetch per interval, whatever the concurrency.
    let validator = Arc::new(validator);
    let mut flood = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (validator, token) =
            (validator.clone(), sign(&key1, &format!("forged-{i}"), "at+jwt", &claims(&issuer)));
        flood.spawn(async move { validator.validate(&token).await });
    }
    while let Some(outcome) = flood.join_next().await {
        assert_eq!(outcome.unwrap().err(), Some(Rejection::UnknownKey));
    }
    assert!(
        issuer.fetches.load(Ordering::SeqCst) <= 2,
        "{} fetches",
        issuer.fetches.load(Ordering::SeqCst)
    );

    // The issuer rotates to k2: a token with the new kid makes one fetch and passes.
    let (jwk2, key2) = ec_key("k2");
    *issuer.jwks.lock().unwrap() = json!({ "keys": [jwk1, jwk2] });
    tokio::time::sleep(Duration::from_millis(250)).await;
    let token = sign(&key2, "k2", "at+jwt", &claims(&issuer));
    validator.validate(&token).await.unwrap();
}

#[tokio::test]
async fn cached_keys_keep_working_while_the_issuer_is_down() {
    let (jwk, key) = ec_key("k1");
    let issuer = issuer(vec![jwk]).await;
    let validator = validator(&issuer);
    let token = sign(&key, "k1", "at+jwt", &claims(&issuer));
    validator.validate(&token).await.unwrap();
    issuer.up.store(false, Ordering::SeqCst);
    // An unknown kid makes the validator try the issuer, which fails; known keys still work.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let unknown = sign(&key, "k2", "at+jwt", &claims(&issuer));
    assert_eq!(validator.validate(&unknown).await.err(), Some(Rejection::UnknownKey));
    validator.validate(&token).await.unwrap();
}

#[tokio::test]
async fn pinned_keys_validate_without_any_issuer_and_nothing_else_does() {
    let (jwk, key) = ec_key("k1");
    let (_, stranger) = ec_key("k2");
    // An issuer URL that nothing listens on: a fetch would fail and show as IssuerUnavailable.
    let base = "http://127.0.0.1:9".to_owned();
    let jwks: latchkey_resource::JwkSet = serde_json::from_value(json!({ "keys": [jwk] })).unwrap();
    let validator = Validator::with_pinned_keys(ValidatorConfig::new(&base, AUDIENCE), &jwks);
    let claims = json!({
        "iss": base, "sub": "alice", "aud": AUDIENCE, "exp": now() + 300, "iat": now(),
        "jti": "j1", "client_id": "app", "scope": "read:photos",
    });
    let token = validator.validate(&sign(&key, "k1", "at+jwt", &claims)).await.unwrap();
    assert_eq!(token.sub(), "alice");
    let unknown = validator.validate(&sign(&stranger, "k2", "at+jwt", &claims)).await;
    assert_eq!(unknown.unwrap_err(), Rejection::UnknownKey, "no fetch, no other key");
    let forged = validator.validate(&sign(&stranger, "k1", "at+jwt", &claims)).await;
    assert_eq!(forged.unwrap_err(), Rejection::BadSignature);
}

#[tokio::test]
async fn an_unreachable_issuer_without_cached_keys_is_unavailable_not_invalid() {
    let (jwk, key) = ec_key("k1");
    let issuer = issuer(vec![jwk]).await;
    issuer.up.store(false, Ordering::SeqCst);
    let validator = validator(&issuer);
    let token = sign(&key, "k1", "at+jwt", &claims(&issuer));
    let rejection = validator.validate(&token).await.err().unwrap();
    assert_eq!(rejection, Rejection::IssuerUnavailable);
    assert_eq!(rejection.status(), 503);
}

#[test]
fn bearer_headers_are_parsed_strictly() {
    use latchkey_resource::bearer_token;
    assert_eq!(bearer_token(Some("Bearer abc.def-_")), Ok("abc.def-_"));
    assert_eq!(bearer_token(Some("bearer abc")), Ok("abc"), "the scheme is case-insensitive");
    assert_eq!(bearer_token(None), Err(Rejection::Missing));
    for bad in ["Basic abc", "Bearer", "Bearer ", "Bearer a b", "Bearerabc", "Bearer a\"b"] {
        assert_eq!(bearer_token(Some(bad)), Err(Rejection::MalformedHeader), "{bad}");
    }
}

#[test]
fn rejections_become_rfc_6750_challenges() {
    assert_eq!(Rejection::Missing.challenge("photos"), "Bearer realm=\"photos\"");
    assert_eq!(Rejection::Missing.status(), 401);
    let expired = Rejection::Expired.challenge("photos");
    assert!(
        expired.contains("error=\"invalid_token\"") && expired.contains("expired"),
        "{expired}"
    );
    let scope = Rejection::InsufficientScope("write:photos".into());
    assert_eq!(scope.status(), 403);
    assert!(scope.challenge("photos").ends_with("scope=\"write:photos\""));
    assert_eq!(Rejection::MalformedHeader.status(), 400);
    assert_eq!(Rejection::MalformedHeader.error_code(), Some("invalid_request"));
}
