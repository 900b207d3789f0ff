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

/// Why a client handshake with `host` failed, in words an operator can act on: an
/// unknown issuer, a name mismatch, an expired certificate, a CA certificate served as
/// the server's own, an alert from the server, or the I/O failure.
pub fn handshake_reason(e: &std::io::Error, host: &str) -> String {
    use rustls::CertificateError as C;
    let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) else {
        return match e.kind() {
            std::io::ErrorKind::UnexpectedEof => "the server closed the connection during the handshake".into(),
            _ => format!("I/O failure during the handshake: {e}"),
        };
    };
    match tls {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => {
                "unknown issuer: the server's certificate does not chain to a trusted root (--upstream-ca adds one)"
                    .into()
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                format!("name mismatch: the server's certificate is not valid for {host}")
            }
            C::Expired | C::ExpiredContext { .. } => "the server's certificate has expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => "the server's certificate is not valid yet".into(),
            C::Revoked => "the server's certificate is revoked".into(),
            C::BadSignature => "the server's certificate has a bad signature".into(),
            C::Other(o) if format!("{o}").contains("CaUsedAsEndEntity") => {
                "a CA certificate is used as the server's own certificate".into()
            }
            other => format!("invalid server certificate: {other:?}"),
        },
        rustls::Error::AlertReceived(a) => format!("the server refused the handshake (alert {a:?})"),
        other => format!("{other}"),
    }
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
