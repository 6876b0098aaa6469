//! The login and consent pages of the authorization flow, each with a new anti-CSRF value
//! ([`latchkey::forms`]) bound to its purpose, the browser, the session and the request.

use axum::http::StatusCode;
use axum::response::Response;
use latchkey::forms::{Binding, Purpose};
use latchkey::model::Session;
use latchkey::oauth::authorize::AuthorizationRequest;

use super::super::error::HttpError;
use super::super::pages::{self, ConsentPage, LoginPage};
use super::super::{AppState, paths};

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
        let csrf = state.authority.forms().issue(Purpose::Login, binding, self.raw, self.seen_at);
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
    ) -> Result<Response, HttpError> {
        let user = state.authority.user(&session.user_id).await.map_err(HttpError::internal)?;
        let user = user.ok_or_else(|| HttpError::internal("session of a removed user"))?;
        let binding = Binding { browser: self.browser, session: Some(&session.id_hash) };
        let csrf = state.authority.forms().issue(Purpose::Consent, binding, self.raw, self.seen_at);
        let resources = &state.authority.settings().resources;
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
        Ok(pages::page(StatusCode::OK, &page, &cookies))
    }
}
