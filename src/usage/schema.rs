//! The Parquet/Arrow schema of the usage file (DESIGN.md §3: names and types are a
//! contract) and the conversion of records to an Arrow `RecordBatch`.

use std::sync::Arc;

use arrow_array::builder::{
    Decimal128Builder, Float64Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder, UInt16Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};

use super::record::UsageRecord;

/// Precision and scale of `cost_usd`.
pub const COST_PRECISION: u8 = 38;
pub const COST_SCALE: i8 = 12;

/// The usage schema.
pub fn schema() -> SchemaRef {
    let s = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let i = |name: &str| Field::new(name, DataType::Int64, true);
    Arc::new(Schema::new(vec![
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        s("request_id", false),
        s("upstream_request_id", true),
        s("tenant", false),
        s("department", true),
        s("project", true),
        s("agent", true),
        s("operation", false),
        s("region", false),
        s("model_requested", false),
        s("model_effective", false),
        Field::new("status", DataType::UInt16, false),
        s("error_type", true),
        s("error_message", true),
        i("input_tokens"),
        i("output_tokens"),
        i("total_tokens"),
        i("cache_read_tokens"),
        i("cache_write_tokens"),
        Field::new("cost_usd", DataType::Decimal128(COST_PRECISION, COST_SCALE), true),
        s("price_id", true),
        Field::new("latency_ms", DataType::Float64, false),
        Field::new("upstream_latency_ms", DataType::Float64, true),
        Field::new("upstream_ttfb_ms", DataType::Float64, true),
        Field::new("provider_latency_ms", DataType::Int64, true),
        s("stop_reason", true),
        Field::new("request_bytes", DataType::Int64, false),
        Field::new("response_bytes", DataType::Int64, false),
    ]))
}

/// Builds one batch from records.
pub fn to_batch(rows: &[UsageRecord], schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let mut ts = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut strs: Vec<StringBuilder> = (0..14).map(|_| StringBuilder::with_capacity(n, n * 16)).collect();
    let mut status = UInt16Builder::with_capacity(n);
    let mut ints: Vec<Int64Builder> = (0..8).map(|_| Int64Builder::with_capacity(n)).collect();
    let mut cost = Decimal128Builder::with_capacity(n).with_precision_and_scale(COST_PRECISION, COST_SCALE)?;
    let mut floats: Vec<Float64Builder> = (0..3).map(|_| Float64Builder::with_capacity(n)).collect();
    for r in rows {
        ts.append_value(r.ts_micros);
        let sv: [Option<&str>; 14] = [
            Some(&r.request_id),
            r.upstream_request_id.as_deref(),
            Some(&r.tenant),
            r.department.as_deref(),
            r.project.as_deref(),
            r.agent.as_deref(),
            Some(r.operation),
            Some(&r.region),
            Some(&r.model_requested),
            Some(&r.model_effective),
            r.error_type.as_deref(),
            r.error_message.as_deref(),
            r.price_id.as_deref(),
            r.stop_reason.as_deref(),
        ];
        for (b, v) in strs.iter_mut().zip(sv) {
            b.append_option(v);
        }
        status.append_value(r.status);
        let iv = [
            r.input_tokens,
            r.output_tokens,
            r.total_tokens,
            r.cache_read_tokens,
            r.cache_write_tokens,
            r.provider_latency_ms,
            Some(r.request_bytes),
            Some(r.response_bytes),
        ];
        for (b, v) in ints.iter_mut().zip(iv) {
            b.append_option(v);
        }
        cost.append_option(r.cost_pico_usd);
        let fv = [Some(r.latency_ms), r.upstream_latency_ms, r.upstream_ttfb_ms];
        for (b, v) in floats.iter_mut().zip(fv) {
            b.append_option(v);
        }
    }
    let mut s = strs.into_iter().map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let mut i = ints.into_iter().map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let mut f = floats.into_iter().map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let next = |it: &mut dyn Iterator<Item = ArrayRef>| {
        it.next().ok_or_else(|| ArrowError::SchemaError("column count".into()))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(ts.finish()),
        next(&mut s)?, // request_id
        next(&mut s)?, // upstream_request_id
        next(&mut s)?, // tenant
        next(&mut s)?, // department
        next(&mut s)?, // project
        next(&mut s)?, // agent
        next(&mut s)?, // operation
        next(&mut s)?, // region
        next(&mut s)?, // model_requested
        next(&mut s)?, // model_effective
        Arc::new(status.finish()),
        next(&mut s)?, // error_type
        next(&mut s)?, // error_message
        next(&mut i)?, // input_tokens
        next(&mut i)?, // output_tokens
        next(&mut i)?, // total_tokens
        next(&mut i)?, // cache_read_tokens
        next(&mut i)?, // cache_write_tokens
        Arc::new(cost.finish()),
        next(&mut s)?, // price_id
        next(&mut f)?, // latency_ms
        next(&mut f)?, // upstream_latency_ms
        next(&mut f)?, // upstream_ttfb_ms
        next(&mut i)?, // provider_latency_ms
        next(&mut s)?, // stop_reason
        next(&mut i)?, // request_bytes
        next(&mut i)?, // response_bytes
    ];
    RecordBatch::try_new(schema.clone(), columns)
}
