//! `/authorize` (RFC 6749 §4.1.1, OIDC Core §3.1.2) and the login and consent pages that
//! continue it.
//!
//! The original request travels through the pages as one hidden field and is validated again
//! at every step, so any node can serve any step and nothing is trusted from the form but the
//! user's own answers.

// Helpers here return the finished error `Response` as their `Err`, the axum idiom for an
// early exit; boxing it would only add noise.
#![allow(clippy::result_large_err)]

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey::authority::{BUSY_RETRY_AFTER_SECS, Failure, Login};
use latchkey::model::Session;
use latchkey::oauth::authorize::{self, AuthorizationRequest, Decision, Progress, RequestError};
use latchkey::oauth::scope::Scopes;
use latchkey::oauth::{ErrorCode, OAuthError, Params};
use latchkey::{secret, throttle};

use super::pages::{self, ConsentPage, LoginPage};
use super::session::{CSRF_COOKIE, SESSION_COOKIE, cookie, set_cookie};
use super::source::Source;
use super::{AppState, paths};
use crate::startup::unix_now;

/// How recent a login must be to satisfy `prompt=login` when the user then consents.
const FRESH_LOGIN_SECS: i64 = 300;

/// GET /authorize: the request is the query string.
pub(super) async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    start(&state, &headers, query.unwrap_or_default()).await
}

/// POST /authorize: the request is the form body (OIDC Core §3.1.2.1).
pub(super) async fn post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match String::from_utf8(body.to_vec()) {
        Ok(body) => start(&state, &headers, body).await,
        Err(_) => pages::error_page("Malformed request", "The request is not valid UTF-8."),
    }
}

/// GET /login and /consent: only reachable through an authorization request.
pub(super) async fn page_without_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let form = parse(query.as_deref().unwrap_or(""));
    match form.ok().and_then(|f| f.get("request").ok().flatten().map(str::to_owned)) {
        Some(request) => start(&state, &headers, request).await,
        None => pages::error_page(
            "Nothing to sign in to",
            "This page is opened by an application's sign-in link. Go back to the application and start there.",
        ),
    }
}

async fn start(state: &AppState, headers: &HeaderMap, raw: String) -> Response {
    let now = unix_now();
    let request = match load_request(state, &raw).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    let client_id = &request.client.client_id;
    let (session, consented) = match cookie(headers, SESSION_COOKIE) {
        None => (None, None),
        Some(value) => match state.authority.session_and_consent(value, client_id, now).await {
            Ok(Some((session, consented))) => (Some(session), consented),
            Ok(None) => (None, None),
            Err(failure) => return internal(failure),
        },
    };
    Flow {
        state,
        headers,
        raw,
        request,
        session,
        consented,
        fresh_login: false,
        fresh_consent: false,
        cookies: Vec::new(),
    }
    .next(now)
    .await
}

/// POST /login.
pub(super) async fn login(
    State(state): State<AppState>,
    Source(from): Source,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Validate the request before touching credentials: a bad one never reaches the login.
    let (form, raw, request) = match submission(&state, &headers, &body).await {
        Ok(submitted) => submitted,
        Err(response) => return response,
    };
    let username = form.get("username").ok().flatten().unwrap_or("").trim().to_owned();
    let password = form.get("password").ok().flatten().unwrap_or("").to_owned();
    let now = unix_now();
    if username.is_empty()
        || password.is_empty()
        || username.len() > throttle::MAX_USERNAME_BYTES
        || password.len() > throttle::MAX_PASSWORD_BYTES
    {
        return login_page(
            &state,
            &headers,
            &raw,
            &request,
            &username,
            Some("Enter your username and password."),
            Vec::new(),
        );
    }
    match state.authority.login(&username, &password, from, now).await {
        Ok(Login::Success { session, cookie }) => {
            let client_id = &request.client.client_id;
            let consented = match state.authority.consented(&session.user_id, client_id).await {
                Ok(consented) => consented,
                Err(failure) => return internal(failure),
            };
            let secure = state.secure_cookies();
            let ttl = state.authority.settings.session_ttl;
            let cookies = vec![set_cookie(SESSION_COOKIE, &cookie, secure, Some(ttl))];
            Flow {
                state: &state,
                headers: &headers,
                raw,
                request,
                session: Some(session),
                consented,
                fresh_login: true,
                fresh_consent: false,
                cookies,
            }
            .next(now)
            .await
        }
        Ok(Login::Failed) => login_page(
            &state,
            &headers,
            &raw,
            &request,
            &username,
            Some("Wrong username or password."),
            Vec::new(),
        ),
        Err(Failure::Throttled { retry_after, .. }) => {
            let message = format!(
                "Too many sign-in attempts for this account. Try again in {retry_after} seconds."
            );
            let page =
                login_page(&state, &headers, &raw, &request, &username, Some(&message), Vec::new());
            retry_later(page, StatusCode::TOO_MANY_REQUESTS, retry_after)
        }
        Err(Failure::Busy) => {
            let message = "Too many sign-in attempts right now. Try again in a moment.";
            let page =
                login_page(&state, &headers, &raw, &request, &username, Some(message), Vec::new());
            retry_later(page, StatusCode::SERVICE_UNAVAILABLE, BUSY_RETRY_AFTER_SECS)
        }
        Err(failure) => internal(failure),
    }
}

/// The login page as an answer that says when to try again.
fn retry_later(
    mut page: Response,
    status: StatusCode,
    seconds: impl Into<header::HeaderValue>,
) -> Response {
    *page.status_mut() = status;
    page.headers_mut().insert(header::RETRY_AFTER, seconds.into());
    page
}

/// POST /consent.
pub(super) async fn consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (form, raw, request) = match submission(&state, &headers, &body).await {
        Ok(submitted) => submitted,
        Err(response) => return response,
    };
    let now = unix_now();
    let session = match current_session(&state, &headers, now).await {
        Ok(Some(session)) => session,
        Ok(None) => {
            return Flow {
                state: &state,
                headers: &headers,
                raw,
                request,
                session: None,
                consented: None,
                fresh_login: false,
                fresh_consent: false,
                cookies: Vec::new(),
            }
            .next(now)
            .await;
        }
        Err(response) => return response,
    };
    match form.get("decision").ok().flatten() {
        Some("allow") => {}
        Some("deny") => {
            let error = OAuthError::new(ErrorCode::AccessDenied, "the user denied access");
            return redirect_error(&state, &request.redirect_uri, request.state.as_deref(), &error);
        }
        _ => return pages::error_page("Malformed request", "Choose Allow or Deny."),
    }
    if let Err(failure) = state.authority.remember_consent(&session.user_id, &request, now).await {
        return internal(failure);
    }
    let fresh_login = now - session.auth_time <= FRESH_LOGIN_SECS;
    Flow {
        state: &state,
        headers: &headers,
        raw,
        request,
        session: Some(session),
        consented: None,
        fresh_login,
        fresh_consent: true,
        cookies: Vec::new(),
    }
    .next(now)
    .await
}

/// One step of the flow for a validated request and the user's progress through it.
struct Flow<'a> {
    state: &'a AppState,
    headers: &'a HeaderMap,
    raw: String,
    request: AuthorizationRequest,
    session: Option<Session>,
    /// The scopes the session's user already approved for the client.
    consented: Option<Scopes>,
    fresh_login: bool,
    fresh_consent: bool,
    cookies: Vec<String>,
}

impl Flow<'_> {
    async fn next(self, now: i64) -> Response {
        let Flow {
            state,
            headers,
            raw,
            request,
            session,
            consented,
            fresh_login,
            fresh_consent,
            cookies,
        } = self;
        let progress = Progress { session: session.as_ref(), fresh_login, fresh_consent };
        match authorize::decide(&request, progress, consented.as_ref(), now) {
            Decision::NeedsLogin => {
                let hint = request.login_hint.clone().unwrap_or_default();
                login_page(state, headers, &raw, &request, &hint, None, cookies)
            }
            Decision::NeedsConsent => {
                let Some(session) = session else {
                    return internal_message("consent without a session");
                };
                consent_page(state, headers, &raw, &request, &session, cookies).await
            }
            Decision::Refused(error) => {
                redirect_error(state, &request.redirect_uri, request.state.as_deref(), &error)
            }
            Decision::Approved => {
                let Some(session) = session else {
                    return internal_message("approval without a session");
                };
                match state.authority.issue_code(&request, &session, now).await {
                    Ok(code) => {
                        let mut pairs = vec![("code", code.as_str())];
                        if let Some(s) = request.state.as_deref() {
                            pairs.push(("state", s));
                        }
                        // RFC 9207: the issuer travels with the response so the client can tell
                        // which server answered (mix-up defence).
                        pairs.push(("iss", state.config.issuer.as_str()));
                        redirect(&authorize::redirect_with(&request.redirect_uri, &pairs), &cookies)
                    }
                    Err(failure) => internal(failure),
                }
            }
        }
    }
}

fn parse(raw: &str) -> Result<Params, ()> {
    Params::from_form(raw).map_err(drop)
}

/// Parses and validates the authorization request; a failure is already the response.
async fn load_request(state: &AppState, raw: &str) -> Result<AuthorizationRequest, Response> {
    let params = Params::from_form(raw).map_err(|error| {
        pages::error_page(
            "Malformed request",
            &format!("The authorization request could not be read: {}.", error.description),
        )
    })?;
    let outcome = match authorize::client_id(&params) {
        Err(error) => Err(error),
        Ok(client_id) => match state.authority.client(client_id).await {
            Ok(record) => authorize::validate(
                &params,
                record.map(|r| r.client.clone()),
                &state.authority.settings.resources,
            ),
            Err(failure) => return Err(internal(failure)),
        },
    };
    outcome.map_err(|error| match error {
        RequestError::NoRedirect(message) => {
            pages::error_page("This sign-in link is not valid", &message)
        }
        RequestError::Redirect { redirect_uri, state: client_state, error } => {
            redirect_error(state, &redirect_uri, client_state.as_deref(), &error)
        }
    })
}

async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
    now: i64,
) -> Result<Option<Session>, Response> {
    match cookie(headers, SESSION_COOKIE) {
        None => Ok(None),
        Some(value) => state.authority.session(value, now).await.map_err(internal),
    }
}

/// A login or consent submission: the form after the anti-CSRF check, the original request
/// it carries, and that request validated again.
async fn submission(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Params, String, AuthorizationRequest), Response> {
    let form = form_with_csrf(headers, body)?;
    let raw = form.get("request").ok().flatten().unwrap_or("").to_owned();
    let request = load_request(state, &raw).await?;
    Ok((form, raw, request))
}

/// The form of a page submission, after the anti-CSRF check.
fn form_with_csrf(headers: &HeaderMap, body: &[u8]) -> Result<Params, Response> {
    let form = std::str::from_utf8(body)
        .ok()
        .and_then(|text| parse(text).ok())
        .ok_or_else(|| pages::error_page("Malformed request", "The form could not be read."))?;
    let submitted = form.get("csrf_token").ok().flatten();
    let expected = cookie(headers, CSRF_COOKIE);
    match (submitted, expected) {
        (Some(submitted), Some(expected))
            if secret::constant_time_eq(submitted.as_bytes(), expected.as_bytes()) =>
        {
            Ok(form)
        }
        _ => Err(pages::error_page(
            "This form has expired",
            "The form was not sent from this page, or your browser blocked its cookie. Go back to the application and sign in again.",
        )),
    }
}

/// The CSRF token of the browser, and the cookie to set when it has none yet.
fn csrf_token(state: &AppState, headers: &HeaderMap, cookies: &mut Vec<String>) -> Option<String> {
    if let Some(existing) = cookie(headers, CSRF_COOKIE) {
        return Some(existing.to_owned());
    }
    let token = secret::generate().ok()?;
    cookies.push(set_cookie(CSRF_COOKIE, &token, state.secure_cookies(), None));
    Some(token)
}

fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    raw: &str,
    request: &AuthorizationRequest,
    username: &str,
    error: Option<&str>,
    mut cookies: Vec<String>,
) -> Response {
    let Some(csrf) = csrf_token(state, headers, &mut cookies) else {
        return internal_message("no randomness");
    };
    let client_name = request.client.client_name.as_deref().unwrap_or(&request.client.client_id);
    let status = if error.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
    let page = LoginPage {
        action: paths::LOGIN,
        client_name,
        csrf_token: &csrf,
        request: raw,
        username,
        error,
    };
    pages::page(status, &page, &cookies)
}

async fn consent_page(
    state: &AppState,
    headers: &HeaderMap,
    raw: &str,
    request: &AuthorizationRequest,
    session: &Session,
    mut cookies: Vec<String>,
) -> Response {
    let user = match state.store.user_by_id(&session.user_id).await {
        Ok(Some(user)) => user,
        Ok(None) => return internal_message("session of a removed user"),
        Err(error) => return internal(Failure::from(error)),
    };
    let Some(csrf) = csrf_token(state, headers, &mut cookies) else {
        return internal_message("no randomness");
    };
    let resources = &state.authority.settings.resources;
    let scopes =
        request.target.scopes.iter().map(|s| pages::describe_scope(s, resources)).collect();
    let client_name = request.client.client_name.as_deref().unwrap_or(&request.client.client_id);
    let page = ConsentPage {
        action: paths::CONSENT,
        client_name,
        username: &user.username,
        scopes,
        csrf_token: &csrf,
        request: raw,
    };
    pages::page(StatusCode::OK, &page, &cookies)
}

/// 303 See Other: the browser follows with GET and drops the form body (RFC 9700 §4.11).
fn redirect(location: &str, cookies: &[String]) -> Response {
    let mut response =
        (StatusCode::SEE_OTHER, [(header::LOCATION, location.to_owned())]).into_response();
    for cookie in cookies {
        if let Ok(value) = cookie.parse() {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}

fn redirect_error(
    state: &AppState,
    redirect_uri: &str,
    client_state: Option<&str>,
    error: &OAuthError,
) -> Response {
    redirect(
        &authorize::error_redirect(redirect_uri, client_state, error, &state.config.issuer),
        &[],
    )
}

fn internal(failure: Failure) -> Response {
    tracing::error!(error = %failure, "authorization step failed");
    internal_message("see the server log")
}

fn internal_message(context: &str) -> Response {
    tracing::error!(context, "authorization step failed");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error: the server could not finish this step\n")
        .into_response()
}
