//! The cost optimizer (`--routes`) through the real binary and the mock: rewrites and
//! rule order, downgrades once a budget's ratio is reached, fallbacks after answers AWS
//! does not bill (a chain that succeeds on another region, one that exhausts and answers
//! the last throttling error, none after a cut connection, a client error or a partial
//! stream), budgets on the effective model, reload, start-up errors, and
//! `cost_usd_baseline` exact against the same call made on the requested model.

// A test: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use llmops_proxy::usage::read::read_dir;
use llmops_proxy::usage::UsageRecord;

const OPUS: &str = "anthropic.claude-opus-4-1-20250805-v1:0";
const HAIKU: &str = "anthropic.claude-haiku-4-5-20251001-v1:0";
const SONNET: &str = "anthropic.claude-sonnet-4-5-20250929-v1:0";
const NOVA_PRO: &str = "amazon.nova-pro-v1:0";
const NOVA_LITE: &str = "amazon.nova-lite-v1:0";

const ROUTES: &str = r#"
[[route]]
name = "triage-to-haiku"
match = { agent = "triage-*", model = "anthropic.claude-opus-*" }
action = "rewrite"
to = "anthropic.claude-haiku-4-5-20251001-v1:0"

[[route]]
name = "opus-to-sonnet"
match = { department = "eng", model = "anthropic.claude-opus-*" }
action = "rewrite"
to = "anthropic.claude-sonnet-4-5-20250929-v1:0"

[[route]]
name = "west-then-nova"
match = { project = "resilient" }
action = "fallback"
try = [{ region = "us-west-2" }, { model = "amazon.nova-pro-v1:0" }]
max_attempts = 3

[[route]]
name = "late"
match = { project = "late" }
action = "fallback"
try = [{ region = "us-west-2" }]
deadline_ms = 100

[[route]]
name = "exhaust"
match = { project = "doomed" }
action = "fallback"
try = [{ region = "us-west-2" }, { region = "eu-west-1" }, { region = "ap-south-1" }]
max_attempts = 3
"#;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn call(addr: std::net::SocketAddr, model: &str, op: &str, h: Headers, text: &str) -> Resp {
    raw(
        addr,
        &request(&format!("/bedrock/model/{model}/{op}"), &h.vec(), &body(text)),
    )
    .expect("response")
}

fn tagged(agent: &str, dept: &str, project: &str) -> Headers {
    let mut h = Headers::good();
    for (k, v) in [("X-Agent", agent), ("X-Department", dept), ("X-Project", project)] {
        if !v.is_empty() {
            h = h.set(k, v);
        }
    }
    h
}

fn row<'a>(rows: &'a [UsageRecord], r: &Resp) -> &'a UsageRecord {
    let id = r.header("x-request-id").unwrap();
    rows.iter().find(|x| x.request_id == id).unwrap()
}

#[test]
fn rewrites_follow_rule_order_and_record_an_exact_baseline() {
    let m = mock();
    let dir = temp_dir("optimizer-rewrite");
    let routes = write(&dir, "routes.toml", ROUTES);
    let mut p = proxy(m.addr, &dir.join("usage"), &["--routes", &routes]);
    // The same body length everywhere: the mock's usage depends on it alone.
    let text = "route me, please";
    let both = call(p.addr, OPUS, "converse", tagged("triage-bot", "eng", ""), text);
    let eng = call(p.addr, OPUS, "converse", tagged("writer", "eng", ""), text);
    let direct_opus = call(p.addr, OPUS, "converse", tagged("writer", "sales", ""), text);
    let direct_haiku = call(p.addr, HAIKU, "converse", tagged("writer", "sales", ""), text);
    let direct_sonnet = call(p.addr, SONNET, "converse", tagged("writer", "sales", ""), text);
    for r in [&both, &eng, &direct_opus, &direct_haiku, &direct_sonnet] {
        assert_eq!(r.status, 200, "{}", r.text());
    }
    // The first matching rule wins; the response says so and names the model that ran.
    assert_eq!(both.header("x-llmops-route"), Some("triage-to-haiku; rewrite"));
    assert_eq!(both.header("x-llmops-model"), Some(format!("us.{HAIKU}").as_str()));
    assert!(
        both.text().contains(&format!("mock reply from us.{HAIKU}")),
        "{}",
        both.text()
    );
    assert_eq!(eng.header("x-llmops-route"), Some("opus-to-sonnet; rewrite"));
    assert_eq!(direct_opus.header("x-llmops-route"), None);

    assert_eq!(p.terminate(), Some(0));
    let rows = read_dir(&dir.join("usage")).unwrap();
    let (b, e, o, h, s) = (
        row(&rows, &both),
        row(&rows, &eng),
        row(&rows, &direct_opus),
        row(&rows, &direct_haiku),
        row(&rows, &direct_sonnet),
    );
    assert_eq!(
        (b.route_rule.as_deref(), b.route_action),
        (Some("triage-to-haiku"), Some("rewrite"))
    );
    assert_eq!(b.model_requested, OPUS);
    assert_eq!(b.model_effective, format!("us.{HAIKU}"));
    assert_eq!(b.attempts, Some(1));
    assert_eq!(b.region_effective.as_deref(), Some("us-east-1"));
    // Exact: the rewritten call costs what Haiku costs, its baseline what Opus costs.
    assert!(o.cost_pico_usd.is_some() && h.cost_pico_usd.is_some());
    assert_eq!(b.cost_pico_usd, h.cost_pico_usd);
    assert_eq!(b.cost_baseline_pico_usd, o.cost_pico_usd);
    assert_eq!(e.cost_pico_usd, s.cost_pico_usd);
    assert_eq!(e.cost_baseline_pico_usd, o.cost_pico_usd);
    // Without a decision the baseline is the cost, so savings are a column sum.
    assert_eq!(o.cost_baseline_pico_usd, o.cost_pico_usd);
    assert_eq!((o.route_rule.as_deref(), o.route_action), (None, None));

    // `report --by route` and the savings line.
    let out = Command::new(BIN)
        .args([
            "report",
            "--usage-dir",
            &dir.join("usage").display().to_string(),
            "--by",
            "route",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("triage-to-haiku"), "{text}");
    let saved: i128 = rows
        .iter()
        .filter(|r| r.route_rule.is_some())
        .map(|r| r.cost_baseline_pico_usd.unwrap() - r.cost_pico_usd.unwrap())
        .sum();
    assert!(saved > 0);
    let line = format!(
        "savings: ${} over 2 routed requests",
        llmops_proxy::usage::record::format_usd(saved)
    );
    assert!(text.contains(&line), "{line}\n{text}");
}

#[test]
fn a_downgrade_fires_once_its_budget_ratio_is_reached_and_budgets_see_the_effective_model() {
    let m = mock();
    let dir = temp_dir("optimizer-downgrade");
    let text = "downgrade me when the budget is half spent";
    // Nova Pro: one call of this body costs well over half of this limit.
    let budgets = write(
        &dir,
        "budgets.toml",
        "[[budget]]\nname = \"research-daily\"\nscope = \"department\"\nvalue = \"research\"\nperiod = \"day\"\nlimit_usd = \"0.0001\"\naction = \"alert\"\n\n[[budget]]\nname = \"lite-cap\"\nscope = \"model\"\nvalue = \"amazon.nova-lite-v1:0\"\nperiod = \"day\"\nlimit_usd = \"0.000001\"\naction = \"block\"\n",
    );
    let routes = write(
        &dir,
        "routes.toml",
        "[[route]]\nname = \"research-soft-cap\"\nmatch = { department = \"research\" }\naction = \"downgrade\"\nbudget = \"research-daily\"\nat_ratio = \"0.5\"\nto = \"amazon.nova-lite-v1:0\"\n",
    );
    let mut p = proxy(
        m.addr,
        &dir.join("usage"),
        &["--routes", &routes, "--budgets", &budgets],
    );
    let h = || tagged("", "research", "");
    let first = call(p.addr, NOVA_PRO, "converse", h(), text);
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("x-llmops-route"), None, "under the ratio: no downgrade");
    // The writer accounts the row and publishes the crossing within a tick or two.
    let mut downgraded = None;
    assert!(wait_for(Duration::from_secs(5), || {
        let r = call(p.addr, NOVA_PRO, "converse", h(), text);
        let hit = r.header("x-llmops-route") == Some("research-soft-cap; downgrade");
        if hit {
            downgraded = Some(r);
        }
        hit
    }));
    let d = downgraded.unwrap();
    assert_eq!(d.status, 200);
    assert_eq!(d.header("x-llmops-model"), Some(NOVA_LITE));
    // The downgraded calls spend Nova Lite's block budget: once it is spent, the next
    // downgraded call is refused by it (budgets apply to the effective model).
    assert!(wait_for(Duration::from_secs(5), || call(
        p.addr,
        NOVA_PRO,
        "converse",
        h(),
        text
    )
    .status
        == 429));
    let refused = call(p.addr, NOVA_PRO, "converse", h(), text);
    assert_eq!(refused.status, 429);
    assert!(refused.text().contains("lite-cap"), "{}", refused.text());
    // Another department is not downgraded and not refused.
    let other = call(p.addr, NOVA_PRO, "converse", tagged("", "sales", ""), text);
    assert_eq!(other.status, 200);
    assert_eq!(other.header("x-llmops-route"), None);

    assert_eq!(p.terminate(), Some(0));
    let rows = read_dir(&dir.join("usage")).unwrap();
    let (f, d) = (row(&rows, &first), row(&rows, &d));
    assert_eq!(d.route_action, Some("downgrade"));
    assert_eq!(d.model_effective, NOVA_LITE);
    // Its baseline is exactly what the undowngraded Nova Pro call of the same body cost.
    assert_eq!(d.cost_baseline_pico_usd, f.cost_pico_usd);
    assert!(d.cost_pico_usd.unwrap() < f.cost_pico_usd.unwrap());
    let r = row(&rows, &refused);
    assert_eq!((r.status, r.error_type.as_deref()), (429, Some("BudgetExceeded")));
    assert_eq!(r.model_effective, NOVA_LITE);
    assert_eq!(r.attempts, Some(0));
}

#[test]
fn fallbacks_follow_unbilled_answers_only() {
    // us-east-1 throttles every call; us-west-2 and the others answer.
    let m = mock_with(&["--throttle-region", "us-east-1"]);
    let dir = temp_dir("optimizer-fallback");
    let routes = write(&dir, "routes.toml", ROUTES);
    let mut p = proxy(m.addr, &dir.join("usage"), &["--routes", &routes]);
    let text = "fall back if you must";
    let upstream = || stat(&mock_stats(m.addr), "requests");

    // Succeeds on the second region, the body byte for byte, signed for us-west-2.
    let before = upstream();
    let ok = call(p.addr, SONNET, "converse", tagged("", "", "resilient"), text);
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert!(ok.text().contains(&sha256_hex(&body(text))));
    assert_eq!(ok.header("x-llmops-route"), Some("west-then-nova; fallback"));
    assert_eq!(ok.header("x-llmops-region"), Some("us-west-2"));
    assert_eq!(upstream(), before + 2 + 1, "two attempts (and this stats call)");
    // The same on a stream request: its 429 head is read whole, then the stream relayed.
    let st = call(p.addr, SONNET, "converse-stream", tagged("", "", "resilient"), text);
    assert_eq!(st.status, 200);
    assert_eq!(st.header("content-type"), Some("application/vnd.amazon.eventstream"));
    // The reference calls, made directly in us-west-2 (no rule matches them).
    let west = Headers::good().set("X-Aws-Region", "us-west-2");
    let direct = call(p.addr, SONNET, "converse", west.clone(), text);
    assert_eq!(direct.status, 200);

    // Exhausts: every region throttles a `mock.throttle` model; the last answer is relayed.
    let before = upstream();
    let doomed = call(p.addr, "mock.throttle", "converse", tagged("", "", "doomed"), text);
    assert_eq!(doomed.status, 429);
    assert!(doomed.text().contains("Too many requests"));
    assert_eq!(upstream(), before + 3 + 1, "max_attempts = 3");

    // The rule's deadline: a first answer that took longer than it is the last.
    let before = upstream();
    let late = call(p.addr, "mock.slow-300", "converse", tagged("", "", "late"), text);
    assert_eq!(late.status, 429);
    assert_eq!(upstream(), before + 1 + 1, "no attempt after the deadline");
    let in_time = call(p.addr, "mock.slow-300", "converse", tagged("", "", "resilient"), text);
    assert_eq!(in_time.status, 200, "without a deadline of its own the rule falls back");

    // No second attempt after a cut connection or a client error.
    let before = upstream();
    let west_resilient = || tagged("", "", "resilient").set("X-Aws-Region", "us-west-2");
    let cut = call(p.addr, "mock.close", "converse", west_resilient(), text);
    assert_eq!(cut.status, 502);
    let bad = call(p.addr, "mock.validation", "converse", west_resilient(), text);
    assert_eq!(bad.status, 400);
    assert_eq!(upstream(), before + 2 + 1, "one attempt each");
    // A stream cut by an exception event mid-way is never retried (partial stream).
    let before = upstream();
    let partial = call(p.addr, "mock.stream-error", "converse-stream", west_resilient(), text);
    assert_eq!(partial.status, 200);
    assert_eq!(upstream(), before + 1 + 1);

    let metrics = Metrics::scrape(p.addr);
    assert_eq!(
        metrics.get("llmops_route_fallbacks_total{reason=\"ThrottlingException\"}"),
        Some(1.0 + 1.0 + 2.0 + 1.0)
    );
    // Decisions are counted from the rows, by the writer (a tick later).
    assert!(wait_for(Duration::from_secs(5), || Metrics::scrape(p.addr).get(
        "llmops_route_decisions_total{rule=\"west-then-nova\",action=\"fallback\"}"
    ) == Some(3.0)));

    assert_eq!(p.terminate(), Some(0));
    let rows = read_dir(&dir.join("usage")).unwrap();
    let o = row(&rows, &ok);
    assert_eq!((o.attempts, o.region.as_str()), (Some(2), "us-east-1"));
    assert_eq!(o.region_effective.as_deref(), Some("us-west-2"));
    assert_eq!(o.route_action, Some("fallback"));
    // Priced where it ran; the baseline is the same tokens in the requested region.
    let d = row(&rows, &direct);
    assert_eq!(o.cost_pico_usd, d.cost_pico_usd);
    assert!(o.cost_baseline_pico_usd.is_some());
    let x = row(&rows, &doomed);
    assert_eq!((x.status, x.attempts), (429, Some(3)));
    assert_eq!(x.error_type.as_deref(), Some("ThrottlingException"));
    assert_eq!(x.region_effective.as_deref(), Some("eu-west-1"));
    for r in [&cut, &bad, &partial, &late] {
        let x = row(&rows, r);
        assert_eq!(x.attempts, Some(1), "{x:?}");
        assert_eq!(x.route_action, None);
    }
}

#[test]
fn a_fallback_to_another_model_prices_both_ways_exactly() {
    // us-east-1 is unavailable (503, not billed): the rule moves the call to Nova Pro in
    // us-west-2.
    let m = mock_with(&["--unavailable-region", "us-east-1"]);
    let dir = temp_dir("optimizer-fallback-model");
    let routes = write(
        &dir,
        "routes.toml",
        "[[route]]\nname = \"to-nova-west\"\nmatch = { model = \"anthropic.claude-sonnet-4-5-*\" }\naction = \"fallback\"\ntry = [{ region = \"us-west-2\", model = \"amazon.nova-pro-v1:0\" }]\n",
    );
    let mut p = proxy(m.addr, &dir.join("usage"), &["--routes", &routes]);
    let text = "priced two ways";
    let fell = call(p.addr, SONNET, "converse", Headers::good(), text);
    assert_eq!(fell.status, 200, "{}", fell.text());
    assert_eq!(fell.header("x-llmops-model"), Some(NOVA_PRO));
    let west = Headers::good().set("X-Aws-Region", "us-west-2");
    let nova = call(p.addr, NOVA_PRO, "converse", west.clone(), text);
    // Sonnet's geo price is the same in both US regions.
    let sonnet = call(p.addr, SONNET, "converse", west, text);
    let metrics = Metrics::scrape(p.addr);
    assert_eq!(
        metrics.get("llmops_route_fallbacks_total{reason=\"ServiceUnavailableException\"}"),
        Some(1.0)
    );
    assert_eq!(p.terminate(), Some(0));
    let rows = read_dir(&dir.join("usage")).unwrap();
    let (f, n, s) = (row(&rows, &fell), row(&rows, &nova), row(&rows, &sonnet));
    assert_eq!(f.cost_pico_usd, n.cost_pico_usd);
    assert_eq!(f.cost_baseline_pico_usd, s.cost_pico_usd);
    assert!(f.cost_baseline_pico_usd.unwrap() > f.cost_pico_usd.unwrap());
}

#[test]
fn routes_reload_on_sighup_and_a_bad_file_is_refused() {
    let m = mock();
    let dir = temp_dir("optimizer-reload");
    let file = dir.join("routes.toml");
    let rule = |to: &str| {
        format!("[[route]]\nname = \"r\"\nmatch = {{ agent = \"bot\" }}\naction = \"rewrite\"\nto = \"{to}\"\n")
    };
    std::fs::write(&file, rule(HAIKU)).unwrap();
    let f = file.display().to_string();
    let p = proxy(m.addr, &dir.join("usage"), &["--routes", &f]);
    let model_of = || {
        call(p.addr, OPUS, "converse", tagged("bot", "", ""), "x")
            .header("x-llmops-model")
            .map(str::to_string)
    };
    assert_eq!(model_of().as_deref(), Some(format!("us.{HAIKU}").as_str()));
    std::fs::write(&file, rule(SONNET)).unwrap();
    p.signal(1);
    assert!(wait_for(Duration::from_secs(5), || model_of().as_deref()
        == Some(format!("us.{SONNET}").as_str())));
    // A bad file: named rule and field in the log, the old rules kept.
    std::fs::write(
        &file,
        "[[route]]\nname = \"broken\"\nmatch = {}\naction = \"rewrite\"\nto = \"no spaces allowed\"\n",
    )
    .unwrap();
    p.signal(1);
    assert!(wait_for(Duration::from_secs(5), || p
        .logs()
        .contains("reload_rejected")));
    assert!(p.logs().contains("route `broken`, field `to`"), "{}", p.logs());
    assert_eq!(model_of().as_deref(), Some(format!("us.{SONNET}").as_str()));

    // At start-up a bad file, or a downgrade naming no budget, is exit 2 naming both.
    for (text, needle) in [
        ("[[route]]\nname = \"broken\"\nmatch = {}\naction = \"rewrite\"\nto = \"no spaces allowed\"\n", "route `broken`, field `to`"),
        ("[[route]]\nname = \"cap\"\nmatch = {}\naction = \"downgrade\"\nbudget = \"nope\"\nat_ratio = \"0.9\"\nto = \"amazon.nova-lite-v1:0\"\n", "route `cap`, field `budget`"),
    ] {
        std::fs::write(&file, text).unwrap();
        let out = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--usage-dir", &dir.join("u2").display().to_string(), "--routes", &f])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("--routes") && err.contains(needle), "{err}");
    }
}
