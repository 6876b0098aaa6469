//! The token endpoint's wire types (RFC 6749 §3.2, §5.1; OIDC Core §3.1.3.3): the request,
//! parsed once at the edge into one struct per grant, and the answer. The grants themselves
//! are operations, in `authority::token`.

use serde::Serialize;

use super::audience::Requested;
use super::{ErrorCode, OAuthError, Params};
use crate::model::scope::Scopes;
use crate::model::{Client, GrantType};

/// A token request, by grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRequest {
    /// RFC 6749 §4.1.3.
    AuthorizationCode(AuthorizationCodeRequest),
    /// RFC 6749 §6.
    RefreshToken(RefreshTokenRequest),
    /// RFC 6749 §4.4.
    ClientCredentials(ClientCredentialsRequest),
    /// RFC 6749 §4.3.
    Password(PasswordRequest),
}

/// RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCodeRequest {
    /// The code from the authorization response.
    pub code: String,
    /// Must equal the authorization request's `redirect_uri`, absent if it had none.
    pub redirect_uri: Option<String>,
    /// The PKCE verifier.
    pub code_verifier: Option<String>,
    /// Narrowing to some of the authorized resources.
    pub target: Target,
}

/// RFC 6749 §6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRequest {
    /// The refresh token presented.
    pub refresh_token: String,
    /// Narrowing of scope and resources.
    pub target: Target,
}

/// RFC 6749 §4.4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentialsRequest {
    /// The scopes and APIs asked for.
    pub target: Target,
}

/// RFC 6749 §4.3.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordRequest {
    /// The user's login name.
    pub username: String,
    /// The user's password.
    pub password: String,
    /// The scopes and APIs asked for.
    pub target: Target,
}

impl std::fmt::Debug for PasswordRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordRequest")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("target", &self.target)
            .finish()
    }
}

/// What a request asks the token to cover: `scope` (RFC 6749 §3.3) and `resource`
/// (RFC 8707 §2.2).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// The `scope` parameter, when the request has one.
    pub scope: Option<Scopes>,
    /// The `resource` parameters, in order.
    pub resources: Vec<String>,
}

impl Target {
    fn parse(params: &Params) -> Result<Self, OAuthError> {
        let scope = match params.get("scope")? {
            None => None,
            Some(value) => Some(Scopes::parse(value).ok_or_else(|| {
                OAuthError::new(
                    ErrorCode::InvalidScope,
                    "scope must be scope names separated by single spaces",
                )
            })?),
        };
        Ok(Target { scope, resources: params.all("resource").map(str::to_owned).collect() })
    }

    /// Whether the request named its scopes itself.
    pub fn requested(&self) -> Requested {
        match self.scope {
            Some(_) => Requested::Explicitly,
            None => Requested::ByDefault,
        }
    }

    /// The `resource` parameters, borrowed.
    pub fn resources(&self) -> Vec<&str> {
        self.resources.iter().map(String::as_str).collect()
    }
}

/// `unauthorized_client` unless `client` is registered for `grant` (RFC 6749 §5.2).
pub fn check_allowed(client: &Client, grant: GrantType) -> Result<(), OAuthError> {
    if client.allows_grant(grant) {
        return Ok(());
    }
    Err(OAuthError::new(
        ErrorCode::UnauthorizedClient,
        format!("this client is not registered for the {} grant", grant.as_str()),
    ))
}

impl TokenRequest {
    /// Reads `client`'s token request: its grant type, whether the client is registered for
    /// it, then what that grant needs, so that a client using a grant it may not use hears
    /// that first. Every parameter but `resource` at most once (RFC 6749 §3.2).
    pub fn parse(client: &Client, params: &Params) -> Result<Self, OAuthError> {
        if let Some(error) = params.repeat_error(&["resource"]) {
            return Err(error);
        }
        let Some(grant) = GrantType::parse(params.require("grant_type")?) else {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "this grant_type is not supported: use authorization_code (with PKCE), refresh_token, client_credentials or password (the implicit flow has no token request)",
            ));
        };
        check_allowed(client, grant)?;
        let target = Target::parse(params)?;
        let owned = |name: &str| params.require(name).map(str::to_owned);
        let optional = |name: &str| params.get(name).map(|value| value.map(str::to_owned));
        Ok(match grant {
            GrantType::AuthorizationCode => {
                TokenRequest::AuthorizationCode(AuthorizationCodeRequest {
                    code: owned("code")?,
                    redirect_uri: optional("redirect_uri")?,
                    code_verifier: optional("code_verifier")?,
                    target,
                })
            }
            GrantType::RefreshToken => TokenRequest::RefreshToken(RefreshTokenRequest {
                refresh_token: owned("refresh_token")?,
                target,
            }),
            GrantType::ClientCredentials => {
                TokenRequest::ClientCredentials(ClientCredentialsRequest { target })
            }
            GrantType::Password => TokenRequest::Password(PasswordRequest {
                username: owned("username")?,
                password: owned("password")?,
                target,
            }),
        })
    }

    /// The grant this request uses.
    pub fn grant_type(&self) -> GrantType {
        match self {
            TokenRequest::AuthorizationCode(_) => GrantType::AuthorizationCode,
            TokenRequest::RefreshToken(_) => GrantType::RefreshToken,
            TokenRequest::ClientCredentials(_) => GrantType::ClientCredentials,
            TokenRequest::Password(_) => GrantType::Password,
        }
    }
}

/// A successful token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The granted scopes.
    pub scope: String,
    /// A refresh token, when the client may refresh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// An id_token, when `openid` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(grants: &[GrantType]) -> Client {
        let grants: Vec<&str> = grants.iter().map(|grant| grant.as_str()).collect();
        serde_json::from_value(serde_json::json!({
            "client_id": "app", "grant_types": grants, "token_endpoint_auth_method": "client_secret_basic",
            "require_consent": true, "require_pkce": true,
        }))
        .unwrap()
    }

    fn parse(form: &str) -> Result<TokenRequest, OAuthError> {
        TokenRequest::parse(&client(&GrantType::ALL), &Params::from_form(form).unwrap())
    }

    #[test]
    fn a_grant_the_client_may_not_use_is_named_before_missing_parameters() {
        let params = Params::from_form("grant_type=password").unwrap();
        let only_code = client(&[GrantType::AuthorizationCode]);
        let error = TokenRequest::parse(&only_code, &params).unwrap_err();
        assert_eq!(error.code, ErrorCode::UnauthorizedClient, "{error:?}");
        assert!(error.description.contains("password"), "{error:?}");
    }

    #[test]
    fn each_grant_reads_its_own_parameters() {
        let code =
            parse("grant_type=authorization_code&code=c&code_verifier=v&resource=a&resource=b")
                .unwrap();
        let TokenRequest::AuthorizationCode(code) = code else { panic!("{code:?}") };
        assert_eq!((code.code.as_str(), code.code_verifier.as_deref()), ("c", Some("v")));
        assert_eq!((code.redirect_uri, code.target.resources()), (None, vec!["a", "b"]));
        assert_eq!(code.target.requested(), Requested::ByDefault);

        let refresh = parse("grant_type=refresh_token&refresh_token=r&scope=openid+email").unwrap();
        assert_eq!(refresh.grant_type(), GrantType::RefreshToken);
        let TokenRequest::RefreshToken(refresh) = refresh else { panic!() };
        assert_eq!(refresh.target.scope.unwrap().to_param(), "openid email");

        let password = parse("grant_type=password&username=alice&password=secret").unwrap();
        assert!(!format!("{password:?}").contains("secret"), "{password:?}");
        assert_eq!(
            parse("grant_type=client_credentials").unwrap().grant_type(),
            GrantType::ClientCredentials
        );
    }

    #[test]
    fn malformed_requests_get_the_rfc_error() {
        let code = |form| parse(form).unwrap_err().code;
        assert_eq!(code("code=c"), ErrorCode::InvalidRequest);
        assert_eq!(code("grant_type=implicit"), ErrorCode::UnsupportedGrantType);
        assert_eq!(code("grant_type=authorization_code"), ErrorCode::InvalidRequest);
        assert_eq!(code("grant_type=password&username=a"), ErrorCode::InvalidRequest);
        assert_eq!(code("grant_type=client_credentials&scope=a%20%20b"), ErrorCode::InvalidScope);
        assert_eq!(
            code("grant_type=refresh_token&refresh_token=a&refresh_token=b"),
            ErrorCode::InvalidRequest
        );
    }
}
