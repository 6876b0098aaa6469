//! `/.well-known/openid-configuration` and `/.well-known/oauth-authorization-server`
//! (OpenID Connect Discovery 1.0 §4, RFC 8414 §3): one document, built once at start-up.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;

/// Serves the metadata document built from the configured issuer.
pub(super) async fn metadata(State(state): State<AppState>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        state.metadata_json.clone(),
    )
}
