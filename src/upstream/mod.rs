//! The whole client side: where requests go (`endpoint`), a connection (`connection`:
//! TCP or TLS), the per-shard keep-alive pool (`pool`), one request/response exchange
//! (`exchange`), and the shard's upstream [`client::Client`] that ties them together
//! (connect, pool, one safe retry) behind a typed outcome. The counters every shard
//! keeps about its upstream are [`Counters`], labelled by [`ErrorKind`].

pub mod client;
pub mod connection;
pub mod dns;
pub mod endpoint;
pub mod exchange;
pub mod pool;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Why an upstream exchange failed.
#[derive(Debug)]
pub enum UpstreamError {
    /// The upstream's name did not resolve (or not in time).
    Resolve { host: String, error: dns::ResolveError },
    /// Could not connect.
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
    /// Writing the request failed before all of it left: the upstream cannot have
    /// started the call (a body it did not wholly receive is not a request).
    Unsent(std::io::Error),
    /// Reading failed after the request was written; `started` tells whether any
    /// response byte had arrived.
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

    /// Whether the request never wholly left, so the upstream cannot have started (or
    /// billed) it: only then may a failure on a reused connection be retried once on a
    /// fresh one. A request fully written and then cut, answered or not, is never sent
    /// twice: it may have been executed.
    pub fn unsent(&self) -> bool {
        matches!(self, UpstreamError::Unsent(_))
    }

    /// The metrics label of the failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            UpstreamError::Resolve { .. } => ErrorKind::Dns,
            UpstreamError::Connect(_) => ErrorKind::Connect,
            UpstreamError::Tls(_) => ErrorKind::Tls,
            UpstreamError::ConnectTimeout => ErrorKind::ConnectTimeout,
            UpstreamError::TlsTimeout => ErrorKind::TlsTimeout,
            UpstreamError::FirstByteTimeout => ErrorKind::FirstByteTimeout,
            UpstreamError::Deadline => ErrorKind::Deadline,
            UpstreamError::Unsent(_) | UpstreamError::Io { .. } => ErrorKind::Io,
            UpstreamError::Closed { .. } => ErrorKind::Closed,
            UpstreamError::Protocol(_) => ErrorKind::Protocol,
        }
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamError::Resolve { host, error } => write!(f, "cannot resolve the upstream {host}: {error}"),
            UpstreamError::Connect(e) => write!(f, "cannot connect to the upstream: {e}"),
            UpstreamError::Tls(e) => write!(f, "TLS handshake with the upstream failed: {e}"),
            UpstreamError::ConnectTimeout => f.write_str("connecting to the upstream timed out"),
            UpstreamError::TlsTimeout => f.write_str("the TLS handshake with the upstream timed out"),
            UpstreamError::FirstByteTimeout => f.write_str("the upstream sent no response in time"),
            UpstreamError::Deadline => f.write_str("the upstream request passed its deadline"),
            UpstreamError::Unsent(e) => write!(f, "upstream connection failed while sending the request: {e}"),
            UpstreamError::Io { started: false, error } => {
                write!(f, "upstream connection failed before any answer: {error}")
            }
            UpstreamError::Io { started: true, error } => write!(f, "upstream connection failed mid-answer: {error}"),
            UpstreamError::Closed { started: false } => {
                f.write_str("the upstream closed the connection before answering")
            }
            UpstreamError::Closed { started: true } => f.write_str("the upstream closed the connection mid-answer"),
            UpstreamError::Protocol(why) => write!(f, "invalid upstream response: {why}"),
        }
    }
}

impl std::error::Error for UpstreamError {}

/// Upstream failure kinds (the `kind` label of `llmops_upstream_errors_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Dns,
    Connect,
    Tls,
    ConnectTimeout,
    TlsTimeout,
    FirstByteTimeout,
    Deadline,
    Io,
    Closed,
    Protocol,
}

impl ErrorKind {
    /// Every kind, in label order.
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::Dns,
        ErrorKind::Connect,
        ErrorKind::Tls,
        ErrorKind::ConnectTimeout,
        ErrorKind::TlsTimeout,
        ErrorKind::FirstByteTimeout,
        ErrorKind::Deadline,
        ErrorKind::Io,
        ErrorKind::Closed,
        ErrorKind::Protocol,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Dns => "dns",
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::TlsTimeout => "tls_timeout",
            ErrorKind::FirstByteTimeout => "first_byte_timeout",
            ErrorKind::Deadline => "deadline",
            ErrorKind::Io => "io",
            ErrorKind::Closed => "closed",
            ErrorKind::Protocol => "protocol",
        }
    }
}

/// Upstream deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    pub tls: Duration,
    /// Request written → first response byte.
    pub ttfb: Duration,
    /// The whole request.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            tls: Duration::from_secs(10),
            ttfb: Duration::from_secs(60),
            total: Duration::from_secs(900),
        }
    }
}

/// One shard's upstream counters: atomics written by that shard only, summed by
/// `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    /// New connections made.
    pub connects: AtomicU64,
    /// Requests sent on a pooled connection.
    pub reused: AtomicU64,
    /// Retries after a reused connection failed before the request was wholly written.
    pub retries: AtomicU64,
    /// Open connections, pooled or in use (a gauge).
    pub open: Arc<AtomicU64>,
    /// Failures by [`ErrorKind`].
    pub errors: [AtomicU64; ErrorKind::ALL.len()],
    /// Idle connections the pool dropped instead of reusing.
    pub pool: Arc<pool::PoolCounters>,
}

impl Counters {
    /// Counts a failure by its kind.
    pub fn failed(&self, e: &UpstreamError) {
        self.errors[e.kind() as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The count of one kind.
    pub fn errors_of(&self, k: ErrorKind) -> u64 {
        self.errors[k as usize].load(Ordering::Relaxed)
    }
}
