//! `/metrics` in Prometheus text format (version 0.0.4). Shard counters and histograms
//! are atomics written by their own shard and summed here, listed once in tables (an
//! unlabelled metric per row; a labelled family per typed label enum, whose `ALL` list is
//! the same one the counting uses); labelled series by operation, status, model and error
//! type come from the writer thread's aggregates. Nothing here runs on a request's path
//! except for the scrape itself.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::optimizer::rules::FALLBACK_ERRORS;
use crate::proxy::shard::Shared;
use crate::proxy::stats::{Histogram, ShardStats, LATENCY_BUCKETS_MS};
use crate::tls::server::TlsFailure;
use crate::upstream::ErrorKind;
use crate::usage::record::format_usd;
use crate::util::snapshot::lock;

fn l(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

/// Prometheus metric types.
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: Kind) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {}", kind.as_str());
}

/// Escapes a label value (backslash, quote, newline).
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// An unlabelled metric summed over the shards: name, help, kind, getter.
type ShardMetric = (&'static str, &'static str, Kind, fn(&ShardStats) -> u64);

/// Unlabelled metrics summed over the shards.
const SHARD_METRICS: &[ShardMetric] = &[
    (
        "llmops_requests_in_flight",
        "requests being handled",
        Kind::Gauge,
        |s| l(&s.requests_in_flight),
    ),
    (
        "llmops_client_connections_open",
        "open client connections",
        Kind::Gauge,
        |s| l(&s.connections_open),
    ),
    (
        "llmops_client_connections_total",
        "accepted client connections",
        Kind::Counter,
        |s| l(&s.connections_total),
    ),
    (
        "llmops_client_connections_refused_total",
        "client connections refused at --max-connections",
        Kind::Counter,
        |s| l(&s.connections_refused),
    ),
    (
        "llmops_bad_requests_total",
        "malformed HTTP requests refused",
        Kind::Counter,
        |s| l(&s.bad_requests),
    ),
    (
        "llmops_upstream_connections_open",
        "open upstream connections, pooled or in use",
        Kind::Gauge,
        |s| l(&s.upstream.open),
    ),
    (
        "llmops_upstream_connects_total",
        "new upstream connections",
        Kind::Counter,
        |s| l(&s.upstream.connects),
    ),
    (
        "llmops_upstream_reused_total",
        "requests sent on a pooled upstream connection",
        Kind::Counter,
        |s| l(&s.upstream.reused),
    ),
    (
        "llmops_upstream_retries_total",
        "retries after a reused connection failed before the request was wholly written",
        Kind::Counter,
        |s| l(&s.upstream.retries),
    ),
];

/// Labelled families summed over the shards: (name, help, label, [(value, getter)]).
type Family = (
    &'static str,
    &'static str,
    &'static str,
    Vec<(&'static str, Box<dyn Fn(&ShardStats) -> u64>)>,
);

fn shard_families() -> Vec<Family> {
    vec![
        (
            "llmops_upstream_idle_dropped_total",
            "pooled connections dropped instead of reused",
            "reason",
            vec![
                ("expired", Box::new(|s: &ShardStats| l(&s.upstream.pool.expired))),
                ("closed_by_peer", Box::new(|s: &ShardStats| l(&s.upstream.pool.dead))),
            ],
        ),
        (
            "llmops_upstream_errors_total",
            "upstream failures by kind",
            "kind",
            ErrorKind::ALL
                .iter()
                .map(|k| {
                    let k = *k;
                    (
                        k.as_str(),
                        Box::new(move |s: &ShardStats| s.upstream.errors_of(k)) as Box<dyn Fn(&ShardStats) -> u64>,
                    )
                })
                .collect(),
        ),
        (
            "llmops_tls_handshakes_total",
            "completed client TLS handshakes by kind",
            "kind",
            vec![
                ("full", Box::new(|s: &ShardStats| l(&s.tls_handshakes_full))),
                ("resumed", Box::new(|s: &ShardStats| l(&s.tls_handshakes_resumed))),
            ],
        ),
        (
            "llmops_tls_handshake_failures_total",
            "failed client TLS handshakes by reason",
            "reason",
            TlsFailure::ALL
                .iter()
                .map(|r| {
                    let r = *r;
                    (
                        r.as_str(),
                        Box::new(move |s: &ShardStats| l(&s.tls_failures[r as usize]))
                            as Box<dyn Fn(&ShardStats) -> u64>,
                    )
                })
                .collect(),
        ),
        (
            "llmops_route_fallbacks_total",
            "optimizer fallback attempts, by the unbilled answer that caused them",
            "reason",
            FALLBACK_ERRORS
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    (
                        *r,
                        Box::new(move |s: &ShardStats| l(&s.fallbacks[i])) as Box<dyn Fn(&ShardStats) -> u64>,
                    )
                })
                .collect(),
        ),
    ]
}

fn histogram(
    out: &mut String,
    name: &str,
    help: &str,
    shards: &[std::sync::Arc<ShardStats>],
    pick: fn(&ShardStats) -> &Histogram,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
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

/// The shards' counters, families and histograms.
fn shard_metrics(out: &mut String, shards: &[std::sync::Arc<ShardStats>]) {
    for (name, help, kind, get) in SHARD_METRICS {
        header(out, name, help, *kind);
        let _ = writeln!(out, "{name} {}", shards.iter().map(|s| get(s)).sum::<u64>());
    }
    for (name, help, label_name, values) in shard_families() {
        header(out, name, help, Kind::Counter);
        for (value, get) in &values {
            let n: u64 = shards.iter().map(|s| get(s)).sum();
            let _ = writeln!(out, "{name}{{{label_name}=\"{value}\"}} {n}");
        }
    }
    histogram(
        out,
        "llmops_request_duration_seconds",
        "request received to last byte sent",
        shards,
        |s| &s.request_latency,
    );
    histogram(
        out,
        "llmops_upstream_duration_seconds",
        "upstream request sent to last byte received",
        shards,
        |s| &s.upstream_latency,
    );
}

/// What the writer aggregated from the rows: labelled by operation, status, model, type.
fn row_metrics(out: &mut String, shared: &Shared) {
    let rm = lock(&shared.row_metrics).clone();
    header(
        out,
        "llmops_requests_total",
        "Bedrock requests by operation, status and effective model",
        Kind::Counter,
    );
    let mut reqs: Vec<_> = rm
        .requests
        .iter()
        .flat_map(|(model, by)| by.iter().map(move |((op, status), n)| (op, status, model, n)))
        .collect();
    reqs.sort();
    for (op, status, model, n) in reqs {
        let _ = writeln!(
            out,
            "llmops_requests_total{{operation=\"{op}\",status=\"{status}\",model=\"{}\"}} {n}",
            label(model)
        );
    }
    header(
        out,
        "llmops_tokens_total",
        "tokens by effective model and kind",
        Kind::Counter,
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
        out,
        "llmops_cost_usd_total",
        "exact cost in USD by effective model",
        Kind::Counter,
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
        out,
        "llmops_unpriced_requests_total",
        "answered requests with no cost (no price for the model, tier, token class or meter; see the rows' cost_flags), by effective model",
        Kind::Counter,
    );
    let mut unpriced: Vec<_> = rm.unpriced.iter().collect();
    unpriced.sort();
    for (model, n) in unpriced {
        let _ = writeln!(out, "llmops_unpriced_requests_total{{model=\"{}\"}} {n}", label(model));
    }
    header(
        out,
        "llmops_errors_total",
        "requests by error type (proxy code or AWS error type)",
        Kind::Counter,
    );
    let mut errs: Vec<_> = rm.errors.iter().collect();
    errs.sort();
    for (t, n) in errs {
        let _ = writeln!(out, "llmops_errors_total{{type=\"{}\"}} {n}", label(t));
    }
    header(
        out,
        "llmops_route_decisions_total",
        "requests an optimizer rule decided for, by rule and action (--routes)",
        Kind::Counter,
    );
    let mut routes: Vec<_> = rm.routes.iter().collect();
    routes.sort();
    for ((rule, action), (n, _)) in &routes {
        let _ = writeln!(
            out,
            "llmops_route_decisions_total{{rule=\"{}\",action=\"{action}\"}} {n}",
            label(rule)
        );
    }
    header(
        out,
        "llmops_route_savings_usd",
        "what the optimizer's decisions saved since start (baseline cost minus cost; negative when a fallback cost more), by rule",
        Kind::Gauge,
    );
    for ((rule, action), (_, saved)) in &routes {
        let _ = writeln!(
            out,
            "llmops_route_savings_usd{{rule=\"{}\",action=\"{action}\"}} {}",
            label(rule),
            format_usd(*saved)
        );
    }
    header(
        out,
        "llmops_usage_writer_lag_seconds",
        "request received to its row being taken by the writer (last batch)",
        Kind::Gauge,
    );
    let _ = writeln!(out, "llmops_usage_writer_lag_seconds {}", rm.writer_lag_seconds);
}

/// Budgets: limits, spend and ratio per value, refusals.
fn budget_metrics(out: &mut String, shared: &Shared) {
    if let Some(h) = &shared.budgets {
        let now = crate::util::time::unix_now();
        let (status, limits, overflow) = {
            let t = lock(&h.tracker);
            let limits: Vec<(String, i128)> = t.budgets().iter().map(|b| (b.name.clone(), b.limit)).collect();
            let overflow: Vec<(String, u64)> = t
                .budgets()
                .iter()
                .map(|b| (b.name.clone(), t.overflow_rows(&b.name)))
                .collect();
            (t.status(now), limits, overflow)
        };
        header(
            out,
            "llmops_budget_overflow_rows_total",
            "rows of a \"*\" budget counted under the shared key (other): values past its cap",
            Kind::Counter,
        );
        for (name, n) in &overflow {
            let _ = writeln!(
                out,
                "llmops_budget_overflow_rows_total{{budget=\"{}\"}} {n}",
                label(name)
            );
        }
        header(
            out,
            "llmops_budget_limit_usd",
            "limit of each budget per period",
            Kind::Gauge,
        );
        for (name, limit) in &limits {
            let _ = writeln!(
                out,
                "llmops_budget_limit_usd{{budget=\"{}\"}} {}",
                label(name),
                format_usd(*limit)
            );
        }
        let values: Vec<_> = status.iter().filter(|s| !s.value.is_empty()).collect();
        header(
            out,
            "llmops_budget_spend_usd",
            "spend of each budget and value in the current period",
            Kind::Gauge,
        );
        for st in &values {
            let (b, v) = (label(&st.budget), label(&st.value));
            let _ = writeln!(
                out,
                "llmops_budget_spend_usd{{budget=\"{b}\",value=\"{v}\"}} {}",
                format_usd(st.spent)
            );
        }
        header(
            out,
            "llmops_budget_ratio",
            "spend / limit of each budget and value in the current period",
            Kind::Gauge,
        );
        for st in &values {
            let ratio = st.spent as f64 / st.limit.max(1) as f64;
            let (b, v) = (label(&st.budget), label(&st.value));
            let _ = writeln!(out, "llmops_budget_ratio{{budget=\"{b}\",value=\"{v}\"}} {ratio}");
        }
        header(
            out,
            "llmops_budget_blocked_requests_total",
            "requests refused by each budget",
            Kind::Counter,
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
}

/// Unlabelled process-wide metrics: (name, help, kind, value).
fn process_metrics(shared: &Shared) -> Vec<(&'static str, &'static str, Kind, String)> {
    let lg = &shared.ledger;
    let w = &lg.stats;
    let last = w.last_drain.load(Ordering::Relaxed);
    let now = crate::util::time::unix_now_micros();
    let since = |micros: i64| {
        if micros == 0 {
            0.0
        } else {
            (now - micros).max(0) as f64 / 1e6
        }
    };
    let counter = |name, help, v: u64| (name, help, Kind::Counter, v.to_string());
    let gauge = |name, help, v: String| (name, help, Kind::Gauge, v);
    let mut v = vec![
        counter(
            "usage_records_dropped_total",
            "usage rows not kept because the journal was full (--on-ledger-full=serve)",
            lg.lost(),
        ),
        counter(
            "llmops_usage_rows_written_total",
            "usage rows in closed, fsynced, published Parquet files",
            l(&w.rows_written),
        ),
        counter(
            "llmops_usage_rows_read_total",
            "usage rows the writer took from the journals (metrics and budgets include them)",
            // Acquire: the backlog gauges read below are at least as new as this count.
            w.rows_read.load(Ordering::Acquire),
        ),
        counter(
            "llmops_parquet_files_rolled_total",
            "Parquet files closed and published",
            l(&w.files_rolled),
        ),
        counter(
            "llmops_usage_write_errors_total",
            "failed Parquet writes, fsyncs, checkpoints and renames (retried)",
            l(&w.write_errors),
        ),
        gauge(
            "llmops_usage_writer_idle_seconds",
            "time since the writer last read the journals (stuck writer if large)",
            since(last).to_string(),
        ),
        gauge(
            "llmops_ledger_backlog_rows",
            "rows read from the journals and not yet in a published file",
            l(&w.backlog_rows).to_string(),
        ),
        gauge(
            "llmops_ledger_backlog_bytes",
            "journal bytes not yet covered by a checkpoint",
            l(&w.backlog_bytes).to_string(),
        ),
        gauge(
            "llmops_ledger_oldest_unwritten_seconds",
            "age of the oldest row not yet in a published file (0: none)",
            since(w.oldest_unwritten.load(Ordering::Relaxed)).to_string(),
        ),
        gauge(
            "llmops_ledger_journal_bytes",
            "journal segments on disk, bytes",
            l(&w.journal_bytes).to_string(),
        ),
        gauge(
            "llmops_ledger_max_bytes",
            "the journal bound (--ledger-max-bytes)",
            lg.max_bytes.to_string(),
        ),
        gauge(
            "llmops_ledger_full_shards",
            "shards whose journal has no room for another row",
            lg.full_shards().to_string(),
        ),
        gauge(
            "llmops_ledger_degraded",
            "1 while usage writes fail or journal segments cannot be made",
            (w.degraded.load(Ordering::Relaxed) as u64).to_string(),
        ),
        counter(
            "llmops_ledger_refused_requests_total",
            "requests refused with 503 LedgerUnavailable (journal full)",
            lg.refused(),
        ),
        counter(
            "llmops_ledger_recovered_rows_total",
            "rows replayed from the journal into Parquet at start-up",
            l(&w.recovered_rows),
        ),
        counter(
            "llmops_ledger_skipped_records_total",
            "damaged journal records skipped (torn tail after a power cut)",
            l(&w.skipped_records),
        ),
        counter(
            "llmops_ledger_quarantined_files_total",
            "unreadable files moved to _quarantine/ at start-up",
            l(&w.quarantined_files),
        ),
        counter(
            "llmops_log_lines_dropped_total",
            "log lines dropped because stderr did not keep up (shards and the writer never wait on it)",
            crate::log::dropped_lines(),
        ),
        (
            "llmops_draining",
            "1 while the proxy drains for shutdown",
            Kind::Gauge,
            (shared.draining.load(Ordering::Relaxed) as u64).to_string(),
        ),
    ];
    if let Some(st) = &shared.store_stats {
        v.push((
            "llmops_budget_store_up",
            "1 while the shared budget store answers",
            Kind::Gauge,
            (st.up.load(Ordering::Relaxed) as u64).to_string(),
        ));
        v.push((
            "llmops_budget_store_errors_total",
            "failed syncs with the shared budget store",
            Kind::Counter,
            l(&st.errors).to_string(),
        ));
    }
    if let Some(t) = shared.reloadable.current().cert_not_after {
        v.push((
            "llmops_tls_certificate_not_after_seconds",
            "expiry of the served certificate (unix time)",
            Kind::Gauge,
            t.to_string(),
        ));
    }
    v
}

/// Renders every metric.
pub fn render(shared: &Shared) -> String {
    let mut out = String::with_capacity(8192);
    row_metrics(&mut out, shared);
    shard_metrics(&mut out, &shared.shard_stats);
    budget_metrics(&mut out, shared);
    for (name, help, kind, value) in process_metrics(shared) {
        header(&mut out, name, help, kind);
        let _ = writeln!(out, "{name} {value}");
    }
    header(
        &mut out,
        "llmops_shard_driver",
        "I/O driver of each shard (1 = in use)",
        Kind::Gauge,
    );
    for (i, s) in shared.shard_stats.iter().enumerate() {
        let d = s.driver().map_or("unknown", |d| d.as_str());
        let _ = writeln!(out, "llmops_shard_driver{{shard=\"{i}\",driver=\"{d}\"}} 1");
    }
    out
}
