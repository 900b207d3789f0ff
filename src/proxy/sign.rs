//! Stage 4, signing: the upstream request for a validated call — its target, the path
//! (`/model/{percent-encoded id}/{operation}`), the signed headers (`content-type`,
//! `host`, `x-amz-date`, `x-amz-security-token`, and on InvokeModel calls the client's
//! Bedrock headers of `bedrock::headers`) with SigV4 over the body's hash, and the head
//! written by the one head writer. The caller drops the client's head (it holds the
//! caller's secrets; dropping zeroes it) once it needs it no more: right after signing,
//! or after an optimizer fallback signed its last attempt.

use super::error::{ErrorCode, ProxyError};
use super::shard::Shard;
use super::validate::Validated;
use crate::bedrock::headers::{forwarded, ACCEPT, FORWARDED};
use crate::bedrock::model::encode_model_segment;
use crate::bedrock::route::Operation;
use crate::http::head::HeadWriter;
use crate::http::request::RequestHead;
use crate::sigv4::{SignRequest, SigningTime, BEDROCK_SERVICE};
use crate::upstream::endpoint::Target;

/// The `User-Agent` sent upstream.
const USER_AGENT: &str = concat!("llmops-proxy/", env!("CARGO_PKG_VERSION"));

/// A signed upstream request: where it goes and its head (zeroed once written).
pub struct Signed {
    pub target: Target,
    pub head: Vec<u8>,
}

/// What is signed: the validated call of `op` on `model` in `region`, with `body` (its
/// SHA-256 `body_sha256`, taken as it arrived).
pub struct Unsigned<'a> {
    pub v: &'a Validated,
    pub region: &'a str,
    pub model: &'a str,
    pub op: Operation,
    pub body: &'a [u8],
    pub body_sha256: &'a [u8; 32],
}

/// Signs the call (the content type and Bedrock headers read from `client_head`).
pub fn sign(shard: &Shard, c: &Unsigned<'_>, client_head: &RequestHead) -> Result<Signed, ProxyError> {
    let (v, body, op) = (c.v, c.body, c.op);
    let content_type: &[u8] = client_head.header("content-type").unwrap_or(b"application/json");
    let target = shard.shared.settings.endpoint.target(c.region);
    let host = target.host_header();
    let mut path = Vec::with_capacity(64 + c.model.len());
    path.extend_from_slice(b"/model/");
    encode_model_segment(c.model, &mut path);
    path.push(b'/');
    path.extend_from_slice(op.path_segment().as_bytes());
    let time = SigningTime::now();
    let mut ph = [0u8; 64];
    crate::util::hex::encode_into(c.body_sha256, &mut ph);
    let ph_str = std::str::from_utf8(&ph).unwrap_or_default();
    let token = v.creds.session_token.as_ref().map(|t| t.expose());
    // Validation refused duplicates and long values already.
    let fwd = forwarded(client_head, op).map_err(|e| ProxyError::new(ErrorCode::BadRequest, e.to_string()))?;
    let accept: &[u8] = match op {
        _ if op.is_stream() => b"application/vnd.amazon.eventstream",
        Operation::Invoke => fwd[ACCEPT].unwrap_or(b"application/json"),
        _ => b"application/json",
    };
    let mut all: [(&str, &[u8]); 4 + FORWARDED.len()] = [("", b""); 4 + FORWARDED.len()];
    all[..3].copy_from_slice(&[
        ("content-type", content_type),
        ("host", host.as_bytes()),
        ("x-amz-date", time.amz_date().as_bytes()),
    ]);
    let mut n = 3;
    if let Some(t) = token {
        all[n] = ("x-amz-security-token", t);
        n += 1;
    }
    for (f, v) in FORWARDED.iter().zip(fwd) {
        if let Some(v) = v {
            all[n] = (f.lower, v);
            n += 1;
        }
    }
    let signed = &all[..n];
    let sreq = SignRequest {
        method: "POST",
        path: &path,
        query: b"",
        headers: signed,
        payload_hash: ph_str,
        region: c.region,
        service: BEDROCK_SERVICE,
        time,
    };
    let auth = shard
        .signer
        .borrow_mut()
        .sign(&v.creds, &sreq)
        .map_err(|e| ProxyError::new(ErrorCode::BadRequest, format!("cannot sign the request: {e}")))?;
    // Room for the whole head and, when small, the body the exchange appends to it: the
    // head holds the session token and the signature, so it must never reallocate (a
    // reallocation would leave a copy in freed memory).
    let token_len = v.creds.session_token.as_ref().map_or(0, |t| t.expose().len());
    let small_body = if body.len() <= crate::http::limits::SMALL_BODY_BYTES {
        body.len()
    } else {
        0
    };
    let forwarded_len: usize = fwd.iter().flatten().map(|v| v.len() + 48).sum();
    let mut head = Vec::with_capacity(
        384 + path.len()
            + host.len()
            + content_type.len()
            + auth.len()
            + token_len
            + USER_AGENT.len()
            + small_body
            + forwarded_len
            + accept.len(),
    );
    let mut w = HeadWriter::request(&mut head, "POST", &path);
    w.header("Host", host.as_bytes())
        .header("Content-Type", content_type)
        .header_u64("Content-Length", body.len() as u64)
        .header("X-Amz-Date", time.amz_date().as_bytes());
    if let Some(t) = &v.creds.session_token {
        w.header("X-Amz-Security-Token", t.expose());
    }
    // `Accept` (signed above when the client chose it) is written once, below.
    for (f, v) in FORWARDED.iter().zip(fwd).skip(ACCEPT + 1) {
        if let Some(v) = v {
            w.header(f.upstream, v);
        }
    }
    w.header("Authorization", auth.as_bytes())
        .header("Accept", accept)
        .header("User-Agent", USER_AGENT.as_bytes())
        .end();
    let mut auth = auth;
    crate::util::wipe::wipe_string(&mut auth);
    Ok(Signed { target, head })
}
