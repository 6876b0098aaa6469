//! `/.well-known/jwks.json` (RFC 7517 §5): the public keys in the next, current and retiring
//! states, serialized once per key refresh.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;
use crate::config::JWKS_MAX_AGE;

/// Serves the key set. `max-age` is shorter than the pre-publication period, so a verifier
/// that caches it always learns a new key before that key signs anything.
pub(super) async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    let cache = format!("public, max-age={}", JWKS_MAX_AGE.as_secs());
    (
        [
            (header::CONTENT_TYPE, "application/jwk-set+json".to_owned()),
            (header::CACHE_CONTROL, cache),
        ],
        state.keys.snapshot().jwks_json(),
    )
}
