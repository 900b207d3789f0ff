//! Per-shard counters: atomics written only by their own shard (relaxed, uncontended)
//! and read by `/metrics` and the drain logic. No locks. Labelled counters are arrays
//! indexed by a typed label enum whose `ALL` list also drives the exposition.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use crate::tls::server::TlsFailure;
use crate::util::runtime::Driver;

/// Upper bounds (ms) of the latency histogram buckets; `+Inf` is implied.
pub const LATENCY_BUCKETS_MS: [f64; 15] = [
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0,
];

/// A lock-free histogram written by one shard.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Per-bucket counts (not cumulative); the last slot is `+Inf`.
    pub buckets: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
    pub sum_micros: AtomicU64,
    pub count: AtomicU64,
}

impl Histogram {
    pub fn observe_ms(&self, ms: f64) {
        let i = LATENCY_BUCKETS_MS
            .iter()
            .position(|b| ms <= *b)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add((ms * 1000.0) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// One shard's counters.
#[derive(Debug, Default)]
pub struct ShardStats {
    driver: AtomicU8,
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    /// Connections refused at `--max-connections`.
    pub connections_refused: AtomicU64,
    pub requests_in_flight: AtomicU64,
    pub requests_total: AtomicU64,
    pub responses_2xx: AtomicU64,
    pub responses_4xx: AtomicU64,
    pub responses_5xx: AtomicU64,
    pub bad_requests: AtomicU64,
    /// The shard's upstream client's counters.
    pub upstream: Arc<crate::upstream::Counters>,
    pub tls_handshakes_full: AtomicU64,
    pub tls_handshakes_resumed: AtomicU64,
    /// Client TLS handshake failures by [`TlsFailure`].
    pub tls_failures: [AtomicU64; TlsFailure::ALL.len()],
    /// Request received → last byte sent.
    pub request_latency: Histogram,
    /// Upstream request sent → last byte received.
    pub upstream_latency: Histogram,
    /// Optimizer fallback attempts, by the answer that caused them
    /// (`optimizer::rules::FALLBACK_ERRORS`).
    pub fallbacks: [AtomicU64; crate::optimizer::rules::FALLBACK_ERRORS.len()],
}

impl ShardStats {
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dec(c: &AtomicU64) {
        c.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn set_driver(&self, d: Driver) {
        self.driver.store(d as u8 + 1, Ordering::Relaxed);
    }

    /// The shard's driver (`None` before it started).
    pub fn driver(&self) -> Option<Driver> {
        match self.driver.load(Ordering::Relaxed) {
            1 => Some(Driver::IoUring),
            2 => Some(Driver::Epoll),
            _ => None,
        }
    }

    /// Counts a failed client TLS handshake.
    pub fn tls_failure(&self, reason: TlsFailure) {
        Self::inc(&self.tls_failures[reason as usize]);
    }

    pub fn count_status(&self, status: u16) {
        match status {
            200..=299 => Self::inc(&self.responses_2xx),
            400..=499 => Self::inc(&self.responses_4xx),
            500..=599 => Self::inc(&self.responses_5xx),
            _ => {}
        }
    }
}
