//! The signed relay end to end: the mock verifies every signature (colon, ARN and
//! session-token cases), sees the body byte for byte, and its answers come back with
//! usage headers; keep-alive with pipelining, chunked bodies, 100-continue, a 10 MiB
//! body, relayed AWS errors, pooled upstream connections.

// A test: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::io::Write;

use common::*;
use llmops_proxy::mock::mock_usage;

fn ok_reply(r: &Resp, sent: &[u8]) {
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains(&sha256_hex(sent)),
        "mock must have seen the body byte for byte: {}",
        r.text()
    );
    let (i, o, _) = mock_usage(sent.len());
    assert_eq!(r.header("x-llmops-input-tokens"), Some(i.to_string().as_str()));
    assert_eq!(r.header("x-llmops-output-tokens"), Some(o.to_string().as_str()));
    assert!(r.header("x-amzn-requestid").is_some());
    assert!(r.header("x-request-id").is_some());
}

#[test]
fn signed_relay_colon_arn_and_session_token() {
    let rig = Rig::new("relay", &[]);
    let p = &rig.proxy;
    let b = body("hello there");
    // Colon raw and percent-encoded.
    let r = converse(p.addr, "amazon.nova-lite-v1:0", &good_headers(), &b);
    ok_reply(&r, &b);
    assert!(r.header("x-llmops-cost-usd").is_some());
    ok_reply(&converse(p.addr, "amazon.nova-lite-v1%3A0", &good_headers(), &b), &b);
    // An ARN with %2F.
    let arn = "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fabc123";
    let r = converse(p.addr, arn, &good_headers(), &b);
    ok_reply(&r, &b);
    assert!(r
        .text()
        .contains("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123"));
    // Session token (signed as x-amz-security-token).
    let h = Headers::good().session().vec();
    ok_reply(&converse(p.addr, "amazon.nova-lite-v1:0", &h, &b), &b);
    // Geo prefix: anthropic in eu-west-1 goes upstream as eu.anthropic...
    let eu = Headers::good().set("X-Aws-Region", "eu-west-1").vec();
    let r = converse(p.addr, "anthropic.claude-sonnet-4-6", &eu, &b);
    ok_reply(&r, &b);
    assert!(
        r.text().contains("mock reply from eu.anthropic.claude-sonnet-4-6"),
        "{}",
        r.text()
    );
    let stats = rig.mock_json();
    assert_eq!(stat(&stats, "ok"), 5, "{stats}");
    rig.finish();
}

#[test]
fn keep_alive_pipelining_chunked_continue_and_large_bodies() {
    let rig = Rig::new("pipeline", &[]);
    let p = &rig.proxy;
    // Three pipelined requests in one write on one connection; answers in order.
    let bodies: Vec<Vec<u8>> = (0..3)
        .map(|i| body(&format!("pipelined request number {i} {}", "x".repeat(i * 7))))
        .collect();
    let mut all = Vec::new();
    for b in &bodies {
        all.extend(request(
            "/bedrock/model/amazon.nova-lite-v1:0/converse",
            &good_headers(),
            b,
        ));
    }
    let mut s = connect(p.addr);
    s.write_all(&all).unwrap();
    let mut pending = Vec::new();
    for b in &bodies {
        ok_reply(&read_response(&mut s, &mut pending).unwrap(), b);
    }
    // Same connection again, now a chunked body in three chunks sent separately.
    let b = body("a chunked body split in pieces");
    let mut head =
        "POST /bedrock/model/amazon.nova-lite-v1:0/converse HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n"
            .to_string();
    for (k, v) in good_headers() {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    for part in b.chunks(11) {
        s.write_all(format!("{:x};ext=1\r\n", part.len()).as_bytes()).unwrap();
        s.write_all(part).unwrap();
        s.write_all(b"\r\n").unwrap();
        s.flush().unwrap();
    }
    s.write_all(b"0\r\n\r\n").unwrap();
    ok_reply(&read_response(&mut s, &mut pending).unwrap(), &b);
    // Expect: 100-continue.
    let b = body("after continue");
    let mut head = format!("POST /bedrock/model/amazon.nova-lite-v1:0/converse HTTP/1.1\r\nHost: p\r\nExpect: 100-continue\r\nContent-Length: {}\r\n", b.len());
    for (k, v) in good_headers() {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while !got.ends_with(b"\r\n\r\n") {
        let n = std::io::Read::read(&mut s, &mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 100 Continue"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    s.write_all(&b).unwrap();
    ok_reply(&read_response(&mut s, &mut pending).unwrap(), &b);
    // A 10 MiB body.
    let mut big = b"{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"".to_vec();
    big.extend(std::iter::repeat_n(b'z', 10 * 1024 * 1024));
    big.extend_from_slice(b"\"}]}]}");
    s.write_all(&request(
        "/bedrock/model/amazon.nova-lite-v1:0/converse",
        &good_headers(),
        &big,
    ))
    .unwrap();
    ok_reply(&read_response(&mut s, &mut pending).unwrap(), &big);
    rig.finish();
}

#[test]
fn aws_errors_are_relayed_unchanged_and_connections_pooled() {
    let m = mock();
    let dir = temp_dir("awserrors");
    let p = proxy(m.addr, &dir, &["--threads", "1"]);
    for (model, status, t) in [
        ("mock.throttle", 429, "ThrottlingException"),
        ("mock.denied", 403, "AccessDeniedException"),
        ("mock.error", 500, "InternalServerException"),
        ("mock.unavailable", 503, "ServiceUnavailableException"),
        ("mock.validation", 400, "ValidationException"),
    ] {
        let r = converse(p.addr, model, &good_headers(), &body("x"));
        assert_eq!(r.status, status, "{}", r.text());
        assert!(r.header("x-amzn-errortype").unwrap().starts_with(t));
        assert!(
            r.text().starts_with("{\"message\":"),
            "AWS body relayed as is: {}",
            r.text()
        );
        assert!(r.code().is_none());
    }
    for _ in 0..10 {
        assert_eq!(
            converse(p.addr, "amazon.nova-lite-v1:0", &good_headers(), &body("pool")).status,
            200
        );
    }
    let stats = mock_stats(m.addr);
    // 15 requests from one shard over one kept-alive upstream connection (+1 for this query).
    assert_eq!(stat(&stats, "connections"), 2, "{stats}");
}

#[test]
fn connections_idle_past_the_buffer_release_still_serve_every_byte() {
    // A plain connection idle past IDLE_RELEASE_AFTER (1 s) cancels its buffered read,
    // frees the buffer and waits for readiness: nothing the client sends may be lost
    // (a 6 KB head first, so the released buffer was well used).
    let rig = Rig::new("idle-release", &[]);
    let mut s = connect(rig.proxy.addr);
    let mut pending = Vec::new();
    let path = "/bedrock/model/amazon.nova-lite-v1:0/converse";
    let b = body("before the idle wait");
    let mut big_head = good_headers();
    big_head.push(("X-Pad".into(), "p".repeat(6000)));
    s.write_all(&request(path, &big_head, &b)).unwrap();
    ok_reply(&read_response(&mut s, &mut pending).unwrap(), &b);
    // Idle past the release, then a request whose head arrives in two pieces.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let b = body("after the buffer was released");
    let req = request(path, &good_headers(), &b);
    let (first, rest) = req.split_at(7);
    s.write_all(first).unwrap();
    s.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    s.write_all(rest).unwrap();
    ok_reply(&read_response(&mut s, &mut pending).unwrap(), &b);
    // Idle again, then two pipelined requests in one write.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let (b1, b2) = (body("pipelined one"), body("pipelined two, a bit longer"));
    let mut both = request(path, &good_headers(), &b1);
    both.extend(request(path, &good_headers(), &b2));
    s.write_all(&both).unwrap();
    ok_reply(&read_response(&mut s, &mut pending).unwrap(), &b1);
    ok_reply(&read_response(&mut s, &mut pending).unwrap(), &b2);
    rig.finish();
}
