//! Talking to the proxy and the mock: raw HTTP/1.1 over std sockets (and rustls for TLS),
//! one response reader for plain and TLS streams, and one builder for a call's headers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use super::{AKID, SECRET, SESSION_TOKEN, TOKEN_AKID, TOKEN_SECRET, TRACKING_KEY};

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

/// A call's headers: the valid set, then changes.
#[derive(Debug, Clone)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    /// The headers of a valid call (tracking key, test credentials, us-east-1).
    pub fn good() -> Headers {
        Headers(vec![
            ("X-Cloudidr-Key".into(), TRACKING_KEY.into()),
            ("X-Aws-Access-Key-Id".into(), AKID.into()),
            ("X-Aws-Secret-Access-Key".into(), SECRET.into()),
            ("X-Aws-Region".into(), "us-east-1".into()),
        ])
    }

    /// Sets `name` (replacing any header of that name).
    pub fn set(mut self, name: &str, value: &str) -> Headers {
        self.0.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.0.push((name.into(), value.into()));
        self
    }

    /// Adds `name` (keeping others of that name).
    pub fn add(mut self, name: &str, value: &str) -> Headers {
        self.0.push((name.into(), value.into()));
        self
    }

    /// The temporary (STS) test credentials instead of the plain ones.
    pub fn session(self) -> Headers {
        self.set("X-Aws-Access-Key-Id", TOKEN_AKID)
            .set("X-Aws-Secret-Access-Key", TOKEN_SECRET)
            .set("X-Aws-Session-Token", SESSION_TOKEN)
    }

    /// Removes `name`.
    pub fn without(mut self, name: &str) -> Headers {
        self.0.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self
    }

    pub fn vec(self) -> Vec<(String, String)> {
        self.0
    }
}

/// The standard headers of a valid call.
pub fn good_headers() -> Vec<(String, String)> {
    Headers::good().vec()
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
