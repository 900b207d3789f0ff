//! Per-shard counters: atomics written only by their own shard (relaxed, uncontended)
//! and read by `/metrics` and the drain logic. No locks.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// Which I/O driver a shard runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Unknown = 0,
    IoUring = 1,
    Epoll = 2,
}

impl Driver {
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Unknown => "unknown",
            Driver::IoUring => "io_uring",
            Driver::Epoll => "epoll",
        }
    }
}

/// One shard's counters.
#[derive(Debug, Default)]
pub struct ShardStats {
    pub driver: AtomicU8,
    pub connections_open: AtomicU64,
    pub connections_total: AtomicU64,
    pub requests_in_flight: AtomicU64,
    pub requests_total: AtomicU64,
    pub responses_2xx: AtomicU64,
    pub responses_4xx: AtomicU64,
    pub responses_5xx: AtomicU64,
    pub upstream_errors: AtomicU64,
    pub upstream_timeouts: AtomicU64,
    pub upstream_connects: AtomicU64,
    pub upstream_reused: AtomicU64,
    pub upstream_retries: AtomicU64,
    pub unpriced: AtomicU64,
    pub bad_requests: AtomicU64,
}

impl ShardStats {
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dec(c: &AtomicU64) {
        c.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn set_driver(&self, d: Driver) {
        self.driver.store(d as u8, Ordering::Relaxed);
    }

    pub fn driver(&self) -> Driver {
        match self.driver.load(Ordering::Relaxed) {
            1 => Driver::IoUring,
            2 => Driver::Epoll,
            _ => Driver::Unknown,
        }
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
