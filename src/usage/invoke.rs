//! Usage of the InvokeModel family. Bedrock meters every model family in the
//! `x-amzn-bedrock-*` headers of an InvokeModel answer (token counts, invocation latency,
//! the tier and latency mode served) and, for InvokeModelWithResponseStream, in the last
//! `chunk` event's `amazon-bedrock-invocationMetrics`; those are what it bills, so they win
//! over the body's own counts. The model-native body adds what the headers lack: for
//! Anthropic Messages bodies the cache-write split (`usage.cache_creation`:
//! `ephemeral_5m_input_tokens`, `ephemeral_1h_input_tokens`) and `stop_reason`; Nova's
//! (Converse-shaped) and Llama's fields are read too. A stream chunk's payload is
//! `{"bytes":"<base64 JSON>"}`: the JSON is decoded into the scanner's own buffer and
//! parsed only when it can hold usage, so text deltas cost one base64 pass.

use super::scan::{tape_int, tape_str, usage_from_tape, Scanner, TapeValue, Usage, MAX_STOP_REASON};
use crate::http::response::ResponseHead;
use crate::pricing::{Latency, Tier};

/// The usage Bedrock reported in an InvokeModel answer's headers.
pub(crate) fn header_usage(head: &ResponseHead) -> Usage {
    let int = |suffix: &str| {
        head.bedrock_header(suffix)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|s| s.trim().parse::<i64>().ok())
            .filter(|n| *n >= 0)
    };
    let name = |suffix: &str| {
        head.bedrock_header(suffix)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(|s| s.trim().to_ascii_lowercase())
    };
    let mut u = Usage::default();
    u.metered.input = int("input-token-count");
    u.metered.output = int("output-token-count");
    u.metered.cache_read = int("cache-read-input-token-count");
    u.metered.cache_write = int("cache-write-input-token-count");
    u.latency_ms = int("invocation-latency");
    u.tier = name("service-tier").as_deref().and_then(Tier::parse);
    u.latency = name("performanceconfig-latency").as_deref().and_then(Latency::parse);
    u
}

/// Sets `total_tokens` (as Converse counts it: input, output and cache tokens) when the
/// answer did not report it.
pub fn fill_total(u: &mut Usage) {
    if u.total_tokens.is_some() {
        return;
    }
    let m = &u.metered;
    let parts = [m.input, m.output, m.cache_read, m.cache_write];
    if parts.iter().any(Option::is_some) {
        u.total_tokens = Some(parts.iter().flatten().fold(0i64, |a, n| a.saturating_add(*n)));
    }
}

/// Reads an Anthropic `usage` object (a Messages body's, a `message_start`'s or a
/// `message_delta`'s) into `u`, keeping what it does not mention.
fn anthropic_usage(usage: TapeValue<'_, '_>, u: &mut Usage) {
    let m = &mut u.metered;
    let f = |k: &str| tape_int(usage.get(k));
    m.input = f("input_tokens").or(m.input);
    m.output = f("output_tokens").or(m.output);
    m.cache_read = f("cache_read_input_tokens").or(m.cache_read);
    m.cache_write = f("cache_creation_input_tokens").or(m.cache_write);
    if let Some(split) = usage.get("cache_creation") {
        m.cache_write_5m = tape_int(split.get("ephemeral_5m_input_tokens")).or(m.cache_write_5m);
        m.cache_write_1h = tape_int(split.get("ephemeral_1h_input_tokens")).or(m.cache_write_1h);
    }
}

fn stop_reason(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty())
        .map(|s| crate::util::text::truncate_chars(s, MAX_STOP_REASON))
}

/// The usage in a parsed InvokeModel body or stream event of any family. The second
/// value says whether it carried `amazon-bedrock-invocationMetrics` (a stream's last
/// chunk: the metered figures).
fn invoke_usage_from_tape(v: TapeValue<'_, '_>) -> (Usage, bool) {
    // Converse-shaped bodies (Nova): `usage.inputTokens`, `stopReason`.
    let mut u = if v.get("usage").and_then(|x| x.get("inputTokens")).is_some() || v.get("stopReason").is_some() {
        usage_from_tape(v)
    } else {
        Usage::default()
    };
    // Anthropic: the body itself, a `message_start` event's `message`, or a `message_delta`.
    let message = v.get("message").filter(|m| m.is_object());
    for holder in [Some(v), message].into_iter().flatten() {
        if let Some(usage) = holder.get("usage").filter(|x| x.is_object()) {
            anthropic_usage(usage, &mut u);
        }
        if let Some(s) = stop_reason(tape_str(holder.get("stop_reason"))) {
            u.stop_reason = Some(s);
        }
    }
    if let Some(s) = stop_reason(tape_str(v.get("delta").and_then(|d| d.get("stop_reason")))) {
        u.stop_reason = Some(s);
    }
    // Llama.
    u.metered.input = tape_int(v.get("prompt_token_count")).or(u.metered.input);
    u.metered.output = tape_int(v.get("generation_token_count")).or(u.metered.output);
    // What Bedrock metered (a stream's last chunk).
    let metrics = v.get("amazon-bedrock-invocationMetrics").filter(|m| m.is_object());
    if let Some(im) = metrics {
        let m = &mut u.metered;
        m.input = tape_int(im.get("inputTokenCount")).or(m.input);
        m.output = tape_int(im.get("outputTokenCount")).or(m.output);
        m.cache_read = tape_int(im.get("cacheReadInputTokenCount")).or(m.cache_read);
        m.cache_write = tape_int(im.get("cacheWriteInputTokenCount")).or(m.cache_write);
        u.latency_ms = tape_int(im.get("invocationLatency")).or(u.latency_ms);
    }
    (u, metrics.is_some())
}

/// Names that a stream event holding usage contains; an event with none of them (a text
/// delta) is not parsed.
const USAGE_MARKERS: [&[u8]; 4] = [b"usage", b"stop_reason", b"invocationMetrics", b"token_count"];

impl Scanner {
    /// Scans an InvokeModel answer's body. `None` if it is not a JSON object.
    pub fn scan_invoke(&mut self, body: &[u8]) -> Option<Usage> {
        self.scratch.clear();
        self.scratch.extend_from_slice(body);
        let tape = simd_json::to_tape_with_buffers(&mut self.scratch, &mut self.buffers).ok()?;
        let v = tape.as_value();
        v.is_object().then(|| invoke_usage_from_tape(v).0)
    }

    /// Scans the payload of an InvokeModelWithResponseStream `chunk` event: `None` when it
    /// holds no usage (or is not a chunk), else the usage and whether it was the last
    /// chunk's invocation metrics.
    pub fn scan_chunk(&mut self, payload: &[u8]) -> Option<(Usage, bool)> {
        let text = chunk_bytes(payload)?;
        crate::util::base64::decode_into(text, &mut self.chunk).ok()?;
        if !USAGE_MARKERS
            .iter()
            .any(|m| memchr::memmem::find(&self.chunk, m).is_some())
        {
            return None;
        }
        let tape = simd_json::to_tape_with_buffers(&mut self.chunk, &mut self.buffers).ok()?;
        let v = tape.as_value();
        v.is_object().then(|| invoke_usage_from_tape(v))
    }
}

/// The base64 text of a chunk payload's `bytes` field. Bedrock writes the payload compact
/// (`{"bytes":"...","p":"..."}`), and base64 holds no quote or escape, so the text is found
/// without parsing the JSON.
fn chunk_bytes(payload: &[u8]) -> Option<&[u8]> {
    const KEY: &[u8] = b"\"bytes\":\"";
    let start = memchr::memmem::find(payload, KEY)? + KEY.len();
    let len = memchr::memchr(b'"', &payload[start..])?;
    Some(&payload[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::response::parse_response_head;

    fn chunk(json: &str) -> Vec<u8> {
        let mut b64 = Vec::new();
        crate::util::base64::encode_into(json.as_bytes(), &mut b64);
        let mut p = b"{\"bytes\":\"".to_vec();
        p.extend_from_slice(&b64);
        p.extend_from_slice(b"\",\"p\":\"abcd\"}");
        p
    }

    #[test]
    fn headers_carry_every_familys_usage() {
        let raw = b"HTTP/1.1 200 OK\r\nX-Amzn-Bedrock-Input-Token-Count: 1200\r\nX-Amzn-Bedrock-Output-Token-Count: 2500\r\nX-Amzn-Bedrock-Cache-Read-Input-Token-Count: 150000\r\nX-Amzn-Bedrock-Cache-Write-Input-Token-Count: 20000\r\nX-Amzn-Bedrock-Invocation-Latency: 812\r\nX-Amzn-Bedrock-Service-Tier: priority\r\nX-Amzn-Bedrock-PerformanceConfig-Latency: optimized\r\nContent-Length: 0\r\n\r\n";
        let h = parse_response_head(raw).unwrap().unwrap();
        let mut u = header_usage(&h);
        assert_eq!(u.metered.input, Some(1200));
        assert_eq!(u.metered.output, Some(2500));
        assert_eq!(u.metered.cache_read, Some(150000));
        assert_eq!(u.metered.cache_write, Some(20000));
        assert_eq!(u.latency_ms, Some(812));
        assert_eq!(u.tier, Some(Tier::Priority));
        assert_eq!(u.latency, Some(Latency::Optimized));
        fill_total(&mut u);
        assert_eq!(u.total_tokens, Some(173700));
        let h = parse_response_head(
            b"HTTP/1.1 200 OK\r\nX-Amzn-Bedrock-Input-Token-Count: -3\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        let mut u = header_usage(&h);
        fill_total(&mut u);
        assert_eq!(u, Usage::default());
    }

    #[test]
    fn anthropic_llama_and_nova_bodies() {
        let mut s = Scanner::new();
        let body = br#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"usage: none"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":300,"cache_read_input_tokens":40,"output_tokens":56,"cache_creation":{"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":200}}}"#;
        let u = s.scan_invoke(body).unwrap();
        assert_eq!(
            (
                u.metered.input,
                u.metered.output,
                u.metered.cache_read,
                u.metered.cache_write
            ),
            (Some(12), Some(56), Some(40), Some(300))
        );
        assert_eq!(
            (u.metered.cache_write_5m, u.metered.cache_write_1h),
            (Some(100), Some(200))
        );
        assert_eq!(u.stop_reason.as_deref(), Some("end_turn"));
        let u = s
            .scan_invoke(
                br#"{"generation":"hi","prompt_token_count":9,"generation_token_count":4,"stop_reason":"stop"}"#,
            )
            .unwrap();
        assert_eq!((u.metered.input, u.metered.output), (Some(9), Some(4)));
        assert_eq!(u.stop_reason.as_deref(), Some("stop"));
        let u = s
            .scan_invoke(br#"{"output":{"message":{"content":[]}},"stopReason":"max_tokens","usage":{"inputTokens":5,"outputTokens":6,"totalTokens":11}}"#)
            .unwrap();
        assert_eq!(
            (u.metered.input, u.metered.output, u.total_tokens),
            (Some(5), Some(6), Some(11))
        );
        assert_eq!(u.stop_reason.as_deref(), Some("max_tokens"));
        assert!(s.scan_invoke(b"[1]").is_none());
        assert!(s.scan_invoke(b"{oops").is_none());
    }

    #[test]
    fn stream_chunks_merge_to_the_metered_usage() {
        let mut s = Scanner::new();
        let events = [
            r#"{"type":"message_start","message":{"id":"m","type":"message","role":"assistant","content":[],"stop_reason":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":300,"cache_read_input_tokens":40,"output_tokens":1,"cache_creation":{"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":200}}}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hello"}}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":77}}"#,
            r#"{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":12,"outputTokenCount":78,"invocationLatency":950,"firstByteLatency":300,"cacheReadInputTokenCount":40,"cacheWriteInputTokenCount":300}}"#,
        ];
        let mut total = Usage::default();
        let mut last = Vec::new();
        for e in events {
            if let Some((u, fin)) = s.scan_chunk(&chunk(e)) {
                total.merge(u);
                last.push(fin);
            }
        }
        // The text delta was not parsed; only the last chunk is the metered one.
        assert_eq!(last, [false, false, true]);
        let m = &total.metered;
        assert_eq!(
            (m.input, m.output, m.cache_read, m.cache_write),
            (Some(12), Some(78), Some(40), Some(300))
        );
        assert_eq!((m.cache_write_5m, m.cache_write_1h), (Some(100), Some(200)));
        assert_eq!(total.stop_reason.as_deref(), Some("tool_use"));
        assert_eq!(total.latency_ms, Some(950));
        // Not a chunk, bad base64, base64 of something that is not JSON.
        assert!(s.scan_chunk(br#"{"x":1}"#).is_none());
        assert!(s.scan_chunk(br#"{"bytes":"%%%%"}"#).is_none());
        assert!(s.scan_chunk(&chunk("usage but not json")).is_none());
    }
}
