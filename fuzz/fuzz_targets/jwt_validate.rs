//! JWT access-token validation in `latchkey-resource` (RFC 9068, RFC 8725), against a pinned
//! ES256 key, and the `Authorization: Bearer` parser (RFC 6750 §2.1).
//!
//! The input is tried as a token and as a header value. Invariants: no panic; a token accepted
//! is one whose claims are the ones signed in the seed corpus (nothing else can carry a valid
//! signature, so an accepted mutation would be a validation bug).
#![no_main]

use std::sync::OnceLock;

use latchkey_resource::{JwkSet, Validator, ValidatorConfig, bearer_token};
use libfuzzer_sys::fuzz_target;

/// The public half of the key that signed `corpus/jwt_validate/valid`.
const JWKS: &str = r#"{"keys":[{"kty":"EC","kid":"fuzz-1","use":"sig","alg":"ES256","crv":"P-256",
"x":"rbqwkTxMpaqf5m2Tey8QgplG65U7XqTEpp6NbMaeGMk","y":"0np892N5USAAApqNOzkNQMXS09EVb8mHteZZSVfLi3M"}]}"#;

fn setup() -> &'static (tokio::runtime::Runtime, Validator) {
    static SETUP: OnceLock<(tokio::runtime::Runtime, Validator)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let jwks: JwkSet = serde_json::from_str(JWKS).unwrap();
        let config = ValidatorConfig::new("https://issuer.example.com", "https://api.example.com");
        (runtime, Validator::with_pinned_keys(config, &jwks))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (runtime, validator) = setup();
    let token = match bearer_token(Some(text)) {
        Ok(token) => token,
        Err(_) => text,
    };
    if let Ok(accepted) = runtime.block_on(validator.validate(token)) {
        assert_eq!(accepted.sub(), "alice");
        assert_eq!(accepted.client_id(), "app");
    }
});
