//! A per-shard keep-alive pool of upstream connections keyed on (scheme, host, port) —
//! the TLS settings are per shard and fixed, so the scheme stands for them. Bounded idle
//! connections per key, idle expiry, and a liveness check before reuse (a connection
//! the server closed while idle is dropped, not used). No locks: one pool per shard.

use crate::util::hash::FastMap;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::connection::UpstreamStream;
use super::endpoint::Target;

/// Most idle connections kept per key.
pub const MAX_IDLE_PER_KEY: usize = 64;
/// An idle connection older than this is closed instead of reused.
pub const IDLE_EXPIRY: Duration = Duration::from_secs(50);

struct Idle {
    stream: UpstreamStream,
    since: Instant,
}

/// Idle connections the pool dropped instead of reusing, for metrics: atomics written
/// only by the owning shard, read by `/metrics` on any shard.
#[derive(Debug, Default)]
pub struct PoolCounters {
    /// Older than [`IDLE_EXPIRY`].
    pub expired: AtomicU64,
    /// Closed (or sent bytes) while idle: the peer went away.
    pub dead: AtomicU64,
}

/// The pool.
#[derive(Default)]
pub struct Pool {
    /// Only targets that answered get a key, so no client fills it: the fast hash.
    idle: RefCell<FastMap<Target, Vec<Idle>>>,
    counters: Arc<PoolCounters>,
}

impl Pool {
    pub fn new(counters: Arc<PoolCounters>) -> Self {
        Pool {
            counters,
            ..Default::default()
        }
    }

    /// An idle, live connection to `target`, newest first.
    pub fn take(&self, target: &Target) -> Option<UpstreamStream> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(target)?;
        while let Some(c) = list.pop() {
            if c.since.elapsed() >= IDLE_EXPIRY {
                self.counters.expired.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if !c.stream.idle_alive() {
                self.counters.dead.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            return Some(c.stream);
        }
        None
    }

    /// Returns a connection whose last exchange ended cleanly.
    pub fn put(&self, target: &Target, stream: UpstreamStream) {
        let mut idle = self.idle.borrow_mut();
        // The key is cloned only the first time a target is seen.
        let list = match idle.get_mut(target) {
            Some(l) => l,
            None => idle.entry(target.clone()).or_default(),
        };
        if list.len() >= MAX_IDLE_PER_KEY {
            list.remove(0);
        }
        list.push(Idle {
            stream,
            since: Instant::now(),
        });
    }
}
