//! POST /login: the password form of the authorization flow.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use latchkey::authority::{BUSY_RETRY_AFTER_SECS, Failure, Login};
use latchkey::forms::Purpose;
use latchkey::throttle;

use super::super::AppState;
use super::super::error::HttpError;
use super::super::session::{Browser, set_cookie};
use super::super::source::Source;
use super::{Flow, Submitted};

/// POST /login.
pub(in crate::http) async fn login(
    State(state): State<AppState>,
    Source(from): Source,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HttpError> {
    let now = state.now();
    let submitted = Submitted::read(&state, &headers, &body, Purpose::Login).await?;
    let form = &submitted.form;
    let username = form.get("username").ok().flatten().unwrap_or("").trim().to_owned();
    let password = form.get("password").ok().flatten().unwrap_or("").to_owned();
    let again = |message: &str| submitted.login_page(&state, &username, Some(message));
    if username.is_empty()
        || password.is_empty()
        || username.len() > throttle::MAX_USERNAME_BYTES
        || password.len() > throttle::MAX_PASSWORD_BYTES
    {
        return Ok(again("Enter your username and password."));
    }
    let caller = super::super::source::caller(Source(from), &headers);
    let login = state.authority.login(&username, &password, from, now);
    let (session, cookie) = match latchkey::audit::with_caller(caller, login).await {
        Ok(Login::Success { session, cookie }) => (session, cookie),
        Ok(Login::Failed) => return Ok(again("Wrong username or password.")),
        Ok(Login::Disabled) => {
            return Ok(again("This account is disabled. Ask an administrator to enable it."));
        }
        Err(Failure::Throttled { retry_after, .. }) => {
            let message = format!(
                "Too many sign-in attempts for this account. Try again in {retry_after} seconds."
            );
            return Ok(retry_later(again(&message), StatusCode::TOO_MANY_REQUESTS, retry_after));
        }
        Err(Failure::Busy) => {
            let message = "Too many sign-in attempts right now. Try again in a moment.";
            let page = again(message);
            return Ok(retry_later(page, StatusCode::SERVICE_UNAVAILABLE, BUSY_RETRY_AFTER_SECS));
        }
        Err(failure) => return Err(HttpError::internal(failure)),
    };
    let client_id = &submitted.request.client.client_id;
    let consented = state.authority.consented(&session.user_id, client_id).await;
    let consented = consented.map_err(HttpError::internal)?;
    // A new browser id: the forms shown before this login stop working.
    let browser = Browser::fresh(&state).map_err(HttpError::internal)?;
    let ttl = state.authority.settings().session_ttl;
    let session_cookie =
        set_cookie(state.cookie_names().session, &cookie, state.secure_cookies(), Some(ttl));
    let mut flow =
        Flow::new(&state, submitted.raw, submitted.request, browser.id, submitted.checked.seen_at);
    flow.session = Some(session);
    flow.consented = consented;
    flow.fresh_login = true;
    flow.cookies = std::iter::once(session_cookie).chain(browser.set_cookie).collect();
    flow.next(now).await
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
