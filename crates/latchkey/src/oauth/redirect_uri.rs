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

/// `http` on 127.0.0.1, [::1] or localhost. Native apps are steered to IP literals (RFC 8252
/// §8.3) but `localhost` stays valid for web clients in development.
fn is_loopback_http(url: &Url) -> bool {
    url.scheme() == "http"
        && match url.host() {
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
    fn fragments_userinfo_and_relative_uris_are_refused() {
        assert!(validate("https://app.example.com/cb#x", Web).is_err());
        assert!(validate("https://app.example.com/cb#", Web).is_err());
        assert!(validate("https://user@app.example.com/cb", Web).is_err());
        assert!(validate("/callback", Web).is_err());
        assert!(validate("", Web).is_err());
    }
}
