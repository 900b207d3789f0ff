//! The `llmops-proxy` command: `serve`, `demo`, `mock-upstream`. Exit codes: 0 clean
//! stop, 2 bad configuration (the message names the flag), 1 runtime failure.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use llmops_proxy::config::{self, Args, ConfigError, ServeConfig, Sources};
use llmops_proxy::mock::verify::Credential;
use llmops_proxy::mock::MockConfig;
use llmops_proxy::server::ServeError;

const USAGE: &str =
    "llmops-proxy: a thread-per-core Amazon Bedrock proxy that signs with SigV4 and meters usage into Parquet

Usage:
  llmops-proxy serve [FLAGS]          run the proxy (see `llmops-proxy serve --help`)
  llmops-proxy demo [FLAGS]           offline demo: mock Bedrock + proxy + sample traffic + cost table
  llmops-proxy mock-upstream [FLAGS]  a Bedrock Runtime simulator that verifies SigV4 (tests, demos)
  llmops-proxy report [FLAGS]         cost, tokens and error rates from the Parquet files (text, --html)
  llmops-proxy prices explain [FLAGS] how one call is priced, line by line (check a figure against the bill)
  llmops-proxy prices check FILE      validate a --pricing file and list what it overrides
  llmops-proxy help                   this text
";

fn config_exit(e: &ConfigError) -> i32 {
    eprintln!("llmops-proxy: configuration error: {e}");
    2
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// Parses a subcommand's flags and hands its configuration sources to `f`; a bad flag
/// exits with code 2 naming it.
fn with_sources(
    specs: &[config::FlagSpec],
    rest: &[String],
    use_env: bool,
    f: impl FnOnce(&Args, &Sources<'_>) -> i32,
) -> i32 {
    let args = match Args::parse(specs, rest) {
        Ok(a) => a,
        Err(e) => return config_exit(&e),
    };
    let envf: &dyn Fn(&str) -> Option<String> = if use_env { &env } else { &no_env };
    match Sources::new(&args, envf) {
        Ok(s) => f(&args, &s),
        Err(e) => config_exit(&e),
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let code = run(argv);
    std::process::exit(code);
}

fn run(argv: Vec<String>) -> i32 {
    let Some(cmd) = argv.first().cloned() else {
        eprint!("{USAGE}");
        return 2;
    };
    let rest = &argv[1..];
    if rest.iter().any(|a| a == "--help" || a == "-h") {
        let text = match cmd.as_str() {
            "serve" => config::help("serve", "run the proxy", config::SERVE_FLAGS),
            "mock-upstream" => config::help(
                "mock-upstream",
                "a Bedrock Runtime simulator that verifies SigV4",
                config::MOCK_FLAGS,
            ),
            "demo" => config::help("demo", "offline demo on loopback", config::DEMO_FLAGS),
            "report" => config::help(
                "report",
                "cost, tokens and error rates from usage Parquet files",
                config::REPORT_FLAGS,
            ),
            "prices" => config::help(
                "prices explain",
                "how one call is priced, every line of the arithmetic (`prices check FILE` validates a price file)",
                config::PRICES_EXPLAIN_FLAGS,
            ),
            _ => USAGE.to_string(),
        };
        print!("{text}");
        return 0;
    }
    match cmd.as_str() {
        "serve" => with_sources(config::SERVE_FLAGS, rest, true, |_, sources| serve(sources)),
        "mock-upstream" => with_sources(config::MOCK_FLAGS, rest, true, mock_upstream),
        "demo" => with_sources(config::DEMO_FLAGS, rest, false, |_, sources| {
            let n: usize = match sources.parse_num("requests", 12) {
                Ok(n) => n,
                Err(e) => return config_exit(&e),
            };
            match sources.path("usage-dir") {
                Ok(dir) => llmops_proxy::demo::run(dir, n),
                Err(e) => config_exit(&e),
            }
        }),
        "report" => with_sources(config::REPORT_FLAGS, rest, true, |_, sources| report(sources)),
        "prices" => prices(rest),
        "help" => {
            print!("{USAGE}");
            0
        }
        other => {
            eprintln!("llmops-proxy: unknown command `{other}`\n\n{USAGE}");
            2
        }
    }
}

fn serve(sources: &Sources<'_>) -> i32 {
    let cfg = match ServeConfig::from_sources(sources) {
        Ok(c) => c,
        Err(e) => return config_exit(&e),
    };
    llmops_proxy::log::set_json(cfg.log_format == config::LogFormat::Json);
    match llmops_proxy::server::serve(cfg, None) {
        Ok(()) => 0,
        Err(ServeError::Config(e)) => config_exit(&e),
        Err(ServeError::Runtime(e)) => {
            llmops_proxy::log::error("fatal", &[("error", &e)]);
            1
        }
    }
}

fn mock_upstream(args: &Args, sources: &Sources<'_>) -> i32 {
    if let Ok(f) = config::log_format(sources) {
        llmops_proxy::log::set_json(f == config::LogFormat::Json);
    }
    let listen: SocketAddr = match sources.addr("listen", "127.0.0.1:9000") {
        Ok(a) => a,
        Err(e) => return config_exit(&e),
    };
    let mut cfg = MockConfig::new(listen);
    match (sources.get("tls-cert"), sources.get("tls-key")) {
        (None, None) => {}
        (Some(c), Some(k)) => match llmops_proxy::tls::server_config(c.as_ref(), k.as_ref(), None) {
            Ok(t) => cfg.tls = Some(t),
            Err(e) => return config_exit(&ConfigError::new("tls-cert", e.to_string())),
        },
        (Some(_), None) => return config_exit(&ConfigError::new("tls-key", "needed with --tls-cert")),
        (None, Some(_)) => return config_exit(&ConfigError::new("tls-cert", "needed with --tls-key")),
    }
    match sources.parse_num::<u64>("idle-close-ms", 0) {
        Ok(0) => {}
        Ok(ms) => cfg.idle_close = Some(std::time::Duration::from_millis(ms)),
        Err(e) => return config_exit(&e),
    }
    for c in args.all("credential") {
        match Credential::parse(c) {
            Some(c) => cfg.credentials.push(c),
            None => {
                return config_exit(&ConfigError::new(
                    "credential",
                    format!("`{c}` is not AKID:SECRET[:TOKEN]"),
                ))
            }
        }
    }
    match llmops_proxy::mock::run(cfg, None, Arc::new(AtomicBool::new(false))) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("llmops-proxy mock-upstream: {e}");
            1
        }
    }
}

fn report(sources: &Sources<'_>) -> i32 {
    use llmops_proxy::report::{group, html, text_table, total, GroupBy};
    let dir = sources.get("usage-dir").unwrap_or_else(|| "./usage".into());
    let by_s = sources.get("by").unwrap_or_else(|| "project".into());
    let Some(by) = GroupBy::parse(&by_s) else {
        return config_exit(&ConfigError::new(
            "by",
            format!("`{by_s}` is not one of agent, department, project, model, tenant, day, tier, scope"),
        ));
    };
    let path = std::path::Path::new(&dir);
    if !path.is_dir() {
        return config_exit(&ConfigError::new("usage-dir", format!("{dir} is not a directory")));
    }
    let rows = match llmops_proxy::usage::read::read_dir(path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("llmops-proxy report: cannot read usage files under {dir}: {e}");
            return 1;
        }
    };
    let files = llmops_proxy::usage::writer::list_files(path).len();
    println!("{} rows from {files} Parquet file(s) under {dir}\n", rows.len());
    print!("{}", text_table(&group(&rows, by), &total(&rows), by));
    print!("{}", llmops_proxy::report::breakdowns(&rows, by));
    if let Some(bf) = sources.get("budgets") {
        match llmops_proxy::budget::BudgetFile::load(std::path::Path::new(&bf)) {
            Ok(f) => {
                println!("\nBudgets (current UTC day/month):");
                print!(
                    "{}",
                    llmops_proxy::report::budget_table(&rows, &f.budgets, llmops_proxy::util::time::unix_now())
                );
            }
            Err(e) => return config_exit(&ConfigError::new("budgets", format!("{bf}: {e}"))),
        }
    }
    if let Some(out) = sources.get("html") {
        if let Err(e) = std::fs::write(&out, html(&rows, by, path)) {
            eprintln!("llmops-proxy report: cannot write {out}: {e}");
            return 1;
        }
        println!("\nHTML report written to {out}");
    }
    0
}

fn prices(rest: &[String]) -> i32 {
    use llmops_proxy::pricing::{explain, PriceTable, Query};
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
        Some("explain") => with_sources(config::PRICES_EXPLAIN_FLAGS, &rest[1..], false, |_, s| {
            let Some(model) = s.get("model") else {
                return config_exit(&ConfigError::new("model", "is required"));
            };
            let region = s.get("region").unwrap_or_else(|| "us-east-1".into());
            let parse = |flag: &str, v: Option<String>, names: String, f: fn(&str) -> bool| match v {
                Some(v) if !f(&v) => Err(ConfigError::new(flag, format!("`{v}` is not one of {names}"))),
                v => Ok(v),
            };
            use llmops_proxy::pricing::{Latency, Tier};
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
                None => llmops_proxy::util::time::unix_now().div_euclid(86_400),
                Some(d) => match llmops_proxy::pricing::file::parse_date(&d) {
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
            let Some(usage) = llmops_proxy::usage::scan::Scanner::new().scan(wrapped.as_bytes()) else {
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
