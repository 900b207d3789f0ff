//! InvokeModel, InvokeModelWithResponseStream and CountTokens through the real binary
//! and the mock: the model-native body forwarded byte for byte, the answer relayed with
//! Bedrock's `x-amzn-bedrock-*` headers, the usage of every model family (headers, the
//! Anthropic cache-write split, the stream's invocation metrics) exact in the row, the
//! client's Bedrock headers forwarded and signed while its own signature stays behind, and
//! the errors recorded as for Converse.

// A test: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::io::Write;

use common::*;
use llmops_proxy::bedrock::eventstream::Decoder;
use llmops_proxy::mock::mock_usage;
use llmops_proxy::usage::read::read_dir;
use llmops_proxy::usage::UsageRecord;

const SONNET: &str = "anthropic.claude-sonnet-4-5-20250929-v1:0";

/// An Anthropic Messages body as `AnthropicBedrock` sends it, with the usage the mock
/// must report (the reference's worked example: 0.21681 USD at the geo rate).
fn anthropic_body(text: &str) -> Vec<u8> {
    format!(
        r#"{{"anthropic_version":"bedrock-2023-05-31","max_tokens":256,"messages":[{{"role":"user","content":[{{"type":"text","text":"{text}"}}]}}],"mock_usage":{{"input_tokens":1200,"output_tokens":2500,"cache_read_input_tokens":150000,"cache_creation":{{"ephemeral_5m_input_tokens":4000,"ephemeral_1h_input_tokens":16000}}}}}}"#
    )
    .into_bytes()
}

fn call(addr: std::net::SocketAddr, model: &str, op: &str, headers: &[(String, String)], body: &[u8]) -> Resp {
    raw(addr, &request(&format!("/bedrock/model/{model}/{op}"), headers, body)).expect("response")
}

/// The rows of a stopped proxy, by request id.
fn rows_of(p: &mut Proc, dir: &std::path::Path) -> Vec<UsageRecord> {
    assert_eq!(p.terminate(), Some(0), "{}", p.logs());
    read_dir(dir).unwrap()
}

fn row<'a>(rows: &'a [UsageRecord], r: &Resp) -> &'a UsageRecord {
    let id = r.header("x-request-id").unwrap();
    rows.iter().find(|x| x.request_id == id).unwrap()
}

/// The worked example's exact figures on a row.
fn assert_worked_example(r: &UsageRecord, what: &str) {
    assert_eq!(r.model_effective, format!("us.{SONNET}"), "{what}");
    assert_eq!(
        (
            r.input_tokens,
            r.output_tokens,
            r.cache_read_tokens,
            r.cache_write_tokens
        ),
        (Some(1200), Some(2500), Some(150_000), Some(20_000)),
        "{what}"
    );
    assert_eq!(r.total_tokens, Some(173_700), "{what}");
    assert_eq!(
        (r.cache_write_5m_tokens, r.cache_write_1h_tokens),
        (Some(4000), Some(16_000)),
        "{what}"
    );
    assert_eq!(
        r.cost_pico_usd,
        Some(216_810_000_000),
        "{what}: {:?}",
        r.cost_flags.to_column()
    );
    assert_eq!(r.price_id.as_deref(), Some(SONNET), "{what}");
    assert_eq!(r.stop_reason.as_deref(), Some("end_turn"), "{what}");
    assert!(
        !r.cost_flags
            .to_column()
            .unwrap_or_default()
            .contains("cache_ttl_assumed"),
        "{what}"
    );
}

#[test]
fn invoke_relays_the_native_body_and_prices_the_anthropic_usage_exactly() {
    let m = mock();
    let dir = temp_dir("invoke-anthropic");
    let mut p = proxy(m.addr, &dir, &[]);
    let b = anthropic_body(PROMPT);
    let r = call(p.addr, SONNET, "invoke", &good_headers(), &b);
    assert_eq!(r.status, 200, "{}", r.text());
    // Byte for byte: the mock's answer names the SHA-256 of the body it received.
    assert!(r.text().contains(&sha256_hex(&b)), "{}", r.text());
    assert!(r.text().contains("\"type\":\"message\""), "{}", r.text());
    assert_eq!(r.header("x-amzn-bedrock-input-token-count"), Some("1200"));
    assert_eq!(r.header("x-amzn-bedrock-output-token-count"), Some("2500"));
    assert_eq!(r.header("x-amzn-bedrock-cache-write-input-token-count"), Some("20000"));
    assert_eq!(r.header("x-llmops-cost-usd"), Some("0.216810"));
    assert_eq!(r.header("x-llmops-input-tokens"), Some("1200"));

    // The stream: chunk events relayed intact, the same usage from the last chunk.
    let r2 = call(p.addr, SONNET, "invoke-with-response-stream", &good_headers(), &b);
    assert_eq!(r2.status, 200, "{}", r2.text());
    assert_eq!(r2.header("content-type"), Some("application/vnd.amazon.eventstream"));
    assert_eq!(r2.header("x-amzn-bedrock-content-type"), Some("application/json"));
    let mut d = Decoder::new();
    d.feed(&r2.body).unwrap();
    assert_eq!(d.pending_bytes(), 0);
    let mut chunks = 0;
    while let Some(f) = d.next_frame() {
        assert_eq!(f.event_type(), Some("chunk"));
        assert!(String::from_utf8_lossy(&f.payload).starts_with("{\"bytes\":\""));
        chunks += 1;
    }
    assert_eq!(chunks, 8);

    let rows = rows_of(&mut p, &dir);
    let (a, s) = (row(&rows, &r), row(&rows, &r2));
    assert_eq!(a.operation, "invoke");
    assert_eq!(s.operation, "invoke-stream");
    assert_worked_example(a, "invoke");
    assert_worked_example(s, "invoke-stream");
    assert_eq!(a.request_bytes, b.len() as i64);
    assert_eq!(a.response_bytes, r.body.len() as i64);
    assert_eq!(s.response_bytes, r2.body.len() as i64);
    assert_eq!(a.provider_latency_ms, Some(mock_usage(b.len()).2));
    // Nothing of the prompt or the credentials is stored.
    let files = std::fs::read_dir(&dir).unwrap().count();
    assert!(files > 0);
    let dump = format!("{rows:?}");
    for secret in [PROMPT, SECRET, AKID] {
        assert!(!dump.contains(secret), "a row holds {secret}");
    }
    assert!(!p.logs().contains(PROMPT) && !p.logs().contains(SECRET));
}

#[test]
fn usage_of_every_family_comes_from_bedrocks_headers() {
    let m = mock();
    let dir = temp_dir("invoke-families");
    let mut p = proxy(m.addr, &dir, &[]);
    let llama = br#"{"prompt":"hello there","max_gen_len":64}"#.to_vec();
    let nova = br#"{"messages":[{"role":"user","content":[{"text":"hello"}]}]}"#.to_vec();
    let rl = call(
        p.addr,
        "meta.llama3-1-8b-instruct-v1:0",
        "invoke",
        &good_headers(),
        &llama,
    );
    assert_eq!(rl.status, 200, "{}", rl.text());
    assert!(rl.text().contains("generation_token_count"), "{}", rl.text());
    let rn = call(p.addr, "amazon.nova-lite-v1:0", "invoke", &good_headers(), &nova);
    assert_eq!(rn.status, 200, "{}", rn.text());
    // A family the proxy cannot read the body of: the headers alone.
    let rs = call(
        p.addr,
        "meta.llama3-1-8b-instruct-v1:0",
        "invoke-with-response-stream",
        &good_headers(),
        &llama,
    );
    assert_eq!(rs.status, 200);
    let rows = rows_of(&mut p, &dir);
    for (r, b, model) in [
        (&rl, &llama, "us.meta.llama3-1-8b-instruct-v1:0"),
        (&rn, &nova, "amazon.nova-lite-v1:0"),
        (&rs, &llama, "us.meta.llama3-1-8b-instruct-v1:0"),
    ] {
        let x = row(&rows, r);
        let (i, o, _) = mock_usage(b.len());
        assert_eq!(x.model_effective, model);
        assert_eq!((x.input_tokens, x.output_tokens), (Some(i), Some(o)), "{model}");
        assert_eq!(x.total_tokens, Some(i + o), "{model}");
        assert!(
            x.cost_pico_usd.is_some_and(|c| c > 0),
            "{model}: {:?}",
            x.cost_flags.to_column()
        );
    }
    // Nova lite: 0.06 / 0.24 per million tokens, exact.
    let x = row(&rows, &rn);
    let (i, o, _) = mock_usage(nova.len());
    assert_eq!(x.cost_pico_usd, Some(i as i128 * 60_000 + o as i128 * 240_000));
}

#[test]
fn bedrock_headers_are_forwarded_and_signed_and_the_clients_signature_stays_behind() {
    let rig = Rig::new("invoke-headers", &[]);
    let b = anthropic_body("tiers");
    let h = Headers::good()
        .set("X-Amzn-Bedrock-Service-Tier", "priority")
        .set("X-Amzn-Bedrock-PerformanceConfig-Latency", "standard")
        .set("X-Amzn-Bedrock-Trace", "ENABLED")
        .set("Accept", "application/json")
        // What an SDK that signs for itself (AnthropicBedrock, boto3) also sends.
        .set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDCLIENT/20260101/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=00")
        .set("X-Amz-Date", "20260101T000000Z")
        .set("X-Amz-Security-Token", "client-token")
        .set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
        .vec();
    let r = call(rig.addr(), SONNET, "invoke", &h, &b);
    assert_eq!(r.status, 200, "{}", r.text());
    // Bedrock reports the tier it served: the forwarded header reached it.
    assert_eq!(r.header("x-amzn-bedrock-service-tier"), Some("priority"));
    let s = call(rig.addr(), SONNET, "invoke-with-response-stream", &h, &b);
    assert_eq!(s.status, 200, "{}", s.text());
    assert_eq!(s.header("x-amzn-bedrock-service-tier"), Some("priority"));

    // Sent twice, a billing header is refused before anything goes upstream.
    let before = rig.upstream();
    let twice = Headers::good()
        .add("X-Amzn-Bedrock-Service-Tier", "flex")
        .add("x-amzn-bedrock-service-tier", "priority")
        .vec();
    let r = call(rig.addr(), SONNET, "invoke", &twice, &b);
    assert_eq!(r.status, 400);
    assert_eq!(r.code().as_deref(), Some("BadRequest"));
    assert!(r.text().contains("X-Amzn-Bedrock-Service-Tier"), "{}", r.text());
    assert_eq!(rig.upstream(), before);
    // The mock refuses a second Authorization, an unsigned Bedrock header or a leaked
    // client header: none happened.
    rig.finish();
}

#[test]
fn the_tier_asked_for_in_the_header_prices_the_call() {
    let m = mock();
    let dir = temp_dir("invoke-tier");
    let mut p = proxy(m.addr, &dir, &[]);
    let b = br#"{"messages":[{"role":"user","content":[{"text":"tier"}]}]}"#;
    let nova = "amazon.nova-pro-v1:0";
    let std = call(p.addr, nova, "invoke", &good_headers(), b);
    let h = Headers::good().set("X-Amzn-Bedrock-Service-Tier", "priority").vec();
    let pri = call(p.addr, nova, "invoke", &h, b);
    // Claude on demand has no priority tier: unknown, never guessed.
    let claude = call(p.addr, SONNET, "invoke", &h, &anthropic_body("tier"));
    assert_eq!((std.status, pri.status, claude.status), (200, 200, 200));
    let rows = rows_of(&mut p, &dir);
    let (a, b, c) = (row(&rows, &std), row(&rows, &pri), row(&rows, &claude));
    assert_eq!(b.service_tier.map(|t| t.as_str()), Some("priority"));
    let (ca, cb) = (a.cost_pico_usd.unwrap(), b.cost_pico_usd.unwrap());
    // Priority is 1.75x the standard price.
    assert_eq!(ca * 7, cb * 4, "standard {ca}, priority {cb}");
    assert_eq!(c.cost_pico_usd, None);
    assert!(
        c.cost_flags.to_column().unwrap().contains("tier_unpriced"),
        "{:?}",
        c.cost_flags.to_column()
    );
}

#[test]
fn count_tokens_is_relayed_and_recorded_as_not_billed() {
    let m = mock();
    let dir = temp_dir("invoke-count");
    let mut p = proxy(m.addr, &dir, &[]);
    let inner = anthropic_body("count me");
    let mut b64 = Vec::new();
    llmops_proxy::util::base64::encode_into(&inner, &mut b64);
    let b = format!(
        "{{\"input\":{{\"invokeModel\":{{\"body\":\"{}\"}}}}}}",
        String::from_utf8_lossy(&b64)
    );
    let r = call(p.addr, SONNET, "count-tokens", &good_headers(), b.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), format!("{{\"inputTokens\":{}}}", mock_usage(inner.len()).0));
    let rows = rows_of(&mut p, &dir);
    let x = row(&rows, &r);
    assert_eq!(x.operation, "count-tokens");
    assert_eq!(x.cost_pico_usd, Some(0));
    assert_eq!(x.cost_flags.to_column().as_deref(), Some("not_billed"));
    assert_eq!((x.input_tokens, x.output_tokens), (None, None));
}

#[test]
fn invoke_errors_are_relayed_and_recorded() {
    let m = mock();
    let dir = temp_dir("invoke-errors");
    let mut p = proxy(m.addr, &dir, &[]);
    let b = anthropic_body("errors");
    let throttled = call(p.addr, "mock.throttle", "invoke", &good_headers(), &b);
    assert_eq!(throttled.status, 429);
    assert!(throttled.text().contains("Too many requests"));
    // An Anthropic body without `anthropic_version`: Bedrock's ValidationException.
    let bad = br#"{"max_tokens":5,"messages":[]}"#;
    let invalid = call(p.addr, SONNET, "invoke", &good_headers(), bad);
    assert_eq!(invalid.status, 400, "{}", invalid.text());
    assert!(invalid.text().contains("anthropic_version"));
    // An exception event mid-stream.
    let mut s = connect(p.addr);
    s.write_all(&request(
        "/bedrock/model/anthropic.mock.stream-error/invoke-with-response-stream",
        &good_headers(),
        &b,
    ))
    .unwrap();
    let streamed = read_response(&mut s, &mut Vec::new()).unwrap();
    assert_eq!(streamed.status, 200);
    let rows = rows_of(&mut p, &dir);
    let t = row(&rows, &throttled);
    assert_eq!((t.status, t.error_type.as_deref()), (429, Some("ThrottlingException")));
    assert_eq!(t.cost_pico_usd, None);
    let v = row(&rows, &invalid);
    assert_eq!(v.error_type.as_deref(), Some("ValidationException"));
    let e = row(&rows, &streamed);
    assert_eq!(e.operation, "invoke-stream");
    assert_eq!(e.error_type.as_deref(), Some("throttlingException"));
    // The message_start chunk had reported the input before the exception.
    assert_eq!(e.input_tokens, Some(1200));
}

#[test]
fn the_invoke_stream_is_relayed_as_it_arrives() {
    let m = mock();
    let dir = temp_dir("invoke-incremental");
    let mut p = proxy(m.addr, &dir, &[]);
    // The mock pauses 300 ms between its 8 chunks. A client that reads the first bytes and
    // leaves makes the mock's write fail mid-stream: only possible if those bytes were
    // relayed before the upstream had sent its last chunk.
    let mut s = connect(p.addr);
    s.write_all(&request(
        "/bedrock/model/anthropic.mock.pause-300/invoke-with-response-stream",
        &good_headers(),
        &anthropic_body("incremental"),
    ))
    .unwrap();
    let mut some = [0u8; 64];
    let n = std::io::Read::read(&mut s, &mut some).unwrap();
    assert!(n > 0);
    drop(s);
    assert!(
        wait_for(std::time::Duration::from_secs(10), || stat(
            &mock_stats(m.addr),
            "stream_aborts"
        ) == 1),
        "the upstream stream was not abandoned: {}",
        mock_stats(m.addr)
    );
    let rows = rows_of(&mut p, &dir);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].error_type.as_deref(), Some("ClientDisconnected"));
    // The first chunk (message_start) had reported the input tokens.
    assert_eq!(rows[0].input_tokens, Some(1200));
}
