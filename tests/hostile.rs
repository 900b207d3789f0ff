//! Hostile input against the real binary, on loopback, in front of the mock upstream:
//! request-smuggling shapes, oversized heads, URIs and bodies, slowloris, half-open and
//! abandoned connections, hostile attribution tags, region values that try to move the
//! upstream host and model ids that try to leave their path segment.
//!
//! For every case: the documented error (status and JSON `code`), the connection closed
//! after a framing error, nothing refused reaches the upstream (the mock's `requests`
//! counter does not move, `leaked_headers` stays 0), and the proxy keeps serving (a
//! normal converse answers 200 after each case, and no shard panicked).

// A test: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;

const MODEL: &str = RIG_MODEL;
const PATH: &str = "/bedrock/model/amazon.nova-lite-v1:0/converse";
/// How long a test waits for an answer or a close before calling it a hang.
const WAIT: Duration = Duration::from_secs(5);

/// The hostile suite's refusal check on a [`Rig`].
trait Refuses {
    fn refused(&self, case: &str, bytes: &[u8], status: u16, code: &str, closes: bool) -> Resp;
}

impl Refuses for Rig {
    /// Sends `bytes` on a fresh connection and expects the proxy's own error `status` /
    /// `code`; with `closes`, the response says `Connection: close` and the connection
    /// ends right after it. Nothing reaches the upstream; the proxy keeps serving.
    fn refused(&self, case: &str, bytes: &[u8], status: u16, code: &str, closes: bool) -> Resp {
        let before = self.upstream();
        let (r, mut s, pending) = send(self.addr(), bytes);
        let r = r.unwrap_or_else(|| panic!("{case}: no response"));
        check_error(case, &r, status, code);
        if closes {
            assert_eq!(r.header("connection"), Some("close"), "{case}: {:?}", r.headers);
            assert_closed(case, &mut s, &pending);
        }
        assert_eq!(
            self.upstream(),
            before,
            "{case}: a refused request reached the upstream"
        );
        self.healthy(case);
        r
    }
}

fn check_error(case: &str, r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{case}: {}", r.text());
    assert_eq!(r.code().as_deref(), Some(code), "{case}: {}", r.text());
    assert!(r.text().contains("\"message\":\""), "{case}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"), "{case}");
    assert!(r.header("x-request-id").is_some(), "{case}: no x-request-id");
}

fn open(addr: SocketAddr) -> TcpStream {
    let s = connect(addr);
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

/// Sends `bytes` on a fresh connection and reads one response. A write error is ignored:
/// the proxy may answer and close before it has read everything.
fn send(addr: SocketAddr, bytes: &[u8]) -> (Option<Resp>, TcpStream, Vec<u8>) {
    let mut s = open(addr);
    let _ = s.write_all(bytes);
    let mut pending = Vec::new();
    let r = read_response(&mut s, &mut pending);
    (r, s, pending)
}

/// The proxy closed the connection: nothing follows the response but EOF (or a reset,
/// when it closed with bytes of ours still unread), and it does so without waiting.
fn assert_closed(case: &str, s: &mut TcpStream, pending: &[u8]) {
    assert!(
        pending.is_empty(),
        "{case}: bytes after the response: {:?}",
        String::from_utf8_lossy(pending)
    );
    let mut b = [0u8; 4096];
    match s.read(&mut b) {
        Ok(0) => {}
        Ok(n) => panic!(
            "{case}: more bytes after the response: {:?}",
            String::from_utf8_lossy(&b[..n])
        ),
        Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted) => {}
        Err(e) => panic!("{case}: connection still open after the response ({e})"),
    }
}

/// Reads until EOF (or reset); panics if the peer keeps the connection open past `WAIT`.
fn read_to_close(case: &str, s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut b = [0u8; 4096];
    loop {
        match s.read(&mut b) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&b[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted) => return out,
            Err(e) => panic!(
                "{case}: the proxy did not close the connection ({e}); got {:?}",
                String::from_utf8_lossy(&out)
            ),
        }
    }
}

/// Header lines of a valid call (each ending in CRLF), without `skip`.
fn header_lines(skip: &str) -> String {
    good_headers()
        .into_iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case(skip))
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect()
}

/// A converse request head: request line, Host, the valid headers, then `extra` (raw
/// header lines, each with its own line ending), then the blank line. No body framing
/// unless `extra` has it.
fn head(extra: &[u8]) -> Vec<u8> {
    head_for(PATH, "", extra)
}

fn head_for(path: &str, skip: &str, extra: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "POST {path} HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n{}",
        header_lines(skip)
    )
    .into_bytes();
    out.extend_from_slice(extra);
    out.extend_from_slice(b"\r\n");
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// `body` in `Transfer-Encoding: chunked` framing, `size` bytes a chunk.
fn chunked(body: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for c in body.chunks(size) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// A valid Converse body of exactly `n` bytes.
fn body_of_len(n: usize) -> Vec<u8> {
    let base = body("").len();
    let b = body(&"a".repeat(n - base));
    assert_eq!(b.len(), n);
    b
}

/// A gauge or counter of the proxy's `/metrics`.
fn metric(addr: SocketAddr, name: &str) -> u64 {
    let m = Metrics::scrape(addr);
    m.get(name).unwrap_or_else(|| panic!("no {name} in {:?}", m.0)) as u64
}

// ---------------------------------------------------------------------------------------
// Request smuggling
// ---------------------------------------------------------------------------------------

#[test]
fn smuggling_header_shapes_are_refused() {
    let rig = Rig::new("hostile-smuggle-head", &[]);
    let b = body("smuggle");
    let n = b.len();
    let cl = |v: &str| format!("Content-Length: {v}\r\n").into_bytes();
    let with_body = |extra: &[u8]| cat(&[&head(extra), &b]);
    let n_s = n.to_string();
    let lf_only = String::from_utf8(cat(&[&head(&cl(&n_s)), &b]))
        .unwrap()
        .replace("\r\n", "\n");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "CL.TE",
            cat(&[
                &head(b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n"),
                b"0\r\n\r\nG",
            ]),
        ),
        (
            "TE.CL",
            cat(&[
                &head(b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n"),
                b"5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n",
            ]),
        ),
        ("TE.CL with Content-Length: 0", {
            let mut v = head(b"Transfer-Encoding: chunked\r\nContent-Length: 0\r\n");
            v.extend(chunked(&b, 16));
            v
        }),
        (
            "duplicate Content-Length, equal",
            with_body(&cat(&[&cl(&n_s), &cl(&n_s)])),
        ),
        (
            "duplicate Content-Length, different",
            cat(&[&head(&cat(&[&cl(&n_s), &cl(&(n + 5).to_string())])), &b, b"xxxxx"]),
        ),
        ("Content-Length list", with_body(&cl(&format!("{n}, {n}")))),
        ("Content-Length with +", with_body(&cl(&format!("+{n}")))),
        ("Content-Length negative", with_body(&cl("-1"))),
        ("Content-Length hex", with_body(&cl(&format!("0x{n:x}")))),
        ("Content-Length empty", with_body(&cl(""))),
        // u64::MAX + 6: wrapping arithmetic would read it as 5.
        ("Content-Length overflowing u64", with_body(&cl("18446744073709551621"))),
        ("Transfer-Encoding: chunked, identity", {
            let mut v = head(b"Transfer-Encoding: chunked, identity\r\n");
            v.extend(chunked(&b, 16));
            v
        }),
        (
            "Transfer-Encoding: identity",
            with_body(b"Transfer-Encoding: identity\r\n"),
        ),
        (
            "Transfer-Encoding: identity with Content-Length",
            with_body(&cat(&[b"Transfer-Encoding: identity\r\n", &cl(&n_s)])),
        ),
        ("Transfer-Encoding: gzip, chunked", {
            let mut v = head(b"Transfer-Encoding: gzip, chunked\r\n");
            v.extend(chunked(&b, 16));
            v
        }),
        ("Transfer-Encoding twice", {
            let mut v = head(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n");
            v.extend(chunked(&b, 16));
            v
        }),
        ("space before colon", {
            let mut v = head(b"Transfer-Encoding : chunked\r\n");
            v.extend(chunked(&b, 16));
            v
        }),
        ("Transfer-Encoding obs-folded", {
            let mut v = head(b"Transfer-Encoding:\r\n chunked\r\n");
            v.extend(chunked(&b, 16));
            v
        }),
        ("Transfer-Encoding in HTTP/1.0", {
            let mut v = String::from_utf8(head(b"Transfer-Encoding: chunked\r\n"))
                .unwrap()
                .replacen("HTTP/1.1", "HTTP/1.0", 1)
                .into_bytes();
            v.extend(chunked(&b, 16));
            v
        }),
        (
            "obs-fold continuation (space)",
            with_body(&cat(&[b"X-Department: engi\r\n  neering\r\n", &cl(&n_s)])),
        ),
        (
            "obs-fold continuation (tab)",
            with_body(&cat(&[&cl(&n_s), b"X-Project: a\r\n\tb\r\n"])),
        ),
        ("bare LF line endings", lf_only.into_bytes()),
        (
            "one bare LF line ending",
            with_body(&cat(&[b"X-Agent: a\n", &cl(&n_s)])),
        ),
        (
            "bare CR in a value",
            with_body(&cat(&[b"X-Agent: a\rb\r\n", &cl(&n_s)])),
        ),
        (
            "NUL in a header value",
            with_body(&cat(&[b"X-Agent: a\0b\r\n", &cl(&n_s)])),
        ),
        (
            "NUL in a header name",
            with_body(&cat(&[b"X-Ag\0ent: a\r\n", &cl(&n_s)])),
        ),
        (
            "NUL in the request line",
            cat(&[
                b"POST /bedrock/model/amazon.nova-lite-v1:0/conv\0erse HTTP/1.1\r\nHost: p\r\n",
                &cl(&n_s),
                b"\r\n",
                &b,
            ]),
        ),
        (
            "duplicate Host",
            with_body(&cat(&[b"Host: evil.example\r\n", &cl(&n_s)])),
        ),
        (
            "absolute-form target",
            cat(&[&head_for(&format!("http://evil.example{PATH}"), "", &cl(&n_s)), &b]),
        ),
        (
            "CONNECT authority-form",
            b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n".to_vec(),
        ),
        ("asterisk-form", b"OPTIONS * HTTP/1.1\r\nHost: p\r\n\r\n".to_vec()),
        ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec()),
    ];
    for (case, bytes) in &cases {
        rig.refused(case, bytes, 400, "BadRequest", true);
    }
    rig.finish();
}

#[test]
fn smuggling_chunk_shapes_are_refused() {
    let rig = Rig::new("hostile-smuggle-chunk", &[]);
    let te = head(b"Transfer-Encoding: chunked\r\n");
    let oversized_trailer = format!("0\r\n{}\r\n", format!("X-T: {}\r\n", "a".repeat(100)).repeat(100));
    let long_ext = format!("2;{}\r\n{{}}\r\n0\r\n\r\n", "e".repeat(2000));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("chunk size with 0x prefix", b"0x2\r\n{}\r\n0\r\n\r\n".to_vec()),
        ("negative chunk size", b"-2\r\n{}\r\n0\r\n\r\n".to_vec()),
        (
            "overflowing chunk size",
            b"ffffffffffffffffff\r\n{}\r\n0\r\n\r\n".to_vec(),
        ),
        (
            "overflowing chunk size that wraps to 2",
            b"10000000000000002\r\n{}\r\n0\r\n\r\n".to_vec(),
        ),
        ("chunk data longer than its size", b"2\r\n{}xx\r\n0\r\n\r\n".to_vec()),
        ("chunk data without CRLF", b"2\r\n{}0\r\n\r\n".to_vec()),
        ("bare LF after the chunk size", b"2\n{}\r\n0\r\n\r\n".to_vec()),
        ("bare LF after the chunk data", b"2\r\n{}\n0\r\n\r\n".to_vec()),
        ("space before the chunk size", b" 2\r\n{}\r\n0\r\n\r\n".to_vec()),
        ("empty chunk size line", b"\r\n{}\r\n0\r\n\r\n".to_vec()),
        ("non-hex chunk size", b"g\r\n{}\r\n0\r\n\r\n".to_vec()),
        ("NUL in a chunk extension", b"2;a\0b\r\n{}\r\n0\r\n\r\n".to_vec()),
        ("chunk size line too long", long_ext.into_bytes()),
        ("trailer with bare LF", b"2\r\n{}\r\n0\r\nX-T: 1\n\r\n".to_vec()),
        ("trailers too large", oversized_trailer.into_bytes()),
    ];
    for (case, chunks) in &cases {
        rig.refused(case, &cat(&[&te, chunks]), 400, "BadRequest", true);
    }
    // 15 hex digits is representable but far beyond the default --max-body-bytes: 413.
    rig.refused(
        "huge chunk size",
        &cat(&[&te, b"fffffffffffffff\r\n{}\r\n0\r\n\r\n"]),
        413,
        "PayloadTooLarge",
        true,
    );
    rig.finish();
}

#[test]
fn transfer_encoding_is_case_insensitive_and_ows_is_trimmed() {
    let rig = Rig::new("hostile-te-case", &[]);
    for (case, extra) in [
        ("ChUnKeD with extra spaces", &b"Transfer-Encoding:  ChUnKeD  \r\n"[..]),
        ("CHUNKED with a tab", &b"transfer-encoding:\tCHUNKED\r\n"[..]),
    ] {
        let before = rig.upstream();
        let b = body(case);
        let mut req = head(extra);
        req.extend(chunked(&b, 7));
        let (r, _, _) = send(rig.addr(), &req);
        let r = r.unwrap_or_else(|| panic!("{case}: no response"));
        assert_eq!(r.status, 200, "{case}: {}", r.text());
        assert!(r.text().contains(&sha256_hex(&b)), "{case}: {}", r.text());
        assert_eq!(rig.upstream(), before + 1, "{case}");
    }
    // Content-Length with optional whitespace around the value.
    let b = body("ows");
    let r = send(
        rig.addr(),
        &cat(&[&head(format!("Content-Length: \t {} \t\r\n", b.len()).as_bytes()), &b]),
    )
    .0
    .expect("response");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains(&sha256_hex(&b)), "{}", r.text());
    // A client Host header naming another host does not redirect the upstream call.
    let before = rig.upstream();
    let req =
        String::from_utf8(request(PATH, &good_headers(), &b))
            .unwrap()
            .replacen("Host: proxy", "Host: evil.example", 1);
    let r = send(rig.addr(), req.as_bytes()).0.expect("response");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(rig.upstream(), before + 1);
    rig.finish();
}

#[test]
fn smuggled_requests_in_bodies_reach_the_upstream_only_as_framed() {
    let rig = Rig::new("hostile-smuggle-body", &[]);
    let smuggled = request(PATH, &good_headers(), &body("smuggled"));

    // Content-Length covers a whole second request: it is body, sent upstream once (the
    // mock refuses it as malformed JSON, which shows the bytes arrived as body), and the
    // next request on the connection gets the next response.
    let before = rig.upstream();
    let mut hidden = body("outer").to_vec();
    hidden.extend_from_slice(&smuggled);
    let mut s = open(rig.addr());
    s.write_all(&request(PATH, &good_headers(), &hidden)).unwrap();
    let mut pending = Vec::new();
    let r = read_response(&mut s, &mut pending).expect("response");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("Malformed input"), "{}", r.text());
    assert_eq!(rig.upstream(), before + 1, "exactly one upstream request");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n")
        .unwrap();
    let r = read_response(&mut s, &mut pending).expect("healthz");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), r#"{"status":"ok"}"#);
    assert_closed("hidden in Content-Length body", &mut s, &pending);
    assert_eq!(rig.upstream(), before + 1, "exactly one upstream request");
    rig.healthy("hidden in Content-Length body");

    // CL.TE with a whole request after the last chunk: refused, nothing upstream.
    let req = cat(&[
        &head(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"),
        b"0\r\n\r\n",
        &smuggled,
    ]);
    rig.refused("CL.TE hiding a request", &req, 400, "BadRequest", true);

    // A chunk size that swallows the terminator: the request behind is never parsed.
    let req = cat(&[
        &head(b"Transfer-Encoding: chunked\r\n"),
        b"5\r\n{}\r\n0\r\n\r\n",
        &smuggled,
    ]);
    rig.refused("chunk size hiding a request", &req, 400, "BadRequest", true);

    // Content-Length shorter than what follows: the first request goes upstream with its
    // two bytes, the rest is parsed as a next request, refused (400), connection closed.
    let before = rig.upstream();
    let req = cat(&[&head(b"Content-Length: 2\r\n"), b"{}", b"}", &smuggled]);
    let mut s = open(rig.addr());
    s.write_all(&req).unwrap();
    let mut pending = Vec::new();
    let r = read_response(&mut s, &mut pending).expect("first response");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains(&sha256_hex(b"{}")), "{}", r.text());
    let r = read_response(&mut s, &mut pending).expect("second response");
    check_error("garbage after a short Content-Length", &r, 400, "BadRequest");
    assert_closed("garbage after a short Content-Length", &mut s, &pending);
    assert_eq!(rig.upstream(), before + 1, "exactly one upstream request");
    rig.healthy("short Content-Length");

    // A chunked body that ends early: what follows is a next request in its own right
    // (pipelining), and exactly the two requests go upstream, each framed on its own.
    let before = rig.upstream();
    let first = body("first");
    let req = cat(&[&head(b"Transfer-Encoding: chunked\r\n"), &chunked(&first, 5), &smuggled]);
    let mut s = open(rig.addr());
    s.write_all(&req).unwrap();
    let mut pending = Vec::new();
    let r = read_response(&mut s, &mut pending).expect("first response");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains(&sha256_hex(&first)), "{}", r.text());
    let r = read_response(&mut s, &mut pending).expect("second response");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains(&sha256_hex(&body("smuggled"))), "{}", r.text());
    assert_eq!(rig.upstream(), before + 2, "exactly two upstream requests");
    rig.finish();
}

// ---------------------------------------------------------------------------------------
// Oversized input
// ---------------------------------------------------------------------------------------

#[test]
fn oversized_heads_uris_and_bodies() {
    let rig = Rig::new("hostile-oversized", &["--max-body-bytes", "4096"]);
    let a = rig.addr();
    let b = body("big");

    // Head over 16 KiB: one huge header, or many large ones (under 64 of them).
    let huge = vec![("X-Filler".to_string(), "a".repeat(17 * 1024))];
    rig.refused(
        "one 17 KiB header",
        &request(PATH, &[good_headers(), huge].concat(), &b),
        431,
        "RequestHeaderFieldsTooLarge",
        true,
    );
    let many_large: Vec<(String, String)> = (0..40).map(|i| (format!("X-F{i}"), "b".repeat(500))).collect();
    rig.refused(
        "40 headers of 500 bytes",
        &request(PATH, &[good_headers(), many_large].concat(), &b),
        431,
        "RequestHeaderFieldsTooLarge",
        true,
    );
    // A head of exactly 16 KiB is served, one byte more is not.
    let fit = |total: usize| {
        let probe = request(
            PATH,
            &[good_headers(), vec![("X-Filler".into(), String::new())]].concat(),
            &b,
        );
        let head_len = probe.len() - b.len();
        let pad = "p".repeat(total - head_len);
        let req = request(PATH, &[good_headers(), vec![("X-Filler".into(), pad)]].concat(), &b);
        assert_eq!(req.len() - b.len(), total);
        req
    };
    let r = send(a, &fit(16 * 1024)).0.expect("response");
    assert_eq!(r.status, 200, "a 16 KiB head: {}", r.text());
    rig.refused(
        "a 16 KiB + 1 head",
        &fit(16 * 1024 + 1),
        431,
        "RequestHeaderFieldsTooLarge",
        true,
    );

    // Header count: 64 lines in all are served, 65 are not (request() adds Host,
    // Content-Type and Content-Length to the four valid headers).
    let fillers = |n: usize| -> Vec<(String, String)> { (0..n).map(|i| (format!("X-N{i}"), "y".into())).collect() };
    let r = send(a, &request(PATH, &[good_headers(), fillers(57)].concat(), &b))
        .0
        .expect("response");
    assert_eq!(r.status, 200, "64 headers: {}", r.text());
    rig.refused(
        "65 headers",
        &request(PATH, &[good_headers(), fillers(58)].concat(), &b),
        431,
        "RequestHeaderFieldsTooLarge",
        true,
    );
    rig.refused(
        "300 tiny headers",
        format!("GET /healthz HTTP/1.1\r\nHost: p\r\n{}\r\n", "X: y\r\n".repeat(300)).as_bytes(),
        431,
        "RequestHeaderFieldsTooLarge",
        true,
    );

    // URI: 4096 bytes are served, 4097 are 414 (over 16 KiB: see uri_over_16_kib_is_414_however_it_arrives).
    let uri = |len: usize| {
        let base = "/healthz?pad=";
        format!("{base}{}", "u".repeat(len - base.len()))
    };
    let r = send(a, format!("GET {} HTTP/1.1\r\nHost: p\r\n\r\n", uri(4096)).as_bytes())
        .0
        .expect("response");
    assert_eq!(r.status, 200, "a 4096-byte URI: {}", r.text());
    rig.refused(
        "a 4097-byte URI",
        format!("GET {} HTTP/1.1\r\nHost: p\r\n\r\n", uri(4097)).as_bytes(),
        414,
        "UriTooLong",
        true,
    );
    let long_model = format!("/bedrock/model/{}/converse", "m".repeat(5000));
    rig.refused(
        "a 5000-byte model id",
        &request(&long_model, &good_headers(), &b),
        414,
        "UriTooLong",
        true,
    );

    // Body: exactly --max-body-bytes is served, one more byte is 413, by Content-Length
    // (answered before the body is read) and by a chunked body that grows past it.
    let exact = body_of_len(4096);
    let r = converse(a, MODEL, &good_headers(), &exact);
    assert_eq!(r.status, 200, "a 4096-byte body: {}", r.text());
    rig.refused(
        "Content-Length 4097",
        &request(PATH, &good_headers(), &body_of_len(4097)),
        413,
        "PayloadTooLarge",
        true,
    );
    rig.refused(
        "Content-Length of 19 digits",
        &cat(&[&head(b"Content-Length: 9999999999999999999\r\n"), &b]),
        413,
        "PayloadTooLarge",
        true,
    );
    let te = head(b"Transfer-Encoding: chunked\r\n");
    let r = send(a, &cat(&[&te, &chunked(&exact, 1000)])).0.expect("response");
    assert_eq!(r.status, 200, "a 4096-byte chunked body: {}", r.text());
    rig.refused(
        "chunked body growing to 4097",
        &cat(&[&te, &chunked(&body_of_len(4097), 1000)]),
        413,
        "PayloadTooLarge",
        true,
    );
    rig.refused(
        "one chunk declaring 8 KiB",
        &cat(&[&te, b"2000\r\n", &[b'x'; 100]]),
        413,
        "PayloadTooLarge",
        true,
    );
    // With Expect: 100-continue, a too-large body is refused before the client sends it:
    // no 100 Continue first.
    let mut s = open(a);
    s.write_all(&head(b"Expect: 100-continue\r\nContent-Length: 100000\r\n"))
        .unwrap();
    let got = read_to_close("Expect with a too-large body", &mut s);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 413 "), "{text}");
    assert!(text.contains("\"code\":\"PayloadTooLarge\""), "{text}");
    rig.healthy("Expect with a too-large body");
    rig.finish();
}

#[test]
fn uri_over_16_kib_is_414_however_it_arrives() {
    let rig = Rig::new("hostile-uri-16k", &[]);
    let req = format!("GET /healthz?pad={} HTTP/1.1\r\nHost: p\r\n\r\n", "u".repeat(20_000)).into_bytes();
    // Split after 17000 bytes: the proxy sees more than 16 KiB of request line first.
    let mut s = open(rig.addr());
    s.write_all(&req[..17_000]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let _ = s.write_all(&req[17_000..]);
    let mut pending = Vec::new();
    let r = read_response(&mut s, &mut pending).expect("response");
    check_error("a 20 KB request line, split", &r, 414, "UriTooLong");
    assert_closed("a 20 KB request line, split", &mut s, &pending);
    // In one write: the same answer.
    rig.refused("a 20 KB request line, whole", &req, 414, "UriTooLong", true);
    rig.finish();
}

#[test]
fn pipelined_flood_is_answered_in_order() {
    let rig = Rig::new("hostile-flood", &[]);
    // 500 requests in one write, the last one asking to close: 500 answers in order.
    let mut all = b"GET /healthz HTTP/1.1\r\nHost: p\r\n\r\n".repeat(499);
    all.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n");
    let mut s = open(rig.addr());
    s.write_all(&all).unwrap();
    let mut pending = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for i in 0..500 {
        let r = read_response(&mut s, &mut pending).unwrap_or_else(|| panic!("answer {i} missing"));
        assert_eq!(r.status, 200, "answer {i}: {}", r.text());
        assert!(ids.insert(r.header("x-request-id").unwrap().to_string()));
    }
    assert_closed("pipelined flood", &mut s, &pending);
    // A POST without any body framing (an underscore is not a dash): 411, and the chunked
    // bytes behind it never reach the upstream as a request.
    let before = rig.upstream();
    let smuggled = request(PATH, &good_headers(), &body("smuggled"));
    let req = cat(&[&head(b"Transfer_Encoding: chunked\r\n"), b"0\r\n\r\n", &smuggled]);
    let mut s = open(rig.addr());
    s.write_all(&req).unwrap();
    let mut pending = Vec::new();
    let r = read_response(&mut s, &mut pending).expect("response");
    check_error("Transfer_Encoding", &r, 411, "LengthRequired");
    let rest = [pending, read_to_close("Transfer_Encoding", &mut s)].concat();
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.is_empty(), "the connection closes after a 411: {rest}");
    assert_eq!(rig.upstream(), before, "the bytes behind a 411 reached the upstream");
    rig.healthy("Transfer_Encoding");
    rig.finish();
}

// ---------------------------------------------------------------------------------------
// Slow and half-open clients
// ---------------------------------------------------------------------------------------

#[test]
fn slowloris_is_cut_off_at_the_header_timeout_while_others_are_served() {
    let rig = Rig::new("hostile-slowloris", &[]);
    let addr = rig.addr();
    let done = AtomicBool::new(false);
    let done = &done;
    let (cut_after, slow_but_ok, served) = std::thread::scope(|sc| {
        // One header byte every 500 ms, a head that never ends.
        let loris = sc.spawn(move || {
            let mut s = connect(addr);
            s.set_read_timeout(Some(Duration::from_secs(16))).unwrap();
            let mut r = s.try_clone().unwrap();
            let start = Instant::now();
            let reader = sc.spawn(move || {
                let got = read_to_close("slowloris", &mut r);
                let t = start.elapsed();
                done.store(true, Ordering::SeqCst);
                (t, got)
            });
            let head = format!("POST {PATH} HTTP/1.1\r\nHost: p\r\nX-Slow: {}", "z".repeat(100));
            for byte in head.bytes() {
                if done.load(Ordering::SeqCst) || start.elapsed() > Duration::from_secs(14) {
                    break;
                }
                if s.write_all(&[byte]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            let joined = reader.join();
            done.store(true, Ordering::SeqCst);
            let (t, got) = joined.unwrap();
            let text = String::from_utf8_lossy(&got).into_owned();
            assert!(
                got.is_empty() || text.starts_with("HTTP/1.1 408 "),
                "slowloris answer: {text}"
            );
            t
        });
        // A slow client that finishes its head well within the timeout is served.
        let slow = sc.spawn(move || {
            let mut s = connect(addr);
            for byte in b"GET /healthz HTTP/1.1\r\nHost: p\r\nConnection: close\r\n\r\n" {
                s.write_all(&[*byte]).unwrap();
                std::thread::sleep(Duration::from_millis(100));
            }
            read_response(&mut s, &mut Vec::new()).map(|r| r.status)
        });
        // Meanwhile everybody else is served.
        let mut served = 0u64;
        let until = Instant::now() + Duration::from_secs(17);
        while !done.load(Ordering::SeqCst) && Instant::now() < until {
            let r = converse(addr, MODEL, &good_headers(), &body("meanwhile"));
            assert_eq!(r.status, 200, "{}", r.text());
            served += 1;
            std::thread::sleep(Duration::from_millis(250));
        }
        (loris.join().unwrap(), slow.join().unwrap(), served)
    });
    assert!(
        cut_after >= Duration::from_secs(9) && cut_after <= Duration::from_secs(13),
        "slowloris cut after {cut_after:?} (header timeout 10 s)"
    );
    assert_eq!(slow_but_ok, Some(200));
    assert!(served >= 5, "only {served} requests served meanwhile");
    assert_eq!(rig.upstream(), served, "only the normal requests reached the upstream");
    rig.healthy("slowloris");
    rig.finish();
}

#[test]
fn half_open_and_silent_clients() {
    let rig = Rig::new("hostile-half-open", &[]);
    let a = rig.addr();
    let before = rig.upstream();

    // Half a head, then the write side shut: closed, no answer needed.
    let mut s = open(a);
    s.write_all(b"POST /bedrock/model/amazon.nova-lite-v1:0/converse HTTP/1.1\r\nHost: p\r\nX-Clou")
        .unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let got = read_to_close("half a head", &mut s);
    let text = String::from_utf8_lossy(&got);
    assert!(got.is_empty() || text.starts_with("HTTP/1.1 400 "), "{text}");
    rig.healthy("half a head, write side shut");

    // A whole head, part of a Content-Length body, write side shut: 400 and closed.
    let mut s = open(a);
    s.write_all(&cat(&[&head(b"Content-Length: 100\r\n"), b"{\"messages\""]))
        .unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut pending = Vec::new();
    let r = read_response(&mut s, &mut pending).expect("response");
    check_error("half a body", &r, 400, "BadRequest");
    assert_closed("half a body", &mut s, &pending);
    rig.healthy("half a body, write side shut");

    // The same with a chunked body cut inside a chunk.
    let mut s = open(a);
    s.write_all(&cat(&[&head(b"Transfer-Encoding: chunked\r\n"), b"20\r\n{\"mess"]))
        .unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut pending = Vec::new();
    let r = read_response(&mut s, &mut pending).expect("response");
    check_error("half a chunk", &r, 400, "BadRequest");
    assert_closed("half a chunk", &mut s, &pending);
    rig.healthy("half a chunk, write side shut");

    // Nothing sent, write side shut: closed at once.
    let mut s = open(a);
    s.shutdown(Shutdown::Write).unwrap();
    assert!(read_to_close("silent half-close", &mut s).is_empty());
    rig.healthy("silent half-close");

    // Nothing sent, closed.
    drop(TcpStream::connect(a).unwrap());
    rig.healthy("connect and close");

    // A whole request, then the write side shut: still answered, then closed.
    let b = body("then half-closed");
    let mut s = open(a);
    s.write_all(&request(PATH, &good_headers(), &b)).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut pending = Vec::new();
    let r = read_response(&mut s, &mut pending).expect("response");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains(&sha256_hex(&b)), "{}", r.text());
    assert_closed("whole request then half-close", &mut s, &pending);

    // Only the healthy() calls and the last request went upstream.
    assert_eq!(rig.upstream(), before + 6);
    rig.finish();
}

#[test]
fn abandoned_connections_do_not_pile_up() {
    let rig = Rig::new("hostile-abandon", &[]);
    let a = rig.addr();
    let before = rig.upstream();
    // 200 connections with half a head, all held open at once: a normal call is served.
    let mut held: Vec<TcpStream> = (0..200)
        .map(|i| {
            let mut s = TcpStream::connect(a).unwrap();
            let part = if i % 2 == 0 {
                &b"POST /bedrock/model/amazon.nova-lite-v1:0/converse HTTP/1.1\r\nHost: p\r\nContent-Le"[..]
            } else {
                &b"POS"[..]
            };
            s.write_all(part).unwrap();
            s
        })
        .collect();
    // 100 more that send a whole head and half the body.
    for _ in 0..100 {
        let mut s = TcpStream::connect(a).unwrap();
        s.write_all(&cat(&[&head(b"Content-Length: 500\r\n"), b"{\"messages\":["]))
            .unwrap();
        held.push(s);
    }
    rig.healthy("300 half-sent connections held open");
    // All abandoned, plus 100 that connect and close at once.
    drop(held);
    for _ in 0..100 {
        drop(TcpStream::connect(a).unwrap());
    }
    // The proxy notices every close: open connections back to the one asking.
    let mut open_now = u64::MAX;
    let settled = wait_for(WAIT, || {
        open_now = metric(a, "llmops_client_connections_open");
        open_now == 1
    });
    assert!(settled, "{open_now} client connections still open");
    rig.healthy("400 abandoned connections");
    assert_eq!(rig.upstream(), before + 2, "abandoned requests reached the upstream");
    rig.finish();
}

// ---------------------------------------------------------------------------------------
// Attribution tags, regions, model ids
// ---------------------------------------------------------------------------------------

#[test]
fn hostile_attribution_tags_are_accepted() {
    let rig = Rig::new("hostile-tags", &[]);
    let long = "t".repeat(8000);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("invalid UTF-8", b"X-Department: \xff\xfe\xfd\r\n".to_vec()),
        ("truncated UTF-8 sequence", b"X-Project: eng\xc3\r\n".to_vec()),
        ("overlong UTF-8 slash", b"X-Agent: a\xc0\xafb\r\n".to_vec()),
        ("UTF-8 surrogate", b"X-Team: \xed\xa0\x80x\r\n".to_vec()),
        ("tab inside", b"X-Agent: a\tb\r\n".to_vec()),
        ("C1 controls", "X-Department: a\u{85}b\u{9b}31m\r\n".as_bytes().to_vec()),
        (
            "bidi override",
            "X-Project: \u{202e}gnireenigne\r\n".as_bytes().to_vec(),
        ),
        (
            "JSON and CSV metacharacters",
            b"X-Agent: \",\"}\\n{\"x\":1;DROP TABLE\r\n".to_vec(),
        ),
        ("8000 characters", format!("X-Department: {long}\r\n").into_bytes()),
        (
            "all at once",
            b"X-Department: \xff\r\nX-Project: \xc2\x85\r\nX-Team: \xc3\r\nX-Agent: \xf0\x9f\x92\r\n".to_vec(),
        ),
        (
            "empty values",
            b"X-Department: \r\nX-Project:\r\nX-Agent: \t\r\n".to_vec(),
        ),
    ];
    for (case, lines) in &cases {
        let before = rig.upstream();
        let b = body(case);
        let req = cat(&[
            &head(&cat(&[lines, format!("Content-Length: {}\r\n", b.len()).as_bytes()])),
            &b,
        ]);
        let r = send(rig.addr(), &req)
            .0
            .unwrap_or_else(|| panic!("{case}: no response"));
        assert_eq!(r.status, 200, "{case}: {}", r.text());
        assert!(r.text().contains(&sha256_hex(&b)), "{case}: {}", r.text());
        assert_eq!(rig.upstream(), before + 1, "{case}");
    }
    // C0 controls and DEL are not field-value bytes (RFC 9110 §5.5): malformed HTTP, so
    // 400 BadRequest from the parser, never a half-read tag.
    for (case, line) in [
        ("ESC in a tag", &b"X-Agent: a\x1b[31mb\r\n"[..]),
        ("SOH in a tag", &b"X-Project: a\x01b\r\n"[..]),
        ("DEL in a tag", &b"X-Department: a\x7fb\r\n"[..]),
    ] {
        let b = body(case);
        let req = cat(&[
            &head(&cat(&[line, format!("Content-Length: {}\r\n", b.len()).as_bytes()])),
            &b,
        ]);
        rig.refused(case, &req, 400, "BadRequest", true);
    }
    rig.finish();
}

#[test]
fn regions_that_would_move_the_upstream_host_are_refused() {
    let rig = Rig::new("hostile-region", &[]);
    let b = body("region");
    let long = "a".repeat(1000);
    let regions: Vec<&[u8]> = vec![
        b"us-east-1.evil.com",
        b"..",
        b"us-east-1@evil.com",
        b"us-east-1#frag",
        b"us-east-1/x",
        b"us-east-1:443",
        b"evil.com",
        b"",
        b"us-east-1?x=1",
        b"us-east-1 evil.com",
        b"us-east-1\t.evil.com",
        b"us-east-1.",
        b"127.0.0.1",
        b"localhost",
        b"us-east-1%2eevil.com",
        b"us-east-1\\evil.com",
        b"http://evil.com",
        b"evil.com/us-east-1",
        b"US-EAST-1",
        b"us-east-1\xff",
        b"\xc4\xb1s-east-1",
        long.as_bytes(),
    ];
    for region in regions {
        let case = format!("region {:?}", String::from_utf8_lossy(region));
        let lines = cat(&[
            b"X-Aws-Region: ",
            region,
            format!("\r\nContent-Length: {}\r\n", b.len()).as_bytes(),
        ]);
        let req = cat(&[&head_for(PATH, "X-Aws-Region", &lines), &b]);
        rig.refused(&case, &req, 400, "InvalidRegion", false);
    }
    // A valid region is served.
    let lines = format!("X-Aws-Region: eu-west-3\r\nContent-Length: {}\r\n", b.len());
    let r = send(
        rig.addr(),
        &cat(&[&head_for(PATH, "X-Aws-Region", lines.as_bytes()), &b]),
    )
    .0
    .expect("response");
    assert_eq!(r.status, 200, "{}", r.text());
    rig.finish();
}

#[test]
fn model_ids_that_escape_their_segment_are_refused() {
    let rig = Rig::new("hostile-model", &[]);
    let b = body("model");
    for model in [
        "..",
        "../x",
        "../../x",
        "amazon.nova-lite-v1:0/../../x",
        "x/./y",
        "%2E%2E",
        "%2e%2e",
        "%2E%2E%2F",
        "%2E%2E%2Fx",
        "..%2Fx",
        "x%2F..%2F..%2Fy",
        "%2E",
        "%252E%252E%252F",
        "%00",
        "amazon.nova%00x",
        "%2",
        "x%",
        "%zz",
        "%20",
        "a%20b",
        "x%0D%0AHost:%20evil.com",
        "a%3Fb",
        "a%23b",
        "a\\b",
        "a%5Cb",
        "a\"b",
        "a#b",
        "amazon.nova-\u{131}",
        "%C4%B1",
    ] {
        let path = format!("/bedrock/model/{model}/converse");
        rig.refused(
            &format!("model {model:?}"),
            &request(&path, &good_headers(), &b),
            400,
            "InvalidModelId",
            false,
        );
    }
    // A model id over 2048 characters that still fits the URI limit.
    let path = format!("/bedrock/model/{}/converse", "m".repeat(3000));
    rig.refused(
        "a 3000-character model id",
        &request(&path, &good_headers(), &b),
        400,
        "InvalidModelId",
        false,
    );
    // A raw space breaks the request line itself: malformed HTTP.
    rig.refused(
        "model with a raw space",
        &request("/bedrock/model/amazon nova/converse", &good_headers(), &b),
        400,
        "BadRequest",
        true,
    );
    rig.finish();
}
