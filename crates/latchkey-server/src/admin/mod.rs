//! The admin commands: clients, users, keys, migrate, check. Each acts on the configured
//! database and prints plain text for people and scripts.
//!
//! One module per command group: [`clients`], [`users`], [`grants`] (sessions and grants);
//! keys, health, migrations and `check` here, with what the groups share.

mod clients;
mod grants;
mod users;

pub use clients::clients;
pub use grants::{grants, sessions};
pub use users::users;

use anyhow::{Context, bail};
use latchkey::clock::{Clock, SystemClock};
use latchkey::keys::{KeyManager, KeyState};
use latchkey::store::{self};

use crate::cli::KeysCommand;
use crate::config::Config;

use crate::startup::open_store;
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
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

/// Unix seconds as RFC 3339, for people.
pub(crate) fn timestamp(unix: i64) -> String {
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
