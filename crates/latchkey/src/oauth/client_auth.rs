//! Client authentication at the token endpoint (RFC 6749 §2.3, §3.2.1).
//!
//! A client authenticates with exactly one method, the one it registered; anything else is
//! `invalid_client`. Secrets are verified by the caller, off the async runtime.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::client_assertion;
use super::params::Params;
use super::{ErrorCode, OAuthError};
use crate::model::{AuthMethod, Client};

/// Credentials as presented, before they are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    /// The client it claims to be.
    pub client_id: String,
    /// What it proves that with.
    pub credential: Credential,
}

/// The one credential of a request, by method (RFC 6749 §2.3: never more than one).
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// `client_secret_basic`: the secret from HTTP Basic.
    Basic(String),
    /// `client_secret_post`: the secret from the body.
    Post(String),
    /// `private_key_jwt`: the signed assertion.
    Assertion(String),
    /// `none`: a public client, which has nothing to prove.
    None,
}

impl Credential {
    /// The authentication method this credential uses.
    pub fn method(&self) -> AuthMethod {
        match self {
            Credential::Basic(_) => AuthMethod::ClientSecretBasic,
            Credential::Post(_) => AuthMethod::ClientSecretPost,
            Credential::Assertion(_) => AuthMethod::PrivateKeyJwt,
            Credential::None => AuthMethod::None,
        }
    }

    /// The secret, for the `client_secret_*` methods.
    pub fn secret(&self) -> Option<&str> {
        match self {
            Credential::Basic(secret) | Credential::Post(secret) => Some(secret),
            Credential::Assertion(_) | Credential::None => None,
        }
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = match self {
            Credential::None => "",
            _ => "<redacted>",
        };
        write!(f, "{}({redacted})", self.method().as_str())
    }
}

fn invalid_client(description: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClient, description)
}

/// Reads the credentials from the `Authorization` header value (if any) and the form.
pub fn presented(authorization: Option<&str>, params: &Params) -> Result<Presented, OAuthError> {
    let body_id = params.get("client_id")?;
    let body_secret = params.get("client_secret")?;
    let assertion_type = params.get("client_assertion_type")?;
    let assertion = params.get("client_assertion")?;
    if assertion_type.is_some() || assertion.is_some() {
        return assertion_credentials(
            authorization,
            body_id,
            body_secret,
            assertion_type,
            assertion,
        );
    }
    if let Some(header) = authorization {
        let (id, secret) = parse_basic(header)?;
        if body_secret.is_some() {
            // RFC 6749 §2.3: a client MUST NOT use more than one authentication method.
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                "client credentials are in both the Authorization header and the body: use one",
            ));
        }
        if body_id.is_some_and(|body| body != id) {
            return Err(invalid_client(
                "client_id in the body differs from the one in the Authorization header",
            ));
        }
        return Ok(Presented { client_id: id, credential: Credential::Basic(secret) });
    }
    let Some(client_id) = body_id else {
        return Err(invalid_client(
            "client authentication is missing: send HTTP Basic credentials, or client_id (and client_secret) in the body",
        ));
    };
    let credential = match body_secret {
        Some(secret) => Credential::Post(secret.to_owned()),
        None => Credential::None,
    };
    Ok(Presented { client_id: client_id.to_owned(), credential })
}

/// `private_key_jwt` (RFC 7523 §2.2): the assertion names the client in `sub`.
fn assertion_credentials(
    authorization: Option<&str>,
    body_id: Option<&str>,
    body_secret: Option<&str>,
    assertion_type: Option<&str>,
    assertion: Option<&str>,
) -> Result<Presented, OAuthError> {
    if authorization.is_some() || body_secret.is_some() {
        // RFC 6749 §2.3: one authentication method per request.
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "a client assertion was sent together with a client secret: use one method",
        ));
    }
    let (Some(assertion_type), Some(assertion)) = (assertion_type, assertion) else {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "client_assertion and client_assertion_type must be sent together",
        ));
    };
    if assertion_type != client_assertion::JWT_BEARER {
        return Err(invalid_client(format!(
            "client_assertion_type must be {}",
            client_assertion::JWT_BEARER
        )));
    }
    let client_id = client_assertion::claimed_client(assertion)?;
    // RFC 7521 §4.2: a client_id sent alongside must name the same client.
    if body_id.is_some_and(|id| id != client_id) {
        return Err(invalid_client("client_id differs from the client_assertion's sub"));
    }
    Ok(Presented { client_id, credential: Credential::Assertion(assertion.to_owned()) })
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1, RFC 7617).
fn parse_basic(header: &str) -> Result<(String, String), OAuthError> {
    let malformed = || {
        invalid_client(
            "malformed Basic credentials: send base64(urlencode(client_id) \":\" urlencode(client_secret))",
        )
    };
    let (scheme, encoded) = header.trim().split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(invalid_client("unsupported Authorization scheme: use Basic"));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let id = form_decode(id).ok_or_else(malformed)?;
    let secret = form_decode(secret).ok_or_else(malformed)?;
    if id.is_empty() {
        return Err(malformed());
    }
    Ok((id, secret))
}

/// application/x-www-form-urlencoded decoding of one value.
fn form_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let well_formed = bytes.iter().enumerate().all(|(i, b)| {
        *b != b'%'
            || (bytes.get(i + 1..i + 3).is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)))
    });
    if !well_formed {
        return None;
    }
    let plus_as_space = value.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space).decode_utf8().ok().map(|s| s.into_owned())
}

/// Checks that the client used the method it registered (so a public client sent no secret).
pub fn check_method(presented: &Presented, client: &Client) -> Result<(), OAuthError> {
    let method = presented.credential.method();
    if method != client.token_endpoint_auth_method {
        return Err(invalid_client(format!(
            "this client must authenticate with {}, not {}",
            client.token_endpoint_auth_method.as_str(),
            method.as_str()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::new(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    fn basic(raw: &str) -> String {
        format!("Basic {}", STANDARD.encode(raw))
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let got = presented(Some(&basic("my%20app:s%3Acret+x")), &params(&[])).unwrap();
        assert_eq!(got.client_id, "my app");
        assert_eq!(got.credential, Credential::Basic("s:cret x".into()));
    }

    #[test]
    fn malformed_basic_is_invalid_client() {
        for header in [
            "Basic",
            "Basic !!!",
            &basic("no-colon"),
            &basic(":secret"),
            "Bearer abc",
            &basic("a:%ZZ"),
        ] {
            assert_eq!(
                presented(Some(header), &params(&[])).unwrap_err().code,
                ErrorCode::InvalidClient,
                "{header}"
            );
        }
    }

    #[test]
    fn two_methods_at_once_are_refused() {
        let error = presented(Some(&basic("a:b")), &params(&[("client_secret", "b")])).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn body_credentials_and_public_clients() {
        let post = presented(None, &params(&[("client_id", "a"), ("client_secret", "b")])).unwrap();
        assert_eq!(post.credential.method(), AuthMethod::ClientSecretPost);
        let public = presented(None, &params(&[("client_id", "a")])).unwrap();
        assert_eq!(public.credential, Credential::None);
        assert_eq!(presented(None, &params(&[])).unwrap_err().code, ErrorCode::InvalidClient);
        assert!(!format!("{post:?}").contains("\"b\""), "the secret never prints");
    }
}
