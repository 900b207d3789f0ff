//! Upstream for production: TLS to the upstream with an extra trusted CA, pooled
//! connections reused (counted by the mock), a refused certificate, and an upstream
//! that closes idle keep-alive connections.

// A test: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;

#[test]
fn tls_upstream_with_test_ca_and_pooled_connections() {
    let dir = temp_dir("tls-up");
    let (ca, chain, key) = make_pki(&dir, "mock-bedrock");
    let m = mock_tls(&chain, &key, &[]);
    let ep = format!("https://127.0.0.1:{}", m.addr.port());
    let p = proxy_url(&ep, &dir, &["--upstream-ca", ca.to_str().unwrap()]);
    for i in 0..8 {
        let b = body(&format!("over tls {i}"));
        let r = converse(p.addr, "amazon.nova-lite-v1:0", &good_headers(), &b);
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().contains(&sha256_hex(&b)));
    }
    let stats = tls_get(m.addr, &ca, "/mock/stats").text();
    assert_eq!(stat(&stats, "signature_failures"), 0, "{stats}");
    assert_eq!(stat(&stats, "ok"), 8, "{stats}");
    // One shard, one kept-alive TLS connection for 8 requests (+1 for the stats query).
    assert_eq!(stat(&stats, "connections"), 2, "{stats}");
}

#[test]
fn unknown_upstream_certificate_is_refused() {
    let dir = temp_dir("tls-refused");
    let (_ca, chain, key) = make_pki(&dir, "untrusted");
    let m = mock_tls(&chain, &key, &[]);
    let ep = format!("https://127.0.0.1:{}", m.addr.port());
    let p = proxy_url(&ep, &dir, &[]);
    let r = converse(p.addr, "amazon.nova-lite-v1:0", &good_headers(), &body("x"));
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.code().as_deref(), Some("UpstreamUnavailable"));
    assert!(r.text().contains("TLS"), "{}", r.text());
}

#[test]
fn upstream_closing_idle_connections_is_handled() {
    let dir = temp_dir("idle-close");
    let m = mock_with(&["--idle-close-ms", "200"]);
    let p = proxy_url(&format!("http://{}", m.addr), &dir, &[]);
    for i in 0..4 {
        let r = converse(
            p.addr,
            "amazon.nova-lite-v1:0",
            &good_headers(),
            &body(&format!("idle {i}")),
        );
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
        std::thread::sleep(Duration::from_millis(400));
    }
    let stats = mock_stats(m.addr);
    assert_eq!(stat(&stats, "ok"), 4, "{stats}");
    // Each request needed a fresh connection: the pooled one had been closed while idle.
    assert_eq!(stat(&stats, "connections"), 5, "{stats}");
    // The proxy noticed each stale connection: dropped when taken from the pool (closed by
    // the peer) or, if the close raced the request, retried once on a fresh connection.
    let m = Metrics::scrape(p.addr);
    let noticed = m.count("llmops_upstream_idle_dropped_total{reason=\"closed_by_peer\"}")
        + m.count("llmops_upstream_retries_total");
    assert_eq!(noticed, 3, "{:?}", m.0);
}
