//! The introspection mode against a stand-in introspection endpoint on 127.0.0.1 that counts
//! how often it is asked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use latchkey_resource::{Introspector, IntrospectorConfig, ManualClock, Rejection};
use serde_json::{Value, json};

const AUDIENCE: &str = "https://photos.example.com";
const ISSUER: &str = "https://auth.example.com";

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Answers every token with `answer(token)`; returns the endpoint and the call counter.
async fn endpoint(answer: fn(&str) -> Value) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/introspect", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/introspect",
        axum::routing::post(move |body: String| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let token = body
                    .split('&')
                    .find_map(|pair| pair.strip_prefix("token="))
                    .unwrap_or_default()
                    .to_owned();
                axum::Json(answer(&token))
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

fn introspector(endpoint: &str, max_cache: Duration) -> Introspector {
    Introspector::new(IntrospectorConfig {
        issuer: ISSUER.into(),
        endpoint: endpoint.into(),
        client_id: "photo-api".into(),
        client_secret: "secret".into(),
        audience: AUDIENCE.into(),
        max_cache,
    })
}

fn active(exp_in: i64) -> Value {
    json!({
        "active": true, "scope": "read:photos", "client_id": "app", "sub": "alice",
        "aud": AUDIENCE, "iss": ISSUER, "exp": now() + exp_in, "iat": now(), "token_type": "Bearer",
    })
}

#[tokio::test]
async fn answers_are_cached_no_longer_than_max_cache() {
    let (url, calls) = endpoint(|_| active(300)).await;
    let introspector = introspector(&url, Duration::from_millis(1500));
    let token = introspector.validate("opaque-1").await.unwrap();
    assert_eq!((token.sub(), token.client_id()), ("alice", "app"));
    assert!(token.has_scope("read:photos"));
    introspector.validate("opaque-1").await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the second answer came from the cache");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    introspector.validate("opaque-1").await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2, "asked again after max_cache");
}

#[tokio::test]
async fn answers_are_never_cached_past_the_tokens_exp() {
    let (url, calls) = endpoint(|_| active(1)).await;
    let clock = Arc::new(ManualClock::starting_now());
    let introspector = introspector(&url, Duration::from_secs(3600)).with_clock(clock.clone());
    introspector.validate("short-lived").await.unwrap();
    clock.advance(2);
    // Past exp by the API's clock: asked again (not served from the cache), and the answer,
    // whose exp is still the stand-in's real time plus 1 s, is expired too.
    let again = introspector.validate("short-lived").await;
    assert_eq!(again, Err(Rejection::Expired));
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the cached answer outlived exp");
}

#[tokio::test]
async fn inactive_foreign_and_unreachable_are_refused() {
    let (url, calls) = endpoint(|token| match token {
        "other-api" => json!({ "active": true, "aud": "https://mail.example.com", "exp": now() + 60, "sub": "a" }),
        "other-issuer" => json!({ "active": true, "aud": AUDIENCE, "iss": "https://evil.example.com", "exp": now() + 60 }),
        "stale" => json!({ "active": true, "aud": AUDIENCE, "exp": now() - 5 }),
        _ => json!({ "active": false }),
    })
    .await;
    let checker = introspector(&url, Duration::from_secs(60));
    assert_eq!(checker.validate("revoked").await.err(), Some(Rejection::Inactive));
    assert_eq!(checker.validate("revoked").await.err(), Some(Rejection::Inactive));
    assert_eq!(calls.load(Ordering::SeqCst), 2, "inactive answers are not cached");
    let wrong = checker.validate("other-api").await.err().unwrap();
    assert_eq!(
        wrong,
        Rejection::WrongAudience {
            expected: AUDIENCE.into(),
            found: vec!["https://mail.example.com".into()]
        }
    );
    assert!(wrong.description().contains("the access token is for https://mail.example.com"));
    assert_eq!(checker.validate("other-issuer").await.err(), Some(Rejection::WrongIssuer));
    assert_eq!(checker.validate("stale").await.err(), Some(Rejection::Expired));
    let down = introspector("http://127.0.0.1:9/introspect", Duration::from_secs(60));
    assert_eq!(down.validate("any").await.err(), Some(Rejection::IssuerUnavailable));
}
