//! Real Bedrock clients through the proxy, unchanged but for the URL and the headers: the
//! Anthropic Python SDK's `AnthropicBedrock` (a call and a stream), boto3's `invoke_model`
//! and `invoke_model_with_response_stream` (the proxy's headers added by botocore's event
//! hooks) and Claude Code in print mode (`claude -p`, offline, against the proxy as its
//! Bedrock gateway). Each request leaves one row, by agent, with the tokens the client saw
//! and the exact cost; nothing of the prompt or the credentials is stored.
//!
//! The clients are installed by `.ci/run` (`pip install "anthropic[bedrock]" boto3`, `npm
//! install @anthropic-ai/claude-code` under `target/clients`); without them a test says so
//! and passes, unless `LLMOPS_REQUIRE_CLIENTS` is set (as in CI).

// A test: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use llmops_proxy::usage::read::read_dir;
use llmops_proxy::usage::record::format_usd;
use llmops_proxy::usage::UsageRecord;

/// The geo (us.) rates of Claude Sonnet 4.5 per token, in 1e-12 USD
/// (`shared/reference/bedrock-pricing.md`): input, output, cache read, 5-minute and
/// one-hour cache writes.
const SONNET_GEO: [i128; 5] = [3_300_000, 16_500_000, 330_000, 4_125_000, 6_600_000];

/// Whether a client is missing: fails when clients are required, else says so.
fn missing(what: &str, why: &str) -> bool {
    if std::env::var("LLMOPS_REQUIRE_CLIENTS").is_ok() {
        panic!("{what} is required (LLMOPS_REQUIRE_CLIENTS) but {why}");
    }
    eprintln!("skipping: {what} is not installed ({why})");
    true
}

fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// One JSON line of a client script, as (key, raw value) lookups.
struct Line(String);

impl Line {
    fn get(&self, key: &str) -> String {
        let p = self
            .0
            .find(&format!("\"{key}\": "))
            .unwrap_or_else(|| panic!("{key} in {}", self.0))
            + key.len()
            + 4;
        let rest = &self.0[p..];
        if let Some(s) = rest.strip_prefix('"') {
            s[..s.find('"').unwrap()].to_string()
        } else {
            rest.chars().take_while(|c| c.is_ascii_digit()).collect()
        }
    }

    fn int(&self, key: &str) -> i64 {
        self.get(key).parse().unwrap()
    }
}

/// Runs a client script against the proxy's `/bedrock` base URL.
fn run_script(script: &str, addr: std::net::SocketAddr, agent: &str) -> Vec<Line> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients").join(script);
    let out = Command::new("python3")
        .arg(&path)
        .args([&format!("http://{addr}/bedrock"), TRACKING_KEY, AKID, SECRET, agent])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(|l| Line(l.to_string())).collect()
}

fn by_agent<'a>(rows: &'a [UsageRecord], agent: &str) -> Vec<&'a UsageRecord> {
    rows.iter().filter(|r| r.agent.as_deref() == Some(agent)).collect()
}

/// The row of `agent` matches what its client saw, priced exactly at Sonnet 4.5's geo rates.
fn check_row(rows: &[UsageRecord], line: &Line, op: &str) {
    let agent = line.get("agent");
    let found = by_agent(rows, &agent);
    assert_eq!(found.len(), 1, "one row for {agent}");
    let r = found[0];
    assert_eq!((r.status, r.operation), (200, op), "{agent}");
    assert_eq!(r.model_effective, "us.anthropic.claude-sonnet-4-5-20250929-v1:0");
    let (input, output) = (line.int("input"), line.int("output"));
    assert_eq!(
        (r.input_tokens, r.output_tokens),
        (Some(input), Some(output)),
        "{agent}"
    );
    let w1 = r.cache_write_1h_tokens.unwrap_or(0);
    let w5 = r.cache_write_5m_tokens.unwrap_or(0);
    let read = r.cache_read_tokens.unwrap_or(0);
    let want = input as i128 * SONNET_GEO[0]
        + output as i128 * SONNET_GEO[1]
        + read as i128 * SONNET_GEO[2]
        + w5 as i128 * SONNET_GEO[3]
        + w1 as i128 * SONNET_GEO[4];
    assert_eq!(r.cost_pico_usd, Some(want), "{agent}: {:?}", r.cost_flags.to_column());
    // The client got the mock's answer, which names the SHA-256 of the body it received.
    assert!(line.get("text").contains("request body sha256"), "{}", line.0);
}

fn no_secrets(rows: &[UsageRecord], logs: &str, extra: &[&str]) {
    let dump = format!("{rows:?}");
    for s in [SECRET, TRACKING_KEY].iter().chain(extra) {
        assert!(!dump.contains(s), "a row holds {s}");
        assert!(!logs.contains(s), "the log holds {s}");
    }
}

#[test]
fn anthropic_bedrock_sdk_calls_are_metered() {
    if !python_has("anthropic") && missing("the anthropic SDK", "python3 cannot import anthropic") {
        return;
    }
    let m = mock();
    let dir = temp_dir("clients-anthropic");
    let mut p = proxy(m.addr, &dir, &[]);
    let lines = run_script("anthropic_bedrock.py", p.addr, "sdk");
    assert_eq!(lines.len(), 2);
    assert_eq!(p.terminate(), Some(0));
    let rows = read_dir(&dir).unwrap();
    check_row(&rows, &lines[0], "invoke");
    check_row(&rows, &lines[1], "invoke-stream");
    for l in &lines {
        // The body asks for a one-hour cache write; the SDK saw it as a cache write.
        let r = by_agent(&rows, &l.get("agent"))[0];
        assert_eq!(r.cache_write_1h_tokens, Some(l.int("cache_write")));
        assert_eq!(r.stop_reason.as_deref(), Some(l.get("stop").as_str()));
    }
    no_secrets(&rows, &p.logs(), &["say hi", "sdk-own-secret"]);
}

#[test]
fn boto3_invoke_model_calls_are_metered() {
    if !python_has("boto3") && missing("boto3", "python3 cannot import boto3") {
        return;
    }
    let m = mock();
    let dir = temp_dir("clients-boto3");
    let mut p = proxy(m.addr, &dir, &[]);
    let lines = run_script("boto3_invoke.py", p.addr, "boto");
    assert_eq!(lines.len(), 2);
    assert_eq!(p.terminate(), Some(0));
    let rows = read_dir(&dir).unwrap();
    check_row(&rows, &lines[0], "invoke");
    check_row(&rows, &lines[1], "invoke-stream");
    no_secrets(&rows, &p.logs(), &["say hi", "boto-own-secret"]);
}

/// Claude Code's binary: `LLMOPS_CLAUDE`, else where `.ci/run` installs it.
fn claude_bin() -> PathBuf {
    match std::env::var_os("LLMOPS_CLAUDE") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/clients/node_modules/.bin/claude"),
    }
}

#[test]
fn claude_code_in_print_mode_is_metered() {
    let bin = claude_bin();
    if !bin.exists() && missing("Claude Code", &format!("{} does not exist", bin.display())) {
        return;
    }
    let m = mock();
    let dir = temp_dir("clients-claude");
    let mut p = proxy(m.addr, &dir, &[]);
    let home = temp_dir("clients-claude-home");
    let headers = format!(
        "X-Cloudidr-Key: {TRACKING_KEY}\nX-Aws-Access-Key-Id: {AKID}\nX-Aws-Secret-Access-Key: {SECRET}\nX-Agent: claude-code\nX-Department: eng"
    );
    let prompt = "PROMPT-CANARY-cc: reply with one word";
    // Bounded: a client that hangs fails the test instead of stalling the suite.
    let out = Command::new("timeout")
        .arg("180")
        .arg(&bin)
        .args(["-p", prompt])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("CLAUDE_CODE_USE_BEDROCK", "1")
        .env("ANTHROPIC_BEDROCK_BASE_URL", format!("http://{}/bedrock", p.addr))
        .env("CLAUDE_CODE_SKIP_BEDROCK_AUTH", "1")
        .env("ANTHROPIC_CUSTOM_HEADERS", &headers)
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_TELEMETRY", "1")
        .env("AWS_REGION", "us-east-1")
        .env("ANTHROPIC_MODEL", "us.anthropic.claude-sonnet-4-5-20250929-v1:0")
        .env(
            "ANTHROPIC_SMALL_FAST_MODEL",
            "us.anthropic.claude-haiku-4-5-20251001-v1:0",
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "claude failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It printed the mock's answer, so its calls went through the proxy.
    assert!(stdout.contains("request body sha256"), "{stdout}");
    let answered = stat(&mock_stats(m.addr), "ok");
    assert_eq!(p.terminate(), Some(0));
    let rows = read_dir(&dir).unwrap();
    let cc = by_agent(&rows, "claude-code");
    // Every request it made has its row, each priced.
    assert_eq!(cc.len() as u64, answered, "{rows:#?}");
    assert!(!cc.is_empty());
    for r in &cc {
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.operation.starts_with("invoke"), "{r:?}");
        assert_eq!(r.department.as_deref(), Some("eng"));
        assert!(r.input_tokens.is_some_and(|n| n > 0), "{r:?}");
        assert!(r.cost_pico_usd.is_some_and(|c| c > 0), "{r:?}");
    }
    no_secrets(&rows, &p.logs(), &[prompt]);
    // `report --by agent` shows it with its cost.
    let cost: i128 = cc.iter().filter_map(|r| r.cost_pico_usd).sum();
    let out = Command::new(BIN)
        .args(["report", "--usage-dir", &dir.display().to_string(), "--by", "agent"])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = report
        .lines()
        .find(|l| l.starts_with("claude-code "))
        .unwrap_or_else(|| panic!("no claude-code line:\n{report}"));
    assert!(
        line.trim_end().ends_with(&format_usd(cost)),
        "{line} vs {}",
        format_usd(cost)
    );
}
