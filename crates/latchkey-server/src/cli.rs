//! Command-line interface (the commands of docs/INTERFACE.md).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use latchkey::model::GrantType;

/// latchkey: an OAuth 2.1 / OpenID Connect authorization server.
#[derive(Debug, Parser)]
#[command(name = "latchkey", version, about)]
pub struct Cli {
    /// Config file (default: ./latchkey.toml when present). LATCHKEY_* variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
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
    /// Show and rotate signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Apply database migrations (serve does this too).
    Migrate,
    /// Validate the config and report insecure settings, without starting.
    Check,
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
    /// Remove a client.
    Remove {
        /// The client_id.
        client_id: String,
    },
}

/// A grant type latchkey knows, by its registered name.
fn grant_type(value: &str) -> Result<GrantType, String> {
    GrantType::parse(value).ok_or_else(|| {
        let known: Vec<&str> = GrantType::ALL.iter().map(|grant| grant.as_str()).collect();
        format!("unknown grant type {value:?}: use one of {}", known.join(", "))
    })
}

/// `latchkey clients add`.
#[derive(Debug, Args)]
pub struct ClientAddArgs {
    /// The client_id to register.
    pub client_id: String,
    /// A public client (SPA, mobile, CLI): no secret, PKCE mandatory.
    #[arg(long)]
    pub public: bool,
    /// A native app: allows custom-scheme and any-port loopback redirect URIs.
    #[arg(long)]
    pub native: bool,
    /// Name shown to users on the consent page.
    #[arg(long)]
    pub name: Option<String>,
    /// A redirect URI (repeatable).
    #[arg(long = "redirect-uri", value_name = "URI")]
    pub redirect_uris: Vec<String>,
    /// A grant type (repeatable; default authorization_code).
    #[arg(long = "grant-type", value_name = "GRANT", value_parser = grant_type)]
    pub grant_types: Vec<GrantType>,
    /// A scope the client may request (repeatable).
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// Skip the consent page (first-party apps).
    #[arg(long)]
    pub no_consent: bool,
}

/// `latchkey users ...`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user; the password is read from standard input.
    Add {
        /// Login name.
        username: String,
        /// Email address.
        #[arg(long)]
        email: Option<String>,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
    },
    /// List users.
    List,
    /// Set a user's password, read from standard input.
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

/// `latchkey keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys and their states (next, current, retiring).
    List,
    /// Create successors: published now, signing after the pre-publication period.
    Rotate,
}
