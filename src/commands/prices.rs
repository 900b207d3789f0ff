//! `prices explain` (how one call is priced, every line of the arithmetic) and `prices
//! check FILE` (a price file validated, and what it overrides).

use super::{config_exit, with_sources};
use crate::args::ConfigError;

pub fn run(rest: &[String]) -> i32 {
    use crate::pricing::{explain, PriceTable, Query};
    match rest.first().map(String::as_str) {
        Some("check") => {
            let Some(file) = rest.get(1) else {
                return config_exit(&ConfigError::new("", "usage: llmops-proxy prices check FILE"));
            };
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
        Some("explain") => with_sources(crate::pricing::explain::FLAGS, &rest[1..], false, |_, s| {
            let Some(model) = s.get("model") else {
                return config_exit(&ConfigError::new("model", "is required"));
            };
            let region = s.get("region").unwrap_or_else(|| "us-east-1".into());
            let parse = |flag: &str, v: Option<String>, names: String, f: fn(&str) -> bool| match v {
                Some(v) if !f(&v) => Err(ConfigError::new(flag, format!("`{v}` is not one of {names}"))),
                v => Ok(v),
            };
            use crate::pricing::{Latency, Tier};
            let tier = match parse("tier", s.get("tier"), Tier::names(), |v| Tier::parse(v).is_some()) {
                Ok(t) => t.and_then(|t| Tier::parse(&t)),
                Err(e) => return config_exit(&e),
            };
            let latency = match parse("latency", s.get("latency"), Latency::names(), |v| {
                Latency::parse(v).is_some()
            }) {
                Ok(l) => l.and_then(|l| Latency::parse(&l)),
                Err(e) => return config_exit(&e),
            };
            let day = match s.get("date") {
                None => crate::util::time::unix_now().div_euclid(86_400),
                Some(d) => match crate::pricing::file::parse_date(&d) {
                    Some(d) => d,
                    None => return config_exit(&ConfigError::new("date", format!("`{d}` is not YYYY-MM-DD"))),
                },
            };
            let raw = s.get("usage").unwrap_or_else(|| "{}".into());
            // A bare usage object, or a whole response / metadata event.
            let wrapped = if raw.contains("\"usage\"") {
                raw.clone()
            } else {
                format!("{{\"usage\":{raw}}}")
            };
            let Some(usage) = crate::usage::scan::Scanner::new().scan(wrapped.as_bytes()) else {
                return config_exit(&ConfigError::new("usage", "is not a JSON object"));
            };
            let table = match s.path("pricing").map(|p| PriceTable::with_overrides(p.as_deref())) {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => return config_exit(&ConfigError::new("pricing", e.to_string())),
                Err(e) => return config_exit(&e),
            };
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
            let (_, lines) = explain::explain(&table, &q);
            for l in lines {
                println!("{l}");
            }
            0
        }),
        _ => {
            eprintln!("usage: llmops-proxy prices explain --model ID --region R [--tier T] [--latency L] --usage JSON\n       llmops-proxy prices check FILE");
            2
        }
    }
}
