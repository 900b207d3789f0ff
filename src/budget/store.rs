//! The shared budget store: every instance writes its own cumulative spend to Redis and
//! reads the fleet's back, so N instances enforce one limit together. A small RESP client
//! runs on its own thread with its own monoio runtime (never on a shard). Each key
//! (`llmops:budget:{name}:{value}:{period}`) is a hash of integer micro-USD, one field
//! per instance (`HSET key {instance} {total}`), expiring a day past the period; the fleet
//! total is the sum of its fields (`HVALS`). Writing a total rather than adding a delta
//! makes a sync idempotent: a reply that times out after Redis applied it, or a retry,
//! never counts spend twice. The instance id is stable across restarts (host name and
//! usage directory), and a restarted instance rebuilds the same total from its files.
//!
//! Replies are parsed within bounds (nesting, lengths, buffered bytes): a hostile or
//! broken server is a failed sync, never a crash or unbounded memory. `rediss://` speaks
//! TLS (verified against the system roots and `--upstream-ca`); a user and password
//! (`redis://USER@HOST`, the password from `--budget-store-password-file` or
//! `LLMOPS_BUDGET_STORE_PASSWORD`) are sent with `AUTH` and never logged.
//! Redis down: each instance falls back to its local spend, logs it once, counts it in
//! a metric, and catches up when Redis is back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use monoio::io::AsyncWriteRentExt;

use super::tracker::{period_end, SpendKey, Tracker};
use crate::http::io::{read_more_until, ReadError};
use crate::util::snapshot::lock;

/// How often spend is pushed and fleet totals read.
pub const STORE_TICK: Duration = Duration::from_millis(500);
/// Connect/command deadline for Redis.
pub const STORE_TIMEOUT: Duration = Duration::from_millis(500);
/// Every this many syncs each total is written again even if unchanged, so a Redis that
/// lost its data (a restart without persistence) has every instance's spend back within
/// about ten seconds.
pub const REWRITE_EVERY_SYNCS: u64 = 20;
/// Keys live this long past their period's end.
pub const KEY_GRACE_SECS: i64 = 86_400;
/// 1e-12 USD per micro-USD.
const PICO_PER_MICRO: i128 = 1_000_000;
/// Deepest nesting of arrays accepted in a reply.
pub const MAX_REPLY_DEPTH: usize = 4;
/// Longest bulk string and most array items accepted in a reply.
pub const MAX_REPLY_BULK_BYTES: usize = 1024 * 1024;
pub const MAX_REPLY_ITEMS: usize = 100_000;
/// Longest reply line (type, length or simple string).
pub const MAX_REPLY_LINE: usize = 1024;
/// Most reply bytes buffered before a reply completes.
pub const MAX_REPLY_BUFFER: usize = 8 * 1024 * 1024;

/// A parsed `redis[s]://[USER@]HOST:PORT[/DB]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisUrl {
    pub host: String,
    pub port: u16,
    pub db: u32,
    /// `rediss://`: TLS.
    pub tls: bool,
    /// The ACL user (its password comes from a file or the environment).
    pub user: Option<String>,
}

impl RedisUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("rediss://") {
            (true, r)
        } else {
            let r = url
                .strip_prefix("redis://")
                .ok_or_else(|| format!("`{url}` must start with redis:// or rediss://"))?;
            (false, r)
        };
        let (user, rest) = match rest.split_once('@') {
            Some((u, _)) if u.contains(':') => {
                return Err(format!(
                    "`{url}`: no password in the URL; use --budget-store-password-file or LLMOPS_BUDGET_STORE_PASSWORD"
                ))
            }
            Some((u, r)) if !u.is_empty() => (Some(u.to_string()), r),
            Some(_) => return Err(format!("`{url}`: empty user")),
            None => (None, rest),
        };
        let (hostport, db) = match rest.split_once('/') {
            Some((h, "")) => (h, 0),
            Some((h, d)) => (h, d.parse().map_err(|_| format!("`{url}`: database must be a number"))?),
            None => (rest, 0),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().map_err(|_| format!("`{url}`: bad port"))?),
            None => (hostport.to_string(), 6379),
        };
        if host.is_empty() || host.contains('@') {
            return Err(format!("`{url}`: expected redis[s]://[USER@]HOST:PORT[/DB]"));
        }
        Ok(RedisUrl {
            host,
            port,
            db,
            tls,
            user,
        })
    }
}

/// Store health, for metrics.
#[derive(Debug, Default)]
pub struct StoreStats {
    pub up: AtomicBool,
    pub errors: AtomicU64,
    pub syncs: AtomicU64,
}

/// Why a Redis exchange failed.
#[derive(Debug)]
pub enum StoreError {
    Io(String),
    Timeout,
    Protocol(&'static str),
    Server(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Io(e) => write!(f, "redis I/O: {e}"),
            StoreError::Timeout => f.write_str("redis timed out"),
            StoreError::Protocol(w) => write!(f, "redis protocol: {w}"),
            StoreError::Server(e) => write!(f, "redis error: {e}"),
        }
    }
}

/// A RESP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

/// Encodes a command as a RESP array of bulk strings.
pub fn encode(args: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Parses one reply from the start of `b`: `Ok(None)` if incomplete. Bounded: nesting
/// past [`MAX_REPLY_DEPTH`], a bulk string past [`MAX_REPLY_BULK_BYTES`] or an array past
/// [`MAX_REPLY_ITEMS`] is a protocol error.
pub fn parse(b: &[u8]) -> Result<Option<(Reply, usize)>, StoreError> {
    parse_at(b, 0)
}

fn parse_at(b: &[u8], depth: usize) -> Result<Option<(Reply, usize)>, StoreError> {
    let Some(nl) = memchr::memmem::find(b, b"\r\n") else {
        if b.len() > MAX_REPLY_LINE {
            return Err(StoreError::Protocol("reply line too long"));
        }
        return Ok(None);
    };
    if nl > MAX_REPLY_LINE {
        return Err(StoreError::Protocol("reply line too long"));
    }
    let line = std::str::from_utf8(&b[1..nl]).map_err(|_| StoreError::Protocol("non-UTF-8 line"))?;
    let after = nl + 2;
    match b.first() {
        Some(b'+') => Ok(Some((Reply::Simple(line.to_string()), after))),
        Some(b'-') => Err(StoreError::Server(crate::util::text::truncate_chars(line, 200))),
        Some(b':') => Ok(Some((
            Reply::Int(line.parse().map_err(|_| StoreError::Protocol("bad integer"))?),
            after,
        ))),
        Some(b'$') => {
            let n: i64 = line.parse().map_err(|_| StoreError::Protocol("bad length"))?;
            if n < 0 {
                return Ok(Some((Reply::Bulk(None), after)));
            }
            if n as u64 > MAX_REPLY_BULK_BYTES as u64 {
                return Err(StoreError::Protocol("bulk string too long"));
            }
            let n = n as usize;
            if b.len() < after + n + 2 {
                return Ok(None);
            }
            Ok(Some((Reply::Bulk(Some(b[after..after + n].to_vec())), after + n + 2)))
        }
        Some(b'*') => {
            if depth >= MAX_REPLY_DEPTH {
                return Err(StoreError::Protocol("reply nested too deep"));
            }
            let n: i64 = line.parse().map_err(|_| StoreError::Protocol("bad array length"))?;
            if n > MAX_REPLY_ITEMS as i64 {
                return Err(StoreError::Protocol("array too long"));
            }
            let mut items = Vec::new();
            let mut pos = after;
            for _ in 0..n.max(0) {
                match parse_at(&b[pos..], depth + 1)? {
                    None => return Ok(None),
                    Some((r, used)) => {
                        items.push(r);
                        pos += used;
                    }
                }
            }
            Ok(Some((Reply::Array(items), pos)))
        }
        _ => Err(StoreError::Protocol("unknown reply type")),
    }
}

/// How to reach the store: the URL, the password, TLS, and this instance's field name.
#[derive(Clone)]
pub struct StoreConfig {
    pub url: RedisUrl,
    pub password: Option<crate::sigv4::SecretString>,
    /// Client TLS configuration for `rediss://`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// This instance's field in every key (stable across restarts).
    pub instance: String,
}

/// This instance's field name: the host and a fingerprint of its usage directory, so a
/// restart (which rebuilds the same spend from the same files) overwrites its own field.
pub fn instance_id(host: &str, usage_dir: &std::path::Path) -> String {
    let dir = std::fs::canonicalize(usage_dir).unwrap_or_else(|_| usage_dir.to_path_buf());
    let d = ring::digest::digest(&ring::digest::SHA256, dir.as_os_str().as_encoded_bytes());
    format!("{host}:{}", crate::util::hex::encode(&d.as_ref()[..6]))
}

struct Conn {
    stream: crate::upstream::connection::UpstreamStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(cfg: &StoreConfig) -> Result<Conn, StoreError> {
        let url = &cfg.url;
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&(url.host.as_str(), url.port))
            .map_err(|e| StoreError::Io(e.to_string()))?
            .next()
            .ok_or_else(|| StoreError::Io(format!("{} has no address", url.host)))?;
        let target = crate::upstream::endpoint::Target::new(url.tls, url.host.clone(), url.port);
        let s = crate::upstream::connection::UpstreamStream::connect(
            &target,
            addr,
            cfg.tls.as_ref(),
            STORE_TIMEOUT,
            STORE_TIMEOUT * 4,
            None,
        )
        .await
        .map_err(|e| StoreError::Io(e.to_string()))?;
        let mut c = Conn {
            stream: s,
            buf: Vec::with_capacity(4096),
        };
        if let Some(pw) = &cfg.password {
            let mut auth = vec![b"AUTH".to_vec()];
            if let Some(u) = &url.user {
                auth.push(u.as_bytes().to_vec());
            }
            auth.push(pw.expose().to_vec());
            let r = c.pipeline(&[auth]).await;
            r?;
        }
        if url.db != 0 {
            let db = url.db.to_string();
            c.pipeline(&[vec![b"SELECT".to_vec(), db.into_bytes()]]).await?;
        }
        Ok(c)
    }

    /// Sends commands in one write and reads one reply per command. The command bytes
    /// (an `AUTH` holds the password) are zeroed once written.
    async fn pipeline(&mut self, cmds: &[Vec<Vec<u8>>]) -> Result<Vec<Reply>, StoreError> {
        let mut out = Vec::new();
        for c in cmds {
            let args: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
            encode(&args, &mut out);
        }
        let deadline = std::time::Instant::now() + STORE_TIMEOUT;
        match monoio::time::timeout_at(deadline.into(), self.stream.write_all(out)).await {
            Err(_) => return Err(StoreError::Timeout),
            Ok((res, mut written)) => {
                crate::util::wipe::wipe_vec(&mut written);
                res.map_err(|e| StoreError::Io(e.to_string()))?;
            }
        }
        let mut replies = Vec::with_capacity(cmds.len());
        while replies.len() < cmds.len() {
            match parse(&self.buf)? {
                Some((r, used)) => {
                    self.buf.drain(..used);
                    replies.push(r);
                }
                None => {
                    if self.buf.len() > MAX_REPLY_BUFFER {
                        return Err(StoreError::Protocol("reply too large"));
                    }
                    let b = std::mem::take(&mut self.buf);
                    match read_more_until(&mut self.stream, b, 4096, deadline).await {
                        Ok((_, b)) => self.buf = b,
                        Err((ReadError::Timeout, _)) => return Err(StoreError::Timeout),
                        Err((ReadError::Eof, _)) => return Err(StoreError::Io("connection closed".into())),
                        Err((ReadError::Io(e), _)) => return Err(StoreError::Io(e.to_string())),
                    }
                }
            }
        }
        Ok(replies)
    }
}

fn redis_key(k: &SpendKey) -> String {
    format!("llmops:spend:{}:{}:{}", k.0, k.1, k.2)
}

/// The sum of a hash's values (`HVALS`), in micro-USD.
fn sum_fields(r: Option<&Reply>) -> Result<i128, StoreError> {
    match r {
        Some(Reply::Array(items)) => {
            let mut sum: i128 = 0;
            for it in items {
                let Reply::Bulk(Some(v)) = it else {
                    return Err(StoreError::Protocol("HVALS item is not a bulk string"));
                };
                let n: i128 = std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .filter(|n: &i128| *n >= 0)
                    .ok_or(StoreError::Protocol("HVALS item is not a count of micro-USD"))?;
                sum = sum.saturating_add(n);
            }
            Ok(sum)
        }
        _ => Err(StoreError::Protocol("HVALS reply is not an array")),
    }
}

/// One sync: write this instance's cumulative spend of every key that changed (`HSET`,
/// idempotent, `EXPIREAT`), read every key's fields back (`HVALS`) and sum them.
async fn sync(
    conn: &mut Conn,
    tracker: &Arc<Mutex<Tracker>>,
    written: &mut HashMap<SpendKey, i128>,
    instance: &str,
    rewrite: bool,
) -> Result<(), StoreError> {
    let (local, periods): (Vec<(SpendKey, i128)>, HashMap<String, super::config::Period>) = {
        let t = lock(tracker);
        (
            t.local().iter().map(|(k, v)| (k.clone(), *v)).collect(),
            t.budgets().iter().map(|b| (b.name.clone(), b.period)).collect(),
        )
    };
    let mut cmds = Vec::new();
    let mut order: Vec<(SpendKey, i128, bool)> = Vec::new();
    for (k, v) in &local {
        let Some(period) = periods.get(&k.0) else { continue };
        // Whole micro-USD only; the remainder shows in the next total.
        let total_micro = v / PICO_PER_MICRO;
        let key = redis_key(k).into_bytes();
        let changed = total_micro > 0 && (rewrite || written.get(k) != Some(&total_micro));
        if changed {
            cmds.push(vec![
                b"HSET".to_vec(),
                key.clone(),
                instance.as_bytes().to_vec(),
                total_micro.to_string().into_bytes(),
            ]);
            cmds.push(vec![
                b"EXPIREAT".to_vec(),
                key.clone(),
                (period_end(*period, k.2) + KEY_GRACE_SECS).to_string().into_bytes(),
            ]);
        }
        cmds.push(vec![b"HVALS".to_vec(), key]);
        order.push((k.clone(), total_micro, changed));
    }
    if cmds.is_empty() {
        return Ok(());
    }
    let replies = conn.pipeline(&cmds).await?;
    let mut i = 0;
    let mut totals = Vec::with_capacity(order.len());
    for (k, total_micro, changed) in order {
        if changed {
            i += 2;
        }
        let fleet = sum_fields(replies.get(i))?;
        i += 1;
        totals.push((k, total_micro, changed, fleet));
    }
    let mut t = lock(tracker);
    for (k, total_micro, changed, fleet) in totals {
        if changed {
            written.insert(k.clone(), total_micro);
        }
        // The fleet's sum includes this instance's field as just written.
        let mine = written.get(&k).copied().unwrap_or(0);
        t.set_fleet(k, fleet * PICO_PER_MICRO, mine * PICO_PER_MICRO);
    }
    Ok(())
}

/// Starts the store thread.
pub fn spawn(
    cfg: StoreConfig,
    tracker: Arc<Mutex<Tracker>>,
    stats: Arc<StoreStats>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("budget-store".into()).spawn(move || {
        crate::log::never_block_this_thread();
        let rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build();
        let Ok(mut rt) = rt else {
            crate::log::error("budget_store_failed", &[("error", "cannot build a runtime")]);
            return;
        };
        let url = cfg.url.clone();
        rt.block_on(async move {
            let mut conn: Option<Conn> = None;
            let mut written: HashMap<SpendKey, i128> = HashMap::new();
            let mut was_up = true;
            let mut tick: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                let mut result = Ok(());
                if conn.is_none() {
                    match Conn::open(&cfg).await {
                        Ok(c) => conn = Some(c),
                        Err(e) => result = Err(e),
                    }
                }
                if let Some(c) = conn.as_mut() {
                    tick += 1;
                    let rewrite = tick.is_multiple_of(REWRITE_EVERY_SYNCS);
                    result = sync(c, &tracker, &mut written, &cfg.instance, rewrite).await;
                }
                match result {
                    Ok(()) => {
                        stats.up.store(true, Ordering::Relaxed);
                        stats.syncs.fetch_add(1, Ordering::Relaxed);
                        if !was_up {
                            crate::log::info("budget_store_up", &[("store", &format!("{}:{}", url.host, url.port))]);
                        }
                        was_up = true;
                    }
                    Err(e) => {
                        conn = None;
                        stats.up.store(false, Ordering::Relaxed);
                        stats.errors.fetch_add(1, Ordering::Relaxed);
                        if was_up {
                            crate::log::warn(
                                "budget_store_down",
                                &[
                                    ("error", &e.to_string()),
                                    ("fallback", "local spend until the store is back"),
                                ],
                            );
                        }
                        was_up = false;
                        lock(&tracker).clear_fleet();
                    }
                }
                monoio::time::sleep(STORE_TICK).await;
            }
        });
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp_round_trip() {
        let mut out = Vec::new();
        encode(&[b"INCRBY", b"k", b"5"], &mut out);
        assert_eq!(out, b"*3\r\n$6\r\nINCRBY\r\n$1\r\nk\r\n$1\r\n5\r\n");
        assert_eq!(parse(b":42\r\n").unwrap(), Some((Reply::Int(42), 5)));
        assert_eq!(
            parse(b"$3\r\nabc\r\n").unwrap(),
            Some((Reply::Bulk(Some(b"abc".to_vec())), 9))
        );
        assert_eq!(parse(b"$-1\r\n").unwrap(), Some((Reply::Bulk(None), 5)));
        assert_eq!(parse(b"$3\r\nab").unwrap(), None);
        assert!(parse(b"-ERR x\r\n").is_err());
        assert_eq!(
            parse(b"*2\r\n+OK\r\n:1\r\n").unwrap(),
            Some((Reply::Array(vec![Reply::Simple("OK".into()), Reply::Int(1)]), 13))
        );
        assert_eq!(
            RedisUrl::parse("redis://127.0.0.1:6380/2").unwrap(),
            RedisUrl {
                host: "127.0.0.1".into(),
                port: 6380,
                db: 2,
                tls: false,
                user: None,
            }
        );
        let u = RedisUrl::parse("rediss://svc@cache.internal:6390").unwrap();
        assert!(u.tls && u.user.as_deref() == Some("svc") && u.port == 6390);
        assert!(RedisUrl::parse("redis://svc:pw@h").is_err(), "a password in the URL");
        assert!(RedisUrl::parse("http://x").is_err());
    }

    #[test]
    fn hostile_replies_are_errors_not_crashes() {
        let deep = "*1\r\n".repeat(100_000);
        assert!(matches!(parse(deep.as_bytes()), Err(StoreError::Protocol(_))));
        assert!(matches!(parse(b"$99999999999\r\n"), Err(StoreError::Protocol(_))));
        assert!(matches!(parse(b"*99999999\r\n"), Err(StoreError::Protocol(_))));
        let long = format!("+{}", "x".repeat(4096));
        assert!(matches!(parse(long.as_bytes()), Err(StoreError::Protocol(_))));
        assert_eq!(
            sum_fields(Some(&Reply::Array(vec![
                Reply::Bulk(Some(b"5".to_vec())),
                Reply::Bulk(Some(b"7".to_vec()))
            ])))
            .unwrap(),
            12
        );
        assert!(sum_fields(Some(&Reply::Array(vec![Reply::Bulk(Some(b"-5".to_vec()))]))).is_err());
        assert!(sum_fields(Some(&Reply::Int(3))).is_err());
    }
}
