//! Test harness: runs the real binary (`mock-upstream`, `serve`) as child processes on
//! loopback, captures their logs, and talks raw HTTP/1.1 over std sockets.
#![allow(dead_code)]
// Test helpers: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_llmops-proxy");
pub const AKID: &str = "AKIDTESTINTEGRATION01";
pub const SECRET: &str = "test-secret-Zq8vW3xR7yT1uI9oP0aS2dF4gH6jK8l";
pub const TOKEN_AKID: &str = "ASIATESTINTEGRATION02";
pub const TOKEN_SECRET: &str = "token-secret-Mn5bV7cX9zL1kJ3hG5fD7sA9qW2e";
pub const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjTESTSESSIONTOKENxyz0123456789abcdefSECRETSESSION";
pub const TRACKING_KEY: &str = "trk_integration_test_key_0001";
pub const PROMPT: &str = "PROMPT-CANARY-7f3a: tell me about the quarterly numbers";

/// A child process whose stderr is collected.
pub struct Proc {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<String>>,
}

impl Proc {
    pub fn logs(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits for exit; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        unsafe { libc_kill(self.child.id() as i32, 15) };
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: i32) {
        unsafe { libc_kill(self.child.id() as i32, sig) };
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

fn spawn(args: &[&str], marker: &str, env: &[(&str, &str)]) -> Proc {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn binary");
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let l2 = log.clone();
    // Text logs say `listening addr=A`; JSON logs say `"event":"listening","addr":"A"`.
    let event = marker.split(' ').next().unwrap_or("").to_string();
    let markers = [marker.to_string(), format!("\"event\":\"{event}\",\"addr\":\"")];
    std::thread::spawn(move || {
        let mut r = BufReader::new(stderr);
        let mut line = String::new();
        let mut sent = false;
        while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            l2.lock().unwrap().push_str(&line);
            if !sent {
                if let Some((p, marker)) = markers.iter().find_map(|m| line.find(m.as_str()).map(|p| (p, m))) {
                    let rest = &line[p + marker.len()..];
                    let addr: String = rest.chars().take_while(|c| !c.is_whitespace() && *c != '"').collect();
                    if let Ok(a) = addr.parse::<SocketAddr>() {
                        let _ = tx.send(a);
                        sent = true;
                    }
                }
            }
            line.clear();
        }
    });
    let addr = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(a) => a,
        Err(_) => {
            let _ = child.kill();
            panic!("process did not start: {args:?}\n{}", log.lock().unwrap());
        }
    };
    Proc { child, addr, log }
}

/// Starts the mock with the test credentials.
pub fn mock() -> Proc {
    let plain = format!("{AKID}:{SECRET}");
    let tok = format!("{TOKEN_AKID}:{TOKEN_SECRET}:{SESSION_TOKEN}");
    spawn(
        &[
            "mock-upstream",
            "--listen",
            "127.0.0.1:0",
            "--credential",
            &plain,
            "--credential",
            &tok,
        ],
        "mock_listening addr=",
        &[],
    )
}

/// A fresh usage directory under the target dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}-{}", std::process::id(), nanos()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Starts the proxy against `upstream` with extra flags (two shards).
pub fn proxy(upstream: SocketAddr, usage_dir: &Path, extra: &[&str]) -> Proc {
    // Later flags win, so `extra` may override `--threads 2`.
    proxy_url(
        &format!("http://{upstream}"),
        usage_dir,
        &[&["--threads", "2"], extra].concat(),
    )
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The proxy error `code` of a JSON error body.
    pub fn code(&self) -> Option<String> {
        let t = self.text();
        let p = t.find("\"code\":\"")? + 8;
        Some(t[p..].chars().take_while(|c| *c != '"').collect())
    }
}

/// Reads one response from a stream (Content-Length or chunked bodies).
pub fn read_response<S: Read>(s: &mut S, pending: &mut Vec<u8>) -> Option<Resp> {
    loop {
        let mut hs = [httparse::EMPTY_HEADER; 64];
        let mut r = httparse::Response::new(&mut hs);
        if let Ok(httparse::Status::Complete(n)) = r.parse(pending) {
            let status = r.code.unwrap_or(0);
            let headers: Vec<(String, String)> = r
                .headers
                .iter()
                .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
                .collect();
            let cl = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.trim().parse::<usize>().unwrap());
            let chunked = headers
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
            if status == 100 {
                pending.drain(..n);
                continue;
            }
            if let Some(cl) = cl {
                while pending.len() < n + cl {
                    if !fill(s, pending) {
                        return None;
                    }
                }
                let body = pending[n..n + cl].to_vec();
                pending.drain(..n + cl);
                return Some(Resp { status, headers, body });
            }
            if chunked {
                let mut body = Vec::new();
                let mut pos = n;
                loop {
                    while !pending[pos..].windows(2).any(|w| w == b"\r\n") {
                        if !fill(s, pending) {
                            return None;
                        }
                    }
                    let e = pos + pending[pos..].windows(2).position(|w| w == b"\r\n").unwrap();
                    let size = usize::from_str_radix(
                        std::str::from_utf8(&pending[pos..e])
                            .unwrap()
                            .split(';')
                            .next()
                            .unwrap()
                            .trim(),
                        16,
                    )
                    .unwrap();
                    pos = e + 2;
                    while pending.len() < pos + size + 2 {
                        if !fill(s, pending) {
                            return None;
                        }
                    }
                    body.extend_from_slice(&pending[pos..pos + size]);
                    pos += size + 2;
                    if size == 0 {
                        break;
                    }
                }
                pending.drain(..pos);
                return Some(Resp { status, headers, body });
            }
            // Delimited by close.
            while fill(s, pending) {}
            let body = pending[n..].to_vec();
            pending.clear();
            return Some(Resp { status, headers, body });
        }
        if !fill(s, pending) {
            return None;
        }
    }
}

fn fill<S: Read>(s: &mut S, pending: &mut Vec<u8>) -> bool {
    let mut b = [0u8; 65536];
    match s.read(&mut b) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            pending.extend_from_slice(&b[..n]);
            true
        }
    }
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Sends raw bytes on a new connection and reads one response.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> Option<Resp> {
    let mut s = connect(addr);
    s.write_all(bytes).ok()?;
    read_response(&mut s, &mut Vec::new())
}

/// The standard headers of a valid call.
pub fn good_headers() -> Vec<(String, String)> {
    vec![
        ("X-Cloudidr-Key".into(), TRACKING_KEY.into()),
        ("X-Aws-Access-Key-Id".into(), AKID.into()),
        ("X-Aws-Secret-Access-Key".into(), SECRET.into()),
        ("X-Aws-Region".into(), "us-east-1".into()),
    ]
}

pub fn body(text: &str) -> Vec<u8> {
    format!("{{\"messages\":[{{\"role\":\"user\",\"content\":[{{\"text\":\"{text}\"}}]}}]}}").into_bytes()
}

/// Builds a request with a Content-Length body.
pub fn request(path: &str, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    let mut out = r.into_bytes();
    out.extend_from_slice(body);
    out
}

/// POSTs a converse call for `model` (raw path segment) with `headers`.
pub fn converse(addr: SocketAddr, model: &str, headers: &[(String, String)], body: &[u8]) -> Resp {
    raw(
        addr,
        &request(&format!("/bedrock/model/{model}/converse"), headers, body),
    )
    .expect("response")
}

/// The mock's counters.
pub fn mock_stats(mock: SocketAddr) -> String {
    let r = raw(
        mock,
        b"GET /mock/stats HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    r.text()
}

pub fn stat(json: &str, key: &str) -> u64 {
    let p = json.find(&format!("\"{key}\":")).unwrap() + key.len() + 3;
    json[p..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .unwrap()
}

pub fn sha256_hex(b: &[u8]) -> String {
    llmops_proxy::util::hex::encode(ring::digest::digest(&ring::digest::SHA256, b).as_ref())
}

/// Waits until `f` is true or `timeout` passes.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + timeout;
    while Instant::now() < until {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// A test PKI: a CA and a leaf for 127.0.0.1/localhost signed by it. Returns the paths of
/// the CA certificate, the leaf chain (leaf then CA) and the leaf key (PKCS#8 PEM).
pub fn make_pki(dir: &Path, cn: &str) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{cn} test CA"));
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let mut lp = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    lp.distinguished_name.push(DnType::CommonName, cn);
    let leaf = lp.signed_by(&leaf_key, &ca).unwrap();
    let ca_path = dir.join(format!("{cn}-ca.pem"));
    let chain_path = dir.join(format!("{cn}-chain.pem"));
    let key_path = dir.join(format!("{cn}-key.pem"));
    std::fs::write(&ca_path, ca.pem()).unwrap();
    std::fs::write(&chain_path, format!("{}{}", leaf.pem(), ca.pem())).unwrap();
    std::fs::write(&key_path, leaf_key.serialize_pem()).unwrap();
    (ca_path, chain_path, key_path)
}

/// Starts the mock serving TLS with `chain`/`key`, plus extra flags.
pub fn mock_tls(chain: &Path, key: &Path, extra: &[&str]) -> Proc {
    let plain = format!("{AKID}:{SECRET}");
    let c = chain.display().to_string();
    let k = key.display().to_string();
    let mut args = vec![
        "mock-upstream",
        "--listen",
        "127.0.0.1:0",
        "--credential",
        &plain,
        "--tls-cert",
        &c,
        "--tls-key",
        &k,
    ];
    args.extend_from_slice(extra);
    spawn(&args, "mock_listening addr=", &[])
}

/// Starts the mock with extra flags (plain HTTP).
pub fn mock_with(extra: &[&str]) -> Proc {
    let plain = format!("{AKID}:{SECRET}");
    let mut args = vec!["mock-upstream", "--listen", "127.0.0.1:0", "--credential", &plain];
    args.extend_from_slice(extra);
    spawn(&args, "mock_listening addr=", &[])
}

/// Starts the proxy with a custom endpoint URL.
pub fn proxy_url(endpoint: &str, usage_dir: &Path, extra: &[&str]) -> Proc {
    let dir = usage_dir.display().to_string();
    let mut args = vec![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--threads",
        "1",
        "--upstream-endpoint",
        endpoint,
        "--usage-dir",
        &dir,
    ];
    args.extend_from_slice(extra);
    spawn(&args, "listening addr=", &[])
}

/// One HTTPS GET with rustls, trusting `ca`; returns the response.
pub fn tls_get(addr: SocketAddr, ca: &Path, path: &str) -> Resp {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(cfg), name).unwrap();
    let tcp = connect(addr);
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(format!("GET {path} HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    let mut hs = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut hs);
    let n = match r.parse(&out).unwrap() {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => panic!("partial TLS response"),
    };
    let headers = r
        .headers
        .iter()
        .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
        .collect();
    Resp {
        status: r.code.unwrap(),
        headers,
        body: out[n..].to_vec(),
    }
}

/// Starts the proxy with only a TLS listener (plus extra flags); `addr` is the TLS address.
pub fn proxy_tls(upstream: SocketAddr, usage_dir: &Path, chain: &Path, key: &Path, extra: &[&str]) -> Proc {
    let ep = format!("http://{upstream}");
    let dir = usage_dir.display().to_string();
    let (c, k) = (chain.display().to_string(), key.display().to_string());
    let mut args = vec![
        "serve",
        "--listen",
        "none",
        "--listen-tls",
        "127.0.0.1:0",
        "--tls-cert",
        &c,
        "--tls-key",
        &k,
        "--threads",
        "2",
        "--upstream-endpoint",
        &ep,
        "--usage-dir",
        &dir,
    ];
    args.extend_from_slice(extra);
    spawn(&args, "listening_tls addr=", &[])
}

/// A client certificate signed by a fresh CA: (ca, cert, key) paths.
pub fn make_client_pki(dir: &Path, cn: &str) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{cn} client CA"));
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    let cert = p.signed_by(&key, &ca).unwrap();
    let paths = (
        dir.join(format!("{cn}-client-ca.pem")),
        dir.join(format!("{cn}-client.pem")),
        dir.join(format!("{cn}-client-key.pem")),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

/// A rustls client configuration trusting `ca`, optionally presenting a client cert.
pub fn tls_client_config(ca: &Path, client: Option<(&Path, &Path)>) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let cfg = match client {
        None => b.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = rustls::pki_types::CertificateDer::pem_file_iter(cert)
                .unwrap()
                .map(|c| c.unwrap())
                .collect();
            let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key).unwrap();
            b.with_client_auth_cert(chain, key).unwrap()
        }
    };
    std::sync::Arc::new(cfg)
}

/// A TLS connection to `addr` (SNI 127.0.0.1) for keep-alive requests.
pub fn tls_connect(
    addr: SocketAddr,
    cfg: std::sync::Arc<rustls::ClientConfig>,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(cfg, name).unwrap();
    rustls::StreamOwned::new(conn, connect(addr))
}
