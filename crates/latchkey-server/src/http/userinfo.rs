//! `/userinfo` (OIDC Core §5.3), GET or POST with a bearer access token: in the
//! `Authorization` header (RFC 6750 §2.1) or, on a form-encoded POST without that header, as
//! the `access_token` body parameter (§2.2, pyoidc's default). Never in the query (§2.3 allows
//! it, OAuth 2.1 §5.1.1 does not: URLs end up in logs and histories).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use latchkey::authority::Failure;
use latchkey::oauth::{ErrorCode, OAuthError, Params};

use super::AppState;
use super::error::HttpError;
use super::extract::one_authorization;

/// GET or POST /userinfo.
pub(super) async fn userinfo(
    State(state): State<AppState>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HttpError> {
    let bearer = |failure: Option<Failure>| HttpError::Bearer { failure, scope: "openid" };
    let token = match presented_token(&method, query.as_deref(), &headers, &body) {
        Ok(Some(token)) => token,
        Ok(None) => return Err(bearer(None)),
        Err(error) => return Err(bearer(Some(error.into()))),
    };
    let claims =
        state.authority.userinfo(&token, state.now()).await.map_err(|f| bearer(Some(f)))?;
    let mut response = Json(claims).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The one access token of the request, from the header or a form body, never both.
fn presented_token(
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<String>, OAuthError> {
    let invalid = |description: &str| OAuthError::new(ErrorCode::InvalidRequest, description);
    let in_query = query
        .and_then(|q| Params::from_form(q).ok())
        .is_some_and(|params| params.all("access_token").next().is_some());
    if in_query {
        return Err(invalid(
            "the access token may not be sent in the URL query (OAuth 2.1 section 5.1.1): send it as Authorization: Bearer <token>",
        ));
    }
    let header = bearer(headers)?;
    let form = *method == Method::POST
        && headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
            v.trim().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded")
        });
    let in_body = match std::str::from_utf8(body).ok().filter(|_| form) {
        None => None,
        Some(text) => {
            let params = Params::from_form(text)?;
            params.get("access_token")?.map(str::to_owned)
        }
    };
    match (header, in_body) {
        (Some(_), Some(_)) => Err(invalid(
            "the access token came both in the Authorization header and in the body: send it once, in the header (RFC 6750 section 2)",
        )),
        (Some(token), None) => Ok(Some(token.to_owned())),
        (None, body) => Ok(body),
    }
}

/// The token of `Authorization: Bearer <token>` (the scheme is case-insensitive).
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, OAuthError> {
    let Some(value) = one_authorization(headers)? else { return Ok(None) };
    let malformed = || {
        OAuthError::new(
            ErrorCode::InvalidRequest,
            "malformed Authorization header: use Bearer <token>",
        )
    };
    let value = value.to_str().map_err(|_| malformed())?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        Some((scheme, _)) if !scheme.eq_ignore_ascii_case("bearer") => Ok(None),
        _ => Err(malformed()),
    }
}
