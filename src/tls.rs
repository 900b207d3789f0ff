//! TLS configuration with rustls on the ring provider: loading certificate chains and
//! private keys (PKCS#8, PKCS#1 and SEC1 PEM), and the server configuration (ALPN
//! `http/1.1`, TLS 1.2 and 1.3, session resumption by cache and tickets).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Sessions kept per server configuration for stateful resumption.
pub const SESSION_CACHE_ENTRIES: usize = 4096;

/// Why a certificate or key file could not be used.
#[derive(Debug)]
pub enum TlsConfigError {
    Read { path: String, why: String },
    NoCertificate(String),
    Key { path: String, why: String },
    Mismatch(String),
    Rustls(String),
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsConfigError::Read { path, why } => write!(f, "cannot read {path}: {why}"),
            TlsConfigError::NoCertificate(p) => write!(f, "{p} holds no PEM certificate"),
            TlsConfigError::Key { path, why } => {
                write!(f, "{path}: no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {why}")
            }
            TlsConfigError::Mismatch(why) => write!(f, "certificate and key do not match: {why}"),
            TlsConfigError::Rustls(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for TlsConfigError {}

/// Reads every certificate of a PEM file (leaf first for a chain).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let p = path.display().to_string();
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| TlsConfigError::Read {
        path: p.clone(),
        why: e.to_string(),
    })?;
    let mut out = Vec::new();
    for c in iter {
        out.push(c.map_err(|e| TlsConfigError::Read {
            path: p.clone(),
            why: e.to_string(),
        })?);
    }
    if out.is_empty() {
        return Err(TlsConfigError::NoCertificate(p));
    }
    Ok(out)
}

/// Reads the first private key of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsConfigError::Key {
        path: path.display().to_string(),
        why: e.to_string(),
    })
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

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
