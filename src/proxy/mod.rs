//! The request path of a Bedrock call, as stages read top to bottom in [`handle`]:
//! admission to the usage ledger, validate (`validate`), the optimizer's decision
//! (`route`), check budgets (`budget`), read the body, sign (`sign`), send through the
//! shard's upstream client (and a fallback rule's alternatives, `route`), relay the
//! answer whole (`relay`) or as it streams (`stream`). A [`call::Call`] carries the request through them and records exactly one
//! usage row however it ends. The shard's state is `shard`, its counters `stats`, the
//! proxy's own errors `error`.

pub mod budget;
pub mod call;
pub mod error;
pub mod relay;
pub mod route;
pub mod shard;
pub mod sign;
pub mod stats;
pub mod stream;
pub mod validate;

use std::time::Instant;

use monoio::io::{AsyncReadRent, AsyncWriteRent};

use crate::bedrock::route::Operation;
use crate::http::io::read_body;
use crate::http::request::{BodyFraming, RequestHead};
use crate::upstream::client::Response;
use call::Call;
use error::{ErrorCode, ProxyError};

/// A shard panic injected by `LLMOPS_FAULTS=panic=N` (debug builds; see the ledger's
/// `faults`), so tests can see the process stop cleanly.
#[allow(clippy::panic)]
fn injected_panic() {
    use crate::usage::ledger::faults::{check, Op};
    if check(Op::Panic).is_err() {
        panic!("injected shard panic");
    }
}

/// Handles one Bedrock request; returns whether the connection may carry another.
///
/// The refusals and the streaming relay are boxed: their states are large, and inline
/// they would widen every request's future (and every idle connection's task) to theirs.
pub async fn handle<S: AsyncReadRent + AsyncWriteRent>(
    mut call: Call<'_, S>,
    mut head: RequestHead,
    buf: &mut Vec<u8>,
    op: Operation,
    raw_model: &[u8],
) -> bool {
    // A body the proxy does not read makes the connection unusable for another request.
    let unread_body = head.framing != BodyFraming::None;
    call.http10 = head.minor_version == 0;
    injected_panic();
    if !call.admit() {
        head.wipe();
        let err = ProxyError::new(
            ErrorCode::LedgerUnavailable,
            "the usage ledger is full (disk full or --ledger-max-bytes reached); retry later or on another instance",
        );
        return Box::pin(call.refuse_unrecorded(err)).await;
    }
    let v = match validate::validate(&head, op, raw_model, call.shard, call.peer, &mut call.rec) {
        Ok(v) => {
            call.requested = v.requested;
            v
        }
        Err(err) => {
            // After a 411 the client may still send a body the proxy cannot frame.
            call.close |= unread_body || err.code == ErrorCode::LengthRequired;
            head.wipe();
            let allow: &[(&str, &[u8])] = if err.code == ErrorCode::MethodNotAllowed {
                &[("allow", b"POST")]
            } else {
                &[]
            };
            return Box::pin(call.refuse(err, allow)).await;
        }
    };
    // The optimizer may put the call on another model; budgets see the effective one.
    let plan = route::decide_for(&mut call, op);
    if let Err(over) = budget::check(call.shard, &call.rec) {
        call.close |= unread_body;
        head.wipe();
        call.rec.blocked_by = Some(over.budget);
        return match &over.retry_after {
            Some(s) => Box::pin(call.refuse(over.error, &[("retry-after", s.as_bytes())])).await,
            None => Box::pin(call.refuse(over.error, &[])).await,
        };
    }
    if call.shard.draining() {
        call.close = true;
        head.wipe();
        let err = ProxyError::new(
            ErrorCode::ShuttingDown,
            "the proxy is draining; retry on another instance",
        );
        return Box::pin(call.refuse(err, &[])).await;
    }
    let max_body = call.shard.shared.settings.max_body_bytes;
    // The body's share of the shard's bound on buffered bodies, held until the answer.
    let shard = call.shard;
    let mut charge = shard.inflight.charge();
    let body = match read_body(call.client, &head, buf, max_body, &mut charge).await {
        Ok(b) => b,
        Err(e) => {
            call.close = true;
            head.wipe();
            return Box::pin(call.refuse(ProxyError::from(e), &[])).await;
        }
    };
    call.rec.request_bytes = body.bytes.len() as i64;
    let what = sign::Unsigned {
        v: &v,
        region: &call.rec.region,
        model: &call.rec.model_effective,
        op,
        body: &body.bytes,
        body_sha256: &body.sha256,
    };
    let signed = match sign::sign(call.shard, &what, &head) {
        Ok(s) => s,
        Err(err) => return Box::pin(call.refuse(err, &[])).await,
    };
    // A fallback may sign again: it keeps the client's head and credentials until its
    // last attempt; otherwise they are dropped (zeroed) now.
    let (sha, body) = (body.sha256, body.bytes);
    let retry = match plan {
        Some(plan) => Some(route::Retry {
            plan,
            head,
            v,
            op,
            body_sha256: &sha,
        }),
        None => {
            drop((head, v));
            None
        }
    };
    let up_started = Instant::now();
    let deadline = up_started + call.shard.shared.settings.timeouts.total;
    let streaming = op.is_stream();
    call.rec.attempts = Some(1);
    let mut ex = call
        .shard
        .upstream
        .send(&signed.target, signed.head, body, streaming, deadline)
        .await;
    if let Some(retry) = retry {
        ex = Box::pin(route::fall_back(&mut call, retry, ex, up_started, deadline)).await;
    }
    match ex.outcome {
        Ok(Response::Whole(resp)) => relay::relay(call, resp, up_started, &ex.body).await,
        // Boxed, like the refusals: a stream's relay state is large and a plain Converse
        // (the hot path) should not carry it.
        Ok(Response::Streaming(s)) => Box::pin(stream::relay(call, s, up_started, deadline, ex.body)).await,
        Err(e) => {
            call.rec.upstream_latency_ms = Some(up_started.elapsed().as_secs_f64() * 1000.0);
            let code = if e.is_timeout() {
                ErrorCode::UpstreamTimeout
            } else {
                ErrorCode::UpstreamUnavailable
            };
            Box::pin(call.refuse(ProxyError::new(code, e.to_string()), &[])).await
        }
    }
}
