//! ES256 access-token validation on a cached key against the raw signature verification of
//! the same crypto library (aws-lc-rs), side by side: `cargo bench -p latchkey-resource`.
//! The target is a validation rate of at least 90% of the raw verification rate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::hint::black_box;

use criterion::Criterion;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use latchkey_resource::{Validator, ValidatorConfig};
use serde_json::json;

const AUDIENCE: &str = "https://photos.example.com";

/// Polls a future that must complete without waiting (validation on a cached key does).
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("validation waited: the key is not cached"),
    }
}

struct Fixture {
    validator: Validator,
    token: String,
    public: Vec<u8>,
    _runtime: tokio::runtime::Runtime,
}

fn fixture() -> Fixture {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let public = pair.public_key().as_ref().to_vec();
    let jwk = json!({
        "kty": "EC", "kid": "k1", "alg": "ES256", "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&public[1..33]), "y": URL_SAFE_NO_PAD.encode(&public[33..65]),
    });
    let base = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let discovery = json!({ "issuer": base, "jwks_uri": format!("{base}/jwks") });
        let keys = json!({ "keys": [jwk] });
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || async move { axum::Json(discovery) }),
            )
            .route("/jwks", axum::routing::get(move || async move { axum::Json(keys) }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    });
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let claims = json!({
        "iss": base, "sub": "alice", "aud": AUDIENCE, "exp": now + 3600, "iat": now,
        "jti": "j1", "client_id": "app", "scope": "read:photos",
    });
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("k1".into());
    header.typ = Some("at+jwt".into());
    let token = encode(&header, &claims, &EncodingKey::from_ec_der(pkcs8.as_ref())).unwrap();
    let validator = Validator::new(ValidatorConfig::new(&base, AUDIENCE));
    // The first validation fetches the keys; every later one uses the cache.
    runtime.block_on(validator.validate(&token)).unwrap();
    Fixture { validator, token, public, _runtime: runtime }
}

fn raw_verify(public: &[u8], token: &str) {
    let (message, signature) = token.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public)
        .verify(message.as_bytes(), &signature)
        .unwrap();
}

/// Operations per second of `op`, over about a second.
fn rate(mut op: impl FnMut()) -> f64 {
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < Duration::from_secs(1) {
        for _ in 0..100 {
            op();
        }
        count += 100;
    }
    count as f64 / started.elapsed().as_secs_f64()
}

fn bench(c: &mut Criterion) {
    let fixture = fixture();
    let mut group = c.benchmark_group("es256");
    group.bench_function("raw aws-lc-rs verify", |b| {
        b.iter(|| raw_verify(black_box(&fixture.public), black_box(&fixture.token)))
    });
    group.bench_function("Validator::validate (cached key)", |b| {
        b.iter(|| ready(fixture.validator.validate(black_box(&fixture.token))).unwrap())
    });
    group.finish();
    let raw = rate(|| raw_verify(&fixture.public, &fixture.token));
    let validated = rate(|| {
        ready(fixture.validator.validate(&fixture.token)).unwrap();
    });
    println!(
        "ES256 per second: raw verify {raw:.0}, Validator::validate {validated:.0} ({:.1}% of raw; target >= 90%)",
        validated / raw * 100.0
    );
}

criterion::criterion_group!(benches, bench);
criterion::criterion_main!(benches);
