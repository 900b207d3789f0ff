//! Usage scan of a Converse response body (or a ConverseStream `metadata` event) with
//! simd-json: `usage.*Tokens` with the `cacheDetails` TTL split, `metrics.latencyMs`,
//! `stopReason`, the `serviceTier` and `performanceConfig` the call was served at,
//! `trace.promptRouter.invokedModelId`, and guardrail text units from
//! `trace.guardrail`. simd-json parses in place, so the body is copied into a reused
//! scratch buffer first (the client gets the bytes untouched), and read through its
//! tape (no value tree is built). Malformed JSON, missing or odd fields yield `None`s,
//! never an error.

use simd_json::prelude::*;

use crate::pricing::dims::{Meter, METERS};
use crate::pricing::{Latency, Metered, Tier};
use crate::util::text::truncate_chars;

/// Longest `stopReason` kept.
pub const MAX_STOP_REASON: usize = 64;
/// Longest `invokedModelId` kept (a longer one is ignored).
pub const MAX_INVOKED_MODEL: usize = 2048;

/// What a response said about its usage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// Tokens, the cache-write split and guardrail units: what is priced.
    pub metered: Metered,
    pub total_tokens: Option<i64>,
    pub latency_ms: Option<i64>,
    pub stop_reason: Option<String>,
    /// `serviceTier.type` the response reported.
    pub tier: Option<Tier>,
    /// `performanceConfig.latency` the response reported.
    pub latency: Option<Latency>,
    /// `trace.promptRouter.invokedModelId`.
    pub invoked_model: Option<String>,
}

impl Usage {
    /// Takes every field `later` has (a stream's `messageStop`, then its `metadata`).
    pub(crate) fn merge(&mut self, later: Usage) {
        let m = &mut self.metered;
        let l = later.metered;
        m.input = l.input.or(m.input);
        m.output = l.output.or(m.output);
        m.cache_read = l.cache_read.or(m.cache_read);
        m.cache_write = l.cache_write.or(m.cache_write);
        m.cache_write_5m = l.cache_write_5m.or(m.cache_write_5m);
        m.cache_write_1h = l.cache_write_1h.or(m.cache_write_1h);
        m.guardrail = l.guardrail.or(m.guardrail);
        self.total_tokens = later.total_tokens.or(self.total_tokens);
        self.latency_ms = later.latency_ms.or(self.latency_ms);
        self.tier = later.tier.or(self.tier);
        self.latency = later.latency.or(self.latency);
        if later.stop_reason.is_some() {
            self.stop_reason = later.stop_reason;
        }
        if later.invoked_model.is_some() {
            self.invoked_model = later.invoked_model;
        }
    }
}

/// Reusable parser state (one per shard).
pub struct Scanner {
    pub(super) scratch: Vec<u8>,
    pub(super) buffers: simd_json::Buffers,
    /// An InvokeModel stream chunk's decoded payload (`invoke`).
    pub(super) chunk: Vec<u8>,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            scratch: Vec::with_capacity(4096),
            buffers: simd_json::Buffers::new(4096),
            chunk: Vec::new(),
        }
    }
}

pub(super) type TapeValue<'t, 'i> = simd_json::tape::Value<'t, 'i>;

pub(super) fn tape_int(v: Option<TapeValue<'_, '_>>) -> Option<i64> {
    let v = v?;
    v.as_i64()
        .or_else(|| v.as_u64().and_then(|u| i64::try_from(u).ok()))
        .filter(|n| *n >= 0)
}

pub(super) fn tape_str<'i>(v: Option<TapeValue<'_, 'i>>) -> Option<&'i str> {
    v?.into_string()
}

/// Adds the `invocationMetrics.usage` units of one guardrail assessment.
fn add_guardrail_units(assessment: TapeValue<'_, '_>, units: &mut [i64; METERS], seen: &mut bool) {
    let Some(usage) = assessment.get("invocationMetrics").and_then(|m| m.get("usage")) else {
        return;
    };
    for m in Meter::ALL {
        if let Some(n) = tape_int(usage.get(m.usage_field())) {
            units[m.index()] = units[m.index()].saturating_add(n);
            *seen = true;
        }
    }
}

/// Guardrail units summed over every input and output assessment of a trace.
fn guardrail_units(trace: Option<TapeValue<'_, '_>>) -> Option<[i64; METERS]> {
    let g = trace?.get("guardrail")?;
    let mut units = [0i64; METERS];
    let mut seen = false;
    if let Some(input) = g.get("inputAssessment").and_then(|v| v.as_object()) {
        for (_, a) in input.iter() {
            add_guardrail_units(a, &mut units, &mut seen);
        }
    }
    if let Some(outputs) = g.get("outputAssessments").and_then(|v| v.as_object()) {
        for (_, list) in outputs.iter() {
            if let Some(list) = list.as_array() {
                for a in list.iter() {
                    add_guardrail_units(a, &mut units, &mut seen);
                }
            }
        }
    }
    seen.then_some(units)
}

/// Reads the usage fields out of a parsed Converse body or stream `metadata` event.
pub(crate) fn usage_from_tape(v: TapeValue<'_, '_>) -> Usage {
    let usage = v.get("usage");
    let metrics = v.get("metrics");
    let u = |k: &str| tape_int(usage.as_ref().and_then(|u| u.get(k)));
    let (mut w5, mut w1) = (None::<i64>, None::<i64>);
    if let Some(details) = usage
        .as_ref()
        .and_then(|u| u.get("cacheDetails"))
        .and_then(|d| d.as_array())
    {
        for d in details.iter() {
            let n = tape_int(d.get("inputTokens"));
            match (tape_str(d.get("ttl")), n) {
                (Some("5m"), Some(n)) => w5 = Some(w5.unwrap_or(0).saturating_add(n)),
                (Some("1h"), Some(n)) => w1 = Some(w1.unwrap_or(0).saturating_add(n)),
                _ => {}
            }
        }
    }
    let trace = v.get("trace");
    Usage {
        metered: Metered {
            input: u("inputTokens"),
            output: u("outputTokens"),
            cache_read: u("cacheReadInputTokens"),
            cache_write: u("cacheWriteInputTokens"),
            cache_write_5m: w5,
            cache_write_1h: w1,
            guardrail: guardrail_units(trace),
        },
        total_tokens: u("totalTokens"),
        latency_ms: tape_int(metrics.as_ref().and_then(|m| m.get("latencyMs"))),
        stop_reason: tape_str(v.get("stopReason")).map(|s| truncate_chars(s, MAX_STOP_REASON)),
        tier: tape_str(v.get("serviceTier").and_then(|t| t.get("type"))).and_then(Tier::parse),
        latency: tape_str(v.get("performanceConfig").and_then(|p| p.get("latency"))).and_then(Latency::parse),
        invoked_model: tape_str(
            trace
                .and_then(|t| t.get("promptRouter"))
                .and_then(|p| p.get("invokedModelId")),
        )
        .filter(|s| !s.is_empty() && s.len() <= MAX_INVOKED_MODEL)
        .map(str::to_string),
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

    /// The `serviceTier` and `performanceConfig.latency` a Converse request body asked
    /// for (the fallback when the response does not say). The body is parsed only when
    /// it holds those names at all, so most requests cost one `memmem` pass.
    pub fn request_hints(&mut self, body: &[u8]) -> (Option<Tier>, Option<Latency>) {
        let has = |needle: &[u8]| memchr::memmem::find(body, needle).is_some();
        if !has(b"\"serviceTier\"") && !has(b"\"performanceConfig\"") {
            return (None, None);
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(body);
        let Ok(tape) = simd_json::to_tape_with_buffers(&mut self.scratch, &mut self.buffers) else {
            return (None, None);
        };
        let v = tape.as_value();
        (
            tape_str(v.get("serviceTier").and_then(|t| t.get("type"))).and_then(Tier::parse),
            tape_str(v.get("performanceConfig").and_then(|p| p.get("latency"))).and_then(Latency::parse),
        )
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
        assert_eq!(u.metered.input, Some(12));
        assert_eq!(u.metered.output, Some(34));
        assert_eq!(u.total_tokens, Some(46));
        assert_eq!(u.metered.cache_read, Some(5));
        assert_eq!(u.metered.cache_write, Some(0));
        assert_eq!(u.latency_ms, Some(321));
        assert_eq!(u.stop_reason.as_deref(), Some("end_turn"));
        assert_eq!(u.tier, None);
        // Reordered keys, unknown fields, missing usage, bad types.
        let u = s
            .scan(br#"{"usage":{"outputTokens":"7","inputTokens":-3,"totalTokens":1.5},"zzz":null}"#)
            .unwrap();
        assert_eq!(u, Usage::default());
        assert!(s.scan(b"{not json").is_none());
        assert!(s.scan(b"[1,2]").is_none());
        assert!(s.scan(b"").is_none());
    }

    #[test]
    fn scans_billing_dimensions() {
        let mut s = Scanner::new();
        let body = br#"{"usage":{"inputTokens":1200,"outputTokens":2500,"totalTokens":173700,"cacheReadInputTokens":150000,"cacheWriteInputTokens":20000,"cacheDetails":[{"ttl":"1h","inputTokens":16000},{"ttl":"5m","inputTokens":4000}]},"serviceTier":{"type":"priority"},"performanceConfig":{"latency":"optimized"},"trace":{"promptRouter":{"invokedModelId":"arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-1-8b-instruct-v1:0"},"guardrail":{"inputAssessment":{"g1":{"invocationMetrics":{"usage":{"contentPolicyUnits":2,"topicPolicyUnits":1,"wordPolicyUnits":1}}}},"outputAssessments":{"g1":[{"invocationMetrics":{"usage":{"contentPolicyUnits":3}}}]}}}}"#;
        let u = s.scan(body).unwrap();
        assert_eq!(u.metered.cache_write_1h, Some(16000));
        assert_eq!(u.metered.cache_write_5m, Some(4000));
        assert_eq!(u.tier, Some(Tier::Priority));
        assert_eq!(u.latency, Some(Latency::Optimized));
        assert!(u
            .invoked_model
            .as_deref()
            .unwrap()
            .ends_with("llama3-1-8b-instruct-v1:0"));
        let g = u.metered.guardrail.unwrap();
        assert_eq!(g[Meter::ContentPolicy.index()], 5);
        assert_eq!(g[Meter::TopicPolicy.index()], 1);
        assert_eq!(g[Meter::WordPolicy.index()], 1);
        // Unknown tier names are not guessed.
        let u = s.scan(br#"{"serviceTier":{"type":"turbo"}}"#).unwrap();
        assert_eq!(u.tier, None);
    }

    #[test]
    fn request_hints_are_read_only_when_present() {
        let mut s = Scanner::new();
        assert_eq!(s.request_hints(br#"{"messages":[]}"#), (None, None));
        assert_eq!(
            s.request_hints(
                br#"{"messages":[],"serviceTier":{"type":"flex"},"performanceConfig":{"latency":"optimized"}}"#
            ),
            (Some(Tier::Flex), Some(Latency::Optimized))
        );
        // Named only inside a prompt: not a top-level field.
        assert_eq!(
            s.request_hints(br#"{"messages":[{"content":[{"text":"\"serviceTier\": {\"type\": \"flex\"}"}]}]}"#),
            (None, None)
        );
    }
}
