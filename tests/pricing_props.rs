//! Properties of the price model over the built-in table and generated files: a cost is
//! never negative, never decreases when any token count grows, and a factor card equals
//! its base times the factor exactly. And the pricing step of a request allocates
//! nothing: a counting allocator watches `PriceTable::price`, `UsageRecord::apply_priced`
//! and the request-side tier scan on the thread that runs them.

// A test: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use llmops_proxy::pricing::decimal::{parse_factor, parse_price, FACTOR_ONE, FEMTO_PER_PICO};
use llmops_proxy::pricing::file::{parse, BUILTIN_PRICES};
use llmops_proxy::pricing::table::Source;
use llmops_proxy::pricing::{Latency, Metered, PriceTable, Query, Tier, Trace};
use llmops_proxy::usage::scan::Scanner;
use llmops_proxy::usage::UsageRecord;
use proptest::prelude::*;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counter is a const-initialised
// thread-local without destructor, so touching it never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.with(|a| a.set(a.get() + 1));
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.with(|a| a.set(a.get() + 1));
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCS.with(|a| a.get())
}

fn models() -> Vec<String> {
    let f = parse(BUILTIN_PRICES, Source::BuiltIn).unwrap();
    let mut v: Vec<String> = f.entries.into_iter().map(|(k, _)| k).collect();
    v.sort();
    v
}

const PREFIXES: [&str; 4] = ["", "us.", "eu.", "global."];
const REGIONS: [&str; 6] = [
    "us-east-1",
    "eu-central-1",
    "eu-south-1",
    "ap-northeast-1",
    "sa-east-1",
    "us-gov-west-1",
];

fn query<'a>(model: &'a str, region: &'a str, tier: Tier, latency: Latency, day: i64, usage: &'a Metered) -> Query<'a> {
    Query {
        model,
        invoked: None,
        region,
        day,
        tier_reported: Some(tier),
        tier_requested: None,
        latency_reported: Some(latency),
        latency_requested: None,
        usage,
    }
}

fn metered() -> impl Strategy<Value = Metered> {
    (
        0i64..2_000_000,
        0i64..200_000,
        0i64..400_000,
        0i64..100_000,
        0i64..100_000,
        any::<bool>(),
    )
        .prop_map(|(input, output, read, w5, w1, details)| Metered {
            input: Some(input),
            output: Some(output),
            cache_read: Some(read),
            cache_write: Some(w5 + w1),
            cache_write_5m: details.then_some(w5),
            cache_write_1h: details.then_some(w1),
            guardrail: None,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn costs_are_never_negative_and_grow_with_every_count(
        m in 0usize..1000,
        prefix in 0usize..PREFIXES.len(),
        region in 0usize..REGIONS.len(),
        tier in 0usize..4,
        latency in 0usize..2,
        day in 19_000i64..21_000,
        usage in metered(),
        class in 0usize..5,
        more in 1i64..300_000,
    ) {
        thread_local! { static TABLE: PriceTable = PriceTable::builtin(); static MODELS: Vec<String> = models(); }
        let model = MODELS.with(|ms| format!("{}{}", PREFIXES[prefix], ms[m % ms.len()]));
        let (tier, latency) = (Tier::ALL[tier], Latency::ALL[latency]);
        TABLE.with(|t| {
            let q = query(&model, REGIONS[region], tier, latency, day, &usage);
            let a = t.price(&q, &mut Trace::off());
            if let Some(c) = a.cost_pico {
                prop_assert!(c >= 0, "{model}: {c}");
            }
            let mut bigger = usage;
            let bump = |v: &mut Option<i64>| *v = Some(v.unwrap_or(0) + more);
            match class {
                0 => bump(&mut bigger.input),
                1 => bump(&mut bigger.output),
                2 => bump(&mut bigger.cache_read),
                3 => {
                    bump(&mut bigger.cache_write);
                    if bigger.cache_write_5m.is_some() { bump(&mut bigger.cache_write_5m); }
                }
                _ => {
                    bump(&mut bigger.cache_write);
                    if bigger.cache_write_1h.is_some() { bump(&mut bigger.cache_write_1h); } else { bigger.cache_write_5m = None; }
                }
            }
            let b = t.price(&query(&model, REGIONS[region], tier, latency, day, &bigger), &mut Trace::off());
            if let (Some(x), Some(y)) = (a.cost_pico, b.cost_pico) {
                prop_assert!(y >= x, "{model} {tier} {latency} {}: {x} -> {y} after +{more} of class {class}", REGIONS[region]);
            }
            Ok(())
        })?;
    }

    #[test]
    fn a_factor_card_is_its_base_times_the_factor_exactly(
        int in 0u64..1000,
        frac in 0u64..1_000_000,
        factor in prop::sample::select(vec!["1.10", "1.75", "0.5", "2", "0", "1.5", "1.25", "0.25"]),
        scope in prop::sample::select(vec!["geo", "in_region", "global"]),
    ) {
        let base = format!("{int}.{frac:06}");
        let text = format!(
            "[models.\"p.m\"]\ninput = \"{base}\"\noutput = \"{base}\"\nfactors = {{ {scope} = \"{factor}\" }}\n"
        );
        let f = parse(&text, Source::Custom).unwrap();
        let mut t = PriceTable::default();
        t.merge(f);
        let model = match scope { "geo" => "us.p.m", "global" => "global.p.m", _ => "p.m" };
        // One million tokens of input cost exactly the per-1M price.
        let usage = Metered { input: Some(1_000_000), output: Some(0), ..Default::default() };
        let got = t.price(&query(model, "us-east-1", Tier::Default, Latency::Standard, 20_000, &usage), &mut Trace::off());
        let want = parse_price(&base).unwrap() * parse_factor(factor).unwrap() / FACTOR_ONE * 1_000_000 / FEMTO_PER_PICO;
        prop_assert_eq!(got.cost_pico, Some(want), "{} x {}", base, factor);
        prop_assert!(got.flags.is_empty());
    }
}

#[test]
fn pricing_a_request_allocates_nothing() {
    let table = PriceTable::builtin().for_shard();
    let mut scanner = Scanner::new();
    let body =
        br#"{"messages":[{"role":"user","content":[{"text":"hello there"}]}],"inferenceConfig":{"maxTokens":512}}"#;
    let usage = Metered {
        input: Some(1200),
        output: Some(2500),
        cache_read: Some(150_000),
        cache_write: Some(20_000),
        cache_write_5m: Some(4000),
        cache_write_1h: Some(16_000),
        guardrail: Some([2, 1, 1, 0, 0, 0, 0, 0]),
    };
    let models = [
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "amazon.nova-pro-v1:0",
        "acme.unknown-v1",
        "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0",
    ];
    let mut rec = UsageRecord::default();
    // Warm up (first-use initialisation is not per request).
    for m in models {
        let _ = table.price(
            &query(m, "us-east-1", Tier::Priority, Latency::Standard, 20_000, &usage),
            &mut Trace::off(),
        );
    }
    let _ = scanner.request_hints(body);
    let before = allocations();
    let mut total = 0i128;
    for i in 0..10_000 {
        let m = models[i % models.len()];
        let region = ["us-east-1", "eu-central-1", "eu-south-1"][i % 3];
        let tier = Tier::ALL[i % 4];
        let p = table.price(
            &query(m, region, tier, Latency::Standard, 20_000 + (i as i64 % 400), &usage),
            &mut Trace::off(),
        );
        total += p.cost_pico.unwrap_or(0);
        rec.apply_priced(p);
        let hints = scanner.request_hints(body);
        assert_eq!(hints, (None, None));
    }
    let after = allocations();
    // The counter does count: one allocation is seen.
    let seen = allocations();
    let v: Vec<u8> = Vec::with_capacity(64);
    assert_eq!(allocations() - seen, 1);
    drop(v);
    assert!(total > 0);
    assert_eq!(after - before, 0, "allocations while pricing 10,000 requests");
}
