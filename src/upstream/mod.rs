//! The upstream side: where requests go (endpoint), the per-shard keep-alive pool, and
//! one request/response exchange over a pooled connection.

pub mod connection;
pub mod endpoint;
pub mod exchange;
pub mod pool;

use std::fmt;

/// Why an upstream exchange failed.
#[derive(Debug)]
pub enum UpstreamError {
    /// Could not resolve or connect.
    Connect(std::io::Error),
    /// TLS handshake failed.
    Tls(String),
    /// Connect deadline passed.
    ConnectTimeout,
    /// TLS handshake deadline passed.
    TlsTimeout,
    /// No response byte before the time-to-first-byte deadline.
    FirstByteTimeout,
    /// The whole-request deadline passed.
    Deadline,
    /// Reading or writing failed; `started` tells whether any response byte had arrived.
    Io { started: bool, error: std::io::Error },
    /// The upstream closed the connection; `started` as above.
    Closed { started: bool },
    /// The response could not be parsed or was too large.
    Protocol(&'static str),
}

impl UpstreamError {
    /// Whether the error is a timeout (504) rather than an availability failure (502).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            UpstreamError::ConnectTimeout
                | UpstreamError::TlsTimeout
                | UpstreamError::FirstByteTimeout
                | UpstreamError::Deadline
        )
    }

    /// Whether no response byte had arrived (a failure on a reused connection may then
    /// be retried once on a fresh one).
    pub fn before_response(&self) -> bool {
        matches!(
            self,
            UpstreamError::Io { started: false, .. } | UpstreamError::Closed { started: false }
        )
    }

    /// A short label for metrics and the usage row.
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Connect(_) => "connect",
            UpstreamError::Tls(_) => "tls",
            UpstreamError::ConnectTimeout => "connect_timeout",
            UpstreamError::TlsTimeout => "tls_timeout",
            UpstreamError::FirstByteTimeout => "first_byte_timeout",
            UpstreamError::Deadline => "deadline",
            UpstreamError::Io { .. } => "io",
            UpstreamError::Closed { .. } => "closed",
            UpstreamError::Protocol(_) => "protocol",
        }
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamError::Connect(e) => write!(f, "cannot connect to the upstream: {e}"),
            UpstreamError::Tls(e) => write!(f, "TLS handshake with the upstream failed: {e}"),
            UpstreamError::ConnectTimeout => f.write_str("connecting to the upstream timed out"),
            UpstreamError::TlsTimeout => f.write_str("the TLS handshake with the upstream timed out"),
            UpstreamError::FirstByteTimeout => f.write_str("the upstream sent no response in time"),
            UpstreamError::Deadline => f.write_str("the upstream request passed its deadline"),
            UpstreamError::Io { error, .. } => write!(f, "upstream connection failed: {error}"),
            UpstreamError::Closed { .. } => f.write_str("the upstream closed the connection"),
            UpstreamError::Protocol(why) => write!(f, "invalid upstream response: {why}"),
        }
    }
}

impl std::error::Error for UpstreamError {}
