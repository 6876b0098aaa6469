//! [`HttpError`]: every error answer of the HTTP edge, with one `IntoResponse`.
//!
//! - JSON errors of the token, introspection and revocation endpoints (RFC 6749 §5.2): no
//!   caching, 401 with a `WWW-Authenticate` challenge for failed client authentication, 429 and
//!   503 with `Retry-After`.
//! - Bearer errors of `/userinfo` (RFC 6750 §3).
//! - Error pages for requests that must not be redirected, and redirects to a client's
//!   verified redirect URI.
//! - Internal errors: a generic answer; the cause rides in a response extension that
//!   [`log_internal_errors`] logs, once, with the request's method and path. Nothing else logs
//!   them, and no cause ever reaches the client.

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use latchkey::authority::{BUSY_RETRY_AFTER_SECS, Failure, Throttled};
use latchkey::oauth::{ErrorCode, OAuthError};
use serde_json::json;

use super::pages;

/// An error answer.
#[derive(Debug)]
pub(crate) enum HttpError {
    /// A token-endpoint style error (RFC 6749 §5.2).
    Json(Failure),
    /// A bearer-protected endpoint's error (RFC 6750 §3); `None` when no token came at all.
    Bearer {
        /// What failed.
        failure: Option<Failure>,
        /// The scope the endpoint needs, named in an `insufficient_scope` challenge.
        scope: &'static str,
    },
    /// A 400 page for the user: the request must not be sent back to the client.
    Page {
        /// The page's heading.
        title: &'static str,
        /// What went wrong and what to do.
        message: String,
    },
    /// 303 to a client's verified redirect URI, carrying the error (RFC 6749 §4.1.2.1).
    Redirect(String),
    /// The server failed; the cause is logged, never sent.
    Internal(String),
}

impl HttpError {
    /// An internal failure with its cause.
    pub(crate) fn internal(cause: impl std::fmt::Display) -> Self {
        HttpError::Internal(cause.to_string())
    }
}

/// The cause of an internal error, for [`log_internal_errors`].
#[derive(Debug, Clone)]
struct InternalCause(String);

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        match self {
            HttpError::Json(failure) => json_error(failure),
            HttpError::Bearer { failure, scope } => bearer_error(failure, scope),
            HttpError::Page { title, message } => pages::error_page(title, &message),
            HttpError::Redirect(location) => pages::redirect(&location, &[]),
            HttpError::Internal(cause) => internal(cause),
        }
    }
}

impl From<Failure> for HttpError {
    fn from(failure: Failure) -> Self {
        HttpError::Json(failure)
    }
}

impl From<OAuthError> for HttpError {
    fn from(error: OAuthError) -> Self {
        HttpError::Json(error.into())
    }
}

/// Logs the cause of every internal error answered below this layer.
pub(crate) async fn log_internal_errors(request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let response = next.run(request).await;
    if let Some(InternalCause(cause)) = response.extensions().get::<InternalCause>() {
        tracing::error!(%method, path, error = %cause, "request failed");
    }
    response
}

fn internal(cause: String) -> Response {
    let mut response = (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.extensions_mut().insert(InternalCause(cause));
    response
}

/// The OAuth error code an error response carries, for the metrics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SentError(pub(crate) ErrorCode);

fn json_error(failure: Failure) -> Response {
    let (error, cause) = match failure {
        Failure::OAuth(error) => (error, None),
        Failure::Internal(internal) => (
            OAuthError::new(ErrorCode::ServerError, "the server failed to handle the request"),
            Some(internal.to_string()),
        ),
        Failure::Busy => (busy_error(), None),
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
    if let Some(cause) = cause {
        response.extensions_mut().insert(InternalCause(cause));
    }
    response.extensions_mut().insert(SentError(error.code));
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
    response.extensions_mut().insert(SentError(code));
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

/// A bare challenge when no token came, else the code, a description, and for
/// `insufficient_scope` the scope needed (RFC 6750 §3).
fn bearer_error(failure: Option<Failure>, needed_scope: &str) -> Response {
    let Some(failure) = failure else {
        return challenge(StatusCode::UNAUTHORIZED, "Bearer realm=\"latchkey\"".into());
    };
    let error = match failure {
        Failure::OAuth(error) => error,
        Failure::Internal(cause) => return internal(cause.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn an_internal_error_keeps_its_cause_from_the_client() {
        let response = HttpError::internal("database password is hunter2").into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.extensions().get::<InternalCause>().is_some(), "for the log");
        assert_eq!(body(response).await, "internal error\n");

        let store = latchkey::store::Error::Backend("hunter2".into());
        let failure = Failure::Internal(latchkey::authority::Internal::Store(store));
        let response = HttpError::Json(failure).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.extensions().get::<InternalCause>().is_some(), "for the log");
        let text = body(response).await;
        assert!(text.contains("server_error") && !text.contains("hunter2"), "{text}");
    }

    #[tokio::test]
    async fn failed_client_authentication_is_401_with_a_basic_challenge() {
        let error = OAuthError::new(ErrorCode::InvalidClient, "wrong secret");
        let response = HttpError::from(error).into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Basic realm=\"latchkey\"");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    }
}
