//! `/metrics` in Prometheus text format, summed over shards from their atomics.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::Shared;

fn counter(out: &mut String, name: &str, help: &str, kind: &str, v: u64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
}

/// Renders every metric.
pub fn render(shared: &Shared) -> String {
    let mut out = String::with_capacity(4096);
    let sum = |f: &dyn Fn(&super::stats::ShardStats) -> u64| shared.shard_stats.iter().map(|s| f(s)).sum::<u64>();
    let l = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    counter(
        &mut out,
        "llmops_requests_total",
        "Bedrock requests handled",
        "counter",
        sum(&|s| l(&s.requests_total)),
    );
    let _ = writeln!(
        out,
        "# HELP llmops_responses_total Bedrock responses by status class\n# TYPE llmops_responses_total counter"
    );
    for (class, f) in [
        (
            "2xx",
            (&|s: &super::stats::ShardStats| l(&s.responses_2xx)) as &dyn Fn(&super::stats::ShardStats) -> u64,
        ),
        ("4xx", &|s| l(&s.responses_4xx)),
        ("5xx", &|s| l(&s.responses_5xx)),
    ] {
        let _ = writeln!(out, "llmops_responses_total{{class=\"{class}\"}} {}", sum(f));
    }
    counter(
        &mut out,
        "llmops_requests_in_flight",
        "requests being handled",
        "gauge",
        sum(&|s| l(&s.requests_in_flight)),
    );
    counter(
        &mut out,
        "llmops_client_connections_open",
        "open client connections",
        "gauge",
        sum(&|s| l(&s.connections_open)),
    );
    counter(
        &mut out,
        "llmops_client_connections_total",
        "accepted client connections",
        "counter",
        sum(&|s| l(&s.connections_total)),
    );
    counter(
        &mut out,
        "llmops_bad_requests_total",
        "malformed HTTP requests refused",
        "counter",
        sum(&|s| l(&s.bad_requests)),
    );
    counter(
        &mut out,
        "llmops_upstream_errors_total",
        "upstream failures (connect, TLS, I/O, timeout)",
        "counter",
        sum(&|s| l(&s.upstream_errors)),
    );
    counter(
        &mut out,
        "llmops_upstream_timeouts_total",
        "upstream timeouts",
        "counter",
        sum(&|s| l(&s.upstream_timeouts)),
    );
    counter(
        &mut out,
        "llmops_upstream_connects_total",
        "new upstream connections",
        "counter",
        sum(&|s| l(&s.upstream_connects)),
    );
    counter(
        &mut out,
        "llmops_upstream_reused_total",
        "requests sent on a pooled upstream connection",
        "counter",
        sum(&|s| l(&s.upstream_reused)),
    );
    counter(
        &mut out,
        "llmops_upstream_retries_total",
        "retries after a reused connection failed before responding",
        "counter",
        sum(&|s| l(&s.upstream_retries)),
    );
    counter(
        &mut out,
        "llmops_unpriced_requests_total",
        "successful requests whose model has no price",
        "counter",
        sum(&|s| l(&s.unpriced)),
    );
    counter(
        &mut out,
        "usage_records_dropped_total",
        "usage rows dropped because a shard queue was full",
        "counter",
        shared.dropped.load(Ordering::Relaxed),
    );
    let w = &shared.writer_stats;
    counter(
        &mut out,
        "llmops_usage_rows_written_total",
        "usage rows written to Parquet",
        "counter",
        w.rows_written.load(Ordering::Relaxed),
    );
    counter(
        &mut out,
        "llmops_parquet_files_rolled_total",
        "Parquet files closed and published",
        "counter",
        w.files_rolled.load(Ordering::Relaxed),
    );
    counter(
        &mut out,
        "llmops_usage_write_errors_total",
        "failed Parquet writes",
        "counter",
        w.write_errors.load(Ordering::Relaxed),
    );
    let _ = writeln!(
        out,
        "# HELP llmops_shard_driver I/O driver of each shard (1 = in use)\n# TYPE llmops_shard_driver gauge"
    );
    for (i, s) in shared.shard_stats.iter().enumerate() {
        let _ = writeln!(
            out,
            "llmops_shard_driver{{shard=\"{i}\",driver=\"{}\"}} 1",
            s.driver().as_str()
        );
    }
    let draining = shared.draining.load(Ordering::Relaxed) as u64;
    counter(
        &mut out,
        "llmops_draining",
        "1 while the proxy drains for shutdown",
        "gauge",
        draining,
    );
    out
}
