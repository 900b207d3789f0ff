//! Start-up and shutdown of `serve`: the listeners checked, the usage ledger recovered
//! and its writer (and the budget store) started, one thread per shard, then signals
//! until SIGTERM/SIGINT, and the drain: shards stop accepting and finish, then every
//! journaled row is written.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use super::config::ServeConfig;
use super::runtime::{run_shard, Addrs, ShardStart, Started};
use super::ServeError;
use crate::args::ConfigError;
use crate::proxy::shard::Shared;
use crate::proxy::stats::ShardStats;
use crate::usage::journal::ShardJournal;
use crate::usage::ledger::writer::{self, WriterHandle};
use crate::usage::ledger::LedgerShared;
use crate::usage::observe::{Observer, RowHook};
use crate::util::snapshot::Published;

/// How often the main thread looks at signals.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

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

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    u32::from_le_bytes(b)
}

/// The usage side: the shards' journals, the ledger's writer thread, and the budgets it
/// feeds.
struct Usage {
    journals: Vec<ShardJournal>,
    ledger: Arc<LedgerShared>,
    writer: WriterHandle,
    row_metrics: Arc<std::sync::Mutex<crate::usage::observe::RowMetrics>>,
    budgets: Option<crate::budget::Hook>,
    store: Option<(Arc<crate::budget::store::StoreStats>, Arc<AtomicBool>, JoinHandle<()>)>,
    dashboard: Option<Arc<crate::dashboard::Dashboard>>,
}

impl Usage {
    /// Recovers the ledger (before the budget rebuild reads the files it completes),
    /// loads the budgets, then starts the writer.
    fn start(cfg: &ServeConfig) -> Result<Usage, ServeError> {
        std::fs::create_dir_all(&cfg.usage_dir).map_err(|e| {
            ServeError::Config(ConfigError::new(
                "usage-dir",
                format!("cannot create {}: {e}", cfg.usage_dir.display()),
            ))
        })?;
        let opened =
            writer::open(cfg.ledger()).map_err(|e| ServeError::Config(ConfigError::new("usage-dir", e.to_string())))?;
        let budgets = match &cfg.budgets {
            None => None,
            Some(p) => Some(super::reload::load_budgets(p, &cfg.usage_dir).map_err(ServeError::Config)?),
        };
        let store = match (&budgets, &cfg.budget_store) {
            (Some(h), Some(url)) => {
                let stats = Arc::new(crate::budget::store::StoreStats::default());
                let stop = Arc::new(AtomicBool::new(false));
                let tls = if url.tls {
                    Some(
                        crate::tls::client::client_config(cfg.upstream_ca.as_deref())
                            .map_err(|e| ServeError::Config(ConfigError::new("upstream-ca", e)))?,
                    )
                } else {
                    None
                };
                let store = crate::budget::store::StoreConfig {
                    url: url.clone(),
                    password: cfg.budget_store_password.clone(),
                    tls,
                    instance: crate::budget::store::instance_id(
                        &crate::usage::ledger::sink::host_name(),
                        &cfg.usage_dir,
                    ),
                };
                let t = crate::budget::store::spawn(store, h.tracker.clone(), stats.clone(), stop.clone())
                    .map_err(|e| ServeError::Runtime(format!("cannot start the budget store thread: {e}")))?;
                Some((stats, stop, t))
            }
            (None, Some(_)) => {
                return Err(ServeError::Config(ConfigError::new(
                    "budget-store",
                    "needs --budgets FILE",
                )))
            }
            _ => None,
        };
        // The dashboard (on the admin listener) reads the files there are now, after
        // recovery and before the writer starts: every later row reaches it through the
        // writer, so none is counted twice.
        let dashboard = match cfg.admin_listen {
            None => None,
            Some(_) => Some(
                crate::dashboard::Dashboard::spawn(crate::usage::read::list_files(&cfg.usage_dir), budgets.clone())
                    .map_err(|e| ServeError::Runtime(format!("cannot start the dashboard thread: {e}")))?,
            ),
        };
        let mut hooks: Vec<Arc<dyn RowHook>> = budgets
            .iter()
            .map(|h| Arc::new(h.clone()) as Arc<dyn RowHook>)
            .collect();
        if let Some(d) = &dashboard {
            hooks.push(Arc::new(crate::dashboard::LiveHook(d.clone())));
        }
        let observer = Observer {
            hooks,
            metrics: Default::default(),
            access_log: cfg.access_log,
        };
        let row_metrics = observer.metrics.clone();
        let w = writer::spawn(opened.writer, observer)
            .map_err(|e| ServeError::Runtime(format!("cannot start the usage writer: {e}")))?;
        Ok(Usage {
            journals: opened.journals,
            ledger: opened.shared,
            writer: w,
            row_metrics,
            budgets,
            store,
            dashboard,
        })
    }
}

/// The running shards: their threads and listening sockets.
struct Shards {
    threads: Vec<JoinHandle<()>>,
    listener_fds: Vec<i32>,
}

/// Starts one thread per shard and waits until each listens (or one fails).
fn start_shards(
    cfg: &ServeConfig,
    shared: &Arc<Shared>,
    journals: Vec<ShardJournal>,
    addrs: Addrs,
) -> Result<Shards, (Shards, ServeError)> {
    let (started_tx, started_rx) = mpsc::channel::<Started>();
    let mut shards = Shards {
        threads: Vec::new(),
        listener_fds: Vec::new(),
    };
    for (id, journal) in journals.into_iter().enumerate() {
        let shared = shared.clone();
        // One client configuration per shard: its TLS session cache (resumption on
        // reconnect) is never shared between threads. `serve` validated the CA file.
        let tls = match crate::tls::client::client_config(cfg.upstream_ca.as_deref()) {
            Ok(t) => t,
            Err(e) => return Err((shards, ServeError::Config(ConfigError::new("upstream-ca", e)))),
        };
        let started = started_tx.clone();
        match std::thread::Builder::new().name(format!("shard-{id}")).spawn(move || {
            run_shard(ShardStart {
                id,
                addrs,
                shared,
                journal,
                tls,
                started,
            })
        }) {
            Ok(t) => shards.threads.push(t),
            Err(e) => return Err((shards, ServeError::Runtime(format!("cannot start shard thread: {e}")))),
        }
    }
    drop(started_tx);
    for _ in 0..cfg.threads {
        match started_rx.recv() {
            Ok(Ok((id, fds, driver))) => {
                shards.listener_fds.extend(fds);
                crate::log::info(
                    "shard_started",
                    &[("shard", &id.to_string()), ("driver", driver.as_str())],
                );
            }
            Ok(Err(e)) => return Err((shards, ServeError::Runtime(e))),
            Err(_) => {
                return Err((
                    shards,
                    ServeError::Runtime("a shard thread died during start-up".into()),
                ))
            }
        }
    }
    Ok(shards)
}

fn log_starting(cfg: &ServeConfig, addrs: Addrs) {
    let or_none = |a: Option<SocketAddr>| a.map_or("none".into(), |a| a.to_string());
    let file = |p: &Option<std::path::PathBuf>, none: &str| p.as_ref().map_or(none.into(), |p| p.display().to_string());
    crate::log::info(
        "starting",
        &[
            ("listen", &or_none(addrs.plain)),
            ("listen_tls", &or_none(addrs.tls)),
            ("admin_listen", &or_none(addrs.admin)),
            ("mutual_tls", if cfg.client_ca.is_some() { "required" } else { "off" }),
            ("shards", &cfg.threads.to_string()),
            ("upstream", &cfg.proxy.endpoint.describe()),
            ("usage_dir", &cfg.usage_dir.display().to_string()),
            ("roll_interval_s", &cfg.roll_interval.as_secs().to_string()),
            ("journal_dir", &cfg.journal_dir().display().to_string()),
            ("fsync_interval_ms", &cfg.fsync_interval.as_millis().to_string()),
            ("ledger_max_bytes", &cfg.ledger_max_bytes.to_string()),
            ("keys", &file(&cfg.keys, "open")),
            ("pricing", &file(&cfg.pricing, "built-in")),
            ("max_body_bytes", &cfg.proxy.max_body_bytes.to_string()),
        ],
    );
}

/// How long the exit waits for queued log lines (a stuck log pipe must not hold it).
const LOG_FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// No core dumps and no ptrace by other processes of the same user: the process holds
/// clients' AWS secrets in memory. A failure is logged, not fatal.
fn forbid_core_dumps() {
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls with valid arguments.
    let (limit, dumpable) = unsafe {
        (
            libc::setrlimit(libc::RLIMIT_CORE, &none),
            libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0),
        )
    };
    if limit != 0 || dumpable != 0 {
        crate::log::warn(
            "core_dumps_not_disabled",
            &[("error", &std::io::Error::last_os_error().to_string())],
        );
    }
}

/// Runs `serve` until SIGTERM/SIGINT, then drains. `ready` gets the bound address.
pub fn serve(cfg: ServeConfig, ready: Option<mpsc::Sender<SocketAddr>>) -> Result<(), ServeError> {
    forbid_core_dumps();
    // Even the main thread must not hang on a stuck log pipe: a SIGTERM has to drain.
    crate::log::never_block_this_thread();
    let r = serve_until_stopped(cfg, ready);
    crate::log::flush(LOG_FLUSH_TIMEOUT);
    r
}

fn serve_until_stopped(cfg: ServeConfig, ready: Option<mpsc::Sender<SocketAddr>>) -> Result<(), ServeError> {
    super::signals::install();
    super::signals::install_panic_hook();
    let reloadable = super::reload::load(&cfg).map_err(ServeError::Config)?;
    crate::tls::client::client_config(cfg.upstream_ca.as_deref())
        .map_err(|e| ServeError::Config(ConfigError::new("upstream-ca", e)))?;
    let addrs = Addrs {
        plain: cfg.listen.map(|a| probe_bind(a, "listen")).transpose()?,
        tls: cfg.listen_tls.map(|a| probe_bind(a, "listen-tls")).transpose()?,
        admin: cfg.admin_listen.map(|a| probe_bind(a, "admin-listen")).transpose()?,
    };
    if let Some(addr) = addrs.plain.filter(|a| !a.ip().is_loopback()) {
        crate::log::warn(
            "plaintext_listener",
            &[("listen", &addr.to_string()), ("warning", "clients send AWS secrets in headers: plain HTTP on a non-loopback address exposes them to the network; use TLS or --require-tls")],
        );
    }
    if let Some(remote) = cfg.proxy.endpoint.plain_remote() {
        crate::log::warn(
            "plaintext_upstream",
            &[("upstream_endpoint", &remote), ("warning", "signed requests, prompts and completions cross the network to this plain-HTTP upstream in clear text; use https:// (--require-tls refuses this)")],
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
    let mut usage = Usage::start(&cfg)?;
    if let Some(h) = &usage.budgets {
        super::reload::set_thresholds(h, &reloadable.routes);
    }
    let shared = Arc::new(Shared {
        settings: cfg.proxy.clone(),
        drain_timeout: cfg.drain_timeout,
        draining: Default::default(),
        connections: Default::default(),
        admin: crate::proxy::shard::Admin {
            token: cfg.admin_token.clone(),
            metrics_on_main: cfg.metrics_on_main(),
        },
        shard_stats: (0..cfg.threads).map(|_| Arc::new(ShardStats::default())).collect(),
        ledger: usage.ledger.clone(),
        row_metrics: usage.row_metrics.clone(),
        budgets: usage.budgets.clone(),
        dashboard: usage.dashboard.clone(),
        store_stats: usage.store.as_ref().map(|s| s.0.clone()),
        reloadable: Published::new(Arc::new(reloadable)),
        instance: random_u32(),
    });
    log_starting(&cfg, addrs);
    let shards = match start_shards(&cfg, &shared, std::mem::take(&mut usage.journals), addrs) {
        Ok(s) => s,
        Err((started, e)) => {
            drain(&shared, started, usage);
            return Err(e);
        }
    };
    if let Some(a) = addrs.plain {
        crate::log::info("listening", &[("addr", &a.to_string())]);
    }
    if let Some(a) = addrs.tls {
        crate::log::info("listening_tls", &[("addr", &a.to_string())]);
    }
    if let Some(a) = addrs.admin {
        crate::log::info("listening_admin", &[("addr", &a.to_string())]);
    }
    if let (Some(r), Some(a)) = (ready, addrs.plain.or(addrs.tls)) {
        let _ = r.send(a);
    }
    while !super::signals::stop_requested() {
        std::thread::sleep(SIGNAL_POLL);
        if super::signals::take_reload() {
            super::reload::reload(&cfg, &shared);
        }
    }
    crate::log::info(
        "draining",
        &[("drain_timeout_s", &cfg.drain_timeout.as_secs().to_string())],
    );
    drain(&shared, shards, usage);
    if super::signals::panicked() {
        return Err(ServeError::Runtime(
            "a thread panicked (see thread_panicked above); the other shards were drained and every journaled row kept"
                .into(),
        ));
    }
    Ok(())
}

/// Drains: marks the shards draining, wakes their accept loops by shutting their
/// listening sockets down, waits for them (each finishes its in-flight requests up to the
/// drain timeout), then lets the writer write and publish every journaled row.
fn drain(shared: &Shared, shards: Shards, usage: Usage) {
    shared.draining.store(true, Ordering::SeqCst);
    for fd in &shards.listener_fds {
        // SAFETY: shutting down our own listening sockets wakes their pending accept.
        unsafe { libc::shutdown(*fd, libc::SHUT_RDWR) };
    }
    for t in shards.threads {
        let _ = t.join();
    }
    usage.writer.shutdown();
    if let Some((_, stop, t)) = usage.store {
        stop.store(true, Ordering::Relaxed);
        let _ = t.join();
    }
    let st = &shared.ledger.stats;
    crate::log::info(
        "stopped",
        &[
            (
                "usage_rows_written",
                &st.rows_written.load(Ordering::Relaxed).to_string(),
            ),
            ("usage_rows_dropped", &shared.ledger.lost().to_string()),
            (
                "usage_rows_in_journal",
                &st.backlog_rows.load(Ordering::Relaxed).to_string(),
            ),
        ],
    );
}
