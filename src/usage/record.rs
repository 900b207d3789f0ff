//! The usage record: one row per request that reached a Bedrock route (DESIGN.md §3).
//! Money is an integer count of 1e-12 USD, matching the `decimal(38,12)` column.

use std::sync::Arc;

use super::scan::Usage;
use crate::pricing::{Flag, Flags, Latency, PriceTable, Priced, Query, Scope, Tier, Trace};

/// One usage row. Never holds a secret, a prompt or a completion.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UsageRecord {
    /// Request received, unix microseconds (UTC).
    pub ts_micros: i64,
    pub request_id: String,
    pub upstream_request_id: Option<String>,
    pub tenant: String,
    pub department: Option<String>,
    pub project: Option<String>,
    pub agent: Option<String>,
    /// `converse`, `converse-stream`, `invoke`, `invoke-stream` or `count-tokens`.
    pub operation: &'static str,
    pub region: String,
    pub model_requested: String,
    pub model_effective: String,
    pub status: u16,
    pub error_type: Option<String>,
    pub error_message: Option<String>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub cache_read_tokens: Option<i64>,
    pub cache_write_tokens: Option<i64>,
    /// Cost in 1e-12 USD.
    pub cost_pico_usd: Option<i128>,
    /// The price table entry used (`custom:` prefix for `--pricing` entries).
    pub price_id: Option<Arc<str>>,
    pub latency_ms: f64,
    pub upstream_latency_ms: Option<f64>,
    pub upstream_ttfb_ms: Option<f64>,
    pub provider_latency_ms: Option<i64>,
    pub stop_reason: Option<String>,
    pub request_bytes: i64,
    pub response_bytes: i64,
    /// How the call was billed: the scope of the model id, the tier and latency mode.
    pub price_scope: Option<Scope>,
    pub service_tier: Option<Tier>,
    pub latency_mode: Option<Latency>,
    /// The cache-write split (`usage.cacheDetails`; all 5m when it was absent, flagged).
    pub cache_write_5m_tokens: Option<i64>,
    pub cache_write_1h_tokens: Option<i64>,
    /// Guardrail text units of every policy (`trace.guardrail`).
    pub guardrail_units: Option<i64>,
    /// Which price table priced the row.
    pub price_version: Option<Arc<str>>,
    /// Why a cost is missing or assumed.
    pub cost_flags: Flags,
    /// Not a column: the budget that refused this request (for metrics).
    pub blocked_by: Option<String>,
    /// The optimizer rule that decided something for this request (`--routes`).
    pub route_rule: Option<String>,
    /// What it decided: `rewrite`, `downgrade` or `fallback`.
    pub route_action: Option<&'static str>,
    /// Upstream attempts made (0 when the proxy answered before any).
    pub attempts: Option<i64>,
    /// The region the answer came from (a fallback may change it; else `region`).
    pub region_effective: Option<String>,
    /// What the same usage would have cost on the requested model and region, 1e-12 USD
    /// (equal to the cost when the optimizer changed nothing): savings are a column sum.
    pub cost_baseline_pico_usd: Option<i128>,
}

impl UsageRecord {
    /// Copies what a response said about its usage into the row.
    pub(crate) fn apply_usage(&mut self, u: &Usage) {
        let m = &u.metered;
        self.input_tokens = m.input.or(self.input_tokens);
        self.output_tokens = m.output.or(self.output_tokens);
        self.total_tokens = u.total_tokens.or(self.total_tokens);
        self.cache_read_tokens = m.cache_read.or(self.cache_read_tokens);
        self.cache_write_tokens = m.cache_write.or(self.cache_write_tokens);
        self.provider_latency_ms = u.latency_ms.or(self.provider_latency_ms);
        if u.stop_reason.is_some() {
            self.stop_reason.clone_from(&u.stop_reason);
        }
    }

    /// Prices the row from what its response reported. `request_hints` reads the tier and
    /// latency the request asked for; it is called only when the response did not say
    /// and the model's price depends on them. `baseline_model` (the requested model as
    /// it would have been called in `region`) is set when the optimizer changed the model
    /// or the region: the same usage is priced there too, for `cost_usd_baseline`;
    /// otherwise the baseline is the cost.
    pub(crate) fn price(
        &mut self,
        table: &PriceTable,
        usage: &Usage,
        request_hints: impl FnOnce() -> (Option<Tier>, Option<Latency>),
        baseline_model: Option<&str>,
    ) {
        let model = usage.invoked_model.as_deref().unwrap_or(&self.model_effective);
        let (mut tier_req, mut latency_req) = (None, None);
        if usage.tier.is_none() || usage.latency.is_none() {
            let sensitive = table
                .resolve(model, &mut Trace::off())
                .is_ok_and(|(e, _)| e.tier_sensitive() || e.latency_sensitive());
            if sensitive {
                (tier_req, latency_req) = request_hints();
            }
        }
        let q = Query {
            model: &self.model_effective,
            invoked: usage.invoked_model.as_deref(),
            region: self.region_effective.as_deref().unwrap_or(&self.region),
            day: self.ts_micros.div_euclid(86_400_000_000),
            tier_reported: usage.tier,
            tier_requested: tier_req,
            latency_reported: usage.latency,
            latency_requested: latency_req,
            usage: &usage.metered,
        };
        let priced = table.price(&q, &mut Trace::off());
        self.cost_baseline_pico_usd = match baseline_model {
            None => priced.cost_pico,
            Some(m) => {
                let b = Query {
                    model: m,
                    invoked: None,
                    region: &self.region,
                    ..q
                };
                table.price(&b, &mut Trace::off()).cost_pico
            }
        };
        self.apply_priced(priced);
    }

    /// Records how the row was priced.
    pub fn apply_priced(&mut self, p: Priced) {
        self.cost_pico_usd = p.cost_pico;
        self.price_id = p.price_id;
        self.price_version = p.version;
        self.price_scope = p.scope;
        self.service_tier = p.tier;
        self.latency_mode = p.latency;
        self.cache_write_5m_tokens = p.cache_write_5m;
        self.cache_write_1h_tokens = p.cache_write_1h;
        self.guardrail_units = p.guardrail_units;
        self.cost_flags = self.cost_flags.union(p.flags);
    }

    /// Whether the row's cost is unknown although the call was answered.
    pub(crate) fn unpriced(&self) -> bool {
        self.cost_flags.has(Flag::Unpriced)
    }
}

/// The `&'static` name of a recorded operation (rows read back from files or a journal).
pub fn operation_name(name: &str) -> &'static str {
    crate::bedrock::route::Operation::ALL
        .into_iter()
        .map(|o| o.as_str())
        .find(|n| *n == name)
        .unwrap_or("converse")
}

/// The `&'static` name of an optimizer action read back from a journal or a file (one of
/// `rewrite`, `downgrade`, `fallback`: the writer spells no other).
pub fn route_action_name(name: &str) -> &'static str {
    match name {
        "rewrite" => "rewrite",
        "downgrade" => "downgrade",
        _ => "fallback",
    }
}

/// Longest `error_message` kept.
pub(crate) const MAX_ERROR_MESSAGE_CHARS: usize = 256;
/// Longest attribution tag kept (department, project, agent).
pub(crate) const MAX_TAG_CHARS: usize = 128;

/// Cuts a message to [`MAX_ERROR_MESSAGE_CHARS`] characters.
pub(crate) fn cut_message(s: &str) -> String {
    crate::util::text::truncate_chars(s, MAX_ERROR_MESSAGE_CHARS)
}

/// Formats 1e-12 USD units as a decimal string with 12 fractional digits trimmed to at
/// least 6 (`0.000123000000` → `0.000123`).
pub fn format_usd(pico: i128) -> String {
    crate::pricing::decimal::format_scaled(pico, crate::pricing::decimal::USD_DECIMALS, 6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usd() {
        assert_eq!(format_usd(0), "0.000000");
        assert_eq!(format_usd(1), "0.000000000001");
        assert_eq!(format_usd(1_500_000_000_000), "1.500000");
        assert_eq!(format_usd(123_456_789), "0.000123456789");
        assert_eq!(cut_message(&"x".repeat(300)).len(), 256);
    }
}
