//! The usage record: one row per request that reached a Bedrock route (DESIGN.md §3).
//! Money is an integer count of 1e-12 USD, matching the `decimal(38,12)` column.

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
    /// `converse` or `converse-stream`.
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
    pub price_id: Option<String>,
    pub latency_ms: f64,
    pub upstream_latency_ms: Option<f64>,
    pub upstream_ttfb_ms: Option<f64>,
    pub provider_latency_ms: Option<i64>,
    pub stop_reason: Option<String>,
    pub request_bytes: i64,
    pub response_bytes: i64,
    /// Not a column: the budget that refused this request (for metrics).
    pub blocked_by: Option<String>,
}

/// Longest `error_message` kept.
pub const MAX_ERROR_MESSAGE_CHARS: usize = 256;
/// Longest attribution tag kept (department, project, agent).
pub const MAX_TAG_CHARS: usize = 128;

/// Cuts a message to [`MAX_ERROR_MESSAGE_CHARS`] characters.
pub fn cut_message(s: &str) -> String {
    s.chars().take(MAX_ERROR_MESSAGE_CHARS).collect()
}

/// Formats 1e-12 USD units as a decimal string with 12 fractional digits trimmed to at
/// least 6 (`0.000123000000` → `0.000123`).
pub fn format_usd(pico: i128) -> String {
    let v = pico.unsigned_abs();
    let int = v / 1_000_000_000_000;
    let mut frac = (v % 1_000_000_000_000) as u64;
    let mut out = String::with_capacity(24);
    if pico < 0 {
        out.push('-');
    }
    out.push_str(&int.to_string());
    out.push('.');
    // Twelve digits, trailing zeros trimmed down to six.
    let mut digits = [b'0'; 12];
    for d in digits.iter_mut().rev() {
        *d = b'0' + (frac % 10) as u8;
        frac /= 10;
    }
    let mut end = 12;
    while end > 6 && digits[end - 1] == b'0' {
        end -= 1;
    }
    out.extend(digits[..end].iter().map(|&b| b as char));
    out
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
