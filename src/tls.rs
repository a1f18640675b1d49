//! TLS server configuration from PEM files, with optional client-certificate verification.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::config::{ConfigError, TlsConfig};

/// Install the ring crypto provider once, before any rustls config is built (a second
/// provider enabled by some dependency would otherwise make `builder()` panic).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn acceptor(cfg: &TlsConfig) -> Result<TlsAcceptor, ConfigError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cfg.cert_file)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ConfigError::invalid("tls.cert_file", format!("{}: {e}", cfg.cert_file)))?;
    if certs.is_empty() {
        return Err(ConfigError::invalid(
            "tls.cert_file",
            "no certificate in the file",
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&cfg.key_file)
        .map_err(|e| ConfigError::invalid("tls.key_file", format!("{}: {e}", cfg.key_file)))?;
    let builder = ServerConfig::builder();
    let builder = if cfg.client_ca_file.is_empty() {
        builder.with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        let cas = CertificateDer::pem_file_iter(&cfg.client_ca_file)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| {
                ConfigError::invalid("tls.client_ca_file", format!("{}: {e}", cfg.client_ca_file))
            })?;
        for ca in cas {
            roots
                .add(ca)
                .map_err(|e| ConfigError::invalid("tls.client_ca_file", e.to_string()))?;
        }
        let verifier = WebPkiClientVerifier::builder(Arc::new(roots));
        let verifier = if cfg.require_client_cert {
            verifier.build()
        } else {
            verifier.allow_unauthenticated().build()
        }
        .map_err(|e| ConfigError::invalid("tls.client_ca_file", e.to_string()))?;
        builder.with_client_cert_verifier(verifier)
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| ConfigError::invalid("tls.key_file", e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
