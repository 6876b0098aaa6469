//! `/oauth/token` (RFC 6749 §3.2): form-encoded POST only, client authenticated first.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use latchkey::authority::Failure;
use latchkey::model::Client;
use latchkey::oauth::{ErrorCode, OAuthError, Params, client_auth};

use super::AppState;
use super::error::json_error;
use super::source::Source;

/// Parses a form body, refusing other content types and query-string parameters (credentials
/// in URLs end up in logs and histories).
pub(crate) fn form_params(
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<Params, Failure> {
    let invalid =
        |description: &str| Failure::from(OAuthError::new(ErrorCode::InvalidRequest, description));
    if query.is_some_and(|q| !q.is_empty()) {
        return Err(invalid(
            "parameters in the query string are refused: send them in a form-encoded POST body",
        ));
    }
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(invalid("the body must be application/x-www-form-urlencoded"));
    }
    let text = std::str::from_utf8(body).map_err(|_| invalid("the body is not valid UTF-8"))?;
    Ok(Params::from_form(text)?)
}

/// POST /oauth/token.
pub(super) async fn token(
    State(state): State<AppState>,
    source: Source,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    match exchange(&state, source, &headers, query.as_deref(), &body).await {
        Ok(response) => no_store_json(response),
        Err(failure) => json_error(failure),
    }
}

async fn exchange(
    state: &AppState,
    source: Source,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<latchkey::oauth::token::TokenResponse, Failure> {
    let (client, params) = authenticated(state, source, headers, query, body).await?;
    let response = state.authority.token(&client, &params, source.0, state.now()).await?;
    // The grant type is one of the four known ones here: the request succeeded.
    let grant_type = params.get("grant_type").ok().flatten().unwrap_or("").to_owned();
    metrics::counter!("latchkey_tokens_issued_total", "grant_type" => grant_type).increment(1);
    Ok(response)
}

/// The form of a client request to the token, introspection or revocation endpoint, and the
/// client it authenticated as.
pub(super) async fn authenticated(
    state: &AppState,
    source: Source,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<(Client, Params), Failure> {
    let params = form_params(headers, query, body)?;
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "the request has two Authorization headers: send one",
        )
        .into());
    }
    let authorization = match first {
        None => None,
        Some(value) => Some(value.to_str().map_err(|_| {
            OAuthError::new(ErrorCode::InvalidClient, "the Authorization header is not valid text")
        })?),
    };
    let presented = client_auth::presented(authorization, &params)?;
    let client = state.authority.authenticate_client(&presented, source.0, state.now()).await?;
    Ok((client, params))
}

/// A JSON answer that must not be cached (RFC 6749 §5.1, RFC 7662 §2.2).
pub(super) fn no_store_json(value: impl serde::Serialize) -> Response {
    let mut response = Json(value).into_response();
    let out = response.headers_mut();
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    out.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
