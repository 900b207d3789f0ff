//! The upstream side's TLS: the client configuration (webpki roots plus an optional
//! extra CA, ALPN `http/1.1`) and the handshake with SNI under a deadline. Each shard
//! builds its own configuration, so the session cache used for resumption on reconnect
//! is never shared between threads.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use monoio::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// Builds the upstream TLS client configuration.
pub fn client_config(extra_ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(p) = extra_ca {
        let mut n = 0;
        for cert in CertificateDer::pem_file_iter(p).map_err(|e| format!("cannot read {}: {e}", p.display()))? {
            let cert = cert.map_err(|e| format!("{} is not a PEM certificate file: {e}", p.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("{}: unusable CA certificate: {e}", p.display()))?;
            n += 1;
        }
        if n == 0 {
            return Err(format!("{} holds no PEM certificate", p.display()));
        }
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(super::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Why the upstream TLS handshake failed.
#[derive(Debug)]
pub enum ClientTlsError {
    /// The host is not a valid TLS server name.
    Name(String),
    Timeout,
    Handshake(std::io::Error),
}

/// Runs the client handshake with `host` as SNI and verified name.
pub async fn connect(
    cfg: &Arc<rustls::ClientConfig>,
    host: &str,
    tcp: TcpStream,
    timeout: Duration,
) -> Result<monoio_rustls::ClientTlsStream<TcpStream>, ClientTlsError> {
    let name = ServerName::try_from(host.to_string()).map_err(|e| ClientTlsError::Name(e.to_string()))?;
    let connector = monoio_rustls::TlsConnector::from(cfg.clone());
    match monoio::time::timeout(timeout, connector.connect(name, tcp)).await {
        Err(_) => Err(ClientTlsError::Timeout),
        Ok(Err(e)) => Err(ClientTlsError::Handshake(e.into())),
        Ok(Ok(s)) => Ok(s),
    }
}
