//! Error responses of the JSON endpoints (RFC 6749 §5.2) and of bearer-protected ones
//! (RFC 6750 §3).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey::authority::{BUSY_RETRY_AFTER_SECS, Failure, Throttled};
use latchkey::oauth::{ErrorCode, OAuthError};
use serde_json::json;

/// A token-endpoint style error: JSON body, no caching; 401 with a `WWW-Authenticate`
/// challenge for failed client authentication; internal errors logged, never described.
pub(crate) fn json_error(failure: Failure) -> Response {
    let error = match failure {
        Failure::OAuth(error) => error,
        Failure::Internal(internal) => {
            tracing::error!(error = %internal, "request failed");
            OAuthError::new(ErrorCode::ServerError, "the server failed to handle the request")
        }
        Failure::Busy => busy_error(),
        Failure::Throttled { what, retry_after } => return throttled(what, retry_after),
    };
    let status = match error.code {
        ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let body = json!({ "error": error.code.as_str(), "error_description": error.description });
    let mut response = (status, Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    if status == StatusCode::UNAUTHORIZED {
        headers
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"latchkey\""));
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(BUSY_RETRY_AFTER_SECS));
    }
    response
}

/// 429 with `Retry-After`: the attempt was refused by its schedule without being checked.
fn throttled(what: Throttled, retry_after: i64) -> Response {
    let (code, whose) = match what {
        Throttled::Account => (ErrorCode::InvalidGrant, "this account"),
        Throttled::Client => (ErrorCode::InvalidClient, "this client"),
        Throttled::Address => (ErrorCode::InvalidRequest, "your address"),
    };
    let body = json!({
        "error": code.as_str(),
        "error_description": format!("too many failed attempts for {whose}: retry in {retry_after} s"),
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

fn busy_error() -> OAuthError {
    OAuthError::new(
        ErrorCode::TemporarilyUnavailable,
        format!(
            "too many password checks are waiting right now; retry in {BUSY_RETRY_AFTER_SECS} s"
        ),
    )
}

/// A bearer-token error (RFC 6750 §3): a bare challenge when no token came, else the code,
/// a description, and for `insufficient_scope` the scope needed.
pub(crate) fn bearer_error(failure: Option<Failure>, needed_scope: &str) -> Response {
    let Some(failure) = failure else {
        return challenge(StatusCode::UNAUTHORIZED, "Bearer realm=\"latchkey\"".into());
    };
    let error = match failure {
        Failure::OAuth(error) => error,
        Failure::Internal(internal) => {
            tracing::error!(error = %internal, "bearer request failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response();
        }
        failure @ (Failure::Busy | Failure::Throttled { .. }) => return json_error(failure),
    };
    let description = error.description.replace(['"', '\\'], "'");
    let (status, value) = match error.code {
        ErrorCode::InsufficientScope => (
            StatusCode::FORBIDDEN,
            format!(
                "Bearer realm=\"latchkey\", error=\"insufficient_scope\", error_description=\"{description}\", scope=\"{needed_scope}\""
            ),
        ),
        ErrorCode::InvalidRequest => (
            StatusCode::BAD_REQUEST,
            format!(
                "Bearer realm=\"latchkey\", error=\"invalid_request\", error_description=\"{description}\""
            ),
        ),
        _ => (
            StatusCode::UNAUTHORIZED,
            format!(
                "Bearer realm=\"latchkey\", error=\"invalid_token\", error_description=\"{description}\""
            ),
        ),
    };
    challenge(status, value)
}

fn challenge(status: StatusCode, value: String) -> Response {
    let mut response = status.into_response();
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
