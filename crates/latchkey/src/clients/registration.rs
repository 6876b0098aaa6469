//! The rules a client registration must meet, wherever it comes from: the config file's
//! `[[clients]]`, `latchkey clients add`, and later the admin API and dynamic registration
//! (RFC 7591 §2). One [`validate`] turns a [`ClientDraft`] into a [`Client`] or names the field
//! at fault and how to fix it.

use crate::model::scope;
use crate::model::{
    ApplicationType, AuthMethod, Client, GrantType, Resource, SigningAlg, TokenFormat,
};
use crate::oauth::{audience, redirect_uri};

/// A registration as submitted: what the registrant chose, unset fields left to defaults.
#[derive(Debug, Clone, Default)]
pub struct ClientDraft {
    /// The client_id.
    pub client_id: String,
    /// Whether a secret comes with it (its value is not needed to check the rules).
    pub has_secret: bool,
    /// Name shown on the consent page.
    pub client_name: Option<String>,
    /// `web` unless set.
    pub application_type: Option<ApplicationType>,
    /// Redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the user.
    pub post_logout_redirect_uris: Vec<String>,
    /// `authorization_code` unless set.
    pub grant_types: Option<Vec<GrantType>>,
    /// Scopes it may ask for.
    pub scopes: Vec<String>,
    /// Derived from the secret and keys unless set.
    pub token_endpoint_auth_method: Option<AuthMethod>,
    /// Ask the user for consent (default true).
    pub require_consent: Option<bool>,
    /// Require PKCE (default true; never off for public clients).
    pub require_pkce: Option<bool>,
    /// Where its `private_key_jwt` keys are published.
    pub jwks_uri: Option<String>,
    /// Its `private_key_jwt` keys, inline.
    pub jwks: Option<latchkey_resource::JwkSet>,
    /// JWT or opaque access tokens.
    pub access_token_format: Option<TokenFormat>,
    /// id_token algorithm.
    pub id_token_signed_response_alg: Option<SigningAlg>,
    /// Refresh retry window, seconds.
    pub refresh_grace_period_secs: Option<u64>,
    /// Let remembered consent answer for a public loopback/custom-scheme client.
    pub remember_consent: Option<bool>,
    /// Accept client assertions with the token endpoint URL as audience.
    pub legacy_assertion_audience: bool,
    /// A fresh id_token on refresh (default true).
    pub id_token_on_refresh: Option<bool>,
    /// Scope claims in the id_token (default true).
    pub claims_in_id_token: Option<bool>,
    /// Refresh tokens bound to the browser session without offline_access (default true).
    pub session_refresh_tokens: Option<bool>,
}

/// A registration that breaks a rule: the field at fault and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct RegistrationError {
    /// The field, as the registrant named it (`redirect_uris[1]`).
    pub field: String,
    /// What is wrong and how to fix it.
    pub problem: String,
}

fn at(field: impl Into<String>, problem: impl Into<String>) -> RegistrationError {
    RegistrationError { field: field.into(), problem: problem.into() }
}

/// A client_id is printable ASCII without spaces or ':', so it survives Basic auth, URLs and
/// logs.
pub fn check_client_id(id: &str) -> Result<(), RegistrationError> {
    if id.is_empty()
        || id.len() > 255
        || !id.bytes().all(|b| (0x21..=0x7e).contains(&b))
        || id.contains(':')
    {
        return Err(at(
            "client_id",
            format!("{id:?} must be 1-255 printable ASCII characters without spaces or ':'"),
        ));
    }
    Ok(())
}

/// RFC 6749 §3.3 scope syntax.
pub fn check_scope_token(value: &str) -> Result<(), String> {
    if scope::is_scope_token(value) {
        return Ok(());
    }
    Err(format!(
        "{value:?} is not a valid scope: printable ASCII without spaces, quotes or backslashes (RFC 6749 §3.3)"
    ))
}

/// Checks a registration against every rule and fills in the defaults.
pub fn validate(draft: ClientDraft, resources: &[Resource]) -> Result<Client, RegistrationError> {
    check_client_id(&draft.client_id)?;
    let method = auth_method(&draft)?;
    let public = method == AuthMethod::None;
    let application_type = draft.application_type.unwrap_or_default();
    let grant_types = grant_types(&draft, public)?;
    check_redirect_uris(&draft, &grant_types, application_type)?;
    check_scopes(&draft.scopes, resources)?;
    if public && draft.require_pkce == Some(false) {
        return Err(at(
            "require_pkce",
            "PKCE cannot be switched off for a public client (RFC 9700 §2.1.1)",
        ));
    }
    Ok(Client {
        client_id: draft.client_id,
        client_name: draft.client_name,
        application_type,
        redirect_uris: draft.redirect_uris,
        post_logout_redirect_uris: draft.post_logout_redirect_uris,
        grant_types,
        scopes: draft.scopes,
        token_endpoint_auth_method: method,
        require_consent: draft.require_consent.unwrap_or(true),
        require_pkce: draft.require_pkce.unwrap_or(true),
        jwks_uri: draft.jwks_uri,
        jwks: draft.jwks,
        access_token_format: draft.access_token_format,
        id_token_signed_response_alg: draft.id_token_signed_response_alg,
        refresh_grace_period_secs: draft.refresh_grace_period_secs,
        remember_consent: draft.remember_consent,
        legacy_assertion_audience: draft.legacy_assertion_audience,
        id_token_on_refresh: draft.id_token_on_refresh.unwrap_or(true),
        claims_in_id_token: draft.claims_in_id_token.unwrap_or(true),
        session_refresh_tokens: draft.session_refresh_tokens.unwrap_or(true),
    })
}

/// The authentication method: the one chosen, else `client_secret_basic` with a secret,
/// `private_key_jwt` with keys, `none` with neither; and the credentials it needs.
fn auth_method(draft: &ClientDraft) -> Result<AuthMethod, RegistrationError> {
    let has_keys = draft.jwks.is_some() || draft.jwks_uri.is_some();
    let method = draft.token_endpoint_auth_method.unwrap_or(match (draft.has_secret, has_keys) {
        (true, _) => AuthMethod::ClientSecretBasic,
        (false, true) => AuthMethod::PrivateKeyJwt,
        (false, false) => AuthMethod::None,
    });
    match (method, draft.has_secret) {
        (AuthMethod::None, true) => {
            return Err(at(
                "client_secret",
                "a public client (token_endpoint_auth_method = \"none\") must not have a secret: remove client_secret or choose client_secret_basic",
            ));
        }
        (AuthMethod::PrivateKeyJwt, true) => {
            return Err(at(
                "client_secret",
                "a private_key_jwt client authenticates with its keys: remove client_secret",
            ));
        }
        (m, false) if m.uses_secret() => {
            return Err(at(
                "client_secret",
                format!(
                    "is required for token_endpoint_auth_method = \"{}\"; or use \"none\" for a public client",
                    m.as_str()
                ),
            ));
        }
        _ => {}
    }
    if method == AuthMethod::PrivateKeyJwt && !has_keys {
        return Err(at("jwks_uri", "a private_key_jwt client needs jwks_uri or jwks"));
    }
    if let Some(uri) = &draft.jwks_uri {
        match url::Url::parse(uri) {
            Ok(url) if url.scheme() == "https" || url.scheme() == "http" => {}
            _ => return Err(at("jwks_uri", format!("{uri:?} must be an https URL"))),
        }
    }
    Ok(method)
}

/// The grant types, `authorization_code` by default, consistent with the client's kind.
fn grant_types(draft: &ClientDraft, public: bool) -> Result<Vec<GrantType>, RegistrationError> {
    let grant_types =
        draft.grant_types.clone().unwrap_or_else(|| vec![GrantType::AuthorizationCode]);
    if grant_types.is_empty() {
        return Err(at("grant_types", "must name at least one grant type"));
    }
    for grant in [GrantType::ClientCredentials, GrantType::Password] {
        if public && grant_types.contains(&grant) {
            return Err(at(
                "grant_types",
                format!(
                    "a public client cannot use {}: give it a secret or remove the grant",
                    grant.as_str()
                ),
            ));
        }
    }
    let issues_refresh = [GrantType::AuthorizationCode, GrantType::Password]
        .iter()
        .any(|grant| grant_types.contains(grant));
    if grant_types.contains(&GrantType::RefreshToken) && !issues_refresh {
        return Err(at(
            "grant_types",
            "refresh_token needs a grant that issues refresh tokens (authorization_code or password); client_credentials gets none (RFC 6749 §4.4.3)",
        ));
    }
    Ok(grant_types)
}

/// Redirect URIs only with the code grant, at least one with it, each valid for the
/// application type (RFC 8252, RFC 9700 §4.1).
fn check_redirect_uris(
    draft: &ClientDraft,
    grant_types: &[GrantType],
    application_type: ApplicationType,
) -> Result<(), RegistrationError> {
    let lists = [
        ("redirect_uris", &draft.redirect_uris),
        ("post_logout_redirect_uris", &draft.post_logout_redirect_uris),
    ];
    let code_grant = grant_types.contains(&GrantType::AuthorizationCode);
    if !code_grant && let Some((field, _)) = lists.iter().find(|(_, uris)| !uris.is_empty()) {
        return Err(at(
            *field,
            "are used only by the authorization_code grant, which this client does not have: remove them or add the grant",
        ));
    }
    if code_grant && draft.redirect_uris.is_empty() {
        return Err(at(
            "redirect_uris",
            "a client with the authorization_code grant needs at least one redirect URI",
        ));
    }
    for (field, uris) in lists {
        for (index, uri) in uris.iter().enumerate() {
            redirect_uri::validate(uri, application_type)
                .map_err(|error| at(format!("{field}[{index}]"), format!("{uri:?} {error}")))?;
        }
    }
    Ok(())
}

/// Valid scope syntax, and each scope either an OpenID one or defined by a resource: a scope
/// nothing defines could only reach a token whose audience does not define it.
fn check_scopes(scopes: &[String], resources: &[Resource]) -> Result<(), RegistrationError> {
    for (index, value) in scopes.iter().enumerate() {
        let field = format!("scopes[{index}]");
        check_scope_token(value).map_err(|problem| at(&field, problem))?;
        if !audience::is_known(value, resources) {
            return Err(at(
                field,
                format!(
                    "{value:?} is neither an OpenID scope ({}) nor defined by a [[resources]] entry: add it to the scopes of the API that owns it",
                    audience::OPENID_SCOPES.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> ClientDraft {
        ClientDraft {
            client_id: "app".into(),
            redirect_uris: vec!["https://app.example.com/cb".into()],
            scopes: vec!["openid".into()],
            ..ClientDraft::default()
        }
    }

    #[test]
    fn defaults_make_a_public_code_flow_client() {
        let client = validate(draft(), &[]).unwrap();
        assert_eq!(client.token_endpoint_auth_method, AuthMethod::None);
        assert_eq!(client.grant_types, [GrantType::AuthorizationCode]);
        assert!(client.require_pkce && client.require_consent && client.id_token_on_refresh);
    }

    #[test]
    fn each_broken_rule_names_its_field() {
        let field = |draft: ClientDraft| validate(draft, &[]).unwrap_err().field;
        assert_eq!(field(ClientDraft { client_id: "a b".into(), ..draft() }), "client_id");
        let public_cc = ClientDraft {
            grant_types: Some(vec![GrantType::ClientCredentials]),
            redirect_uris: vec![],
            ..draft()
        };
        assert_eq!(field(public_cc), "grant_types");
        let bad_uri =
            ClientDraft { redirect_uris: vec!["http://app.example.com/cb".into()], ..draft() };
        assert_eq!(field(bad_uri), "redirect_uris[0]");
        assert_eq!(field(ClientDraft { scopes: vec!["read:mail".into()], ..draft() }), "scopes[0]");
        let no_pkce = ClientDraft { require_pkce: Some(false), ..draft() };
        assert_eq!(field(no_pkce), "require_pkce");
        let keys_and_secret = ClientDraft {
            has_secret: true,
            token_endpoint_auth_method: Some(AuthMethod::PrivateKeyJwt),
            ..draft()
        };
        assert_eq!(field(keys_and_secret), "client_secret");
    }
}
