//! `latchkey sessions …` and `latchkey grants …`.

use anyhow::Context;
use latchkey::clients::lifecycle::LifecycleError;
use latchkey::clock::{Clock, SystemClock};
use latchkey::store::{GrantFilter, Store};

use crate::cli::{GrantSelection, GrantsCommand, SessionsCommand};
use crate::config::Config;

use super::{no_user, print_json, timestamp};
use crate::startup::open_store;

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
