//! The client listener's TLS: the server configuration (ALPN `http/1.1`, TLS 1.2 and
//! 1.3, session resumption by cache and tickets, optional mutual TLS) and the handshake,
//! driven here on rustls directly so the peer certificate and the handshake kind can be
//! read before the stream is handed to monoio-rustls.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use super::certs::{load_certs, load_key, peer_subject};
use super::{provider, TlsConfigError};

/// Sessions kept per server configuration for stateful resumption.
pub const SESSION_CACHE_ENTRIES: usize = 4096;
/// Ciphertext read size during a handshake.
const HANDSHAKE_READ_BYTES: usize = 16 * 1024;

/// A server configuration for `cert` (chain) and `key`; with `client_ca`, client
/// certificates signed by it are required.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<rustls::ServerConfig>, TlsConfigError> {
    let chain = load_certs(cert)?;
    let key = load_key(key)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsConfigError::Rustls(e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in load_certs(ca)? {
                roots
                    .add(c)
                    .map_err(|e| TlsConfigError::Rustls(format!("{}: {e}", ca.display())))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| TlsConfigError::Rustls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut cfg = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsConfigError::Mismatch(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    cfg.session_storage = rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES);
    if let Ok(t) = rustls::crypto::ring::Ticketer::new() {
        cfg.ticketer = t;
    }
    Ok(Arc::new(cfg))
}

/// Why a client's TLS handshake failed.
#[derive(Debug)]
pub enum HandshakeError {
    Timeout,
    Eof,
    Io(std::io::Error),
    Tls(rustls::Error),
}

/// Why a client handshake failed, as a bounded metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFailure {
    Timeout,
    Eof,
    Io,
    NoClientCert,
    BadClientCert,
    NotTls,
    Alert,
    Incompatible,
    Protocol,
    Tls,
}

impl TlsFailure {
    /// Every reason, in label order.
    pub const ALL: [TlsFailure; 10] = [
        TlsFailure::Timeout,
        TlsFailure::Eof,
        TlsFailure::Io,
        TlsFailure::NoClientCert,
        TlsFailure::BadClientCert,
        TlsFailure::NotTls,
        TlsFailure::Alert,
        TlsFailure::Incompatible,
        TlsFailure::Protocol,
        TlsFailure::Tls,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TlsFailure::Timeout => "timeout",
            TlsFailure::Eof => "eof",
            TlsFailure::Io => "io",
            TlsFailure::NoClientCert => "no_client_cert",
            TlsFailure::BadClientCert => "bad_client_cert",
            TlsFailure::NotTls => "not_tls",
            TlsFailure::Alert => "alert",
            TlsFailure::Incompatible => "incompatible",
            TlsFailure::Protocol => "protocol",
            TlsFailure::Tls => "tls",
        }
    }
}

impl HandshakeError {
    /// The metrics label of the failure.
    pub fn reason(&self) -> TlsFailure {
        match self {
            HandshakeError::Timeout => TlsFailure::Timeout,
            HandshakeError::Eof => TlsFailure::Eof,
            HandshakeError::Io(_) => TlsFailure::Io,
            HandshakeError::Tls(e) => match e {
                rustls::Error::NoCertificatesPresented => TlsFailure::NoClientCert,
                rustls::Error::InvalidCertificate(_) => TlsFailure::BadClientCert,
                rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => TlsFailure::NotTls,
                rustls::Error::AlertReceived(_) => TlsFailure::Alert,
                rustls::Error::PeerIncompatible(_) => TlsFailure::Incompatible,
                rustls::Error::PeerMisbehaved(_) => TlsFailure::Protocol,
                _ => TlsFailure::Tls,
            },
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Timeout => f.write_str("handshake timed out"),
            HandshakeError::Eof => f.write_str("peer closed during the handshake"),
            HandshakeError::Io(e) => write!(f, "I/O during the handshake: {e}"),
            HandshakeError::Tls(e) => write!(f, "TLS: {e}"),
        }
    }
}

impl std::error::Error for HandshakeError {}

/// What a completed handshake tells.
#[derive(Debug, Clone, Default)]
pub struct HandshakeInfo {
    pub resumed: bool,
    /// Client certificate subject (CN, else first SAN) under mutual TLS.
    pub peer_subject: Option<String>,
}

/// Runs the server side of a TLS handshake on `tcp`, then hands the connection to
/// monoio-rustls for the data path. The handshake is driven here (rustls directly) so
/// that the peer certificate and the handshake kind can be read, and so that any
/// application data that arrived with the client's last flight stays inside rustls
/// (nothing is buffered outside it when the stream is handed over).
pub async fn accept(
    mut tcp: monoio::net::TcpStream,
    cfg: Arc<rustls::ServerConfig>,
    timeout: std::time::Duration,
) -> Result<(monoio_rustls::ServerTlsStream<monoio::net::TcpStream>, HandshakeInfo), HandshakeError> {
    use monoio::io::AsyncWriteRentExt;
    let deadline = std::time::Instant::now() + timeout;
    let mut conn = rustls::ServerConnection::new(cfg).map_err(HandshakeError::Tls)?;
    let mut rbuf: Vec<u8> = Vec::with_capacity(HANDSHAKE_READ_BYTES);
    loop {
        while conn.wants_write() {
            let mut out = Vec::with_capacity(4096);
            conn.write_tls(&mut out).map_err(HandshakeError::Io)?;
            match monoio::time::timeout_at(deadline.into(), tcp.write_all(out)).await {
                Err(_) => return Err(HandshakeError::Timeout),
                Ok((Err(e), _)) => return Err(HandshakeError::Io(e)),
                Ok((Ok(_), _)) => {}
            }
        }
        if !conn.is_handshaking() {
            break;
        }
        rbuf.clear();
        match crate::http::io::read_more_until(&mut tcp, rbuf, HANDSHAKE_READ_BYTES, deadline).await {
            Ok((_, b)) => rbuf = b,
            Err((crate::http::io::ReadError::Timeout, _)) => return Err(HandshakeError::Timeout),
            Err((crate::http::io::ReadError::Eof, _)) => return Err(HandshakeError::Eof),
            Err((crate::http::io::ReadError::Io(e), _)) => return Err(HandshakeError::Io(e)),
        }
        let mut slice = &rbuf[..];
        while !slice.is_empty() {
            conn.read_tls(&mut slice).map_err(HandshakeError::Io)?;
            if let Err(e) = conn.process_new_packets() {
                // Tell the peer why (best effort), then give up.
                let mut out = Vec::new();
                if conn.write_tls(&mut out).is_ok() && !out.is_empty() {
                    let _ = monoio::time::timeout_at(deadline.into(), tcp.write_all(out)).await;
                }
                return Err(HandshakeError::Tls(e));
            }
        }
    }
    let info = HandshakeInfo {
        resumed: conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        peer_subject: conn
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| peer_subject(c.as_ref())),
    };
    Ok((monoio_rustls::ServerTlsStream::new(tcp, conn), info))
}
