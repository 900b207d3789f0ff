//! `/metrics` in Prometheus text format (version 0.0.4). Shard counters and histograms
//! are atomics written by their own shard and summed here; labelled series (by
//! operation, status, model, error type) come from the writer thread's aggregates.
//! Nothing here runs on a request's path except for the scrape itself.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use super::stats::{Histogram, ShardStats, LATENCY_BUCKETS_MS, TLS_FAILURE_REASONS, UPSTREAM_ERROR_KINDS};
use super::Shared;
use crate::usage::record::format_usd;

fn l(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn single(out: &mut String, name: &str, help: &str, kind: &str, v: u64) {
    header(out, name, help, kind);
    let _ = writeln!(out, "{name} {v}");
}

/// Escapes a label value (backslash, quote, newline).
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn histogram(
    out: &mut String,
    name: &str,
    help: &str,
    shards: &[std::sync::Arc<ShardStats>],
    pick: fn(&ShardStats) -> &Histogram,
) {
    header(out, name, help, "histogram");
    let mut cumulative = 0u64;
    for (i, bound) in LATENCY_BUCKETS_MS.iter().enumerate() {
        cumulative += shards.iter().map(|s| l(&pick(s).buckets[i])).sum::<u64>();
        let _ = writeln!(out, "{name}_bucket{{le=\"{}\"}} {cumulative}", bound / 1000.0);
    }
    cumulative += shards
        .iter()
        .map(|s| l(&pick(s).buckets[LATENCY_BUCKETS_MS.len()]))
        .sum::<u64>();
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
    let sum: u64 = shards.iter().map(|s| l(&pick(s).sum_micros)).sum();
    let count: u64 = shards.iter().map(|s| l(&pick(s).count)).sum();
    let _ = writeln!(out, "{name}_sum {}\n{name}_count {count}", sum as f64 / 1e6);
}

/// Renders every metric.
pub fn render(shared: &Shared) -> String {
    let mut out = String::with_capacity(8192);
    let shards = &shared.shard_stats;
    let sum = |f: fn(&ShardStats) -> &AtomicU64| shards.iter().map(|s| l(f(s))).sum::<u64>();

    // From the rows (writer thread).
    let rm = shared.row_metrics.lock().map(|m| m.clone()).unwrap_or_default();
    header(
        &mut out,
        "llmops_requests_total",
        "Bedrock requests by operation, status and effective model",
        "counter",
    );
    let mut reqs: Vec<_> = rm.requests.iter().collect();
    reqs.sort();
    for ((op, status, model), n) in reqs {
        let _ = writeln!(
            out,
            "llmops_requests_total{{operation=\"{op}\",status=\"{status}\",model=\"{}\"}} {n}",
            label(model)
        );
    }
    header(
        &mut out,
        "llmops_tokens_total",
        "tokens by effective model and kind",
        "counter",
    );
    let mut toks: Vec<_> = rm.tokens.iter().collect();
    toks.sort();
    for (model, t) in &toks {
        for (kind, v) in ["input", "output", "cache_read", "cache_write"].iter().zip(t.iter()) {
            let _ = writeln!(
                out,
                "llmops_tokens_total{{model=\"{}\",kind=\"{kind}\"}} {v}",
                label(model)
            );
        }
    }
    header(
        &mut out,
        "llmops_cost_usd_total",
        "exact cost in USD by effective model",
        "counter",
    );
    let mut costs: Vec<_> = rm.cost.iter().collect();
    costs.sort();
    for (model, c) in costs {
        let _ = writeln!(
            out,
            "llmops_cost_usd_total{{model=\"{}\"}} {}",
            label(model),
            format_usd(*c)
        );
    }
    header(
        &mut out,
        "llmops_unpriced_requests_total",
        "answered requests with no cost (no price for the model, tier, token class or meter; see the rows' cost_flags), by effective model",
        "counter",
    );
    let mut unpriced: Vec<_> = rm.unpriced.iter().collect();
    unpriced.sort();
    for (model, n) in unpriced {
        let _ = writeln!(out, "llmops_unpriced_requests_total{{model=\"{}\"}} {n}", label(model));
    }
    header(
        &mut out,
        "llmops_errors_total",
        "requests by error type (proxy code or AWS error type)",
        "counter",
    );
    let mut errs: Vec<_> = rm.errors.iter().collect();
    errs.sort();
    for (t, n) in errs {
        let _ = writeln!(out, "llmops_errors_total{{type=\"{}\"}} {n}", label(t));
    }

    // Shard counters.
    single(
        &mut out,
        "llmops_requests_in_flight",
        "requests being handled",
        "gauge",
        sum(|s| &s.requests_in_flight),
    );
    single(
        &mut out,
        "llmops_client_connections_open",
        "open client connections",
        "gauge",
        sum(|s| &s.connections_open),
    );
    single(
        &mut out,
        "llmops_client_connections_total",
        "accepted client connections",
        "counter",
        sum(|s| &s.connections_total),
    );
    single(
        &mut out,
        "llmops_bad_requests_total",
        "malformed HTTP requests refused",
        "counter",
        sum(|s| &s.bad_requests),
    );
    let open_up: u64 = shards.iter().map(|s| l(&s.upstream_open)).sum();
    single(
        &mut out,
        "llmops_upstream_connections_open",
        "open upstream connections, pooled or in use",
        "gauge",
        open_up,
    );
    single(
        &mut out,
        "llmops_upstream_connects_total",
        "new upstream connections",
        "counter",
        sum(|s| &s.upstream_connects),
    );
    single(
        &mut out,
        "llmops_upstream_reused_total",
        "requests sent on a pooled upstream connection",
        "counter",
        sum(|s| &s.upstream_reused),
    );
    single(
        &mut out,
        "llmops_upstream_retries_total",
        "retries after a reused connection failed before responding",
        "counter",
        sum(|s| &s.upstream_retries),
    );
    header(
        &mut out,
        "llmops_upstream_idle_dropped_total",
        "pooled connections dropped instead of reused",
        "counter",
    );
    let expired: u64 = shards.iter().map(|s| l(&s.pool.expired)).sum();
    let dead: u64 = shards.iter().map(|s| l(&s.pool.dead)).sum();
    let _ = writeln!(
        out,
        "llmops_upstream_idle_dropped_total{{reason=\"expired\"}} {expired}"
    );
    let _ = writeln!(
        out,
        "llmops_upstream_idle_dropped_total{{reason=\"closed_by_peer\"}} {dead}"
    );
    header(
        &mut out,
        "llmops_upstream_errors_total",
        "upstream failures by kind",
        "counter",
    );
    for (i, kind) in UPSTREAM_ERROR_KINDS.iter().enumerate() {
        let n: u64 = shards.iter().map(|s| l(&s.upstream_error_kinds[i])).sum();
        let _ = writeln!(out, "llmops_upstream_errors_total{{kind=\"{kind}\"}} {n}");
    }
    histogram(
        &mut out,
        "llmops_request_duration_seconds",
        "request received to last byte sent",
        shards,
        |s| &s.request_latency,
    );
    histogram(
        &mut out,
        "llmops_upstream_duration_seconds",
        "upstream request sent to last byte received",
        shards,
        |s| &s.upstream_latency,
    );

    // TLS listener.
    header(
        &mut out,
        "llmops_tls_handshakes_total",
        "completed client TLS handshakes by kind",
        "counter",
    );
    let full: u64 = sum(|s| &s.tls_handshakes_full);
    let resumed: u64 = sum(|s| &s.tls_handshakes_resumed);
    let _ = writeln!(out, "llmops_tls_handshakes_total{{kind=\"full\"}} {full}\nllmops_tls_handshakes_total{{kind=\"resumed\"}} {resumed}");
    header(
        &mut out,
        "llmops_tls_handshake_failures_total",
        "failed client TLS handshakes by reason",
        "counter",
    );
    for (i, reason) in TLS_FAILURE_REASONS.iter().enumerate() {
        let n: u64 = shards.iter().map(|s| l(&s.tls_failures[i])).sum();
        let _ = writeln!(out, "llmops_tls_handshake_failures_total{{reason=\"{reason}\"}} {n}");
    }
    let not_after = shared.reloadable.lock().ok().and_then(|r| r.cert_not_after);
    if let Some(t) = not_after {
        header(
            &mut out,
            "llmops_tls_certificate_not_after_seconds",
            "expiry of the served certificate (unix time)",
            "gauge",
        );
        let _ = writeln!(out, "llmops_tls_certificate_not_after_seconds {t}");
    }

    // Budgets.
    if let Some(h) = &shared.budgets {
        let now = crate::util::time::unix_now();
        let (status, limits) = h
            .tracker
            .lock()
            .map(|t| {
                (
                    t.status(now),
                    t.budgets()
                        .iter()
                        .map(|b| (b.name.clone(), b.limit))
                        .collect::<Vec<_>>(),
                )
            })
            .unwrap_or_default();
        header(
            &mut out,
            "llmops_budget_limit_usd",
            "limit of each budget per period",
            "gauge",
        );
        for (name, limit) in &limits {
            let _ = writeln!(
                out,
                "llmops_budget_limit_usd{{budget=\"{}\"}} {}",
                label(name),
                format_usd(*limit)
            );
        }
        header(
            &mut out,
            "llmops_budget_spend_usd",
            "spend of each budget and value in the current period",
            "gauge",
        );
        for st in status.iter().filter(|s| !s.value.is_empty()) {
            let _ = writeln!(
                out,
                "llmops_budget_spend_usd{{budget=\"{}\",value=\"{}\"}} {}",
                label(&st.budget),
                label(&st.value),
                format_usd(st.spent)
            );
        }
        header(
            &mut out,
            "llmops_budget_ratio",
            "spend / limit of each budget and value in the current period",
            "gauge",
        );
        for st in status.iter().filter(|s| !s.value.is_empty()) {
            let ratio = st.spent as f64 / st.limit.max(1) as f64;
            let _ = writeln!(
                out,
                "llmops_budget_ratio{{budget=\"{}\",value=\"{}\"}} {ratio}",
                label(&st.budget),
                label(&st.value)
            );
        }
        header(
            &mut out,
            "llmops_budget_blocked_requests_total",
            "requests refused by each budget",
            "counter",
        );
        for (name, _) in &limits {
            let n = status
                .iter()
                .filter(|x| &x.budget == name)
                .map(|x| x.blocked_requests)
                .max()
                .unwrap_or(0);
            let _ = writeln!(
                out,
                "llmops_budget_blocked_requests_total{{budget=\"{}\"}} {n}",
                label(name)
            );
        }
    }
    if let Some(st) = &shared.store_stats {
        single(
            &mut out,
            "llmops_budget_store_up",
            "1 while the shared budget store answers",
            "gauge",
            st.up.load(Ordering::Relaxed) as u64,
        );
        single(
            &mut out,
            "llmops_budget_store_errors_total",
            "failed syncs with the shared budget store",
            "counter",
            l(&st.errors),
        );
    }

    // Usage pipeline.
    single(
        &mut out,
        "usage_records_dropped_total",
        "usage rows dropped because a shard queue was full",
        "counter",
        shared.dropped.load(Ordering::Relaxed),
    );
    let w = &shared.writer_stats;
    single(
        &mut out,
        "llmops_usage_rows_written_total",
        "usage rows written to Parquet",
        "counter",
        l(&w.rows_written),
    );
    single(
        &mut out,
        "llmops_parquet_files_rolled_total",
        "Parquet files closed and published",
        "counter",
        l(&w.files_rolled),
    );
    single(
        &mut out,
        "llmops_usage_write_errors_total",
        "failed Parquet writes",
        "counter",
        l(&w.write_errors),
    );
    header(
        &mut out,
        "llmops_usage_writer_lag_seconds",
        "request received to its row being taken by the writer (last batch)",
        "gauge",
    );
    let _ = writeln!(out, "llmops_usage_writer_lag_seconds {}", rm.writer_lag_seconds);
    let last = w.last_drain.load(Ordering::Relaxed);
    let age = if last == 0 {
        0.0
    } else {
        (crate::util::time::unix_now_micros() - last).max(0) as f64 / 1e6
    };
    header(
        &mut out,
        "llmops_usage_writer_idle_seconds",
        "time since the writer last drained the queues (stuck writer if large)",
        "gauge",
    );
    let _ = writeln!(out, "llmops_usage_writer_idle_seconds {age}");

    header(
        &mut out,
        "llmops_shard_driver",
        "I/O driver of each shard (1 = in use)",
        "gauge",
    );
    for (i, s) in shards.iter().enumerate() {
        let _ = writeln!(
            out,
            "llmops_shard_driver{{shard=\"{i}\",driver=\"{}\"}} 1",
            s.driver().map_or("unknown", |d| d.as_str())
        );
    }
    single(
        &mut out,
        "llmops_draining",
        "1 while the proxy drains for shutdown",
        "gauge",
        shared.draining.load(Ordering::Relaxed) as u64,
    );
    out
}
