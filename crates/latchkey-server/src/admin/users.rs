//! `latchkey users …`: add, list, show, update, disable, enable, import, set-password, remove.

use std::io::BufRead;

use anyhow::{Context, bail};
use latchkey::clock::{Clock, SystemClock};
use latchkey::model::User;
use latchkey::password;
use latchkey::store::{self, Store, UserUpdate};
use latchkey::users::{ImportedPassword, UserView};

use crate::cli::{UsageError, UsersCommand};
use crate::config::Config;

use super::{no_user, not_found_as, print_json};
use crate::startup::{new_user_id, open_store};

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
