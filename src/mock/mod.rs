//! `mock-upstream`: a Bedrock Runtime simulator for tests and the demo. It verifies every
//! request's SigV4 signature the way AWS does (rebuilding the canonical request from the
//! received bytes) and answers Converse with a realistic body whose usage is a
//! deterministic function of the request body; the InvokeModel family is `invoke`'s.
//! Model ids starting with `mock.` select failures; see `behaviour`. As a test oracle it
//! refuses what a correct proxy never sends: a client-only header, a second
//! `Authorization` or `X-Amz-Date`, a Bedrock header left out of the signature.

mod invoke;
pub(crate) mod verify;

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use monoio::io::AsyncWriteRent;
use monoio::net::{ListenerOpts, TcpListener};

use crate::args::{flag, ConfigError, FlagSpec};
use crate::bedrock::model::decode_model_id;
use crate::http::head::{push_json_str, HeadWriter};
use crate::http::io::{next_head, read_body, write_all, NextHead};
use crate::http::limits::{DEFAULT_MAX_BODY_BYTES, READ_BUFFER_BYTES};
use crate::http::request::{Method, RequestHead};
use crate::util::hex;
use verify::{verify, Credential, VerifyError};

/// Flags of `mock-upstream`.
pub(crate) const FLAGS: &[FlagSpec] = &[
    flag("listen", "ADDR", "listen address [default: 127.0.0.1:9000]"),
    flag(
        "credential",
        "AKID:SECRET[:TOKEN]",
        "a credential the mock accepts (repeatable); the demo pair is always accepted",
    ),
    flag("tls-cert", "PEM", "serve TLS with this certificate chain"),
    flag("tls-key", "PEM", "private key for --tls-cert"),
    flag(
        "idle-close-ms",
        "MS",
        "close keep-alive connections idle this long, like AWS's load balancers [default: never]",
    ),
    flag(
        "throttle-region",
        "REGION",
        "answer 429 ThrottlingException to every call signed for REGION (repeatable)",
    ),
    flag(
        "unavailable-region",
        "REGION",
        "answer 503 ServiceUnavailableException to every call signed for REGION (repeatable)",
    ),
    flag("log-format", "text|json", "log line format [default: text]"),
];

/// The credential the demo uses; always accepted by the mock. Not an AWS credential.
pub(crate) const DEMO_ACCESS_KEY_ID: &str = "AKIDLLMOPSDEMO000001";
/// Secret of [`DEMO_ACCESS_KEY_ID`].
pub(crate) const DEMO_SECRET_ACCESS_KEY: &str = "llmops-demo-secret-not-an-aws-key-000001";

/// Mock settings.
#[derive(Debug, Clone)]
pub(crate) struct MockConfig {
    pub listen: SocketAddr,
    pub credentials: Vec<Credential>,
    /// Serve TLS with this configuration.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Close a keep-alive connection after it has been idle this long (like AWS's
    /// load balancers do), to exercise the proxy's stale-connection handling.
    pub idle_close: Option<Duration>,
    /// Regions whose calls are throttled (429) or unavailable (503), whatever the model.
    pub throttle_regions: Vec<String>,
    pub unavailable_regions: Vec<String>,
}

impl MockConfig {
    /// The configuration from `mock-upstream`'s flags ([`FLAGS`]).
    pub(crate) fn from_sources(args: &crate::args::Args, s: &crate::args::Sources<'_>) -> Result<Self, ConfigError> {
        let mut cfg = MockConfig::new(s.addr("listen", "127.0.0.1:9000")?);
        match (s.get("tls-cert"), s.get("tls-key")) {
            (None, None) => {}
            (Some(c), Some(k)) => {
                let t = crate::tls::server_config(c.as_ref(), k.as_ref(), None)
                    .map_err(|e| ConfigError::new("tls-cert", e.to_string()))?;
                cfg.tls = Some(t);
            }
            (Some(_), None) => return Err(ConfigError::new("tls-key", "needed with --tls-cert")),
            (None, Some(_)) => return Err(ConfigError::new("tls-cert", "needed with --tls-key")),
        }
        match s.parse_num::<u64>("idle-close-ms", 0)? {
            0 => {}
            ms => cfg.idle_close = Some(Duration::from_millis(ms)),
        }
        cfg.throttle_regions = args.all("throttle-region").to_vec();
        cfg.unavailable_regions = args.all("unavailable-region").to_vec();
        for c in args.all("credential") {
            let parsed = Credential::parse(c)
                .ok_or_else(|| ConfigError::new("credential", format!("`{c}` is not AKID:SECRET[:TOKEN]")))?;
            cfg.credentials.push(parsed);
        }
        Ok(cfg)
    }

    pub(crate) fn new(listen: SocketAddr) -> Self {
        MockConfig {
            listen,
            credentials: vec![Credential {
                access_key_id: DEMO_ACCESS_KEY_ID.into(),
                secret: DEMO_SECRET_ACCESS_KEY.into(),
                session_token: None,
            }],
            tls: None,
            idle_close: None,
            throttle_regions: Vec::new(),
            unavailable_regions: Vec::new(),
        }
    }
}

#[derive(Default)]
struct Stats {
    requests: Cell<u64>,
    connections: Cell<u64>,
    signature_failures: Cell<u64>,
    leaked_headers: Cell<u64>,
    ok: Cell<u64>,
    stream_aborts: Cell<u64>,
}

/// What a `mock.` model id asks the mock to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Behaviour {
    Normal,
    Throttle,
    Denied,
    Error500,
    Unavailable,
    Slow(u64),
    NoUsage,
    BadJson,
    Cache,
    CloseWithoutResponse,
    Validation,
    /// Stream: pause this many ms between frames.
    Pause(u64),
    /// Stream: a throttlingException frame after the first event.
    StreamError,
    /// 429 ThrottlingException when the call is signed for this region, else normal.
    ThrottleIn(String),
    /// 503 ServiceUnavailableException when the call is signed for this region.
    UnavailableIn(String),
}

/// Maps a model id to a behaviour: `mock.throttle` (429 ThrottlingException),
/// `mock.denied` (403 AccessDeniedException), `mock.error` (500), `mock.unavailable`
/// (503), `mock.slow-<ms>` (answer after a pause), `mock.no-usage`, `mock.bad-json`,
/// `mock.cache` (cache read/write tokens), `mock.close` (close without answering),
/// `mock.validation` (400 ValidationException), `mock.throttle-<region>` and
/// `mock.unavailable-<region>` (429 / 503 only when signed for that region: an optimizer
/// fallback to another region then succeeds). Anything else answers normally.
pub(crate) fn behaviour(model: &str) -> Behaviour {
    let base = model.rsplit('.').next().unwrap_or("");
    if !model.starts_with("mock.") && !model.contains(".mock.") {
        return Behaviour::Normal;
    }
    match base {
        "throttle" => Behaviour::Throttle,
        "denied" => Behaviour::Denied,
        "error" => Behaviour::Error500,
        "unavailable" => Behaviour::Unavailable,
        "no-usage" => Behaviour::NoUsage,
        "bad-json" => Behaviour::BadJson,
        "cache" => Behaviour::Cache,
        "close" => Behaviour::CloseWithoutResponse,
        "validation" => Behaviour::Validation,
        b if b.starts_with("slow-") => Behaviour::Slow(b[5..].parse().unwrap_or(1000)),
        b if b.starts_with("pause-") => Behaviour::Pause(b[6..].parse().unwrap_or(100)),
        b if b.starts_with("throttle-") => Behaviour::ThrottleIn(b[9..].to_string()),
        b if b.starts_with("unavailable-") => Behaviour::UnavailableIn(b[12..].to_string()),
        "stream-error" => Behaviour::StreamError,
        _ => Behaviour::Normal,
    }
}

/// What the mock reports about billing besides its deterministic token counts: like AWS
/// it reports the `serviceTier` and `performanceConfig` the request asked for; a test
/// can make it report anything else through `additionalModelRequestFields.mockResponse`
/// (`usage`, `serviceTier`, `performanceConfig`, `trace`: copied into the response, or
/// ConverseStream's `metadata` event, as given; `null` leaves a field out).
#[derive(Debug, Default)]
struct Billing {
    usage: Option<String>,
    service_tier: Option<String>,
    performance_config: Option<String>,
    trace: Option<String>,
}

impl Billing {
    /// `None` when the body is not JSON (AWS answers ValidationException).
    fn from_request(body: &[u8]) -> Option<Billing> {
        use simd_json::prelude::*;
        let mut scratch = body.to_vec();
        let v = simd_json::to_borrowed_value(&mut scratch).ok()?;
        let over = v
            .get("additionalModelRequestFields")
            .and_then(|a| a.get("mockResponse"));
        let pick = |name: &str| -> Option<String> {
            match over.and_then(|o| o.get(name)) {
                Some(x) if x.is_null() => None,
                Some(x) => Some(x.encode()),
                None => v.get(name).map(|x| x.encode()),
            }
        };
        Some(Billing {
            usage: over.and_then(|o| o.get("usage")).map(|u| u.encode()),
            service_tier: pick("serviceTier"),
            performance_config: pick("performanceConfig"),
            trace: over.and_then(|o| o.get("trace")).map(|t| t.encode()),
        })
    }

    /// The `usage` object.
    fn usage(&self, beh: &Behaviour, input: i64, output: i64) -> String {
        if let Some(u) = &self.usage {
            return u.clone();
        }
        match beh {
            Behaviour::Cache => format!(
                "{{\"inputTokens\":{input},\"outputTokens\":{output},\"totalTokens\":{},\"cacheReadInputTokens\":7,\"cacheWriteInputTokens\":3}}",
                input + output + 10
            ),
            _ => format!(
                "{{\"inputTokens\":{input},\"outputTokens\":{output},\"totalTokens\":{}}}",
                input + output
            ),
        }
    }

    /// `,"serviceTier":...,"performanceConfig":...,"trace":...` for what is set.
    fn append_fields(&self, out: &mut Vec<u8>) {
        for (k, v) in [
            ("serviceTier", &self.service_tier),
            ("performanceConfig", &self.performance_config),
            ("trace", &self.trace),
        ] {
            if let Some(v) = v {
                out.extend_from_slice(format!(",\"{k}\":{v}").as_bytes());
            }
        }
    }
}

/// The deterministic usage the mock reports for a request body of `len` bytes:
/// (input, output, provider latency ms).
pub fn mock_usage(len: usize) -> (i64, i64, i64) {
    let input = (len as i64 + 3) / 4;
    let output = 20 + (len as i64 % 30);
    (input.max(1), output, 100 + len as i64 % 50)
}

/// io_uring entries of the mock's runtime.
const MOCK_URING_ENTRIES: u32 = 256;

/// Runs the mock until `stop` is set. `ready` gets the bound address.
pub(crate) fn run(
    cfg: MockConfig,
    ready: Option<mpsc::Sender<SocketAddr>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    crate::util::runtime::block_on(MOCK_URING_ENTRIES, |_| {}, |_| main_loop(cfg, ready, stop))?
}

async fn main_loop(
    cfg: MockConfig,
    ready: Option<mpsc::Sender<SocketAddr>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind_with_config(cfg.listen, &ListenerOpts::new().reuse_port(false).backlog(1024))?;
    let addr = listener.local_addr()?;
    crate::log::info("mock_listening", &[("addr", &addr.to_string())]);
    if let Some(r) = ready {
        let _ = r.send(addr);
    }
    let stats = Rc::new(Stats::default());
    let creds = Rc::new(Knobs {
        credentials: cfg.credentials,
        throttle_regions: cfg.throttle_regions,
        unavailable_regions: cfg.unavailable_regions,
    });
    let _ = stop;
    let acceptor = cfg.tls.map(monoio_rustls::TlsAcceptor::from);
    let idle_close = cfg.idle_close;
    loop {
        match listener.accept().await {
            Ok((s, _)) => {
                let _ = s.set_nodelay(true);
                stats.connections.set(stats.connections.get() + 1);
                let (stats, creds) = (stats.clone(), creds.clone());
                match &acceptor {
                    None => {
                        monoio::spawn(serve_conn(s, stats, creds, idle_close));
                    }
                    Some(a) => {
                        let a = a.clone();
                        monoio::spawn(async move {
                            match a.accept(s).await {
                                Ok(tls) => serve_conn(tls, stats, creds, idle_close).await,
                                Err(e) => crate::log::warn("mock_tls_handshake_failed", &[("error", &e.to_string())]),
                            }
                        });
                    }
                }
            }
            Err(_) => monoio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn serve_conn<S: crate::http::io::IdleRead + AsyncWriteRent>(
    mut s: S,
    stats: Rc<Stats>,
    creds: Rc<Knobs>,
    idle_close: Option<Duration>,
) {
    let mut buf = Vec::with_capacity(READ_BUFFER_BYTES);
    let drain = Rc::new(crate::http::drain::DrainSignal::new());
    let mut first = true;
    let mut idle = crate::http::io::IdleState::default();
    loop {
        // With `idle_close`, a connection idle that long is closed by the mock.
        let next = next_head(&mut s, buf, &mut idle, &drain, 1);
        let res = match idle_close {
            Some(d) if !first => match monoio::time::timeout(d, next).await {
                Ok(r) => r,
                Err(_) => return,
            },
            _ => next.await,
        };
        first = false;
        let (head, rest) = match res {
            NextHead::Head(h, r) => (h, r),
            _ => return,
        };
        buf = rest;
        let unbounded = crate::http::io::InFlight::new(usize::MAX);
        let body = match read_body(&mut s, &head, &mut buf, DEFAULT_MAX_BODY_BYTES, &mut unbounded.charge()).await {
            Ok(b) => b.bytes,
            Err(_) => return,
        };
        let keep = head.keep_alive();
        match respond(&head, &body, &stats, &creds).await {
            None => return,
            Some(Reply::Whole(out)) => {
                if !write_all(&mut s, out).await || !keep {
                    return;
                }
            }
            Some(Reply::Stream { head, frames, pause }) => {
                if !write_all(&mut s, head).await {
                    return;
                }
                let n = frames.len();
                for (i, f) in frames.into_iter().enumerate() {
                    let mut chunk = format!("{:x}\r\n", f.len()).into_bytes();
                    chunk.extend_from_slice(&f);
                    chunk.extend_from_slice(b"\r\n");
                    if !write_all(&mut s, chunk).await {
                        stats.stream_aborts.set(stats.stream_aborts.get() + 1);
                        return;
                    }
                    if i + 1 < n && !pause.is_zero() {
                        monoio::time::sleep(pause).await;
                    }
                }
                if !write_all(&mut s, b"0\r\n\r\n".to_vec()).await || !keep {
                    return;
                }
            }
        }
    }
}

/// What the mock sends back.
enum Reply {
    /// A complete response.
    Whole(Vec<u8>),
    /// A chunked event stream: head, then each frame as one chunk, pausing between them.
    Stream {
        head: Vec<u8>,
        frames: Vec<Vec<u8>>,
        pause: Duration,
    },
}

fn json_response(status: u16, error_type: Option<&str>, request_id: &str, body: &[u8]) -> Reply {
    Reply::Whole(json_bytes(status, error_type, request_id, body))
}

fn json_bytes(status: u16, error_type: Option<&str>, request_id: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 256);
    let mut w = HeadWriter::new(&mut out, status);
    w.header("content-type", b"application/json")
        .header("x-amzn-RequestId", request_id.as_bytes());
    if let Some(t) = error_type {
        w.header(
            "x-amzn-ErrorType",
            format!("{t}:http://internal.amazon.com/coral/com.amazon.bedrock/").as_bytes(),
        );
    }
    w.header_u64("content-length", body.len() as u64).finish(false);
    out.extend_from_slice(body);
    out
}

fn aws_error(status: u16, error_type: &str, message: &str, request_id: &str) -> Reply {
    let mut b = Vec::new();
    b.extend_from_slice(b"{\"message\":\"");
    push_json_str(&mut b, message);
    b.extend_from_slice(b"\"}");
    json_response(status, Some(error_type), request_id, &b)
}

/// Header names a client's request carries that must never reach the upstream.
const CLIENT_ONLY_HEADERS: [&str; 5] = ["x-aws-", "x-cloudidr-", "x-department", "x-project", "x-agent"];

/// The mock's counters, as JSON (`GET /mock/stats`).
fn stats_reply(stats: &Stats, rid: &str) -> Reply {
    let body = format!(
        "{{\"requests\":{},\"connections\":{},\"signature_failures\":{},\"leaked_headers\":{},\"ok\":{},\"stream_aborts\":{}}}",
        stats.requests.get(),
        stats.connections.get(),
        stats.signature_failures.get(),
        stats.leaked_headers.get(),
        stats.ok.get(),
        stats.stream_aborts.get()
    );
    json_response(200, None, rid, body.as_bytes())
}

/// Whether a client-only header reached the upstream, or a client's own signature
/// travelled beside the proxy's.
fn leaked(head: &RequestHead) -> bool {
    head.headers().any(|(n, _)| {
        let n = String::from_utf8_lossy(n).to_ascii_lowercase();
        CLIENT_ONLY_HEADERS.iter().any(|p| n.starts_with(p)) || n == "x-team"
    }) || head.header_count("authorization") > 1
        || head.header_count("x-amz-date") > 1
}

/// Whether an `x-amzn-bedrock-*` request header is missing from the signed headers.
fn unsigned_bedrock_header(head: &RequestHead) -> bool {
    let auth = head
        .header("authorization")
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let signed = auth
        .split([',', ' '])
        .find_map(|p| p.trim().strip_prefix("SignedHeaders="))
        .unwrap_or("");
    head.headers().any(|(n, _)| {
        let n = String::from_utf8_lossy(n).to_ascii_lowercase();
        n.starts_with("x-amzn-bedrock-") && !signed.split(';').any(|s| s == n)
    })
}

/// The model and operation of `POST /model/{id}/{op}`, or the error AWS answers.
fn route(head: &RequestHead, rid: &str) -> Result<(String, Vec<u8>), Reply> {
    let unknown = || aws_error(404, "UnknownOperationException", "unknown operation", rid);
    let path = head.target().split(|&b| b == b'?').next().unwrap_or(b"");
    let rest = path.strip_prefix(b"/model/").ok_or_else(unknown)?;
    let slash = rest.iter().rposition(|&b| b == b'/').ok_or_else(unknown)?;
    let op = &rest[slash + 1..];
    const OPS: [&[u8]; 5] = [
        b"converse",
        b"converse-stream",
        b"invoke",
        b"invoke-with-response-stream",
        b"count-tokens",
    ];
    if head.method() != Method::Post || !OPS.contains(&op) {
        return Err(unknown());
    }
    let model = decode_model_id(&rest[..slash]).map_err(|_| {
        aws_error(
            400,
            "ValidationException",
            "The provided model identifier is invalid.",
            rid,
        )
    })?;
    Ok((model, op.to_vec()))
}

/// What AWS answers for a signature that does not verify.
fn signature_error(e: &VerifyError) -> (&'static str, String) {
    match e {
        VerifyError::Missing => ("MissingAuthenticationTokenException", "Missing Authentication Token".to_string()),
        VerifyError::Malformed(why) => ("IncompleteSignatureException", format!("Authorization header is malformed: {why}")),
        VerifyError::UnknownKey => ("UnrecognizedClientException", "The security token included in the request is invalid.".into()),
        VerifyError::ExpiredToken => ("ExpiredTokenException", "The security token included in the request is expired".into()),
        VerifyError::Skew => ("InvalidSignatureException", "Signature expired: the request time is more than 5 minutes from the server time.".into()),
        VerifyError::Mismatch { canonical } => (
            "InvalidSignatureException",
            // Like AWS: the message shows the canonical request (which includes the
            // session token). The proxy must never relay this.
            format!("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\nThe Canonical String for this request should have been\n'{canonical}'"),
        ),
    }
}

/// The region a request is signed for (its credential scope).
fn signing_region(head: &RequestHead) -> Option<String> {
    let auth = String::from_utf8_lossy(head.header("authorization")?).into_owned();
    let cred = auth
        .split([',', ' '])
        .find_map(|p| p.trim().strip_prefix("Credential="))?;
    cred.split('/').nth(2).map(str::to_string)
}

/// The AWS error a failure behaviour answers with: (status, type, message).
fn failure(beh: &Behaviour, region: Option<&str>) -> Option<(u16, &'static str, &'static str)> {
    let throttle = (
        429,
        "ThrottlingException",
        "Too many requests, please wait before trying again.",
    );
    let unavailable = (
        503,
        "ServiceUnavailableException",
        "The service is temporarily unavailable.",
    );
    Some(match beh {
        Behaviour::ThrottleIn(r) if Some(r.as_str()) == region => throttle,
        Behaviour::UnavailableIn(r) if Some(r.as_str()) == region => unavailable,
        Behaviour::Throttle => throttle,
        Behaviour::Denied => (
            403,
            "AccessDeniedException",
            "You don't have access to the model with the specified model ID.",
        ),
        Behaviour::Error500 => (
            500,
            "InternalServerException",
            "The server encountered an internal error.",
        ),
        Behaviour::Unavailable => unavailable,
        Behaviour::Validation => (400, "ValidationException", "The model returned a validation error."),
        _ => return None,
    })
}

/// What every connection of the mock answers by: the credentials it accepts and the
/// regions it refuses.
struct Knobs {
    credentials: Vec<Credential>,
    throttle_regions: Vec<String>,
    unavailable_regions: Vec<String>,
}

async fn respond(head: &RequestHead, body: &[u8], stats: &Stats, knobs: &Knobs) -> Option<Reply> {
    let creds = &knobs.credentials[..];
    let n = stats.requests.get() + 1;
    stats.requests.set(n);
    let rid = format!("00000000-0000-4000-8000-{n:012x}");
    let target = head.target();
    if head.method() == Method::Get && (target == b"/mock/stats" || target == b"/healthz") {
        return Some(stats_reply(stats, &rid));
    }
    if leaked(head) {
        stats.leaked_headers.set(stats.leaked_headers.get() + 1);
        return Some(aws_error(
            400,
            "LeakedHeaderException",
            "a client-only header reached the upstream",
            &rid,
        ));
    }
    if unsigned_bedrock_header(head) {
        stats.leaked_headers.set(stats.leaked_headers.get() + 1);
        return Some(aws_error(
            400,
            "UnsignedHeaderException",
            "an X-Amzn-Bedrock-* header is not signed",
            &rid,
        ));
    }
    let (model, op) = match route(head, &rid) {
        Ok(r) => r,
        Err(reply) => return Some(reply),
    };
    if let Err(e) = verify(head, body, creds, crate::util::time::unix_now()) {
        stats.signature_failures.set(stats.signature_failures.get() + 1);
        let (t, m) = signature_error(&e);
        return Some(aws_error(403, t, &m, &rid));
    }
    let Some(billing) = Billing::from_request(body) else {
        return Some(aws_error(
            400,
            "ValidationException",
            "Malformed input request, please reformat your input and try again.",
            &rid,
        ));
    };
    let region = signing_region(head);
    let mut beh = behaviour(&model);
    // A slow model is slow to fail too (a throttled region answers after the pause).
    if let Behaviour::Slow(ms) = beh {
        monoio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(r) = &region {
        if knobs.throttle_regions.contains(r) {
            beh = Behaviour::Throttle;
        } else if knobs.unavailable_regions.contains(r) {
            beh = Behaviour::Unavailable;
        }
    }
    if let Some((status, t, m)) = failure(&beh, region.as_deref()) {
        return Some(aws_error(status, t, m, &rid));
    }
    if beh == Behaviour::CloseWithoutResponse {
        return None;
    }
    stats.ok.set(stats.ok.get() + 1);
    Some(match &op[..] {
        b"converse-stream" => stream_reply(&model, body, &beh, &rid, &billing),
        b"invoke" => invoke::invoke_reply(head, &model, body, &beh, &rid),
        b"invoke-with-response-stream" => invoke::stream_reply(head, &model, body, &beh, &rid),
        b"count-tokens" => invoke::count_tokens_reply(body, &rid),
        _ => converse_reply(&model, body, &beh, &rid, &billing),
    })
}

/// A Converse answer: the text names the request body's SHA-256; usage as `billing` says.
fn converse_reply(model: &str, body: &[u8], beh: &Behaviour, rid: &str, billing: &Billing) -> Reply {
    let (input, output, latency) = mock_usage(body.len());
    let digest = hex::encode(ring::digest::digest(&ring::digest::SHA256, body).as_ref());
    let text = format!("mock reply from {model}; request body sha256 {digest}");
    let mut b = Vec::with_capacity(512);
    b.extend_from_slice(
        format!("{{\"metrics\":{{\"latencyMs\":{latency}}},\"output\":{{\"message\":{{\"content\":[{{\"text\":\"")
            .as_bytes(),
    );
    push_json_str(&mut b, &text);
    b.extend_from_slice(b"\"}],\"role\":\"assistant\"}},\"stopReason\":\"end_turn\"");
    if *beh != Behaviour::NoUsage {
        b.extend_from_slice(b",\"usage\":");
        b.extend_from_slice(billing.usage(beh, input, output).as_bytes());
    }
    billing.append_fields(&mut b);
    b.push(b'}');
    if *beh == Behaviour::BadJson {
        b.truncate(b.len() / 2);
    }
    json_response(200, None, rid, &b)
}

/// A ConverseStream answer: messageStart, a few contentBlockDelta events (the text names
/// the body's SHA-256), contentBlockStop, messageStop, metadata (usage as for Converse).
fn stream_reply(model: &str, body: &[u8], beh: &Behaviour, rid: &str, billing: &Billing) -> Reply {
    use crate::bedrock::eventstream::{event_frame, exception_frame};
    let (input, output, latency) = mock_usage(body.len());
    let digest = hex::encode(ring::digest::digest(&ring::digest::SHA256, body).as_ref());
    let mut frames = vec![event_frame("messageStart", br#"{"p":"abcd","role":"assistant"}"#)];
    if *beh == Behaviour::StreamError {
        frames.push(exception_frame(
            "throttlingException",
            br#"{"message":"Too many tokens, please wait before trying again."}"#,
        ));
    } else {
        for part in [
            format!("mock stream from {model}; "),
            "request body sha256 ".to_string(),
            digest,
        ] {
            let mut p = Vec::new();
            p.extend_from_slice(br#"{"contentBlockIndex":0,"delta":{"text":""#);
            push_json_str(&mut p, &part);
            p.extend_from_slice(br#""},"p":"abcdefgh"}"#);
            frames.push(event_frame("contentBlockDelta", &p));
        }
        frames.push(event_frame("contentBlockStop", br#"{"contentBlockIndex":0,"p":"ab"}"#));
        frames.push(event_frame("messageStop", br#"{"p":"abc","stopReason":"end_turn"}"#));
        let mut meta = format!(
            "{{\"metrics\":{{\"latencyMs\":{latency}}},\"p\":\"abcdef\",\"usage\":{}",
            billing.usage(beh, input, output)
        )
        .into_bytes();
        billing.append_fields(&mut meta);
        meta.push(b'}');
        frames.push(event_frame("metadata", &meta));
    }
    let mut head = Vec::with_capacity(256);
    HeadWriter::new(&mut head, 200)
        .header("content-type", b"application/vnd.amazon.eventstream")
        .header("x-amzn-RequestId", rid.as_bytes())
        .header("transfer-encoding", b"chunked")
        .finish(false);
    let pause = match beh {
        Behaviour::Pause(ms) => Duration::from_millis(*ms),
        _ => Duration::ZERO,
    };
    Reply::Stream { head, frames, pause }
}
