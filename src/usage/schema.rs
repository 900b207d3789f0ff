//! The Parquet/Arrow schema of the usage file (DESIGN.md §3: names and types are a
//! contract; columns are only ever appended) and the conversion of records to an Arrow
//! `RecordBatch`. One list, [`columns`], names every column beside the value it takes
//! from a record, so the schema and the batch cannot drift apart.

use std::sync::Arc;

use arrow_array::builder::{
    Decimal128Builder, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder, UInt16Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};

use super::record::UsageRecord;

/// Precision and scale of `cost_usd`.
pub(crate) const COST_PRECISION: u8 = 38;
pub(crate) const COST_SCALE: i8 = 12;

fn strings<'a>(
    rows: &'a [UsageRecord],
    name: &str,
    nullable: bool,
    f: impl Fn(&'a UsageRecord) -> Option<&'a str>,
) -> (Field, ArrayRef) {
    let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 16);
    for r in rows {
        b.append_option(f(r));
    }
    (Field::new(name, DataType::Utf8, nullable), Arc::new(b.finish()))
}

fn ints(
    rows: &[UsageRecord],
    name: &str,
    nullable: bool,
    f: impl Fn(&UsageRecord) -> Option<i64>,
) -> (Field, ArrayRef) {
    let mut b = Int64Builder::with_capacity(rows.len());
    for r in rows {
        b.append_option(f(r));
    }
    (Field::new(name, DataType::Int64, nullable), Arc::new(b.finish()))
}

fn floats(
    rows: &[UsageRecord],
    name: &str,
    nullable: bool,
    f: impl Fn(&UsageRecord) -> Option<f64>,
) -> (Field, ArrayRef) {
    let mut b = Float64Builder::with_capacity(rows.len());
    for r in rows {
        b.append_option(f(r));
    }
    (Field::new(name, DataType::Float64, nullable), Arc::new(b.finish()))
}

/// Every column, in file order, with its values for `rows`.
pub(crate) fn columns(rows: &[UsageRecord]) -> Result<Vec<(Field, ArrayRef)>, ArrowError> {
    let mut ts = TimestampMicrosecondBuilder::with_capacity(rows.len()).with_timezone("UTC");
    let mut status = UInt16Builder::with_capacity(rows.len());
    let mut cost = Decimal128Builder::with_capacity(rows.len()).with_precision_and_scale(COST_PRECISION, COST_SCALE)?;
    let mut baseline =
        Decimal128Builder::with_capacity(rows.len()).with_precision_and_scale(COST_PRECISION, COST_SCALE)?;
    for r in rows {
        ts.append_value(r.ts_micros);
        status.append_value(r.status);
        cost.append_option(r.cost_pico_usd);
        baseline.append_option(r.cost_baseline_pico_usd);
    }
    // The cost flags are kept as a bit set in the record and spelled out here.
    let flags: Vec<Option<String>> = rows.iter().map(|r| r.cost_flags.to_column()).collect();
    let ts_type = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Ok(vec![
        (Field::new("ts", ts_type, false), Arc::new(ts.finish()) as ArrayRef),
        strings(rows, "request_id", false, |r| Some(&r.request_id)),
        strings(rows, "upstream_request_id", true, |r| r.upstream_request_id.as_deref()),
        strings(rows, "tenant", false, |r| Some(&r.tenant)),
        strings(rows, "department", true, |r| r.department.as_deref()),
        strings(rows, "project", true, |r| r.project.as_deref()),
        strings(rows, "agent", true, |r| r.agent.as_deref()),
        strings(rows, "operation", false, |r| Some(r.operation)),
        strings(rows, "region", false, |r| Some(&r.region)),
        strings(rows, "model_requested", false, |r| Some(&r.model_requested)),
        strings(rows, "model_effective", false, |r| Some(&r.model_effective)),
        (Field::new("status", DataType::UInt16, false), Arc::new(status.finish())),
        strings(rows, "error_type", true, |r| r.error_type.as_deref()),
        strings(rows, "error_message", true, |r| r.error_message.as_deref()),
        ints(rows, "input_tokens", true, |r| r.input_tokens),
        ints(rows, "output_tokens", true, |r| r.output_tokens),
        ints(rows, "total_tokens", true, |r| r.total_tokens),
        ints(rows, "cache_read_tokens", true, |r| r.cache_read_tokens),
        ints(rows, "cache_write_tokens", true, |r| r.cache_write_tokens),
        (
            Field::new("cost_usd", DataType::Decimal128(COST_PRECISION, COST_SCALE), true),
            Arc::new(cost.finish()),
        ),
        strings(rows, "price_id", true, |r| r.price_id.as_deref()),
        floats(rows, "latency_ms", false, |r| Some(r.latency_ms)),
        floats(rows, "upstream_latency_ms", true, |r| r.upstream_latency_ms),
        floats(rows, "upstream_ttfb_ms", true, |r| r.upstream_ttfb_ms),
        ints(rows, "provider_latency_ms", true, |r| r.provider_latency_ms),
        strings(rows, "stop_reason", true, |r| r.stop_reason.as_deref()),
        ints(rows, "request_bytes", false, |r| Some(r.request_bytes)),
        ints(rows, "response_bytes", false, |r| Some(r.response_bytes)),
        // Added with bill-grade pricing (older files read these as nulls).
        strings(rows, "price_scope", true, |r| r.price_scope.map(|s| s.as_str())),
        strings(rows, "service_tier", true, |r| r.service_tier.map(|t| t.as_str())),
        strings(rows, "latency_mode", true, |r| r.latency_mode.map(|l| l.as_str())),
        ints(rows, "cache_write_5m_tokens", true, |r| r.cache_write_5m_tokens),
        ints(rows, "cache_write_1h_tokens", true, |r| r.cache_write_1h_tokens),
        strings(rows, "price_version", true, |r| r.price_version.as_deref()),
        {
            let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 8);
            for f in &flags {
                b.append_option(f.as_deref());
            }
            (
                Field::new("cost_flags", DataType::Utf8, true),
                Arc::new(b.finish()) as ArrayRef,
            )
        },
        ints(rows, "guardrail_units", true, |r| r.guardrail_units),
        // Added with the optimizer (older files read these as nulls).
        strings(rows, "route_rule", true, |r| r.route_rule.as_deref()),
        strings(rows, "route_action", true, |r| r.route_action),
        // Rows the proxy answered before going upstream made no attempt; the region is the
        // request's unless a fallback moved the call.
        ints(rows, "attempts", true, |r| Some(r.attempts.unwrap_or(0))),
        strings(rows, "region_effective", true, |r| {
            Some(r.region_effective.as_deref().unwrap_or(&r.region))
        }),
        (
            Field::new(
                "cost_usd_baseline",
                DataType::Decimal128(COST_PRECISION, COST_SCALE),
                true,
            ),
            Arc::new(baseline.finish()),
        ),
    ])
}

/// The usage schema.
pub(crate) fn schema() -> SchemaRef {
    let fields: Vec<Field> = columns(&[])
        .map(|c| c.into_iter().map(|(f, _)| f).collect())
        .unwrap_or_default();
    Arc::new(Schema::new(fields))
}

/// Builds one batch from records.
pub(crate) fn to_batch(rows: &[UsageRecord], schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let arrays = columns(rows)?.into_iter().map(|(_, a)| a).collect();
    RecordBatch::try_new(schema.clone(), arrays)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_lists_every_column_once_in_contract_order() {
        let s = schema();
        let names: Vec<&str> = s.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names.len(), 41);
        assert_eq!(&names[..3], &["ts", "request_id", "upstream_request_id"]);
        assert_eq!(names[27], "response_bytes");
        assert_eq!(
            &names[36..],
            &[
                "route_rule",
                "route_action",
                "attempts",
                "region_effective",
                "cost_usd_baseline"
            ]
        );
        assert_eq!(
            &names[28..36],
            &[
                "price_scope",
                "service_tier",
                "latency_mode",
                "cache_write_5m_tokens",
                "cache_write_1h_tokens",
                "price_version",
                "cost_flags",
                "guardrail_units"
            ]
        );
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
    }
}
