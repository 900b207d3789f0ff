//! Usage scan of a Converse response body with simd-json: `usage.*Tokens`,
//! `metrics.latencyMs`, `stopReason`. simd-json parses in place, so the body is copied
//! into a reused scratch buffer first (the client gets the bytes untouched), and read
//! through its tape (no value tree is built). Malformed JSON, missing or odd fields yield
//! `None`s, never an error.

use simd_json::prelude::*;

/// Longest `stopReason` kept.
pub const MAX_STOP_REASON: usize = 64;

/// What a response said about its usage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub cache_read_tokens: Option<i64>,
    pub cache_write_tokens: Option<i64>,
    pub latency_ms: Option<i64>,
    pub stop_reason: Option<String>,
}

/// Reusable parser state (one per shard).
pub struct Scanner {
    scratch: Vec<u8>,
    buffers: simd_json::Buffers,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            scratch: Vec::with_capacity(4096),
            buffers: simd_json::Buffers::new(4096),
        }
    }
}

fn tape_int(v: Option<simd_json::tape::Value<'_, '_>>) -> Option<i64> {
    let v = v?;
    v.as_i64()
        .or_else(|| v.as_u64().and_then(|u| i64::try_from(u).ok()))
        .filter(|n| *n >= 0)
}

/// Reads the usage fields out of a parsed Converse body or stream `metadata` event.
pub fn usage_from_tape(v: simd_json::tape::Value<'_, '_>) -> Usage {
    let usage = v.get("usage");
    let metrics = v.get("metrics");
    let u = |k: &str| tape_int(usage.as_ref().and_then(|u| u.get(k)));
    Usage {
        input_tokens: u("inputTokens"),
        output_tokens: u("outputTokens"),
        total_tokens: u("totalTokens"),
        cache_read_tokens: u("cacheReadInputTokens"),
        cache_write_tokens: u("cacheWriteInputTokens"),
        latency_ms: tape_int(metrics.as_ref().and_then(|m| m.get("latencyMs"))),
        stop_reason: v
            .get("stopReason")
            .and_then(|s| s.as_str().map(|s| s.chars().take(MAX_STOP_REASON).collect())),
    }
}

impl Scanner {
    pub fn new() -> Self {
        Self::default()
    }

    /// Scans a Converse JSON body. `None` if it is not a JSON object.
    pub fn scan(&mut self, body: &[u8]) -> Option<Usage> {
        self.scratch.clear();
        self.scratch.extend_from_slice(body);
        let tape = simd_json::to_tape_with_buffers(&mut self.scratch, &mut self.buffers).ok()?;
        let v = tape.as_value();
        if !v.is_object() {
            return None;
        }
        Some(usage_from_tape(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_converse_bodies() {
        let mut s = Scanner::new();
        let body = br#"{"metrics":{"latencyMs":321},"output":{"message":{"content":[{"text":"hi"}],"role":"assistant"}},"stopReason":"end_turn","usage":{"inputTokens":12,"outputTokens":34,"totalTokens":46,"cacheReadInputTokens":5,"cacheWriteInputTokens":0,"extra":{"a":[1,2]}}}"#;
        let u = s.scan(body).unwrap();
        assert_eq!(u.input_tokens, Some(12));
        assert_eq!(u.output_tokens, Some(34));
        assert_eq!(u.total_tokens, Some(46));
        assert_eq!(u.cache_read_tokens, Some(5));
        assert_eq!(u.cache_write_tokens, Some(0));
        assert_eq!(u.latency_ms, Some(321));
        assert_eq!(u.stop_reason.as_deref(), Some("end_turn"));
        // Reordered keys, unknown fields, missing usage, bad types.
        let u = s
            .scan(br#"{"usage":{"outputTokens":"7","inputTokens":-3,"totalTokens":1.5},"zzz":null}"#)
            .unwrap();
        assert_eq!(u, Usage::default());
        assert!(s.scan(b"{not json").is_none());
        assert!(s.scan(b"[1,2]").is_none());
        assert!(s.scan(b"").is_none());
    }
}
