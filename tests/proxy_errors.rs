//! Every row of the proxy's error table (DESIGN.md §1): status, `code`, JSON body and
//! `x-request-id`, through the real binary against the mock upstream.

// A test: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;

fn hdrs_without(name: &str) -> Vec<(String, String)> {
    Headers::good().without(name).vec()
}

fn with(name: &str, value: &str) -> Vec<(String, String)> {
    Headers::good().set(name, value).vec()
}

fn check(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.code().as_deref(), Some(code), "{}", r.text());
    assert!(r.text().contains("\"message\":\""), "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let id = r.header("x-request-id").expect("x-request-id");
    assert_eq!(id.len(), 24);
}

#[test]
fn error_table() {
    let m = mock();
    let dir = temp_dir("errors");
    let p = proxy(
        m.addr,
        &dir,
        &["--max-body-bytes", "1000", "--upstream-ttfb-timeout", "1"],
    );
    let a = p.addr;
    let b = body("hello");
    let model = "amazon.nova-lite-v1:0";

    check(
        &converse(a, model, &hdrs_without("X-Cloudidr-Key"), &b),
        400,
        "MissingTrackingKey",
    );
    check(
        &converse(a, model, &with("X-Cloudidr-Key", "trk_short"), &b),
        401,
        "InvalidTrackingKey",
    );
    check(
        &converse(a, model, &with("X-Cloudidr-Key", "bearer abcdefghijklmnopqrstuv"), &b),
        401,
        "InvalidTrackingKey",
    );
    check(
        &converse(a, model, &hdrs_without("X-Aws-Secret-Access-Key"), &b),
        400,
        "MissingAwsCredentials",
    );
    check(
        &converse(a, model, &hdrs_without("X-Aws-Access-Key-Id"), &b),
        400,
        "MissingAwsCredentials",
    );
    for region in [
        "us-east-1.evil.com",
        "..",
        "us-east-1@evil.com",
        "us-east-1#x",
        "US-EAST-1",
        "us-east-1:443",
    ] {
        check(
            &converse(a, model, &with("X-Aws-Region", region), &b),
            400,
            "InvalidRegion",
        );
    }
    for bad_model in ["%2E%2E", "..%2F..%2Fx", "a%2", "a%20b", "x%0Ay"] {
        check(&converse(a, bad_model, &good_headers(), &b), 400, "InvalidModelId");
    }
    // Malformed HTTP: duplicate Content-Length.
    let dup = b"POST /bedrock/model/x/converse HTTP/1.1\r\nHost: p\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}";
    check(&raw(a, dup).unwrap(), 400, "BadRequest");
    // Unknown path, wrong method.
    let r = raw(a, b"GET /nope HTTP/1.1\r\nHost: p\r\n\r\n").unwrap();
    check(&r, 404, "NotFound");
    let r = raw(a, b"GET /bedrock/model/x/converse HTTP/1.1\r\nHost: p\r\n\r\n").unwrap();
    check(&r, 405, "MethodNotAllowed");
    assert_eq!(r.header("allow"), Some("POST"));
    // No length.
    let mut nolen = b"POST /bedrock/model/amazon.nova-lite-v1:0/converse HTTP/1.1\r\nHost: p\r\n".to_vec();
    for (k, v) in good_headers() {
        nolen.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    nolen.extend_from_slice(b"\r\n");
    check(&raw(a, &nolen).unwrap(), 411, "LengthRequired");
    // Too large body (limit 1000 in this test), URI, headers.
    check(
        &converse(a, model, &good_headers(), &vec![b'x'; 2000]),
        413,
        "PayloadTooLarge",
    );
    let long = format!("GET /{} HTTP/1.1\r\nHost: p\r\n\r\n", "a".repeat(9000));
    check(&raw(a, long.as_bytes()).unwrap(), 414, "UriTooLong");
    let many = format!("GET /healthz HTTP/1.1\r\n{}\r\n", "X-Filler: y\r\n".repeat(100));
    check(&raw(a, many.as_bytes()).unwrap(), 431, "RequestHeaderFieldsTooLarge");
    // AWS refused the credentials: wrong secret, unknown key id, expired token.
    let r = converse(
        a,
        model,
        &with("X-Aws-Secret-Access-Key", "wrong-secret-wrong-secret"),
        &b,
    );
    check(&r, 401, "AwsAuthenticationFailed");
    assert!(r.text().contains("InvalidSignatureException"), "{}", r.text());
    assert!(
        !r.text().contains("Canonical"),
        "AWS's canonical string must not be relayed: {}",
        r.text()
    );
    let r = converse(a, model, &with("X-Aws-Access-Key-Id", "AKIDUNKNOWN0000000000"), &b);
    check(&r, 401, "AwsAuthenticationFailed");
    assert!(r.text().contains("UnrecognizedClientException"));
    let expired = Headers::good()
        .session()
        .set("X-Aws-Session-Token", "expired-session-token")
        .vec();
    let r = converse(a, model, &expired, &b);
    check(&r, 401, "AwsAuthenticationFailed");
    assert!(r.text().contains("ExpiredTokenException"));
    // Upstream timeout (first byte after 1 s) and an upstream that closes.
    check(
        &converse(a, "mock.slow-3000", &good_headers(), &b),
        504,
        "UpstreamTimeout",
    );
    check(
        &converse(a, "mock.close", &good_headers(), &b),
        502,
        "UpstreamUnavailable",
    );
    let stats = mock_stats(m.addr);
    assert_eq!(stat(&stats, "leaked_headers"), 0, "{stats}");
}

#[test]
fn upstream_unreachable_is_502() {
    // A port nothing listens on.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = l.local_addr().unwrap();
    drop(l);
    let dir = temp_dir("unreachable");
    let p = proxy(dead, &dir, &[]);
    check(
        &converse(p.addr, "amazon.nova-lite-v1:0", &good_headers(), &body("x")),
        502,
        "UpstreamUnavailable",
    );
}

#[test]
fn unknown_key_with_key_file() {
    let m = mock();
    let dir = temp_dir("keyfile");
    let keys = dir.join("keys.toml");
    let h = sha256_hex(TRACKING_KEY.as_bytes());
    std::fs::write(&keys, format!("[[key]]\nname = \"acme-prod\"\nsha256 = \"{h}\"\n")).unwrap();
    let p = proxy(m.addr, &dir, &["--keys", keys.to_str().unwrap()]);
    let r = converse(p.addr, "amazon.nova-lite-v1:0", &good_headers(), &body("x"));
    assert_eq!(r.status, 200, "{}", r.text());
    check(
        &converse(
            p.addr,
            "amazon.nova-lite-v1:0",
            &with("X-Cloudidr-Key", "trk_another_valid_looking_key"),
            &body("x"),
        ),
        401,
        "InvalidTrackingKey",
    );
}

#[test]
fn draining_answers_503() {
    let m = mock();
    let dir = temp_dir("drain");
    let mut p = proxy(m.addr, &dir, &["--drain-timeout", "5"]);
    // A request in flight keeps the process draining for a moment.
    let a = p.addr;
    let slow = std::thread::spawn(move || converse(a, "mock.slow-1500", &good_headers(), &body("slow")));
    std::thread::sleep(Duration::from_millis(200));
    // Two connections with a request head half sent.
    let mut c1 = connect(a);
    let mut c2 = connect(a);
    let req = request(
        "/bedrock/model/amazon.nova-lite-v1:0/converse",
        &good_headers(),
        &body("late"),
    );
    c1.write_all(&req[..10]).unwrap();
    c2.write_all(b"GET /hea").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    p.signal(15);
    std::thread::sleep(Duration::from_millis(300));
    c1.write_all(&req[10..]).unwrap();
    c2.write_all(b"lthz HTTP/1.1\r\nHost: p\r\n\r\n").unwrap();
    let r1 = read_response(&mut c1, &mut Vec::new()).unwrap();
    check(&r1, 503, "ShuttingDown");
    let r2 = read_response(&mut c2, &mut Vec::new()).unwrap();
    assert_eq!(r2.status, 503);
    assert!(r2.text().contains("draining"));
    assert_eq!(
        slow.join().unwrap().status,
        200,
        "in-flight request finishes during drain"
    );
    assert_eq!(p.terminate(), Some(0));
}
