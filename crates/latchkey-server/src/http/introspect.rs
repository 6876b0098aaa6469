//! `/oauth/introspect` (RFC 7662) and `/oauth/revoke` (RFC 7009): form-encoded POST only, from
//! an authenticated client.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::json_error;
use super::source::Source;
use super::token::{authenticated, no_store_json};

/// POST /oauth/introspect.
pub(super) async fn introspect(
    State(state): State<AppState>,
    source: Source,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let answer = async {
        let (caller, params) =
            authenticated(&state, source, &headers, query.as_deref(), &body).await?;
        state.authority.introspect(&caller, &params, state.now()).await
    };
    match answer.await {
        Ok(introspection) => no_store_json(introspection),
        Err(failure) => json_error(failure),
    }
}

/// POST /oauth/revoke.
pub(super) async fn revoke(
    State(state): State<AppState>,
    source: Source,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let answer = async {
        let (caller, params) =
            authenticated(&state, source, &headers, query.as_deref(), &body).await?;
        state.authority.revoke(&caller, &params, state.now()).await
    };
    match answer.await {
        Ok(()) => {
            let mut response = StatusCode::OK.into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(failure) => json_error(failure),
    }
}
