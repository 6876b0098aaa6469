//! The admin commands: clients, users, keys, migrate, check. Each acts on the configured
//! database and prints plain text for people and scripts.

use std::io::BufRead;

use anyhow::{Context, bail};
use latchkey::clients::cache;
use latchkey::clients::registration::{self, ClientDraft};
use latchkey::clock::{Clock, SystemClock};
use latchkey::keys::{KeyManager, KeyState};
use latchkey::model::{ApplicationType, ClientRecord, ClientSource, User};
use latchkey::password;
use latchkey::store::{self, Store};

use crate::cli::{ClientAddArgs, ClientsCommand, KeysCommand, UsersCommand};
use crate::config::Config;

use crate::startup::{new_user_id, open_store};

/// `latchkey clients ...`.
pub async fn clients(config: &Config, command: ClientsCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    match command {
        ClientsCommand::Add(args) => add_client(store.as_ref(), &config.resources, args).await,
        ClientsCommand::List => {
            for record in store.clients().await? {
                let c = &record.client;
                let kind = if c.is_public() { "public" } else { "confidential" };
                let grants: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
                println!(
                    "{}\t{kind}\t{}\t{}",
                    c.client_id,
                    grants.join(","),
                    record.source.as_str()
                );
            }
            Ok(())
        }
        ClientsCommand::Show { client_id } => {
            let record = store.client(&client_id).await?.with_context(|| no_client(&client_id))?;
            let mut json = serde_json::to_value(&record.client)?;
            json["source"] = record.source.as_str().into();
            json["has_secret"] = record.secret_hash.is_some().into();
            println!("{}", serde_json::to_string_pretty(&json)?);
            Ok(())
        }
        ClientsCommand::Remove { client_id } => {
            let record = store.client(&client_id).await?.with_context(|| no_client(&client_id))?;
            store.remove_client(&client_id, SystemClock.now()).await?;
            // A node may still serve the client from its cache until it has synced with the
            // change (or for CLIENT_CACHE_TTL when it does not answer): returning only then
            // means that once this command returns, no node accepts the client (the removal
            // has revoked what it held already).
            if cache::confirm_change(store.as_ref()).await? == cache::Confirmed::ByTheLifetime {
                eprintln!(
                    "note: a running node did not confirm the removal; waited until its cache expired"
                );
            }
            println!("removed client {client_id}; no node accepts it any more");
            if record.source == ClientSource::Config {
                eprintln!(
                    "note: {client_id} is in the config file and comes back at the next start; remove it there too"
                );
            }
            Ok(())
        }
    }
}

fn no_client(client_id: &str) -> String {
    format!("no client {client_id:?}: `latchkey clients list` shows the registered ones")
}

async fn add_client(
    store: &dyn Store,
    resources: &[latchkey::model::Resource],
    args: ClientAddArgs,
) -> anyhow::Result<()> {
    let secret = if args.public { None } else { Some(latchkey::secret::generate()?) };
    let draft = ClientDraft {
        client_id: args.client_id.clone(),
        has_secret: secret.is_some(),
        client_name: args.name,
        application_type: Some(if args.native {
            ApplicationType::Native
        } else {
            ApplicationType::Web
        }),
        redirect_uris: args.redirect_uris,
        grant_types: (!args.grant_types.is_empty()).then_some(args.grant_types),
        scopes: args.scopes,
        require_consent: Some(!args.no_consent),
        ..ClientDraft::default()
    };
    // The config's rules, from the same function; errors named as `client.FIELD`, and a
    // configuration error's exit status (2).
    let client = registration::validate(draft, resources).map_err(|error| {
        crate::config::ConfigError(format!("client.{}: {}", error.field, error.problem))
    })?;
    if store.client(&args.client_id).await?.is_some() {
        bail!(
            "client {:?} already exists: remove it first or pick another client_id",
            args.client_id
        );
    }
    let record = ClientRecord {
        client,
        // A generated secret has 256 bits of entropy: SHA-256 is enough (docs/DESIGN.md).
        secret_hash: secret.as_deref().map(password::hash_generated_secret),
        source: ClientSource::Cli,
    };
    store.upsert_client(&record, SystemClock.now()).await?;
    println!("client_id: {}", args.client_id);
    match secret {
        Some(secret) => {
            println!("client_secret: {secret}");
            eprintln!("Store the secret now: it is shown only once and kept only as a hash.");
        }
        None => println!("public client: no secret; it must use PKCE (S256)"),
    }
    Ok(())
}

/// `latchkey users ...`.
pub async fn users(config: &Config, command: UsersCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let no_user = |name: &str| format!("no user {name:?}: `latchkey users list` shows them");
    match command {
        UsersCommand::Add { username, email, name } => {
            if store.user_by_username(&username).await?.is_some() {
                bail!(
                    "user {username:?} already exists: use `latchkey users set-password` to change the password"
                );
            }
            if let Err(problem) = latchkey::users::check_username(&username) {
                bail!("username {problem}");
            }
            let password_hash = hash_password(read_password()?).await?;
            let user = User { id: new_user_id()?, username, password_hash, email, name };
            let user = store.upsert_user(&user, SystemClock.now()).await?;
            println!("added user {} (sub {})", user.username, user.id);
            Ok(())
        }
        UsersCommand::List => {
            for user in store.users().await? {
                let email = user.email.as_deref().unwrap_or("-");
                println!("{}\t{}\t{email}", user.username, user.id);
            }
            Ok(())
        }
        UsersCommand::SetPassword { username, keep_sessions } => {
            if store.user_by_username(&username).await?.is_none() {
                bail!(no_user(&username));
            }
            let hash = hash_password(read_password()?).await?;
            let change = store::PasswordChange { end_sessions: !keep_sessions, from_config: false };
            store.set_password_hash(&username, &hash, change, SystemClock.now()).await?;
            if keep_sessions {
                println!("password of {username} changed; sessions and grants kept");
            } else {
                println!(
                    "password of {username} changed; their sessions ended and grants were revoked"
                );
            }
            Ok(())
        }
        UsersCommand::Remove { username } => {
            match store.remove_user(&username, SystemClock.now()).await {
                Ok(()) => {
                    println!("removed user {username}");
                    Ok(())
                }
                Err(store::Error::NotFound) => bail!(no_user(&username)),
                Err(error) => Err(error.into()),
            }
        }
    }
}

/// Reads one line from standard input; passwords never go on the command line, where other
/// users could read them in the process list.
fn read_password() -> anyhow::Result<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        eprint!("Password: ");
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        bail!(
            "empty password: pipe it in, e.g. `printf '%s' \"$PASSWORD\" | latchkey users add alice`"
        );
    }
    Ok(password)
}

async fn hash_password(password: String) -> anyhow::Result<String> {
    Ok(password::Hasher::new(1, 0).hash(password).await?)
}

/// `latchkey keys ...`.
pub async fn keys(config: &Config, command: KeysCommand) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let now = SystemClock.now();
    let manager = KeyManager::start(store, config.master_key()?, config.key_policy(), now).await?;
    if let KeysCommand::Rotate = command {
        let added = manager.rotate(now).await?;
        for key in &added {
            println!(
                "added {} ({} {}): published now, signs from {}",
                key.kid,
                key.purpose.as_str(),
                key.alg,
                timestamp(key.activates_at)
            );
        }
    }
    println!("KID\tPURPOSE\tALG\tSTATE\tSIGNS FROM\tPUBLISHED UNTIL");
    for status in manager.status(now).await? {
        let key = &status.record;
        let until = match status.state {
            KeyState::Retiring { until } => timestamp(until),
            KeyState::Expired => "-".into(),
            _ => "(while current)".into(),
        };
        println!(
            "{}\t{}\t{}\t{}\t{}\t{until}",
            key.kid,
            key.purpose.as_str(),
            key.alg,
            status.state.name(),
            timestamp(key.activates_at)
        );
    }
    Ok(())
}

fn timestamp(unix: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// `latchkey migrate`.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    open_store(config).await?;
    println!("database is up to date");
    Ok(())
}

/// `latchkey check`: the config is valid (else the caller already exited 2); print warnings.
pub fn check(config: &Config) {
    let warnings = config.warnings();
    for warning in &warnings {
        println!("warning: {warning}");
    }
    println!(
        "config OK ({} warning{})",
        warnings.len(),
        if warnings.len() == 1 { "" } else { "s" }
    );
}
