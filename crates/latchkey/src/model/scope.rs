//! Scopes (RFC 6749 §3.3): the syntax of a scope-token and the set a request, consent, code
//! or grant holds.

/// Whether `scope` is a valid scope-token: one or more of %x21 / %x23-5B / %x5D-7E, i.e.
/// printable ASCII except space, `"` and `\`.
pub fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// A set of scopes in a stable order (as first requested), without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<String>);

impl Scopes {
    /// Parses a `scope` parameter: scope-tokens separated by single spaces (RFC 6749 §3.3).
    /// Repeated tokens collapse; anything else malformed is `None`.
    pub fn parse(value: &str) -> Option<Self> {
        let mut scopes = Vec::new();
        for token in value.split(' ') {
            if !is_scope_token(token) {
                return None;
            }
            if !scopes.iter().any(|s| s == token) {
                scopes.push(token.to_owned());
            }
        }
        Some(Scopes(scopes))
    }

    /// Scopes as stored: the space-separated form, where an empty string is the empty set.
    /// `None` means the stored value is corrupt, which the store reports as such rather than
    /// as "no scopes".
    pub fn from_stored(value: &str) -> Option<Self> {
        if value.is_empty() { Some(Scopes::default()) } else { Scopes::parse(value) }
    }

    /// Scopes from a list.
    pub fn from_list<S: AsRef<str>>(list: &[S]) -> Self {
        let mut scopes: Vec<String> = Vec::new();
        for scope in list {
            if !scopes.iter().any(|s| s == scope.as_ref()) {
                scopes.push(scope.as_ref().to_owned());
            }
        }
        Scopes(scopes)
    }

    /// Whether `scope` is in the set.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s == scope)
    }

    /// Whether every scope of `self` is in `other`.
    pub fn is_subset_of(&self, other: &Scopes) -> bool {
        self.0.iter().all(|s| other.contains(s))
    }

    /// The scopes not in `allowed`.
    pub fn outside<'a>(&'a self, allowed: &'a [String]) -> impl Iterator<Item = &'a str> {
        self.0.iter().map(String::as_str).filter(|s| !allowed.iter().any(|a| a == s))
    }

    /// The scopes, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The space-separated form.
    pub fn to_param(&self) -> String {
        self.0.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_parameter_parses_space_separated_tokens() {
        let scopes = Scopes::parse("openid profile openid").unwrap();
        assert_eq!(scopes.to_param(), "openid profile");
        assert!(Scopes::parse("openid  profile").is_none(), "empty token between two spaces");
        assert!(Scopes::parse("").is_none());
        assert!(Scopes::parse("a\"b").is_none());
        let allowed = vec!["openid".to_owned()];
        assert_eq!(scopes.outside(&allowed).collect::<Vec<_>>(), ["profile"]);
        assert!(Scopes::parse("openid").unwrap().is_subset_of(&scopes));
        assert!(!scopes.is_subset_of(&Scopes::parse("openid").unwrap()));
    }

    #[test]
    fn stored_scopes_read_back_and_corruption_is_not_empty() {
        assert_eq!(Scopes::from_stored(""), Some(Scopes::default()));
        let scopes = Scopes::parse("openid email").unwrap();
        assert_eq!(Scopes::from_stored(&scopes.to_param()), Some(scopes));
        assert_eq!(Scopes::from_stored("openid  email"), None);
    }

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
