//! Request parameters as received: name/value pairs, each name at most once (RFC 6749 §3.1,
//! §3.2: "Request and response parameters MUST NOT be included more than once").

use super::{ErrorCode, OAuthError};

/// Form or query parameters, checked for repeats.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Wraps decoded pairs.
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Params(pairs)
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

    /// The first repeated name, if any.
    pub fn first_repeat(&self, except: &[&str]) -> Option<&str> {
        self.0.iter().enumerate().find_map(|(index, (name, _))| {
            let repeated = self.0[..index].iter().any(|(earlier, _)| earlier == name);
            (repeated && !except.contains(&name.as_str())).then_some(name.as_str())
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
}
