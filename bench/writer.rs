//! Criterion benchmark of the usage writer alone: rows per second into zstd Parquet
//! (Arrow batch building, encoding, compression, footer), without the proxy.
//! Run: `cargo bench --bench writer`.

// A test: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use llmops_proxy::usage::ledger::sink::{ParquetSink, WriterConfig};
use llmops_proxy::usage::UsageRecord;

/// Rows per measured write.
const ROWS: usize = 100_000;

fn rows() -> Vec<UsageRecord> {
    let models = [
        "amazon.nova-lite-v1:0",
        "us.anthropic.claude-sonnet-4-6",
        "us.meta.llama3-1-8b-instruct-v1:0",
    ];
    (0..ROWS)
        .map(|i| UsageRecord {
            ts_micros: 1_764_072_000_000_000 + i as i64 * 1000,
            request_id: format!("{:08x}{:04x}{:012x}", 0xdead_beefu32, 1, i),
            upstream_request_id: Some(format!("00000000-0000-4000-8000-{i:012x}")),
            tenant: format!("trk:{:012x}", i % 50),
            department: Some(["eng", "sales", "ops"][i % 3].into()),
            project: Some(format!("project-{}", i % 20)),
            agent: Some(format!("agent-{}", i % 100)),
            operation: "converse",
            region: "us-east-1".into(),
            model_requested: models[i % 3].trim_start_matches("us.").into(),
            model_effective: models[i % 3].into(),
            status: if i % 50 == 0 { 429 } else { 200 },
            error_type: (i % 50 == 0).then(|| "ThrottlingException".into()),
            input_tokens: Some(100 + (i % 900) as i64),
            output_tokens: Some(20 + (i % 400) as i64),
            total_tokens: Some(120 + (i % 1300) as i64),
            cost_pico_usd: Some(1_000_000 * (i % 997) as i128),
            price_id: Some(models[i % 3].into()),
            latency_ms: 120.5 + (i % 100) as f64,
            upstream_latency_ms: Some(118.0),
            upstream_ttfb_ms: Some(60.0),
            provider_latency_ms: Some(110),
            stop_reason: Some("end_turn".into()),
            request_bytes: 1200,
            response_bytes: 800,
            ..Default::default()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let data = rows();
    let dir = std::env::temp_dir().join(format!("llmops-writer-bench-{}", std::process::id()));
    let mut g = c.benchmark_group("usage_writer");
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function("parquet_zstd_100k_rows", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let _ = std::fs::remove_dir_all(&dir);
                let cfg = WriterConfig {
                    dir: dir.clone(),
                    roll_interval: Duration::from_secs(3600),
                    roll_rows: usize::MAX,
                    roll_bytes: usize::MAX,
                    host: "bench".into(),
                };
                let mut sink = ParquetSink::new(cfg);
                let t = Instant::now();
                sink.write(&data).expect("write");
                sink.close().expect("close");
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
