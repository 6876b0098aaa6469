//! Request parameters as received: name/value pairs, each name at most once (RFC 6749 §3.1,
//! §3.2: "Request and response parameters MUST NOT be included more than once").

use std::borrow::Cow;
use std::collections::HashSet;

use percent_encoding::percent_decode_str;

use super::{ErrorCode, OAuthError};

/// The parameters of the endpoints latchkey serves: names an error description may quote.
const KNOWN: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
    "id_token_hint",
    "response_mode",
    "request",
    "request_uri",
    "grant_type",
    "code",
    "code_verifier",
    "refresh_token",
    "username",
    "password",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "token",
    "token_type_hint",
    "resource",
    "post_logout_redirect_uri",
    "access_token",
];

/// Most parameters one request may carry. The largest legitimate request (an authorization
/// request with every OIDC parameter and a few `resource`s) has about 25.
pub const MAX_PARAMS: usize = 64;

/// Form or query parameters, checked for repeats.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Wraps decoded pairs.
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Params(pairs)
    }

    /// Decodes `application/x-www-form-urlencoded` text: a request body or a query string. A
    /// name or value that is not UTF-8 once percent-decoded is refused, where the usual lossy
    /// decoding would pass it on with replacement characters.
    pub fn from_form(text: &str) -> Result<Self, OAuthError> {
        let decode = |raw: &str| -> Result<String, OAuthError> {
            let spaced =
                if raw.contains('+') { Cow::Owned(raw.replace('+', " ")) } else { raw.into() };
            percent_decode_str(&spaced).decode_utf8().map(Cow::into_owned).map_err(|_| {
                OAuthError::new(
                    ErrorCode::InvalidRequest,
                    "a parameter is not valid UTF-8 once percent-decoded",
                )
            })
        };
        let mut pairs = Vec::new();
        for part in text.split('&').filter(|part| !part.is_empty()) {
            if pairs.len() == MAX_PARAMS {
                return Err(OAuthError::new(
                    ErrorCode::InvalidRequest,
                    format!("the request has more than {MAX_PARAMS} parameters"),
                ));
            }
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            pairs.push((decode(name)?, decode(value)?));
        }
        Ok(Params(pairs))
    }

    /// The single value of `name`; `Ok(None)` when absent; an error when given twice. An empty
    /// value counts as absent, as OAuth treats it (RFC 6749 §3.1).
    pub fn get(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut values =
            self.0.iter().filter(|(key, _)| key == name).map(|(_, value)| value.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                format!("parameter {name} is given more than once; send it once"),
            ));
        }
        Ok(first.filter(|value| !value.is_empty()))
    }

    /// The value of a parameter that must be present.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)?.ok_or_else(|| {
            OAuthError::new(ErrorCode::InvalidRequest, format!("parameter {name} is missing"))
        })
    }

    /// Every value of a parameter that may repeat (RFC 8707 `resource`).
    pub fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0.iter().filter(move |(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// The first repeated name, if any, in one pass.
    pub fn first_repeat(&self, except: &[&str]) -> Option<&str> {
        let mut seen = HashSet::with_capacity(self.0.len());
        self.0
            .iter()
            .map(|(name, _)| name.as_str())
            .find(|name| !seen.insert(*name) && !except.contains(name))
    }

    /// An `invalid_request` for the first parameter given twice (except those in `except`),
    /// naming it only when it is one of the parameters OAuth defines: error descriptions never
    /// quote request text.
    pub fn repeat_error(&self, except: &[&str]) -> Option<OAuthError> {
        self.first_repeat(except).map(|name| {
            let description = match KNOWN.iter().find(|known| **known == name) {
                Some(known) => format!("parameter {known} is given more than once; send it once"),
                None => "a parameter is given more than once; send each once".to_owned(),
            };
            OAuthError::new(ErrorCode::InvalidRequest, description)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::new(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    #[test]
    fn repeated_parameters_are_errors() {
        let p = params(&[("a", "1"), ("b", ""), ("a", "2"), ("resource", "x"), ("resource", "y")]);
        assert_eq!(p.get("a").unwrap_err().code, ErrorCode::InvalidRequest);
        assert_eq!(p.get("b").unwrap(), None, "empty is absent");
        assert_eq!(p.get("c").unwrap(), None);
        assert!(p.require("c").is_err());
        assert_eq!(p.all("resource").collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(p.first_repeat(&["resource"]), Some("a"));
        assert_eq!(
            params(&[("resource", "x"), ("resource", "y")]).first_repeat(&["resource"]),
            None
        );
    }

    #[test]
    fn forms_decode_like_url_encoding_and_refuse_invalid_utf8() {
        let p = Params::from_form("a=x+y%20z&&b&c=%E2%9C%93&%6E=%2B&bad=%G1").unwrap();
        assert_eq!(p.get("a").unwrap(), Some("x y z"));
        assert_eq!(p.get("b").unwrap(), None, "a name without = is present and empty");
        assert_eq!(p.get("c").unwrap(), Some("\u{2713}"));
        assert_eq!(p.get("n").unwrap(), Some("+"));
        assert_eq!(p.get("bad").unwrap(), Some("%G1"), "a broken escape stays as it is");
        for text in ["a=%FF", "%C3=1", "a=%C3%28", "a=%ED%A0%80"] {
            let error = Params::from_form(text).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidRequest, "{text}");
        }
        assert_eq!(Params::from_form("").unwrap().all("a").count(), 0);
    }

    #[test]
    fn more_than_the_most_parameters_are_refused() {
        let most = (0..MAX_PARAMS).map(|n| format!("p{n}=v")).collect::<Vec<_>>().join("&");
        assert!(Params::from_form(&most).is_ok());
        let error = Params::from_form(&format!("{most}&one=more")).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidRequest);
        assert!(error.description.contains("more than 64 parameters"), "{}", error.description);
        // Empty parts between separators are not parameters.
        assert!(Params::from_form(&format!("{most}&&&")).is_ok());
    }
}
