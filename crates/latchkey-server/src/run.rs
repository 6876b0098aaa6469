//! `latchkey serve`: boot a node and serve HTTP or HTTPS until SIGTERM or Ctrl-C.

use std::path::Path;
use std::sync::Arc;

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
        Some(tls) => Some(tls_config(&tls.cert, &tls.key)?),
    };
    let state = startup::boot(config).await?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| {
        format!(
            "cannot listen on {listen}: is another process using it? (set listen in the config)"
        )
    })?;
    tracing::info!(address = %listen, issuer = %state.config.issuer, tls = tls.is_some(), max_connections = state.config.limits.max_connections, "latchkey is listening");
    on_ready(&state);
    let (authority, store) = (state.authority.clone(), state.store.clone());
    let served = match tls {
        None => http::serve(listener, state, shutdown_signal()).await.context("serving HTTP"),
        Some(tls) => {
            http::serve_tls(listener, state, tls, shutdown_signal()).await.context("serving HTTPS")
        }
    };
    if let Err(error) = authority.leave().await {
        tracing::warn!(%error, "could not sign this node off in the database; client changes wait for it 2 s");
    }
    if let Err(error) = store.close().await {
        tracing::warn!(%error, "closing the database failed");
    }
    served
}

/// The TLS settings from PEM files: the certificate chain and its private key, offering
/// HTTP/2 and HTTP/1.1.
fn tls_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading the TLS certificate {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the TLS private key {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the TLS certificate and key do not fit together")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
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
