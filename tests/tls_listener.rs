//! HTTPS for clients: the TLS listener serves curl, Python `requests` and Node `fetch`
//! with a test CA; mutual TLS refuses a client without a certificate and attributes one
//! with a certificate (`mtls:<CN>`); SIGHUP swaps the certificate for new handshakes while
//! an open keep-alive connection keeps working; resumed handshakes are counted;
//! plaintext on the TLS port is a handshake failure, not a crash.

// A test: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use common::*;
use llmops_proxy::usage::read::read_dir;

fn curl_args(h: &[(String, String)]) -> Vec<String> {
    let mut a = Vec::new();
    for (k, v) in h {
        a.push("-H".into());
        a.push(format!("{k}: {v}"));
    }
    a
}

fn metric(
    addr: std::net::SocketAddr,
    ca: &std::path::Path,
    client: Option<(&std::path::Path, &std::path::Path)>,
    name: &str,
) -> f64 {
    let mut s = tls_connect(addr, tls_client_config(ca, client));
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: p\r\n\r\n").unwrap();
    let r = read_response(&mut s, &mut Vec::new()).unwrap();
    Metrics::parse(&r.text()).get(name).unwrap_or(-1.0)
}

#[test]
fn tls_clients_curl_python_node() {
    let m = mock();
    let dir = temp_dir("tls-listener");
    let (ca, chain, key) = make_pki(&dir, "proxy");
    let p = proxy_tls(m.addr, &dir, &chain, &key, &[]);
    let url = format!(
        "https://127.0.0.1:{}/bedrock/model/amazon.nova-lite-v1:0/converse",
        p.addr.port()
    );
    let b = String::from_utf8(body("over https")).unwrap();
    let digest = sha256_hex(b.as_bytes());

    // curl --cacert
    let mut args = vec![
        "-sS".to_string(),
        "--cacert".into(),
        ca.display().to_string(),
        "-X".into(),
        "POST".into(),
        url.clone(),
    ];
    args.extend(curl_args(&good_headers()));
    args.extend([
        "-H".into(),
        "Content-Type: application/json".into(),
        "--data-binary".into(),
        b.clone(),
        "-w".into(),
        "\n%{http_code} %{http_version}".into(),
    ]);
    let out = Command::new("curl").args(&args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.ends_with("200 1.1"),
        "curl: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(&digest));

    // Python requests, verify= the test CA.
    let headers: String = good_headers().iter().map(|(k, v)| format!("'{k}': '{v}', ")).collect();
    let py = format!(
        "import requests\nr = requests.post('{url}', data={b:?}, headers={{{headers}'Content-Type': 'application/json'}}, verify='{}')\nprint(r.status_code, r.headers.get('x-llmops-input-tokens'), r.text)",
        ca.display()
    );
    let out = Command::new("python3").arg("-c").arg(&py).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("200 "),
        "python: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(&digest));

    // Node fetch with NODE_EXTRA_CA_CERTS.
    let headers: String = good_headers().iter().map(|(k, v)| format!("'{k}': '{v}', ")).collect();
    let js = format!(
        "fetch('{url}', {{method: 'POST', body: {b:?}, headers: {{{headers}'Content-Type': 'application/json'}}}}).then(async r => console.log(r.status, await r.text())).catch(e => {{ console.error(e); process.exit(1); }});"
    );
    let out = Command::new("node")
        .arg("-e")
        .arg(&js)
        .env("NODE_EXTRA_CA_CERTS", &ca)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("200 "),
        "node: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(&digest));

    // Plaintext HTTP sent to the TLS port: a handshake failure, and the proxy keeps serving.
    let r = raw(p.addr, b"GET /healthz HTTP/1.1\r\nHost: p\r\n\r\n");
    assert!(r.is_none() || r.unwrap().status != 200);
    assert!(
        metric(
            p.addr,
            &ca,
            None,
            "llmops_tls_handshake_failures_total{reason=\"not_tls\"}"
        ) >= 1.0
    );

    // Resumption: a second connection with the same client config resumes.
    let cfg = tls_client_config(&ca, None);
    for _ in 0..3 {
        let mut s = tls_connect(p.addr, cfg.clone());
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: p\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut s, &mut Vec::new()).unwrap().status, 200);
    }
    assert!(metric(p.addr, &ca, None, "llmops_tls_handshakes_total{kind=\"resumed\"}") >= 1.0);
    assert!(metric(p.addr, &ca, None, "llmops_tls_certificate_not_after_seconds") > 1.7e9);

    let logs = p.logs();
    for secret in [SECRET, TRACKING_KEY, "over https"] {
        assert!(!logs.contains(secret), "log holds {secret}");
    }
}

#[test]
fn mutual_tls_refuses_and_attributes() {
    let m = mock();
    let dir = temp_dir("mtls");
    let (ca, chain, key) = make_pki(&dir, "proxy");
    let (client_ca, client_cert, client_key) = make_client_pki(&dir, "team-alpha");
    let mut p = proxy_tls(
        m.addr,
        &dir,
        &chain,
        &key,
        &["--client-ca", client_ca.to_str().unwrap()],
    );
    let req = request(
        "/bedrock/model/amazon.nova-lite-v1:0/converse",
        &good_headers(),
        &body("mtls"),
    );

    // Without a certificate: refused in the handshake.
    let mut s = tls_connect(p.addr, tls_client_config(&ca, None));
    let sent = s.write_all(&req).and_then(|_| s.flush());
    let resp = read_response(&mut s, &mut Vec::new());
    assert!(
        sent.is_err() || resp.is_none(),
        "a client without a certificate was served"
    );
    let out = Command::new("curl")
        .args([
            "-sS",
            "--cacert",
            ca.to_str().unwrap(),
            &format!("https://127.0.0.1:{}/healthz", p.addr.port()),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "curl without a client cert must fail");

    // With one: served and attributed.
    let client = Some((client_cert.as_path(), client_key.as_path()));
    let mut s = tls_connect(p.addr, tls_client_config(&ca, client));
    s.write_all(&req).unwrap();
    let r = read_response(&mut s, &mut Vec::new()).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        metric(
            p.addr,
            &ca,
            client,
            "llmops_tls_handshake_failures_total{reason=\"no_client_cert\"}"
        ) >= 1.0
    );
    drop(s);
    assert_eq!(p.terminate(), Some(0));
    let rows = read_dir(&dir).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].tenant, "mtls:team-alpha");
}

#[test]
fn sighup_swaps_certificate_and_keeps_connections() {
    let m = mock();
    let dir = temp_dir("tls-reload");
    let (ca, chain, key) = make_pki(&dir, "proxy");
    let p = proxy_tls(m.addr, &dir, &chain, &key, &[]);
    let serial = || {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("openssl s_client -connect 127.0.0.1:{} -servername 127.0.0.1 </dev/null 2>/dev/null | openssl x509 -noout -serial", p.addr.port()))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let before = serial();
    assert!(before.starts_with("serial="), "{before}");
    // A keep-alive connection opened before the reload.
    let mut keep = tls_connect(p.addr, tls_client_config(&ca, None));
    let mut pending = Vec::new();
    keep.write_all(&request(
        "/bedrock/model/amazon.nova-lite-v1:0/converse",
        &good_headers(),
        &body("one"),
    ))
    .unwrap();
    assert_eq!(read_response(&mut keep, &mut pending).unwrap().status, 200);

    // New certificate from a new CA, same paths.
    let sub = dir.join("new");
    std::fs::create_dir_all(&sub).unwrap();
    let (new_ca, new_chain, new_key) = make_pki(&sub, "proxy");
    std::fs::copy(&new_chain, &chain).unwrap();
    std::fs::copy(&new_key, &key).unwrap();
    p.signal(1);
    assert!(wait_for(Duration::from_secs(5), || p
        .logs()
        .contains("certificate reloaded")));
    let after = serial();
    assert!(after.starts_with("serial=") && after != before, "{before} -> {after}");
    // New handshakes verify against the new CA only.
    let mut s = tls_connect(p.addr, tls_client_config(&new_ca, None));
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: p\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut s, &mut Vec::new()).unwrap().status, 200);
    // The old connection still works.
    keep.write_all(&request(
        "/bedrock/model/amazon.nova-lite-v1:0/converse",
        &good_headers(),
        &body("two"),
    ))
    .unwrap();
    assert_eq!(read_response(&mut keep, &mut pending).unwrap().status, 200);

    // A bad new key is rejected; the current certificate stays.
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    p.signal(1);
    assert!(wait_for(Duration::from_secs(5), || p
        .logs()
        .contains("reload_rejected")));
    assert_eq!(serial(), after);
}

#[test]
fn bad_tls_files_exit_2_naming_the_flag() {
    let dir = temp_dir("tls-bad");
    let (_ca, chain, key) = make_pki(&dir, "proxy");
    let (_, other_chain, _) = make_pki(&dir, "other");
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "hello").unwrap();
    for (cert, k, flag) in [
        (garbage.as_path(), key.as_path(), "--tls-cert"),
        (chain.as_path(), garbage.as_path(), "--tls-key"),
        (other_chain.as_path(), key.as_path(), "--tls-key"),
    ] {
        let out = Command::new(BIN)
            .args([
                "serve",
                "--listen",
                "none",
                "--listen-tls",
                "127.0.0.1:0",
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                k.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag), "{flag}: {err}");
    }
    let out = Command::new(BIN)
        .args(["serve", "--listen-tls", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-cert"));
}
