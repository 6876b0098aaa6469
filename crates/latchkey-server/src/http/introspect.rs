//! `/oauth/introspect` (RFC 7662): form-encoded POST only, from an authenticated client.

use axum::extract::State;
use axum::response::Response;

use super::AppState;
use super::error::HttpError;
use super::extract::ClientRequest;
use super::token::no_store_json;

/// POST /oauth/introspect.
pub(super) async fn introspect(
    State(state): State<AppState>,
    request: ClientRequest,
) -> Result<Response, HttpError> {
    let ClientRequest { record, params, .. } = request;
    let introspection = state.authority.introspect(&record.client, &params, state.now()).await?;
    Ok(no_store_json(introspection))
}
