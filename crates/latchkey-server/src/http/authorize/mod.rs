//! `/authorize` (RFC 6749 §4.1.1, OIDC Core §3.1.2) and the login and consent pages that
//! continue it.
//!
//! The original request travels through the pages as one hidden field and is validated again
//! at every step, so any node can serve any step and nothing is trusted from the form but the
//! user's own answers.
//!
//! - here: the authorization request and the flow's next step.
//! - `login`, `consent`: the two forms that continue it.
//! - `render`: the login and consent pages, each with a fresh anti-CSRF value.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use latchkey::forms::{Binding, Purpose};
use latchkey::model::Session;
use latchkey::model::scope::Scopes;
use latchkey::oauth::authorize::{self, AuthorizationRequest, Decision, Progress, RequestError};
use latchkey::oauth::{ErrorCode, OAuthError, Params};

mod consent;
mod login;
mod render;

pub(super) use consent::consent;
pub(super) use login::login;
use render::PageContext;

use super::AppState;
use super::csrf::{self, Bound, Checked};
use super::error::HttpError;
use super::pages;
use super::session::{Browser, cookie};

/// GET /authorize: the request is the query string.
pub(super) async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    start(&state, &headers, query.unwrap_or_default()).await
}

/// POST /authorize: the request is the form body (OIDC Core §3.1.2.1).
pub(super) async fn post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HttpError> {
    let body = String::from_utf8(body.to_vec()).map_err(|_| HttpError::Page {
        title: "Malformed request",
        message: "The request is not valid UTF-8.".into(),
    })?;
    start(&state, &headers, body).await
}

/// GET /login and /consent: only reachable through an authorization request.
pub(super) async fn page_without_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let form = Params::from_form(query.as_deref().unwrap_or(""));
    match form.ok().and_then(|f| f.get("request").ok().flatten().map(str::to_owned)) {
        Some(request) => start(&state, &headers, request).await,
        None => Err(HttpError::Page {
            title: "Nothing to sign in to",
            message: "This page is opened by an application's sign-in link. Go back to the application and start there.".into(),
        }),
    }
}

async fn start(state: &AppState, headers: &HeaderMap, raw: String) -> Result<Response, HttpError> {
    let now = state.now();
    let request = load_request(state, &raw).await?;
    let browser = Browser::of(state, headers).map_err(HttpError::internal)?;
    let client_id = &request.client.client_id;
    let (session, consented) = match cookie(headers, state.cookie_names().session) {
        None => (None, None),
        Some(value) => {
            let found = state.authority.session_and_consent(value, client_id, now).await;
            match found.map_err(HttpError::internal)? {
                Some((session, consented)) => (Some(session), consented),
                None => (None, None),
            }
        }
    };
    let mut flow = Flow::new(state, raw, request, browser.id, now);
    flow.session = session;
    flow.consented = consented;
    flow.cookies = browser.set_cookie.into_iter().collect();
    flow.next(now).await
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
                &state.authority.settings().resources,
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

/// A login or consent submission whose anti-CSRF value checked out, with the original
/// request it carries validated again.
struct Submitted {
    form: Params,
    raw: String,
    request: AuthorizationRequest,
    /// The browser, session and first sight the value was bound to: the current ones.
    checked: Checked,
}

impl Submitted {
    /// Reads a login or consent form: the form and the request are checked before anything
    /// else happens, so a bad one never reaches a password check or a consent.
    async fn read(
        state: &AppState,
        headers: &HeaderMap,
        body: &[u8],
        purpose: Purpose,
    ) -> Result<Submitted, HttpError> {
        let form = std::str::from_utf8(body).ok().and_then(|text| Params::from_form(text).ok());
        let form = form.ok_or_else(|| HttpError::Page {
            title: "Malformed request",
            message: "The form could not be read.".into(),
        })?;
        let raw = form.get("request").ok().flatten().unwrap_or("").to_owned();
        let checked = csrf::check(state, headers, &form, purpose, Bound::ToSession, &raw).await?;
        let request = load_request(state, &raw).await?;
        Ok(Submitted { form, raw, request, checked })
    }

    /// The login page again, for the same request, browser and session.
    fn login_page(&self, state: &AppState, username: &str, error: Option<&str>) -> Response {
        let checked = &self.checked;
        let page = PageContext {
            raw: &self.raw,
            request: &self.request,
            browser: &checked.browser,
            seen_at: checked.seen_at,
        };
        let session = checked.session.as_ref().map(|s| s.id_hash.as_str());
        let binding = Binding { browser: &checked.browser, session };
        page.login(state, binding, username, error, Vec::new())
    }
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

impl<'a> Flow<'a> {
    /// A request at its start: no session, nothing fresh, no cookies to set yet.
    fn new(
        state: &'a AppState,
        raw: String,
        request: AuthorizationRequest,
        browser: String,
        seen_at: i64,
    ) -> Self {
        Flow {
            state,
            raw,
            request,
            session: None,
            consented: None,
            browser,
            seen_at,
            fresh_login: false,
            fresh_consent: false,
            cookies: Vec::new(),
        }
    }

    /// What the request needs next: a page, an error for the client, or a code.
    async fn next(self, now: i64) -> Result<Response, HttpError> {
        let state = self.state;
        let hinted_subject = self.hinted_subject()?;
        let progress = Progress {
            session: self.session.as_ref(),
            fresh_login: self.fresh_login,
            fresh_consent: self.fresh_consent,
            hinted_subject: hinted_subject.as_deref(),
        };
        let request = &self.request;
        let page =
            PageContext { raw: &self.raw, request, browser: &self.browser, seen_at: self.seen_at };
        match authorize::decide(request, progress, self.consented.as_ref(), now) {
            Decision::NeedsLogin => {
                let hint = request.login_hint.as_deref().unwrap_or_default();
                let session = self.session.as_ref().map(|s| s.id_hash.as_str());
                let binding = Binding { browser: &self.browser, session };
                Ok(page.login(state, binding, hint, None, self.cookies))
            }
            Decision::NeedsConsent => {
                let session = self
                    .session
                    .as_ref()
                    .ok_or_else(|| HttpError::internal("consent without a session"))?;
                page.consent(state, session, self.cookies).await
            }
            Decision::Refused(error) => {
                Err(redirect_error(state, &request.redirect_uri, request.state.as_deref(), &error))
            }
            Decision::Approved => {
                let session = self
                    .session
                    .as_ref()
                    .ok_or_else(|| HttpError::internal("approval without a session"))?;
                let code = state.authority.issue_code(request, session, now).await;
                let code = code.map_err(HttpError::internal)?;
                let mut pairs = vec![("code", code.as_str())];
                if let Some(s) = request.state.as_deref() {
                    pairs.push(("state", s));
                }
                // RFC 9207: the issuer travels with the response so the client can tell which
                // server answered (mix-up defence).
                pairs.push(("iss", state.config.issuer.as_str()));
                let location = authorize::redirect_with(&request.redirect_uri, &pairs);
                Ok(pages::redirect(&location, &self.cookies))
            }
        }
    }

    /// The user an `id_token_hint` names; a hint this server did not sign goes back to the
    /// client as `invalid_request`.
    fn hinted_subject(&self) -> Result<Option<String>, HttpError> {
        let Some(token) = self.request.id_token_hint.as_deref() else { return Ok(None) };
        match self.state.authority.verify_id_token_hint(token) {
            Some(hint) => Ok(Some(hint.sub)),
            None => {
                let error = OAuthError::new(
                    ErrorCode::InvalidRequest,
                    "id_token_hint is not an id_token this server issued",
                );
                let request = &self.request;
                Err(redirect_error(
                    self.state,
                    &request.redirect_uri,
                    request.state.as_deref(),
                    &error,
                ))
            }
        }
    }
}
