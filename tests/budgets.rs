//! Budgets: a `block` budget refuses the request after the one that crossed the limit
//! (not before) with 429 `BudgetExceeded` and `Retry-After`, never reaching the upstream
//! and recorded as a row; `"*"` budgets keep values apart; `alert` never blocks; a
//! restart keeps the spend; SIGHUP raising the limit unblocks; two proxies sharing one
//! Redis enforce one limit together; killing Redis neither stops traffic nor loses rows.

// A test: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use llmops_proxy::mock::mock_usage;
use llmops_proxy::usage::read::read_dir;

/// The body every request sends, and its exact cost on amazon.nova-lite-v1:0 ($0.06/$0.24 per 1M).
fn fixed_body() -> Vec<u8> {
    body("budget probe")
}

fn cost_pico() -> i128 {
    let (i, o, _) = mock_usage(fixed_body().len());
    i as i128 * 60_000 + o as i128 * 240_000
}

/// A decimal USD string for `n` times the per-request cost, plus `extra_pico`.
fn usd(n: i128, extra_pico: i128) -> String {
    let p = cost_pico() * n + extra_pico;
    // At most 6 decimals are allowed in the file: round up to whole micro-USD.
    let micro = (p + 999_999) / 1_000_000;
    format!("{}.{:06}", micro / 1_000_000, micro % 1_000_000)
}

fn write_budgets(path: &Path, entries: &[(&str, &str, &str, String, &str)]) {
    let mut t = String::new();
    for (name, scope, value, limit, action) in entries {
        t.push_str(&format!(
            "[[budget]]\nname = \"{name}\"\nscope = \"{scope}\"\nvalue = \"{value}\"\nperiod = \"day\"\nlimit_usd = \"{limit}\"\naction = \"{action}\"\n\n"
        ));
    }
    std::fs::write(path, t).unwrap();
}

fn call(addr: std::net::SocketAddr, agent: &str, project: &str) -> Resp {
    let h = Headers::good().set("X-Agent", agent).set("X-Project", project).vec();
    converse(addr, "amazon.nova-lite-v1:0", &h, &fixed_body())
}

fn metric(addr: std::net::SocketAddr, series: &str) -> Option<f64> {
    Metrics::scrape(addr).get(series)
}

/// Waits until the proxy's writer has accounted `rows` usage rows (read from the
/// journals: budgets see them before their Parquet file closes).
fn settle(addr: std::net::SocketAddr, rows: u64) {
    assert!(
        wait_for(Duration::from_secs(5), || metric(addr, "llmops_usage_rows_read_total")
            == Some(rows as f64)),
        "writer did not reach {rows} rows"
    );
    std::thread::sleep(Duration::from_millis(60));
}

#[test]
fn block_alert_per_value_restart_and_reload() {
    let m = mock();
    let dir = temp_dir("budgets");
    let file = dir.join("budgets.toml");
    // Crossed by the 3rd request of agent "bot" (2.5 × cost), per project "*" at 1.5 × cost.
    write_budgets(
        &file,
        &[
            ("bot-daily", "agent", "bot", usd(2, cost_pico() / 2), "block"),
            ("per-project", "project", "*", usd(1, cost_pico() / 2), "block"),
            ("watch", "agent", "*", usd(0, 1), "alert"),
        ],
    );
    let usage = dir.join("usage");
    let budgets = file.to_str().unwrap().to_string();
    let mut p = proxy(m.addr, &usage, &["--budgets", &budgets]);
    let a = p.addr;

    // Agent bot over three projects: requests 1..3 pass, the 4th is refused.
    for (i, proj) in ["p1", "p2", "p3"].iter().enumerate() {
        assert_eq!(
            call(a, "bot", proj).status,
            200,
            "request {} before the crossing passes",
            i + 1
        );
        settle(a, i as u64 + 1);
    }
    let r = call(a, "bot", "p4");
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.code().as_deref(), Some("BudgetExceeded"));
    assert!(
        r.text().contains("bot-daily") && r.text().contains("resets at"),
        "{}",
        r.text()
    );
    let retry: i64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 86_400);
    let ok_before = stat(&mock_stats(m.addr), "ok");
    assert_eq!(ok_before, 3, "the refused request never reached the upstream");

    // Per-project "*": p1 has one request (cost < 1.5 × cost): another passes and crosses;
    // then p1 is refused while p5 still passes.
    assert_eq!(call(a, "alice", "p1").status, 200);
    settle(a, 5);
    assert_eq!(call(a, "alice", "p1").status, 429);
    assert_eq!(call(a, "alice", "p5").status, 200);
    settle(a, 7);
    // The alert budget never blocked anyone but logged its thresholds.
    // Log lines reach stderr through the logger thread: the line may trail the rows.
    assert!(
        wait_for(Duration::from_secs(10), || p
            .logs()
            .contains("budget_threshold budget=watch")),
        "{}",
        p.logs()
    );
    assert_eq!(
        metric(a, "llmops_budget_blocked_requests_total{budget=\"bot-daily\"}"),
        Some(1.0)
    );
    assert!(metric(a, "llmops_budget_spend_usd{budget=\"bot-daily\",value=\"bot\"}").is_some());

    // Restart: the spend is rebuilt from the Parquet files.
    assert_eq!(p.terminate(), Some(0));
    let rows = read_dir(&usage).unwrap();
    assert_eq!(rows.len(), 7);
    assert_eq!(
        rows.iter()
            .filter(|r| r.error_type.as_deref() == Some("BudgetExceeded"))
            .count(),
        2
    );
    let mut p = proxy(m.addr, &usage, &["--budgets", &budgets]);
    assert!(p.logs().contains("rows_rebuilt=7"), "{}", p.logs());
    assert_eq!(call(p.addr, "bot", "p9").status, 429, "still blocked after a restart");

    // SIGHUP raising the limit unblocks.
    write_budgets(
        &file,
        &[
            ("bot-daily", "agent", "bot", usd(10, 0), "block"),
            ("per-project", "project", "*", usd(1, cost_pico() / 2), "block"),
        ],
    );
    p.signal(1);
    assert!(wait_for(Duration::from_secs(5), || p
        .logs()
        .contains("budgets_reloaded")));
    assert!(wait_for(Duration::from_secs(2), || call(p.addr, "bot", "p9").status == 200));
    // A malformed file is rejected and names budget and field.
    std::fs::write(&file, "[[budget]]\nname = \"x\"\nscope = \"galaxy\"\nvalue = \"*\"\nperiod = \"day\"\nlimit_usd = \"1\"\naction = \"block\"\n").unwrap();
    p.signal(1);
    assert!(wait_for(Duration::from_secs(5), || p
        .logs()
        .contains("reload_rejected")));
    assert!(p.logs().contains("budget `x`, field `scope`"), "{}", p.logs());
    assert_eq!(p.terminate(), Some(0));
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--budgets", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--budgets"));
}

struct Redis(Child, u16);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis() -> Option<Redis> {
    redis_with(&[])
}

/// A redis-server on a free port with `extra` arguments (`--port` replaced by
/// `--tls-port` when `extra` asks for TLS).
fn redis_with(extra: &[&str]) -> Option<Redis> {
    let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let tls = extra.iter().any(|a| a.starts_with("--tls"));
    let p = port.to_string();
    let mut args: Vec<&str> = if tls {
        vec!["--port", "0", "--tls-port", &p]
    } else {
        vec!["--port", &p]
    };
    args.extend(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
    args.extend(extra);
    let child = Command::new("redis-server")
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let r = Redis(child, port);
    wait_for(Duration::from_secs(5), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .then_some(r)
}

#[test]
fn two_proxies_share_one_limit_through_redis_and_survive_its_loss() {
    let Some(mut rd) = redis() else {
        if std::env::var("LLMOPS_REQUIRE_REDIS").is_ok() {
            panic!("redis-server is required");
        }
        eprintln!("skipping: redis-server not available");
        return;
    };
    let m = mock();
    let dir = temp_dir("fleet");
    let file = dir.join("budgets.toml");
    write_budgets(
        &file,
        &[("fleet-bot", "agent", "bot", usd(2, cost_pico() / 2), "block")],
    );
    let store = format!("redis://127.0.0.1:{}", rd.1);
    let flags = ["--budgets", file.to_str().unwrap(), "--budget-store", &store];
    let (u1, u2) = (dir.join("u1"), dir.join("u2"));
    let mut p1 = proxy(m.addr, &u1, &flags);
    let mut p2 = proxy(m.addr, &u2, &flags);
    // Every answered call is a row: count them all.
    let calls = std::cell::Cell::new(0usize);
    let call = |addr, agent: &str, project: &str| {
        calls.set(calls.get() + 1);
        call(addr, agent, project)
    };
    // Two requests through p1, one through p2: the fleet has crossed 2.5 × cost.
    assert_eq!(call(p1.addr, "bot", "x").status, 200);
    assert_eq!(call(p1.addr, "bot", "x").status, 200);
    assert_eq!(call(p2.addr, "bot", "x").status, 200);
    // Neither alone has crossed; together they have: both refuse within a few store ticks.
    assert!(
        wait_for(Duration::from_secs(5), || call(p1.addr, "bot", "x").status == 429),
        "p1 never blocked"
    );
    assert!(
        wait_for(Duration::from_secs(5), || call(p2.addr, "bot", "x").status == 429),
        "p2 never blocked"
    );
    assert_eq!(metric(p1.addr, "llmops_budget_store_up"), Some(1.0));

    // Kill Redis: traffic for other agents goes on, rows are all written.
    let _ = rd.0.kill();
    let _ = rd.0.wait();
    for i in 0..10 {
        let r = call(if i % 2 == 0 { p1.addr } else { p2.addr }, "other", "y");
        assert_eq!(r.status, 200);
    }
    assert!(wait_for(Duration::from_secs(5), || metric(
        p1.addr,
        "llmops_budget_store_up"
    ) == Some(0.0)));
    assert!(
        wait_for(Duration::from_secs(10), || p1.logs().contains("budget_store_down")),
        "{}",
        p1.logs()
    );
    assert_eq!(p1.terminate(), Some(0));
    assert_eq!(p2.terminate(), Some(0));
    let rows = read_dir(&u1).unwrap().len() + read_dir(&u2).unwrap().len();
    assert_eq!(rows, calls.get(), "one row per answered request, Redis down or not");
}

#[test]
fn unpriced_models_and_tag_case_cannot_dodge_a_block_budget() {
    let m = mock();
    let dir = temp_dir("budget-escapes");
    let file = dir.join("budgets.toml");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        &file,
        format!(
            "[[budget]]\nname = \"eng-daily\"\nscope = \"department\"\nvalue = \"Eng\"\nperiod = \"day\"\nlimit_usd = \"{}\"\naction = \"block\"\n\n\
             [[budget]]\nname = \"lab-daily\"\nscope = \"department\"\nvalue = \"lab\"\nperiod = \"day\"\nlimit_usd = \"1.00\"\naction = \"block\"\nallow_unpriced = true\n",
            usd(1, cost_pico() / 2)
        ),
    )
    .unwrap();
    let mut p = proxy(m.addr, &dir, &["--budgets", file.to_str().unwrap()]);
    let dept = |d: &str| Headers::good().set("X-Department", d).vec();
    let upstream = || stat(&mock_stats(m.addr), "ok");
    // No price: an unknown model id and an application inference profile ARN.
    let arn = "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fabc123";
    for model in ["acme.unknown-model-v1:0", arn] {
        let before = upstream();
        let r = converse(p.addr, model, &dept("eng"), &fixed_body());
        assert_eq!(r.status, 403, "{model}: {}", r.text());
        assert_eq!(r.code().as_deref(), Some("BudgetUnpriced"), "{}", r.text());
        assert!(
            r.text().contains("eng-daily") && r.text().contains("allow_unpriced"),
            "{}",
            r.text()
        );
        assert_eq!(upstream(), before, "{model} reached the upstream");
        // Under a budget that allows it, and under none, the same call goes through.
        for h in [dept("lab"), good_headers()] {
            let r = converse(p.addr, model, &h, &fixed_body());
            assert_eq!(r.status, 200, "{model}: {}", r.text());
        }
    }
    // Tag case and spaces: `ENG` and ` eng ` count under `Eng`, and are refused with it.
    assert_eq!(
        converse(p.addr, "amazon.nova-lite-v1:0", &dept("ENG"), &fixed_body()).status,
        200
    );
    assert_eq!(
        converse(p.addr, "amazon.nova-lite-v1:0", &dept(" eng "), &fixed_body()).status,
        200
    );
    settle(p.addr, 8);
    for d in ["eng", "ENG", "eNg"] {
        let r = converse(p.addr, "amazon.nova-lite-v1:0", &dept(d), &fixed_body());
        assert_eq!(r.status, 429, "{d}: {}", r.text());
    }
    assert_eq!(p.terminate(), Some(0), "{}", p.logs());
    let rows = read_dir(&dir).unwrap();
    let refused: Vec<_> = rows.iter().filter(|r| r.status == 403).collect();
    assert_eq!(refused.len(), 2);
    assert!(
        refused.iter().all(|r| r.error_type.as_deref() == Some("BudgetUnpriced")
            && r.error_message.as_deref().is_some_and(|m| m.contains("eng-daily"))),
        "{:?}",
        refused
            .iter()
            .map(|r| (&r.blocked_by, &r.error_type, &r.model_requested))
            .collect::<Vec<_>>()
    );
    let unpriced_served = rows
        .iter()
        .filter(|r| r.status == 200 && r.cost_pico_usd.is_none())
        .count();
    assert_eq!(unpriced_served, 4, "served unpriced calls are recorded without a cost");
}

fn need_redis(r: Option<Redis>) -> Option<Redis> {
    if r.is_none() && std::env::var("LLMOPS_REQUIRE_REDIS").is_ok() {
        panic!("redis-server is required");
    }
    if r.is_none() {
        eprintln!("skipping: redis-server not available");
    }
    r
}

/// One RESP command to a plain Redis at `port` (after `AUTH` with `auth`); the raw reply.
fn resp(port: u16, auth: Option<&str>, cmd: &[&str]) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let enc = |args: &[&str]| {
        let mut o = format!("*{}\r\n", args.len());
        for a in args {
            o.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        o
    };
    let mut out = String::new();
    if let Some(pw) = auth {
        out.push_str(&enc(&["AUTH", pw]));
    }
    out.push_str(&enc(cmd));
    s.write_all(out.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut b = vec![0u8; 65536];
    let n = s.read(&mut b).unwrap_or(0);
    String::from_utf8_lossy(&b[..n]).into_owned()
}

/// The fleet total (micro-USD) Redis holds for `budget`/`value` today: the sum of the
/// instances' fields.
fn fleet_micro(port: u16, budget: &str, value: &str) -> i128 {
    let day = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400;
    let r = resp(port, None, &["HVALS", &format!("llmops:spend:{budget}:{value}:{day}")]);
    r.lines()
        .filter(|l| !l.starts_with('*') && !l.starts_with('$'))
        .filter_map(|l| l.trim().parse::<i128>().ok())
        .sum()
}

#[test]
fn lost_store_replies_never_count_spend_twice() {
    let Some(rd) = need_redis(redis()) else { return };
    // A relay to Redis that passes every command on but drops the replies of its first
    // two connections: Redis applies the write, the proxy times out and tries again.
    let relay = TcpListener::bind("127.0.0.1:0").unwrap();
    let relay_port = relay.local_addr().unwrap().port();
    let redis_port = rd.1;
    std::thread::spawn(move || {
        for (n, c) in relay.incoming().enumerate() {
            let Ok(client) = c else { continue };
            let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", redis_port)) else {
                continue;
            };
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_in, &mut s_out);
            });
            let (mut s_in, mut c_out) = (server, client);
            std::thread::spawn(move || {
                if n < 2 {
                    let _ = std::io::copy(&mut s_in, &mut std::io::sink());
                } else {
                    let _ = std::io::copy(&mut s_in, &mut c_out);
                }
            });
        }
    });
    let m = mock();
    let dir = temp_dir("store-lost-replies");
    let file = dir.join("budgets.toml");
    write_budgets(&file, &[("bot-daily", "agent", "bot", usd(1000, 0), "block")]);
    let store = format!("redis://127.0.0.1:{relay_port}");
    let p = proxy(
        m.addr,
        &dir.join("u"),
        &["--budgets", file.to_str().unwrap(), "--budget-store", &store],
    );
    for _ in 0..5 {
        assert_eq!(call(p.addr, "bot", "x").status, 200);
    }
    // Two syncs time out (their writes applied, their replies dropped), then one goes
    // through and the next ones too.
    let errors = || metric(p.addr, "llmops_budget_store_errors_total").unwrap_or(0.0);
    assert!(wait_for(Duration::from_secs(10), || errors() >= 2.0), "{}", p.logs());
    assert!(
        wait_for(Duration::from_secs(10), || metric(p.addr, "llmops_budget_store_up")
            == Some(1.0)),
        "the store never came up through the relay"
    );
    std::thread::sleep(Duration::from_millis(1200));
    let want = 5 * cost_pico() / 1_000_000;
    assert!(want > 0);
    assert_eq!(
        fleet_micro(rd.1, "bot-daily", "bot"),
        want,
        "spend counted more than once"
    );
    assert_eq!(errors(), 2.0, "{}", p.logs());
    // Redis loses its data: the totals are written again within a rewrite period.
    assert!(resp(rd.1, None, &["FLUSHALL"]).contains("OK"));
    assert!(
        wait_for(Duration::from_secs(15), || fleet_micro(rd.1, "bot-daily", "bot")
            == want),
        "the spend never came back after FLUSHALL"
    );
}

#[test]
fn the_store_authenticates_speaks_tls_and_survives_a_hostile_server() {
    let m = mock();
    let dir = temp_dir("store-auth-tls");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("budgets.toml");
    write_budgets(&file, &[("bot-daily", "agent", "bot", usd(1000, 0), "block")]);
    let budgets = file.to_str().unwrap().to_string();
    let up = |p: &Proc| {
        wait_for(Duration::from_secs(8), || {
            metric(p.addr, "llmops_budget_store_up") == Some(1.0)
        })
    };

    // AUTH: the default user's password from a file; an ACL user's from the environment.
    let pass = "store-pass-4f9d2a";
    let Some(rd) = need_redis(redis_with(&[
        "--requirepass",
        pass,
        "--user",
        "alice",
        "on",
        ">alice-pass-77",
        "~*",
        "+@all",
    ])) else {
        return;
    };
    let pw_file = dir.join("store.pass");
    std::fs::write(&pw_file, format!("{pass}\n")).unwrap();
    let store = format!("redis://127.0.0.1:{}", rd.1);
    let p = proxy(
        m.addr,
        &dir.join("u1"),
        &[
            "--budgets",
            &budgets,
            "--budget-store",
            &store,
            "--budget-store-password-file",
            pw_file.to_str().unwrap(),
        ],
    );
    assert_eq!(call(p.addr, "bot", "x").status, 200);
    assert!(up(&p), "{}", p.logs());
    let alice = Launch::proxy(m.addr, &dir.join("u2"))
        .args(&[
            "--budgets",
            &budgets,
            "--budget-store",
            &format!("redis://alice@127.0.0.1:{}", rd.1),
        ])
        .env("LLMOPS_BUDGET_STORE_PASSWORD", "alice-pass-77")
        .start();
    assert_eq!(call(alice.addr, "bot", "x").status, 200);
    assert!(up(&alice), "{}", alice.logs());
    // Without the password: down, and said so, the password never in a log.
    let none = proxy(
        m.addr,
        &dir.join("u3"),
        &["--budgets", &budgets, "--budget-store", &store],
    );
    assert_eq!(call(none.addr, "bot", "x").status, 200);
    assert!(wait_for(Duration::from_secs(5), || none
        .logs()
        .contains("budget_store_down")));
    assert_eq!(metric(none.addr, "llmops_budget_store_up"), Some(0.0));
    for l in [p.logs(), alice.logs(), none.logs()] {
        assert!(!l.contains(pass) && !l.contains("alice-pass-77"), "{l}");
    }
    let counted = resp(rd.1, Some(pass), &["HVALS", "x"]);
    assert!(!counted.contains("NOAUTH"), "{counted}");

    // rediss://: TLS verified against --upstream-ca.
    let (ca, chain, key) = make_pki(&dir, "redis-tls");
    let (c, k, a) = (chain.to_str().unwrap(), key.to_str().unwrap(), ca.to_str().unwrap());
    if let Some(rt) = need_redis(redis_with(&[
        "--tls-cert-file",
        c,
        "--tls-key-file",
        k,
        "--tls-ca-cert-file",
        a,
        "--tls-auth-clients",
        "no",
    ])) {
        let p = proxy(
            m.addr,
            &dir.join("u4"),
            &[
                "--budgets",
                &budgets,
                "--budget-store",
                &format!("rediss://127.0.0.1:{}", rt.1),
                "--upstream-ca",
                a,
            ],
        );
        assert_eq!(call(p.addr, "bot", "x").status, 200);
        assert!(up(&p), "TLS store never came up: {}", p.logs());
    }

    // A hostile server: replies nested 100,000 deep, or one endless bulk string.
    for reply in ["*1\r\n".repeat(100_000), format!("${}\r\n", 1u64 << 40)] {
        let hostile = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = hostile.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for c in hostile.incoming() {
                let Ok(mut c) = c else { continue };
                let reply = reply.clone();
                std::thread::spawn(move || {
                    use std::io::{Read, Write};
                    let mut b = [0u8; 4096];
                    while c.read(&mut b).is_ok_and(|n| n > 0) {
                        if c.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        let p = proxy(
            m.addr,
            &dir.join(format!("h{port}")),
            &[
                "--budgets",
                &budgets,
                "--budget-store",
                &format!("redis://127.0.0.1:{port}"),
            ],
        );
        assert_eq!(call(p.addr, "bot", "x").status, 200);
        assert!(
            wait_for(Duration::from_secs(5), || p.logs().contains("budget_store_down")),
            "{}",
            p.logs()
        );
        assert_eq!(call(p.addr, "bot", "x").status, 200, "{}", p.logs());
        assert!(
            !p.logs().contains("panicked") && !p.logs().contains("overflow"),
            "{}",
            p.logs()
        );
    }
}
