//! The file's shape, as serde reads it, and its validation into [`Config`].

use latchkey::oauth::client_assertion;
use latchkey::users::PasswordPolicy;
use std::collections::HashSet;
use std::fmt;

use latchkey::model::TokenFormat;
use latchkey::store::Synchronous;
use serde::Deserialize;

use super::clients::{RawClient, RawUser};
use super::{
    Config, ConfigError, DatabaseConfig, HttpConfig, JWKS_MAX_AGE, KEY_REFRESH_INTERVAL, KeyConfig,
    LimitsConfig, LogConfig, MetricsConfig, Resource, TlsConfig, TokenConfig, duration, issuer,
};

/// A configured secret (password, client secret, master key, database URL): never printed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The log levels, for `log.level`.
const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// `log.level`: a level, or comma-separated `target=level` directives with an optional
/// default level (`"info"`, `"latchkey=debug,info"`), as `RUST_LOG` takes them. A bare word
/// that is no level is refused: it would silently switch logging to one target.
fn log_level(value: String) -> Result<String, ConfigError> {
    let is_level = |word: &str| LEVELS.contains(&word.trim().to_ascii_lowercase().as_str());
    for directive in value.split(',').filter(|d| !d.trim().is_empty()) {
        let level = directive.rsplit_once('=').map_or(directive, |(_, level)| level);
        if !is_level(level) {
            return Err(ConfigError::at(
                "log.level",
                format!(
                    "{value:?}: {:?} is not a level; use one of {} or target=level directives (\"latchkey=debug,info\")",
                    level.trim(),
                    LEVELS.join(", ")
                ),
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(&value)
        .map_err(|error| ConfigError::at("log.level", format!("{value:?}: {error}")))?;
    Ok(value)
}

/// The largest secret file read (a key, a URL, a password: a few hundred bytes at most).
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// A secret setting `key`, given in place or as `{key}_file`, the path of a file that holds it
/// (Docker and Kubernetes secrets): read whole, without its final line break.
pub(super) fn secret_setting(
    key: &str,
    value: Option<Secret>,
    file: Option<String>,
) -> Result<Option<Secret>, ConfigError> {
    let Some(path) = file else { return Ok(value) };
    let file_key = format!("{key}_file");
    if value.is_some() {
        return Err(ConfigError::at(&file_key, format!("give {key} or {file_key}, not both")));
    }
    let cannot =
        |error: std::io::Error| ConfigError::at(&file_key, format!("cannot read {path}: {error}"));
    let metadata = std::fs::metadata(&path).map_err(cannot)?;
    if metadata.len() > MAX_SECRET_FILE {
        return Err(ConfigError::at(
            &file_key,
            format!("{path} is larger than 64 KiB: is it the right file?"),
        ));
    }
    let text = std::fs::read_to_string(&path).map_err(cannot)?;
    let text = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
    if text.is_empty() {
        return Err(ConfigError::at(&file_key, format!("{path} is empty")));
    }
    Ok(Some(Secret::new(text)))
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    issuer: Option<String>,
    listen: Option<String>,
    master_key: Option<Secret>,
    master_key_file: Option<String>,
    #[serde(default)]
    database: RawDatabase,
    tls: Option<RawTls>,
    #[serde(default)]
    tokens: RawTokens,
    #[serde(default)]
    keys: RawKeys,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    passwords: RawPasswords,
    #[serde(default)]
    metrics: RawMetrics,
    #[serde(default)]
    resources: Vec<RawResource>,
    #[serde(default)]
    clients: Vec<RawClient>,
    #[serde(default)]
    users: Vec<RawUser>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: Option<Secret>,
    url_file: Option<String>,
    synchronous: Option<RawSynchronous>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawSynchronous {
    Normal,
    Full,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: String,
    key: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTokens {
    access_token_ttl: Option<String>,
    refresh_token_ttl: Option<String>,
    authorization_code_ttl: Option<String>,
    id_token_ttl: Option<String>,
    session_ttl: Option<String>,
    refresh_grace_period: Option<String>,
    access_token_format: Option<TokenFormat>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeys {
    rotation_period: Option<String>,
    prepublication: Option<String>,
    refresh_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<RawLogFormat>,
    level: Option<String>,
    access: Option<bool>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawLogFormat {
    Text,
    Json,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    hash_queue: Option<RawCount>,
    max_connections: Option<RawCount>,
    header_read_timeout: Option<String>,
    idle_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    #[serde(default)]
    trusted_proxies: Vec<String>,
    hsts_max_age: Option<String>,
    hsts_include_subdomains: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<String>,
}

impl RawMetrics {
    fn validate(self) -> Result<MetricsConfig, ConfigError> {
        let listen = self
            .listen
            .map(|text| {
                text.parse().map_err(|_| {
                    ConfigError::at(
                        "metrics.listen",
                        format!(
                            "{text:?} is not an address: write IP:PORT, e.g. \"127.0.0.1:9464\""
                        ),
                    )
                })
            })
            .transpose()?;
        Ok(MetricsConfig { listen })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPasswords {
    min_length: Option<RawCount>,
    refuse_common: Option<bool>,
}

impl RawPasswords {
    fn validate(self) -> Result<PasswordPolicy, ConfigError> {
        let default = PasswordPolicy::default();
        let min_length = match &self.min_length {
            None => default.min_length,
            Some(count) => count.validate("passwords.min_length", 1..=256)?,
        };
        Ok(PasswordPolicy {
            min_length,
            refuse_common: self.refuse_common.unwrap_or(default.refuse_common),
        })
    }
}

/// A count from the file (a TOML integer) or from the environment (text).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawCount {
    Number(i64),
    Text(String),
}

impl RawCount {
    fn validate(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<usize>,
    ) -> Result<usize, ConfigError> {
        let value = match self {
            RawCount::Number(n) => usize::try_from(*n).ok(),
            RawCount::Text(text) => text.trim().parse().ok(),
        };
        value.filter(|n| range.contains(n)).ok_or_else(|| {
            ConfigError::at(
                key,
                format!("must be a whole number from {} to {}", range.start(), range.end()),
            )
        })
    }
}

impl RawLimits {
    fn validate(self) -> Result<LimitsConfig, ConfigError> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let hash_queue = match &self.hash_queue {
            None => 4 * cores,
            Some(count) => count.validate("limits.hash_queue", 0..=10_000)?,
        };
        let max_connections = match &self.max_connections {
            None => 1024,
            Some(count) => count.validate("limits.max_connections", 1..=1_000_000)?,
        };
        let header_read_timeout = optional_duration(
            "limits.header_read_timeout",
            self.header_read_timeout.as_deref(),
            "10s",
        )?;
        let idle_timeout =
            optional_duration("limits.idle_timeout", self.idle_timeout.as_deref(), "60s")?;
        Ok(LimitsConfig { hash_queue, max_connections, header_read_timeout, idle_timeout })
    }
}

impl RawHttp {
    fn validate(self) -> Result<HttpConfig, ConfigError> {
        let mut trusted_proxies = Vec::with_capacity(self.trusted_proxies.len());
        for (index, text) in self.trusted_proxies.iter().enumerate() {
            let address = text.parse().map_err(|_| {
                ConfigError::at(
                    format!("http.trusted_proxies[{index}]"),
                    format!("{text:?} is not an IP address: list the proxies' own addresses, e.g. \"10.0.0.5\""),
                )
            })?;
            trusted_proxies.push(address);
        }
        let hsts_max_age = match self.hsts_max_age.as_deref() {
            None => Some(std::time::Duration::from_secs(31_536_000)),
            Some("off") => None,
            Some(value) => Some(duration("http.hsts_max_age", value)?),
        };
        Ok(HttpConfig {
            trusted_proxies,
            hsts_max_age,
            hsts_include_subdomains: self.hsts_include_subdomains.unwrap_or(true),
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResource {
    identifier: String,
    #[serde(default)]
    scopes: Vec<RawScope>,
    /// The client the API authenticates as, e.g. to introspect the tokens meant for it.
    client_id: Option<String>,
}

/// A resource's scope: its name, or `{ name, description }` (the description is shown on the
/// consent page beside the name).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawScope {
    Name(String),
    Described { name: String, description: String },
}

fn optional_duration(
    key: &str,
    value: Option<&str>,
    default: &str,
) -> Result<std::time::Duration, ConfigError> {
    duration(key, value.unwrap_or(default))
}

impl RawConfig {
    pub(super) fn validate(self) -> Result<Config, ConfigError> {
        let issuer = issuer(self.issuer.as_deref().unwrap_or("http://127.0.0.1:8080"))?;
        let master_key = secret_setting("master_key", self.master_key, self.master_key_file)?;
        // A server others can reach keeps its private signing keys encrypted at rest; only a
        // loopback issuer (this machine, `latchkey demo`) may run without a master key.
        if master_key.is_none() && !client_assertion::is_loopback_issuer(&issuer) {
            return Err(ConfigError::at(
                "master_key",
                format!(
                    "is required for the issuer {issuer:?} (not on loopback): without it the private signing keys are stored unencrypted; set LATCHKEY_MASTER_KEY (or LATCHKEY_MASTER_KEY_FILE) to 32 random bytes in base64 (`openssl rand -base64 32`)"
                ),
            ));
        }
        let listen_text = self.listen.as_deref().unwrap_or("127.0.0.1:8080");
        let listen = listen_text.parse().map_err(|_| {
            ConfigError::at(
                "listen",
                format!("{listen_text:?} is not an address: write IP:PORT, e.g. \"0.0.0.0:8080\""),
            )
        })?;
        let tokens = self.tokens.validate()?;
        let keys = self.keys.validate()?;
        let resources = validate_resources(self.resources)?;
        let clients = super::clients::validate_clients(self.clients, &resources)?;
        let loopback_issuer = client_assertion::is_loopback_issuer(&issuer);
        for (index, entry) in clients.iter().enumerate() {
            if let Some(uri) = &entry.client.jwks_uri {
                client_assertion::check_jwks_uri(uri, loopback_issuer).map_err(|why| {
                    ConfigError::at(format!("clients[{index}].jwks_uri"), format!("{uri:?}: {why}"))
                })?;
            }
        }
        let users = super::clients::validate_users(self.users)?;
        let config = Config {
            issuer,
            listen,
            master_key,
            database: self.database.validate()?,
            tls: self.tls.map(|tls| TlsConfig { cert: tls.cert.into(), key: tls.key.into() }),
            tokens,
            keys,
            log: LogConfig {
                json: matches!(self.log.format, Some(RawLogFormat::Json)),
                level: log_level(self.log.level.unwrap_or_else(|| "info".into()))?,
                access: self.log.access.unwrap_or(false),
            },
            limits: self.limits.validate()?,
            http: self.http.validate()?,
            passwords: self.passwords.validate()?,
            metrics: self.metrics.validate()?,
            resources,
            clients,
            users,
            secrets_in_file: Vec::new(),
            notes: Vec::new(),
        };
        config.master_key()?;
        Ok(config)
    }
}

impl RawDatabase {
    fn validate(self) -> Result<DatabaseConfig, ConfigError> {
        let url = secret_setting("database.url", self.url, self.url_file)?
            .unwrap_or_else(|| Secret::new("sqlite://latchkey.db"));
        let text = url.expose();
        let known = ["sqlite://", "postgres://", "postgresql://"];
        if !known.iter().any(|scheme| text.starts_with(scheme)) || known.contains(&text) {
            return Err(ConfigError::at(
                "database.url",
                "must be sqlite://PATH (one node) or postgres://USER@HOST/DB (several nodes)",
            ));
        }
        let synchronous = match self.synchronous {
            None | Some(RawSynchronous::Normal) => Synchronous::Normal,
            Some(RawSynchronous::Full) => Synchronous::Full,
        };
        Ok(DatabaseConfig { url, synchronous })
    }
}

impl RawTokens {
    fn validate(self) -> Result<TokenConfig, ConfigError> {
        Ok(TokenConfig {
            access_token_ttl: optional_duration(
                "tokens.access_token_ttl",
                self.access_token_ttl.as_deref(),
                "15m",
            )?,
            refresh_token_ttl: optional_duration(
                "tokens.refresh_token_ttl",
                self.refresh_token_ttl.as_deref(),
                "14d",
            )?,
            authorization_code_ttl: optional_duration(
                "tokens.authorization_code_ttl",
                self.authorization_code_ttl.as_deref(),
                "60s",
            )?,
            id_token_ttl: optional_duration(
                "tokens.id_token_ttl",
                self.id_token_ttl.as_deref(),
                "1h",
            )?,
            session_ttl: optional_duration(
                "tokens.session_ttl",
                self.session_ttl.as_deref(),
                "12h",
            )?,
            refresh_grace_period: self
                .refresh_grace_period
                .as_deref()
                .map(|value| duration("tokens.refresh_grace_period", value))
                .transpose()?,
            access_token_format: self.access_token_format.unwrap_or_default(),
        })
    }
}

impl RawKeys {
    fn validate(self) -> Result<KeyConfig, ConfigError> {
        let rotation_period =
            optional_duration("keys.rotation_period", self.rotation_period.as_deref(), "90d")?;
        let prepublication =
            optional_duration("keys.prepublication", self.prepublication.as_deref(), "1h")?;
        let refresh_interval = match self.refresh_interval.as_deref() {
            None => KEY_REFRESH_INTERVAL,
            Some(value) => duration("keys.refresh_interval", value)?,
        };
        if !(1..=3600).contains(&refresh_interval.as_secs()) {
            return Err(ConfigError::at("keys.refresh_interval", "must be between 1s and 1h"));
        }
        let minimum = JWKS_MAX_AGE + refresh_interval;
        if prepublication <= minimum {
            return Err(ConfigError::at(
                "keys.prepublication",
                format!(
                    "must be longer than {}s (JWKS cache max-age plus key refresh interval), or verifiers may see a key before they can fetch it",
                    minimum.as_secs()
                ),
            ));
        }
        if rotation_period <= prepublication {
            return Err(ConfigError::at(
                "keys.rotation_period",
                "must be longer than keys.prepublication",
            ));
        }
        Ok(KeyConfig { rotation_period, prepublication, refresh_interval })
    }
}

fn validate_resources(raw: Vec<RawResource>) -> Result<Vec<Resource>, ConfigError> {
    let mut owners: HashSet<String> = HashSet::new();
    let mut identifiers: HashSet<String> = HashSet::new();
    let mut resources = Vec::with_capacity(raw.len());
    for (index, resource) in raw.into_iter().enumerate() {
        let key = format!("resources[{index}]");
        // RFC 8707 §2: an absolute URI without a fragment.
        match url::Url::parse(&resource.identifier) {
            Ok(url) if url.fragment().is_none() => {}
            _ => {
                return Err(ConfigError::at(
                    format!("{key}.identifier"),
                    format!(
                        "{:?} must be an absolute URI without a fragment (RFC 8707 §2)",
                        resource.identifier
                    ),
                ));
            }
        }
        if !identifiers.insert(resource.identifier.clone()) {
            return Err(ConfigError::at(format!("{key}.identifier"), "is listed twice"));
        }
        let mut scopes = Vec::with_capacity(resource.scopes.len());
        let mut descriptions = std::collections::BTreeMap::new();
        for (scope_index, raw_scope) in resource.scopes.into_iter().enumerate() {
            let scope_key = format!("{key}.scopes[{scope_index}]");
            let scope = match raw_scope {
                RawScope::Name(name) => name,
                RawScope::Described { name, description } => {
                    if description.trim().is_empty() || description.chars().any(char::is_control) {
                        return Err(ConfigError::at(
                            format!("{scope_key}.description"),
                            "must be non-empty printable text",
                        ));
                    }
                    descriptions.insert(name.clone(), description);
                    name
                }
            };
            super::clients::check_scope_token(&scope_key, &scope)?;
            if !owners.insert(scope.clone()) {
                return Err(ConfigError::at(
                    scope_key,
                    format!(
                        "scope {scope:?} is defined by two resources: each scope belongs to one API"
                    ),
                ));
            }
            scopes.push(scope);
        }
        resources.push(Resource {
            identifier: resource.identifier,
            scopes,
            client_id: resource.client_id,
            descriptions,
        });
    }
    Ok(resources)
}
