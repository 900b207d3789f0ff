//! What the writer thread derives from every usage row besides Parquet: labelled
//! metrics (requests by operation/status/model, tokens and cost by model, errors by
//! type) and the structured access log. Doing it here keeps label maps and log writes
//! off the request path: a shard only pushes its row.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::record::{format_usd, UsageRecord};

/// Most distinct model labels kept; later models are counted as `other`.
pub(crate) const MAX_MODEL_LABELS: usize = 512;
/// Most distinct error-type labels kept; later ones are counted as `other`.
pub(crate) const MAX_ERROR_LABELS: usize = 256;

/// Aggregates published to `/metrics` (read under a lock by the scraper only).
#[derive(Debug, Default, Clone)]
pub(crate) struct RowMetrics {
    /// model → (operation, status) → requests.
    pub requests: HashMap<String, HashMap<(&'static str, u16), u64>>,
    /// model → [input, output, cache_read, cache_write] tokens.
    pub tokens: HashMap<String, [i64; 4]>,
    /// model → cost in 1e-12 USD.
    pub cost: HashMap<String, i128>,
    /// error type → rows.
    pub errors: HashMap<String, u64>,
    /// model → answered rows without a cost.
    pub unpriced: HashMap<String, u64>,
    /// (optimizer rule, action) → rows it decided, and the savings (baseline − cost) of
    /// those that were priced both ways, 1e-12 USD. Rule names come from the routes file,
    /// so the labels are bounded by it.
    pub routes: HashMap<(String, &'static str), (u64, i128)>,
    /// Newest "request received → row written" delay seen, seconds.
    pub writer_lag_seconds: f64,
}

/// The label a value is counted under: itself while the map has room, else `other`.
fn bounded_label<'a, V>(map: &HashMap<String, V>, label: &'a str, max: usize) -> &'a str {
    if map.contains_key(label) || map.len() < max {
        label
    } else {
        "other"
    }
}

/// Applies `f` to the entry of `label` in `map`; allocates the key only the first time
/// the label is seen.
fn add<V: Default>(map: &mut HashMap<String, V>, label: &str, f: impl FnOnce(&mut V)) {
    match map.get_mut(label) {
        Some(v) => f(v),
        None => {
            let mut v = V::default();
            f(&mut v);
            map.insert(label.to_string(), v);
        }
    }
}

impl RowMetrics {
    pub(crate) fn observe(&mut self, r: &UsageRecord) {
        let model = bounded_label(&self.tokens, &r.model_effective, MAX_MODEL_LABELS);
        add(&mut self.requests, model, |m| {
            *m.entry((r.operation, r.status)).or_default() += 1
        });
        add(&mut self.tokens, model, |t| {
            t[0] += r.input_tokens.unwrap_or(0);
            t[1] += r.output_tokens.unwrap_or(0);
            t[2] += r.cache_read_tokens.unwrap_or(0);
            t[3] += r.cache_write_tokens.unwrap_or(0);
        });
        if let Some(c) = r.cost_pico_usd {
            add(&mut self.cost, model, |v| *v += c);
        }
        if r.unpriced() {
            let first = !self.unpriced.contains_key(model);
            let m = bounded_label(&self.unpriced, model, MAX_MODEL_LABELS);
            add(&mut self.unpriced, m, |n| *n += 1);
            if first && self.unpriced.contains_key(model) {
                // Once per model and process: the rows carry the detail.
                crate::log::warn(
                    "unpriced_model",
                    &[
                        ("model", model),
                        ("flags", &r.cost_flags.to_column().unwrap_or_default()),
                        (
                            "fix",
                            "add the model (or the missing tier, class or meter) to a --pricing file",
                        ),
                    ],
                );
            }
        }
        if let Some(e) = &r.error_type {
            let e = bounded_label(&self.errors, e, MAX_ERROR_LABELS);
            add(&mut self.errors, e, |n| *n += 1);
        }
        if let (Some(rule), Some(action)) = (&r.route_rule, r.route_action) {
            let e = self.routes.entry((rule.clone(), action)).or_default();
            e.0 += 1;
            if let (Some(b), Some(c)) = (r.cost_baseline_pico_usd, r.cost_pico_usd) {
                e.1 += b - c;
            }
        }
    }
}

/// Something told about every batch of rows the writer takes (budgets keep their spend
/// this way); called on the writer thread, also with empty batches (periods roll at
/// midnight without traffic).
pub(crate) trait RowHook: Send + Sync {
    fn observe(&self, rows: &[UsageRecord], now_unix: i64);
}

/// The writer's observer.
#[derive(Clone)]
pub(crate) struct Observer {
    pub metrics: Arc<Mutex<RowMetrics>>,
    pub access_log: bool,
    /// Told about every batch (budget spend tracking, when budgets are configured).
    pub hooks: Vec<Arc<dyn RowHook>>,
}

impl Default for Observer {
    fn default() -> Self {
        Observer {
            metrics: Arc::new(Mutex::new(RowMetrics::default())),
            access_log: false,
            hooks: Vec::new(),
        }
    }
}

/// Appends one access-log line for a row (no newline) to `out`, stamped `ts`; no secret,
/// prompt or completion is in a row.
pub(crate) fn access_line(out: &mut Vec<u8>, ts: &crate::log::Stamp, r: &UsageRecord) {
    let mut num = crate::util::num::I64Buf::default();
    let mut line = crate::log::Line::begin(out, ts, "INFO", "access");
    line.field("request_id", &r.request_id)
        .field("tenant", &r.tenant)
        .field("operation", r.operation)
        .field("region", &r.region)
        .field("model", &r.model_effective)
        .field_i64("status", i64::from(r.status));
    // Milliseconds with three decimals (a log line's figure, not money).
    line.field(
        "latency_ms",
        num.format_fixed((r.latency_ms * 1000.0).round() as i64, 3),
    );
    for (k, v) in [("input_tokens", r.input_tokens), ("output_tokens", r.output_tokens)] {
        match v {
            Some(n) => line.field_i64(k, n),
            None => line.field(k, "-"),
        };
    }
    match r.cost_pico_usd {
        Some(c) => line.field("cost_usd", &format_usd(c)),
        None => line.field("cost_usd", "-"),
    };
    for (k, v) in [
        ("department", &r.department),
        ("project", &r.project),
        ("agent", &r.agent),
        ("error_type", &r.error_type),
    ] {
        if let Some(v) = v {
            line.field(k, v);
        }
    }
    if let Some(f) = r.cost_flags.to_column() {
        line.field("cost_flags", &f);
    }
    line.end();
}

impl Observer {
    /// Observes a batch of rows: metrics, then one access-log write for the batch.
    pub(crate) fn observe(&self, rows: &[UsageRecord]) {
        let now = crate::util::time::unix_now();
        for h in &self.hooks {
            h.observe(rows, now);
        }
        if rows.is_empty() {
            return;
        }
        let now_micros = crate::util::time::unix_now_micros();
        {
            let mut m = crate::util::snapshot::lock(&self.metrics);
            for r in rows {
                m.observe(r);
            }
            let oldest = rows.iter().map(|r| r.ts_micros).min().unwrap_or(now_micros);
            m.writer_lag_seconds = (now_micros - oldest).max(0) as f64 / 1e6;
        }
        if self.access_log {
            let mut out = Vec::with_capacity(rows.len() * 256);
            let ts = crate::log::Stamp::now();
            for r in rows {
                access_line(&mut out, &ts, r);
                out.push(b'\n');
            }
            crate::log::write_lines(out, rows.len() as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_and_bounds_labels() {
        let mut m = RowMetrics::default();
        for i in 0..(MAX_MODEL_LABELS + 10) {
            m.observe(&UsageRecord {
                operation: "converse",
                status: 200,
                model_effective: format!("m{i}"),
                input_tokens: Some(2),
                cost_pico_usd: Some(5),
                ..Default::default()
            });
        }
        assert_eq!(m.tokens.len(), MAX_MODEL_LABELS + 1);
        assert_eq!(m.tokens["other"][0], 20);
        assert_eq!(m.cost["other"], 50);
        assert_eq!(m.requests["m0"][&("converse", 200)], 1);
    }

    #[test]
    fn access_line_has_the_fields() {
        let r = UsageRecord {
            request_id: "abc".into(),
            tenant: "trk:0123".into(),
            operation: "converse",
            model_effective: "amazon.nova-lite-v1:0".into(),
            status: 200,
            input_tokens: Some(3),
            cost_pico_usd: Some(1_000_000),
            agent: Some("bot".into()),
            latency_ms: 12.3456,
            ..Default::default()
        };
        let mut out = Vec::new();
        access_line(&mut out, &crate::log::Stamp::now(), &r);
        let l = String::from_utf8(out).unwrap();
        for want in [
            "access",
            "request_id=abc",
            "status=200",
            "input_tokens=3",
            "output_tokens=-",
            "cost_usd=0.000001",
            "agent=bot",
            "latency_ms=12.346",
            "model=amazon.nova-lite-v1:0",
        ] {
            assert!(l.contains(want), "{l}");
        }
    }
}
