//! Cookies: the login session and the anti-CSRF token.
//!
//! The session cookie holds a random 256-bit id whose hash is the stored key. The CSRF token
//! is a double-submit cookie: a random value set with the form and echoed in a hidden field;
//! a cross-site form cannot read the cookie, so it cannot echo it. Both are HttpOnly,
//! SameSite=Lax, Path=/, and Secure when the issuer is https.

use axum::http::HeaderMap;
use axum::http::header::COOKIE;

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "latchkey_session";
/// The CSRF cookie's name.
pub(crate) const CSRF_COOKIE: &str = "latchkey_csrf";

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
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, CSRF_COOKIE), None);
        assert_eq!(
            set_cookie("n", "v", true, Some(60)),
            "n=v; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=60"
        );
    }
}
