//! `demo`: offline, on loopback. Starts the mock upstream and the proxy on free ports,
//! sends sample Converse calls (and one InvokeModel) for a few departments, projects and
//! agents under a budget and three optimizer rules (a rewrite, a downgrade, a fallback),
//! stops the proxy (which flushes Parquet), and prints a cost table and the optimizer's
//! savings read back from the files.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use crate::args::{flag, switch, FlagSpec};
use crate::mock::{MockConfig, DEMO_ACCESS_KEY_ID, DEMO_SECRET_ACCESS_KEY};
use crate::proxy::shard::Settings;
use crate::server::ServeConfig;
use crate::upstream::Timeouts;
use crate::usage::record::format_usd;

/// Flags of `demo`.
pub const FLAGS: &[FlagSpec] = &[
    flag(
        "usage-dir",
        "DIR",
        "where the demo's Parquet files go [default: a new temporary directory]",
    ),
    flag("requests", "N", "how many sample requests to send [default: 16]"),
    switch(
        "serve",
        "keep the proxy up after the traffic, with the live dashboard on 127.0.0.1, until Ctrl-C",
    ),
];

/// The demo's tracking key (open key mode accepts it).
pub const DEMO_TRACKING_KEY: &str = "trk_demo_0123456789abcdef";

/// Status, lower-cased headers and body of a response.
pub type Response = (u16, Vec<(String, String)>, Vec<u8>);

/// Requests, errors, input tokens, output tokens, cost per (department, model).
type Totals = BTreeMap<(String, String), (u64, u64, i64, i64, i128)>;

/// A minimal blocking HTTP/1.1 exchange for the demo: returns status, headers, body.
pub fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let mut hs = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut hs);
    let n = match r.parse(&resp) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "bad response")),
    };
    let headers = r
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    Ok((r.code.unwrap_or(0), headers, resp[n..].to_vec()))
}

/// The demo's budget: the triage bot may spend $0.000005 a day, then it is refused. Its
/// `mock.throttle` calls have no price, so the budget lets unpriced calls through (their
/// 429 `ThrottlingException` from the mock is relayed and recorded).
const DEMO_BUDGETS: &str = "[[budget]]\nname = \"triage-bot-daily\"\nscope = \"agent\"\nvalue = \"triage-bot\"\nperiod = \"day\"\nlimit_usd = \"0.000005\"\naction = \"block\"\nallow_unpriced = true\n\n[[budget]]\nname = \"engineering-daily\"\nscope = \"department\"\nvalue = \"engineering\"\nperiod = \"day\"\nlimit_usd = \"0.0008\"\naction = \"alert\"\n";

/// One kind of sample call.
struct Team {
    dept: &'static str,
    project: &'static str,
    agent: &'static str,
    model: &'static str,
    region: &'static str,
}

const fn team(dept: &'static str, project: &'static str, agent: &'static str, model: &'static str) -> Team {
    Team {
        dept,
        project,
        agent,
        model,
        region: "us-east-1",
    }
}

/// The sample traffic, round-robin. The claude-code agent calls InvokeModel with an
/// Anthropic Messages body, as Claude Code does; the optimizer rewrites the copywriter's
/// Sonnet calls to Haiku, downgrades the ranker to Nova Lite once engineering's budget is
/// half spent, and moves the reporter off throttled eu-west-1.
const TEAMS: [Team; 8] = [
    team("engineering", "search", "indexer", "amazon.nova-lite-v1:0"),
    team("engineering", "search", "ranker", "anthropic.claude-sonnet-4-6"),
    team("marketing", "campaigns", "copywriter", "anthropic.claude-sonnet-4-6"),
    team("support", "helpdesk", "triage-bot", "amazon.nova-micro-v1:0"),
    team("support", "helpdesk", "triage-bot", "mock.throttle"),
    team("finance", "forecast", "analyst", "meta.llama3-1-8b-instruct-v1:0"),
    team(
        "engineering",
        "platform",
        "claude-code",
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
    ),
    Team {
        region: "eu-west-1",
        ..team(
            "finance",
            "reporting",
            "reporter",
            "anthropic.claude-haiku-4-5-20251001-v1:0",
        )
    },
];

/// The agent of [`TEAMS`] that calls InvokeModel.
const INVOKE_AGENT: &str = "claude-code";

/// The demo's optimizer rules: one rewrite, one downgrade, one fallback.
const DEMO_ROUTES: &str = "[[route]]\nname = \"copy-to-haiku\"\nmatch = { agent = \"copywriter\", model = \"anthropic.claude-sonnet-*\" }\naction = \"rewrite\"\nto = \"anthropic.claude-haiku-4-5-20251001-v1:0\"\n\n[[route]]\nname = \"ranker-soft-cap\"\nmatch = { department = \"engineering\", agent = \"ranker\" }\naction = \"downgrade\"\nbudget = \"engineering-daily\"\nat_ratio = \"0.5\"\nto = \"amazon.nova-lite-v1:0\"\n\n[[route]]\nname = \"eu-fallback\"\nmatch = { project = \"reporting\" }\naction = \"fallback\"\ntry = [{ region = \"eu-central-1\" }]\n";

/// The demo's proxy: two shards on loopback in front of the mock, with the budget.
fn proxy_config(
    mock_addr: SocketAddr,
    dir: PathBuf,
    budget_file: PathBuf,
    routes_file: PathBuf,
    admin: Option<SocketAddr>,
) -> ServeConfig {
    ServeConfig {
        listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        threads: 2,
        usage_dir: dir,
        proxy: Settings {
            endpoint: crate::upstream::endpoint::Endpoint::Fixed {
                tls: false,
                host: mock_addr.ip().to_string(),
                port: mock_addr.port(),
            },
            timeouts: Timeouts {
                connect: Duration::from_secs(5),
                tls: Duration::from_secs(5),
                ttfb: Duration::from_secs(30),
                total: Duration::from_secs(60),
            },
            ..Settings::default()
        },
        budgets: Some(budget_file),
        routes: Some(routes_file),
        admin_listen: admin,
        drain_timeout: Duration::from_secs(5),
        access_log: false,
        // A few dozen rows: the smallest journal (four 256 KiB segments per shard).
        ledger_max_bytes: 2 * crate::usage::ledger::MIN_MAX_BYTES_PER_SHARD,
        ..ServeConfig::default()
    }
}

/// Runs the demo; returns the process exit code.
pub fn run(usage_dir: Option<PathBuf>, requests: usize, serve: bool) -> i32 {
    let dir = usage_dir.unwrap_or_else(|| std::env::temp_dir().join(format!("llmops-demo-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir);
    let (mtx, mrx) = mpsc::channel();
    let mut mcfg = MockConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)));
    // The reporter's region is throttled: the optimizer's fallback moves it.
    mcfg.throttle_regions = vec!["eu-west-1".into()];
    let stop = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || crate::mock::run(mcfg, Some(mtx), stop));
    let Ok(mock_addr) = mrx.recv_timeout(Duration::from_secs(10)) else {
        eprintln!("demo: the mock upstream did not start");
        return 1;
    };
    let budget_file = std::env::temp_dir().join(format!("llmops-demo-budgets-{}.toml", std::process::id()));
    if let Err(e) = std::fs::write(&budget_file, DEMO_BUDGETS) {
        eprintln!("demo: cannot write {}: {e}", budget_file.display());
        return 1;
    }
    let routes_file = std::env::temp_dir().join(format!("llmops-demo-routes-{}.toml", std::process::id()));
    if let Err(e) = std::fs::write(&routes_file, DEMO_ROUTES) {
        eprintln!("demo: cannot write {}: {e}", routes_file.display());
        return 1;
    }
    // With --serve, the dashboard on a free loopback port.
    let admin = if serve {
        match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
            Ok(a) => Some(a),
            Err(e) => {
                eprintln!("demo: no free port for the dashboard: {e}");
                return 1;
            }
        }
    } else {
        None
    };
    let cfg = proxy_config(mock_addr, dir.clone(), budget_file.clone(), routes_file.clone(), admin);
    let (ptx, prx) = mpsc::channel();
    let server = std::thread::spawn(move || crate::server::serve(cfg, Some(ptx)));
    let Ok(proxy_addr) = prx.recv_timeout(Duration::from_secs(10)) else {
        eprintln!("demo: the proxy did not start");
        return 1;
    };
    println!("\nllmops-proxy demo: proxy on http://{proxy_addr}, mock Bedrock on http://{mock_addr}");
    println!("budget: agent triage-bot may spend $0.000005 a day (block); engineering $0.0008 a day (alert)");
    println!("optimizer: copy-to-haiku (rewrite), ranker-soft-cap (downgrade to Nova Lite at 50% of engineering-daily), eu-fallback (throttled eu-west-1 -> eu-central-1)\n");
    send_traffic(proxy_addr, requests);
    match admin {
        Some(a) => {
            println!(
                "\ndashboard: http://{a}/dashboard   (the proxy stays up on http://{proxy_addr}; Ctrl-C stops it)"
            );
            let _ = std::io::stdout().flush();
        }
        None => crate::server::signals::request_stop(),
    }
    match server.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            eprintln!("demo: proxy failed: {e}");
            return 1;
        }
        Err(_) => return 1,
    }
    let _ = std::fs::remove_file(&budget_file);
    let _ = std::fs::remove_file(&routes_file);
    print_rows(&dir)
}

/// Sends the sample calls, one line each.
fn send_traffic(proxy_addr: SocketAddr, requests: usize) {
    println!(
        "{:<4} {:<12} {:<10} {:<11} {:<42} {:>6} {:>6} {:>6} {:>16}",
        "#", "department", "project", "agent", "model", "status", "in", "out", "cost (USD)"
    );
    for i in 0..requests {
        let Team {
            dept,
            project: proj,
            agent,
            model,
            region,
        } = TEAMS[i % TEAMS.len()];
        let invoke = agent == INVOKE_AGENT;
        let body = if invoke {
            format!(
                "{{\"anthropic_version\":\"bedrock-2023-05-31\",\"max_tokens\":256,\"messages\":[{{\"role\":\"user\",\"content\":[{{\"type\":\"text\",\"text\":\"Sample question {i}: explain this stack trace.\",\"cache_control\":{{\"type\":\"ephemeral\",\"ttl\":\"1h\"}}}}]}}]}}"
            )
        } else {
            format!(
                "{{\"messages\":[{{\"role\":\"user\",\"content\":[{{\"text\":\"Sample question {i} from {agent}: summarise last week's tickets.\"}}]}}],\"inferenceConfig\":{{\"maxTokens\":256}}}}"
            )
        };
        let op = if invoke { "invoke" } else { "converse" };
        let path = format!("/bedrock/model/{}/{op}", model.replace(':', "%3A"));
        let headers = [
            ("X-Cloudidr-Key", DEMO_TRACKING_KEY),
            ("X-Aws-Access-Key-Id", DEMO_ACCESS_KEY_ID),
            ("X-Aws-Secret-Access-Key", DEMO_SECRET_ACCESS_KEY),
            ("X-Aws-Region", region),
            ("X-Department", dept),
            ("X-Project", proj),
            ("X-Agent", agent),
        ];
        // Give the writer thread a tick to account the previous row (budgets).
        std::thread::sleep(Duration::from_millis(50));
        match post(proxy_addr, &path, &headers, body.as_bytes()) {
            Ok((status, h, b)) => {
                let get = |k: &str| {
                    h.iter()
                        .find(|(n, _)| n == k)
                        .map_or("-".to_string(), |(_, v)| v.clone())
                };
                println!(
                    "{:<4} {:<12} {:<10} {:<11} {:<42} {:>6} {:>6} {:>6} {:>16}",
                    i + 1,
                    dept,
                    proj,
                    agent,
                    model,
                    status,
                    get("x-llmops-input-tokens"),
                    get("x-llmops-output-tokens"),
                    get("x-llmops-cost-usd")
                );
                if invoke {
                    println!("     ^ InvokeModel with an Anthropic Messages body (as Claude Code sends it), one-hour cache write");
                }
                if let Some((_, route)) = h.iter().find(|(n, _)| n == "x-llmops-route") {
                    let model = get("x-llmops-model");
                    let region = h
                        .iter()
                        .find(|(n, _)| n == "x-llmops-region")
                        .map_or(String::new(), |(_, r)| format!(" in {r}"));
                    println!("     ^ optimizer: {route} -> answered by {model}{region}");
                }
                if String::from_utf8_lossy(&b).contains("\"code\":\"BudgetExceeded\"") {
                    println!(
                        "     ^ refused by the proxy: BudgetExceeded (retry after {} s)",
                        get("retry-after")
                    );
                }
            }
            Err(e) => println!("{:<4} request failed: {e}", i + 1),
        }
    }
}

/// Reads the rows back from Parquet and prints cost by department and model.
fn print_rows(dir: &std::path::Path) -> i32 {
    let rows = match crate::usage::read::read_dir(dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("demo: cannot read usage files: {e}");
            return 1;
        }
    };
    let files = crate::usage::read::list_files(dir);
    println!(
        "\nUsage rows read back from {} Parquet file(s) under {}:",
        files.len(),
        dir.display()
    );
    let mut by: Totals = BTreeMap::new();
    for r in &rows {
        let e = by
            .entry((r.department.clone().unwrap_or_default(), r.model_effective.clone()))
            .or_default();
        e.0 += 1;
        if r.status >= 400 {
            e.1 += 1;
        }
        e.2 += r.input_tokens.unwrap_or(0);
        e.3 += r.output_tokens.unwrap_or(0);
        e.4 += r.cost_pico_usd.unwrap_or(0);
    }
    println!(
        "\n{:<12} {:<45} {:>8} {:>7} {:>9} {:>9} {:>16}",
        "department", "model (effective)", "requests", "errors", "in tok", "out tok", "cost (USD)"
    );
    let mut total: i128 = 0;
    for ((d, m), (n, err, i, o, c)) in &by {
        total += c;
        println!("{d:<12} {m:<45} {n:>8} {err:>7} {i:>9} {o:>9} {:>16}", format_usd(*c));
    }
    println!(
        "{:<12} {:<45} {:>8} {:>7} {:>9} {:>9} {:>16}",
        "TOTAL",
        "",
        rows.len(),
        "",
        "",
        "",
        format_usd(total)
    );
    print!("{}", crate::report::savings_table(&crate::report::savings(&rows)));
    println!(
        "\nQuery them yourself, e.g.: duckdb -c \"SELECT project, sum(cost_usd) FROM '{}/**/*.parquet' GROUP BY 1\"",
        dir.display()
    );
    0
}
