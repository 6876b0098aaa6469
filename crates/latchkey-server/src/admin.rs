//! The admin commands: clients, users, keys, migrate, check. Each acts on the configured
//! database and prints plain text for people and scripts.

use std::io::BufRead;

use anyhow::{Context, bail};
use latchkey::clients::cache;
use latchkey::clients::lifecycle::{self, ClientChanges, ClientView, LifecycleError, Registered};
use latchkey::clients::registration::ClientDraft;
use latchkey::clock::{Clock, SystemClock};
use latchkey::keys::{KeyManager, KeyState};
use latchkey::model::{ApplicationType, AuthMethod, ClientSource, User};
use latchkey::password;
use latchkey::store::{self, GrantFilter, Store, UserUpdate};
use latchkey::users::{ImportedPassword, UserView};

use crate::cli::{
    ClientAddArgs, ClientFields, ClientsCommand, GrantSelection, GrantsCommand, KeysCommand,
    OrDefault, SessionsCommand, UsageError, UsersCommand,
};
use crate::config::Config;

use crate::startup::{new_user_id, open_store};

/// `latchkey clients ...`.
pub async fn clients(config: &Config, command: ClientsCommand, json: bool) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let now = SystemClock.now();
    let resources = &config.resources;
    match command {
        ClientsCommand::Add(args) => {
            let draft = add_draft(args)?;
            let added = lifecycle::add(store.as_ref(), resources, draft, ClientSource::Cli, now)
                .await
                .map_err(lifecycle_error)?;
            print_registered(&added, json, now, "added")
        }
        ClientsCommand::List => {
            let records = store.clients().await?;
            if json {
                let views: Vec<_> = records.iter().map(|r| ClientView::of(r, now)).collect();
                return print_json(&serde_json::json!({ "clients": views }));
            }
            println!("CLIENT_ID\tTYPE\tGRANT_TYPES\tSOURCE");
            for record in records {
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
            let record = store
                .client(&client_id)
                .await?
                .ok_or_else(|| lifecycle_error(LifecycleError::NotFound(client_id)))?;
            // The registration is a JSON object of config keys either way.
            println!("{}", serde_json::to_string_pretty(&ClientView::of(&record, now))?);
            Ok(())
        }
        ClientsCommand::Update(args) => {
            let changes = changes(args.fields)?;
            let updated =
                lifecycle::update(store.as_ref(), resources, &args.client_id, changes, now)
                    .await
                    .map_err(lifecycle_error)?;
            confirm(store.as_ref(), "change").await?;
            print_registered(&updated, json, now, "updated")
        }
        ClientsCommand::RotateSecret { client_id, overlap } => {
            let overlap = i64::try_from(overlap.as_secs()).unwrap_or(i64::MAX);
            let rotated = lifecycle::rotate_secret(store.as_ref(), &client_id, overlap, now)
                .await
                .map_err(lifecycle_error)?;
            confirm(store.as_ref(), "rotation").await?;
            print_registered(&rotated, json, now, "rotated the secret of")
        }
        ClientsCommand::Remove { client_id } => {
            let record = store
                .client(&client_id)
                .await?
                .ok_or_else(|| lifecycle_error(LifecycleError::NotFound(client_id.clone())))?;
            store.remove_client(&client_id, now).await?;
            confirm(store.as_ref(), "removal").await?;
            if json {
                print_json(&serde_json::json!({ "client_id": client_id, "removed": true }))?;
            } else {
                println!("removed client {client_id}; no node accepts it any more");
            }
            if record.source == ClientSource::Config {
                eprintln!(
                    "note: {client_id} is in the config file and comes back at the next start; remove it there too"
                );
            }
            Ok(())
        }
    }
}

/// Returns once every running node serves the client as changed: a node may serve it from its
/// cache until it has synced with the change (or for CLIENT_CACHE_TTL when it does not answer).
async fn confirm(store: &dyn Store, what: &str) -> anyhow::Result<()> {
    if cache::confirm_change(store).await? == cache::Confirmed::ByTheLifetime {
        eprintln!(
            "note: a running node did not confirm the {what}; waited until its cache expired"
        );
    }
    Ok(())
}

/// A lifecycle error as the CLI reports it: a broken rule is bad usage (exit status 2).
fn lifecycle_error(error: LifecycleError) -> anyhow::Error {
    match error {
        LifecycleError::Invalid(_) => UsageError(error.to_string()).into(),
        other => other.into(),
    }
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// The answer of an operation that stored a client: the new secret, if any, is shown once.
fn print_registered(
    registered: &Registered,
    json: bool,
    now: i64,
    done: &str,
) -> anyhow::Result<()> {
    let record = &registered.record;
    let secret = registered.secret.as_deref();
    if json {
        return print_json(&ClientView::of(record, now).with_secret(secret));
    }
    let client_id = &record.client.client_id;
    println!("{done} client {client_id}");
    println!("client_id: {client_id}");
    if let Some(secret) = secret {
        println!("client_secret: {secret}");
        eprintln!("Store the secret now: it is shown only once and kept only as a hash.");
    } else if record.client.is_public() {
        println!("public client: no secret; it must use PKCE (S256)");
    }
    if let Some(previous) = &record.previous_secret {
        println!("the previous secret works until {}", timestamp(previous.expires_at));
    } else if done.starts_with("rotated") {
        println!("the previous secret no longer works");
    }
    Ok(())
}

/// `clients add`'s flags as a draft: a client with a secret unless it is public or signs its
/// assertions.
fn add_draft(args: ClientAddArgs) -> anyhow::Result<ClientDraft> {
    let mut fields = args.fields;
    if args.public {
        if fields.auth_method.is_some_and(|m| m != AuthMethod::None) {
            return Err(
                UsageError("--public and --auth-method contradict each other".into()).into()
            );
        }
        fields.auth_method = Some(AuthMethod::None);
    }
    if args.native {
        fields.application_type = Some(ApplicationType::Native);
    }
    if args.no_consent {
        fields.consent = Some(false);
    }
    let has_keys = fields.jwks_uri.as_ref().is_some_and(|u| u.0.is_some())
        || fields.jwks_file.as_ref().is_some_and(|f| f.0.is_some());
    let empty = ClientDraft {
        client_id: args.client_id,
        has_secret: !has_keys,
        application_type: Some(ApplicationType::Web),
        ..ClientDraft::default()
    };
    changes(fields)?.apply(empty).map_err(|error| lifecycle_error(error.into()))
}

/// The flags as changes; a list flag given replaces the list.
fn changes(fields: ClientFields) -> anyhow::Result<ClientChanges> {
    let jwks = match fields.jwks_file {
        Some(OrDefault(Some(path))) => Some(Some(read_jwks(&path)?)),
        Some(OrDefault(None)) => Some(None),
        None => None,
    };
    let list = |values: Vec<String>| (!values.is_empty()).then_some(values);
    Ok(ClientChanges {
        client_name: fields.name.map(|n| n.0),
        application_type: fields.application_type,
        redirect_uris: list(fields.redirect_uris),
        add_redirect_uris: fields.add_redirect_uris,
        remove_redirect_uris: fields.remove_redirect_uris,
        post_logout_redirect_uris: list(fields.post_logout_redirect_uris),
        grant_types: (!fields.grant_types.is_empty()).then_some(fields.grant_types),
        scopes: list(fields.scopes),
        token_endpoint_auth_method: fields.auth_method,
        jwks_uri: fields.jwks_uri.map(|u| u.0),
        jwks,
        access_token_format: fields.access_token_format.map(|f| f.0),
        id_token_signed_response_alg: fields.id_token_alg.map(|a| a.0),
        refresh_grace_period_secs: fields.refresh_grace_period.map(|g| g.0),
        require_pkce: fields.require_pkce,
        require_consent: fields.consent,
    })
}

fn read_jwks(path: &std::path::Path) -> anyhow::Result<latchkey_resource::JwkSet> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| UsageError(format!("--jwks-file {}: {error}", path.display())))?;
    serde_json::from_str(&text).map_err(|error| {
        UsageError(format!("--jwks-file {}: not a JWK set ({error})", path.display())).into()
    })
}

/// `latchkey users ...`.
pub async fn users(config: &Config, command: UsersCommand, json: bool) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let now = SystemClock.now();
    let policy = &config.passwords;
    match command {
        UsersCommand::Add { username, email, email_verified, name } => {
            if let Err(problem) = latchkey::users::check_username(&username) {
                return Err(UsageError(format!("username {problem}")).into());
            }
            if store.user_by_username(&username).await?.is_some() {
                bail!(
                    "user {username:?} already exists: use `latchkey users set-password` to change the password"
                );
            }
            let password = new_password(policy, &username)?;
            let password_hash = hash_password(password).await?;
            let user = User {
                id: new_user_id()?,
                username,
                password_hash,
                email,
                name,
                email_verified,
                disabled: false,
            };
            let user = store.upsert_user(&user, now).await?;
            print_user(&user, json, &format!("added user {} (sub {})", user.username, user.id))
        }
        UsersCommand::List => {
            let users = store.users().await?;
            if json {
                let views: Vec<_> = users.iter().map(UserView::of).collect();
                return print_json(&serde_json::json!({ "users": views }));
            }
            println!("USERNAME\tSUB\tEMAIL\tSTATE");
            for user in users {
                let email = user.email.as_deref().unwrap_or("-");
                let state = if user.disabled { "disabled" } else { "enabled" };
                println!("{}\t{}\t{email}\t{state}", user.username, user.id);
            }
            Ok(())
        }
        UsersCommand::Show { username } => {
            let user =
                store.user_by_username(&username).await?.with_context(|| no_user(&username))?;
            if json {
                return print_json(&UserView::of(&user));
            }
            let or_dash = |value: Option<&str>| value.unwrap_or("-").to_owned();
            println!("username: {}", user.username);
            println!("sub: {}", user.id);
            println!("email: {}", or_dash(user.email.as_deref()));
            println!("email_verified: {}", user.email_verified);
            println!("name: {}", or_dash(user.name.as_deref()));
            println!("disabled: {}", user.disabled);
            Ok(())
        }
        UsersCommand::Update { username, email, name, email_verified } => {
            let update =
                UserUpdate { email: email.map(|e| e.0), name: name.map(|n| n.0), email_verified };
            let user = store
                .update_user(&username, &update, now)
                .await
                .map_err(|error| not_found_as(error, &username))?;
            print_user(&user, json, &format!("updated user {username}"))
        }
        UsersCommand::Disable { username } => {
            let user = store
                .set_user_disabled(&username, true, now)
                .await
                .map_err(|error| not_found_as(error, &username))?;
            let done = format!(
                "disabled user {username}: they cannot sign in; their sessions ended and their grants were revoked"
            );
            print_user(&user, json, &done)
        }
        UsersCommand::Enable { username } => {
            let user = store
                .set_user_disabled(&username, false, now)
                .await
                .map_err(|error| not_found_as(error, &username))?;
            print_user(&user, json, &format!("enabled user {username}: they may sign in again"))
        }
        UsersCommand::Import { file, plaintext } => {
            import_users(store.as_ref(), policy, &file, plaintext, json, now).await
        }
        UsersCommand::SetPassword { username, keep_sessions } => {
            if store.user_by_username(&username).await?.is_none() {
                bail!(no_user(&username));
            }
            let hash = hash_password(new_password(policy, &username)?).await?;
            let change = store::PasswordChange { end_sessions: !keep_sessions, from_config: false };
            store.set_password_hash(&username, &hash, change, now).await?;
            if keep_sessions {
                println!("password of {username} changed; sessions and grants kept");
            } else {
                println!(
                    "password of {username} changed; their sessions ended and grants were revoked"
                );
            }
            Ok(())
        }
        UsersCommand::Remove { username } => match store.remove_user(&username, now).await {
            Ok(()) => {
                if json {
                    return print_json(
                        &serde_json::json!({ "username": username, "removed": true }),
                    );
                }
                println!("removed user {username}");
                Ok(())
            }
            Err(error) => Err(not_found_as(error, &username)),
        },
    }
}

fn no_user(name: &str) -> String {
    format!("no user {name:?}: `latchkey users list` shows them")
}

fn not_found_as(error: store::Error, username: &str) -> anyhow::Error {
    match error {
        store::Error::NotFound => anyhow::anyhow!(no_user(username)),
        other => other.into(),
    }
}

fn print_user(user: &User, json: bool, done: &str) -> anyhow::Result<()> {
    if json {
        return print_json(&UserView::of(user));
    }
    println!("{done}");
    Ok(())
}

/// How many import lines are stored per transaction: the SQLite writer is held for a few
/// milliseconds at a time, never for the whole file.
const IMPORT_BATCH: usize = 500;

/// `latchkey users import`: every line is checked (syntax, hash format and cost, duplicates
/// in the file and in the database) before the first is stored.
async fn import_users(
    store: &dyn Store,
    policy: &latchkey::users::PasswordPolicy,
    file: &std::path::Path,
    plaintext: bool,
    json: bool,
    now: i64,
) -> anyhow::Result<()> {
    let text = if file == std::path::Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    let mut users = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let number = index + 1;
        let (entry, password) =
            latchkey::users::parse_import_line(number, line, plaintext).map_err(UsageError)?;
        if !seen.insert(entry.username.clone()) {
            return Err(UsageError(format!(
                "line {number}: user {:?} appears twice",
                entry.username
            ))
            .into());
        }
        if store.user_by_username(&entry.username).await?.is_some() {
            return Err(UsageError(format!(
                "line {number}: user {:?} exists already: remove the line, or the user first",
                entry.username
            ))
            .into());
        }
        let password_hash = match password {
            ImportedPassword::Hash(hash) => hash,
            ImportedPassword::Plain(plain) => {
                policy
                    .check(&plain, &entry.username)
                    .map_err(|problem| UsageError(format!("line {number}: {problem}")))?;
                hash_password(plain).await?
            }
        };
        users.push(User {
            id: new_user_id()?,
            username: entry.username,
            password_hash,
            email: entry.email,
            name: entry.name,
            email_verified: entry.email_verified,
            disabled: entry.disabled,
        });
    }
    let mut stored = 0;
    for batch in users.chunks(IMPORT_BATCH) {
        if let Err(error) = store.insert_users(batch, now).await {
            bail!(
                "{error}; the first {stored} users of the file were imported: remove their lines and run the import again"
            );
        }
        stored += batch.len();
    }
    let upgrades =
        users.iter().filter(|u| !latchkey::users::hash_is_current(&u.password_hash)).count();
    if json {
        let views: Vec<_> = users.iter().map(UserView::of).collect();
        return print_json(&serde_json::json!({ "imported": stored, "users": views }));
    }
    println!(
        "imported {stored} users; {upgrades} hashes are upgraded to argon2id at each user's next sign-in"
    );
    Ok(())
}

/// A new password: asked twice without echo on a terminal, else one line of standard input;
/// passwords never go on the command line, where other users could read them in the process
/// list. It must meet the policy.
fn new_password(
    policy: &latchkey::users::PasswordPolicy,
    username: &str,
) -> anyhow::Result<String> {
    use std::io::IsTerminal;
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").context("reading the password")?;
        if let Err(problem) = policy.check(&first, username) {
            return Err(UsageError(problem).into());
        }
        let again =
            rpassword::prompt_password("Password again: ").context("reading the password")?;
        if again != first {
            return Err(UsageError("the two passwords differ: nothing was changed".into()).into());
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    if password.is_empty() {
        return Err(UsageError(
            "empty password: pipe it in, e.g. `printf '%s' \"$PASSWORD\" | latchkey users add alice`".into(),
        )
        .into());
    }
    policy.check(&password, username).map_err(UsageError)?;
    Ok(password)
}

async fn hash_password(password: String) -> anyhow::Result<String> {
    Ok(password::Hasher::new(1, 0).hash(password).await?)
}

/// `latchkey sessions ...`.
pub async fn sessions(config: &Config, command: SessionsCommand, json: bool) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let now = SystemClock.now();
    match command {
        SessionsCommand::List { username, limit } => {
            let user =
                store.user_by_username(&username).await?.with_context(|| no_user(&username))?;
            let sessions = store.user_sessions(&user.id, now, limit).await?;
            if json {
                let list: Vec<_> = sessions
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "sid": s.session.sid(),
                            "username": user.username,
                            "auth_time": s.session.auth_time,
                            "created_at": s.session.created_at,
                            "expires_at": s.session.expires_at,
                            "grants": s.grants,
                        })
                    })
                    .collect();
                return print_json(&serde_json::json!({ "sessions": list }));
            }
            println!("SID\tSIGNED IN\tEXPIRES\tGRANTS");
            for s in &sessions {
                println!(
                    "{}\t{}\t{}\t{}",
                    s.session.sid(),
                    timestamp(s.session.auth_time),
                    timestamp(s.session.expires_at),
                    s.grants
                );
            }
            Ok(())
        }
        SessionsCommand::Revoke { username, client_id } => {
            let user =
                store.user_by_username(&username).await?.with_context(|| no_user(&username))?;
            if let Some(id) = &client_id {
                store
                    .client(id)
                    .await?
                    .with_context(|| LifecycleError::NotFound(id.clone()).to_string())?;
            }
            let (ended, revoked) =
                store.end_user_sessions(&user.id, client_id.as_deref(), now).await?;
            if json {
                return print_json(&serde_json::json!({
                    "username": username, "client_id": client_id,
                    "sessions_ended": ended, "grants_revoked": revoked,
                }));
            }
            match client_id {
                Some(id) => {
                    println!("revoked {revoked} grants of {id} made through {username}'s sessions")
                }
                None => println!(
                    "ended {ended} sessions of {username} and revoked the {revoked} grants made through them"
                ),
            }
            Ok(())
        }
    }
}

/// A grant selection as a store filter; the user must exist (the client need not: a removed
/// client's grants are revoked already).
async fn grant_filter(store: &dyn Store, selection: GrantSelection) -> anyhow::Result<GrantFilter> {
    let user_id = match &selection.username {
        Some(name) => Some(store.user_by_username(name).await?.with_context(|| no_user(name))?.id),
        None => None,
    };
    Ok(GrantFilter { user_id, client_id: selection.client_id })
}

/// `latchkey grants ...`.
pub async fn grants(config: &Config, command: GrantsCommand, json: bool) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let now = SystemClock.now();
    match command {
        GrantsCommand::List { selection, limit } => {
            let filter = grant_filter(store.as_ref(), selection).await?;
            let grants = store.grants(&filter, now, limit).await?;
            if json {
                let list: Vec<_> = grants
                    .iter()
                    .map(|g| {
                        serde_json::json!({
                            "id": g.id,
                            "client_id": g.client_id,
                            "sub": g.user_id,
                            "scope": g.scopes.to_param(),
                            "audience": g.audience,
                            "auth_time": g.auth_time,
                            "created_at": g.created_at,
                            "expires_at": g.expires_at,
                            "offline": g.session_id_hash.is_none() || g.scopes.contains("offline_access"),
                        })
                    })
                    .collect();
                return print_json(&serde_json::json!({ "grants": list }));
            }
            println!("ID\tCLIENT_ID\tSUB\tSCOPE\tCREATED\tEXPIRES");
            for g in &grants {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    g.id,
                    g.client_id,
                    g.user_id,
                    g.scopes.to_param(),
                    timestamp(g.created_at),
                    timestamp(g.expires_at)
                );
            }
            if grants.len() == limit {
                eprintln!("note: showing the newest {limit}; --limit shows more");
            }
            Ok(())
        }
        GrantsCommand::Revoke { selection } => {
            let filter = grant_filter(store.as_ref(), selection).await?;
            let revoked = store.revoke_grants(&filter, now).await?;
            if json {
                return print_json(&serde_json::json!({ "grants_revoked": revoked }));
            }
            println!("revoked {revoked} grants and every token issued in them");
            Ok(())
        }
    }
}

/// `latchkey keys ...`.
pub async fn keys(config: &Config, command: KeysCommand, json: bool) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let now = SystemClock.now();
    let manager = KeyManager::start(store, config.master_key()?, config.key_policy(), now).await?;
    let mut added = Vec::new();
    if let KeysCommand::Rotate = command {
        added = manager.rotate(now).await?;
        if !json {
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
    }
    let statuses = manager.status(now).await?;
    if json {
        let keys: Vec<_> = statuses
            .iter()
            .map(|status| {
                let key = &status.record;
                let until = match status.state {
                    KeyState::Retiring { until } => Some(until),
                    _ => None,
                };
                serde_json::json!({
                    "kid": key.kid,
                    "purpose": key.purpose.as_str(),
                    "alg": key.alg.to_string(),
                    "state": status.state.name(),
                    "activates_at": key.activates_at,
                    "published_until": until,
                })
            })
            .collect();
        let added: Vec<&str> = added.iter().map(|key| key.kid.as_str()).collect();
        return print_json(&serde_json::json!({ "keys": keys, "added": added }));
    }
    println!("KID\tPURPOSE\tALG\tSTATE\tSIGNS FROM\tPUBLISHED UNTIL");
    for status in statuses {
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

/// `latchkey healthcheck`: GET /healthz on the configured listener (on loopback when it
/// listens on every address), within 5 s.
pub async fn healthcheck(config: &Config) -> anyhow::Result<()> {
    let mut address = config.listen;
    if address.ip().is_unspecified() {
        address.set_ip(if address.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let mut client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(5));
    let url = match &config.tls {
        None => format!("http://{address}{}", crate::http::paths::HEALTHZ),
        Some(tls) => {
            // The certificate names the issuer's host: ask for that name at the local address,
            // trusting the system roots and the configured certificate itself (self-signed).
            let host = url::Url::parse(&config.issuer)?
                .host_str()
                .context("the issuer has no host")?
                .to_owned();
            client = client.resolve(&host, address);
            let pem = std::fs::read(&tls.cert)
                .with_context(|| format!("reading {}", tls.cert.display()))?;
            for certificate in reqwest::Certificate::from_pem_bundle(&pem)? {
                client = client.add_root_certificate(certificate);
            }
            format!("https://{host}:{}{}", address.port(), crate::http::paths::HEALTHZ)
        }
    };
    let client = client.build()?;
    let status = client.get(&url).send().await.with_context(|| format!("GET {url}"))?.status();
    if !status.is_success() {
        bail!("GET {url} answered {status}");
    }
    println!("healthy: {url}");
    Ok(())
}

/// `latchkey migrate`.
pub async fn migrate(config: &Config, json: bool) -> anyhow::Result<()> {
    open_store(config).await?;
    if json {
        return print_json(&serde_json::json!({ "up_to_date": true }));
    }
    println!("database is up to date");
    Ok(())
}

/// `latchkey check`: the config is valid (else the caller already exited 2); print warnings.
pub fn check(config: &Config, json: bool) -> anyhow::Result<()> {
    let warnings = config.warnings();
    let certificate = match &config.tls {
        Some(tls) => Some(crate::tls::load(&tls.cert, &tls.key, SystemClock.now())?.1),
        None => None,
    };
    if json {
        let tls = certificate
            .as_ref()
            .map(|c| serde_json::json!({ "subject": c.subject, "not_after": c.not_after }));
        return print_json(&serde_json::json!({ "ok": true, "warnings": warnings, "tls": tls }));
    }
    if let Some(certificate) = &certificate {
        println!(
            "tls: certificate {} valid until {}; the key fits it",
            certificate.subject,
            timestamp(certificate.not_after)
        );
    }
    for warning in &warnings {
        println!("warning: {warning}");
    }
    println!(
        "config OK ({} warning{})",
        warnings.len(),
        if warnings.len() == 1 { "" } else { "s" }
    );
    Ok(())
}
