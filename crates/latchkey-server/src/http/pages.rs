//! The HTML pages, one typed template each, and the headers every page carries.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::HttpError;

/// The login page (field names are fixed by docs/INTERFACE.md).
#[derive(Template)]
#[template(path = "login.html")]
pub(crate) struct LoginPage<'a> {
    pub(crate) action: &'a str,
    pub(crate) client_name: &'a str,
    pub(crate) csrf_token: &'a str,
    pub(crate) request: &'a str,
    pub(crate) username: &'a str,
    pub(crate) error: Option<&'a str>,
}

/// The consent page.
#[derive(Template)]
#[template(path = "consent.html")]
pub(crate) struct ConsentPage<'a> {
    pub(crate) action: &'a str,
    pub(crate) client_name: &'a str,
    pub(crate) username: &'a str,
    pub(crate) scopes: Vec<String>,
    /// Where the answer goes (host and port, or the app's scheme): for a native app, which
    /// local program will receive access (RFC 8252 §8.6).
    pub(crate) redirect_to: &'a str,
    pub(crate) csrf_token: &'a str,
    pub(crate) request: &'a str,
}

/// An error the user sees instead of being redirected.
#[derive(Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage<'a> {
    pub(crate) title: &'a str,
    pub(crate) message: &'a str,
}

/// The logout confirmation (shown when the request cannot prove which client sent it).
#[derive(Template)]
#[template(path = "logout.html")]
pub(crate) struct LogoutPage<'a> {
    pub(crate) action: &'a str,
    pub(crate) message: &'a str,
    pub(crate) csrf_token: &'a str,
    pub(crate) request: &'a str,
}

/// A plain message.
#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct MessagePage<'a> {
    pub(crate) title: &'a str,
    pub(crate) message: &'a str,
}

/// Renders a page with the security headers of a login page: no framing, no caching, no
/// referrer, nothing loaded from elsewhere.
pub(crate) fn page(status: StatusCode, template: &impl Template, cookies: &[String]) -> Response {
    let body = match template.render() {
        Ok(body) => body,
        Err(error) => {
            return HttpError::internal(format!("rendering a page: {error}")).into_response();
        }
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    response
}

/// 303 See Other: the browser follows with GET and drops the form body (RFC 9700 §4.11).
pub(crate) fn redirect(location: &str, cookies: &[String]) -> Response {
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

/// The 400 page for requests that must not be redirected.
pub(crate) fn error_page(title: &str, message: &str) -> Response {
    page(StatusCode::BAD_REQUEST, &ErrorPage { title, message }, &[])
}

/// The part of a redirect URI that tells the user where the answer goes: `host:port` for
/// http(s), the scheme for a native app's private-use URI.
pub(crate) fn redirect_target(redirect_uri: &str) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(url) => match (url.scheme(), url.host_str()) {
            ("http" | "https", Some(host)) => match url.port_or_known_default() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            },
            (scheme, _) => format!("{scheme}:"),
        },
        Err(_) => redirect_uri.to_owned(),
    }
}

/// Plain-words description of a scope for the consent page, with the scope's name: the
/// resource's own description when its config gives one.
pub(crate) fn describe_scope(scope: &str, resources: &[latchkey::model::Resource]) -> String {
    let words = match scope {
        "openid" => "Sign you in with your account".into(),
        "profile" => "See your name and username".into(),
        "email" => "See your email address".into(),
        "offline_access" => "Keep access while you are not using it (stay signed in)".into(),
        other => match resources.iter().find(|r| r.scopes.iter().any(|s| s == other)) {
            Some(resource) => match resource.descriptions.get(other) {
                Some(description) => format!("{description}, on {}", resource.identifier),
                None => format!("Use {other} on {}", resource.identifier),
            },
            None => format!("Use {other}"),
        },
    };
    format!("{words} ({scope})")
}
