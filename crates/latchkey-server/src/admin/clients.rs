//! `latchkey clients …`: add, list, show, update, rotate-secret, remove.

use latchkey::clients::cache;
use latchkey::clients::lifecycle::{self, ClientChanges, ClientView, LifecycleError, Registered};
use latchkey::clients::registration::ClientDraft;
use latchkey::clock::{Clock, SystemClock};
use latchkey::model::{ApplicationType, AuthMethod, ClientSource};
use latchkey::store::Store;

use crate::cli::{ClientAddArgs, ClientFields, ClientsCommand, OrDefault, UsageError};
use crate::config::Config;

use super::{print_json, timestamp};
use crate::startup::open_store;

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
