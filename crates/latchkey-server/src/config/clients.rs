//! `[[clients]]` and `[[users]]`: static registrations upserted at start-up.

use std::collections::HashSet;

use latchkey::clients::registration::{self, ClientDraft};
use latchkey::model::{
    ApplicationType, AuthMethod, Client, GrantType, Resource, SigningAlg, TokenFormat,
};
use latchkey::users;
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
    /// The password, or the hash to store.
    pub password: StaticPassword,
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
    client_secret_file: Option<String>,
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

/// How a static user's password is given.
#[derive(Debug, Clone)]
pub enum StaticPassword {
    /// In plaintext (hashed before it is stored); `in_file` when written in the config file
    /// itself rather than read from `password_file`.
    Plain {
        /// The password.
        password: Secret,
        /// Written in the config file.
        in_file: bool,
    },
    /// As a hash (argon2id, bcrypt or scrypt, as `latchkey users import` reads them).
    Hash(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUser {
    username: String,
    password: Option<Secret>,
    password_file: Option<String>,
    password_hash: Option<String>,
    email: Option<String>,
    name: Option<String>,
}

/// RFC 6749 §3.3 scope syntax, as a config error.
pub(super) fn check_scope_token(key: &str, value: &str) -> Result<(), ConfigError> {
    registration::check_scope_token(value).map_err(|problem| ConfigError::at(key, problem))
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

impl RawClient {
    /// The registration rules of [`registration::validate`], with errors named by their key
    /// in the file.
    fn validate(self, key: &str, resources: &[Resource]) -> Result<StaticClient, ConfigError> {
        let refresh_grace_period_secs = self
            .refresh_grace_period
            .as_deref()
            .map(|value| {
                duration(&format!("{key}.refresh_grace_period"), value).map(|d| d.as_secs())
            })
            .transpose()?;
        let secret = super::raw::secret_setting(
            &format!("{key}.client_secret"),
            self.client_secret,
            self.client_secret_file,
        )?;
        let draft = ClientDraft {
            client_id: self.client_id,
            has_secret: secret.is_some(),
            client_name: self.client_name,
            application_type: self.application_type,
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            grant_types: self.grant_types,
            scopes: self.scopes,
            token_endpoint_auth_method: self.token_endpoint_auth_method,
            require_consent: self.require_consent,
            require_pkce: self.require_pkce,
            jwks_uri: self.jwks_uri,
            jwks: self.jwks,
            access_token_format: self.access_token_format,
            id_token_signed_response_alg: self.id_token_signed_response_alg,
            refresh_grace_period_secs,
            remember_consent: self.remember_consent,
            legacy_assertion_audience: self.legacy_assertion_audience,
            id_token_on_refresh: self.id_token_on_refresh,
            claims_in_id_token: self.claims_in_id_token,
            session_refresh_tokens: self.session_refresh_tokens,
        };
        let client = registration::validate(draft, resources)
            .map_err(|error| ConfigError::at(format!("{key}.{}", error.field), error.problem))?;
        Ok(StaticClient { client, secret })
    }
}

pub(super) fn validate_users(raw: Vec<RawUser>) -> Result<Vec<StaticUser>, ConfigError> {
    let mut seen = HashSet::new();
    let mut users = Vec::with_capacity(raw.len());
    for (index, user) in raw.into_iter().enumerate() {
        let key = format!("users[{index}]");
        if let Err(problem) = users::check_username(&user.username) {
            return Err(ConfigError::at(format!("{key}.username"), problem));
        }
        if !seen.insert(user.username.clone()) {
            return Err(ConfigError::at(
                format!("{key}.username"),
                format!("{:?} is listed twice", user.username),
            ));
        }
        let in_file = user.password.is_some();
        let plain = super::raw::secret_setting(
            &format!("{key}.password"),
            user.password,
            user.password_file,
        )?;
        let password = match (plain, user.password_hash) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::at(
                    format!("{key}.password_hash"),
                    "give a password or its hash, not both",
                ));
            }
            (None, None) => {
                return Err(ConfigError::at(
                    format!("{key}.password"),
                    "is missing: give password, password_file or password_hash",
                ));
            }
            (Some(password), None) => {
                if let Err(problem) = users::check_password(password.expose()) {
                    return Err(ConfigError::at(format!("{key}.password"), problem));
                }
                StaticPassword::Plain { password, in_file }
            }
            (None, Some(hash)) => match latchkey::password::HashKind::of(&hash) {
                Ok(latchkey::password::HashKind::Sha256) | Err(_) => {
                    let problem = latchkey::password::HashKind::of(&hash)
                        .err()
                        .unwrap_or_else(|| "a sha256: hash is for generated client secrets".into());
                    return Err(ConfigError::at(format!("{key}.password_hash"), problem));
                }
                Ok(_) => StaticPassword::Hash(hash),
            },
        };
        users.push(StaticUser {
            username: user.username,
            password,
            email: user.email,
            name: user.name,
        });
    }
    Ok(users)
}
