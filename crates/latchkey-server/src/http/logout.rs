//! `/logout` (OpenID Connect RP-Initiated Logout 1.0, the `end_session_endpoint`).
//!
//! With a valid `id_token_hint` for the signed-in user the session ends at once; otherwise the
//! user confirms on a page first, so another site cannot sign people out with a link.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey::oauth::Params;
use latchkey::oauth::authorize::redirect_with;
use latchkey::oidc::logout::LogoutRequest;
use latchkey::secret;

use super::pages::{self, LogoutPage, MessagePage};
use super::session::{CSRF_COOKIE, SESSION_COOKIE, cookie, set_cookie};
use super::{AppState, paths};
use crate::startup::unix_now;

/// GET /logout.
pub(super) async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    handle(&state, &headers, query.unwrap_or_default(), false).await
}

/// POST /logout: logout parameters from an RP, or the user's confirmation.
pub(super) async fn post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = std::str::from_utf8(&body).ok().and_then(parse) else {
        return pages::error_page("Malformed request", "The logout form could not be read.");
    };
    // The confirmation form carries csrf_token and the original request (possibly empty).
    match (form.get("csrf_token").ok().flatten(), form.get("request").ok().map(|r| r.unwrap_or("")))
    {
        (Some(submitted), Some(request)) => {
            let expected = cookie(&headers, CSRF_COOKIE).unwrap_or("");
            if !secret::constant_time_eq(submitted.as_bytes(), expected.as_bytes()) {
                return pages::error_page("This form has expired", "Open the sign-out link again.");
            }
            handle(&state, &headers, request.to_owned(), true).await
        }
        _ => handle(&state, &headers, String::from_utf8_lossy(&body).into_owned(), false).await,
    }
}

fn parse(raw: &str) -> Option<Params> {
    Params::from_form(raw).ok()
}

async fn handle(state: &AppState, headers: &HeaderMap, raw: String, confirmed: bool) -> Response {
    let Some(params) = parse(&raw) else {
        return pages::error_page("Malformed request", "The logout request could not be read.");
    };
    let request = match state.authority.logout_request(&params).await {
        Ok(request) => request,
        Err(Ok(message)) => return pages::error_page("This sign-out link is not valid", &message),
        Err(Err(failure)) => {
            tracing::error!(error = %failure, "logout failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response();
        }
    };
    let now = unix_now();
    let session = match cookie(headers, SESSION_COOKIE) {
        Some(value) => state.authority.session(value, now).await.ok().flatten(),
        None => None,
    };
    let Some(session) = session else { return finish(&request) };
    let hinted = request.hinted_subject.as_deref() == Some(session.user_id.as_str());
    if !(hinted || confirmed) {
        let mut cookies = Vec::new();
        let csrf = match cookie(headers, CSRF_COOKIE) {
            Some(existing) => existing.to_owned(),
            None => match secret::generate() {
                Ok(token) => {
                    cookies.push(set_cookie(CSRF_COOKIE, &token, state.secure_cookies(), None));
                    token
                }
                Err(_) => {
                    return (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response();
                }
            },
        };
        let page = LogoutPage {
            action: paths::LOGOUT,
            message: "Do you want to sign out of this browser? Applications you signed in to will need you to sign in again.",
            csrf_token: &csrf,
            request: &raw,
        };
        return pages::page(StatusCode::OK, &page, &cookies);
    }
    if let Err(failure) = state.authority.logout(&session.id_hash, now).await {
        tracing::error!(error = %failure, "logout failed");
        return (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response();
    }
    let mut response = finish(&request);
    if let Ok(value) = set_cookie(SESSION_COOKIE, "", state.secure_cookies(), Some(0)).parse() {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

fn finish(request: &LogoutRequest) -> Response {
    match &request.post_logout_redirect_uri {
        Some(uri) => {
            let pairs: Vec<(&str, &str)> =
                request.state.as_deref().map(|s| ("state", s)).into_iter().collect();
            let location = redirect_with(uri, &pairs);
            (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, location), (header::CACHE_CONTROL, "no-store".to_owned())],
            )
                .into_response()
        }
        None => pages::page(
            StatusCode::OK,
            &MessagePage { title: "You are signed out", message: "You can close this window." },
            &[],
        ),
    }
}
