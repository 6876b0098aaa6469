//! `[[clients]]` and `[[users]]`: static registrations upserted at start-up.

use std::collections::HashSet;

use latchkey::model::scope;
use latchkey::model::{
    ApplicationType, AuthMethod, Client, GrantType, Resource, SigningAlg, TokenFormat,
};
use latchkey::oauth::{audience, redirect_uri};
use latchkey_resource::JwkSet;
use serde::Deserialize;

use super::{ConfigError, Secret, duration};

/// A client from the config, with its human-chosen secret (hashed before it is stored).
#[derive(Debug, Clone)]
pub struct StaticClient {
    /// The metadata.
    pub client: Client,
    /// The secret, for confidential clients using `client_secret_*`.
    pub secret: Option<Secret>,
}

/// A user from the config.
#[derive(Debug, Clone)]
pub struct StaticUser {
    /// Login name.
    pub username: String,
    /// Password (hashed before it is stored).
    pub password: Secret,
    /// Email address.
    pub email: Option<String>,
    /// Display name.
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClient {
    client_id: String,
    client_secret: Option<Secret>,
    client_name: Option<String>,
    application_type: Option<ApplicationType>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    grant_types: Option<Vec<GrantType>>,
    #[serde(default)]
    scopes: Vec<String>,
    token_endpoint_auth_method: Option<AuthMethod>,
    require_consent: Option<bool>,
    require_pkce: Option<bool>,
    jwks_uri: Option<String>,
    jwks: Option<JwkSet>,
    access_token_format: Option<TokenFormat>,
    id_token_signed_response_alg: Option<SigningAlg>,
    refresh_grace_period: Option<String>,
    remember_consent: Option<bool>,
    #[serde(default)]
    legacy_assertion_audience: bool,
    id_token_on_refresh: Option<bool>,
    claims_in_id_token: Option<bool>,
    session_refresh_tokens: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUser {
    username: String,
    password: Secret,
    email: Option<String>,
    name: Option<String>,
}

/// RFC 6749 §3.3 scope syntax, as a config error.
pub(super) fn check_scope_token(key: &str, value: &str) -> Result<(), ConfigError> {
    if scope::is_scope_token(value) {
        Ok(())
    } else {
        Err(ConfigError::at(
            key,
            format!(
                "{value:?} is not a valid scope: printable ASCII without spaces, quotes or backslashes (RFC 6749 §3.3)"
            ),
        ))
    }
}

pub(super) fn validate_clients(
    raw: Vec<RawClient>,
    resources: &[Resource],
) -> Result<Vec<StaticClient>, ConfigError> {
    let mut seen = HashSet::new();
    let mut clients = Vec::with_capacity(raw.len());
    for (index, client) in raw.into_iter().enumerate() {
        let key = format!("clients[{index}]");
        if !seen.insert(client.client_id.clone()) {
            return Err(ConfigError::at(
                format!("{key}.client_id"),
                format!("{:?} is listed twice", client.client_id),
            ));
        }
        clients.push(client.validate(&key, resources)?);
    }
    Ok(clients)
}

/// A client_id is printable ASCII without spaces, so it survives Basic auth, URLs and logs.
fn check_client_id(key: &str, id: &str) -> Result<(), ConfigError> {
    if id.is_empty()
        || id.len() > 255
        || !id.bytes().all(|b| (0x21..=0x7e).contains(&b))
        || id.contains(':')
    {
        return Err(ConfigError::at(
            format!("{key}.client_id"),
            format!("{id:?} must be 1-255 printable ASCII characters without spaces or ':'"),
        ));
    }
    Ok(())
}

impl RawClient {
    fn validate(self, key: &str, resources: &[Resource]) -> Result<StaticClient, ConfigError> {
        let at = |field: &str, problem: String| ConfigError::at(format!("{key}.{field}"), problem);
        check_client_id(key, &self.client_id)?;
        let has_keys = self.jwks.is_some() || self.jwks_uri.is_some();
        let method =
            self.token_endpoint_auth_method.unwrap_or(match (&self.client_secret, has_keys) {
                (Some(_), _) => AuthMethod::ClientSecretBasic,
                (None, true) => AuthMethod::PrivateKeyJwt,
                (None, false) => AuthMethod::None,
            });
        match (method, &self.client_secret) {
            (AuthMethod::None, Some(_)) => {
                return Err(at("client_secret", "a public client (token_endpoint_auth_method = \"none\") must not have a secret: remove client_secret or choose client_secret_basic".into()));
            }
            (AuthMethod::PrivateKeyJwt, Some(_)) => {
                return Err(at(
                    "client_secret",
                    "a private_key_jwt client authenticates with its keys: remove client_secret"
                        .into(),
                ));
            }
            (m, None) if m.uses_secret() => {
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
            return Err(at("jwks_uri", "a private_key_jwt client needs jwks_uri or jwks".into()));
        }
        if let Some(uri) = &self.jwks_uri {
            match url::Url::parse(uri) {
                Ok(url) if url.scheme() == "https" || url.scheme() == "http" => {}
                _ => return Err(at("jwks_uri", format!("{uri:?} must be an https URL"))),
            }
        }
        let app_type = self.application_type.unwrap_or_default();
        let grant_types = self.grant_types.unwrap_or_else(|| vec![GrantType::AuthorizationCode]);
        if grant_types.is_empty() {
            return Err(at("grant_types", "must name at least one grant type".into()));
        }
        let public = method == AuthMethod::None;
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
                "refresh_token needs a grant that issues refresh tokens (authorization_code or password); client_credentials gets none (RFC 6749 §4.4.3)".into(),
            ));
        }
        if !grant_types.contains(&GrantType::AuthorizationCode) {
            for (field, uris) in [
                ("redirect_uris", &self.redirect_uris),
                ("post_logout_redirect_uris", &self.post_logout_redirect_uris),
            ] {
                if !uris.is_empty() {
                    return Err(at(
                        field,
                        "are used only by the authorization_code grant, which this client does not have: remove them or add the grant".into(),
                    ));
                }
            }
        }
        if grant_types.contains(&GrantType::AuthorizationCode) && self.redirect_uris.is_empty() {
            return Err(at(
                "redirect_uris",
                "a client with the authorization_code grant needs at least one redirect URI".into(),
            ));
        }
        for (field, uris) in [
            ("redirect_uris", &self.redirect_uris),
            ("post_logout_redirect_uris", &self.post_logout_redirect_uris),
        ] {
            for (index, uri) in uris.iter().enumerate() {
                redirect_uri::validate(uri, app_type).map_err(|error| {
                    at(&format!("{field}[{index}]"), format!("{uri:?} {error}"))
                })?;
            }
        }
        for (index, value) in self.scopes.iter().enumerate() {
            let at = format!("{key}.scopes[{index}]");
            check_scope_token(&at, value)?;
            // A scope nothing defines could only reach a token whose audience does not
            // define it (docs/INTERFACE.md audience rules).
            if !audience::is_known(value, resources) {
                return Err(ConfigError::at(
                    at,
                    format!(
                        "{value:?} is neither an OpenID scope ({}) nor defined by a [[resources]] entry: add it to the scopes of the API that owns it",
                        audience::OPENID_SCOPES.join(", ")
                    ),
                ));
            }
        }
        if public && self.require_pkce == Some(false) {
            return Err(at(
                "require_pkce",
                "PKCE cannot be switched off for a public client (RFC 9700 §2.1.1)".into(),
            ));
        }
        let refresh_grace_period_secs = self
            .refresh_grace_period
            .as_deref()
            .map(|value| {
                duration(&format!("{key}.refresh_grace_period"), value).map(|d| d.as_secs())
            })
            .transpose()?;
        let client = Client {
            client_id: self.client_id,
            client_name: self.client_name,
            application_type: app_type,
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            grant_types,
            scopes: self.scopes,
            token_endpoint_auth_method: method,
            require_consent: self.require_consent.unwrap_or(true),
            require_pkce: self.require_pkce.unwrap_or(true),
            jwks_uri: self.jwks_uri,
            jwks: self.jwks,
            access_token_format: self.access_token_format,
            id_token_signed_response_alg: self.id_token_signed_response_alg,
            refresh_grace_period_secs,
            remember_consent: self.remember_consent,
            legacy_assertion_audience: self.legacy_assertion_audience,
            id_token_on_refresh: self.id_token_on_refresh.unwrap_or(true),
            claims_in_id_token: self.claims_in_id_token.unwrap_or(true),
            session_refresh_tokens: self.session_refresh_tokens.unwrap_or(true),
        };
        Ok(StaticClient { client, secret: self.client_secret })
    }
}

pub(super) fn validate_users(raw: Vec<RawUser>) -> Result<Vec<StaticUser>, ConfigError> {
    let mut seen = HashSet::new();
    let mut users = Vec::with_capacity(raw.len());
    for (index, user) in raw.into_iter().enumerate() {
        let key = format!("users[{index}]");
        if user.username.trim().is_empty() || user.username.chars().any(char::is_control) {
            return Err(ConfigError::at(
                format!("{key}.username"),
                "must be non-empty and printable",
            ));
        }
        if !seen.insert(user.username.clone()) {
            return Err(ConfigError::at(
                format!("{key}.username"),
                format!("{:?} is listed twice", user.username),
            ));
        }
        if user.password.expose().is_empty() {
            return Err(ConfigError::at(format!("{key}.password"), "must not be empty"));
        }
        users.push(StaticUser {
            username: user.username,
            password: user.password,
            email: user.email,
            name: user.name,
        });
    }
    Ok(users)
}

/// Validates one client given as a table (used by `latchkey clients add`), with the same rules
/// as `[[clients]]`.
pub fn client_from_table(
    table: toml::Table,
    resources: &[Resource],
) -> Result<Client, ConfigError> {
    let raw: RawClient =
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|error| {
            let path = error.path().to_string();
            ConfigError::at(
                format!("client.{path}"),
                super::one_line(&error.into_inner().to_string()),
            )
        })?;
    Ok(raw.validate("client", resources)?.client)
}
