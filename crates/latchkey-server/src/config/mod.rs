//! Configuration: a TOML file with a `LATCHKEY_*` environment overlay, validated at load into
//! typed values.
//!
//! Every problem is reported as one line that names the key and says how to fix it; the CLI
//! turns it into exit status 2. `latchkey check` runs the same validation and then lists the
//! settings that are valid but weaken security ([`Config::warnings`]).

mod clients;
mod environment;
mod raw;
mod warnings;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use latchkey::keys::{MasterKey, Policy};
use latchkey::model::TokenFormat;
use latchkey::store::{Options, Synchronous};
use url::Url;

use environment::{EnvKey, environment_key, explain, overlay};

pub use clients::{StaticClient, StaticPassword, StaticUser};
pub use raw::Secret;

/// Environment variables with this prefix are reserved for the test suite, not config keys.
const TEST_PREFIX: &str = "LATCHKEY_TEST_";

/// How long browsers and verifiers may cache the JWKS (`Cache-Control: max-age`).
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(300);
/// How often each node reloads keys from the database (and rotates those due), unless
/// `keys.refresh_interval` says otherwise.
pub const KEY_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// A configuration problem: one line naming the key and the fix.
#[derive(Debug, thiserror::Error)]
#[error("config: {0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    fn at(key: impl std::fmt::Display, problem: impl std::fmt::Display) -> Self {
        ConfigError(format!("{key}: {problem}"))
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The issuer identifier, exactly as configured.
    pub issuer: String,
    /// Where to listen.
    pub listen: SocketAddr,
    /// Encrypts private signing keys at rest when set.
    pub master_key: Option<Secret>,
    /// The database.
    pub database: DatabaseConfig,
    /// HTTPS served directly.
    pub tls: Option<TlsConfig>,
    /// Token lifetimes and format.
    pub tokens: TokenConfig,
    /// Signing-key rotation.
    pub keys: KeyConfig,
    /// Logging.
    pub log: LogConfig,
    /// Bounds on work and connections.
    pub limits: LimitsConfig,
    /// Proxies and response headers.
    pub http: HttpConfig,
    /// What new passwords must meet.
    pub passwords: latchkey::users::PasswordPolicy,
    /// Where `/metrics` is served.
    pub metrics: MetricsConfig,
    /// APIs that accept latchkey's access tokens.
    pub resources: Vec<Resource>,
    /// Static clients, upserted at start-up.
    pub clients: Vec<StaticClient>,
    /// Static users, upserted at start-up.
    pub users: Vec<StaticUser>,
    /// Secret settings written in the config file itself (rather than the environment).
    pub secrets_in_file: Vec<&'static str>,
    /// What loading noticed but did not use (ignored environment variables), for the log.
    pub notes: Vec<String>,
}

/// `[metrics]`.
#[derive(Debug, Clone, Default)]
pub struct MetricsConfig {
    /// A management listener for `/metrics` (and health), away from the public port; then the
    /// public port does not serve `/metrics`.
    pub listen: Option<SocketAddr>,
}

/// `[database]`.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://...`.
    pub url: Secret,
    /// SQLite commit durability.
    pub synchronous: Synchronous,
}

/// `[tls]`.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// `[tokens]`.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    /// Access-token lifetime.
    pub access_token_ttl: Duration,
    /// Refresh-token lifetime.
    pub refresh_token_ttl: Duration,
    /// Authorization-code lifetime.
    pub authorization_code_ttl: Duration,
    /// id_token lifetime.
    pub id_token_ttl: Duration,
    /// Login-session lifetime.
    pub session_ttl: Duration,
    /// Server-wide grace window for refresh-token retries (`None`: strict rotation).
    pub refresh_grace_period: Option<Duration>,
    /// Default access-token format.
    pub access_token_format: TokenFormat,
}

/// `[keys]`.
#[derive(Debug, Clone)]
pub struct KeyConfig {
    /// Age at which a signing key is replaced.
    pub rotation_period: Duration,
    /// How long a new key is published before it signs.
    pub prepublication: Duration,
    /// How often each node reloads keys from the database.
    pub refresh_interval: Duration,
}

/// `[log]`.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Human-readable or JSON lines.
    pub json: bool,
    /// A `tracing` filter such as `info` or `latchkey=debug`; `RUST_LOG` wins when set.
    pub level: String,
    /// One `latchkey::access` line per request at info: method, route pattern, status,
    /// duration (never the query string or the body).
    pub access: bool,
}

/// `[limits]`: how much work and how many connections a node takes on before it sheds load.
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// Password checks that may wait for a hashing slot; more are answered 503 at once.
    pub hash_queue: usize,
    /// Open connections at most; further ones wait in the kernel's accept queue.
    pub max_connections: usize,
    /// A connection must send a request's headers within this time.
    pub header_read_timeout: Duration,
    /// A keep-alive connection with no request in flight is closed after this time.
    pub idle_timeout: Duration,
}

/// `[http]`.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Peers whose `X-Forwarded-For` names the client's address.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// `Strict-Transport-Security` max-age under an https issuer (`None`: not sent).
    pub hsts_max_age: Option<Duration>,
    /// Whether HSTS covers subdomains.
    pub hsts_include_subdomains: bool,
}

pub use latchkey::model::Resource;

impl Config {
    /// Reads `path` if given, else `./latchkey.toml` if present, else defaults; then the
    /// environment overlay; then validates.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let default = Path::new("latchkey.toml");
        let text = match path {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|error| {
                ConfigError(format!("cannot read {}: {error}", path.display()))
            })?),
            None if default.exists() => Some(
                std::fs::read_to_string(default)
                    .map_err(|error| ConfigError(format!("cannot read latchkey.toml: {error}")))?,
            ),
            None => None,
        };
        let vars: Vec<(String, String)> = std::env::vars().collect();
        Self::from_parts(text.as_deref().unwrap_or(""), &vars)
    }

    /// Parses TOML text overlaid with `LATCHKEY_*` pairs from `vars`, then validates.
    pub fn from_parts(text: &str, vars: &[(String, String)]) -> Result<Self, ConfigError> {
        let mut table: toml::Table = text
            .parse()
            .map_err(|error: toml::de::Error| ConfigError(one_line(&error.to_string())))?;
        let mut secrets_in_file = Vec::new();
        if table.contains_key("master_key") {
            secrets_in_file.push("master_key");
        }
        let database_url =
            table.get("database").and_then(|d| d.get("url")).and_then(|u| u.as_str());
        // postgres://USER:PASSWORD@HOST/DB
        if database_url.is_some_and(|url| {
            url.split_once("://").is_some_and(|(_, rest)| {
                rest.split('@').next().is_some_and(|auth| rest.contains('@') && auth.contains(':'))
            })
        }) {
            secrets_in_file.push("database.url");
        }
        let mut from_environment = Vec::new();
        let mut notes = Vec::new();
        for (name, value) in vars {
            match environment_key(name) {
                EnvKey::NotOurs => {}
                EnvKey::Ignored(why) => notes.push(format!("ignored {name}: {why}")),
                EnvKey::Key(path) => {
                    overlay(&mut table, name, &path, value)?;
                    from_environment.push((path.join("."), name.clone()));
                }
            }
        }
        let raw: raw::RawConfig = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|error| {
                let path = error.path().to_string();
                let inner = one_line(&error.into_inner().to_string());
                if path == "." {
                    return ConfigError(inner);
                }
                // toml appends a less precise location (" in `clients.grant_types`").
                let inner = match inner.rfind(" in `") {
                    Some(cut) if inner.ends_with('`') => inner[..cut].to_owned(),
                    _ => inner,
                };
                let variable = from_environment
                    .iter()
                    .find(|(key, _)| *key == path || key.starts_with(&format!("{path}.")))
                    .map(|(_, name)| name.as_str());
                explain(&path, &inner, variable)
            })?;
        let mut config = raw.validate().map_err(|ConfigError(message)| {
            // A value the environment set names its variable too.
            match from_environment.iter().find(|(key, _)| message.starts_with(&format!("{key}: ")))
            {
                Some((_, name)) => ConfigError(format!("environment variable {name}: {message}")),
                None => ConfigError(message),
            }
        })?;
        config.secrets_in_file = secrets_in_file;
        config.notes = notes;
        Ok(config)
    }

    /// Refuses SQLite database files that other users of the machine may read or write
    /// (`serve` and `check`; the files latchkey creates are owner-only).
    pub fn check_database_files(&self) -> Result<(), ConfigError> {
        match latchkey::store::exposed_files(self.database.url.expose()).first() {
            None => Ok(()),
            Some((file, mode)) => Err(ConfigError(format!(
                "database: {file} has mode {mode:04o}, so other users of this machine can read it (hashed secrets, and the signing keys unless a master key is set): run `chmod 600 {file}*` and keep its directory 0700"
            ))),
        }
    }

    /// Store options derived from the config.
    pub fn store_options(&self) -> Options {
        Options { synchronous: self.database.synchronous, ..Options::default() }
    }

    /// The parsed master key, if one is configured.
    pub fn master_key(&self) -> Result<Option<MasterKey>, ConfigError> {
        self.master_key
            .as_ref()
            .map(|key| MasterKey::parse(key.expose()).map_err(|e| ConfigError::at("master_key", e)))
            .transpose()
    }

    /// Timing of the key lifecycle.
    pub fn key_policy(&self) -> Policy {
        let longest_token = self.tokens.access_token_ttl.max(self.tokens.id_token_ttl);
        // Nodes notice a successor within one refresh interval and may sign with the old key
        // until then; keep its public half that much longer, twice for clock skew.
        let retention = longest_token + 2 * self.keys.refresh_interval;
        Policy {
            prepublication: secs(self.keys.prepublication),
            retention: secs(retention),
            rotation_period: secs(self.keys.rotation_period),
        }
    }
}

/// Whole seconds as the protocol layer counts them.
pub(crate) fn secs(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

/// TOML errors span several lines with a caret; the CLI promises one.
fn one_line(message: &str) -> String {
    message.split('\n').map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// The longest duration any setting accepts.
/// The longest duration any setting accepts.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 86_400);
const MAX_DURATION_TEXT: &str = "10 years (\"3650d\")";

/// Parses a duration such as `15m`, `1h30m` or `14d`.
fn duration(key: &str, value: &str) -> Result<Duration, ConfigError> {
    let parsed = humantime::parse_duration(value).map_err(|_| {
        ConfigError::at(
            key,
            format!(
                "invalid duration {value:?}: write it like \"60s\", \"15m\", \"1h30m\" or \"14d\""
            ),
        )
    })?;
    if parsed.is_zero() {
        return Err(ConfigError::at(key, "must be longer than zero"));
    }
    // Far beyond any sensible setting, and lifetimes are added to the current time.
    if parsed > MAX_DURATION {
        return Err(ConfigError::at(
            key,
            format!("{value:?} is longer than the maximum allowed, {MAX_DURATION_TEXT}"),
        ));
    }
    Ok(parsed)
}

/// Whether `host` is a loopback name or address.
fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// Validates the issuer: an absolute https URL without query or fragment (RFC 8414 §2), or
/// http on a loopback host for local use.
fn issuer(value: &str) -> Result<String, ConfigError> {
    let url = Url::parse(value).map_err(|error| {
        ConfigError::at(
            "issuer",
            format!("{value:?} is not a URL ({error}): use e.g. \"https://auth.example.com\""),
        )
    })?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::at("issuer", "must not have a query or fragment (RFC 8414 §2)"));
    }
    // The issuer is compared character for character (OIDC Discovery §4.3) and the discovery
    // URLs are built by appending to it: a trailing slash gives `//.well-known`, and these
    // paths could not be routed.
    if value.ends_with('/') {
        return Err(ConfigError::at(
            "issuer",
            format!(
                "{value:?} ends with a slash: write it without one ({:?}); clients compare it character for character",
                value.trim_end_matches('/')
            ),
        ));
    }
    if url.path().contains("//") || url.path().contains("/.well-known") {
        return Err(ConfigError::at(
            "issuer",
            format!(
                "{value:?} has a path the discovery URLs cannot be built on: use the bare origin or a plain path such as /auth"
            ),
        ));
    }
    match (url.scheme(), url.host()) {
        ("https", Some(_)) => {}
        ("http", Some(host)) if is_loopback(&host) => {}
        ("http", Some(_)) => {
            return Err(ConfigError::at(
                "issuer",
                format!(
                    "{value:?} uses http on a non-loopback host: use https (http is only for 127.0.0.1, [::1] or localhost)"
                ),
            ));
        }
        _ => return Err(ConfigError::at("issuer", format!("{value:?} must be an https URL"))),
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests;
