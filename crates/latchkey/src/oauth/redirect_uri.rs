//! Redirect URIs a client may register (RFC 6749 §3.1.2, RFC 8252 §7, RFC 9700 §4.1).
//!
//! Registration is strict so that matching at `/authorize` can be exact: an absolute URI,
//! no fragment, https for web clients (http only on loopback), and for native clients also
//! private-use schemes and loopback IP literals on any port.

use url::Url;

use crate::model::ApplicationType;

/// Why a redirect URI cannot be registered; the text says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidRedirectUri(pub &'static str);

/// Checks a redirect URI for registration by a client of `app_type`.
pub fn validate(uri: &str, app_type: ApplicationType) -> Result<(), InvalidRedirectUri> {
    let url = Url::parse(uri).map_err(|_| {
        InvalidRedirectUri("must be an absolute URI such as https://app.example.com/callback")
    })?;
    if url.fragment().is_some() || uri.contains('#') {
        return Err(InvalidRedirectUri("must not contain a fragment (RFC 6749 §3.1.2)"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(InvalidRedirectUri("must not contain user information (`user@`)"));
    }
    let loopback = is_loopback_http(&url);
    match (url.scheme(), app_type) {
        ("https", _) if url.host().is_some() => Ok(()),
        ("http", _) if loopback => Ok(()),
        ("http", ApplicationType::Native) => Err(InvalidRedirectUri(
            "http is allowed only for loopback IP literals (http://127.0.0.1 or http://[::1], RFC 8252 §7.3); use https",
        )),
        ("http", ApplicationType::Web) => Err(InvalidRedirectUri(
            "must use https (http is allowed only on 127.0.0.1, [::1] or localhost)",
        )),
        ("https", _) => Err(InvalidRedirectUri("an https URI needs a host")),
        (scheme, ApplicationType::Native) if scheme.contains('.') => Ok(()),
        (_, ApplicationType::Native) => Err(InvalidRedirectUri(
            "a private-use scheme must be a reverse domain name such as com.example.app:/callback (RFC 8252 §7.1)",
        )),
        (_, ApplicationType::Web) => Err(InvalidRedirectUri(
            "a web client must use https; custom schemes need application_type = \"native\"",
        )),
    }
}

/// The registered redirect URI that `presented` matches, if any.
///
/// Matching is exact, character for character (RFC 9700 §4.1.3), with one exception: for
/// native clients a loopback IP redirect URI matches on any port (RFC 8252 §7.3), since the
/// app picks a free port at run time. Everything but the port must still be identical.
pub fn find_match<'a>(
    registered: &'a [String],
    presented: &str,
    app_type: ApplicationType,
) -> Option<&'a str> {
    if let Some(exact) = registered.iter().find(|uri| uri.as_str() == presented) {
        return Some(exact);
    }
    if app_type != ApplicationType::Native {
        return None;
    }
    let (host, rest) = split_loopback(presented)?;
    registered.iter().map(String::as_str).find(|uri| split_loopback(uri) == Some((host, rest)))
}

/// Splits `http://127.0.0.1:PORT/rest` or `http://[::1]:PORT/rest` into host and rest, without
/// the port. `localhost` is not included: RFC 8252 §8.3 asks for IP literals.
fn split_loopback(uri: &str) -> Option<(&str, &str)> {
    let after_scheme = uri.strip_prefix("http://")?;
    let host = ["127.0.0.1", "[::1]"].into_iter().find(|h| after_scheme.starts_with(h))?;
    let after_host = &after_scheme[host.len()..];
    let rest = match after_host.strip_prefix(':') {
        Some(port_and_rest) => {
            let digits = port_and_rest.bytes().take_while(u8::is_ascii_digit).count();
            // A TCP port is 1 to 65535; anything else cannot be redirected to, and a URL
            // library would drop the response parameters from it.
            let port: u32 = port_and_rest[..digits.min(6)].parse().ok()?;
            if digits > 5 || !(1..=65535).contains(&port) {
                return None;
            }
            &port_and_rest[digits..]
        }
        None => after_host,
    };
    if !(rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')) {
        return None;
    }
    Some((host, rest))
}

/// `http` on 127.0.0.1, [::1] or localhost. Native apps are steered to IP literals (RFC 8252
/// §8.3) but `localhost` stays valid for web clients in development.
fn is_loopback_http(url: &Url) -> bool {
    url.scheme() == "http" && is_loopback(url)
}

/// Whether the URL's host is 127.0.0.1, [::1] or localhost, whatever the scheme.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ApplicationType::{Native, Web};

    #[test]
    fn web_clients_use_https_or_loopback_http() {
        assert!(validate("https://app.example.com/cb", Web).is_ok());
        assert!(validate("http://127.0.0.1:9000/callback", Web).is_ok());
        assert!(validate("http://localhost:3000/cb", Web).is_ok());
        assert!(validate("http://app.example.com/cb", Web).is_err());
        assert!(validate("com.example.app:/cb", Web).is_err());
    }

    #[test]
    fn native_clients_may_use_private_schemes_and_loopback() {
        assert!(validate("com.example.app:/callback", Native).is_ok());
        assert!(validate("http://127.0.0.1/callback", Native).is_ok());
        assert!(validate("http://[::1]:5000/cb", Native).is_ok());
        assert!(validate("myapp:/cb", Native).is_err());
        assert!(validate("http://example.com/cb", Native).is_err());
    }

    #[test]
    fn matching_is_exact() {
        let registered = vec!["https://app.example.com/cb".to_owned()];
        let web = |uri| find_match(&registered, uri, Web);
        assert_eq!(web("https://app.example.com/cb"), Some("https://app.example.com/cb"));
        for near_miss in [
            "https://app.example.com/cb/",
            "https://app.example.com/CB",
            "https://APP.example.com/cb",
            "https://app.example.com/cb?x=1",
            "https://app.example.com/cb#f",
            "https://app.example.com:443/cb",
            "https://app.example.com/cb/../cb",
            "https://app.example.com/c%62",
            "https://evil@app.example.com/cb",
            "https://app.example.com.evil.com/cb",
            "http://app.example.com/cb",
        ] {
            assert_eq!(web(near_miss), None, "{near_miss}");
        }
    }

    #[test]
    fn native_loopback_matches_on_any_port_only() {
        let registered =
            vec!["http://127.0.0.1/callback".to_owned(), "http://[::1]:8000/cb".to_owned()];
        let native = |uri| find_match(&registered, uri, Native);
        assert_eq!(native("http://127.0.0.1:51234/callback"), Some("http://127.0.0.1/callback"));
        assert_eq!(native("http://127.0.0.1/callback"), Some("http://127.0.0.1/callback"));
        assert_eq!(native("http://[::1]:9/cb"), Some("http://[::1]:8000/cb"));
        assert_eq!(native("http://[::1]:65535/cb"), Some("http://[::1]:8000/cb"));
        assert_eq!(native("http://[::1]:1/cb"), Some("http://[::1]:8000/cb"));
        for miss in [
            "http://127.0.0.1:51234/callback/",
            "http://127.0.0.1:51234/other",
            "http://127.0.0.1:/callback",
            "http://127.0.0.1:123456/callback",
            "http://127.0.0.1:65536/callback",
            "http://127.0.0.1:99999/callback",
            "http://127.0.0.1:0/callback",
            "http://[::1]:00000/cb",
            "http://127.0.0.1.evil.com/callback",
            "http://127.0.0.1@evil.com/callback",
            "http://localhost:5000/callback",
            "https://127.0.0.1:5000/callback",
        ] {
            assert_eq!(native(miss), None, "{miss}");
        }
        // Web clients get no port exemption.
        assert_eq!(find_match(&registered, "http://127.0.0.1:5/callback", Web), None);
    }

    #[test]
    fn fragments_userinfo_and_relative_uris_are_refused() {
        assert!(validate("https://app.example.com/cb#x", Web).is_err());
        assert!(validate("https://app.example.com/cb#", Web).is_err());
        assert!(validate("https://user@app.example.com/cb", Web).is_err());
        assert!(validate("/callback", Web).is_err());
        assert!(validate("", Web).is_err());
    }
}
