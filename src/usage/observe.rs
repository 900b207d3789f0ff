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
    /// (operation, status, model) → requests.
    pub requests: HashMap<(&'static str, u16, String), u64>,
    /// model → [input, output, cache_read, cache_write] tokens.
    pub tokens: HashMap<String, [i64; 4]>,
    /// model → cost in 1e-12 USD.
    pub cost: HashMap<String, i128>,
    /// error type → rows.
    pub errors: HashMap<String, u64>,
    /// model → answered rows without a cost.
    pub unpriced: HashMap<String, u64>,
    /// Newest "request received → row written" delay seen, seconds.
    pub writer_lag_seconds: f64,
}

fn bounded_label<V>(map: &HashMap<String, V>, label: &str, max: usize) -> String {
    if map.contains_key(label) || map.len() < max {
        label.to_string()
    } else {
        "other".to_string()
    }
}

impl RowMetrics {
    pub(crate) fn observe(&mut self, r: &UsageRecord) {
        let model = bounded_label(&self.tokens, &r.model_effective, MAX_MODEL_LABELS);
        *self.requests.entry((r.operation, r.status, model.clone())).or_default() += 1;
        let t = self.tokens.entry(model.clone()).or_default();
        t[0] += r.input_tokens.unwrap_or(0);
        t[1] += r.output_tokens.unwrap_or(0);
        t[2] += r.cache_read_tokens.unwrap_or(0);
        t[3] += r.cache_write_tokens.unwrap_or(0);
        if let Some(c) = r.cost_pico_usd {
            *self.cost.entry(model.clone()).or_default() += c;
        }
        if r.unpriced() {
            let first = !self.unpriced.contains_key(&model);
            let m = bounded_label(&self.unpriced, &model, MAX_MODEL_LABELS);
            *self.unpriced.entry(m).or_default() += 1;
            if first && self.unpriced.contains_key(&model) {
                // Once per model and process: the rows carry the detail.
                crate::log::warn(
                    "unpriced_model",
                    &[
                        ("model", &model),
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
            *self.errors.entry(e).or_default() += 1;
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

/// One access-log line for a row (no secret, prompt or completion is in a row).
pub(crate) fn access_line(r: &UsageRecord) -> Vec<u8> {
    let opt = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |n| n.to_string());
    let cost = r.cost_pico_usd.map_or_else(|| "-".to_string(), format_usd);
    let status = r.status.to_string();
    let latency = format!("{:.3}", r.latency_ms);
    let (input, output) = (opt(r.input_tokens), opt(r.output_tokens));
    let flags = r.cost_flags.to_column();
    let mut fields: Vec<(&str, &str)> = vec![
        ("request_id", &r.request_id),
        ("tenant", &r.tenant),
        ("operation", r.operation),
        ("region", &r.region),
        ("model", &r.model_effective),
        ("status", &status),
        ("latency_ms", &latency),
        ("input_tokens", &input),
        ("output_tokens", &output),
        ("cost_usd", &cost),
    ];
    for (k, v) in [
        ("department", &r.department),
        ("project", &r.project),
        ("agent", &r.agent),
        ("error_type", &r.error_type),
    ] {
        if let Some(v) = v {
            fields.push((k, v));
        }
    }
    if let Some(f) = &flags {
        fields.push(("cost_flags", f));
    }
    crate::log::format_line("INFO", "access", &fields)
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
            for r in rows {
                out.extend_from_slice(&access_line(r));
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
        assert_eq!(m.requests[&("converse", 200, "m0".to_string())], 1);
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
            ..Default::default()
        };
        let l = String::from_utf8(access_line(&r)).unwrap();
        for want in [
            "access",
            "request_id=abc",
            "status=200",
            "input_tokens=3",
            "output_tokens=-",
            "cost_usd=0.000001",
            "agent=bot",
        ] {
            assert!(l.contains(want), "{l}");
        }
    }
}
