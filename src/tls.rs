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

/// Longest peer subject kept (tenant `mtls:<subject>`).
pub const MAX_SUBJECT_CHARS: usize = 128;
/// Ciphertext read size during a handshake.
const HANDSHAKE_READ_BYTES: usize = 16 * 1024;

/// Why a client's TLS handshake failed.
#[derive(Debug)]
pub enum HandshakeError {
    Timeout,
    Eof,
    Io(std::io::Error),
    Tls(rustls::Error),
}

impl HandshakeError {
    /// A short, bounded label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            HandshakeError::Timeout => "timeout",
            HandshakeError::Eof => "eof",
            HandshakeError::Io(_) => "io",
            HandshakeError::Tls(e) => match e {
                rustls::Error::NoCertificatesPresented => "no_client_cert",
                rustls::Error::InvalidCertificate(_) => "bad_client_cert",
                rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => "not_tls",
                rustls::Error::AlertReceived(_) => "alert",
                rustls::Error::PeerIncompatible(_) => "incompatible",
                rustls::Error::PeerMisbehaved(_) => "protocol",
                _ => "tls",
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
        match crate::util::io::read_more_until(&mut tcp, rbuf, HANDSHAKE_READ_BYTES, deadline).await {
            Ok((_, b)) => rbuf = b,
            Err((crate::util::io::ReadError::Timeout, _)) => return Err(HandshakeError::Timeout),
            Err((crate::util::io::ReadError::Eof, _)) => return Err(HandshakeError::Eof),
            Err((crate::util::io::ReadError::Io(e), _)) => return Err(HandshakeError::Io(e)),
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

/// A DER element: (tag, content, rest).
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let l0 = *b.get(1)? as usize;
    let (len, hdr) = if l0 < 0x80 {
        (l0, 2)
    } else {
        let n = l0 & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *b.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = hdr.checked_add(len)?;
    if end > b.len() {
        return None;
    }
    Some((tag, &b[hdr..end], &b[end..]))
}

/// The fields of a certificate's TBSCertificate, in order (version skipped).
fn tbs_fields(cert: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let (_, certificate, _) = tlv(cert)?;
    let (_, tbs, _) = tlv(certificate)?;
    let mut out = Vec::new();
    let mut rest = tbs;
    while !rest.is_empty() {
        let (t, c, r) = tlv(rest)?;
        if t != 0xa0 {
            out.push((t, c));
        }
        rest = r;
    }
    Some(out)
}

fn clean(s: &[u8]) -> Option<String> {
    let s: String = String::from_utf8_lossy(s)
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_SUBJECT_CHARS)
        .collect();
    (!s.is_empty()).then_some(s)
}

/// The subject common name, else the first subjectAltName (DNS, email, URI).
pub fn peer_subject(cert: &[u8]) -> Option<String> {
    let f = tbs_fields(cert)?;
    // serial, signature, issuer, validity, subject, spki, [extensions]
    let subject = f.get(4)?.1;
    let mut rest = subject;
    while !rest.is_empty() {
        let (_, set, r) = tlv(rest)?;
        rest = r;
        let (_, atv, _) = tlv(set)?;
        let (t, oid, after) = tlv(atv)?;
        if t == 0x06 && oid == [0x55, 0x04, 0x03] {
            let (_, v, _) = tlv(after)?;
            return clean(v);
        }
    }
    let exts = f.iter().find(|(t, _)| *t == 0xa3)?.1;
    let (_, mut list, _) = tlv(exts)?;
    while !list.is_empty() {
        let (_, ext, r) = tlv(list)?;
        list = r;
        let (_, oid, mut after) = tlv(ext)?;
        if oid != [0x55, 0x1d, 0x11] {
            continue;
        }
        let (mut t, mut v, r2) = tlv(after)?;
        if t == 0x01 {
            after = r2;
            (t, v, _) = tlv(after)?;
        }
        if t != 0x04 {
            return None;
        }
        let (_, mut names, _) = tlv(v)?;
        while !names.is_empty() {
            let (nt, nv, r3) = tlv(names)?;
            names = r3;
            if matches!(nt, 0x81 | 0x82 | 0x86) {
                return clean(nv);
            }
        }
    }
    None
}

/// The certificate's notAfter as unix seconds.
pub fn not_after(cert: &[u8]) -> Option<i64> {
    let f = tbs_fields(cert)?;
    let validity = f.get(3)?.1;
    let (_, _, rest) = tlv(validity)?;
    let (t, v, _) = tlv(rest)?;
    let s = std::str::from_utf8(v).ok()?;
    let digits = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    let (year, off) = match t {
        0x17 => {
            let yy = digits(0..2)? as i32;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
        }
        0x18 => (digits(0..4)? as i32, 4),
        _ => return None,
    };
    let (mo, d, h, mi, se) = (
        digits(off..off + 2)?,
        digits(off + 2..off + 4)?,
        digits(off + 4..off + 6)?,
        digits(off + 6..off + 8)?,
        digits(off + 8..off + 10)?,
    );
    Some(crate::util::time::days_from_civil(year, mo, d) * 86_400 + (h * 3600 + mi * 60 + se) as i64)
}
