//! Hostile load and misbehaving upstreams (the hardening issue): duplicated identity
//! headers, HTTP/1.0 clients, a call cut after it was fully written (never sent twice),
//! plain-HTTP upstreams under `--require-tls`, floods of connections and of declared
//! bodies (memory stays small, `/healthz` stays fast, the bounds answer 503), bodies that
//! trickle, core dumps, and a panicking shard that stops the process cleanly.

// A test: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use llmops_proxy::usage::read::read_dir;

const MODEL: &str = "amazon.nova-lite-v1:0";

fn converse_path() -> String {
    format!("/bedrock/model/{MODEL}/converse")
}

fn check(case: &str, r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{case}: {}", r.text());
    assert_eq!(r.code().as_deref(), Some(code), "{case}: {}", r.text());
}

#[test]
fn duplicated_key_credential_region_and_tag_headers_are_400() {
    let rig = Rig::new("dup-headers", &[]);
    for (name, a, b) in [
        ("X-Cloudidr-Key", TRACKING_KEY, "trk_someone_else_000000001"),
        ("X-Aws-Access-Key-Id", AKID, "AKIDOTHER0000000000"),
        ("X-Aws-Secret-Access-Key", SECRET, "other-secret"),
        ("X-Aws-Session-Token", "tok1", "tok2"),
        ("X-Aws-Region", "us-east-1", "eu-west-1"),
        ("X-Department", "eng", "finance"),
        ("X-Project", "a", "b"),
        ("X-Team", "a", "a"),
        ("x-agent", "bot", "bot2"),
    ] {
        let h = Headers::good().set(name, a).add(&name.to_uppercase(), b).vec();
        let before = rig.upstream();
        let r = converse(rig.addr(), MODEL, &h, &body("dup"));
        check(name, &r, 400, "BadRequest");
        assert!(
            r.text().to_ascii_lowercase().contains(&name.to_ascii_lowercase()),
            "{name}: the message names the header: {}",
            r.text()
        );
        assert!(
            !r.text().contains(SECRET) && !r.text().contains("other-secret"),
            "{}",
            r.text()
        );
        assert_eq!(rig.upstream(), before, "{name}: nothing went upstream");
    }
    rig.healthy("duplicated headers");
    rig.finish();
}

/// Reads until the peer closes (or 10 s pass); returns everything.
fn read_all(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn http10(req: Vec<u8>) -> Vec<u8> {
    let text = String::from_utf8(req).unwrap();
    text.replacen(" HTTP/1.1\r\n", " HTTP/1.0\r\n", 1).into_bytes()
}

#[test]
fn http_1_0_clients_get_no_100_continue_and_no_chunked_stream() {
    let rig = Rig::new("http10", &[]);
    // Expect: 100-continue from an HTTP/1.0 client: no interim response; the body is
    // waited for and the answer is the only response.
    let b = body("ten");
    let h = Headers::good().add("Expect", "100-continue").vec();
    let req = http10(request(&converse_path(), &h, &b));
    let split = req.len() - b.len();
    let mut s = connect(rig.addr());
    s.write_all(&req[..split]).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(700))).unwrap();
    let mut early = [0u8; 64];
    match s.read(&mut early) {
        Ok(n) => panic!(
            "HTTP/1.0 got bytes before its body: {:?}",
            String::from_utf8_lossy(&early[..n])
        ),
        Err(e) => assert!(
            matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
            "{e}"
        ),
    }
    s.write_all(&req[split..]).unwrap();
    let out = String::from_utf8_lossy(&read_all(&mut s)).to_string();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(!out.contains("100 Continue"), "{out}");
    // The same on HTTP/1.1 still gets its 100 Continue.
    let req11 = request(&converse_path(), &h, &b);
    let mut s11 = connect(rig.addr());
    s11.write_all(&req11[..req11.len() - b.len()]).unwrap();
    let mut got = [0u8; 25];
    s11.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"HTTP/1.1 100 Continue\r\n\r\n");

    // ConverseStream to an HTTP/1.0 client: no Transfer-Encoding, the body is the raw
    // event stream, ended by the close.
    let req = http10(request(
        &format!("/bedrock/model/{MODEL}/converse-stream"),
        &good_headers(),
        &body("s"),
    ));
    let mut s = connect(rig.addr());
    s.write_all(&req).unwrap();
    let out = read_all(&mut s);
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").expect("a head") + 4;
    let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    let stream = &out[end..];
    // An event stream starts with its first message's total length (big-endian), not a
    // chunk-size line, and carries the metadata event.
    let first = u32::from_be_bytes(stream[..4].try_into().unwrap()) as usize;
    assert!(first > 16 && first <= stream.len(), "{first} of {}", stream.len());
    assert!(stream.windows(8).any(|w| w == b"metadata"), "no metadata event");
    assert!(!stream.ends_with(b"0\r\n\r\n"), "a chunked terminator");
    rig.finish();
}

/// A Converse answer the proxy can scan.
const ANSWER: &str = r#"{"output":{"message":{"role":"assistant","content":[{"text":"ok"}]}},"stopReason":"end_turn","usage":{"inputTokens":3,"outputTokens":2,"totalTokens":5},"metrics":{"latencyMs":4}}"#;

/// Reads one whole request (head and Content-Length body) from `s`; false if the peer
/// closed first.
fn read_request(s: &mut TcpStream, pending: &mut Vec<u8>) -> bool {
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if pending.len() >= end + 4 + len {
                pending.drain(..end + 4 + len);
                return true;
            }
        }
        let mut b = [0u8; 8192];
        match s.read(&mut b) {
            Ok(0) | Err(_) => return false,
            Ok(n) => pending.extend_from_slice(&b[..n]),
        }
    }
}

#[test]
fn a_call_cut_after_it_was_wholly_written_is_answered_502_and_never_sent_twice() {
    // An upstream that answers the first request on a connection, then reads the second
    // one whole and closes without a word (it may have run it: it must not run again).
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let addr = upstream_with(move |n| {
        counter.fetch_add(1, Ordering::SeqCst);
        // The second request on a connection: read whole, then the connection closes.
        (n == 1).then(|| {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nx-amzn-RequestId: r{n}\r\nContent-Length: {}\r\n\r\n{ANSWER}",
                ANSWER.len()
            )
        })
    });
    let dir = temp_dir("cut-after-write");
    // One shard: one pool, so the second call reuses the first call's connection.
    let p = proxy(addr, &dir, &["--threads", "1"]);
    let r = converse(p.addr, MODEL, &good_headers(), &body("first"));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = converse(p.addr, MODEL, &good_headers(), &body("second"));
    check("cut after the request was written", &r, 502, "UpstreamUnavailable");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        received.load(Ordering::SeqCst),
        2,
        "the cut call reached the upstream a second time"
    );
    let m = Metrics::scrape(p.addr);
    assert_eq!(m.count("llmops_upstream_retries_total"), 0);
    assert!(!p.logs().contains("panicked"), "{}", p.logs());
}

#[test]
fn require_tls_refuses_a_plain_remote_upstream_and_without_it_one_is_warned_about() {
    let dir = temp_dir("require-tls-upstream");
    let mut child = std::process::Command::new(BIN)
        .args([
            "serve",
            "--require-tls",
            "--listen",
            "127.0.0.1:0",
            "--upstream-endpoint",
        ])
        .arg("http://192.0.2.10:80")
        .arg("--usage-dir")
        .arg(&dir)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A proxy that starts instead of refusing would run forever: give it 10 s.
    if !wait_for(Duration::from_secs(10), || child.try_wait().unwrap().is_some()) {
        let _ = child.kill();
        panic!("--require-tls started with a plain remote upstream");
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--require-tls") && err.contains("192.0.2.10:80") && err.contains("clear text"),
        "{err}"
    );
    // Loopback is allowed under --require-tls (the mock, a sidecar).
    let m = mock();
    let p = proxy(
        m.addr,
        &dir.join("loopback"),
        &["--require-tls", "--listen", "127.0.0.1:0"],
    );
    assert!(!p.logs().contains("plaintext_upstream"), "{}", p.logs());
    drop(p);
    // Without the flag a remote plain upstream starts, loudly.
    let p = proxy_url("http://192.0.2.10:80", &dir.join("warned"), &[]);
    assert!(
        wait_for(Duration::from_secs(5), || p.logs().contains("plaintext_upstream")),
        "{}",
        p.logs()
    );
    assert!(p.logs().contains("192.0.2.10:80"), "{}", p.logs());
}

/// A `/proc/PID/status` field, in kB.
fn status_kb(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn timed_health(addr: SocketAddr) -> Duration {
    let t = Instant::now();
    let r = raw(addr, b"GET /healthz HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n").expect("healthz");
    assert_eq!(r.status, 200, "{}", r.text());
    t.elapsed()
}

#[test]
fn a_flood_of_declared_32_mib_bodies_leaves_memory_small_and_healthz_fast() {
    let rig = Rig::new("declared-flood", &["--threads", "2"]);
    let pid = rig.proxy.child.id();
    let (rss0, data0) = (status_kb(pid, "VmRSS:"), status_kb(pid, "VmData:"));
    let head = {
        let mut r = request(&converse_path(), &good_headers(), b"");
        let text = String::from_utf8(r.clone()).unwrap();
        r = text
            .replace("Content-Length: 0\r\n", &format!("Content-Length: {}\r\n", 32 << 20))
            .into_bytes();
        r
    };
    let mut held = Vec::new();
    for _ in 0..300 {
        let mut s = TcpStream::connect(rig.addr()).unwrap();
        s.write_all(&head).unwrap();
        s.write_all(b"{\"messages\":").unwrap();
        held.push(s);
    }
    std::thread::sleep(Duration::from_millis(500));
    let took = timed_health(rig.addr());
    let (rss, data) = (status_kb(pid, "VmRSS:"), status_kb(pid, "VmData:"));
    // 300 × 32 MiB reserved up front would be 9.4 GiB of data mappings.
    assert!(data - data0.min(data) < 256 * 1024, "VmData grew {} kB", data - data0);
    assert!(rss - rss0.min(rss) < 64 * 1024, "VmRSS grew {} kB", rss - rss0);
    assert!(took < Duration::from_secs(1), "/healthz took {took:?} under the flood");
    drop(held);
    rig.healthy("the declared-length flood");
    rig.finish();
}

#[test]
fn bodies_in_flight_and_connections_are_bounded_with_a_503() {
    let rig = Rig::new(
        "inflight-bound",
        &[
            "--threads",
            "1",
            "--max-inflight-body-bytes",
            "2MiB",
            "--max-connections",
            "40",
        ],
    );
    // 30 bodies of 1 MiB each, each sending 256 KiB and stalling: 7.5 MiB would be
    // buffered; the bound holds 2 MiB, the rest are refused.
    let len = 1 << 20;
    let head = String::from_utf8(request(&converse_path(), &good_headers(), b""))
        .unwrap()
        .replace("Content-Length: 0\r\n", &format!("Content-Length: {len}\r\n"))
        .into_bytes();
    let mut held = Vec::new();
    for _ in 0..30 {
        let mut s = TcpStream::connect(rig.addr()).unwrap();
        s.write_all(&head).unwrap();
        s.write_all(&vec![b' '; 256 << 10]).unwrap();
        held.push(s);
    }
    let mut refused = 0;
    for s in &mut held {
        s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let mut pending = Vec::new();
        if let Some(r) = read_response(s, &mut pending) {
            check("a body past the shard's bound", &r, 503, "Overloaded");
            refused += 1;
        }
    }
    assert!(refused >= 15, "only {refused} of 30 refused");
    assert!(refused < 30, "every body refused: the bound admits none");
    drop(held);

    // Connections: 40 held open idle, the next ones are answered 503 and closed.
    std::thread::sleep(Duration::from_millis(300));
    let mut idle: Vec<TcpStream> = (0..40).map(|_| TcpStream::connect(rig.addr()).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut over = TcpStream::connect(rig.addr()).unwrap();
    let text = String::from_utf8_lossy(&read_all(&mut over)).to_string();
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("\"code\":\"Overloaded\""), "{text}");
    let r = read_response(&mut over, &mut text.as_bytes().to_vec());
    assert!(r.is_none() || r.unwrap().status == 503);
    idle.truncate(0);
    std::thread::sleep(Duration::from_millis(300));
    let m = Metrics::scrape(rig.addr());
    assert!(m.count("llmops_client_connections_refused_total") >= 1);
    rig.healthy("the bounds");
    rig.finish();
}

#[test]
fn a_trickled_body_is_cut_off_at_the_minimum_rate_with_408() {
    let rig = Rig::new("trickle", &[]);
    let head = String::from_utf8(request(&converse_path(), &good_headers(), b""))
        .unwrap()
        .replace("Content-Length: 0\r\n", "Content-Length: 100000\r\n")
        .into_bytes();
    let mut s = connect(rig.addr());
    s.write_all(&head).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(400))).unwrap();
    let start = Instant::now();
    let mut pending = Vec::new();
    let mut answer = None;
    // A byte every 400 ms: each read well inside the 30 s read timeout, the average far
    // below the minimum rate.
    while start.elapsed() < Duration::from_secs(20) {
        if s.write_all(b" ").is_err() {
            break;
        }
        if let Some(r) = read_response(&mut s, &mut pending) {
            answer = Some(r);
            break;
        }
    }
    let r = answer.expect("no answer to a trickled body within 20 s");
    check("trickled body", &r, 408, "RequestTimeout");
    assert!(start.elapsed() < Duration::from_secs(15), "{:?}", start.elapsed());
    rig.healthy("a trickled body");
    rig.finish();
}

#[test]
fn the_server_allows_no_core_dump() {
    let rig = Rig::new("no-core", &[]);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", rig.proxy.child.id())).unwrap();
    let core = limits.lines().find(|l| l.starts_with("Max core file size")).unwrap();
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], &["0", "0"], "{core}");
    rig.finish();
}

#[test]
#[cfg(debug_assertions)]
fn a_panicking_shard_stops_the_process_cleanly_and_keeps_the_rows() {
    let m = mock();
    let dir = temp_dir("shard-panic");
    let mut p = Launch::proxy(m.addr, &dir)
        .args(&["--threads", "2", "--drain-timeout", "5"])
        .env("LLMOPS_FAULTS", "panic=1@2")
        .start();
    let mut ids = Vec::new();
    for i in 0..2 {
        let r = converse(p.addr, MODEL, &good_headers(), &body(&format!("before {i}")));
        assert_eq!(r.status, 200, "{}", r.text());
        ids.push(r.header("x-request-id").unwrap().to_string());
    }
    // The third request panics its shard: no answer, and the process stops by itself.
    let third = raw(p.addr, &request(&converse_path(), &good_headers(), &body("boom")));
    assert!(third.is_none(), "{:?}", third.map(|r| r.text()));
    let until = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = p.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < until,
            "the process runs on after a shard panicked:\n{}",
            p.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1), "{}", p.logs());
    let logs = p.logs();
    assert!(logs.contains("thread_panicked"), "{logs}");
    assert!(logs.contains("stopped"), "the others were not drained:\n{logs}");
    assert!(
        !logs.contains("injected shard panic"),
        "the panic message is logged:\n{logs}"
    );
    let rows = read_dir(&dir).unwrap();
    for id in &ids {
        assert!(rows.iter().any(|r| &r.request_id == id), "row {id} lost: {rows:?}");
    }
}

#[test]
fn a_stuck_log_pipe_stops_neither_requests_nor_rows() {
    use std::io::BufRead;
    let m = mock();
    let dir = temp_dir("stuck-log");
    // stderr is a pipe nobody reads once the proxy listens: after ~64 KiB of access-log
    // lines a direct write would block forever.
    let mut child = std::process::Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "1",
            "--roll-interval",
            "1",
        ])
        .arg("--upstream-endpoint")
        .arg(format!("http://{}", m.addr))
        .arg("--usage-dir")
        .arg(&dir)
        .args(["--ledger-max-bytes", "16MiB"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut addr = None;
    let mut line = String::new();
    while addr.is_none() && err.read_line(&mut line).unwrap() > 0 {
        if let Some(a) = line.split("listening addr=").nth(1) {
            addr = Some(a.trim().parse::<SocketAddr>().unwrap());
        }
        line.clear();
    }
    let addr = addr.expect("the proxy listens");
    // Killed when dropped, also when an assertion fails (a child left running would hold
    // the test harness's output open).
    let mut p = Proc {
        child,
        addr,
        log: Default::default(),
    };
    let n = 2000;
    let mut s = connect(addr);
    let mut pending = Vec::new();
    let b = body("stuck log");
    let req = request(&converse_path(), &good_headers(), &b);
    for i in 0..n {
        s.write_all(&req).unwrap();
        let r = read_response(&mut s, &mut pending).unwrap_or_else(|| panic!("no answer to request {i}"));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert!(timed_health(addr) < Duration::from_secs(1));
    // Every row reaches a published file although the access log cannot be written.
    let written = wait_for(Duration::from_secs(20), || {
        Metrics::scrape(addr).count("llmops_usage_rows_written_total") >= n
    });
    assert!(
        written,
        "rows written: {}",
        Metrics::scrape(addr).count("llmops_usage_rows_written_total")
    );
    // SIGTERM still stops it (the exit waits for the stuck log only briefly).
    p.signal(libc::SIGTERM);
    let stopped = wait_for(Duration::from_secs(15), || p.child.try_wait().unwrap().is_some());
    assert!(stopped, "the proxy did not stop with its log pipe stuck");
    drop(err);
}

#[test]
fn a_slow_resolver_stalls_no_shard_and_its_lookup_ends_in_a_502_in_time() {
    // A name server that never answers, on a loopback address of its own, made the
    // proxy's only one by a private mount namespace; where that cannot be set up (no
    // root, or LLMOPS_TEST_NO_NAMESERVER=1), the resolver threads are slowed by the
    // debug-build hook instead.
    let forced = std::env::var_os("LLMOPS_TEST_NO_NAMESERVER").is_some();
    let silent = (!forced)
        .then(|| std::net::UdpSocket::bind("127.0.0.77:53").ok())
        .flatten();
    let queries = Arc::new(AtomicUsize::new(0));
    if let Some(s) = silent.as_ref().and_then(|s| s.try_clone().ok()) {
        let q = queries.clone();
        std::thread::spawn(move || {
            let mut b = [0u8; 512];
            while s.recv_from(&mut b).is_ok() {
                q.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    let namespace = silent.is_some()
        && std::process::Command::new("unshare")
            .args(["-m", "true"])
            .status()
            .is_ok_and(|s| s.success());
    let m = mock();
    let dir = temp_dir("slow-dns");
    std::fs::create_dir_all(&dir).unwrap();
    let resolv = dir.join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.77\noptions timeout:10 attempts:1\n").unwrap();
    let endpoint = format!("http://slow-upstream.test:{}", m.addr.port());
    let l = Launch::proxy_url(&endpoint, &dir.join("usage")).args(&["--upstream-connect-timeout", "2"]);
    let p = if namespace {
        let script = format!("mount --bind {} /etc/resolv.conf && exec \"$@\"", resolv.display());
        l.under("unshare", &["-m", "sh", "-c", &script, "sh"]).start()
    } else {
        eprintln!("no root for a private name server: slowing the resolver threads instead");
        l.env("LLMOPS_TEST_DNS_DELAY_MS", "10000").start()
    };
    let addr = p.addr;
    let calls: Vec<_> = (0..3)
        .map(|_| {
            std::thread::spawn(move || {
                let t = Instant::now();
                let r = converse(addr, MODEL, &good_headers(), &body("dns"));
                (r, t.elapsed())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // The one shard serves while its lookups wait.
    for _ in 0..5 {
        let took = timed_health(addr);
        assert!(
            took < Duration::from_millis(500),
            "/healthz took {took:?} during a slow lookup"
        );
    }
    for c in calls {
        let (r, took) = c.join().unwrap();
        check("a lookup that never answers", &r, 502, "UpstreamUnavailable");
        assert!(
            r.text().contains("resolve") && r.text().contains("slow-upstream.test"),
            "{}",
            r.text()
        );
        assert!(took < Duration::from_secs(5), "the lookup took {took:?}");
    }
    if namespace {
        // Three calls shared one lookup (an A and an AAAA query, maybe a retry of each).
        let n = queries.load(Ordering::SeqCst);
        assert!((1..=4).contains(&n), "{n} queries for one name");
    }
    let metrics = Metrics::scrape(addr);
    assert!(metrics.count("llmops_upstream_errors_total{kind=\"dns\"}") >= 3);
    assert!(!p.logs().contains("panicked"), "{}", p.logs());
}

/// Whether `needle` appears in any readable, writable mapping of process `pid` (root
/// reads another process's memory; `None` where it cannot).
fn in_process_memory(pid: u32, needle: &[u8]) -> Option<Vec<String>> {
    use std::io::{Seek, SeekFrom};
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).ok()?;
    let mut found = Vec::new();
    let mut readable = false;
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            continue;
        };
        if !perms.starts_with("rw") || line.contains("[vvar") || line.contains("[vsyscall") {
            continue;
        }
        let (a, b) = range.split_once('-').unwrap();
        let (a, b) = (u64::from_str_radix(a, 16).unwrap(), u64::from_str_radix(b, 16).unwrap());
        let mut buf = vec![0u8; (b - a) as usize];
        if mem.seek(SeekFrom::Start(a)).is_err() || mem.read_exact(&mut buf).is_err() {
            continue;
        }
        readable = true;
        if buf.windows(needle.len()).any(|w| w == needle) {
            found.push(line.to_string());
        }
    }
    readable.then_some(found)
}

#[test]
fn no_secret_or_session_token_stays_in_the_proxy_s_memory() {
    let rig = Rig::new("memory-secrets", &["--threads", "1"]);
    // Temporary credentials: the secret signs, the token travels in the signed head.
    let h = Headers::good().session().vec();
    // A head that stops halfway (after the credentials) and stays: its read is cancelled
    // at the header timeout (10 s), and the runtime frees the buffer it held.
    let stalled_at = Instant::now();
    let mut stalled = connect(rig.addr());
    let half = request(&converse_path(), &h, &body("stalled"));
    let cut_at = half.len() - body("stalled").len() - 4;
    stalled.write_all(&half[..cut_at]).unwrap();
    let mut s = connect(rig.addr());
    let mut pending = Vec::new();
    for i in 0..50 {
        s.write_all(&request(&converse_path(), &h, &body(&format!("mem {i}"))))
            .unwrap();
        let r = read_response(&mut s, &mut pending).unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // Pipelined requests cut mid-head, then the connection closed.
    let mut cut = request(&converse_path(), &h, &body("cut"));
    cut.truncate(cut.len() - 40);
    s.write_all(&cut).unwrap();
    drop(s);
    // The stalled head was cut off by the header timeout (the proxy closed it).
    stalled.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut sink = Vec::new();
    let _ = stalled.read_to_end(&mut sink);
    assert!(
        stalled_at.elapsed() >= Duration::from_secs(9),
        "{:?}",
        stalled_at.elapsed()
    );
    std::thread::sleep(Duration::from_millis(500));
    let pid = rig.proxy.child.id();
    // The scan itself works: the price table's model ids are in memory.
    if let Some(found) = in_process_memory(pid, MODEL.as_bytes()) {
        assert!(!found.is_empty(), "the memory scan finds nothing at all");
    }
    for (what, needle) in [("the secret", TOKEN_SECRET), ("the session token", SESSION_TOKEN)] {
        match in_process_memory(pid, needle.as_bytes()) {
            None => eprintln!("cannot read the proxy's memory here: not checked"),
            Some(found) => assert!(found.is_empty(), "{what} is still in the proxy's memory: {found:?}"),
        }
    }
    rig.finish();
}

/// An upstream on loopback: for the `n`th request read whole on a connection (from 1),
/// `answer(n)` is written back, or `None` closes the connection.
fn upstream_with(answer: impl Fn(usize) -> Option<String> + Send + Sync + 'static) -> SocketAddr {
    let up = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = up.local_addr().unwrap();
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for s in up.incoming() {
            let Ok(mut s) = s else { continue };
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut pending = Vec::new();
                let mut n = 0;
                while read_request(&mut s, &mut pending) {
                    n += 1;
                    let Some(resp) = answer(n) else { return };
                    if s.write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// An upstream that answers every request with `status` and `body` (no
/// `x-amzn-errortype`), keep-alive.
fn scripted_upstream(status: &'static str, body: String) -> SocketAddr {
    upstream_with(move |_| {
        Some(format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
    })
}

#[test]
fn aws_error_messages_are_scrubbed_with_or_without_x_amzn_errortype() {
    // A signature error that echoes what was signed, the type only in the body.
    let echo = format!(
        r#"{{"__type":"com.amazon.coral.service#InvalidSignatureException","message":"The request signature we calculated does not match the signature you provided.\n\nThe Canonical String for this request should have been\n'POST\n/model/x/converse\n\nx-amz-security-token:{SESSION_TOKEN}\n'"}}"#
    );
    let up = scripted_upstream("403 Forbidden", echo);
    let dir = temp_dir("scrub-auth");
    let mut p = proxy(up, &dir.join("first"), &["--threads", "1"]);
    let r = converse(p.addr, MODEL, &Headers::good().session().vec(), &body("x"));
    check(
        "signature error without x-amzn-errortype",
        &r,
        401,
        "AwsAuthenticationFailed",
    );
    assert!(r.text().contains("InvalidSignatureException"), "{}", r.text());
    assert!(
        !r.text().contains(SESSION_TOKEN) && !r.text().contains("Canonical"),
        "{}",
        r.text()
    );
    // Another error, relayed to its caller unchanged, is recorded scrubbed.
    let leak = format!(
        r#"{{"__type":"ValidationException","message":"bad Credential={AKID}/20250101/us-east-1/bedrock/aws4_request Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}}"#
    );
    let up2 = scripted_upstream("400 Bad Request", leak);
    let mut p2 = proxy(up2, &dir.join("second"), &["--threads", "1"]);
    let r = converse(p2.addr, MODEL, &good_headers(), &body("x"));
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(p.terminate(), Some(0));
    assert_eq!(p2.terminate(), Some(0));
    let mut rows = read_dir(&dir.join("first")).unwrap();
    rows.extend(read_dir(&dir.join("second")).unwrap());
    assert_eq!(rows.len(), 2);
    for r in &rows {
        let m = r.error_message.clone().unwrap_or_default();
        for secret in [
            SESSION_TOKEN,
            AKID,
            "0123456789abcdef0123456789abcdef",
            "Canonical String",
        ] {
            assert!(!m.contains(secret), "recorded message holds {secret}: {m}");
        }
    }
    let types: Vec<_> = rows.iter().map(|r| r.error_type.clone().unwrap_or_default()).collect();
    assert!(types.contains(&"InvalidSignatureException".to_string()), "{types:?}");
    assert!(types.contains(&"ValidationException".to_string()), "{types:?}");
    let logs = format!("{}{}", p.logs(), p2.logs());
    assert!(!logs.contains(SESSION_TOKEN) && !logs.contains(AKID), "{logs}");
}

fn get(addr: SocketAddr, path: &str, extra: &str) -> Resp {
    raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: p\r\n{extra}Connection: close\r\n\r\n").as_bytes(),
    )
    .expect("a response")
}

fn admin_addr(p: &Proc) -> SocketAddr {
    assert!(
        wait_for(Duration::from_secs(5), || p.logs().contains("listening_admin addr=")),
        "{}",
        p.logs()
    );
    let logs = p.logs();
    let a = logs.split("listening_admin addr=").nth(1).unwrap();
    a.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn metrics_move_to_the_admin_listener_behind_a_bearer_token() {
    let m = mock();
    let dir = temp_dir("admin");
    std::fs::create_dir_all(&dir).unwrap();
    let token = "admin-token-0123456789abcdef";
    let token_file = dir.join("admin.token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let p = proxy(
        m.addr,
        &dir.join("u1"),
        &[
            "--admin-listen",
            "127.0.0.1:0",
            "--admin-token-file",
            token_file.to_str().unwrap(),
            "--max-connections",
            "4",
        ],
    );
    let admin = admin_addr(&p);
    // The client listener: Bedrock yes, /metrics no (it shows spend by tenant).
    assert_eq!(converse(p.addr, MODEL, &good_headers(), &body("a")).status, 200);
    assert_eq!(get(p.addr, "/metrics", "").status, 404);
    assert_eq!(get(p.addr, "/healthz", "").status, 200);
    // The admin listener: /metrics with the token only, no Bedrock route.
    let r = get(admin, "/metrics", "");
    check("no token", &r, 401, "Unauthorized");
    let r = get(admin, "/metrics", "Authorization: Bearer wrong-token-0000000000\r\n");
    check("a wrong token", &r, 401, "Unauthorized");
    let r = get(admin, "/metrics", &format!("Authorization: Bearer {token}\r\n"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("llmops_requests_total"), "{}", r.text());
    assert_eq!(get(admin, "/healthz", "").status, 200);
    let r = converse(admin, MODEL, &good_headers(), &body("a"));
    check("Bedrock on the admin listener", &r, 404, "NotFound");
    // A flood of client connections does not lock the operators out.
    std::thread::sleep(Duration::from_millis(200));
    let held: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(p.addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        get(p.addr, "/healthz", "").text().contains("Overloaded"),
        "the client bound holds"
    );
    let r = get(admin, "/metrics", &format!("Authorization: Bearer {token}\r\n"));
    assert_eq!(r.status, 200, "{}", r.text());
    drop(held);
    assert!(!p.logs().contains(token), "the token is logged");
    drop(p);

    // --metrics-on-main on keeps /metrics on the client listener too (token still needed).
    let p = proxy(
        m.addr,
        &dir.join("u2"),
        &[
            "--admin-listen",
            "127.0.0.1:0",
            "--metrics-on-main",
            "on",
            "--admin-token-file",
            token_file.to_str().unwrap(),
        ],
    );
    assert_eq!(get(p.addr, "/metrics", "").status, 401);
    assert_eq!(
        get(p.addr, "/metrics", &format!("Authorization: Bearer {token}\r\n")).status,
        200
    );
    drop(p);

    // A non-loopback admin listener without a token is refused at start-up.
    let out = std::process::Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "0.0.0.0:0",
            "--usage-dir",
        ])
        .arg(dir.join("u3"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--admin-listen"),
        "{out:?}"
    );
}
