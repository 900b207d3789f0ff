//! The server: one monoio runtime per shard thread, each with its own SO_REUSEPORT
//! listener, key cache, upstream pool and usage queue; the main thread handles signals
//! (drain on SIGTERM/SIGINT, reload on SIGHUP) and the writer thread writes Parquet.

pub mod conn;
pub mod metrics;
pub mod proxy;
pub mod shard;
pub mod signals;
pub mod stats;
pub mod stream;

use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::config::ServeConfig;
use crate::pricing::PriceTable;
use crate::sigv4::Signer;
use crate::tenant::KeyStore;
use crate::upstream::pool::Pool;
use crate::usage::queue::UsageSink;
use crate::usage::scan::Scanner;
use crate::usage::writer::WriterStats;
use crate::usage::UsageRecord;
use stats::ShardStats;

/// Why `serve` stopped with an error.
#[derive(Debug)]
pub enum ServeError {
    /// Bad configuration (exit code 2).
    Config(crate::config::ConfigError),
    /// Runtime failure (exit code 1).
    Runtime(String),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Config(e) => write!(f, "{e}"),
            ServeError::Runtime(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for ServeError {}

/// Keys and prices, swapped as a whole on SIGHUP.
#[derive(Clone)]
pub struct Reloadable {
    pub keys: Arc<KeyStore>,
    pub prices: Arc<PriceTable>,
    /// The TLS listener's configuration (certificate, key, client CA).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The served certificate's notAfter, unix seconds.
    pub cert_not_after: Option<i64>,
}

/// State shared by every shard (read-mostly; counters are atomics).
pub struct Shared {
    pub config: ServeConfig,
    pub draining: AtomicBool,
    pub shard_stats: Vec<Arc<ShardStats>>,
    pub dropped: Arc<AtomicU64>,
    pub writer_stats: Arc<WriterStats>,
    /// Labelled aggregates kept by the writer thread from the rows.
    pub row_metrics: Arc<Mutex<crate::usage::observe::RowMetrics>>,
    /// Budget tracking (writer side) and the published block set (shard side).
    pub budgets: Option<crate::budget::Hook>,
    /// Health of the shared budget store, when one is configured.
    pub store_stats: Option<Arc<crate::budget::store::StoreStats>>,
    /// Bumped on every successful reload; shards compare it with a relaxed load.
    pub generation: AtomicU64,
    /// Taken only when `generation` changed (never on the steady-state hot path).
    pub reloadable: Mutex<Reloadable>,
    /// Random per-process prefix of request ids.
    pub instance: u32,
}

/// One shard's state, owned by its thread.
pub struct Shard {
    pub id: usize,
    pub shared: Arc<Shared>,
    pub stats: Arc<ShardStats>,
    pub signer: RefCell<Signer>,
    pub pool: Pool,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub sink: RefCell<UsageSink>,
    pub scanner: RefCell<Scanner>,
    /// Fired when the shard starts draining; idle connections close at once.
    pub drain: crate::http::drain::DrainSignal,
    seq: Cell<u64>,
    current: RefCell<(u64, Reloadable)>,
    blocks: RefCell<(u64, Arc<crate::budget::BlockSet>)>,
    tls_local: RefCell<(u64, Option<Arc<rustls::ServerConfig>>)>,
    /// This shard's own copy of the prices: the ids its rows carry are reference
    /// counted on this core only.
    prices_local: RefCell<(u64, Arc<PriceTable>)>,
}

impl Shard {
    pub fn new(id: usize, shared: Arc<Shared>, sink: UsageSink, tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        let stats = shared.shard_stats[id].clone();
        let pool = Pool::new(stats.pool.clone());
        let gen = shared.generation.load(Ordering::Acquire);
        let cur = shared
            .reloadable
            .lock()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        let prices = Arc::new(cur.prices.for_shard());
        Shard {
            id,
            shared,
            stats,
            signer: RefCell::new(Signer::default()),
            pool,
            tls,
            sink: RefCell::new(sink),
            scanner: RefCell::new(Scanner::new()),
            drain: crate::http::drain::DrainSignal::new(),
            seq: Cell::new(0),
            current: RefCell::new((gen, cur)),
            blocks: RefCell::new((u64::MAX, Arc::default())),
            tls_local: RefCell::new((u64::MAX, None)),
            prices_local: RefCell::new((gen, prices)),
        }
    }

    pub fn draining(&self) -> bool {
        self.shared.draining.load(Ordering::Relaxed)
    }

    /// A request id unique across shards and restarts: instance, shard, sequence.
    pub fn next_request_id(&self) -> String {
        let n = self.seq.get() + 1;
        self.seq.set(n);
        // {instance:08x}{shard:04x}{seq:012x}, written without the formatting machinery.
        let mut out = [0u8; 24];
        let mut put = |at: usize, width: usize, mut v: u64| {
            for i in (at..at + width).rev() {
                out[i] = b"0123456789abcdef"[(v & 0xf) as usize];
                v >>= 4;
            }
        };
        put(0, 8, self.shared.instance as u64);
        put(8, 4, self.id as u64);
        put(12, 12, n);
        out.iter().map(|&b| b as char).collect()
    }

    fn refresh(&self) {
        let gen = self.shared.generation.load(Ordering::Acquire);
        if self.current.borrow().0 != gen {
            let cur = self
                .shared
                .reloadable
                .lock()
                .map(|g| g.clone())
                .unwrap_or_else(|p| p.into_inner().clone());
            *self.current.borrow_mut() = (gen, cur);
        }
    }

    /// The current keys, borrowed (no reference-count traffic between shards).
    pub fn keys(&self) -> std::cell::Ref<'_, KeyStore> {
        self.refresh();
        std::cell::Ref::map(self.current.borrow(), |c| &*c.1.keys)
    }

    /// The current TLS server configuration (SIGHUP swaps it; open connections keep theirs).
    ///
    /// Each shard serves from its own copy with its own session cache (stateful
    /// resumption without a lock shared between cores); the ticket keys stay shared, so a
    /// ticket issued by one shard resumes on any other.
    pub fn tls_server(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.refresh();
        let gen = self.current.borrow().0;
        if self.tls_local.borrow().0 != gen {
            let local = self.current.borrow().1.tls.as_ref().map(|shared| {
                let mut c = (**shared).clone();
                c.session_storage = rustls::server::ServerSessionMemoryCache::new(crate::tls::SESSION_CACHE_ENTRIES);
                Arc::new(c)
            });
            *self.tls_local.borrow_mut() = (gen, local);
        }
        self.tls_local.borrow().1.clone()
    }

    /// The current prices (this shard's copy, made again after a reload), borrowed.
    pub fn prices(&self) -> std::cell::Ref<'_, PriceTable> {
        self.refresh();
        let gen = self.current.borrow().0;
        if self.prices_local.borrow().0 != gen {
            let local = Arc::new(self.current.borrow().1.prices.for_shard());
            *self.prices_local.borrow_mut() = (gen, local);
        }
        std::cell::Ref::map(self.prices_local.borrow(), |c| &*c.1)
    }

    /// The budget that refuses this request now, if any: a relaxed atomic load, and a
    /// lock only when the writer published a new block set since the last request.
    pub fn blocked(&self, rec: &UsageRecord) -> Option<crate::budget::Blocked> {
        let hook = self.shared.budgets.as_ref()?;
        let gen = hook.publisher.generation.load(Ordering::Acquire);
        if self.blocks.borrow().0 != gen {
            *self.blocks.borrow_mut() = (gen, hook.publisher.current());
        }
        let b = self.blocks.borrow();
        b.1.check(rec, crate::util::time::unix_now()).cloned()
    }

    /// Queues a usage row (never waits; a full queue drops and counts).
    pub fn record(&self, rec: UsageRecord) {
        self.sink.borrow_mut().push(rec);
    }
}

pub use shard::serve;
