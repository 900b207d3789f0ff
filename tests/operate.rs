//! Operating it: `/metrics` parsed line by line with exact values, one access-log line
//! per request (and no secrets), SIGHUP reloading keys (bad file rejected, old kept,
//! open connections kept), `--help` for every subcommand, exit code 2 naming the flag.

// A test: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use common::*;

fn get(addr: std::net::SocketAddr, path: &str) -> Resp {
    raw(addr, format!("GET {path} HTTP/1.1\r\nHost: p\r\n\r\n").as_bytes()).unwrap()
}

#[test]
fn metrics_and_access_log() {
    let m = mock();
    let dir = temp_dir("metrics");
    let mut p = proxy(m.addr, &dir, &[]);
    let mut sent_in = 0i64;
    for i in 0..5 {
        let b = body(&format!("metrics {i}"));
        sent_in += llmops_proxy::mock::mock_usage(b.len()).0;
        assert_eq!(
            converse(p.addr, "amazon.nova-lite-v1:0", &good_headers(), &b).status,
            200
        );
    }
    assert_eq!(
        converse(p.addr, "mock.throttle", &good_headers(), &body("t")).status,
        429
    );
    let bad: Vec<_> = good_headers()
        .into_iter()
        .filter(|(k, _)| k != "X-Cloudidr-Key")
        .collect();
    assert_eq!(converse(p.addr, "amazon.nova-lite-v1:0", &bad, &body("k")).status, 400);
    let series = |p: &Proc| {
        let r = get(p.addr, "/metrics");
        assert_eq!(r.status, 200);
        assert!(r.header("content-type").unwrap().starts_with("text/plain"));
        Metrics::parse(&r.text()).0
    };
    assert!(wait_for(Duration::from_secs(5), || {
        series(&p).get("llmops_usage_rows_read_total").copied() == Some(7.0)
    }));
    let s = series(&p);
    // Written means in a closed, fsynced, published file: not before the 60 s roll.
    assert_eq!(s.get("llmops_usage_rows_written_total"), Some(&0.0));
    assert_eq!(s.get("llmops_ledger_backlog_rows"), Some(&7.0));
    assert_eq!(s.get("llmops_ledger_degraded"), Some(&0.0));
    let ok = "llmops_requests_total{operation=\"converse\",status=\"200\",model=\"amazon.nova-lite-v1:0\"}";
    assert_eq!(s.get(ok), Some(&5.0), "{s:#?}");
    assert_eq!(
        s.get("llmops_requests_total{operation=\"converse\",status=\"429\",model=\"mock.throttle\"}"),
        Some(&1.0)
    );
    assert_eq!(
        s.get("llmops_tokens_total{model=\"amazon.nova-lite-v1:0\",kind=\"input\"}"),
        Some(&(sent_in as f64))
    );
    assert!(
        s.get("llmops_cost_usd_total{model=\"amazon.nova-lite-v1:0\"}")
            .copied()
            .unwrap()
            > 0.0
    );
    assert_eq!(s.get("llmops_errors_total{type=\"ThrottlingException\"}"), Some(&1.0));
    assert_eq!(s.get("llmops_errors_total{type=\"MissingTrackingKey\"}"), Some(&1.0));
    assert_eq!(s.get("llmops_request_duration_seconds_count"), Some(&7.0));
    assert_eq!(s.get("llmops_request_duration_seconds_bucket{le=\"+Inf\"}"), Some(&7.0));
    assert_eq!(s.get("llmops_upstream_duration_seconds_count"), Some(&6.0));
    assert_eq!(s.get("usage_records_dropped_total"), Some(&0.0));
    assert_eq!(
        s.get("llmops_upstream_connections_open").copied().map(|v| v >= 1.0),
        Some(true)
    );
    let driver = if std::env::var("MONOIO_FORCE_LEGACY_DRIVER").is_ok() {
        "epoll"
    } else {
        "io_uring"
    };
    assert_eq!(
        s.get(&format!("llmops_shard_driver{{shard=\"0\",driver=\"{driver}\"}}")),
        Some(&1.0),
        "{s:#?}"
    );
    assert!(p.logs().contains(&format!("driver={driver}")));
    assert_eq!(s.get("llmops_draining"), Some(&0.0));

    assert_eq!(p.terminate(), Some(0));
    let logs = p.logs();
    let access: Vec<&str> = logs.lines().filter(|l| l.contains(" access ")).collect();
    assert_eq!(access.len(), 7, "{logs}");
    assert!(access
        .iter()
        .any(|l| l.contains("status=429") && l.contains("model=mock.throttle")));
    for secret in [SECRET, TRACKING_KEY, "metrics 0"] {
        assert!(!logs.contains(secret), "log holds {secret}");
    }
}

#[test]
fn json_logs() {
    let m = mock();
    let dir = temp_dir("jsonlog");
    let mut p = proxy(m.addr, &dir, &["--log-format", "json"]);
    assert_eq!(
        converse(p.addr, "amazon.nova-lite-v1:0", &good_headers(), &body("j")).status,
        200
    );
    assert_eq!(p.terminate(), Some(0));
    let logs = p.logs();
    for line in logs.lines() {
        assert!(line.starts_with("{\"ts\":\"") && line.ends_with('}'), "{line}");
    }
    assert!(logs
        .lines()
        .any(|l| l.contains("\"event\":\"access\"") && l.contains("\"status\":\"200\"")));
}

#[test]
fn sighup_reloads_keys_and_keeps_connections() {
    let m = mock();
    let dir = temp_dir("sighup");
    let keys = dir.join("keys.toml");
    let write_keys = |tokens: &[(&str, &str)]| {
        let mut t = String::new();
        for (name, tok) in tokens {
            t.push_str(&format!(
                "[[key]]\nname = \"{name}\"\nsha256 = \"{}\"\n",
                sha256_hex(tok.as_bytes())
            ));
        }
        std::fs::write(&keys, t).unwrap();
    };
    write_keys(&[("first", TRACKING_KEY)]);
    let p = proxy(m.addr, &dir, &["--keys", keys.to_str().unwrap()]);
    let new_key = "trk_rotated_key_0000000000001";
    let with_key = |k: &str| Headers::good().set("X-Cloudidr-Key", k).vec();
    // A keep-alive connection opened before the reload.
    let mut keep = connect(p.addr);
    let mut pending = Vec::new();
    keep.write_all(&request(
        "/bedrock/model/amazon.nova-lite-v1:0/converse",
        &good_headers(),
        &body("a"),
    ))
    .unwrap();
    assert_eq!(read_response(&mut keep, &mut pending).unwrap().status, 200);
    assert_eq!(
        converse(p.addr, "amazon.nova-lite-v1:0", &with_key(new_key), &body("x")).status,
        401
    );

    write_keys(&[("second", new_key)]);
    p.signal(1);
    assert!(wait_for(Duration::from_secs(5), || p.logs().contains("reloaded")));
    assert_eq!(
        converse(p.addr, "amazon.nova-lite-v1:0", &with_key(new_key), &body("x")).status,
        200
    );
    assert_eq!(
        converse(p.addr, "amazon.nova-lite-v1:0", &good_headers(), &body("x")).status,
        401
    );
    // The old connection still works (its next request sees the new keys).
    keep.write_all(&request(
        "/bedrock/model/amazon.nova-lite-v1:0/converse",
        &with_key(new_key),
        &body("b"),
    ))
    .unwrap();
    assert_eq!(read_response(&mut keep, &mut pending).unwrap().status, 200);

    // A bad file is rejected; the previous keys stay.
    std::fs::write(&keys, "[[key]]\nname = \"broken\"\nsha256 = \"not-hex\"\n").unwrap();
    p.signal(1);
    assert!(wait_for(Duration::from_secs(5), || p
        .logs()
        .contains("reload_rejected")));
    assert_eq!(
        converse(p.addr, "amazon.nova-lite-v1:0", &with_key(new_key), &body("x")).status,
        200
    );
}

#[test]
fn help_and_config_errors() {
    for cmd in ["serve", "mock-upstream", "demo"] {
        let out = Command::new(BIN).args([cmd, "--help"]).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("llmops-proxy {cmd}")) && text.contains("--"),
            "{text}"
        );
    }
    let help =
        String::from_utf8_lossy(&Command::new(BIN).args(["serve", "--help"]).output().unwrap().stdout).into_owned();
    for flag in [
        "--listen",
        "--threads",
        "--usage-dir",
        "--upstream-endpoint",
        "--keys",
        "--pricing",
        "--drain-timeout",
        "LLMOPS_",
    ] {
        assert!(help.contains(flag), "serve --help lacks {flag}");
    }
    for (args, flag) in [
        (vec!["serve", "--threads", "zero"], "--threads"),
        (vec!["serve", "--listen", "nowhere"], "--listen"),
        (vec!["serve", "--keys", "/nonexistent/keys.toml"], "--keys"),
        (vec!["serve", "--upstream-endpoint", "ftp://x"], "--upstream-endpoint"),
        (vec!["serve", "--log-format", "xml"], "--log-format"),
        (vec!["serve", "--bogus"], "--bogus"),
        (vec!["serve", "--require-tls", "--listen", "0.0.0.0:0"], "--require-tls"),
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag), "{args:?}: {err}");
    }
    // Environment and config file feed flags too.
    let dir = temp_dir("cfg");
    let cfg = dir.join("c.toml");
    std::fs::write(&cfg, "threads = \"many\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--threads"));
    let out = Command::new(BIN)
        .args(["serve"])
        .env("LLMOPS_MAX_BODY_BYTES", "-5")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-body-bytes"));
}

/// Every metric the shipped alert rules (`deploy/prometheus-alerts.yml`) use is exported: a
/// renamed metric would silently disable its alert.
#[test]
fn alert_rules_name_metrics_that_exist() {
    let rules = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/prometheus-alerts.yml")).unwrap();
    let mut names = std::collections::BTreeSet::new();
    for line in rules.lines().filter(|l| l.trim_start().starts_with("expr:")) {
        for word in line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("llmops_") || word.starts_with("usage_") {
                names.insert(word.to_string());
            }
        }
    }
    assert!(names.len() >= 10, "{names:?}");
    // A proxy with everything the rules watch: budgets, a (down) store, a TLS certificate.
    let m = mock();
    let dir = temp_dir("alerts");
    let (_, chain, key) = make_pki(&dir, "localhost");
    let budgets = dir.join("budgets.toml");
    std::fs::write(
        &budgets,
        "[[budget]]\nname = \"b\"\nscope = \"agent\"\nvalue = \"*\"\nperiod = \"day\"\nlimit_usd = \"5.00\"\naction = \"block\"\n",
    )
    .unwrap();
    let (c, k, b) = (
        chain.display().to_string(),
        key.display().to_string(),
        budgets.display().to_string(),
    );
    let mut p = Launch::proxy(m.addr, &dir.join("usage"))
        .args(&["--listen-tls", "127.0.0.1:0", "--tls-cert", &c, "--tls-key", &k])
        .args(&["--budgets", &b, "--budget-store", "redis://127.0.0.1:1"])
        .start();
    let h = Headers::good().set("X-Agent", "a").vec();
    assert_eq!(converse(p.addr, "amazon.nova-lite-v1:0", &h, &body("x")).status, 200);
    assert!(wait_for(Duration::from_secs(5), || Metrics::scrape(p.addr)
        .get("llmops_usage_rows_read_total")
        == Some(1.0)));
    let s = Metrics::scrape(p.addr);
    let exported = |n: &str| {
        s.0.keys().any(|k| {
            let base = k.split('{').next().unwrap();
            base == n || base.strip_suffix("_bucket").is_some_and(|b| b == n)
        })
    };
    let missing: Vec<_> = names.iter().filter(|n| !exported(n)).collect();
    assert!(
        missing.is_empty(),
        "alert rules use metrics /metrics does not export: {missing:?}"
    );
    assert_eq!(p.terminate(), Some(0));
}

#[test]
fn demo_shows_a_relayed_throttle_and_a_budget_refusal() {
    let out = Command::new(BIN).arg("demo").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let throttles: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("mock.throttle") && l.contains(" 429 "))
        .collect();
    assert!(!throttles.is_empty(), "{text}");
    assert!(text.contains("refused by the proxy: BudgetExceeded"), "{text}");
    assert!(!text.contains(" 403 "), "an unpriced refusal in the demo: {text}");
    assert!(text.contains("TOTAL"), "{text}");
    // InvokeModel calls (an Anthropic Messages body), priced.
    let invoke: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("claude-code") && l.contains(" 200 "))
        .collect();
    assert!(!invoke.is_empty(), "{text}");
    for l in &invoke {
        assert!(l.trim_end().ends_with(|c: char| c.is_ascii_digit()), "{text}");
    }
    assert!(text.contains("InvokeModel with an Anthropic Messages body"), "{text}");
    // The optimizer: one rule of each action decided, and the savings are printed.
    for action in ["; rewrite ->", "; downgrade ->", "; fallback ->"] {
        assert!(text.contains(action), "{action}: {text}");
    }
    assert!(text.contains("savings: $"), "{text}");
}

#[test]
fn a_scrape_never_sees_rows_read_without_their_backlog() {
    // The writer pauses 300 ms between taking rows and publishing its gauges
    // (LLMOPS_FAULTS=slow_publish, debug builds): the rows-read count must not be visible
    // before the backlog that goes with it (CI once saw rows_read 7 with backlog 0).
    let m = mock();
    let dir = temp_dir("scrape-order");
    let p = Launch::proxy(m.addr, &dir)
        .args(&["--threads", "1"])
        .env("LLMOPS_FAULTS", "slow_publish=100000")
        .start();
    for i in 0..3 {
        let b = body(&format!("scrape order {i}"));
        assert_eq!(
            converse(p.addr, "amazon.nova-lite-v1:0", &good_headers(), &b).status,
            200
        );
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut seen = false;
    while std::time::Instant::now() < deadline && !seen {
        let s = Metrics::parse(&get(p.addr, "/metrics").text()).0;
        let read = s.get("llmops_usage_rows_read_total").copied().unwrap_or(0.0);
        let backlog = s.get("llmops_ledger_backlog_rows").copied().unwrap_or(0.0);
        assert!(backlog >= read, "rows read {read} but backlog {backlog}: {s:#?}");
        seen = read == 3.0;
    }
    assert!(seen, "the writer never took the 3 rows");
}
