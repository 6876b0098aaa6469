//! The anti-CSRF check of the login, consent and logout forms ([`latchkey::forms`]): a form
//! counts only if its `csrf_token` was issued for its purpose, to this browser (the browser
//! cookie), to the session the browser has now (login and consent), and for the request the
//! form carries.

use axum::http::HeaderMap;
use latchkey::forms::{Binding, Purpose};
use latchkey::model::Session;
use latchkey::oauth::Params;

use super::AppState;
use super::error::HttpError;
use super::session::cookie;

/// A form whose anti-CSRF value checked out.
pub(crate) struct Checked {
    /// The browser id the value was bound to: the current one.
    pub(crate) browser: String,
    /// The session it was bound to: the current one (`None` for logout, which binds none).
    pub(crate) session: Option<Session>,
    /// When the request was first seen, as signed into the value.
    pub(crate) seen_at: i64,
}

/// Whether the form is bound to the browser's session as well as to the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    /// Login and consent: the value names the session it was shown under.
    ToSession,
    /// Logout confirmation: the browser only.
    ToBrowser,
}

/// Checks `form`'s `csrf_token` for `purpose` and the request `raw` it carries.
pub(crate) async fn check(
    state: &AppState,
    headers: &HeaderMap,
    form: &Params,
    purpose: Purpose,
    bound: Bound,
    raw: &str,
) -> Result<Checked, HttpError> {
    let now = state.now();
    let names = state.cookie_names();
    let Some(browser) = cookie(headers, names.browser).map(str::to_owned) else {
        return Err(expired(purpose));
    };
    let session = match (bound, cookie(headers, names.session)) {
        (Bound::ToSession, Some(value)) => {
            state.authority.session(value, now).await.map_err(HttpError::internal)?
        }
        _ => None,
    };
    let binding =
        Binding { browser: &browser, session: session.as_ref().map(|s| s.id_hash.as_str()) };
    let value = form.get("csrf_token").ok().flatten().unwrap_or("");
    match state.authority.forms().verify(value, purpose, binding, raw, now) {
        Some(seen_at) => Ok(Checked { browser, session, seen_at }),
        None => Err(expired(purpose)),
    }
}

/// The answer to a form whose anti-CSRF value does not check out.
pub(crate) fn expired(purpose: Purpose) -> HttpError {
    let message = match purpose {
        Purpose::Logout => "Open the sign-out link again.",
        Purpose::Login | Purpose::Consent => {
            "The form was not sent from this page in this browser, it is over an hour old, or you signed in or out since it was shown. Go back to the application and sign in again."
        }
    };
    HttpError::Page { title: "This form has expired", message: message.to_owned() }
}
