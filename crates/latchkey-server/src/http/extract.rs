//! Extractors shared by several endpoints.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use latchkey::model::ClientRecord;
use latchkey::oauth::{ErrorCode, OAuthError, Params, client_auth};

use super::AppState;
use super::error::HttpError;
use super::source::Source;

/// A form-encoded POST from an authenticated client, as the token, introspection and
/// revocation endpoints take it (RFC 6749 §2.3, §3.2): parameters in the body only, and the
/// client authenticated with its one registered method.
pub(crate) struct ClientRequest {
    /// The authenticated client's registration.
    pub(crate) record: Arc<ClientRecord>,
    /// The form, credentials included.
    pub(crate) params: Params,
    /// Who sent it, for security events.
    pub(crate) caller: latchkey::audit::Caller,
}

impl FromRequest<AppState> for ClientRequest {
    /// An [`HttpError`], or the body extractor's own answer (413 for a body over the limit).
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let Ok(source) = Source::from_request_parts(&mut parts, state).await;
        let in_query = parts.uri.query().is_some_and(|query| !query.is_empty());
        let headers = std::mem::take(&mut parts.headers);
        let caller = super::source::caller(source, &headers);
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let authenticated = async {
            let params = form_params(&headers, in_query, &body)?;
            let presented = client_auth::presented(authorization(&headers)?, &params)?;
            let now = state.now();
            let record = state.authority.authenticate_client(&presented, source.0, now).await?;
            Ok::<_, HttpError>(ClientRequest { record, params, caller: caller.clone() })
        };
        latchkey::audit::with_caller(caller.clone(), authenticated)
            .await
            .map_err(IntoResponse::into_response)
    }
}

fn invalid(description: &str) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidRequest, description)
}

/// The request's `Authorization` header, if any; two are refused (one credential per request).
pub(crate) fn one_authorization(headers: &HeaderMap) -> Result<Option<&HeaderValue>, OAuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(invalid("the request has two Authorization headers: send one"));
    }
    Ok(first)
}

/// The one `Authorization` header value of a client request, as text.
fn authorization(headers: &HeaderMap) -> Result<Option<&str>, OAuthError> {
    one_authorization(headers)?
        .map(|value| {
            value.to_str().map_err(|_| {
                OAuthError::new(
                    ErrorCode::InvalidClient,
                    "the Authorization header is not valid text",
                )
            })
        })
        .transpose()
}

/// Parses a form body, refusing other content types and query-string parameters (credentials
/// in URLs end up in logs and histories).
pub(crate) fn form_params(
    headers: &HeaderMap,
    in_query: bool,
    body: &[u8],
) -> Result<Params, OAuthError> {
    if in_query {
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
    Params::from_form(text)
}
