//! The address a request comes from, for the per-address attempt budget.
//!
//! It is the peer of the TCP connection, except when that peer is one of the configured
//! `http.trusted_proxies`: then it is the nearest address in `X-Forwarded-For` that is not a
//! trusted proxy (walking from the right, since each proxy appends the address it saw and
//! everything to the left of a trusted entry may be forged by the client).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use super::AppState;

/// The request's source address; `None` when the server did not record a peer (in-process
/// tests that call the router directly).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source(pub(crate) Option<IpAddr>);

impl FromRequestParts<AppState> for Source {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
        Ok(Source(
            peer.map(|peer| source(peer, &parts.headers, &state.config.http.trusted_proxies)),
        ))
    }
}

/// The caller that the security events of a request name ([`latchkey::audit`]): its source
/// address and user agent. Handlers run the operations that may log such events inside
/// [`latchkey::audit::with_caller`] (a middleware for it cost 8% of an introspection).
pub(crate) fn caller(source: Source, headers: &HeaderMap) -> latchkey::audit::Caller {
    latchkey::audit::Caller {
        source: source.0,
        user_agent: headers.get(axum::http::header::USER_AGENT).cloned(),
    }
}

fn source(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for entry in forwarded.iter().rev() {
        match entry.parse::<IpAddr>() {
            Ok(address) if trusted.contains(&address) => continue,
            Ok(address) => return address,
            // Garbage where an address should be: the proxy itself is the best we know.
            Err(_) => return peer,
        }
    }
    peer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "1.1.1.1, 203.0.113.7, 10.0.0.6".parse().unwrap());
        let trusted = [proxy, "10.0.0.6".parse().unwrap()];
        assert_eq!(source(proxy, &headers, &trusted), "203.0.113.7".parse::<IpAddr>().unwrap());
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(source(stranger, &headers, &trusted), stranger, "an untrusted peer is itself");
        assert_eq!(source(proxy, &HeaderMap::new(), &trusted), proxy);
        headers.insert("x-forwarded-for", "nonsense".parse().unwrap());
        assert_eq!(source(proxy, &headers, &trusted), proxy);
    }
}
