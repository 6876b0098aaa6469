//! The forms of the authorization flow: checking a submitted login or consent form's
//! anti-CSRF value ([`latchkey::forms`]) and rendering the login and consent pages with a new
//! one.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use latchkey::authority::Failure;
use latchkey::forms::{Binding, Purpose};
use latchkey::model::Session;
use latchkey::oauth::Params;
use latchkey::oauth::authorize::AuthorizationRequest;

use super::super::pages::{self, ConsentPage, LoginPage};
use super::super::session::cookie;
use super::super::{AppState, paths};
use super::{internal, internal_message, load_request, parse};

/// A login or consent submission whose anti-CSRF value checked out, with the original
/// request it carries validated again.
pub(super) struct Submitted {
    pub(super) form: Params,
    pub(super) raw: String,
    pub(super) request: AuthorizationRequest,
    /// The browser id and the session the value was bound to: the current ones.
    pub(super) browser: String,
    pub(super) session: Option<Session>,
    /// When the request was first seen.
    pub(super) seen_at: i64,
}

impl Submitted {
    /// The login page again, for the same request, browser and session.
    pub(super) fn login_page(
        &self,
        state: &AppState,
        username: &str,
        error: Option<&str>,
    ) -> Response {
        let page = PageContext {
            raw: &self.raw,
            request: &self.request,
            browser: &self.browser,
            seen_at: self.seen_at,
        };
        let session = self.session.as_ref().map(|s| s.id_hash.as_str());
        page.login(state, Binding { browser: &self.browser, session }, username, error, Vec::new())
    }
}

pub(super) async fn submission(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    purpose: Purpose,
    now: i64,
) -> Result<Submitted, Response> {
    let form = std::str::from_utf8(body)
        .ok()
        .and_then(|text| parse(text).ok())
        .ok_or_else(|| pages::error_page("Malformed request", "The form could not be read."))?;
    let raw = form.get("request").ok().flatten().unwrap_or("").to_owned();
    let names = state.cookie_names();
    let Some(browser) = cookie(headers, names.browser).map(str::to_owned) else {
        return Err(expired_form());
    };
    let session = match cookie(headers, names.session) {
        None => None,
        Some(value) => state.authority.session(value, now).await.map_err(internal)?,
    };
    let binding =
        Binding { browser: &browser, session: session.as_ref().map(|s| s.id_hash.as_str()) };
    let value = form.get("csrf_token").ok().flatten().unwrap_or("");
    let Some(seen_at) = state.authority.forms.verify(value, purpose, binding, &raw, now) else {
        return Err(expired_form());
    };
    let request = load_request(state, &raw).await.map_err(IntoResponse::into_response)?;
    Ok(Submitted { form, raw, request, browser, session, seen_at })
}

/// The answer to a form whose anti-CSRF value does not check out.
pub(super) fn expired_form() -> Response {
    pages::error_page(
        "This form has expired",
        "The form was not sent from this page in this browser, it is over an hour old, or you signed in or out since it was shown. Go back to the application and sign in again.",
    )
}

/// What a page for a request is built from.
pub(super) struct PageContext<'a> {
    pub(super) raw: &'a str,
    pub(super) request: &'a AuthorizationRequest,
    pub(super) browser: &'a str,
    pub(super) seen_at: i64,
}

impl PageContext<'_> {
    pub(super) fn login(
        &self,
        state: &AppState,
        binding: Binding<'_>,
        username: &str,
        error: Option<&str>,
        cookies: Vec<String>,
    ) -> Response {
        let csrf = state.authority.forms.issue(Purpose::Login, binding, self.raw, self.seen_at);
        let client = &self.request.client;
        let client_name = client.client_name.as_deref().unwrap_or(&client.client_id);
        let status = if error.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
        let page = LoginPage {
            action: paths::LOGIN,
            client_name,
            csrf_token: &csrf,
            request: self.raw,
            username,
            error,
        };
        pages::page(status, &page, &cookies)
    }

    pub(super) async fn consent(
        &self,
        state: &AppState,
        session: &Session,
        cookies: Vec<String>,
    ) -> Response {
        let user = match state.store.user_by_id(&session.user_id).await {
            Ok(Some(user)) => user,
            Ok(None) => return internal_message("session of a removed user"),
            Err(error) => return internal(Failure::from(error)),
        };
        let binding = Binding { browser: self.browser, session: Some(&session.id_hash) };
        let csrf = state.authority.forms.issue(Purpose::Consent, binding, self.raw, self.seen_at);
        let resources = &state.authority.settings.resources;
        let request = self.request;
        let scopes =
            request.target.scopes.iter().map(|s| pages::describe_scope(s, resources)).collect();
        let client_name =
            request.client.client_name.as_deref().unwrap_or(&request.client.client_id);
        let page = ConsentPage {
            action: paths::CONSENT,
            client_name,
            username: &user.username,
            scopes,
            redirect_to: &pages::redirect_target(&request.redirect_uri),
            csrf_token: &csrf,
            request: self.raw,
        };
        pages::page(StatusCode::OK, &page, &cookies)
    }
}
