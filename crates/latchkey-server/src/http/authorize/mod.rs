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
use latchkey::forms::{Binding, Purpose};
use latchkey::model::Session;
use latchkey::model::scope::Scopes;
use latchkey::oauth::authorize::{self, AuthorizationRequest, Decision, Progress, RequestError};
use latchkey::oauth::{ErrorCode, OAuthError, Params};
use latchkey::throttle;

mod forms;

use forms::{PageContext, expired_form, submission};

use super::AppState;
use super::error::HttpError;
use super::pages;
use super::session::{Browser, cookie, set_cookie};
use super::source::Source;

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
    let now = state.now();
    let request = match load_request(state, &raw).await {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    let Ok(browser) = Browser::of(state, headers) else {
        return internal_message("no randomness");
    };
    let client_id = &request.client.client_id;
    let (session, consented) = match cookie(headers, state.cookie_names().session) {
        None => (None, None),
        Some(value) => match state.authority.session_and_consent(value, client_id, now).await {
            Ok(Some((session, consented))) => (Some(session), consented),
            Ok(None) => (None, None),
            Err(failure) => return internal(failure),
        },
    };
    Flow {
        state,
        raw,
        request,
        session,
        consented,
        browser: browser.id,
        seen_at: now,
        fresh_login: false,
        fresh_consent: false,
        cookies: browser.set_cookie.into_iter().collect(),
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
    let now = state.now();
    // Check the form and the request before touching credentials: a bad one never reaches
    // the login.
    let submitted = match submission(&state, &headers, &body, Purpose::Login, now).await {
        Ok(submitted) => submitted,
        Err(response) => return response,
    };
    let form = &submitted.form;
    let username = form.get("username").ok().flatten().unwrap_or("").trim().to_owned();
    let password = form.get("password").ok().flatten().unwrap_or("").to_owned();
    let again = |message: &str| submitted.login_page(&state, &username, Some(message));
    if username.is_empty()
        || password.is_empty()
        || username.len() > throttle::MAX_USERNAME_BYTES
        || password.len() > throttle::MAX_PASSWORD_BYTES
    {
        return again("Enter your username and password.");
    }
    match state.authority.login(&username, &password, from, now).await {
        Ok(Login::Success { session, cookie }) => {
            let client_id = &submitted.request.client.client_id;
            let consented = match state.authority.consented(&session.user_id, client_id).await {
                Ok(consented) => consented,
                Err(failure) => return internal(failure),
            };
            // A new browser id: the forms shown before this login stop working.
            let Ok(browser) = Browser::fresh(&state) else {
                return internal_message("no randomness");
            };
            let secure = state.secure_cookies();
            let ttl = state.authority.settings.session_ttl;
            let mut cookies =
                vec![set_cookie(state.cookie_names().session, &cookie, secure, Some(ttl))];
            cookies.extend(browser.set_cookie);
            Flow {
                state: &state,
                raw: submitted.raw,
                request: submitted.request,
                session: Some(session),
                consented,
                browser: browser.id,
                seen_at: submitted.seen_at,
                fresh_login: true,
                fresh_consent: false,
                cookies,
            }
            .next(now)
            .await
        }
        Ok(Login::Failed) => again("Wrong username or password."),
        Err(Failure::Throttled { retry_after, .. }) => {
            let message = format!(
                "Too many sign-in attempts for this account. Try again in {retry_after} seconds."
            );
            retry_later(again(&message), StatusCode::TOO_MANY_REQUESTS, retry_after)
        }
        Err(Failure::Busy) => {
            let message = "Too many sign-in attempts right now. Try again in a moment.";
            retry_later(again(message), StatusCode::SERVICE_UNAVAILABLE, BUSY_RETRY_AFTER_SECS)
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
    let now = state.now();
    let submitted = match submission(&state, &headers, &body, Purpose::Consent, now).await {
        Ok(submitted) => submitted,
        Err(response) => return response,
    };
    // The value verified against the current session, so this is the session the page was
    // shown to; a consent page is never shown without one.
    let Some(session) = submitted.session else {
        return expired_form();
    };
    let request = submitted.request;
    match submitted.form.get("decision").ok().flatten() {
        Some("allow") => {}
        Some("deny") => {
            // A denial withdraws what the user approved before, so that the client cannot
            // carry on silently with the earlier consent (prompt=none).
            let client_id = &request.client.client_id;
            if let Err(error) = state.store.forget_consent(&session.user_id, client_id).await {
                return internal(Failure::from(error));
            }
            let error = OAuthError::new(ErrorCode::AccessDenied, "the user denied access");
            return redirect_error(&state, &request.redirect_uri, request.state.as_deref(), &error)
                .into_response();
        }
        _ => return pages::error_page("Malformed request", "Choose Allow or Deny."),
    }
    if let Err(failure) = state.authority.remember_consent(&session.user_id, &request, now).await {
        return internal(failure);
    }
    // Fresh for prompt=login and max_age only if the sign-in came after the request was first
    // seen; `seen_at` is signed, so it cannot be moved by whoever posts the form.
    let fresh_login = session.auth_time >= submitted.seen_at;
    Flow {
        state: &state,
        raw: submitted.raw,
        request,
        session: Some(session),
        consented: None,
        browser: submitted.browser,
        seen_at: submitted.seen_at,
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
    raw: String,
    request: AuthorizationRequest,
    session: Option<Session>,
    /// The scopes the session's user already approved for the client.
    consented: Option<Scopes>,
    /// The browser id the next form is bound to.
    browser: String,
    /// When the request was first seen (signed into every form that continues it).
    seen_at: i64,
    fresh_login: bool,
    fresh_consent: bool,
    cookies: Vec<String>,
}

impl Flow<'_> {
    async fn next(self, now: i64) -> Response {
        let Flow {
            state,
            raw,
            request,
            session,
            consented,
            browser,
            seen_at,
            fresh_login,
            fresh_consent,
            cookies,
        } = self;
        let hinted_subject = match request.id_token_hint.as_deref() {
            None => None,
            Some(token) => match state.authority.verify_id_token_hint(token) {
                Some(hint) => Some(hint.sub),
                None => {
                    let error = OAuthError::new(
                        ErrorCode::InvalidRequest,
                        "id_token_hint is not an id_token this server issued",
                    );
                    return redirect_error(
                        state,
                        &request.redirect_uri,
                        request.state.as_deref(),
                        &error,
                    )
                    .into_response();
                }
            },
        };
        let progress = Progress {
            session: session.as_ref(),
            fresh_login,
            fresh_consent,
            hinted_subject: hinted_subject.as_deref(),
        };
        let page = PageContext { raw: &raw, request: &request, browser: &browser, seen_at };
        match authorize::decide(&request, progress, consented.as_ref(), now) {
            Decision::NeedsLogin => {
                let hint = request.login_hint.as_deref().unwrap_or_default();
                let session = session.as_ref().map(|s| s.id_hash.as_str());
                let binding = Binding { browser: &browser, session };
                page.login(state, binding, hint, None, cookies)
            }
            Decision::NeedsConsent => {
                let Some(session) = session else {
                    return internal_message("consent without a session");
                };
                page.consent(state, &session, cookies).await
            }
            Decision::Refused(error) => {
                redirect_error(state, &request.redirect_uri, request.state.as_deref(), &error)
                    .into_response()
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
                        pages::redirect(
                            &authorize::redirect_with(&request.redirect_uri, &pairs),
                            &cookies,
                        )
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

/// Parses and validates the authorization request.
async fn load_request(state: &AppState, raw: &str) -> Result<AuthorizationRequest, HttpError> {
    let params = Params::from_form(raw).map_err(|error| HttpError::Page {
        title: "Malformed request",
        message: format!("The authorization request could not be read: {}.", error.description),
    })?;
    let outcome = match authorize::client_id(&params) {
        Err(error) => Err(error),
        Ok(client_id) => {
            let record = state.authority.client(client_id).await.map_err(HttpError::internal)?;
            authorize::validate(
                &params,
                record.map(|r| r.client.clone()),
                &state.authority.settings.resources,
            )
        }
    };
    outcome.map_err(|error| match error {
        RequestError::NoRedirect(message) => {
            HttpError::Page { title: "This sign-in link is not valid", message }
        }
        RequestError::Redirect { redirect_uri, state: client_state, error } => {
            redirect_error(state, &redirect_uri, client_state.as_deref(), &error)
        }
    })
}

/// Back to the client with the error (RFC 6749 §4.1.2.1), `iss` included (RFC 9207).
fn redirect_error(
    state: &AppState,
    redirect_uri: &str,
    client_state: Option<&str>,
    error: &OAuthError,
) -> HttpError {
    HttpError::Redirect(authorize::error_redirect(
        redirect_uri,
        client_state,
        error,
        &state.config.issuer,
    ))
}

fn internal(failure: Failure) -> Response {
    HttpError::internal(failure).into_response()
}

fn internal_message(context: &str) -> Response {
    HttpError::internal(context).into_response()
}
