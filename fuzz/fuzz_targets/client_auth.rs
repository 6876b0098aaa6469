//! Client authentication as presented: the `Authorization` header (HTTP Basic, RFC 6749
//! §2.3.1) and the form's client parameters (RFC 7523 §2.2).
//!
//! Input: a header value and a form body, separated by the first newline. Invariant: no panic;
//! whatever is accepted names one client and exactly one method.
#![no_main]

use latchkey::model::AuthMethod;
use latchkey::oauth::{Params, client_auth};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (header, form) = text.split_once('\n').unwrap_or((text, ""));
    let Ok(params) = Params::from_form(form) else { return };
    for authorization in [Some(header), None] {
        if let Ok(presented) = client_auth::presented(authorization, &params) {
            assert!(!presented.client_id.is_empty());
            let credential = &presented.credential;
            match credential.method() {
                AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost => {
                    assert!(credential.secret().is_some())
                }
                AuthMethod::PrivateKeyJwt | AuthMethod::None => {
                    assert!(credential.secret().is_none())
                }
            }
        }
    }
});
