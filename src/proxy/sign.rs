//! Stage 4, signing: the upstream request for a validated call — its target, the path
//! (`/model/{percent-encoded id}/{operation}`), the signed headers (`content-type`,
//! `host`, `x-amz-date`, `x-amz-security-token`) with SigV4 over the body's hash, and the
//! head written by the one head writer. The client's head (it holds the caller's secrets)
//! is wiped as soon as what is needed was taken from it.

use super::error::{ErrorCode, ProxyError};
use super::shard::Shard;
use super::validate::Validated;
use crate::bedrock::model::encode_model_segment;
use crate::bedrock::route::Operation;
use crate::http::head::HeadWriter;
use crate::http::request::RequestHead;
use crate::sigv4::signer::payload_hash;
use crate::sigv4::{SignRequest, SigningTime, BEDROCK_SERVICE};
use crate::upstream::endpoint::Target;

/// The `User-Agent` sent upstream.
const USER_AGENT: &str = concat!("llmops-proxy/", env!("CARGO_PKG_VERSION"));

/// A signed upstream request: where it goes and its head (zeroed once written).
pub struct Signed {
    pub target: Target,
    pub head: Vec<u8>,
}

/// Signs `v`'s call of `op` with `body`; wipes `client_head`.
pub fn sign(
    shard: &Shard,
    v: &Validated,
    client_head: &mut RequestHead,
    body: &[u8],
    op: Operation,
) -> Result<Signed, ProxyError> {
    let content_type: Vec<u8> = client_head
        .header("content-type")
        .map_or_else(|| b"application/json".to_vec(), |c| c.to_vec());
    client_head.wipe();
    let target = shard.shared.settings.endpoint.target(&v.region);
    let host = target.host_header();
    let mut path = Vec::with_capacity(64 + v.model_effective.len());
    path.extend_from_slice(b"/model/");
    encode_model_segment(&v.model_effective, &mut path);
    path.push(b'/');
    path.extend_from_slice(op.as_str().as_bytes());
    let time = SigningTime::now();
    let ph = payload_hash(body);
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
    let mut head = Vec::with_capacity(
        384 + path.len() + host.len() + content_type.len() + auth.len() + token_len + USER_AGENT.len() + small_body,
    );
    let mut w = HeadWriter::request(&mut head, "POST", &path);
    w.header("Host", host.as_bytes())
        .header("Content-Type", &content_type)
        .header_u64("Content-Length", body.len() as u64)
        .header("X-Amz-Date", time.amz_date().as_bytes());
    if let Some(t) = &v.creds.session_token {
        w.header("X-Amz-Security-Token", t.expose());
    }
    w.header("Authorization", auth.as_bytes())
        .header(
            "Accept",
            if op == Operation::ConverseStream {
                b"application/vnd.amazon.eventstream"
            } else {
                b"application/json"
            },
        )
        .header("User-Agent", USER_AGENT.as_bytes())
        .end();
    let mut auth = auth;
    zeroize::Zeroize::zeroize(&mut auth);
    Ok(Signed { target, head })
}
