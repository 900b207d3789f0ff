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

/// Server certificates that fail verification in one named way each: (case, chain PEM,
/// key PEM), all under one trusted CA whose certificate is returned first.
fn broken_servers(
    dir: &std::path::Path,
) -> (
    std::path::PathBuf,
    Vec<(&'static str, std::path::PathBuf, std::path::PathBuf)>,
) {
    use rcgen::{date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut cap = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    cap.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    cap.distinguished_name.push(DnType::CommonName, "broken test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_key_pem = ca_key.serialize_pem();
    let ca = CertifiedIssuer::self_signed(cap, ca_key).unwrap();
    let ca_path = dir.join("broken-ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    let mut out = Vec::new();
    let mut leaf = |case: &'static str, names: &[&str], expired: bool| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        if expired {
            p.not_before = date_time_ymd(2020, 1, 1);
            p.not_after = date_time_ymd(2021, 1, 1);
        }
        let cert = p.signed_by(&key, &ca).unwrap();
        let (c, k) = (
            dir.join(format!("{case}-chain.pem")),
            dir.join(format!("{case}-key.pem")),
        );
        std::fs::write(&c, format!("{}{}", cert.pem(), ca.pem())).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        out.push((case, c, k));
    };
    leaf("name mismatch", &["other.example"], false);
    leaf("expired", &["127.0.0.1"], true);
    let (c, k) = (dir.join("ca-as-server-chain.pem"), dir.join("ca-as-server-key.pem"));
    std::fs::write(&c, ca.pem()).unwrap();
    std::fs::write(&k, ca_key_pem).unwrap();
    out.push(("a CA certificate", c, k));
    (ca_path, out)
}

#[test]
fn upstream_tls_failures_name_their_reason() {
    let dir = temp_dir("tls-reasons");
    // No trusted root for the server's issuer.
    let (_ca, chain, key) = make_pki(&dir, "stranger");
    let m = mock_tls(&chain, &key, &[]);
    let p = proxy_url(&format!("https://127.0.0.1:{}", m.addr.port()), &dir.join("u0"), &[]);
    let r = converse(p.addr, "amazon.nova-lite-v1:0", &good_headers(), &body("x"));
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("unknown issuer"), "{}", r.text());
    let (ca, servers) = broken_servers(&dir);
    for (i, (case, chain, key)) in servers.into_iter().enumerate() {
        let m = mock_tls(&chain, &key, &[]);
        let p = proxy_url(
            &format!("https://127.0.0.1:{}", m.addr.port()),
            &dir.join(format!("u{}", i + 1)),
            &["--upstream-ca", ca.to_str().unwrap()],
        );
        let r = converse(p.addr, "amazon.nova-lite-v1:0", &good_headers(), &body("x"));
        assert_eq!(r.status, 502, "{case}: {}", r.text());
        assert_eq!(r.code().as_deref(), Some("UpstreamUnavailable"));
        let want = match case {
            "name mismatch" => "name mismatch: the server's certificate is not valid for 127.0.0.1",
            "expired" => "certificate has expired",
            _ => "a CA certificate is used as the server's own certificate",
        };
        assert!(r.text().contains(want), "{case}: {}", r.text());
        assert!(!r.text().contains("io error"), "{}", r.text());
    }
}
