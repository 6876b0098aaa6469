//! Cookies: the login session and the browser id that anti-CSRF values are bound to.
//!
//! The session cookie holds a random 256-bit id whose hash is the stored key. The browser
//! cookie holds a random id set with the first form and replaced at login; the forms carry a
//! value signed over it ([`latchkey::forms`]), so a cross-site form can neither read nor forge
//! one. Both are HttpOnly, SameSite=Lax, Path=/; under an https issuer they are Secure and
//! named with the `__Host-` prefix, which a browser accepts only from this very host, over
//! https, without a Domain (RFC 6265bis §4.1.3.2), so a sibling subdomain cannot plant them.

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use latchkey::secret::{self, RandomError};

use super::AppState;

/// The names of the two cookies for an issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CookieNames {
    /// The login session.
    pub(crate) session: &'static str,
    /// The browser id.
    pub(crate) browser: &'static str,
}

/// The cookie names: `__Host-` prefixed when the cookies are Secure.
pub(crate) fn names(secure: bool) -> CookieNames {
    if secure {
        CookieNames { session: "__Host-latchkey_session", browser: "__Host-latchkey_browser" }
    } else {
        CookieNames { session: "latchkey_session", browser: "latchkey_browser" }
    }
}

/// The browser id a request's forms are bound to, and the cookie that sets it when new.
pub(crate) struct Browser {
    /// The id.
    pub(crate) id: String,
    /// `Set-Cookie` for a new id.
    pub(crate) set_cookie: Option<String>,
}

impl Browser {
    /// The request's browser id, or a new one.
    pub(crate) fn of(state: &AppState, headers: &HeaderMap) -> Result<Self, RandomError> {
        match cookie(headers, state.cookie_names().browser) {
            Some(id) => Ok(Browser { id: id.to_owned(), set_cookie: None }),
            None => Browser::fresh(state),
        }
    }

    /// A new browser id: at first sight, and at login, so that every form issued before the
    /// login stops working (the anti-CSRF value rotates).
    pub(crate) fn fresh(state: &AppState) -> Result<Self, RandomError> {
        let id = secret::generate()?;
        let set = set_cookie(state.cookie_names().browser, &id, state.secure_cookies(), None);
        Ok(Browser { id, set_cookie: Some(set) })
    }
}

/// A cookie value from the request.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// A `Set-Cookie` value; `max_age = None` makes a browser-session cookie.
pub(crate) fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<i64>) -> String {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if secure {
        cookie.push_str("; Secure");
    }
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    cookie
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, "a=1; latchkey_session=abc; b=2".parse().unwrap());
        let plain = names(false);
        assert_eq!(cookie(&headers, plain.session), Some("abc"));
        assert_eq!(cookie(&headers, plain.browser), None);
        assert_eq!(cookie(&headers, names(true).session), None, "the https name differs");
        assert_eq!(
            set_cookie("n", "v", true, Some(60)),
            "n=v; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=60"
        );
    }

    #[test]
    fn secure_cookies_carry_the_host_prefix() {
        let secure = names(true);
        assert!(secure.session.starts_with("__Host-") && secure.browser.starts_with("__Host-"));
    }
}
