//! ConverseStream: the event stream is relayed as it arrives (first event before the
//! mock sends the last), bytes intact (every frame decodes with valid CRCs), usage from
//! the `metadata` event lands in the row, exceptions are recorded, and a client that
//! disconnects mid-stream stops the upstream read.

// A test: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;
use llmops_proxy::bedrock::eventstream::Decoder;
use llmops_proxy::mock::mock_usage;
use llmops_proxy::usage::read::read_dir;

fn stream_request(model: &str, b: &[u8]) -> Vec<u8> {
    request(&format!("/bedrock/model/{model}/converse-stream"), &good_headers(), b)
}

fn frames_of(body: &[u8]) -> Vec<(String, String)> {
    let mut d = Decoder::new();
    d.feed(body).expect("valid event stream");
    assert_eq!(d.pending_bytes(), 0, "no partial frame at the end");
    let mut out = Vec::new();
    while let Some(f) = d.next_frame() {
        let kind = f.event_type().or(f.exception_type()).unwrap_or("?").to_string();
        out.push((kind, String::from_utf8_lossy(&f.payload).into_owned()));
    }
    out
}

#[test]
fn stream_relayed_incrementally_with_usage_and_errors() {
    let m = mock();
    let dir = temp_dir("stream");
    let mut p = proxy(m.addr, &dir, &[]);
    let b = body("stream me");

    // Whole stream, no pauses.
    let mut s = connect(p.addr);
    s.write_all(&stream_request("amazon.nova-lite-v1:0", &b)).unwrap();
    let r = read_response(&mut s, &mut Vec::new()).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/vnd.amazon.eventstream"));
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    let frames = frames_of(&r.body);
    let kinds: Vec<&str> = frames.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "messageStart",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockStop",
            "messageStop",
            "metadata"
        ]
    );
    let text: String = frames.iter().map(|f| f.1.clone()).collect();
    assert!(text.contains(&sha256_hex(&b)), "mock saw the body byte for byte");
    let id_whole = r.header("x-request-id").unwrap().to_string();

    // Paused stream: the first event arrives long before the last is sent.
    let mut s = connect(p.addr);
    let t0 = Instant::now();
    s.write_all(&stream_request("mock.pause-300", &b)).unwrap();
    let mut first = [0u8; 1];
    s.read_exact(&mut first).unwrap();
    let first_at = t0.elapsed();
    let mut pending = first.to_vec();
    let r = read_response(&mut s, &mut pending).unwrap();
    let total = t0.elapsed();
    assert_eq!(r.status, 200);
    assert_eq!(frames_of(&r.body).len(), 7);
    assert!(first_at < Duration::from_millis(900), "first byte after {first_at:?}");
    assert!(total >= Duration::from_millis(1700), "whole stream took {total:?}");

    // An exception event mid-stream.
    let mut s = connect(p.addr);
    s.write_all(&stream_request("mock.stream-error", &b)).unwrap();
    let r = read_response(&mut s, &mut Vec::new()).unwrap();
    let kinds: Vec<String> = frames_of(&r.body).into_iter().map(|f| f.0).collect();
    assert_eq!(kinds, ["messageStart", "throttlingException"]);
    let id_exc = r.header("x-request-id").unwrap().to_string();

    // A client that leaves mid-stream.
    let mut s = connect(p.addr);
    s.write_all(&stream_request("mock.pause-300", &b)).unwrap();
    let mut some = [0u8; 64];
    let n = s.read(&mut some).unwrap();
    assert!(n > 0);
    drop(s);
    assert!(
        wait_for(Duration::from_secs(5), || stat(&mock_stats(m.addr), "stream_aborts")
            == 1),
        "upstream stream not abandoned: {}",
        mock_stats(m.addr)
    );

    assert_eq!(p.terminate(), Some(0));
    let rows = read_dir(&dir).unwrap();
    assert_eq!(rows.len(), 4);
    let whole = rows.iter().find(|r| r.request_id == id_whole).unwrap();
    let (i, o, lat) = mock_usage(b.len());
    assert_eq!(whole.operation, "converse-stream");
    assert_eq!(
        (whole.input_tokens, whole.output_tokens, whole.total_tokens),
        (Some(i), Some(o), Some(i + o))
    );
    assert_eq!(whole.provider_latency_ms, Some(lat));
    assert_eq!(whole.stop_reason.as_deref(), Some("end_turn"));
    assert_eq!(whole.cost_pico_usd, Some(i as i128 * 60_000 + o as i128 * 240_000));
    assert!(whole.error_type.is_none());
    assert!(whole.upstream_ttfb_ms.is_some() && whole.response_bytes > 0);
    let exc = rows.iter().find(|r| r.request_id == id_exc).unwrap();
    assert_eq!(exc.error_type.as_deref(), Some("throttlingException"));
    assert!(exc.error_message.as_deref().unwrap().contains("Too many tokens"));
    let gone = rows
        .iter()
        .filter(|r| r.error_type.as_deref() == Some("ClientDisconnected"))
        .count();
    assert_eq!(gone, 1);
}
