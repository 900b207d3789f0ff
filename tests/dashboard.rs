//! The live dashboard on the admin listener: the JSON API against hand-summed rows (rows
//! in the Parquet files of an earlier run and rows still in the writer, visible within
//! 2 s), its filters, series and budgets; access (admin listener only, the bearer token,
//! nothing secret in any answer); and the page itself in headless Chromium (installed by
//! `.ci/run`): loaded, filtered, drilled into, its numbers checked against the rows, and
//! screenshots taken.

// A test: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use llmops_proxy::usage::read::read_dir;
use llmops_proxy::usage::record::format_usd;
use llmops_proxy::usage::UsageRecord;

const MODELS: [&str; 2] = ["amazon.nova-lite-v1:0", "anthropic.claude-haiku-4-5-20251001-v1:0"];

fn get(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Resp {
    let mut r = format!("GET {target} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n");
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    raw(addr, r.as_bytes()).expect("response")
}

/// One call per (agent, department, model), each body a different length.
fn traffic(addr: SocketAddr, agents: &[&str], dept: &str) {
    for (i, agent) in agents.iter().enumerate() {
        for (j, model) in MODELS.iter().enumerate() {
            let h = Headers::good().set("X-Agent", agent).set("X-Department", dept).vec();
            let b = body(&format!("question {i} {j} {}", "x".repeat(i * 7 + j * 3)));
            let r = converse(addr, model, &h, &b);
            assert_eq!(r.status, 200, "{}", r.text());
        }
    }
}

fn admin_of(p: &Proc) -> SocketAddr {
    // Logged just after the client listener's line, which `start` waits for.
    assert!(wait_for(Duration::from_secs(5), || p
        .logs()
        .contains("listening_admin addr=")));
    let logs = p.logs();
    let at = logs.find("listening_admin addr=").expect("admin listener") + "listening_admin addr=".len();
    logs[at..].split_whitespace().next().unwrap().parse().unwrap()
}

/// The cost per agent of `rows`, as the API spells it.
fn by_agent(rows: &[UsageRecord], filter: impl Fn(&UsageRecord) -> bool) -> BTreeMap<String, (u64, i128)> {
    let mut m: BTreeMap<String, (u64, i128)> = BTreeMap::new();
    for r in rows.iter().filter(|r| filter(r)) {
        let e = m.entry(r.agent.clone().unwrap_or_else(|| "(none)".into())).or_default();
        e.0 += 1;
        e.1 += r.cost_pico_usd.unwrap_or(0);
    }
    m
}

fn check_groups(json: &str, want: &BTreeMap<String, (u64, i128)>) {
    for (agent, (n, cost)) in want {
        let needle = format!(r#""key":"{agent}","requests":{n},"#);
        let at = json.find(&needle).unwrap_or_else(|| panic!("{needle} in {json}"));
        let cost_field = format!(r#""cost_usd":"{}""#, format_usd(*cost));
        let group = &json[at..json[at..].find('}').map_or(json.len(), |e| at + e)];
        assert!(group.contains(&cost_field), "{agent}: {cost_field} in {group}");
    }
}

#[test]
fn the_api_sums_files_and_live_rows_exactly() {
    let m = mock();
    let dir = temp_dir("dashboard-api");
    let usage = dir.join("usage");
    // An earlier run: its rows are in closed Parquet files when the next one starts.
    let mut first = proxy(m.addr, &usage, &[]);
    traffic(first.addr, &["alpha", "beta"], "eng");
    assert_eq!(first.terminate(), Some(0));
    let budgets = dir.join("budgets.toml");
    std::fs::write(
        &budgets,
        "[[budget]]\nname = \"eng-daily\"\nscope = \"department\"\nvalue = \"eng\"\nperiod = \"day\"\nlimit_usd = \"100\"\naction = \"alert\"\n",
    )
    .unwrap();
    let mut p = Launch::proxy(m.addr, &usage)
        .args(&[
            "--admin-listen",
            "127.0.0.1:0",
            "--budgets",
            &budgets.display().to_string(),
        ])
        .start();
    let admin = admin_of(&p);
    traffic(p.addr, &["alpha", "gamma"], "ops");
    // Visible within 2 s of the response (the rows are still in the writer's open file).
    let last = converse(
        p.addr,
        MODELS[0],
        &Headers::good().set("X-Agent", "late").vec(),
        &body("the last one"),
    );
    assert_eq!(last.status, 200);
    assert!(wait_for(Duration::from_secs(2), || get(
        admin,
        "/api/groups?by=agent",
        &[]
    )
    .text()
    .contains(r#""key":"late""#)));
    let groups = get(admin, "/api/groups?by=agent", &[]).text();
    let eng = get(admin, "/api/groups?by=agent&department=eng", &[]).text();
    let model = get(admin, "/api/groups?by=model&agent=alpha", &[]).text();
    let series = get(admin, "/api/series?bucket=hour&stack=department", &[]).text();
    let dims = get(admin, "/api/dimensions", &[]).text();
    let summary = get(admin, "/api/summary", &[]).text();
    let budgets_json = get(admin, "/api/budgets", &[]).text();
    let bad = get(admin, "/api/groups?by=colour", &[]);
    let page = get(admin, "/dashboard", &[]);
    let on_client = get(p.addr, "/dashboard", &[]);
    let api_on_client = get(p.addr, "/api/summary", &[]);
    assert_eq!(p.terminate(), Some(0));

    let rows = read_dir(&usage).unwrap();
    assert_eq!(rows.len(), 9);
    check_groups(&groups, &by_agent(&rows, |_| true));
    check_groups(&eng, &by_agent(&rows, |r| r.department.as_deref() == Some("eng")));
    assert!(!eng.contains(r#""key":"gamma""#), "{eng}");
    let alpha_models: i128 = rows
        .iter()
        .filter(|r| r.agent.as_deref() == Some("alpha"))
        .filter_map(|r| r.cost_pico_usd)
        .sum();
    assert!(model.contains(r#""total":{"requests":4,"#), "{model}");
    assert!(
        model.contains(&format!(r#""cost_usd":"{}""#, format_usd(alpha_models))),
        "{model}"
    );
    // The series' buckets sum to the total, exactly.
    let total: i128 = rows.iter().filter_map(|r| r.cost_pico_usd).sum();
    assert!(
        summary.contains(&format!(r#""cost_usd":"{}""#, format_usd(total))),
        "{summary}"
    );
    assert!(summary.contains(r#""requests":9,"#), "{summary}");
    let per_dept = |d: &str| -> i128 {
        rows.iter()
            .filter(|r| r.department.as_deref() == Some(d))
            .filter_map(|r| r.cost_pico_usd)
            .sum()
    };
    for d in ["eng", "ops"] {
        assert!(series.contains(&format!(r#"{{"key":"{d}","#)), "{series}");
        assert!(
            series.contains(&format_usd(per_dept(d))) || per_dept(d) == 0,
            "{d}: {series}"
        );
    }
    assert!(dims.contains(r#""agent":["alpha","beta","gamma","late"]"#), "{dims}");
    assert!(
        budgets_json.contains(r#""budget":"eng-daily","value":"eng""#),
        "{budgets_json}"
    );
    assert_eq!(bad.status, 400);
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .contains("default-src 'none'"));
    // Self-contained: nothing loaded from elsewhere.
    let html = page.text();
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http") && !html.contains("@import"));
    assert_eq!(
        (on_client.status, api_on_client.status),
        (404, 404),
        "admin listener only"
    );
    // Tenants by fingerprint, never a token or a secret.
    for answer in [&groups, &summary, &dims, &series, &budgets_json] {
        for secret in [TRACKING_KEY, SECRET, AKID, PROMPT] {
            assert!(!answer.contains(secret), "an answer holds {secret}");
        }
    }
    assert!(dims.contains("\"tenant\":[\"trk:"), "{dims}");
}

#[test]
fn the_api_needs_the_admin_token_when_one_is_set() {
    let m = mock();
    let dir = temp_dir("dashboard-token");
    let token_file = dir.join("token");
    std::fs::write(&token_file, "dashboard-token-0123456789abcdef\n").unwrap();
    let p = Launch::proxy(m.addr, &dir.join("usage"))
        .args(&[
            "--admin-listen",
            "127.0.0.1:0",
            "--admin-token-file",
            &token_file.display().to_string(),
        ])
        .start();
    let admin = admin_of(&p);
    assert_eq!(get(admin, "/api/summary", &[]).status, 401);
    let ok = get(
        admin,
        "/api/summary",
        &[("Authorization", "Bearer dashboard-token-0123456789abcdef")],
    );
    assert_eq!(ok.status, 200, "{}", ok.text());
    // The page holds no data: it is served, and reads the token from its URL fragment.
    let page = get(admin, "/dashboard", &[]);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Bearer "));
}

/// Chromium and playwright-core, as `.ci/run` installs them.
fn browser() -> Option<(String, String)> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/clients/node_modules");
    let ok = Path::new(&chromium).exists() && modules.join("playwright-core").exists();
    if !ok {
        if std::env::var("LLMOPS_REQUIRE_CLIENTS").is_ok() {
            panic!("Chromium ({chromium}) and playwright-core (target/clients) are required (LLMOPS_REQUIRE_CLIENTS)");
        }
        eprintln!("skipping: Chromium or playwright-core is not installed");
        return None;
    }
    Some((chromium, modules.display().to_string()))
}

#[test]
fn the_page_renders_the_rows_in_a_real_browser() {
    let Some((chromium, modules)) = browser() else { return };
    let m = mock();
    let dir = temp_dir("dashboard-page");
    let usage = dir.join("usage");
    let mut p = Launch::proxy(m.addr, &usage)
        .args(&["--admin-listen", "127.0.0.1:0"])
        .start();
    let admin = admin_of(&p);
    traffic(p.addr, &["alpha", "beta"], "eng");
    traffic(p.addr, &["gamma"], "ops");
    assert!(wait_for(Duration::from_secs(2), || get(admin, "/api/summary", &[])
        .text()
        .contains(r#""requests":6,"#)));
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard-shots");
    std::fs::create_dir_all(&shots).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/dashboard.js");
    let out = Command::new("timeout")
        .arg("120")
        .arg("node")
        .arg(&script)
        .args([
            &format!("http://{admin}/dashboard"),
            "alpha",
            MODELS[0],
            &shots.display().to_string(),
        ])
        .env("NODE_PATH", &modules)
        .env("CHROMIUM", &chromium)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the browser script failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(p.terminate(), Some(0));
    let rows = read_dir(&usage).unwrap();
    let total: i128 = rows.iter().filter_map(|r| r.cost_pico_usd).sum();
    let alpha: i128 = rows
        .iter()
        .filter(|r| r.agent.as_deref() == Some("alpha"))
        .filter_map(|r| r.cost_pico_usd)
        .sum();
    let split = |key: &str| -> &str {
        let at = stdout
            .find(&format!("\"{key}\":{{"))
            .unwrap_or_else(|| panic!("{key} in {stdout}"));
        &stdout[at..]
    };
    // The spend shown, exact in its title, is the rows' sum; filtered to one agent, that
    // agent's.
    let all = split("all");
    assert!(
        all.starts_with(&format!(
            r#""all":{{"cost":"{}","cost_title":"${}""#,
            format_usd(total),
            format_usd(total)
        )),
        "{all}"
    );
    let filtered = split("filtered");
    assert!(
        filtered.starts_with(&format!(r#""filtered":{{"cost":"{}""#, format_usd(alpha))),
        "{filtered}"
    );
    assert!(filtered.contains(r#""requests":"2""#), "{filtered}");
    // Every view is on the page at once.
    assert!(stdout.contains(r#""sections":["Agent Explorer","Department Breakdown","Team Analysis","Budgets","Model Comparison","Time Series","Optimizer savings"]"#), "{stdout}");
    // Drill-downs: the agent's models and project, the model's agents.
    assert!(
        stdout.contains(&format!(
            r#""agent_drill":["us.{}","{}","(none)"]"#,
            MODELS[1], MODELS[0]
        )),
        "{stdout}"
    );
    let drill = &stdout[stdout.find(r#""model_drill":["#).unwrap()..];
    let drill = &drill[..drill.find(']').unwrap()];
    for a in ["\"alpha\"", "\"beta\"", "\"gamma\""] {
        assert!(drill.contains(a), "{a} in {drill}");
    }
    // Charts are drawn; the phone layout does not scroll sideways; nothing but the admin
    // origin was asked for.
    assert!(
        !stdout.contains(r#""series_rects":0"#) && !stdout.contains(r#""department_bars":0"#),
        "{stdout}"
    );
    assert!(stdout.contains(r#""phone_overflow":0"#), "{stdout}");
    assert!(stdout.contains(r#""external":0"#), "{stdout}");
    let requests = &stdout[stdout.find("\"requests\":[").unwrap()..];
    for url in requests.split('"').filter(|s| s.starts_with("http")) {
        assert!(url.starts_with(&format!("http://{admin}/")), "{url}");
    }
    for shot in ["dashboard.png", "dashboard-drill.png", "dashboard-phone.png"] {
        assert!(std::fs::metadata(shots.join(shot)).unwrap().len() > 10_000, "{shot}");
    }
}

#[test]
fn the_admin_listener_can_be_exposed_over_mutual_tls() {
    use std::io::{Read, Write};
    let m = mock();
    let dir = temp_dir("dashboard-mtls");
    let (ca, chain, key) = make_pki(&dir, "admin");
    let (client_ca, client_cert, client_key) = make_client_pki(&dir, "operator");
    let usage = dir.join("usage").display().to_string();
    let s = |p: &Path| p.display().to_string();
    // Beyond loopback without a token or client certificates: refused at start-up.
    let out = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--usage-dir",
            &usage,
            "--admin-listen",
            "0.0.0.0:0",
        ])
        .args(["--admin-tls-cert", &s(&chain), "--admin-tls-key", &s(&key)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--admin-client-ca"));
    let p = Launch::proxy(m.addr, &dir.join("usage"))
        .args(&["--admin-listen", "0.0.0.0:0"])
        .args(&["--admin-tls-cert", &s(&chain), "--admin-tls-key", &s(&key)])
        .args(&["--admin-client-ca", &s(&client_ca)])
        .start();
    let admin = SocketAddr::from(([127, 0, 0, 1], admin_of(&p).port()));
    let fetch = |client: Option<(&Path, &Path)>| -> Option<String> {
        let mut t = tls_connect(admin, tls_client_config(&ca, client));
        t.write_all(b"GET /api/summary HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut out = Vec::new();
        // The end may come without a close_notify: what was read is the answer.
        let _ = t.read_to_end(&mut out);
        (!out.is_empty()).then(|| String::from_utf8_lossy(&out).into_owned())
    };
    // An operator's certificate: the API answers over TLS.
    let ok = fetch(Some((&client_cert, &client_key))).expect("an answer");
    assert!(ok.starts_with("HTTP/1.1 200") && ok.contains(r#""requests":0"#), "{ok}");
    // No certificate: no handshake, no data.
    assert!(fetch(None).is_none_or(|t| !t.contains("HTTP/1.1 200")));
    // Plain HTTP to the TLS listener gets nothing either.
    assert!(raw(admin, b"GET /api/summary HTTP/1.1\r\nHost: a\r\n\r\n").is_none_or(|r| r.status != 200));
}

#[test]
fn demo_serve_keeps_the_dashboard_up_until_ctrl_c() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(BIN)
        .args(["demo", "--serve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut url = None;
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 {
        if let Some(rest) = line.trim().strip_prefix("dashboard: ") {
            url = rest.split_whitespace().next().map(str::to_string);
            break;
        }
        line.clear();
    }
    let url = url.expect("the demo prints the dashboard's URL");
    let addr: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches("/dashboard")
        .parse()
        .unwrap();
    assert_eq!(get(addr, "/dashboard", &[]).status, 200);
    // The demo's traffic is on it (16 requests), while the proxy stays up.
    assert!(wait_for(Duration::from_secs(5), || get(addr, "/api/summary", &[])
        .text()
        .contains(r#""requests":16,"#)));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(get(addr, "/api/groups?by=route", &[]).status, 200, "still up");
    // Ctrl-C: the proxy stops, and the demo prints its tables.
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    assert!(rest.contains("TOTAL") && rest.contains("savings: $"), "{rest}");
}
