//! Scope syntax (RFC 6749 §3.3).

/// Whether `scope` is a valid scope-token: one or more of %x21 / %x23-5B / %x5D-7E, i.e.
/// printable ASCII except space, `"` and `\`.
pub fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_tokens_follow_rfc6749_3_3() {
        for ok in ["openid", "read:photos", "https://api/x.read", "a!#[]~"] {
            assert!(is_scope_token(ok), "{ok}");
        }
        for bad in ["", "two words", "quote\"", "back\\slash", "tab\t", "é", "nul\0"] {
            assert!(!is_scope_token(bad), "{bad:?}");
        }
    }
}
