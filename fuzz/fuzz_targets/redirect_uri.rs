//! Redirect URI registration checks and matching (RFC 9700 §4.1.3, RFC 8252 §7.3).
//!
//! Input: a registered URI and a presented one, separated by the first newline. Invariants: no
//! panic; a web client's match is exact, character for character; a native client's match is
//! exact or differs only in the port of a loopback IP URI.
#![no_main]

use latchkey::model::ApplicationType;
use latchkey::oauth::redirect_uri;
use libfuzzer_sys::fuzz_target;

/// `uri` without the port of a loopback IP authority, if it has one.
fn without_loopback_port(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("http://")?;
    let host = ["127.0.0.1", "[::1]"].into_iter().find(|h| rest.starts_with(h))?;
    let after = &rest[host.len()..];
    let path = match after.strip_prefix(':') {
        Some(port_and_path) => {
            let digits = port_and_path.bytes().take_while(u8::is_ascii_digit).count();
            &port_and_path[digits..]
        }
        None => after,
    };
    Some(format!("http://{host}{path}"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (registered, presented) = text.split_once('\n').unwrap_or((text, text));
    let registered = vec![registered.to_owned()];
    for app_type in [ApplicationType::Web, ApplicationType::Native] {
        let _ = redirect_uri::validate(presented, app_type);
        let _ = redirect_uri::validate(&registered[0], app_type);
        if let Some(matched) = redirect_uri::find_match(&registered, presented, app_type) {
            assert_eq!(matched, registered[0]);
            if matched != presented {
                assert_eq!(app_type, ApplicationType::Native, "{presented:?} matched {matched:?}");
                let (a, b) = (without_loopback_port(matched), without_loopback_port(presented));
                assert!(a.is_some() && a == b, "{presented:?} matched {matched:?}");
            }
        }
    }
});
