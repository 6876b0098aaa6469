//! `latchkey serve`: boot a node and serve HTTP or HTTPS until SIGTERM or Ctrl-C.

use anyhow::Context;

use crate::config::Config;
use crate::http::{self, AppState};
use crate::startup;

/// Descriptors kept for the database, key files and logs beside the connections.
const RESERVED_FILES: u64 = 128;

/// Boots and serves until a shutdown signal arrives. `on_ready` runs once the port is bound.
pub async fn serve(mut config: Config, on_ready: impl FnOnce(&AppState)) -> anyhow::Result<()> {
    if let Some(files) = http::raise_open_file_limit() {
        let fit =
            usize::try_from(files.saturating_sub(RESERVED_FILES).max(1)).unwrap_or(usize::MAX);
        if config.limits.max_connections > fit {
            tracing::warn!(
                max_connections = config.limits.max_connections,
                open_file_limit = files,
                lowered_to = fit,
                "limits.max_connections does not fit the open-file limit; lowered (raise the hard limit, e.g. LimitNOFILE in systemd)"
            );
            config.limits.max_connections = fit;
        }
    }
    let listen = config.listen;
    let tls = match &config.tls {
        None => None,
        Some(tls) => {
            let now = latchkey::clock::Clock::now(&latchkey::clock::SystemClock);
            let (settings, certificate) = crate::tls::load(&tls.cert, &tls.key, now)?;
            let days_left = (certificate.not_after - now) / 86_400;
            if days_left < 14 {
                tracing::warn!(subject = %certificate.subject, days_left, "the TLS certificate expires soon: renew it");
            }
            Some(settings)
        }
    };
    let state = startup::boot(config).await?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| {
        format!(
            "cannot listen on {listen}: is another process using it? (set listen in the config)"
        )
    })?;
    let management = match state.config.metrics.listen {
        None => None,
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(address).await.with_context(|| {
                format!("cannot listen on {address} for /metrics (metrics.listen): is another process using it?")
            })?;
            let state = state.clone();
            Some(tokio::spawn(async move {
                if let Err(error) = http::serve_management(listener, state, shutdown_signal()).await
                {
                    tracing::error!(%error, "the management listener failed");
                }
            }))
        }
    };
    log_summary(&state, listen, tls.is_some()).await;
    on_ready(&state);
    let (authority, store) = (state.authority.clone(), state.store.clone());
    let served = match tls {
        None => http::serve(listener, state, shutdown_signal()).await.context("serving HTTP"),
        Some(tls) => {
            http::serve_tls(listener, state, tls, shutdown_signal()).await.context("serving HTTPS")
        }
    };
    if let Some(management) = management {
        management.abort();
    }
    if let Err(error) = authority.leave().await {
        tracing::warn!(%error, "could not sign this node off in the database; client changes wait for it 2 s");
    }
    if let Err(error) = store.close().await {
        tracing::warn!(%error, "closing the database failed");
    }
    served
}

/// The one start-up line: what runs, on what, with which keys, where; then every setting that
/// weakens security, as `latchkey check` lists them.
async fn log_summary(state: &AppState, listen: std::net::SocketAddr, tls: bool) {
    let config = &state.config;
    let keys = match state.keys.status(state.now()).await {
        Ok(statuses) => {
            let mut counts = std::collections::BTreeMap::new();
            for status in &statuses {
                *counts.entry(status.state.name()).or_insert(0) += 1;
            }
            counts.iter().map(|(state, n)| format!("{n} {state}")).collect::<Vec<_>>().join(", ")
        }
        Err(error) => format!("unknown ({error})"),
    };
    tracing::info!(
        version = crate::build::VERSION,
        commit = crate::build::COMMIT,
        database = %latchkey::store::describe(config.database.url.expose()),
        keys = %keys,
        address = %listen,
        metrics = %config.metrics.listen.map_or_else(|| "on the public port".to_owned(), |a| a.to_string()),
        tls,
        issuer = %config.issuer,
        max_connections = config.limits.max_connections,
        "latchkey is listening"
    );
    for warning in config.warnings() {
        tracing::warn!(target: "latchkey::config", "{warning}");
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing open requests");
}
