//! Soak: 10,000 concurrent keep-alive client connections held open and served (RSS per
//! connection reported), and an upstream killed and restarted under load: the proxy
//! recovers, every client request gets an answer, and the Parquet row count equals the
//! number of answered requests.

// A test: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use llmops_proxy::usage::read::read_dir;

/// Concurrent client connections held by the soak.
const CONNECTIONS: usize = 10_000;

fn raise_nofile(n: u64) {
    let lim = libc::rlimit {
        rlim_cur: n,
        rlim_max: n,
    };
    // SAFETY: setrlimit on our own process; children inherit it.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    if rc != 0 {
        let mut cur = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur) };
        let lim = libc::rlimit {
            rlim_cur: cur.rlim_max,
            rlim_max: cur.rlim_max,
        };
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn ten_thousand_keepalive_connections() {
    raise_nofile(65_536);
    let m = mock();
    let dir = temp_dir("soak");
    let mut p = proxy(m.addr, &dir, &[]);
    let before = rss_kib(p.child.id());
    let t0 = Instant::now();
    let mut conns = Vec::with_capacity(CONNECTIONS);
    for i in 0..CONNECTIONS {
        match std::net::TcpStream::connect(p.addr) {
            Ok(s) => {
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                conns.push(s);
            }
            Err(e) => panic!("connection {i} failed: {e}"),
        }
    }
    // Every connection is served (a health check each), and stays open.
    for s in conns.iter_mut() {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: p\r\n\r\n").unwrap();
    }
    for (i, s) in conns.iter_mut().enumerate() {
        let r = read_response(s, &mut Vec::new()).unwrap_or_else(|| panic!("connection {i} got no answer"));
        assert_eq!(r.status, 200);
    }
    let held = rss_kib(p.child.id());
    let open = Metrics::scrape(p.addr).get("llmops_client_connections_open").unwrap();
    assert!(open >= CONNECTIONS as f64, "open connections {open}");
    // A Converse call on a sample of the held connections, through the pool.
    for s in conns.iter_mut().step_by(100) {
        s.write_all(&request(
            "/bedrock/model/amazon.nova-lite-v1:0/converse",
            &good_headers(),
            &body("soak"),
        ))
        .unwrap();
    }
    for s in conns.iter_mut().step_by(100) {
        assert_eq!(read_response(s, &mut Vec::new()).unwrap().status, 200);
    }
    let per_conn = (held.saturating_sub(before)) as f64 * 1024.0 / CONNECTIONS as f64;
    eprintln!(
        "soak: {CONNECTIONS} keep-alive connections served in {:?}; RSS {before} KiB -> {held} KiB, {per_conn:.0} bytes per connection",
        t0.elapsed()
    );
    assert!(per_conn < 64.0 * 1024.0, "{per_conn} bytes per connection");
    drop(conns);
    assert_eq!(p.terminate(), Some(0));
    assert_eq!(read_dir(&dir).unwrap().len(), CONNECTIONS / 100);
}

#[test]
fn upstream_killed_and_restarted_under_load() {
    let mut m = mock();
    let port = m.addr.port();
    let dir = temp_dir("upstream-restart");
    let mut p = proxy(
        m.addr,
        &dir,
        &["--upstream-connect-timeout", "1", "--upstream-ttfb-timeout", "5"],
    );
    let answered = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let failed_after_restart = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let restarted = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for t in 0..4 {
        let (a, answered, ok, stop) = (p.addr, answered.clone(), ok.clone(), stop.clone());
        let (restarted, failed_after_restart) = (restarted.clone(), failed_after_restart.clone());
        threads.push(std::thread::spawn(move || {
            let mut s = connect(a);
            let mut pending = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && i < 20_000 {
                let req = request(
                    "/bedrock/model/amazon.nova-lite-v1:0/converse",
                    &good_headers(),
                    &body(&format!("r {t} {i}")),
                );
                // Only a request *started* once the upstream is back must succeed: one sent
                // while it was down may be answered 502 just after the flag is set.
                let started_after_restart = restarted.load(Ordering::SeqCst);
                s.write_all(&req).expect("the proxy keeps the client connection");
                let r = read_response(&mut s, &mut pending).expect("every request gets an answer");
                answered.fetch_add(1, Ordering::Relaxed);
                match r.status {
                    200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    502 | 504 => {
                        if started_after_restart {
                            failed_after_restart.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    other => panic!("unexpected status {other}: {}", r.text()),
                }
                if r.header("connection") == Some("close") {
                    s = connect(a);
                    pending.clear();
                }
                i += 1;
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(800));
    let ok_before_kill = ok.load(Ordering::Relaxed);
    m.child.kill().unwrap();
    m.child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    // Same port again (retried while the old socket lingers); killed on drop.
    let port_s = format!("127.0.0.1:{port}");
    let m2 = Launch::mock().args(&["--listen", &port_s]).start_retrying(5);
    assert!(wait_for(Duration::from_secs(3), || std::net::TcpStream::connect(
        &port_s
    )
    .is_ok()));
    restarted.store(true, Ordering::SeqCst);
    let ok_at_restart = ok.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let total = answered.load(Ordering::Relaxed);
    assert!(ok_before_kill > 20, "load before the kill: {ok_before_kill}");
    assert!(
        ok.load(Ordering::Relaxed) > ok_at_restart + 20,
        "the proxy recovered after the restart"
    );
    // Stale pooled connections are retried once on a fresh one: no failure once the upstream is back.
    assert_eq!(failed_after_restart.load(Ordering::Relaxed), 0);
    assert_eq!(p.terminate(), Some(0));
    drop(m2);
    assert_eq!(
        read_dir(&dir).unwrap().len() as u64,
        total,
        "one row per answered request"
    );
}
