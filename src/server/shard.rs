//! Start-up and shutdown: bind check, writer thread, one thread per shard running a
//! monoio runtime (io_uring, or epoll when io_uring cannot be built or
//! `MONOIO_FORCE_LEGACY_DRIVER` is set), the accept loop, signal handling and drain.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use monoio::net::{ListenerOpts, TcpListener};

use super::conn::{serve_tcp, serve_tls};
use super::stats::ShardStats;
use crate::util::runtime::Driver;
use super::{Reloadable, ServeError, Shard, Shared};
use crate::config::{ConfigError, ServeConfig};
use crate::pricing::PriceTable;
use crate::tenant::KeyStore;
use crate::usage::observe::Observer;
use crate::usage::queue::{channel, UsageSink, QUEUE_CAPACITY};
use crate::usage::writer::{self, WriterConfig, DEFAULT_ROLL_BYTES};

/// io_uring submission queue entries per shard.
pub const URING_ENTRIES: u32 = 1024;
/// Listen backlog per shard.
pub const LISTEN_BACKLOG: i32 = 4096;
/// How often the main thread looks at signals.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Loads keys and prices (start-up and SIGHUP).
pub fn load_reloadable(cfg: &ServeConfig) -> Result<Reloadable, ConfigError> {
    let keys = match &cfg.keys {
        None => KeyStore::open(),
        Some(p) => KeyStore::load(p).map_err(|e| ConfigError::new("keys", format!("{}: {e}", p.display())))?,
    };
    let prices = PriceTable::with_overrides(cfg.pricing.as_deref()).map_err(|e| {
        ConfigError::new(
            "pricing",
            format!(
                "{}: {e}",
                cfg.pricing
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
        )
    })?;
    let (tls, cert_not_after) = match (&cfg.listen_tls, &cfg.tls_cert, &cfg.tls_key) {
        (Some(_), Some(cert), Some(key)) => {
            let sc = crate::tls::server_config(cert, key, cfg.client_ca.as_deref()).map_err(|e| {
                let flag = match &e {
                    crate::tls::TlsConfigError::Key { .. } | crate::tls::TlsConfigError::Mismatch(_) => "tls-key",
                    crate::tls::TlsConfigError::Read { path, .. } | crate::tls::TlsConfigError::NoCertificate(path)
                        if cfg
                            .client_ca
                            .as_deref()
                            .is_some_and(|c| c.display().to_string() == *path) =>
                    {
                        "client-ca"
                    }
                    _ => "tls-cert",
                };
                ConfigError::new(flag, e.to_string())
            })?;
            let not_after = crate::tls::load_certs(cert)
                .ok()
                .and_then(|c| c.first().and_then(|c| crate::tls::not_after(c.as_ref())));
            (Some(sc), not_after)
        }
        _ => (None, None),
    };
    Ok(Reloadable {
        keys: Arc::new(keys),
        prices: Arc::new(prices),
        tls,
        cert_not_after,
    })
}

/// Loads the budget file and rebuilds the current periods' spend from the Parquet files
/// already written (this month's `dt=` partitions), so a restart does not reset a budget.
fn load_budgets(path: &std::path::Path, usage_dir: &std::path::Path) -> Result<crate::budget::Hook, ConfigError> {
    let f = crate::budget::BudgetFile::load(path)
        .map_err(|e| ConfigError::new("budgets", format!("{}: {e}", path.display())))?;
    let mut tracker = crate::budget::Tracker::new(f.budgets);
    let now = crate::util::time::unix_now();
    let today = crate::util::time::Civil::from_unix(now);
    let prefix = format!("dt={:04}-{:02}-", today.year, today.month);
    let mut rebuilt = 0usize;
    if let Ok(rd) = std::fs::read_dir(usage_dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(&prefix) {
                match crate::usage::read::read_dir(&e.path()) {
                    Ok(rows) => {
                        rebuilt += rows.len();
                        tracker.observe(&rows);
                    }
                    Err(err) => crate::log::warn(
                        "budget_rebuild_skipped",
                        &[
                            ("partition", &e.path().display().to_string()),
                            ("error", &err.to_string()),
                        ],
                    ),
                }
            }
        }
    }
    let publisher = Arc::new(crate::budget::Publisher::default());
    if let Some(set) = tracker.evaluate(now) {
        publisher.publish(set);
    }
    crate::log::info(
        "budgets_loaded",
        &[
            ("budgets", &tracker.budgets().len().to_string()),
            ("rows_rebuilt", &rebuilt.to_string()),
        ],
    );
    Ok(crate::budget::Hook {
        tracker: Arc::new(Mutex::new(tracker)),
        publisher,
    })
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    u32::from_le_bytes(b)
}

/// Checks that no other socket holds the address (a same-user SO_REUSEPORT listener
/// would otherwise share it silently) and resolves port 0 to a concrete port.
fn probe_bind(addr: SocketAddr, flag: &str) -> Result<SocketAddr, ServeError> {
    let l = std::net::TcpListener::bind(addr).map_err(|e| {
        ServeError::Config(ConfigError::new(
            flag,
            format!("cannot listen on {addr}: {e} (is another instance running?)"),
        ))
    })?;
    l.local_addr().map_err(|e| ServeError::Runtime(e.to_string()))
}

/// Runs `serve` until SIGTERM/SIGINT, then drains. `ready` gets the bound address.
pub fn serve(cfg: ServeConfig, ready: Option<mpsc::Sender<SocketAddr>>) -> Result<(), ServeError> {
    super::signals::install();
    let reloadable = load_reloadable(&cfg).map_err(ServeError::Config)?;
    let tls = crate::tls::client::client_config(cfg.upstream_ca.as_deref())
        .map_err(|e| ServeError::Config(ConfigError::new("upstream-ca", e)))?;
    let addr = match cfg.listen {
        Some(a) => Some(probe_bind(a, "listen")?),
        None => None,
    };
    let tls_addr = match cfg.listen_tls {
        Some(a) => Some(probe_bind(a, "listen-tls")?),
        None => None,
    };
    if let Some(addr) = addr.filter(|a| !a.ip().is_loopback()) {
        crate::log::warn(
            "plaintext_listener",
            &[("listen", &addr.to_string()), ("warning", "clients send AWS secrets in headers: plain HTTP on a non-loopback address exposes them to the network; use TLS or --require-tls")],
        );
    }
    if reloadable.keys.is_open() {
        crate::log::info(
            "open_key_mode",
            &[(
                "detail",
                "no --keys file: any trk_ token of 16+ characters is accepted; tenant = token fingerprint",
            )],
        );
    }
    let dropped = Arc::new(AtomicU64::new(0));
    let mut sinks: Vec<UsageSink> = Vec::new();
    let mut consumers = Vec::new();
    for _ in 0..cfg.threads {
        let (s, c) = channel(QUEUE_CAPACITY, dropped.clone());
        sinks.push(s);
        consumers.push(c);
    }
    let wcfg = WriterConfig {
        dir: cfg.usage_dir.clone(),
        roll_interval: cfg.roll_interval,
        roll_rows: cfg.roll_rows,
        roll_bytes: DEFAULT_ROLL_BYTES,
        host: writer::host_name(),
    };
    std::fs::create_dir_all(&cfg.usage_dir).map_err(|e| {
        ServeError::Config(ConfigError::new(
            "usage-dir",
            format!("cannot create {}: {e}", cfg.usage_dir.display()),
        ))
    })?;
    let budgets = match &cfg.budgets {
        None => None,
        Some(p) => Some(load_budgets(p, &cfg.usage_dir).map_err(ServeError::Config)?),
    };
    let store_stats = Arc::new(crate::budget::store::StoreStats::default());
    let store_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let store_thread = match (&budgets, &cfg.budget_store) {
        (Some(h), Some(url)) => Some(
            crate::budget::store::spawn(url.clone(), h.tracker.clone(), store_stats.clone(), store_stop.clone())
                .map_err(|e| ServeError::Runtime(format!("cannot start the budget store thread: {e}")))?,
        ),
        (None, Some(_)) => {
            return Err(ServeError::Config(ConfigError::new(
                "budget-store",
                "needs --budgets FILE",
            )));
        }
        _ => None,
    };
    let observer = Observer {
        hooks: budgets
            .iter()
            .map(|h| Arc::new(h.clone()) as Arc<dyn crate::usage::observe::RowHook>)
            .collect(),
        metrics: Default::default(),
        access_log: cfg.access_log,
    };
    let row_metrics = observer.metrics.clone();
    let writer = writer::spawn(wcfg, consumers, observer)
        .map_err(|e| ServeError::Runtime(format!("cannot start the usage writer: {e}")))?;
    let shared = Arc::new(Shared {
        config: cfg.clone(),
        draining: Default::default(),
        shard_stats: (0..cfg.threads).map(|_| Arc::new(ShardStats::default())).collect(),
        dropped,
        writer_stats: writer.stats.clone(),
        row_metrics,
        budgets: budgets.clone(),
        store_stats: cfg.budget_store.as_ref().map(|_| store_stats.clone()),
        generation: AtomicU64::new(0),
        reloadable: Mutex::new(reloadable),
        instance: random_u32(),
    });
    crate::log::info(
        "starting",
        &[
            ("listen", &addr.map_or("none".into(), |a| a.to_string())),
            ("listen_tls", &tls_addr.map_or("none".into(), |a| a.to_string())),
            ("mutual_tls", if cfg.client_ca.is_some() { "required" } else { "off" }),
            ("shards", &cfg.threads.to_string()),
            ("upstream", &cfg.endpoint.describe()),
            ("usage_dir", &cfg.usage_dir.display().to_string()),
            ("roll_interval_s", &cfg.roll_interval.as_secs().to_string()),
            (
                "keys",
                &cfg.keys.as_ref().map_or("open".into(), |p| p.display().to_string()),
            ),
            (
                "pricing",
                &cfg.pricing
                    .as_ref()
                    .map_or("built-in".into(), |p| p.display().to_string()),
            ),
            ("max_body_bytes", &cfg.max_body_bytes.to_string()),
        ],
    );

    let (started_tx, started_rx) = mpsc::channel::<Started>();
    let mut threads = Vec::new();
    for (id, sink) in sinks.into_iter().enumerate() {
        let shared = shared.clone();
        // One client configuration per shard: its TLS session cache (resumption on
        // reconnect) is never shared between threads. Validated above, so this cannot fail
        // differently; fall back to the validated one if it somehow does.
        let tls = crate::tls::client::client_config(cfg.upstream_ca.as_deref()).unwrap_or_else(|_| tls.clone());
        let started = started_tx.clone();
        let t = std::thread::Builder::new()
            .name(format!("shard-{id}"))
            .spawn(move || run_shard(id, (addr, tls_addr), shared, sink, tls, started))
            .map_err(|e| ServeError::Runtime(format!("cannot start shard thread: {e}")))?;
        threads.push(t);
    }
    drop(started_tx);
    let mut listener_fds = Vec::new();
    for _ in 0..cfg.threads {
        match started_rx.recv() {
            Ok(Ok((id, fds, driver))) => {
                listener_fds.extend(fds);
                crate::log::info(
                    "shard_started",
                    &[("shard", &id.to_string()), ("driver", driver.as_str())],
                );
            }
            Ok(Err(e)) => {
                stop_shards(&shared, &listener_fds, threads, writer);
                return Err(ServeError::Runtime(e));
            }
            Err(_) => return Err(ServeError::Runtime("a shard thread died during start-up".into())),
        }
    }
    if let Some(a) = addr {
        crate::log::info("listening", &[("addr", &a.to_string())]);
    }
    if let Some(a) = tls_addr {
        crate::log::info("listening_tls", &[("addr", &a.to_string())]);
    }
    if let (Some(r), Some(a)) = (ready, addr.or(tls_addr)) {
        let _ = r.send(a);
    }

    loop {
        std::thread::sleep(SIGNAL_POLL);
        if super::signals::take_reload() {
            if let (Some(h), Some(p)) = (&budgets, &cfg.budgets) {
                match crate::budget::BudgetFile::load(p) {
                    Ok(f) => {
                        let n = f.budgets.len();
                        if let Ok(mut t) = h.tracker.lock() {
                            t.set_budgets(f.budgets);
                            if let Some(set) = t.evaluate(crate::util::time::unix_now()) {
                                h.publisher.publish(set);
                            }
                        }
                        crate::log::info("budgets_reloaded", &[("budgets", &n.to_string()), ("spend", "kept")]);
                    }
                    Err(e) => crate::log::error(
                        "reload_rejected",
                        &[
                            ("file", "budgets"),
                            ("error", &e.to_string()),
                            ("kept", "previous budgets"),
                        ],
                    ),
                }
            }
            match load_reloadable(&cfg) {
                Ok(r) => {
                    let nkeys = if r.keys.is_open() {
                        "open".to_string()
                    } else {
                        r.keys.len().to_string()
                    };
                    let nprices = r.prices.len().to_string();
                    let ntls = if r.tls.is_some() { "certificate reloaded" } else { "off" }.to_string();
                    if let Ok(mut g) = shared.reloadable.lock() {
                        *g = r;
                    }
                    shared.generation.fetch_add(1, Ordering::Release);
                    crate::log::info("reloaded", &[("keys", &nkeys), ("prices", &nprices), ("tls", &ntls)]);
                }
                Err(e) => crate::log::error(
                    "reload_rejected",
                    &[
                        ("error", &e.to_string()),
                        ("kept", "previous keys, prices and certificate"),
                    ],
                ),
            }
        }
        if super::signals::stop_requested() {
            break;
        }
    }
    crate::log::info(
        "draining",
        &[("drain_timeout_s", &cfg.drain_timeout.as_secs().to_string())],
    );
    stop_shards(&shared, &listener_fds, threads, writer);
    store_stop.store(true, Ordering::Relaxed);
    if let Some(t) = store_thread {
        let _ = t.join();
    }
    let rows = shared.writer_stats.rows_written.load(Ordering::Relaxed);
    crate::log::info(
        "stopped",
        &[
            ("usage_rows_written", &rows.to_string()),
            (
                "usage_rows_dropped",
                &shared.dropped.load(Ordering::Relaxed).to_string(),
            ),
        ],
    );
    Ok(())
}

/// Drains: marks the shards draining, wakes their accept loops by shutting their
/// listening sockets down, waits for them (each finishes its in-flight requests up to the
/// drain timeout), then lets the writer write every queued row and close its file.
fn stop_shards(
    shared: &Shared,
    listener_fds: &[i32],
    threads: Vec<std::thread::JoinHandle<()>>,
    writer: writer::WriterHandle,
) {
    shared.draining.store(true, Ordering::SeqCst);
    for fd in listener_fds {
        // SAFETY: shutting down our own listening sockets wakes their pending accept.
        unsafe { libc::shutdown(*fd, libc::SHUT_RDWR) };
    }
    for t in threads {
        let _ = t.join();
    }
    writer.shutdown();
}

/// What a shard reports when it started: its id, listener fds and driver.
type Started = Result<(usize, Vec<i32>, Driver), String>;

/// Plain and TLS listen addresses.
type Addrs = (Option<SocketAddr>, Option<SocketAddr>);

fn run_shard(
    id: usize,
    addrs: Addrs,
    shared: Arc<Shared>,
    sink: UsageSink,
    tls: Arc<rustls::ClientConfig>,
    started: mpsc::Sender<Started>,
) {
    let fallback = |e: &std::io::Error| {
        crate::log::warn(
            "io_uring_unavailable",
            &[
                ("shard", &id.to_string()),
                ("error", &e.to_string()),
                ("fallback", "epoll"),
            ],
        )
    };
    let done = started.clone();
    let run = |driver| shard_main(id, addrs, shared, sink, tls, started, driver);
    if let Err(e) = crate::util::runtime::block_on(URING_ENTRIES, fallback, run) {
        let _ = done.send(Err(format!("shard {id}: cannot build a runtime: {e}")));
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let opts = ListenerOpts::new()
        .reuse_port(true)
        .reuse_addr(true)
        .backlog(LISTEN_BACKLOG);
    TcpListener::bind_with_config(addr, &opts)
}

/// Accepts until the shard drains; `tls` selects the handshake path.
async fn accept_loop(listener: TcpListener, shard: Rc<Shard>, tls: bool) {
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                if shard.draining() {
                    break;
                }
                if tls {
                    monoio::spawn(serve_tls(stream, shard.clone()));
                } else {
                    monoio::spawn(serve_tcp(stream, shard.clone()));
                }
            }
            Err(e) => {
                if shard.draining() {
                    break;
                }
                // EMFILE and friends: back off a little instead of spinning.
                crate::log::warn(
                    "accept_failed",
                    &[("shard", &shard.id.to_string()), ("error", &e.to_string())],
                );
                monoio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn shard_main(
    id: usize,
    addrs: Addrs,
    shared: Arc<Shared>,
    sink: UsageSink,
    tls: Arc<rustls::ClientConfig>,
    started: mpsc::Sender<Started>,
    driver: Driver,
) {
    let mut listeners = Vec::new();
    for (addr, is_tls) in [(addrs.0, false), (addrs.1, true)] {
        let Some(addr) = addr else { continue };
        match bind(addr) {
            Ok(l) => listeners.push((l, is_tls)),
            Err(e) => {
                let _ = started.send(Err(format!("shard {id}: cannot listen on {addr}: {e}")));
                return;
            }
        }
    }
    shared.shard_stats[id].set_driver(driver);
    let drain_timeout = shared.config.drain_timeout;
    let shard = Rc::new(Shard::new(id, shared, sink, Some(tls)));
    let fds = listeners.iter().map(|(l, _)| l.as_raw_fd()).collect();
    let _ = started.send(Ok((id, fds, driver)));
    drop(started);
    let loops: Vec<_> = listeners
        .into_iter()
        .map(|(l, t)| monoio::spawn(accept_loop(l, shard.clone(), t)))
        .collect();
    for l in loops {
        l.await;
    }
    // Idle connections close now; in-flight requests finish (up to the drain timeout).
    shard.drain.fire();
    let until = Instant::now() + drain_timeout;
    while shard.stats.connections_open.load(Ordering::Relaxed) > 0 && Instant::now() < until {
        monoio::time::sleep(Duration::from_millis(20)).await;
    }
}
