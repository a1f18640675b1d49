//! PEM files to rustls configurations for mutual TLS between members: the server requires a
//! client certificate chaining to the cluster CA, the client checks the server's against it.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::{TlsFiles, TransportError};

pub(crate) struct Tls {
    pub acceptor: TlsAcceptor,
    pub connector: TlsConnector,
    /// The configured name to check in every peer's certificate, if any.
    pub server_name: Option<ServerName<'static>>,
}

impl Tls {
    pub fn load(files: &TlsFiles) -> Result<Tls, TransportError> {
        // The provider the binary installed, else ring (the one built in): never rustls's
        // `builder()`, which panics when no provider, or more than one, is available.
        let provider = CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
        let certs = load_certs(&files.cert)?;
        let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| pem_err(&files.key, e))?;
        let mut roots = RootCertStore::empty();
        for ca in load_certs(&files.ca)? {
            roots.add(ca).map_err(|e| tls_err(&files.ca, e))?;
        }
        let roots = Arc::new(roots);

        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| tls_err(&files.ca, e))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err(&files.cert, e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs.clone(), key.clone_key())
            .map_err(|e| tls_err(&files.cert, e))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err(&files.cert, e))?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(|e| tls_err(&files.cert, e))?;

        let server_name = match &files.server_name {
            None => None,
            Some(name) => Some(
                ServerName::try_from(name.clone())
                    .map_err(|e| TransportError::Config(format!("tls server name {name}: {e}")))?,
            ),
        };
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            server_name,
        })
    }
}

/// The name to check in the certificate of the peer at `raft_addr` ("host:port", "[v6]:port").
pub(crate) fn peer_name(raft_addr: &str) -> Result<ServerName<'static>, TransportError> {
    let host = raft_addr
        .rsplit_once(':')
        .map_or(raft_addr, |(host, _port)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned())
        .map_err(|e| TransportError::Config(format!("tls name from raft address {raft_addr}: {e}")))
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TransportError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(path, e))?;
    if certs.is_empty() {
        return Err(TransportError::Tls(format!(
            "{}: no certificate found",
            path.display()
        )));
    }
    Ok(certs)
}

fn pem_err(path: &Path, e: rustls::pki_types::pem::Error) -> TransportError {
    TransportError::Tls(format!("{}: {e}", path.display()))
}

fn tls_err(path: &Path, e: impl std::fmt::Display) -> TransportError {
    TransportError::Tls(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_names_come_from_the_host_part() {
        assert_eq!(
            peer_name("127.0.0.1:7001").unwrap(),
            ServerName::try_from("127.0.0.1").unwrap()
        );
        assert_eq!(
            peer_name("[::1]:7001").unwrap(),
            ServerName::try_from("::1").unwrap()
        );
        assert_eq!(
            peer_name("node-2.cluster:7001").unwrap(),
            ServerName::try_from("node-2.cluster").unwrap()
        );
        assert!(peer_name("bad name:1").is_err());
    }
}
