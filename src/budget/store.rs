//! The shared budget store: every instance adds its spend to Redis and reads the fleet
//! total back, so N instances enforce one limit together. A small RESP client runs on
//! its own thread with its own monoio runtime (never on a shard); keys hold integer
//! micro-USD (`llmops:budget:{name}:{value}:{period}`) and expire a day past the period.
//! Redis down: each instance falls back to its local spend, logs it once, counts it in
//! a metric, keeps the unsent growth, and catches up when Redis is back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use monoio::io::AsyncWriteRentExt;
use monoio::net::TcpStream;

use super::tracker::{period_end, SpendKey, Tracker};
use crate::http::io::{read_more_until, ReadError};
use crate::util::snapshot::lock;

/// How often spend is pushed and fleet totals read.
pub const STORE_TICK: Duration = Duration::from_millis(500);
/// Connect/command deadline for Redis.
pub const STORE_TIMEOUT: Duration = Duration::from_millis(500);
/// Keys live this long past their period's end.
pub const KEY_GRACE_SECS: i64 = 86_400;
/// 1e-12 USD per micro-USD.
const PICO_PER_MICRO: i128 = 1_000_000;

/// A parsed `redis://HOST:PORT[/DB]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisUrl {
    pub host: String,
    pub port: u16,
    pub db: u32,
}

impl RedisUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("redis://")
            .ok_or_else(|| format!("`{url}` must start with redis://"))?;
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
            return Err(format!("`{url}`: expected redis://HOST:PORT[/DB]"));
        }
        Ok(RedisUrl { host, port, db })
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

/// Parses one reply from the start of `b`: `Ok(None)` if incomplete.
pub fn parse(b: &[u8]) -> Result<Option<(Reply, usize)>, StoreError> {
    let Some(nl) = b.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let line = std::str::from_utf8(&b[1..nl]).map_err(|_| StoreError::Protocol("non-UTF-8 line"))?;
    let after = nl + 2;
    match b.first() {
        Some(b'+') => Ok(Some((Reply::Simple(line.to_string()), after))),
        Some(b'-') => Err(StoreError::Server(line.chars().take(200).collect())),
        Some(b':') => Ok(Some((
            Reply::Int(line.parse().map_err(|_| StoreError::Protocol("bad integer"))?),
            after,
        ))),
        Some(b'$') => {
            let n: i64 = line.parse().map_err(|_| StoreError::Protocol("bad length"))?;
            if n < 0 {
                return Ok(Some((Reply::Bulk(None), after)));
            }
            let n = n as usize;
            if b.len() < after + n + 2 {
                return Ok(None);
            }
            Ok(Some((Reply::Bulk(Some(b[after..after + n].to_vec())), after + n + 2)))
        }
        Some(b'*') => {
            let n: i64 = line.parse().map_err(|_| StoreError::Protocol("bad array length"))?;
            let mut items = Vec::new();
            let mut pos = after;
            for _ in 0..n.max(0) {
                match parse(&b[pos..])? {
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

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    async fn open(url: &RedisUrl) -> Result<Conn, StoreError> {
        let addr = format!("{}:{}", url.host, url.port);
        let s = monoio::time::timeout(STORE_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| StoreError::Timeout)?
            .map_err(|e| StoreError::Io(e.to_string()))?;
        let _ = s.set_nodelay(true);
        let mut c = Conn {
            stream: s,
            buf: Vec::with_capacity(4096),
        };
        if url.db != 0 {
            let db = url.db.to_string();
            c.pipeline(&[vec![b"SELECT".to_vec(), db.into_bytes()]]).await?;
        }
        Ok(c)
    }

    /// Sends commands in one write and reads one reply per command.
    async fn pipeline(&mut self, cmds: &[Vec<Vec<u8>>]) -> Result<Vec<Reply>, StoreError> {
        let mut out = Vec::new();
        for c in cmds {
            let args: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
            encode(&args, &mut out);
        }
        let deadline = std::time::Instant::now() + STORE_TIMEOUT;
        match monoio::time::timeout_at(deadline.into(), self.stream.write_all(out)).await {
            Err(_) => return Err(StoreError::Timeout),
            Ok((Err(e), _)) => return Err(StoreError::Io(e.to_string())),
            Ok((Ok(_), _)) => {}
        }
        let mut replies = Vec::with_capacity(cmds.len());
        while replies.len() < cmds.len() {
            match parse(&self.buf)? {
                Some((r, used)) => {
                    self.buf.drain(..used);
                    replies.push(r);
                }
                None => {
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
    format!("llmops:budget:{}:{}:{}", k.0, k.1, k.2)
}

/// One sync: push the local growth since the last push (INCRBY, EXPIREAT), read totals.
async fn sync(
    conn: &mut Conn,
    tracker: &Arc<Mutex<Tracker>>,
    pushed: &mut HashMap<SpendKey, i128>,
) -> Result<(), StoreError> {
    let (local, periods): (Vec<(SpendKey, i128)>, HashMap<String, super::config::Period>) = {
        let t = lock(tracker);
        (
            t.local().iter().map(|(k, v)| (k.clone(), *v)).collect(),
            t.budgets().iter().map(|b| (b.name.clone(), b.period)).collect(),
        )
    };
    let mut cmds = Vec::new();
    let mut order: Vec<(SpendKey, i128)> = Vec::new();
    for (k, v) in &local {
        let Some(period) = periods.get(&k.0) else { continue };
        let before = pushed.get(k).copied().unwrap_or(0);
        // Whole micro-USD only; the remainder waits for the next tick.
        let delta_micro = (v - before) / PICO_PER_MICRO;
        let key = redis_key(k).into_bytes();
        if delta_micro > 0 {
            cmds.push(vec![
                b"INCRBY".to_vec(),
                key.clone(),
                delta_micro.to_string().into_bytes(),
            ]);
            cmds.push(vec![
                b"EXPIREAT".to_vec(),
                key.clone(),
                (period_end(*period, k.2) + KEY_GRACE_SECS).to_string().into_bytes(),
            ]);
        }
        cmds.push(vec![b"GET".to_vec(), key]);
        order.push((k.clone(), delta_micro));
    }
    if cmds.is_empty() {
        return Ok(());
    }
    let replies = conn.pipeline(&cmds).await?;
    let mut i = 0;
    let mut t = lock(tracker);
    for (k, delta_micro) in order {
        if delta_micro > 0 {
            i += 2;
            *pushed.entry(k.clone()).or_default() += delta_micro * PICO_PER_MICRO;
        }
        let total_micro: i128 = match replies.get(i) {
            Some(Reply::Bulk(Some(v))) => std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()).unwrap_or(0),
            _ => 0,
        };
        i += 1;
        t.set_fleet(
            k.clone(),
            total_micro * PICO_PER_MICRO,
            pushed.get(&k).copied().unwrap_or(0),
        );
    }
    Ok(())
}

/// Starts the store thread.
pub fn spawn(
    url: RedisUrl,
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
        rt.block_on(async move {
            let mut conn: Option<Conn> = None;
            let mut pushed: HashMap<SpendKey, i128> = HashMap::new();
            let mut was_up = true;
            while !stop.load(Ordering::Relaxed) {
                if conn.is_none() {
                    conn = Conn::open(&url).await.ok();
                }
                let result = match conn.as_mut() {
                    Some(c) => sync(c, &tracker, &mut pushed).await,
                    None => Err(StoreError::Io("cannot connect".into())),
                };
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
                db: 2
            }
        );
        assert!(RedisUrl::parse("http://x").is_err());
    }
}
