//! A shard's state, owned by its thread: its counters, signer, upstream client, usage
//! journal and scanner, drain signal, request ids, and its own copies of what SIGHUP and
//! the writer publish (keys, prices, the TLS listener's configuration, the budgets' block
//! set), each refreshed by one atomic generation check. [`Shared`] is what every shard
//! and `/metrics` read.

use std::cell::{Cell, Ref, RefCell};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::stats::ShardStats;
use crate::bedrock::model::GeoRules;
use crate::http::drain::DrainSignal;
use crate::http::io::InFlight;
use crate::http::limits::{DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_INFLIGHT_BODY_BYTES};
use crate::pricing::PriceTable;
use crate::sigv4::Signer;
use crate::tenant::KeyStore;
use crate::upstream::endpoint::Endpoint;
use crate::upstream::Timeouts;
use crate::usage::journal::ShardJournal;
use crate::usage::ledger::{FullPolicy, LedgerShared};
use crate::usage::scan::Scanner;
use crate::usage::UsageRecord;
use crate::util::snapshot::{Local, Published};

/// What the request path is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub endpoint: Endpoint,
    pub timeouts: Timeouts,
    pub max_body_bytes: usize,
    /// Bound on request body bytes buffered per shard (`--max-inflight-body-bytes`).
    pub max_inflight_body_bytes: usize,
    /// Most client connections per process (`--max-connections`).
    pub max_connections: usize,
    pub geo: GeoRules,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            endpoint: Endpoint::AwsRegional,
            timeouts: Timeouts::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_inflight_body_bytes: DEFAULT_MAX_INFLIGHT_BODY_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            geo: GeoRules::default().sorted(),
        }
    }
}

/// Keys, prices, the optimizer's rules and the TLS listener's configuration: replaced
/// together on SIGHUP.
#[derive(Clone, Default)]
pub struct Reloadable {
    pub keys: Arc<KeyStore>,
    pub prices: Arc<PriceTable>,
    pub routes: Arc<crate::optimizer::Routes>,
    /// The TLS listener's configuration (certificate, key, client CA).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The served certificate's notAfter, unix seconds.
    pub cert_not_after: Option<i64>,
    /// The admin listener's TLS configuration (`--admin-tls-cert`, `--admin-client-ca`).
    pub admin_tls: Option<Arc<rustls::ServerConfig>>,
}

/// The operators' surfaces: who may read `/metrics`, and where.
#[derive(Debug, Clone, Default)]
pub struct Admin {
    /// `Authorization: Bearer <token>` required for `/metrics` (`--admin-token-file`).
    pub token: Option<crate::sigv4::SecretString>,
    /// Whether the client listeners serve `/metrics` too (off once `--admin-listen` is
    /// given, unless `--metrics-on-main on`).
    pub metrics_on_main: bool,
}

/// State shared by every shard (read-mostly; counters are atomics).
pub struct Shared {
    pub settings: Settings,
    /// How long in-flight requests may finish after SIGTERM.
    pub drain_timeout: Duration,
    pub draining: AtomicBool,
    /// Client connections open in the whole process (against `max_connections`).
    pub connections: AtomicUsize,
    pub admin: Admin,
    pub shard_stats: Vec<Arc<ShardStats>>,
    /// The usage ledger: the writer's stats, every shard's journal state, the full policy.
    pub ledger: Arc<LedgerShared>,
    /// Labelled aggregates kept by the writer thread from the rows.
    pub row_metrics: Arc<Mutex<crate::usage::observe::RowMetrics>>,
    /// Budget tracking (writer side) and the published block set (shard side).
    pub budgets: Option<crate::budget::Hook>,
    /// The dashboard's thread (with `--admin-listen`).
    pub dashboard: Option<Arc<crate::dashboard::Dashboard>>,
    /// Health of the shared budget store, when one is configured.
    pub store_stats: Option<Arc<crate::budget::store::StoreStats>>,
    /// Keys, prices and TLS, published on every successful reload.
    pub reloadable: Published<Reloadable>,
    /// Random per-process prefix of request ids.
    pub instance: u32,
}

/// Who is on the other end of a connection.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    /// Verified client-certificate subject under mutual TLS.
    pub mtls_subject: Option<String>,
    /// A connection of the admin listener (operators' surfaces only).
    pub admin: bool,
}

/// Whether a request may go on, as far as the ledger is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Room for its row is reserved in the journal.
    Reserved,
    /// The journal is full and the policy is to serve: the row is kept if room returns
    /// by then, else counted as lost.
    Unreserved,
    /// The journal is full and the policy is to refuse (503 `LedgerUnavailable`).
    Refused,
}

/// One shard's state, owned by its thread.
pub struct Shard {
    pub id: usize,
    pub shared: Arc<Shared>,
    pub stats: Arc<ShardStats>,
    pub signer: RefCell<Signer>,
    pub upstream: crate::upstream::client::Client,
    pub journal: RefCell<ShardJournal>,
    pub scanner: RefCell<Scanner>,
    /// Fired when the shard starts draining; idle connections close at once.
    pub drain: DrainSignal,
    /// Request body bytes this shard buffers now, against its bound.
    pub inflight: InFlight,
    seq: Cell<u64>,
    keys: Local<Reloadable, KeyStore>,
    prices: Local<Reloadable, PriceTable>,
    routes: Local<Reloadable, crate::optimizer::Routes>,
    tls: Local<Reloadable, Option<Arc<rustls::ServerConfig>>>,
    admin_tls: Local<Reloadable, Option<Arc<rustls::ServerConfig>>>,
    blocks: Option<Local<crate::budget::BlockSet>>,
}

impl Shard {
    pub fn new(id: usize, shared: Arc<Shared>, journal: ShardJournal, tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        let stats = shared.shard_stats[id].clone();
        let upstream = crate::upstream::client::Client::new(tls, shared.settings.timeouts, stats.upstream.clone());
        let r = &shared.reloadable;
        Shard {
            id,
            stats,
            signer: RefCell::new(Signer::default()),
            upstream,
            journal: RefCell::new(journal),
            scanner: RefCell::new(Scanner::new()),
            drain: DrainSignal::new(),
            inflight: InFlight::new(shared.settings.max_inflight_body_bytes),
            seq: Cell::new(0),
            keys: Local::new(r, |r| r.keys.clone()),
            // Ids allocated anew: this shard's rows reference-count them on this core only.
            prices: Local::new(r, |r| Arc::new(r.prices.for_shard())),
            routes: Local::new(r, |r| r.routes.clone()),
            // Its own session cache (stateful resumption without a lock shared between
            // cores); the ticket keys stay shared, so a ticket from any shard resumes here.
            tls: Local::new(r, |r| {
                Arc::new(r.tls.as_ref().map(|shared| {
                    let mut c = (**shared).clone();
                    c.session_storage =
                        rustls::server::ServerSessionMemoryCache::new(crate::tls::SESSION_CACHE_ENTRIES);
                    Arc::new(c)
                }))
            }),
            admin_tls: Local::new(r, |r| Arc::new(r.admin_tls.clone())),
            blocks: shared.budgets.as_ref().map(|h| Local::new(&h.publisher, Arc::clone)),
            shared,
        }
    }

    /// Takes a slot of the process's connection bound; false (nothing taken) when it is
    /// reached. Give it back with [`Shard::release_connection`].
    pub fn take_connection(&self) -> bool {
        let c = &self.shared.connections;
        let prev = c.fetch_add(1, Ordering::Relaxed);
        if prev >= self.shared.settings.max_connections {
            c.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    pub fn release_connection(&self) {
        self.shared.connections.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn draining(&self) -> bool {
        self.shared.draining.load(Ordering::Relaxed)
    }

    /// A request id unique across shards and restarts: instance, shard, sequence.
    pub fn next_request_id(&self) -> String {
        self.next_request().0
    }

    /// A request id and its sequence number on this shard (the journal's key for it).
    pub fn next_request(&self) -> (String, u64) {
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
        // Hex digits: ASCII.
        (std::str::from_utf8(&out).map(str::to_owned).unwrap_or_default(), n)
    }

    /// The current keys, borrowed.
    pub fn keys(&self) -> Ref<'_, KeyStore> {
        self.keys.get(&self.shared.reloadable)
    }

    /// The current prices (this shard's copy), borrowed.
    pub fn prices(&self) -> Ref<'_, PriceTable> {
        self.prices.get(&self.shared.reloadable)
    }

    /// The admin listener's TLS configuration, if it serves TLS.
    pub fn admin_tls_server(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.admin_tls.get(&self.shared.reloadable).clone()
    }

    /// The optimizer's current rules, borrowed.
    pub fn routes(&self) -> Ref<'_, crate::optimizer::Routes> {
        self.routes.get(&self.shared.reloadable)
    }

    /// The optimizer's current rules, shared (held while a fallback runs).
    pub fn routes_arc(&self) -> Arc<crate::optimizer::Routes> {
        self.routes.get_arc(&self.shared.reloadable)
    }

    /// The highest downgrade threshold `budget`'s key for this request has reached.
    pub fn budget_crossed(&self, budget: &str, rec: &UsageRecord) -> Option<crate::optimizer::Ratio> {
        let (hook, local) = (self.shared.budgets.as_ref()?, self.blocks.as_ref()?);
        local.get(&hook.publisher).crossed(budget, rec)
    }

    /// The current TLS server configuration (SIGHUP swaps it; open connections keep theirs).
    pub fn tls_server(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.tls.get(&self.shared.reloadable).clone()
    }

    /// The budget that refuses this request now, if any: an atomic load, and a lock only
    /// when the writer published a new block set since the last request.
    pub fn blocked(&self, rec: &UsageRecord) -> Option<crate::budget::Blocked> {
        let (hook, local) = (self.shared.budgets.as_ref()?, self.blocks.as_ref()?);
        local
            .get(&hook.publisher)
            .check(rec, crate::util::time::unix_now())
            .cloned()
    }

    /// The `block` budget that refuses this request because its model has no price (the
    /// budget matches and does not `allow_unpriced`), if any.
    pub fn refusing_unpriced(&self, rec: &UsageRecord) -> Option<String> {
        let (hook, local) = (self.shared.budgets.as_ref()?, self.blocks.as_ref()?);
        // A priced model (the usual case) costs one table lookup, not a scan of budgets.
        if self.prices().knows(&rec.model_effective) {
            return None;
        }
        let set = local.get(&hook.publisher);
        let name = set.refusing_unpriced(rec)?.name.clone();
        Some(name)
    }

    /// Admits a request to the ledger (see [`Admission`]).
    pub fn admit(&self) -> Admission {
        if self.journal.borrow_mut().reserve() {
            return Admission::Reserved;
        }
        match self.shared.ledger.on_full {
            FullPolicy::Serve => Admission::Unreserved,
            FullPolicy::Refuse => {
                let j = &self.shared.ledger.journals[self.id];
                j.refused.fetch_add(1, Ordering::Relaxed);
                Admission::Refused
            }
        }
    }

    /// Journals a request's row (the commit point, before its last byte is written).
    pub fn commit_row(&self, key: u64, rec: &UsageRecord, reserved: bool) {
        self.journal.borrow_mut().append_row(key, rec, reserved);
    }

    /// Journals the end of a committed request: its final latency, whether it was written.
    pub fn end_row(&self, key: u64, latency_ms: f64, written: bool) {
        self.journal.borrow_mut().append_end(key, latency_ms, written);
    }
}
