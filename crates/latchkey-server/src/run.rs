//! `latchkey serve`: boot a node and serve HTTP or HTTPS until SIGTERM or Ctrl-C.

use std::time::Duration;

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;

use crate::config::Config;
use crate::http::{self, AppState};
use crate::startup;

/// How long open requests may take to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(10);

/// Boots and serves until a shutdown signal arrives. `on_ready` runs once the port is bound.
pub async fn serve(config: Config, on_ready: impl FnOnce(&AppState)) -> anyhow::Result<()> {
    let listen = config.listen;
    let tls = config.tls.clone();
    let state = startup::boot(config).await?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| {
        format!(
            "cannot listen on {listen}: is another process using it? (set listen in the config)"
        )
    })?;
    tracing::info!(address = %listen, issuer = %state.config.issuer, tls = tls.is_some(), "latchkey is listening");
    on_ready(&state);
    match tls {
        None => http::serve(listener, state, shutdown_signal()).await.context("serving HTTP"),
        Some(tls) => {
            let rustls =
                RustlsConfig::from_pem_file(&tls.cert, &tls.key).await.with_context(|| {
                    format!(
                        "loading TLS certificate {} and key {}",
                        tls.cert.display(),
                        tls.key.display()
                    )
                })?;
            let handle = axum_server::Handle::new();
            let shutdown = handle.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                shutdown.graceful_shutdown(Some(DRAIN));
            });
            axum_server::from_tcp_rustls(listener.into_std()?, rustls)?
                .handle(handle)
                .serve(http::app(state).into_make_service())
                .await
                .context("serving HTTPS")
        }
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
