//! `/logout` (OpenID Connect RP-Initiated Logout 1.0, the `end_session_endpoint`).
//!
//! With a live `id_token_hint` the session that issued it ends at once (found by the hint's
//! `sid`, so also when the RP's cross-site POST arrives without cookies); otherwise the user
//! confirms on a page first, so another site cannot sign people out with a link.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey::forms::{Binding, Purpose};
use latchkey::model::Session;
use latchkey::oauth::Params;
use latchkey::oauth::authorize::redirect_with;
use latchkey::oidc::logout::LogoutRequest;

use super::csrf::{self, Bound};
use super::error::HttpError;
use super::pages::{self, LogoutPage, MessagePage};
use super::session::{Browser, cookie, set_cookie};
use super::{AppState, paths};

/// GET /logout.
pub(super) async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    handle(&state, &headers, query.unwrap_or_default(), Via::Get).await
}

/// POST /logout: logout parameters from an RP, or the user's confirmation.
pub(super) async fn post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HttpError> {
    let Some(form) = std::str::from_utf8(&body).ok().and_then(parse) else {
        return Err(malformed("The logout form could not be read."));
    };
    // The confirmation form carries csrf_token and the original request (possibly empty).
    match (form.get("csrf_token").ok().flatten(), form.get("request").ok().map(|r| r.unwrap_or("")))
    {
        (Some(_), Some(request)) => {
            let checked =
                csrf::check(&state, &headers, &form, Purpose::Logout, Bound::ToBrowser, request);
            if let Err(expired) = checked.await {
                return Ok(expired.into_response());
            }
            handle(&state, &headers, request.to_owned(), Via::Confirmation).await
        }
        _ => {
            let raw = String::from_utf8_lossy(&body).into_owned();
            handle(&state, &headers, raw, Via::Post).await
        }
    }
}

/// How a logout request arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// A link or redirect: the browser sends its SameSite=Lax cookies.
    Get,
    /// A form posted by the RP: cross-site, so the cookies may be withheld.
    Post,
    /// The user confirmed on this server's own page.
    Confirmation,
}

fn parse(raw: &str) -> Option<Params> {
    Params::from_form(raw).ok()
}

fn malformed(message: &str) -> HttpError {
    HttpError::Page { title: "Malformed request", message: message.to_owned() }
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    raw: String,
    via: Via,
) -> Result<Response, HttpError> {
    let Some(params) = parse(&raw) else {
        return Err(malformed("The logout request could not be read."));
    };
    let request = match state.authority.logout_request(&params).await {
        Ok(request) => request,
        Err(Ok(message)) => {
            return Err(HttpError::Page { title: "This sign-out link is not valid", message });
        }
        Err(Err(failure)) => return Err(HttpError::internal(failure)),
    };
    let now = state.now();
    let names = state.cookie_names();
    let session = match cookie(headers, names.session) {
        Some(value) => state.authority.session(value, now).await.ok().flatten(),
        None => None,
    };
    let Ended { mut session, mut ended, hinted } =
        end_hinted(state, &request, session, now).await?;
    let withheld = via == Via::Post
        && cookie(headers, names.session).is_none()
        && cookie(headers, names.browser).is_none();
    let ask = match &session {
        Some(_) => via != Via::Confirmation,
        // Cookies may have been withheld from a cross-site POST and no hint's `sid` named the
        // session (none came, it expired, or its id_token has no `sid`): ask, and the
        // confirmation, posted from this server's own page, carries them.
        None => withheld && !ended && !hinted,
    };
    if ask {
        return Ok(confirmation(state, headers, &raw));
    }
    if let Some(session) = session.take() {
        state.authority.logout(&session.id_hash, now).await.map_err(HttpError::internal)?;
        ended = true;
    }
    let mut response = finish(&request);
    if ended
        && let Ok(value) = set_cookie(names.session, "", state.secure_cookies(), Some(0)).parse()
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// What a live hint ended.
struct Ended {
    /// This browser's session, when it is still live.
    session: Option<Session>,
    /// This browser's session ended (clear its cookie).
    ended: bool,
    /// The session that issued the hint ended.
    hinted: bool,
}

/// A live id_token_hint ends the session that issued it (its `sid`), with or without the
/// cookie: an RP's cross-site POST does not carry SameSite=Lax cookies, and a logout that
/// ended nothing would leave the next person at this browser signed in. An expired hint
/// proves no recent sign-in, so it only names the client (the user confirms).
async fn end_hinted(
    state: &AppState,
    request: &LogoutRequest,
    session: Option<Session>,
    now: i64,
) -> Result<Ended, HttpError> {
    let Some(hint) = request.hint.as_ref().filter(|hint| hint.is_live(now)) else {
        return Ok(Ended { session, ended: false, hinted: false });
    };
    let hinted = state.authority.hinted_session(hint, now).await.map_err(HttpError::internal)?;
    let same_user = session.as_ref().filter(|s| s.user_id == hint.sub);
    for target in hinted.iter().chain(same_user) {
        state.authority.logout(&target.id_hash, now).await.map_err(HttpError::internal)?;
    }
    let ended = same_user.is_some();
    Ok(Ended { session: if ended { None } else { session }, ended, hinted: hinted.is_some() })
}

/// The page that asks the user to confirm; its form is bound to this browser and request.
fn confirmation(state: &AppState, headers: &HeaderMap, raw: &str) -> Response {
    let Ok(browser) = Browser::of(state, headers) else {
        return HttpError::internal("no randomness for a browser id").into_response();
    };
    let binding = Binding { browser: &browser.id, session: None };
    let csrf = state.authority.forms().issue(Purpose::Logout, binding, raw, state.now());
    let page = LogoutPage {
        action: paths::LOGOUT,
        message: "Do you want to sign out of this browser? Applications you signed in to will need you to sign in again.",
        csrf_token: &csrf,
        request: raw,
    };
    let cookies: Vec<String> = browser.set_cookie.into_iter().collect();
    pages::page(StatusCode::OK, &page, &cookies)
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
