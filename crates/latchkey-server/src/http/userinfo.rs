//! `/userinfo` (OIDC Core §5.3), GET or POST with a bearer access token (RFC 6750 §2.1).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use latchkey::oauth::{ErrorCode, OAuthError};

use super::AppState;
use super::error::bearer_error;
use crate::startup::unix_now;

/// GET or POST /userinfo.
pub(super) async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let token = match bearer(&headers) {
        Ok(Some(token)) => token,
        Ok(None) => return bearer_error(None, "openid"),
        Err(error) => return bearer_error(Some(error.into()), "openid"),
    };
    match state.authority.userinfo(token, unix_now()).await {
        Ok(claims) => {
            let mut response = Json(claims).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
            response
        }
        Err(failure) => bearer_error(Some(failure), "openid"),
    }
}

/// The token of `Authorization: Bearer <token>` (the scheme is case-insensitive).
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, OAuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "the request has two Authorization headers: send one",
        ));
    }
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
