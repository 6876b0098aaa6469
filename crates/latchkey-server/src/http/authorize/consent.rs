//! POST /consent: the user's answer on the consent page.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use latchkey::forms::Purpose;
use latchkey::oauth::{ErrorCode, OAuthError};

use super::super::AppState;
use super::super::csrf;
use super::super::error::HttpError;
use super::{Flow, Submitted, redirect_error};

/// POST /consent.
pub(in crate::http) async fn consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HttpError> {
    let now = state.now();
    let submitted = Submitted::read(&state, &headers, &body, Purpose::Consent).await?;
    // The value verified against the current session, so this is the session the page was
    // shown to; a consent page is never shown without one.
    let Some(session) = submitted.checked.session else {
        return Err(csrf::expired(Purpose::Consent));
    };
    let request = submitted.request;
    match submitted.form.get("decision").ok().flatten() {
        Some("allow") => {}
        Some("deny") => {
            let client_id = &request.client.client_id;
            let forgotten = state.authority.forget_consent(&session.user_id, client_id).await;
            forgotten.map_err(HttpError::internal)?;
            let error = OAuthError::new(ErrorCode::AccessDenied, "the user denied access");
            let client_state = request.state.as_deref();
            return Err(redirect_error(&state, &request.redirect_uri, client_state, &error));
        }
        _ => {
            return Err(HttpError::Page {
                title: "Malformed request",
                message: "Choose Allow or Deny.".into(),
            });
        }
    }
    let remembered = state.authority.remember_consent(&session.user_id, &request, now).await;
    remembered.map_err(HttpError::internal)?;
    // Fresh for prompt=login and max_age only if the sign-in came after the request was first
    // seen; `seen_at` is signed, so it cannot be moved by whoever posts the form.
    let seen_at = submitted.checked.seen_at;
    let fresh_login = session.auth_time >= seen_at;
    let mut flow = Flow::new(&state, submitted.raw, request, submitted.checked.browser, seen_at);
    flow.session = Some(session);
    flow.fresh_login = fresh_login;
    flow.fresh_consent = true;
    flow.next(now).await
}
