//! Command-line interface (the commands of docs/INTERFACE.md).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use latchkey::model::{ApplicationType, AuthMethod, GrantType, SigningAlg, TokenFormat};

/// latchkey: an OAuth 2.1 / OpenID Connect authorization server.
#[derive(Debug, Parser)]
#[command(name = "latchkey", version = crate::build::VERSION_LINE, about)]
pub struct Cli {
    /// Config file (default: ./latchkey.toml when present). LATCHKEY_<SECTION>__<KEY>
    /// variables override it.
    #[arg(long, global = true, value_name = "FILE", env = "LATCHKEY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print one JSON document instead of text (commands that print).
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the authorization server.
    Serve,
    /// Run everything on this machine with demo users and clients.
    #[cfg(feature = "demo")]
    Demo(DemoArgs),
    /// Manage registered clients.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Manage local user accounts.
    #[command(subcommand)]
    Users(UsersCommand),
    /// List and end users' browser sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// List and revoke grants (what users allowed clients: refresh-token families).
    #[command(subcommand)]
    Grants(GrantsCommand),
    /// Show and rotate signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Apply database migrations (serve does this too).
    Migrate,
    /// Validate the config and report insecure settings, without starting.
    Check,
    /// Exit 0 if the server of this config answers /healthz (a container's HEALTHCHECK; the
    /// image has no shell or curl).
    Healthcheck,
}

/// `latchkey demo`.
#[cfg(feature = "demo")]
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the demo keeps its SQLite database; reused by later runs.
    #[arg(long, default_value = "latchkey-demo", value_name = "DIR")]
    pub data_dir: PathBuf,
    /// latchkey's port; the PhotoAPI and the web client take the next two.
    #[arg(long, default_value_t = crate::demo::DEFAULT_PORT_BASE, value_name = "PORT")]
    pub port_base: u16,
}

/// `latchkey clients ...`.
#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Register a client; a confidential client's generated secret is printed once.
    Add(ClientAddArgs),
    /// List clients.
    List,
    /// Show one client.
    Show {
        /// The client_id.
        client_id: String,
    },
    /// Change a client in place: its grants and tokens are kept, and every later request
    /// follows the new registration (a removed scope is no longer minted, a removed redirect
    /// URI receives no new codes).
    Update(ClientUpdateArgs),
    /// Give a client a new generated secret, printed once; the old one works for the overlap.
    RotateSecret {
        /// The client_id.
        client_id: String,
        /// How long the old secret keeps working, e.g. "24h" (default: it stops now).
        #[arg(long, value_name = "DURATION", value_parser = overlap, default_value = "0s")]
        overlap: std::time::Duration,
    },
    /// Remove a client; its grants and tokens are revoked.
    Remove {
        /// The client_id.
        client_id: String,
    },
}

/// A usage problem found after parsing (a flag's value breaks a rule): exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A grant type latchkey knows, by its registered name.
fn grant_type(value: &str) -> Result<GrantType, String> {
    GrantType::parse(value).ok_or_else(|| {
        let known: Vec<&str> = GrantType::ALL.iter().map(|grant| grant.as_str()).collect();
        format!("unknown grant type {value:?}: use one of {}", known.join(", "))
    })
}

/// A value of a config key, by its config spelling (`client_secret_basic`, `opaque`, `ES256`).
fn config_value<T: serde::de::DeserializeOwned>(value: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(value.to_owned()))
        .map_err(|_| format!("{value:?} is not one of the values the config accepts for this key"))
}

/// A setting that `default` sends back to the server's default.
#[derive(Debug, Clone)]
pub struct OrDefault<T>(pub Option<T>);

fn or_default<T: serde::de::DeserializeOwned>(value: &str) -> Result<OrDefault<T>, String> {
    if value == "default" {
        Ok(OrDefault(None))
    } else {
        config_value(value).map(|v| OrDefault(Some(v)))
    }
}

fn token_format(value: &str) -> Result<OrDefault<TokenFormat>, String> {
    or_default(value).map_err(|_| format!("{value:?}: use jwt, opaque or default"))
}

fn signing_alg(value: &str) -> Result<OrDefault<SigningAlg>, String> {
    or_default(value).map_err(|_| format!("{value:?}: use RS256, ES256, EdDSA or default"))
}

fn auth_method(value: &str) -> Result<AuthMethod, String> {
    config_value(value).map_err(|_| {
        format!("{value:?}: use client_secret_basic, client_secret_post, private_key_jwt or none")
    })
}

fn application_type(value: &str) -> Result<ApplicationType, String> {
    config_value(value).map_err(|_| format!("{value:?}: use web or native"))
}

/// A duration as the config writes it ("30s", "24h").
fn duration(value: &str) -> Result<std::time::Duration, String> {
    let parsed = humantime::parse_duration(value).map_err(|_| {
        format!("invalid duration {value:?}: write it like \"60s\", \"15m\", \"1h30m\" or \"14d\"")
    })?;
    if parsed > crate::config::MAX_DURATION {
        return Err(format!("{value:?} is longer than 10 years"));
    }
    Ok(parsed)
}

fn overlap(value: &str) -> Result<std::time::Duration, String> {
    duration(value)
}

/// A refresh grace period: a duration, `off` (none) or `default` (the server's).
fn grace_period(value: &str) -> Result<OrDefault<u64>, String> {
    match value {
        "default" => Ok(OrDefault(None)),
        "off" => Ok(OrDefault(Some(0))),
        _ => duration(value).map(|d| OrDefault(Some(d.as_secs()))),
    }
}

/// A URL, or `none` to remove it.
fn or_none(value: &str) -> Result<OrDefault<String>, String> {
    Ok(OrDefault((value != "none").then(|| value.to_owned())))
}

/// A file path, or `none` to remove what it set.
fn path_or_none(value: &str) -> Result<OrDefault<PathBuf>, String> {
    Ok(OrDefault((value != "none").then(|| PathBuf::from(value))))
}

/// The client fields that `clients add` and `clients update` set, named after the config keys.
#[derive(Debug, Args)]
pub struct ClientFields {
    /// Name shown to users on the consent page (`none` removes it).
    #[arg(long, value_name = "NAME", value_parser = or_none)]
    pub name: Option<OrDefault<String>>,
    /// `web` or `native` (custom schemes and any-port loopback redirect URIs, RFC 8252).
    #[arg(long, value_name = "TYPE", value_parser = application_type)]
    pub application_type: Option<ApplicationType>,
    /// A redirect URI (repeatable): the whole list, replacing the registered one.
    #[arg(long = "redirect-uri", value_name = "URI")]
    pub redirect_uris: Vec<String>,
    /// A redirect URI to add to the registered ones (repeatable).
    #[arg(long = "add-redirect-uri", value_name = "URI")]
    pub add_redirect_uris: Vec<String>,
    /// A registered redirect URI to remove (repeatable).
    #[arg(long = "remove-redirect-uri", value_name = "URI")]
    pub remove_redirect_uris: Vec<String>,
    /// A post-logout redirect URI (repeatable): the whole list.
    #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
    pub post_logout_redirect_uris: Vec<String>,
    /// A grant type (repeatable): the whole list (default for a new client:
    /// authorization_code).
    #[arg(long = "grant-type", value_name = "GRANT", value_parser = grant_type)]
    pub grant_types: Vec<GrantType>,
    /// A scope the client may request (repeatable): the whole list.
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// token_endpoint_auth_method: client_secret_basic, client_secret_post, private_key_jwt,
    /// none. A change to a method with a secret generates one (printed once).
    #[arg(long, value_name = "METHOD", value_parser = auth_method)]
    pub auth_method: Option<AuthMethod>,
    /// Where the client publishes its private_key_jwt keys (`none` removes it).
    #[arg(long, value_name = "URL", value_parser = or_none)]
    pub jwks_uri: Option<OrDefault<String>>,
    /// A file with the client's public keys as a JWK set (`none` removes them).
    #[arg(long, value_name = "FILE", value_parser = path_or_none)]
    pub jwks_file: Option<OrDefault<PathBuf>>,
    /// `jwt`, `opaque`, or `default` (the server's format).
    #[arg(long, value_name = "FORMAT", value_parser = token_format)]
    pub access_token_format: Option<OrDefault<TokenFormat>>,
    /// id_token algorithm: RS256, ES256, EdDSA, or `default` (RS256).
    #[arg(long, value_name = "ALG", value_parser = signing_alg)]
    pub id_token_alg: Option<OrDefault<SigningAlg>>,
    /// How long a rotated refresh token may be retried: a duration, `off`, or `default`.
    #[arg(long, value_name = "DURATION", value_parser = grace_period)]
    pub refresh_grace_period: Option<OrDefault<u64>>,
    /// Require PKCE: true or false (always true for public clients).
    #[arg(long, value_name = "BOOL")]
    pub require_pkce: Option<bool>,
    /// Ask users for consent: true or false (require_consent).
    #[arg(long, value_name = "BOOL")]
    pub consent: Option<bool>,
}

/// `latchkey clients add`.
#[derive(Debug, Args)]
pub struct ClientAddArgs {
    /// The client_id to register.
    pub client_id: String,
    /// A public client (SPA, mobile, CLI): no secret, PKCE mandatory (`--auth-method none`).
    #[arg(long)]
    pub public: bool,
    /// A native app (`--application-type native`).
    #[arg(long)]
    pub native: bool,
    /// Skip the consent page, for first-party apps (`--consent false`).
    #[arg(long)]
    pub no_consent: bool,
    /// The client's fields.
    #[command(flatten)]
    pub fields: ClientFields,
}

/// `latchkey clients update`.
#[derive(Debug, Args)]
pub struct ClientUpdateArgs {
    /// The client_id.
    pub client_id: String,
    /// The fields to change; the others stay as they are.
    #[command(flatten)]
    pub fields: ClientFields,
}

/// `latchkey users ...`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user. The password is asked twice, hidden, on a terminal, else read as one line
    /// from standard input; it must meet `[passwords]`.
    Add {
        /// Login name.
        username: String,
        /// Email address.
        #[arg(long)]
        email: Option<String>,
        /// Whether the email is verified (the `email_verified` claim; default true: you vouch
        /// for the address you enter).
        #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
        email_verified: bool,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
    },
    /// List users.
    List,
    /// Show one user.
    Show {
        /// Login name.
        username: String,
    },
    /// Change a user's email, name or email_verified (`none` removes email or name).
    Update {
        /// Login name.
        username: String,
        /// Email address, or `none`.
        #[arg(long, value_name = "EMAIL", value_parser = or_none)]
        email: Option<OrDefault<String>>,
        /// Display name, or `none`.
        #[arg(long, value_name = "NAME", value_parser = or_none)]
        name: Option<OrDefault<String>>,
        /// Whether the email is verified.
        #[arg(long, value_name = "BOOL")]
        email_verified: Option<bool>,
    },
    /// Disable a user: they cannot sign in, their sessions end and their grants are revoked.
    Disable {
        /// Login name.
        username: String,
    },
    /// Enable a disabled user again: they may sign in (what was revoked stays revoked).
    Enable {
        /// Login name.
        username: String,
    },
    /// Import users from a file of JSON lines (`-` for standard input):
    /// `{"username", "email", "name", "email_verified", "disabled", "password_hash"}`, with
    /// argon2id, bcrypt or scrypt hashes, upgraded to latchkey's argon2id at each user's next
    /// sign-in. All lines are checked before any is stored.
    Import {
        /// The file.
        file: PathBuf,
        /// Also accept `"password"` in plaintext (hashed on import, and held to `[passwords]`).
        #[arg(long)]
        plaintext: bool,
    },
    /// Set a user's password, asked as for `users add`.
    SetPassword {
        /// Login name.
        username: String,
        /// Keep the user's sessions and grants (by default a password change ends them, as
        /// after a compromise).
        #[arg(long)]
        keep_sessions: bool,
    },
    /// Remove a user.
    Remove {
        /// Login name.
        username: String,
    },
}

/// `latchkey sessions ...`.
#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// A user's live sessions, newest first.
    List {
        /// Login name.
        #[arg(long = "user", value_name = "NAME")]
        username: String,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// End a user's sessions and revoke the grants made through them (offline ones too);
    /// with --client, revoke only that client's grants made through them.
    Revoke {
        /// Login name.
        #[arg(long = "user", value_name = "NAME")]
        username: String,
        /// Only this client's grants; the sessions stay.
        #[arg(long = "client", value_name = "ID")]
        client_id: Option<String>,
    },
}

/// Which grants: a user's, a client's, or a user's with one client.
#[derive(Debug, Args)]
#[group(required = true, multiple = true)]
pub struct GrantSelection {
    /// The user's grants (login name).
    #[arg(long = "user", value_name = "NAME")]
    pub username: Option<String>,
    /// The client's grants.
    #[arg(long = "client", value_name = "ID")]
    pub client_id: Option<String>,
}

/// `latchkey grants ...`.
#[derive(Debug, Subcommand)]
pub enum GrantsCommand {
    /// Live grants, newest first.
    List {
        /// Whose grants.
        #[command(flatten)]
        selection: GrantSelection,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Revoke grants with every token issued in them.
    Revoke {
        /// Whose grants.
        #[command(flatten)]
        selection: GrantSelection,
    },
}

/// `latchkey keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys and their states (next, current, retiring).
    List,
    /// Create successors: published now, signing after the pre-publication period.
    Rotate,
}
