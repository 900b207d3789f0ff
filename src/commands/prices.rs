//! `prices explain` (how one call is priced, every line of the arithmetic) and `prices
//! check FILE` (a price file validated, and what it overrides).

use super::{config_exit, with_sources};
use crate::args::{ConfigError, Sources};
use crate::pricing::{explain, Latency, PriceTable, Query, Tier};

pub(crate) fn run(rest: &[String]) -> i32 {
    match rest.first().map(String::as_str) {
        Some("check") => match rest.get(1) {
            Some(file) => check(file),
            None => config_exit(&ConfigError::new("", "usage: llmops-proxy prices check FILE")),
        },
        Some("explain") => with_sources(explain::FLAGS, &rest[1..], false, |_, s| match explain_call(s) {
            Ok(lines) => {
                for l in lines {
                    println!("{l}");
                }
                0
            }
            Err(e) => config_exit(&e),
        }),
        _ => {
            eprintln!("usage: llmops-proxy prices explain --model ID --region R [--tier T] [--latency L] --usage JSON\n       llmops-proxy prices check FILE");
            2
        }
    }
}

fn check(file: &str) -> i32 {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => return config_exit(&ConfigError::new("", format!("cannot read {file}: {e}"))),
    };
    match explain::check(&text) {
        Ok(lines) => {
            for l in lines {
                println!("{l}");
            }
            0
        }
        Err(e) => {
            eprintln!("llmops-proxy prices check: {file}: {e}");
            2
        }
    }
}

/// A flag whose value is one of a dimension's names.
fn named<T>(
    s: &Sources<'_>,
    flag: &str,
    parse: fn(&str) -> Option<T>,
    names: String,
) -> Result<Option<T>, ConfigError> {
    match s.get(flag) {
        None => Ok(None),
        Some(v) => parse(&v)
            .map(Some)
            .ok_or_else(|| ConfigError::new(flag, format!("`{v}` is not one of {names}"))),
    }
}

/// The lines of `prices explain` for the call its flags describe.
fn explain_call(s: &Sources<'_>) -> Result<Vec<String>, ConfigError> {
    let model = s.get("model").ok_or_else(|| ConfigError::new("model", "is required"))?;
    let region = s.get("region").unwrap_or_else(|| "us-east-1".into());
    let tier = named(s, "tier", Tier::parse, Tier::names())?;
    let latency = named(s, "latency", Latency::parse, Latency::names())?;
    let day = match s.get("date") {
        None => crate::util::time::unix_now().div_euclid(86_400),
        Some(d) => crate::pricing::file::parse_date(&d)
            .ok_or_else(|| ConfigError::new("date", format!("`{d}` is not YYYY-MM-DD")))?,
    };
    let raw = s.get("usage").unwrap_or_else(|| "{}".into());
    // A bare usage object, or a whole response / metadata event.
    let wrapped = if raw.contains("\"usage\"") {
        raw
    } else {
        format!("{{\"usage\":{raw}}}")
    };
    let usage = crate::usage::scan::Scanner::new()
        .scan(wrapped.as_bytes())
        .ok_or_else(|| ConfigError::new("usage", "is not a JSON object"))?;
    let table = PriceTable::with_overrides(s.path("pricing")?.as_deref())
        .map_err(|e| ConfigError::new("pricing", e.to_string()))?;
    let q = Query {
        model: &model,
        invoked: usage.invoked_model.as_deref(),
        region: &region,
        day,
        tier_reported: tier.or(usage.tier),
        tier_requested: None,
        latency_reported: latency.or(usage.latency),
        latency_requested: None,
        usage: &usage.metered,
    };
    Ok(explain::explain(&table, &q).1)
}
