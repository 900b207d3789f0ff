//! Each upstream timeout: connect (a listener whose backlog is full drops SYNs), TLS
//! handshake (a server that accepts and never speaks), first byte and whole request.
//! Timeouts answer 504 `UpstreamTimeout`.

// A test: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::*;

fn check_504(r: &Resp, took: Duration) {
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.code().as_deref(), Some("UpstreamTimeout"), "{}", r.text());
    assert!(took < Duration::from_secs(8), "took {took:?}");
}

#[test]
fn tls_handshake_timeout() {
    // Accepts TCP, never answers the ClientHello.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().take(2).flatten() {
            held.push(s);
        }
        std::thread::sleep(Duration::from_secs(5));
    });
    let dir = temp_dir("tls-timeout");
    let p = proxy_url(
        &format!("https://127.0.0.1:{}", addr.port()),
        &dir,
        &["--upstream-tls-timeout", "1"],
    );
    let t = Instant::now();
    let r = converse(p.addr, "amazon.nova-lite-v1:0", &good_headers(), &body("x"));
    check_504(&r, t.elapsed());
    assert!(r.text().contains("TLS handshake"), "{}", r.text());
    drop(holder);
}

#[test]
fn first_byte_and_whole_request_deadlines() {
    let m = mock();
    let dir = temp_dir("deadlines");
    let p = proxy(m.addr, &dir, &["--upstream-ttfb-timeout", "1"]);
    let t = Instant::now();
    check_504(
        &converse(p.addr, "mock.slow-3000", &good_headers(), &body("x")),
        t.elapsed(),
    );
    // Whole-request deadline shorter than the first-byte one (its own usage directory:
    // one process per ledger).
    let p2 = proxy(
        m.addr,
        &dir.join("second"),
        &["--upstream-ttfb-timeout", "60", "--upstream-timeout", "1"],
    );
    let t = Instant::now();
    check_504(
        &converse(p2.addr, "mock.slow-3000", &good_headers(), &body("x")),
        t.elapsed(),
    );
    // The proxy still serves after timeouts.
    assert_eq!(
        converse(p.addr, "amazon.nova-lite-v1:0", &good_headers(), &body("x")).status,
        200
    );
}

#[test]
fn connect_timeout() {
    // A listener with a backlog of 1 that never accepts: once full, SYNs are dropped and
    // connects hang.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    assert!(fd >= 0);
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sa.sin_family = libc::AF_INET as u16;
    sa.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
    let rc = unsafe {
        libc::bind(
            fd,
            &sa as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        )
    };
    assert_eq!(rc, 0);
    assert_eq!(unsafe { libc::listen(fd, 1) }, 0);
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as u32;
    unsafe { libc::getsockname(fd, &mut sa as *mut _ as *mut libc::sockaddr, &mut len) };
    let port = u16::from_be(sa.sin_port);
    // Fill the accept queue.
    let mut fillers = Vec::new();
    for _ in 0..8 {
        if let Ok(s) = std::net::TcpStream::connect_timeout(
            &format!("127.0.0.1:{port}").parse().unwrap(),
            Duration::from_millis(200),
        ) {
            fillers.push(s);
        }
    }
    let dir = temp_dir("connect-timeout");
    let p = proxy_url(
        &format!("http://127.0.0.1:{port}"),
        &dir,
        &["--upstream-connect-timeout", "1"],
    );
    let t = Instant::now();
    let r = converse(p.addr, "amazon.nova-lite-v1:0", &good_headers(), &body("x"));
    check_504(&r, t.elapsed());
    assert!(r.text().contains("connecting"), "{}", r.text());
    unsafe { libc::close(fd) };
}
