//! HTTPS served directly: the certificate chain and key from PEM files, checked the same way
//! by `latchkey check` and at start (readable, parsed, the key fits the certificate, the
//! certificate valid now), so a broken file is found before it is deployed.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::admin::timestamp;
use crate::config::ConfigError;

/// What the checks found out about a usable certificate.
#[derive(Debug, Clone)]
pub struct Certificate {
    /// Its subject, as text.
    pub subject: String,
    /// When it expires (unix seconds).
    pub not_after: i64,
}

/// The TLS settings from `cert` and `key` (offering HTTP/2 and HTTP/1.1), checked at `now`.
pub fn load(
    cert: &Path,
    key: &Path,
    now: i64,
) -> Result<(Arc<rustls::ServerConfig>, Certificate), ConfigError> {
    let at = |field: &str, problem: String| ConfigError(format!("tls.{field}: {problem}"));
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|error| {
            at("cert", format!("cannot read a PEM certificate from {}: {error}", cert.display()))
        })?;
    let first = chain.first().ok_or_else(|| {
        at(
            "cert",
            format!(
                "{} holds no certificate (expected -----BEGIN CERTIFICATE-----)",
                cert.display()
            ),
        )
    })?;
    let (_, parsed) = x509_parser::parse_x509_certificate(first.as_ref()).map_err(|error| {
        at("cert", format!("{}: not an X.509 certificate: {error}", cert.display()))
    })?;
    let validity = parsed.validity();
    let (not_before, not_after) = (validity.not_before.timestamp(), validity.not_after.timestamp());
    let subject = parsed.subject().to_string();
    if now >= not_after {
        return Err(at(
            "cert",
            format!("{} ({subject}) expired at {}: renew it", cert.display(), timestamp(not_after)),
        ));
    }
    if now < not_before {
        return Err(at(
            "cert",
            format!(
                "{} ({subject}) is valid only from {}: check the clock",
                cert.display(),
                timestamp(not_before)
            ),
        ));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|error| {
        at("key", format!("cannot read a PEM private key from {}: {error}", key.display()))
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| at("cert", format!("TLS protocol versions: {error}")))?
        .with_no_client_auth()
        // rustls checks that the key's public half is the certificate's.
        .with_single_cert(chain, key_der)
        .map_err(|error| {
            at(
                "key",
                format!(
                    "{} does not fit the certificate {}: {error}",
                    key.display(),
                    cert.display()
                ),
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(config), Certificate { subject, not_after }))
}
