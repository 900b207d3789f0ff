//! `report`: its numbers equal the rows' (read independently with the parquet reader),
//! grouped by each dimension, and `--html` writes one self-contained page.

// A test: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::*;
use llmops_proxy::pricing::Scope;
use llmops_proxy::usage::read::read_dir;
use llmops_proxy::usage::record::format_usd;

#[test]
fn report_matches_rows() {
    let m = mock();
    let dir = temp_dir("report");
    let mut p = proxy(m.addr, &dir, &[]);
    let plan = [
        ("eng", "search", "amazon.nova-lite-v1:0"),
        ("eng", "chat", "anthropic.claude-sonnet-4-6"),
        ("sales", "crm", "amazon.nova-micro-v1:0"),
        ("sales", "crm", "mock.throttle"),
        ("ops", "infra", "meta.llama3-1-8b-instruct-v1:0"),
    ];
    for i in 0..15 {
        let (d, pr, model) = plan[i % plan.len()];
        let h = Headers::good().set("X-Department", d).set("X-Project", pr).vec();
        let _ = converse(p.addr, model, &h, &body(&format!("report {i} {}", "q".repeat(i))));
    }
    assert_eq!(p.terminate(), Some(0));
    let rows = read_dir(&dir).unwrap();
    assert_eq!(rows.len(), 15);

    let html = dir.join("report.html");
    let out = Command::new(BIN)
        .args([
            "report",
            "--usage-dir",
            dir.to_str().unwrap(),
            "--by",
            "department",
            "--html",
            html.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut want: BTreeMap<String, (u64, i64, i64, i128)> = BTreeMap::new();
    for r in &rows {
        let e = want.entry(r.department.clone().unwrap()).or_default();
        e.0 += 1;
        e.1 += r.input_tokens.unwrap_or(0);
        e.2 += r.output_tokens.unwrap_or(0);
        e.3 += r.cost_pico_usd.unwrap_or(0);
    }
    for (dept, (n, i, o, c)) in &want {
        let line = text
            .lines()
            .find(|l| l.starts_with(dept.as_str()))
            .unwrap_or_else(|| panic!("no {dept} in {text}"));
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[1], n.to_string(), "{line}");
        assert_eq!(cols[3], i.to_string(), "{line}");
        assert_eq!(cols[4], o.to_string(), "{line}");
        assert_eq!(cols[5], format_usd(*c), "{line}");
    }
    let total: i128 = rows.iter().filter_map(|r| r.cost_pico_usd).sum();
    let tline = text.lines().find(|l| l.starts_with("TOTAL")).unwrap();
    assert!(tline.ends_with(&format_usd(total)), "{tline}");
    // Sales: 3 of its 6 requests were throttled.
    let sales = text.lines().find(|l| l.starts_with("sales")).unwrap();
    assert!(sales.contains("50.00"), "{sales}");

    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!doctype html>") && page.contains("</html>"));
    assert_eq!(
        page.matches("<svg").count(),
        5,
        "spend over time, by department, by model, by tier, by scope"
    );
    // The tier and scope breakdowns follow the main table.
    assert!(text.contains("By tier:") && text.contains("By scope:"), "{text}");
    for scope in [Scope::Geo, Scope::InRegion] {
        let want: i128 = rows
            .iter()
            .filter(|r| r.price_scope == Some(scope))
            .filter_map(|r| r.cost_pico_usd)
            .sum();
        assert!(want > 0, "{scope}: the plan has calls of both scopes");
        let line = text
            .lines()
            .skip_while(|l| !l.starts_with("By scope:"))
            .find(|l| l.starts_with(&format!("{scope} ")))
            .unwrap_or_else(|| panic!("no {scope} line in {text}"));
        assert!(line.ends_with(&format_usd(want)), "{line} vs {}", format_usd(want));
    }
    for needle in [
        "eng",
        "sales",
        "ops",
        "us.anthropic.claude-sonnet-4-6",
        &format_usd(total),
    ] {
        assert!(page.contains(needle), "page lacks {needle}");
    }
    assert!(
        !page.contains("<script") && !page.contains("http://") && !page.contains("https://"),
        "self-contained"
    );

    for by in ["agent", "project", "model", "tenant", "day", "tier", "scope"] {
        let out = Command::new(BIN)
            .args(["report", "--usage-dir", dir.to_str().unwrap(), "--by", by])
            .output()
            .unwrap();
        assert!(out.status.success());
        let t = String::from_utf8_lossy(&out.stdout);
        assert!(
            t.lines()
                .any(|l| l.starts_with("TOTAL") && l.ends_with(&format_usd(total))),
            "{by}: {t}"
        );
    }
    let bad = Command::new(BIN)
        .args(["report", "--usage-dir", dir.to_str().unwrap(), "--by", "color"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
