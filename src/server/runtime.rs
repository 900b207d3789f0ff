//! The shard runtime: one thread per shard, each running a monoio runtime (io_uring, or
//! epoll when io_uring cannot be built or `MONOIO_FORCE_LEGACY_DRIVER` is set) with its
//! own SO_REUSEPORT listeners and accept loops; on drain, idle connections close at once
//! and in-flight requests finish up to the drain timeout.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use monoio::net::{ListenerOpts, TcpListener};

use super::conn::{serve_admin, serve_tcp, serve_tls};
use crate::proxy::shard::{Shard, Shared};
use crate::proxy::stats::ShardStats;
use crate::usage::journal::ShardJournal;
use crate::util::runtime::Driver;

/// io_uring submission queue entries per shard.
pub const URING_ENTRIES: u32 = 1024;
/// Listen backlog per shard.
pub const LISTEN_BACKLOG: i32 = 4096;
/// How long an accept loop backs off after a failed accept (EMFILE and friends).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// How often a draining shard looks whether its connections are done.
const DRAIN_POLL: Duration = Duration::from_millis(20);

/// What a shard reports when it started: its id, listener fds and driver.
pub type Started = Result<(usize, Vec<i32>, Driver), String>;

/// Where a shard listens: plain, TLS, and the operators' admin listener.
#[derive(Debug, Clone, Copy, Default)]
pub struct Addrs {
    pub plain: Option<SocketAddr>,
    pub tls: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
}

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// Clients over plain HTTP.
    Plain,
    /// Clients over TLS.
    Tls,
    /// Operators (`--admin-listen`): `/metrics`, `/healthz`; no Bedrock route.
    Admin,
}

/// What a shard thread starts with.
pub struct ShardStart {
    pub id: usize,
    pub addrs: Addrs,
    pub shared: Arc<Shared>,
    /// This shard's usage journal (its writer side runs in the ledger's thread).
    pub journal: ShardJournal,
    /// This shard's own upstream TLS configuration (its own session cache).
    pub tls: Arc<rustls::ClientConfig>,
    /// Where the shard reports that it listens, or why it cannot.
    pub started: mpsc::Sender<Started>,
}

/// The body of a shard thread: builds its runtime and serves until the drain ends.
pub fn run_shard(start: ShardStart) {
    crate::log::never_block_this_thread();
    let cache = crate::util::alloc::cache_this_thread();
    let id = start.id;
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
    let done = start.started.clone();
    if let Err(e) = crate::util::runtime::block_on(URING_ENTRIES, fallback, |driver| shard_main(start, driver)) {
        let _ = done.send(Err(format!("shard {id}: cannot build a runtime: {e}")));
    }
    // What the shard's allocations cost over its life: once warm, requests take their
    // blocks from the shard's lists (bench/profile.sh reads this line).
    let counts = crate::util::alloc::counts();
    crate::log::info(
        "shard_allocations",
        &[
            ("shard", &id.to_string()),
            ("cached", &counts.cached.to_string()),
            ("system", &counts.system.to_string()),
        ],
    );
    drop(cache);
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let opts = ListenerOpts::new()
        .reuse_port(true)
        .reuse_addr(true)
        .backlog(LISTEN_BACKLOG);
    TcpListener::bind_with_config(addr, &opts)
}

/// The answer to a connection over `--max-connections`, sent without waiting (it fits
/// any socket buffer; a client that cannot take it just sees the close).
const OVERLOADED_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\ncontent-length: 100\r\nconnection: close\r\n\r\n{\"message\":\"too many connections (--max-connections); retry later or elsewhere\",\"code\":\"Overloaded\"}";

/// Refuses a connection over the bound: a plain one gets a 503 written without blocking
/// the shard (`MSG_DONTWAIT`), a TLS one (which cannot read plain text) only the close.
fn refuse_connection(stream: &monoio::net::TcpStream, tls: bool) {
    if !tls {
        // SAFETY: the fd is open (owned by `stream`) and the buffer valid for its length.
        unsafe {
            libc::send(
                stream.as_raw_fd(),
                OVERLOADED_RESPONSE.as_ptr().cast(),
                OVERLOADED_RESPONSE.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            );
        }
    }
}

/// Accepts until the shard drains; `surface` selects what the connection serves.
async fn accept_loop(listener: TcpListener, shard: Rc<Shard>, surface: Surface) {
    let tls = surface == Surface::Tls;
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                if shard.draining() {
                    break;
                }
                // Operators' connections do not count against the clients' bound: the
                // metrics must stay reachable during a connection flood.
                let counted = surface != Surface::Admin;
                if counted && !shard.take_connection() {
                    refuse_connection(&stream, tls);
                    ShardStats::inc(&shard.stats.connections_refused);
                    continue;
                }
                // One task per surface, each as large as its own future: a plain
                // connection does not carry the room a TLS one needs.
                let shard = shard.clone();
                match surface {
                    Surface::Tls => monoio::spawn(async move {
                        serve_tls(stream, shard.clone()).await;
                        shard.release_connection();
                    }),
                    Surface::Plain => monoio::spawn(async move {
                        serve_tcp(stream, shard.clone()).await;
                        shard.release_connection();
                    }),
                    Surface::Admin => monoio::spawn(serve_admin(stream, shard)),
                };
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
                monoio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

async fn shard_main(start: ShardStart, driver: Driver) {
    let (id, addrs, started) = (start.id, start.addrs, start.started);
    let mut listeners = Vec::new();
    for (addr, surface) in [
        (addrs.plain, Surface::Plain),
        (addrs.tls, Surface::Tls),
        (addrs.admin, Surface::Admin),
    ] {
        let Some(addr) = addr else { continue };
        match bind(addr) {
            Ok(l) => listeners.push((l, surface)),
            Err(e) => {
                let _ = started.send(Err(format!("shard {id}: cannot listen on {addr}: {e}")));
                return;
            }
        }
    }
    start.shared.shard_stats[id].set_driver(driver);
    let drain_timeout = start.shared.drain_timeout;
    let shard = Rc::new(Shard::new(id, start.shared, start.journal, Some(start.tls)));
    let fds = listeners.iter().map(|(l, _)| l.as_raw_fd()).collect();
    let _ = started.send(Ok((id, fds, driver)));
    drop(started);
    monoio::spawn(crate::util::memory::housekeeping());
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
        monoio::time::sleep(DRAIN_POLL).await;
    }
}
