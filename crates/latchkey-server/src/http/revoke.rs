//! `/oauth/revoke` (RFC 7009): form-encoded POST only, from an authenticated client.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::HttpError;
use super::extract::ClientRequest;

/// POST /oauth/revoke: 200 with an empty body, also for tokens that were already dead
/// (RFC 7009 §2.2).
pub(super) async fn revoke(
    State(state): State<AppState>,
    request: ClientRequest,
) -> Result<Response, HttpError> {
    let ClientRequest { record, params, .. } = request;
    state.authority.revoke(&record.client, &params, state.now()).await?;
    let mut response = StatusCode::OK.into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
