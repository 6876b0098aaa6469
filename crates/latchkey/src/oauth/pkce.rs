//! Proof Key for Code Exchange (RFC 7636), S256 only.
//!
//! `plain` is refused: it protects nothing once the authorization request leaks (RFC 9700
//! §2.1.1), and OAuth 2.1 drops it.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::secret;

/// Whether `value` has the syntax of a code_verifier (RFC 7636 §4.1): 43 to 128 characters
/// from `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`. A S256 code_challenge is 43 of the
/// same characters (the base64url of a SHA-256).
pub fn is_verifier_syntax(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `value` can be an S256 code_challenge: exactly 43 base64url characters.
pub fn is_s256_challenge(value: &str) -> bool {
    value.len() == 43
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// The S256 challenge of a verifier: BASE64URL(SHA256(ASCII(code_verifier))) (RFC 7636 §4.2).
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
}

/// Whether `verifier` matches `challenge` (RFC 7636 §4.6), compared in constant time.
pub fn verify(verifier: &str, challenge: &str) -> bool {
    is_verifier_syntax(verifier)
        && secret::constant_time_eq(s256(verifier).as_bytes(), challenge.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(s256(verifier), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(verify(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!verify(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
    }

    #[test]
    fn verifier_syntax() {
        assert!(is_verifier_syntax(&"a".repeat(43)));
        assert!(is_verifier_syntax(&"~._-".repeat(32)));
        assert!(!is_verifier_syntax(&"a".repeat(42)));
        assert!(!is_verifier_syntax(&"a".repeat(129)));
        assert!(!is_verifier_syntax(&format!("{}+", "a".repeat(43))));
        // A short verifier never matches, even if its hash were the challenge.
        assert!(!verify("short", &s256("short")));
    }

    #[test]
    fn challenge_syntax() {
        assert!(is_s256_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!is_s256_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c"));
        assert!(!is_s256_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"));
    }
}
