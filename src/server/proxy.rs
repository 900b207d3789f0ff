//! The Bedrock handler: validate (method, tracking key, credentials, region, model id),
//! read the body, sign with SigV4, exchange with the upstream over the shard's pool
//! (one retry only for a reused connection that failed before any response byte),
//! relay the answer, scan usage, price it, and queue exactly one usage row.

use std::rc::Rc;
use std::time::{Duration, Instant};

use monoio::buf::IoBuf;
use monoio::io::{AsyncReadRent, AsyncWriteRent};

use super::conn::error_response;
use crate::http::io::{read_body, write_all};
use super::stats::ShardStats;
use super::Shard;
use crate::bedrock::error::{error_type_from_header, is_auth_error, ErrorCode, ProxyError};
use crate::bedrock::model::{decode_model_id, encode_model_segment};
use crate::bedrock::region::{is_valid_region, DEFAULT_REGION};
use crate::bedrock::route::Operation;
use crate::http::limits::SMALL_BODY_BYTES;
use crate::http::request::{BodyFraming, Method, RequestHead};
use crate::http::response::HeadWriter;
use crate::pricing::{Query, Trace};
use crate::sigv4::signer::payload_hash;
use crate::sigv4::{Credentials, SecretString, SignRequest, SigningTime, BEDROCK_SERVICE};
use crate::tenant::KeyError;
use crate::upstream::exchange::{read_head, read_response, write_request, Head, UpstreamResponse};
use crate::upstream::connection::UpstreamStream;
use crate::upstream::UpstreamError;
use crate::usage::record::{cut_message, format_usd, UsageRecord, MAX_TAG_CHARS};
use crate::usage::scan::Usage;

/// Longest region value recorded when it is invalid.
const MAX_RECORDED_REGION: usize = 64;

fn tag(head: &RequestHead, name: &str) -> Option<String> {
    let v = head.header(name)?;
    if v.is_empty() {
        return None;
    }
    // Invalid UTF-8 is recorded lossily rather than refused: tags are attribution only.
    Some(
        String::from_utf8_lossy(v)
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_TAG_CHARS)
            .collect(),
    )
}

fn secret_header(head: &RequestHead, name: &str) -> Option<SecretString> {
    head.header(name)
        .filter(|v| !v.is_empty())
        .map(|v| SecretString::new(v.to_vec()))
}

/// What a validated request needs for the upstream call.
struct Validated {
    creds: Credentials,
    region: String,
    model_effective: String,
}

fn validate(
    head: &RequestHead,
    raw_model: &[u8],
    shard: &Shard,
    peer: &super::conn::Peer,
    rec: &mut UsageRecord,
) -> Result<Validated, ProxyError> {
    // Recorded first so that even refused requests carry what they asked for.
    rec.model_requested = match decode_model_id(raw_model) {
        Ok(m) => m,
        Err(_) => String::from_utf8_lossy(raw_model).chars().take(256).collect(),
    };
    let region = match head.header("x-aws-region") {
        None => DEFAULT_REGION.to_string(),
        Some(r) => String::from_utf8_lossy(r).chars().take(MAX_RECORDED_REGION).collect(),
    };
    rec.region = region.clone();
    rec.model_effective = rec.model_requested.clone();

    if head.method() != Method::Post {
        return Err(ProxyError::new(
            ErrorCode::MethodNotAllowed,
            "Bedrock routes accept POST only",
        ));
    }
    let token = head.header("x-cloudidr-key").filter(|t| !t.is_empty());
    let Some(token) = token else {
        rec.tenant = "anonymous".into();
        return Err(ProxyError::new(
            ErrorCode::MissingTrackingKey,
            "the X-Cloudidr-Key header (your trk_... tracking key) is required",
        ));
    };
    let keys = shard.keys();
    match keys.tenant(token) {
        // Tenant: key name (key file), else the client certificate's subject under
        // mutual TLS, else the token fingerprint (DESIGN.md §3).
        Ok(t) => {
            rec.tenant = match (&peer.mtls_subject, keys.is_open()) {
                (Some(subject), true) => format!("mtls:{subject}"),
                _ => t,
            }
        }
        Err(e) => {
            let digest = ring::digest::digest(&ring::digest::SHA256, token);
            let mut h = [0u8; 32];
            h.copy_from_slice(digest.as_ref());
            rec.tenant = crate::tenant::fingerprint_tenant(&h);
            let msg = match e {
                KeyError::Malformed => {
                    "X-Cloudidr-Key is malformed: expected trk_ followed by at least 16 of A-Z a-z 0-9 _ -"
                }
                KeyError::Unknown => "X-Cloudidr-Key is not a known tracking key",
            };
            return Err(ProxyError::new(ErrorCode::InvalidTrackingKey, msg));
        }
    }
    let akid = head.header("x-aws-access-key-id").filter(|v| !v.is_empty());
    let secret = secret_header(head, "x-aws-secret-access-key");
    let (Some(akid), Some(secret)) = (akid, secret) else {
        return Err(ProxyError::new(
            ErrorCode::MissingAwsCredentials,
            "X-Aws-Access-Key-Id and X-Aws-Secret-Access-Key are required (X-Aws-Session-Token for temporary credentials)",
        ));
    };
    let Ok(akid) = std::str::from_utf8(akid) else {
        return Err(ProxyError::new(
            ErrorCode::MissingAwsCredentials,
            "X-Aws-Access-Key-Id must be ASCII",
        ));
    };
    if !is_valid_region(&region) {
        return Err(ProxyError::new(
            ErrorCode::InvalidRegion,
            "X-Aws-Region must look like us-east-1 (^[a-z]{2}(-gov)?-[a-z]+-[0-9]+$)",
        ));
    }
    let model = match decode_model_id(raw_model) {
        Ok(m) => m,
        Err(e) => return Err(ProxyError::new(ErrorCode::InvalidModelId, e.to_string())),
    };
    let model_effective = shard.shared.config.geo.effective(&model, &region);
    rec.model_effective = model_effective.clone();
    let framing_ok = head.framing != BodyFraming::None || head.header("content-length").is_some();
    if !framing_ok {
        return Err(ProxyError::new(
            ErrorCode::LengthRequired,
            "send the body with Content-Length or Transfer-Encoding: chunked",
        ));
    }
    Ok(Validated {
        creds: Credentials {
            access_key_id: akid.to_string(),
            secret_access_key: secret,
            session_token: secret_header(head, "x-aws-session-token"),
        },
        region,
        model_effective,
    })
}

/// Handles one Bedrock request; returns whether the connection may carry another.
#[allow(clippy::too_many_arguments)]
pub async fn handle<S: AsyncReadRent + AsyncWriteRent>(
    stream: &mut S,
    mut head: RequestHead,
    buf: &mut Vec<u8>,
    op: Operation,
    raw_model: Vec<u8>,
    shard: &Rc<Shard>,
    peer: &super::conn::Peer,
    received: Instant,
    ts_micros: i64,
) -> bool {
    let stats = &shard.stats;
    ShardStats::inc(&stats.requests_total);
    let request_id = shard.next_request_id();
    let mut rec = UsageRecord {
        ts_micros,
        request_id: request_id.clone(),
        operation: op.as_str(),
        department: tag(&head, "x-department"),
        project: tag(&head, "x-project").or_else(|| tag(&head, "x-team")),
        agent: tag(&head, "x-agent"),
        ..Default::default()
    };
    let close_requested = !head.keep_alive();

    let validated = validate(&head, &raw_model, shard, peer, &mut rec);
    let v = match validated {
        Ok(v) => v,
        Err(err) => {
            // An unread body makes the connection unusable for another request.
            // After a 411 the client may still send a body we cannot frame: close too.
            let close = close_requested || head.framing != BodyFraming::None || err.code == ErrorCode::LengthRequired;
            let extra: &[(&str, &[u8])] = if err.code == ErrorCode::MethodNotAllowed {
                &[("allow", b"POST")]
            } else {
                &[]
            };
            let resp = error_response(&err, &request_id, close, extra);
            head.wipe();
            return finish_error(stream, resp, err, rec, shard, received, !close).await;
        }
    };
    if let Some(b) = shard.blocked(&rec) {
        let reset = crate::util::time::rfc3339_millis(b.reset_at * 1_000_000);
        let scope = shard
            .shared
            .budgets
            .as_ref()
            .and_then(|h| {
                h.publisher
                    .current()
                    .budgets
                    .iter()
                    .find(|x| x.name == b.budget)
                    .map(|x| x.scope.as_str())
            })
            .unwrap_or("scope");
        let err = ProxyError::new(
            ErrorCode::BudgetExceeded,
            format!(
                "budget `{}` ({scope} = {}) has spent ${} of its ${} limit; it resets at {reset}",
                b.budget,
                b.value,
                format_usd(b.spent),
                format_usd(b.limit),
            ),
        );
        let retry = (b.reset_at - crate::util::time::unix_now()).max(1).to_string();
        let close = close_requested || head.framing != BodyFraming::None;
        let resp = error_response(&err, &request_id, close, &[("retry-after", retry.as_bytes())]);
        head.wipe();
        rec.blocked_by = Some(b.budget.clone());
        return finish_error(stream, resp, err, rec, shard, received, !close).await;
    }
    if shard.draining() {
        let err = ProxyError::new(
            ErrorCode::ShuttingDown,
            "the proxy is draining; retry on another instance",
        );
        let resp = error_response(&err, &request_id, true, &[]);
        head.wipe();
        return finish_error(stream, resp, err, rec, shard, received, false).await;
    }
    let body = match read_body(stream, &head, buf, shard.shared.config.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => {
            let err = ProxyError::from(e);
            let resp = error_response(&err, &request_id, true, &[]);
            head.wipe();
            return finish_error(stream, resp, err, rec, shard, received, false).await;
        }
    };
    rec.request_bytes = body.len() as i64;
    let content_type: Vec<u8> = head
        .header("content-type")
        .map_or_else(|| b"application/json".to_vec(), |c| c.to_vec());
    // The head holds the caller's secrets: wipe it as soon as everything is extracted.
    head.wipe();
    drop(head);

    // Build and sign the upstream request.
    let target = shard.shared.config.endpoint.target(&v.region);
    let host = target.host_header();
    let mut path = Vec::with_capacity(64 + v.model_effective.len());
    path.extend_from_slice(b"/model/");
    encode_model_segment(&v.model_effective, &mut path);
    path.push(b'/');
    path.extend_from_slice(op.as_str().as_bytes());
    let time = SigningTime::now();
    let ph = payload_hash(&body);
    let ph_str = std::str::from_utf8(&ph).unwrap_or_default();
    let mut signed: Vec<(&str, &[u8])> = Vec::with_capacity(4);
    signed.push(("content-type", &content_type));
    signed.push(("host", host.as_bytes()));
    signed.push(("x-amz-date", time.amz_date().as_bytes()));
    if let Some(t) = &v.creds.session_token {
        signed.push(("x-amz-security-token", t.expose()));
    }
    let sreq = SignRequest {
        method: "POST",
        path: &path,
        query: b"",
        headers: &signed,
        payload_hash: ph_str,
        region: &v.region,
        service: BEDROCK_SERVICE,
        time,
    };
    let signed_auth = shard.signer.borrow_mut().sign(&v.creds, &sreq);
    let auth = match signed_auth {
        Ok(a) => a,
        Err(e) => {
            let err = ProxyError::new(ErrorCode::BadRequest, format!("cannot sign the request: {e}"));
            let resp = error_response(&err, &request_id, close_requested, &[]);
            return finish_error(stream, resp, err, rec, shard, received, !close_requested).await;
        }
    };
    let mut up_head = Vec::with_capacity(512 + auth.len());
    up_head.extend_from_slice(b"POST ");
    up_head.extend_from_slice(&path);
    up_head.extend_from_slice(b" HTTP/1.1\r\n");
    {
        let mut w = HeadLines(&mut up_head);
        w.line("Host", host.as_bytes());
        w.line("Content-Type", &content_type);
        w.line("Content-Length", body.len().to_string().as_bytes());
        w.line("X-Amz-Date", time.amz_date().as_bytes());
        if let Some(t) = &v.creds.session_token {
            w.line("X-Amz-Security-Token", t.expose());
        }
        w.line("Authorization", auth.as_bytes());
        w.line(
            "Accept",
            if op == Operation::ConverseStream {
                b"application/vnd.amazon.eventstream"
            } else {
                b"application/json"
            },
        );
        w.line(
            "User-Agent",
            concat!("llmops-proxy/", env!("CARGO_PKG_VERSION")).as_bytes(),
        );
    }
    up_head.extend_from_slice(b"\r\n");
    drop(v);

    let up_started = Instant::now();
    let deadline = up_started + shard.shared.config.timeouts.total;
    let (result, body) = send(shard, &target, up_head, body, op == Operation::ConverseStream, deadline).await;
    let upstream_ms = up_started.elapsed().as_secs_f64() * 1000.0;
    let resp = match result {
        Ok(r) => r,
        Err(e) => {
            stats.upstream_error(e.kind());
            let code = if e.is_timeout() {
                ShardStats::inc(&stats.upstream_timeouts);
                ErrorCode::UpstreamTimeout
            } else {
                ErrorCode::UpstreamUnavailable
            };
            let err = ProxyError::new(code, e.to_string());
            rec.upstream_latency_ms = Some(upstream_ms);
            let resp = error_response(&err, &request_id, close_requested, &[]);
            return finish_error(stream, resp, err, rec, shard, received, !close_requested).await;
        }
    };
    let resp = match resp {
        Upstream::Complete(r) => r,
        Upstream::Streaming {
            head: h,
            buf: b,
            ttfb,
            conn,
        } => {
            rec.upstream_ttfb_ms = Some(ttfb.as_secs_f64() * 1000.0);
            rec.upstream_request_id = h.request_id.clone();
            if h.status == 200 {
                let ctx = super::stream::StreamCtx {
                    target,
                    up_started,
                    deadline,
                    received,
                    close: close_requested,
                    request_body: body,
                };
                return super::stream::relay_stream(stream, h, b, conn, rec, shard, ctx).await;
            }
            // An error answer to a stream request is a small JSON body: read it whole.
            match super::stream::collect(h, b, ttfb, conn, deadline).await {
                Ok(r) => r,
                Err(e) => {
                    let err = ProxyError::new(ErrorCode::UpstreamUnavailable, e.to_string());
                    let resp = error_response(&err, &request_id, close_requested, &[]);
                    return finish_error(stream, resp, err, rec, shard, received, !close_requested).await;
                }
            }
        }
    };
    rec.upstream_latency_ms = Some(up_started.elapsed().as_secs_f64() * 1000.0);
    rec.upstream_ttfb_ms = Some(resp.ttfb.as_secs_f64() * 1000.0);
    rec.upstream_request_id = resp.request_id.clone();
    relay(stream, resp, rec, shard, received, close_requested, &body).await
}

/// Appends `Name: value\r\n` lines.
struct HeadLines<'a>(&'a mut Vec<u8>);

impl HeadLines<'_> {
    fn line(&mut self, name: &str, value: &[u8]) {
        self.0.extend_from_slice(name.as_bytes());
        self.0.extend_from_slice(b": ");
        self.0.extend_from_slice(value);
        self.0.extend_from_slice(b"\r\n");
    }
}

/// What the upstream answered.
pub enum Upstream {
    /// A whole response (the connection is already back in the pool if reusable).
    Complete(UpstreamResponse),
    /// A response head whose body is still to be read from `conn` (ConverseStream).
    Streaming {
        head: Head,
        buf: Vec<u8>,
        ttfb: Duration,
        conn: UpstreamStream,
    },
}

/// One attempt on one connection.
async fn attempt(
    conn: &mut UpstreamStream,
    head: Vec<u8>,
    body: Vec<u8>,
    stream: bool,
    ttfb: Duration,
    deadline: Instant,
) -> (
    Result<Option<UpstreamResponse>, UpstreamError>,
    Option<(Head, Vec<u8>, Duration)>,
    Vec<u8>,
) {
    let (sent, body) = write_request(conn, head, body, deadline).await;
    let sent_at = match sent {
        Ok(t) => t,
        Err(e) => return (Err(e), None, body),
    };
    if stream {
        match read_head(conn, sent_at, ttfb, deadline).await {
            Ok(h) => (Ok(None), Some(h), body),
            Err(e) => (Err(e), None, body),
        }
    } else {
        (read_response(conn, sent_at, ttfb, deadline).await.map(Some), None, body)
    }
}

/// One request over a pooled or new connection, retried once on a fresh connection when
/// a reused one fails before any response byte. The request body comes back with the
/// result (its `serviceTier` is the pricing fallback when the response does not say).
async fn send(
    shard: &Rc<Shard>,
    target: &crate::upstream::endpoint::Target,
    mut head: Vec<u8>,
    body: Vec<u8>,
    stream: bool,
    deadline: Instant,
) -> (Result<Upstream, UpstreamError>, Vec<u8>) {
    use zeroize::Zeroize;
    let ttfb = shard.shared.config.timeouts.ttfb;
    let (mut conn, reused) = match shard.pool.take(target) {
        Some(c) => {
            ShardStats::inc(&shard.stats.upstream_reused);
            (c, true)
        }
        None => match connect(shard, target).await {
            Ok(c) => (c, false),
            Err(e) => {
                head.zeroize();
                return (Err(e), body);
            }
        },
    };
    let (mut res, mut streamed, mut body) = attempt(&mut conn, head.clone(), body, stream, ttfb, deadline).await;
    if let Err(e) = &res {
        if reused && e.before_response() {
            ShardStats::inc(&shard.stats.upstream_retries);
            drop(conn);
            conn = match connect(shard, target).await {
                Ok(c) => c,
                Err(e) => {
                    head.zeroize();
                    return (Err(e), body);
                }
            };
            let again = attempt(&mut conn, head.clone(), body, stream, ttfb, deadline).await;
            res = again.0;
            streamed = again.1;
            body = again.2;
        }
    }
    head.zeroize();
    let out = match res {
        Err(e) => Err(e),
        Ok(Some(resp)) => {
            if resp.reusable {
                shard.pool.put(target, conn);
            }
            Ok(Upstream::Complete(resp))
        }
        Ok(None) => match streamed {
            Some((head, buf, ttfb)) => Ok(Upstream::Streaming { head, buf, ttfb, conn }),
            None => Err(UpstreamError::Protocol("no response")),
        },
    };
    (out, body)
}

async fn connect(
    shard: &Rc<Shard>,
    target: &crate::upstream::endpoint::Target,
) -> Result<UpstreamStream, UpstreamError> {
    let addr = shard
        .pool
        .resolve(&target.host, target.port)
        .map_err(UpstreamError::Connect)?;
    ShardStats::inc(&shard.stats.upstream_connects);
    let t = &shard.shared.config.timeouts;
    UpstreamStream::connect(
        target,
        addr,
        shard.tls.as_ref(),
        t.connect,
        t.tls,
        Some(shard.stats.upstream_open.clone()),
    )
    .await
}

/// Extracts a short AWS error message (`message` / `Message`) from an error body.
fn aws_message(shard: &Shard, body: &[u8]) -> Option<String> {
    use simd_json::prelude::*;
    let mut scratch = body.to_vec();
    let _ = shard;
    let v = simd_json::to_borrowed_value(&mut scratch).ok()?;
    let m = v.get("message").or_else(|| v.get("Message"))?.as_str()?;
    Some(cut_message(m))
}

/// Prices the row from its response's usage (exact; unpriced calls are flagged, and
/// counted by the writer). The request body is read for `serviceTier` / `performanceConfig` only when
/// the response did not report them and the model's price depends on them.
pub(super) fn apply_price(rec: &mut UsageRecord, usage: &Usage, request_body: &[u8], shard: &Shard) {
    let prices = shard.prices();
    let model = usage.invoked_model.as_deref().unwrap_or(&rec.model_effective);
    let (mut tier_req, mut latency_req) = (None, None);
    if usage.tier.is_none() || usage.latency.is_none() {
        let sensitive = prices
            .resolve(model, &mut Trace::off())
            .is_ok_and(|(e, _)| e.tier_sensitive() || e.latency_sensitive());
        if sensitive {
            (tier_req, latency_req) = shard.scanner.borrow_mut().request_hints(request_body);
        }
    }
    let q = Query {
        model: &rec.model_effective,
        invoked: usage.invoked_model.as_deref(),
        region: &rec.region,
        day: rec.ts_micros.div_euclid(86_400_000_000),
        tier_reported: usage.tier,
        tier_requested: tier_req,
        latency_reported: usage.latency,
        latency_requested: latency_req,
        usage: &usage.metered,
    };
    rec.apply_priced(prices.price(&q, &mut Trace::off()));
}

/// Relays an upstream answer to the client and records the row.
pub(super) async fn relay<S: AsyncReadRent + AsyncWriteRent>(
    stream: &mut S,
    resp: UpstreamResponse,
    mut rec: UsageRecord,
    shard: &Rc<Shard>,
    received: Instant,
    close: bool,
    request_body: &[u8],
) -> bool {
    let status = resp.status;
    let error_type = resp
        .error_type_header
        .as_deref()
        .and_then(error_type_from_header)
        .map(str::to_string);
    if status >= 400 {
        if let Some(t) = error_type.as_deref().filter(|t| is_auth_error(t)) {
            // Never relay AWS's message here: InvalidSignatureException echoes the
            // canonical request, which holds the session token.
            let err = ProxyError::new(
                ErrorCode::AwsAuthenticationFailed,
                format!("AWS refused the credentials: {t}. Check X-Aws-Access-Key-Id, X-Aws-Secret-Access-Key and X-Aws-Session-Token"),
            );
            rec.error_type = Some(t.to_string());
            rec.error_message = Some(cut_message(&err.message));
            rec.response_bytes = 0;
            let out = error_response(&err, &rec.request_id, close, &[]);
            rec.status = err.status();
            return write_and_record(stream, out, None, rec, shard, received, !close).await;
        }
    }
    let mut extra: Vec<(&'static str, Vec<u8>)> = Vec::new();
    if (200..300).contains(&status) {
        let usage = shard.scanner.borrow_mut().scan(resp.body()).unwrap_or_default();
        rec.apply_usage(&usage);
        apply_price(&mut rec, &usage, request_body, shard);
        if let Some(c) = rec.cost_pico_usd {
            extra.push(("x-llmops-cost-usd", format_usd(c).into_bytes()));
        }
        if let Some(n) = rec.input_tokens {
            extra.push(("x-llmops-input-tokens", n.to_string().into_bytes()));
        }
        if let Some(n) = rec.output_tokens {
            extra.push(("x-llmops-output-tokens", n.to_string().into_bytes()));
        }
    } else {
        rec.error_type = error_type.clone().or_else(|| Some(format!("HTTP{status}")));
        rec.error_message = aws_message(shard, resp.body());
    }
    rec.status = status;
    let body_len = resp.body().len();
    rec.response_bytes = body_len as i64;
    let mut out = Vec::with_capacity(512 + if body_len <= SMALL_BODY_BYTES { body_len } else { 0 });
    {
        let mut w = HeadWriter::new(&mut out, status);
        if let Some(ct) = &resp.content_type {
            w.header("content-type", ct);
        }
        w.header("x-request-id", rec.request_id.as_bytes());
        if let Some(id) = &resp.request_id {
            w.header("x-amzn-requestid", id.as_bytes());
        }
        if let Some(et) = &resp.error_type_header {
            w.header("x-amzn-errortype", et);
        }
        for (k, v) in &extra {
            w.header(k, v);
        }
        w.header_u64("content-length", body_len as u64).finish(close);
    }
    let (buf, start) = resp.into_body_parts();
    if body_len <= SMALL_BODY_BYTES {
        out.extend_from_slice(&buf[start..]);
        write_and_record(stream, out, None, rec, shard, received, !close).await
    } else {
        write_and_record(stream, out, Some((buf, start)), rec, shard, received, !close).await
    }
}

pub(super) async fn finish_error<S: AsyncReadRent + AsyncWriteRent>(
    stream: &mut S,
    resp: Vec<u8>,
    err: ProxyError,
    mut rec: UsageRecord,
    shard: &Rc<Shard>,
    received: Instant,
    keep: bool,
) -> bool {
    rec.status = err.status();
    rec.error_type = Some(err.code.as_str().to_string());
    rec.error_message = Some(cut_message(&err.message));
    write_and_record(stream, resp, None, rec, shard, received, keep).await
}

/// Writes the response (head buffer, then an optional large body slice without copying
/// it), then records the row with the final latency.
pub(super) async fn write_and_record<S: AsyncReadRent + AsyncWriteRent>(
    stream: &mut S,
    out: Vec<u8>,
    body: Option<(Vec<u8>, usize)>,
    mut rec: UsageRecord,
    shard: &Rc<Shard>,
    received: Instant,
    keep: bool,
) -> bool {
    let mut ok = write_all(stream, out).await;
    if ok {
        if let Some((buf, start)) = body {
            ok = write_all(stream, buf.slice(start..)).await;
        }
    }
    if !ok {
        rec.error_type.get_or_insert_with(|| "ClientDisconnected".to_string());
    }
    rec.latency_ms = received.elapsed().as_secs_f64() * 1000.0;
    shard.stats.count_status(rec.status);
    shard.stats.request_latency.observe_ms(rec.latency_ms);
    if let Some(u) = rec.upstream_latency_ms {
        shard.stats.upstream_latency.observe_ms(u);
    }
    shard.record(rec);
    ok && keep
}
