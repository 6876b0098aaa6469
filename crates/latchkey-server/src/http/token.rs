//! `/oauth/token` (RFC 6749 §3.2): form-encoded POST only, client authenticated first.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use latchkey::oauth::token::TokenRequest;

use super::AppState;
use super::error::HttpError;
use super::extract::ClientRequest;

/// POST /oauth/token.
pub(super) async fn token(
    State(state): State<AppState>,
    request: ClientRequest,
) -> Result<Response, HttpError> {
    let ClientRequest { record, params, caller } = request;
    let client = &record.client;
    let request = TokenRequest::parse(client, &params)?;
    let from = caller.source;
    let issued = state.authority.token(&record, &request, from, state.now());
    let response = latchkey::audit::with_caller(caller, issued).await?;
    let grant_type = request.grant_type().as_str();
    metrics::counter!("latchkey_tokens_issued_total", "grant_type" => grant_type).increment(1);
    Ok(no_store_json(response))
}

/// A JSON answer that must not be cached (RFC 6749 §5.1, RFC 7662 §2.2).
pub(super) fn no_store_json(value: impl serde::Serialize) -> Response {
    let mut response = Json(value).into_response();
    let out = response.headers_mut();
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    out.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
