//! `/healthz` (the process answers) and `/readyz` (it can serve: the database answers and
//! static clients and users are loaded).

use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;

/// Always 200 while the process runs.
pub(super) async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 when ready, else 503 with the reason.
pub(super) async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if !*state.static_loaded.borrow() {
        return (StatusCode::SERVICE_UNAVAILABLE, "loading static clients and users\n");
    }
    match state.authority.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n"),
        Err(error) => {
            tracing::warn!(%error, "readiness check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n")
        }
    }
}
