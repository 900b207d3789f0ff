//! The mock's InvokeModel family, answered as Bedrock does: InvokeModel with the model's
//! native body (Anthropic Messages for `anthropic.` models, Llama's for `meta.`, Nova's
//! Converse-like one otherwise) and the usage in `X-Amzn-Bedrock-*` headers;
//! InvokeModelWithResponseStream as `chunk` events whose payload is `{"bytes": base64
//! JSON}` (Anthropic's `message_start` ... `message_stop`, the last with
//! `amazon-bedrock-invocationMetrics`); CountTokens (`{"inputTokens": n}`, not billed).
//!
//! Usage is deterministic: input and output tokens from the body length
//! ([`super::mock_usage`]); each `cache_control` marker of the body writes
//! [`CACHE_TOKENS_PER_MARKER`] tokens, at the one-hour TTL when the body asks for
//! `"ttl":"1h"` that many times, else five minutes; `mock.cache` models also read 7. A
//! test can state the usage exactly with a top-level `mock_usage` object (Anthropic's
//! field names), which a real Bedrock would refuse.

use simd_json::prelude::*;

use super::{aws_error, json_bytes, mock_usage, Behaviour, Reply};
use crate::bedrock::eventstream::{event_frame, exception_frame};
use crate::http::head::{push_json_str, HeadWriter};
use crate::http::request::RequestHead;
use crate::util::{base64, hex};

/// Cache-write tokens the mock reports per `cache_control` marker of a request body.
pub(crate) const CACHE_TOKENS_PER_MARKER: i64 = 1024;

/// The usage of one InvokeModel call, in Anthropic's terms.
#[derive(Debug, Clone, Copy, Default)]
struct Tokens {
    input: i64,
    output: i64,
    cache_read: i64,
    write_5m: i64,
    write_1h: i64,
    latency: i64,
}

impl Tokens {
    fn cache_write(&self) -> i64 {
        self.write_5m + self.write_1h
    }

    fn of_request(body: &[u8], beh: &Behaviour) -> Tokens {
        let (input, output, latency) = mock_usage(body.len());
        let count = |needle: &[u8]| memchr::memmem::find_iter(body, needle).count() as i64;
        let markers = count(b"\"cache_control\"");
        let hour = count(b"\"ttl\":\"1h\"").min(markers);
        let mut t = Tokens {
            input,
            output,
            cache_read: if *beh == Behaviour::Cache { 7 } else { 0 },
            write_5m: (markers - hour) * CACHE_TOKENS_PER_MARKER,
            write_1h: hour * CACHE_TOKENS_PER_MARKER,
            latency,
        };
        let mut scratch = body.to_vec();
        if let Ok(v) = simd_json::to_borrowed_value(&mut scratch) {
            if let Some(o) = v.get("mock_usage") {
                let f = |k: &str, d: i64| o.get(k).and_then(|x| x.as_i64()).unwrap_or(d);
                t.input = f("input_tokens", t.input);
                t.output = f("output_tokens", t.output);
                t.cache_read = f("cache_read_input_tokens", t.cache_read);
                let split = o.get("cache_creation");
                let g = |k: &str, d: i64| split.and_then(|s| s.get(k)).and_then(|x| x.as_i64()).unwrap_or(d);
                t.write_5m = g("ephemeral_5m_input_tokens", t.write_5m);
                t.write_1h = g("ephemeral_1h_input_tokens", t.write_1h);
            }
        }
        t
    }

    /// Anthropic's `usage` object.
    fn anthropic_json(&self, output: i64) -> String {
        format!(
            "{{\"input_tokens\":{},\"cache_creation_input_tokens\":{},\"cache_read_input_tokens\":{},\"output_tokens\":{output},\"cache_creation\":{{\"ephemeral_5m_input_tokens\":{},\"ephemeral_1h_input_tokens\":{}}}}}",
            self.input,
            self.cache_write(),
            self.cache_read,
            self.write_5m,
            self.write_1h
        )
    }
}

/// The model family whose native body the mock speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Anthropic,
    Llama,
    Nova,
}

fn family(model: &str) -> Family {
    if model.contains("anthropic.") {
        Family::Anthropic
    } else if model.contains("meta.") {
        Family::Llama
    } else {
        Family::Nova
    }
}

/// The error AWS answers for a body the model does not accept, if any: Anthropic bodies
/// need `anthropic_version`, `max_tokens` and `messages`.
fn invalid_body(model: &str, body: &[u8], rid: &str) -> Option<Reply> {
    let mut scratch = body.to_vec();
    let bad = |m: &str| Some(aws_error(400, "ValidationException", m, rid));
    let Ok(v) = simd_json::to_borrowed_value(&mut scratch) else {
        return bad("Malformed input request, please reformat your input and try again.");
    };
    if family(model) == Family::Anthropic {
        for required in ["anthropic_version", "max_tokens", "messages"] {
            if v.get(required).is_none() {
                return bad(&format!("Malformed input request: #: required key [{required}] not found, please reformat your input and try again."));
            }
        }
    }
    None
}

/// The tier and latency headers AWS reports: what the request asked for.
fn echo_headers(req: &RequestHead, w: &mut HeadWriter<'_>) {
    for name in [
        "X-Amzn-Bedrock-Service-Tier",
        "X-Amzn-Bedrock-PerformanceConfig-Latency",
    ] {
        if let Some(v) = req.header(name) {
            w.header(name, v);
        }
    }
}

/// An InvokeModel answer.
pub(super) fn invoke_reply(req: &RequestHead, model: &str, body: &[u8], beh: &Behaviour, rid: &str) -> Reply {
    if let Some(r) = invalid_body(model, body, rid) {
        return r;
    }
    let t = Tokens::of_request(body, beh);
    let digest = hex::encode(ring::digest::digest(&ring::digest::SHA256, body).as_ref());
    let text = format!("mock reply from {model}; request body sha256 {digest}");
    let mut b = Vec::with_capacity(512);
    match family(model) {
        Family::Anthropic => {
            b.extend_from_slice(b"{\"id\":\"msg_bdrk_mock\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"");
            push_json_str(&mut b, model);
            b.extend_from_slice(b"\",\"content\":[{\"type\":\"text\",\"text\":\"");
            push_json_str(&mut b, &text);
            b.extend_from_slice(b"\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null");
            if *beh != Behaviour::NoUsage {
                b.extend_from_slice(format!(",\"usage\":{}", t.anthropic_json(t.output)).as_bytes());
            }
            b.push(b'}');
        }
        Family::Llama => {
            b.extend_from_slice(b"{\"generation\":\"");
            push_json_str(&mut b, &text);
            b.extend_from_slice(
                format!(
                    "\",\"prompt_token_count\":{},\"generation_token_count\":{},\"stop_reason\":\"stop\"}}",
                    t.input, t.output
                )
                .as_bytes(),
            );
        }
        Family::Nova => {
            b.extend_from_slice(b"{\"output\":{\"message\":{\"content\":[{\"text\":\"");
            push_json_str(&mut b, &text);
            b.extend_from_slice(
                format!(
                    "\"}}],\"role\":\"assistant\"}}}},\"stopReason\":\"end_turn\",\"usage\":{{\"inputTokens\":{},\"outputTokens\":{},\"totalTokens\":{}}}}}",
                    t.input,
                    t.output,
                    t.input + t.output
                )
                .as_bytes(),
            );
        }
    }
    if *beh == Behaviour::BadJson {
        b.truncate(b.len() / 2);
    }
    let mut out = Vec::with_capacity(b.len() + 512);
    let mut w = HeadWriter::new(&mut out, 200);
    w.header("content-type", b"application/json")
        .header("x-amzn-RequestId", rid.as_bytes());
    if *beh != Behaviour::NoUsage {
        w.header("X-Amzn-Bedrock-Invocation-Latency", t.latency.to_string().as_bytes())
            .header("X-Amzn-Bedrock-Output-Token-Count", t.output.to_string().as_bytes())
            .header("X-Amzn-Bedrock-Input-Token-Count", t.input.to_string().as_bytes());
        if t.cache_read > 0 || t.cache_write() > 0 {
            w.header(
                "X-Amzn-Bedrock-Cache-Read-Input-Token-Count",
                t.cache_read.to_string().as_bytes(),
            )
            .header(
                "X-Amzn-Bedrock-Cache-Write-Input-Token-Count",
                t.cache_write().to_string().as_bytes(),
            );
        }
    }
    echo_headers(req, &mut w);
    w.header_u64("content-length", b.len() as u64).finish(false);
    out.extend_from_slice(&b);
    Reply::Whole(out)
}

/// One `chunk` event holding `json`.
fn chunk(json: &str) -> Vec<u8> {
    let mut p = b"{\"bytes\":\"".to_vec();
    base64::encode_into(json.as_bytes(), &mut p);
    p.extend_from_slice(b"\",\"p\":\"abcdefghij\"}");
    event_frame("chunk", &p)
}

/// An InvokeModelWithResponseStream answer: Anthropic's stream events as chunks (other
/// families get the same events; the mock speaks one stream shape).
pub(super) fn stream_reply(req: &RequestHead, model: &str, body: &[u8], beh: &Behaviour, rid: &str) -> Reply {
    if let Some(r) = invalid_body(model, body, rid) {
        return r;
    }
    let t = Tokens::of_request(body, beh);
    let digest = hex::encode(ring::digest::digest(&ring::digest::SHA256, body).as_ref());
    let mut frames = Vec::new();
    let mut start = String::from("{\"type\":\"message_start\",\"message\":{\"id\":\"msg_bdrk_mock\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"");
    let mut m = Vec::new();
    push_json_str(&mut m, model);
    start.push_str(&String::from_utf8_lossy(&m));
    start.push_str(&format!(
        "\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{}}}}}",
        t.anthropic_json(1)
    ));
    frames.push(chunk(&start));
    if *beh == Behaviour::StreamError {
        frames.push(exception_frame(
            "throttlingException",
            br#"{"message":"Too many tokens, please wait before trying again."}"#,
        ));
    } else {
        frames.push(chunk(
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        ));
        for part in [
            format!("mock stream from {model}; "),
            "request body sha256 ".into(),
            digest,
        ] {
            let mut p = Vec::new();
            push_json_str(&mut p, &part);
            frames.push(chunk(&format!(
                "{{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{}\"}}}}",
                String::from_utf8_lossy(&p)
            )));
        }
        frames.push(chunk(r#"{"type":"content_block_stop","index":0}"#));
        frames.push(chunk(&format!(
            "{{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"end_turn\",\"stop_sequence\":null}},\"usage\":{{\"output_tokens\":{}}}}}",
            t.output
        )));
        if *beh == Behaviour::NoUsage {
            frames.push(chunk(r#"{"type":"message_stop"}"#));
        } else {
            frames.push(chunk(&format!(
                "{{\"type\":\"message_stop\",\"amazon-bedrock-invocationMetrics\":{{\"inputTokenCount\":{},\"outputTokenCount\":{},\"invocationLatency\":{},\"firstByteLatency\":{},\"cacheReadInputTokenCount\":{},\"cacheWriteInputTokenCount\":{}}}}}",
                t.input,
                t.output,
                t.latency,
                t.latency / 2,
                t.cache_read,
                t.cache_write()
            )));
        }
    }
    let mut head = Vec::with_capacity(256);
    let mut w = HeadWriter::new(&mut head, 200);
    w.header("content-type", b"application/vnd.amazon.eventstream")
        .header("x-amzn-RequestId", rid.as_bytes())
        .header("X-Amzn-Bedrock-Content-Type", b"application/json");
    echo_headers(req, &mut w);
    w.header("transfer-encoding", b"chunked").finish(false);
    let pause = match beh {
        Behaviour::Pause(ms) => std::time::Duration::from_millis(*ms),
        _ => std::time::Duration::ZERO,
    };
    Reply::Stream { head, frames, pause }
}

/// A CountTokens answer: `{"inputTokens": n}` for the request inside `input` (an
/// `invokeModel.body`, base64 as botocore sends a blob, or a `converse` request).
pub(super) fn count_tokens_reply(body: &[u8], rid: &str) -> Reply {
    let mut scratch = body.to_vec();
    let bad = || {
        aws_error(
            400,
            "ValidationException",
            "input: an invokeModel or converse request is required",
            rid,
        )
    };
    let Ok(v) = simd_json::to_borrowed_value(&mut scratch) else {
        return bad();
    };
    let Some(input) = v.get("input") else {
        return bad();
    };
    let len = if let Some(b) = input
        .get("invokeModel")
        .and_then(|i| i.get("body"))
        .and_then(|b| b.as_str())
    {
        let mut inner = Vec::new();
        match base64::decode_into(b.as_bytes(), &mut inner) {
            Ok(()) => inner.len(),
            Err(_) => b.len(),
        }
    } else if let Some(c) = input.get("converse") {
        c.encode().len()
    } else {
        return bad();
    };
    let body = format!("{{\"inputTokens\":{}}}", mock_usage(len).0);
    Reply::Whole(json_bytes(200, None, rid, body.as_bytes()))
}
