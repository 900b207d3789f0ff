//! Bill-grade cost through the real binary: Converse and ConverseStream calls whose mock
//! responses carry `cacheDetails`, `serviceTier`, `performanceConfig` and traces, each
//! priced by the proxy and checked against a cost computed by hand from the price table
//! (the built-in one, or `tests/fixtures/pricing/custom.toml` on top of it). Every case
//! also checks the row's pricing columns.

// A test: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::*;
use llmops_proxy::pricing::decimal::parse_usd;
use llmops_proxy::pricing::{Latency, Scope, Tier};
use llmops_proxy::usage::read::read_dir;
use llmops_proxy::usage::record::format_usd;
use llmops_proxy::usage::UsageRecord;

/// One priced call: name, model path segment (as the client sends it), region, whether
/// it streams, members added to the Converse body, the expected `cost_usd` (None: null),
/// `cost_flags`, `price_scope`, `service_tier` and `latency_mode` (None: not checked) and
/// `price_id`.
struct Case(
    &'static str,
    &'static str,
    &'static str,
    bool,
    String,
    Option<&'static str>,
    &'static str,
    Option<Scope>,
    Option<Tier>,
    Option<Latency>,
    Option<&'static str>,
);

/// `additionalModelRequestFields.mockResponse` with these members.
fn mock_response(members: &str) -> String {
    format!("\"additionalModelRequestFields\":{{\"mockResponse\":{{{members}}}}}")
}

/// A Converse `usage` object.
fn usage(input: i64, output: i64, read: i64, write: i64, details: &[(&str, i64)]) -> String {
    let mut u = format!(
        "\"usage\":{{\"inputTokens\":{input},\"outputTokens\":{output},\"totalTokens\":{},\"cacheReadInputTokens\":{read},\"cacheWriteInputTokens\":{write}",
        input + output + read + write
    );
    if !details.is_empty() {
        let d: Vec<String> = details
            .iter()
            .map(|(ttl, n)| format!("{{\"ttl\":\"{ttl}\",\"inputTokens\":{n}}}"))
            .collect();
        u.push_str(&format!(",\"cacheDetails\":[{}]", d.join(",")));
    }
    u.push('}');
    u
}

fn served(tier: &str, latency: &str) -> String {
    format!(",\"serviceTier\":{{\"type\":\"{tier}\"}},\"performanceConfig\":{{\"latency\":\"{latency}\"}}")
}

const SONNET: &str = "anthropic.claude-sonnet-4-5-20250929-v1:0";

fn cases() -> Vec<Case> {
    use Latency::*;
    use Scope::*;
    use Tier::*;
    let std_default = served("default", "standard");
    let worked = mock_response(&format!(
        "{}{std_default}",
        usage(1200, 2500, 150_000, 20_000, &[("1h", 16_000), ("5m", 4000)])
    ));
    vec![
        // The reference's worked example (us. profile: geo scope, 1.10x global):
        // 1200x3.30 + 150000x0.33 + 16000x6.60 + 4000x4.125 + 2500x16.50 per 1M.
        Case("worked example, stream", SONNET, "us-east-1", true, worked.clone(), Some("0.21681"), "", Some(Geo), Some(Default), Some(Standard), Some(SONNET)),
        Case("worked example, converse", SONNET, "us-east-1", false, worked, Some("0.21681"), "", Some(Geo), Some(Default), Some(Standard), Some(SONNET)),
        // Global profile: the base price. 1000x3 + 1000x15 = 18000 per 1M.
        Case("global scope", "global.anthropic.claude-sonnet-4-5-20250929-v1:0", "us-east-1", false,
            mock_response(&usage(1000, 1000, 0, 0, &[])), Some("0.018"), "", Some(Global), Some(Default), Some(Standard), Some(SONNET)),
        // In-region (a foundation-model ARN is never geo-prefixed): 1.10x. 1000x3.3 + 1000x16.5.
        Case("in-region scope", "arn%3Aaws%3Abedrock%3Aus-east-1%3A%3Afoundation-model%2Fanthropic.claude-sonnet-4-5-20250929-v1%3A0", "us-east-1", false,
            mock_response(&usage(1000, 1000, 0, 0, &[])), Some("0.0198"), "", Some(InRegion), Some(Default), Some(Standard), Some(SONNET)),
        // Long context: total input 190000 + 10001 = 200001 > 200000, every class at the
        // long rate x geo: input 6.6, cache read 0.66, output 24.75.
        // 190000x6.6 + 10001x0.66 + 1000x24.75 = 1285350.66 per 1M.
        Case("long-context cliff, stream", SONNET, "us-east-1", true,
            mock_response(&usage(190_000, 1000, 10_001, 0, &[])), Some("1.28535066"), "", Some(Geo), None, None, Some(SONNET)),
        // Exactly 200000 is not above the threshold: 190000x3.3 + 10000x0.33 + 1000x16.5.
        Case("at the cliff, standard rate", SONNET, "us-east-1", false,
            mock_response(&usage(190_000, 1000, 10_000, 0, &[])), Some("0.6468"), "", Some(Geo), None, None, Some(SONNET)),
        // Cache writes without cacheDetails: 5-minute rate, flagged.
        // 100x3.3 + 100x16.5 + 1000x4.125 = 6105 per 1M.
        Case("cache TTL assumed", SONNET, "us-east-1", false,
            mock_response(&usage(100, 100, 0, 1000, &[])), Some("0.006105"), "cache_ttl_assumed", Some(Geo), None, None, Some(SONNET)),
        // Nova Pro, priority tier reported: 1.75x. 1000x1.4 + 1000x5.6 = 7000 per 1M.
        Case("priority tier", "amazon.nova-pro-v1:0", "us-east-1", false,
            mock_response(&format!("{}{}", usage(1000, 1000, 0, 0, &[]), served("priority", "standard"))),
            Some("0.007"), "", Some(InRegion), Some(Priority), Some(Standard), Some("amazon.nova-pro-v1:0")),
        // Flex tier, stream: 0.5x. 1000x0.4 + 1000x1.6.
        Case("flex tier, stream", "amazon.nova-pro-v1:0", "us-east-1", true,
            mock_response(&format!("{}{}", usage(1000, 1000, 0, 0, &[]), served("flex", "standard"))),
            Some("0.002"), "", Some(InRegion), Some(Flex), Some(Standard), Some("amazon.nova-pro-v1:0")),
        // Reserved capacity: prepaid, marginal price 0 (known, not unknown).
        Case("reserved tier", "amazon.nova-pro-v1:0", "us-east-1", false,
            mock_response(&format!("{}{}", usage(1000, 1000, 0, 0, &[]), served("reserved", "standard"))),
            Some("0"), "", Some(InRegion), Some(Reserved), Some(Standard), Some("amazon.nova-pro-v1:0")),
        // Latency-optimized Nova Pro in the US: 1.00 / 4.00. 1000x1 + 1000x4.
        Case("latency optimized", "amazon.nova-pro-v1:0", "us-east-1", false,
            format!(",\"performanceConfig\":{{\"latency\":\"optimized\"}},{}", mock_response(&usage(1000, 1000, 0, 0, &[]))),
            Some("0.005"), "tier_assumed", Some(InRegion), Some(Default), Some(Optimized), Some("amazon.nova-pro-v1:0")),
        // Optimized asked for, standard served (and billed): 1000x0.8 + 1000x3.2.
        Case("optimized requested, standard served", "amazon.nova-pro-v1:0", "us-east-1", false,
            format!(",\"performanceConfig\":{{\"latency\":\"optimized\"}},{}", mock_response(&format!("{}{}", usage(1000, 1000, 0, 0, &[]), served("default", "standard")))),
            Some("0.004"), "", Some(InRegion), Some(Default), Some(Standard), Some("amazon.nova-pro-v1:0")),
        // The tier the request asked for, when the response does not say: flex, flagged.
        Case("tier from the request", "amazon.nova-pro-v1:0", "us-east-1", false,
            format!(",\"serviceTier\":{{\"type\":\"flex\"}},{}", mock_response(&format!("{},\"serviceTier\":null,\"performanceConfig\":{{\"latency\":\"standard\"}}", usage(1000, 1000, 0, 0, &[])))),
            Some("0.002"), "tier_assumed", Some(InRegion), Some(Flex), Some(Standard), Some("amazon.nova-pro-v1:0")),
        // Source region: Nova Pro through eu-central-1 (the EU price) and eu-south-1.
        Case("EU source region", "amazon.nova-pro-v1:0", "eu-central-1", false,
            mock_response(&format!("{}{std_default}", usage(1000, 1000, 0, 0, &[]))),
            Some("0.00525"), "", Some(InRegion), Some(Default), Some(Standard), Some("amazon.nova-pro-v1:0")),
        Case("eu-south-1, stream", "amazon.nova-pro-v1:0", "eu-south-1", true,
            mock_response(&format!("{}{std_default}", usage(1000, 1000, 0, 0, &[]))),
            Some("0.00649"), "", Some(InRegion), Some(Default), Some(Standard), Some("amazon.nova-pro-v1:0")),
        // Llama 3 70B in sa-east-1 (no geo prefix there): 1000x4.45 + 1000x5.88.
        Case("sa-east-1 regional price", "meta.llama3-70b-instruct-v1:0", "sa-east-1", false,
            mock_response(&usage(1000, 1000, 0, 0, &[])), Some("0.01033"), "", Some(InRegion), Some(Default), Some(Standard), Some("meta.llama3-70b-instruct-v1:0")),
        // GovCloud: an explicit, unconfirmed card. us-gov. Haiku 4.5: 1000x1.2 + 1000x6.
        Case("GovCloud, unconfirmed", "anthropic.claude-haiku-4-5-20251001-v1:0", "us-gov-west-1", false,
            mock_response(&usage(1000, 1000, 0, 0, &[])), Some("0.0072"), "price_unconfirmed", Some(Geo), None, None, Some("anthropic.claude-haiku-4-5-20251001-v1:0")),
        // A prompt router is billed as the model it invoked: Llama 3.1 8B, 2000x0.22.
        Case("prompt router", "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Adefault-prompt-router%2Fmeta.llama%3A1", "us-east-1", false,
            mock_response(&format!("{},\"trace\":{{\"promptRouter\":{{\"invokedModelId\":\"arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-1-8b-instruct-v1:0\"}}}}", usage(1000, 1000, 0, 0, &[]))),
            Some("0.00044"), "", Some(InRegion), None, None, Some("meta.llama3-1-8b-instruct-v1:0")),
        // Guardrail units: content 2 + 3 at 0.15, topic 1 at 0.15, word 1 free, per 1,000;
        // tokens on Nova Micro 1000x0.035 + 1000x0.14. 0.000175 + 0.00075 + 0.00015.
        Case("guardrail units, stream", "amazon.nova-micro-v1:0", "us-east-1", true,
            mock_response(&format!("{},\"trace\":{{\"guardrail\":{{\"inputAssessment\":{{\"g1\":{{\"invocationMetrics\":{{\"usage\":{{\"contentPolicyUnits\":2,\"topicPolicyUnits\":1,\"wordPolicyUnits\":1}}}}}}}},\"outputAssessments\":{{\"g1\":[{{\"invocationMetrics\":{{\"usage\":{{\"contentPolicyUnits\":3}}}}}}]}}}}}}", usage(1000, 1000, 0, 0, &[]))),
            Some("0.001075"), "", Some(InRegion), None, None, Some("amazon.nova-micro-v1:0")),
        // Image filter units priced by the custom file's meter (0.75 per 1,000): 2 units
        // = 0.0015, plus 0.000175 of tokens.
        Case("guardrail image meter from the file", "amazon.nova-micro-v1:0", "us-east-1", false,
            mock_response(&format!("{},\"trace\":{{\"guardrail\":{{\"inputAssessment\":{{\"g1\":{{\"invocationMetrics\":{{\"usage\":{{\"contentPolicyImageUnits\":2}}}}}}}}}}}}", usage(1000, 1000, 0, 0, &[]))),
            Some("0.001675"), "", Some(InRegion), None, None, Some("amazon.nova-micro-v1:0")),
        // A meter with no price anywhere: unknown, not zero.
        Case("unpriced guardrail meter", "amazon.nova-micro-v1:0", "us-east-1", false,
            mock_response(&format!("{},\"trace\":{{\"guardrail\":{{\"inputAssessment\":{{\"g1\":{{\"invocationMetrics\":{{\"usage\":{{\"automatedReasoningPolicyUnits\":1}}}}}}}}}}}}", usage(1000, 1000, 0, 0, &[]))),
            None, "unpriced,guardrail_unpriced", Some(InRegion), None, None, Some("amazon.nova-micro-v1:0")),
        // Unknown model, and an application inference profile without an alias.
        Case("unknown model, stream", "acme.unknown-v1", "us-east-1", true,
            mock_response(&usage(1000, 1000, 0, 0, &[])), None, "unpriced,unknown_model", Some(InRegion), None, None, None),
        Case("unmapped profile", "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fnobody", "us-east-1", false,
            mock_response(&usage(1000, 1000, 0, 0, &[])), None, "unpriced,unmapped_profile", Some(InRegion), None, None, None),
        // The alias maps the ARN to Sonnet 4.5, geo: 1000x3.3 + 1000x16.5.
        Case("aliased profile", "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fclaude-team", "us-east-1", false,
            mock_response(&usage(1000, 1000, 0, 0, &[])), Some("0.0198"), "", Some(Geo), None, None, Some(SONNET)),
        // An entry keyed by a full ARN (provisioned throughput): 1000x0.8 + 1000x3.2.
        Case("ARN-keyed entry", "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aprovisioned-model%2Fa1b2c3d4e5f6", "us-east-1", false,
            mock_response(&usage(1000, 1000, 0, 0, &[])), Some("0.004"), "", Some(InRegion), None, None,
            Some("custom:arn:aws:bedrock:us-east-1:123456789012:provisioned-model/a1b2c3d4e5f6")),
        // The custom file's flat entry overrides the built-in Nova Lite: 1000x0.1 + 1000x0.2.
        Case("flat override", "amazon.nova-lite-v1:0", "us-east-1", false,
            mock_response(&usage(1000, 1000, 0, 0, &[])), Some("0.0003"), "", Some(InRegion), None, None, Some("custom:amazon.nova-lite-v1:0")),
        // One-hour writes on an entry with no one-hour price: unknown, not the 5m price.
        Case("no one-hour price", "amazon.nova-lite-v1:0", "us-east-1", false,
            mock_response(&usage(1000, 1000, 0, 500, &[("1h", 500)])), None, "unpriced,class_unpriced", Some(InRegion), None, None, Some("custom:amazon.nova-lite-v1:0")),
        // Validity dates: the `from = 2020-01-01` card's input 3, the base output 4.
        Case("validity dates", "test.dated-v1", "us-east-1", false,
            mock_response(&usage(1000, 1000, 0, 0, &[])), Some("0.007"), "", Some(InRegion), None, None, Some("custom:test.dated-v1")),
        // Explicit figure over a factor: priority input 5 (card), output 2x2 (factor).
        Case("explicit card wins", "test.explicit-v1", "us-east-1", false,
            mock_response(&format!("{}{}", usage(1000, 1000, 0, 0, &[]), served("priority", "standard"))),
            Some("0.009"), "", Some(InRegion), Some(Priority), None, Some("custom:test.explicit-v1")),
        // A region set card (`lab` holds us-west-2) and a per-class factor on flex:
        // 1000x7x0.5 + 1000x9 = 12500 per 1M.
        Case("region set and per-class factor", "test.regional-v1", "us-west-2", false,
            mock_response(&format!("{}{}", usage(1000, 1000, 0, 0, &[]), served("flex", "standard"))),
            Some("0.0125"), "", Some(InRegion), Some(Flex), None, Some("custom:test.regional-v1")),
        // A tier the entry has no price for: unknown, not the default price.
        Case("tier without a price", "test.dated-v1", "us-east-1", false,
            mock_response(&format!("{}{}", usage(1000, 1000, 0, 0, &[]), served("priority", "standard"))),
            None, "unpriced,tier_unpriced", Some(InRegion), Some(Priority), None, Some("custom:test.dated-v1")),
        // 3 tokens x 5e-13 USD = 1.5e-12: rounded half to even to 2e-12, flagged.
        Case("sub-pico remainder", "test.tiny-v1", "us-east-1", false,
            mock_response(&usage(3, 0, 0, 0, &[])), Some("0.000000000002"), "cost_rounded", Some(InRegion), None, None, Some("custom:test.tiny-v1")),
    ]
}

fn request_body(extra: &str) -> Vec<u8> {
    let sep = if extra.is_empty() || extra.starts_with(',') {
        ""
    } else {
        ","
    };
    format!("{{\"messages\":[{{\"role\":\"user\",\"content\":[{{\"text\":\"price me\"}}]}}]{sep}{extra}}}").into_bytes()
}

#[test]
fn priced_cases_match_hand_computed_costs() {
    let m = mock();
    let dir = temp_dir("pricing");
    let prices = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pricing/custom.toml");
    let mut p = proxy(m.addr, &dir, &["--pricing", prices.to_str().unwrap()]);
    let cases = cases();
    assert!(cases.len() >= 20);
    let mut ids: HashMap<String, usize> = HashMap::new();
    for (i, c) in cases.iter().enumerate() {
        let h = Headers::good().set("X-Aws-Region", c.2).vec();
        let op = if c.3 { "converse-stream" } else { "converse" };
        let r = raw(
            p.addr,
            &request(&format!("/bedrock/model/{}/{op}", c.1), &h, &request_body(&c.4)),
        )
        .unwrap_or_else(|| panic!("{}: no response", c.0));
        assert_eq!(r.status, 200, "{}: {}", c.0, r.text());
        if !c.3 {
            assert_eq!(
                r.header("x-llmops-cost-usd").map(str::to_string),
                c.5.map(|v| format_usd(parse_usd(v).unwrap())),
                "{}: cost header",
                c.0
            );
        }
        ids.insert(r.header("x-request-id").unwrap().to_string(), i);
    }
    assert_eq!(p.terminate(), Some(0));
    let rows: Vec<UsageRecord> = read_dir(&dir).unwrap();
    assert_eq!(rows.len(), cases.len());
    for r in &rows {
        let c = &cases[ids[&r.request_id]];
        let want = c.5.map(|v| parse_usd(v).unwrap());
        assert_eq!(r.cost_pico_usd, want, "{}: cost", c.0);
        assert_eq!(r.cost_flags.to_column().unwrap_or_default(), c.6, "{}: flags", c.0);
        assert_eq!(r.price_scope, c.7, "{}: scope", c.0);
        if c.8.is_some() {
            assert_eq!(r.service_tier, c.8, "{}: tier", c.0);
        }
        if c.9.is_some() {
            assert_eq!(r.latency_mode, c.9, "{}: latency", c.0);
        }
        assert_eq!(r.price_id.as_deref(), c.10, "{}: price_id", c.0);
        assert_eq!(
            r.price_version
                .as_deref()
                .map(|v| v.ends_with("+test-prices-1") && v.starts_with("builtin-")),
            Some(true),
            "{}: price_version {:?}",
            c.0,
            r.price_version
        );
        assert_eq!(r.operation, if c.3 { "converse-stream" } else { "converse" });
    }
    // The worked example's split is recorded.
    let worked = rows
        .iter()
        .find(|r| cases[ids[&r.request_id]].0 == "worked example, stream")
        .unwrap();
    assert_eq!(
        (worked.cache_write_5m_tokens, worked.cache_write_1h_tokens),
        (Some(4000), Some(16_000))
    );
    assert_eq!(worked.cache_write_tokens, Some(20_000));
    let assumed = rows
        .iter()
        .find(|r| cases[ids[&r.request_id]].0 == "cache TTL assumed")
        .unwrap();
    assert_eq!(
        (assumed.cache_write_5m_tokens, assumed.cache_write_1h_tokens),
        (Some(1000), Some(0))
    );
    let guard = rows
        .iter()
        .find(|r| cases[ids[&r.request_id]].0 == "guardrail units, stream")
        .unwrap();
    assert_eq!(guard.guardrail_units, Some(7));
    // One warning per unpriced model, and a metric by model.
    let logs = p.logs();
    for model in ["acme.unknown-v1", "amazon.nova-micro-v1:0"] {
        assert_eq!(
            logs.lines()
                .filter(|l| l.contains("unpriced_model") && l.contains(&format!("model={model}")))
                .count(),
            1,
            "{model}: {logs}"
        );
    }
}

#[test]
fn unpriced_models_are_counted_by_model() {
    let m = mock();
    let dir = temp_dir("pricing-metrics");
    let mut p = proxy(m.addr, &dir, &[]);
    for _ in 0..3 {
        let r = converse(p.addr, "acme.unknown-v1", &good_headers(), &body("x"));
        assert_eq!(r.status, 200);
        assert!(r.header("x-llmops-cost-usd").is_none());
    }
    let r = converse(p.addr, "amazon.nova-lite-v1:0", &good_headers(), &body("x"));
    assert!(r.header("x-llmops-cost-usd").is_some());
    let found = wait_for(std::time::Duration::from_secs(5), || {
        Metrics::scrape(p.addr).get("llmops_unpriced_requests_total{model=\"acme.unknown-v1\"}") == Some(3.0)
    });
    assert!(found, "unpriced metric by model");
    assert_eq!(p.terminate(), Some(0));
    let logs = p.logs();
    assert_eq!(
        logs.lines().filter(|l| l.contains("unpriced_model")).count(),
        1,
        "{logs}"
    );
}

#[test]
fn a_stream_cut_before_its_metadata_is_flagged() {
    use std::io::{Read, Write};
    let m = mock();
    let dir = temp_dir("pricing-cut");
    let mut p = proxy(m.addr, &dir, &[]);
    let mut s = connect(p.addr);
    s.write_all(&request(
        "/bedrock/model/mock.pause-300/converse-stream",
        &good_headers(),
        &body("cut"),
    ))
    .unwrap();
    // Read the head and the first event, then go away.
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap();
    assert!(n > 0 && buf.starts_with(b"HTTP/1.1 200"));
    drop(s);
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert_eq!(p.terminate(), Some(0));
    let rows = read_dir(&dir).unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r.cost_pico_usd, None);
    let flags = r.cost_flags.to_column().unwrap_or_default();
    assert!(
        flags.contains("stream_cut_before_usage") && flags.contains("unpriced"),
        "{flags}"
    );
}

#[test]
fn prices_explain_prints_the_arithmetic_and_check_lists_overrides() {
    let out = std::process::Command::new(BIN)
        .args([
            "prices",
            "explain",
            "--model",
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "--region",
            "us-east-1",
            "--tier",
            "default",
            "--latency",
            "standard",
            "--usage",
            r#"{"inputTokens":1200,"outputTokens":2500,"cacheReadInputTokens":150000,"cacheWriteInputTokens":20000,"cacheDetails":[{"ttl":"1h","inputTokens":16000},{"ttl":"5m","inputTokens":4000}]}"#,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "entry      anthropic.claude-sonnet-4-5-20250929-v1:0 (scope geo)",
        "cache_write_1h: 6 from base card x geo 1.1 = 6.6 per 1M",
        "cache_write_1h: 16000 x 6.6 / 1M = 0.105600 USD",
        "total      0.216810 USD",
    ] {
        assert!(text.contains(want), "missing `{want}` in\n{text}");
    }
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pricing/custom.toml");
    let out = std::process::Command::new(BIN)
        .args(["prices", "check", fixture.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("overrides  amazon.nova-lite-v1:0") && text.contains("adds       test.dated-v1"),
        "{text}"
    );
    // The documented example is a valid file.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/pricing.example.toml");
    let out = std::process::Command::new(BIN)
        .args(["prices", "check", example.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A bad file names the table and field, exit 2.
    let bad = temp_dir("pricing-bad").join("bad.toml");
    std::fs::write(
        &bad,
        "[models.\"x\"]\ninput = \"1\"\noutput = \"1\"\nfactors = { geo = \"1.1\", turbo = \"2\" }\n",
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["prices", "check", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[models.\"x\"] factors.turbo") && err.contains("unknown factor"),
        "{err}"
    );
}
