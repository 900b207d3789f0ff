//! A per-shard keep-alive pool of upstream connections keyed on (scheme, host, port) —
//! the TLS settings are per shard and fixed, so the scheme stands for them. Bounded idle
//! connections per key, idle expiry, and a liveness check before reuse (a connection
//! the server closed while idle is dropped, not used). No locks: one pool per shard.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::endpoint::Target;
use super::stream::UpstreamStream;

/// Most idle connections kept per key.
pub const MAX_IDLE_PER_KEY: usize = 64;
/// An idle connection older than this is closed instead of reused.
pub const IDLE_EXPIRY: Duration = Duration::from_secs(50);
/// How long a resolved address is reused.
pub const DNS_TTL: Duration = Duration::from_secs(30);

struct Idle {
    stream: UpstreamStream,
    since: Instant,
}

/// Counters for metrics and tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct PoolStats {
    pub reused: u64,
    pub opened: u64,
    pub expired: u64,
    pub dead: u64,
}

/// The pool.
#[derive(Default)]
pub struct Pool {
    idle: RefCell<HashMap<Target, Vec<Idle>>>,
    dns: RefCell<HashMap<(String, u16), (SocketAddr, Instant)>>,
    stats: RefCell<PoolStats>,
}

impl Pool {
    pub fn new() -> Self {
        Self::default()
    }

    /// An idle, live connection to `target`, newest first.
    pub fn take(&self, target: &Target) -> Option<UpstreamStream> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(target)?;
        let mut stats = self.stats.borrow_mut();
        while let Some(c) = list.pop() {
            if c.since.elapsed() >= IDLE_EXPIRY {
                stats.expired += 1;
                continue;
            }
            if !c.stream.idle_alive() {
                stats.dead += 1;
                continue;
            }
            stats.reused += 1;
            return Some(c.stream);
        }
        None
    }

    /// Returns a connection whose last exchange ended cleanly.
    pub fn put(&self, target: &Target, stream: UpstreamStream) {
        let mut idle = self.idle.borrow_mut();
        let list = idle.entry(target.clone()).or_default();
        if list.len() >= MAX_IDLE_PER_KEY {
            list.remove(0);
        }
        list.push(Idle {
            stream,
            since: Instant::now(),
        });
    }

    pub fn note_opened(&self) {
        self.stats.borrow_mut().opened += 1;
    }

    pub fn stats(&self) -> PoolStats {
        *self.stats.borrow()
    }

    pub fn idle_count(&self) -> usize {
        self.idle.borrow().values().map(Vec::len).sum()
    }

    /// Resolves `host:port`, caching the answer for [`DNS_TTL`]. IP literals never block;
    /// a name lookup blocks this shard once per TTL.
    pub fn resolve(&self, host: &str, port: u16) -> std::io::Result<SocketAddr> {
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }
        let key = (host.to_string(), port);
        if let Some((addr, at)) = self.dns.borrow().get(&key) {
            if at.elapsed() < DNS_TTL {
                return Ok(*addr);
            }
        }
        let addr = (host, port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "host name has no address"))?;
        self.dns.borrow_mut().insert(key, (addr, Instant::now()));
        Ok(addr)
    }
}
