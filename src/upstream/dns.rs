//! Name resolution off the shards: a few resolver threads run the system's lookup
//! (`getaddrinfo`: `/etc/hosts`, nsswitch and `resolv.conf` as the host configures them),
//! and every shard shares one cache of their answers. A shard never blocks: it finds an
//! answer in the cache, or joins (or starts) a lookup and awaits it with its own deadline,
//! polling a shared slot every [`POLL_INTERVAL`] (lookups are rare: once per host per
//! [`ANSWER_TTL`], and pooled connections need none).
//!
//! Bounds: at most [`RESOLVER_THREADS`] lookups run at once and [`MAX_PENDING_LOOKUPS`]
//! wait; past that a lookup fails at once. The system resolver reports no TTL, so answers
//! are kept [`ANSWER_TTL`] and failures [`FAILURE_TTL`] (a failing name is not looked up
//! again on every request). Every address returned is kept, in the resolver's order, for
//! the client to try one after another. IP literals never reach a thread.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::util::snapshot::lock;

/// Threads running lookups (so at most this many at once).
pub const RESOLVER_THREADS: usize = 4;
/// Lookups waiting for a thread; more fail at once ("too many lookups pending").
pub const MAX_PENDING_LOOKUPS: usize = 256;
/// How long an answer is reused.
pub const ANSWER_TTL: Duration = Duration::from_secs(30);
/// How long a failed lookup is remembered before the name is tried again.
pub const FAILURE_TTL: Duration = Duration::from_secs(5);
/// How often a shard looks whether its pending lookup finished.
pub const POLL_INTERVAL: Duration = Duration::from_millis(2);
/// Most names cached; past it expired entries are dropped, then the oldest.
pub const MAX_CACHED_NAMES: usize = 4096;

/// Why a name did not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// The resolver answered with an error (or no address).
    Failed(String),
    /// No answer before the caller's deadline.
    Timeout,
    /// Too many lookups already wait.
    Busy,
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResolveError::Failed(e) => f.write_str(e),
            ResolveError::Timeout => f.write_str("the lookup timed out"),
            ResolveError::Busy => f.write_str("too many lookups pending"),
        }
    }
}

type Answer = Result<Arc<[SocketAddr]>, ResolveError>;

/// A lookup's result, filled by a resolver thread.
#[derive(Default)]
struct Slot(Mutex<Option<Answer>>);

enum Entry {
    Done { answer: Answer, until: Instant },
    Pending(Arc<Slot>),
}

struct Job {
    host: String,
    port: u16,
    slot: Arc<Slot>,
}

/// The process's resolver: its threads and the shared cache.
pub struct Resolver {
    cache: Mutex<HashMap<(String, u16), Entry>>,
    jobs: crossbeam_channel::Sender<Job>,
}

/// One lookup on a resolver thread.
fn look_up(host: &str, port: u16) -> Answer {
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var("LLMOPS_TEST_DNS_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        // Tests: a slow resolver where none can be set up (see tests/hardening.rs).
        std::thread::sleep(Duration::from_millis(ms));
    }
    match (host, port).to_socket_addrs() {
        Ok(addrs) => {
            let all: Vec<SocketAddr> = addrs.collect();
            if all.is_empty() {
                Err(ResolveError::Failed(format!("{host} has no address")))
            } else {
                Ok(all.into())
            }
        }
        Err(e) => Err(ResolveError::Failed(format!("cannot resolve {host}: {e}"))),
    }
}

impl Resolver {
    fn start() -> Resolver {
        let (tx, rx) = crossbeam_channel::bounded::<Job>(MAX_PENDING_LOOKUPS);
        for i in 0..RESOLVER_THREADS {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("resolver-{i}"))
                .spawn(move || {
                    for job in rx {
                        let answer = look_up(&job.host, job.port);
                        *lock(&job.slot.0) = Some(answer.clone());
                        resolver().finish(&job.host, job.port, answer);
                    }
                });
            if let Err(e) = spawned {
                crate::log::error("resolver_thread_failed", &[("error", &e.to_string())]);
            }
        }
        Resolver {
            cache: Mutex::new(HashMap::new()),
            jobs: tx,
        }
    }

    /// Records a finished lookup in the cache.
    fn finish(&self, host: &str, port: u16, answer: Answer) {
        let ttl = if answer.is_ok() { ANSWER_TTL } else { FAILURE_TTL };
        let mut cache = lock(&self.cache);
        cache.insert(
            (host.to_string(), port),
            Entry::Done {
                answer,
                until: Instant::now() + ttl,
            },
        );
    }

    /// A cached answer, or the slot of the lookup (joined or started) that will hold it.
    fn begin(&self, host: &str, port: u16) -> Result<Answer, Arc<Slot>> {
        let mut cache = lock(&self.cache);
        let key = (host.to_string(), port);
        match cache.get(&key) {
            Some(Entry::Done { answer, until }) if Instant::now() < *until => return Ok(answer.clone()),
            Some(Entry::Pending(slot)) => return Err(slot.clone()),
            _ => {}
        }
        if cache.len() >= MAX_CACHED_NAMES {
            let now = Instant::now();
            cache.retain(|_, e| {
                matches!(e, Entry::Pending(_)) || matches!(e, Entry::Done { until, .. } if *until > now)
            });
        }
        if cache.len() >= MAX_CACHED_NAMES {
            return Ok(Err(ResolveError::Busy));
        }
        let slot = Arc::new(Slot::default());
        let job = Job {
            host: host.to_string(),
            port,
            slot: slot.clone(),
        };
        if self.jobs.try_send(job).is_err() {
            return Ok(Err(ResolveError::Busy));
        }
        cache.insert(key, Entry::Pending(slot.clone()));
        Err(slot)
    }

    /// Every address of `host:port`, waiting at most until `deadline` (on the calling
    /// shard's runtime, which serves its other connections meanwhile).
    pub async fn resolve(&self, host: &str, port: u16, deadline: Instant) -> Answer {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(Arc::from([SocketAddr::new(ip, port)]));
        }
        let slot = match self.begin(host, port) {
            Ok(answer) => return answer,
            Err(slot) => slot,
        };
        loop {
            if let Some(answer) = lock(&slot.0).clone() {
                return answer;
            }
            if Instant::now() >= deadline {
                return Err(ResolveError::Timeout);
            }
            monoio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

/// The process's resolver (its threads start on first use).
pub fn resolver() -> &'static Resolver {
    static R: OnceLock<Resolver> = OnceLock::new();
    R.get_or_init(Resolver::start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime");
        rt.block_on(f)
    }

    #[test]
    fn literals_names_failures_and_the_cache() {
        let far = Instant::now() + Duration::from_secs(10);
        let r = resolver();
        let lit = block_on(r.resolve("127.0.0.1", 80, far)).expect("a literal");
        assert_eq!(&lit[..], &[SocketAddr::from(([127, 0, 0, 1], 80))]);
        let local = block_on(r.resolve("localhost", 81, far)).expect("localhost resolves");
        assert!(
            local.iter().all(|a| a.ip().is_loopback() && a.port() == 81),
            "{local:?}"
        );
        // Cached: the same answer without a thread.
        assert!(matches!(r.begin("localhost", 81), Ok(Ok(_))));
        // A failure is remembered for FAILURE_TTL, without a thread.
        r.finish("failed.test", 80, Err(ResolveError::Failed("no".into())));
        assert!(matches!(r.begin("failed.test", 80), Ok(Err(ResolveError::Failed(_)))));
        assert_eq!(
            block_on(r.resolve("failed.test", 80, far)),
            Err(ResolveError::Failed("no".into()))
        );
    }
}
