//! TLS with rustls on the ring provider, both directions: certificates and keys
//! ([`certs`]: chains, PKCS#8/PKCS#1/SEC1 keys, the subject and expiry read from DER),
//! the client listener's side ([`server`]: configuration with ALPN `http/1.1`, TLS 1.2
//! and 1.3, resumption by cache and tickets, mutual TLS; the handshake) and the
//! upstream side ([`client`]: roots, SNI, the handshake).

pub mod certs;
pub mod client;
pub mod server;

use std::fmt;
use std::sync::Arc;

pub use certs::{load_certs, not_after};
pub use server::{accept, server_config, SESSION_CACHE_ENTRIES};

/// The ring crypto provider (no aws-lc anywhere in the tree).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

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
