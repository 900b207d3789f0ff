//! Stage 5, the whole-body relay: the upstream's answer goes to the client byte for byte,
//! with `x-request-id`, Bedrock's own `x-amzn-bedrock-*` headers and, for successes, the
//! exact cost and token counts. A 2xx body is scanned for usage (an InvokeModel answer's
//! headers first: `usage::invoke`) and priced; an error's AWS type and message are recorded; an AWS
//! authentication failure becomes the proxy's own 401 (AWS's message can echo the
//! session token, so it is never relayed).

use std::time::Instant;

use monoio::io::{AsyncReadRent, AsyncWriteRent};

use super::call::Call;
use super::error::{error_response, ErrorCode, ProxyError};
use crate::bedrock::error::{aws_message, error_type_from_header, error_type_of, is_auth_error};
use crate::http::head::HeadWriter;
use crate::http::limits::SMALL_BODY_BYTES;
use crate::upstream::exchange::UpstreamResponse;
use crate::usage::invoke;
use crate::usage::record::{cut_message, format_usd, MAX_ERROR_MESSAGE_CHARS};

/// Relays a whole upstream answer and records the row.
pub async fn relay<S: AsyncReadRent + AsyncWriteRent>(
    mut call: Call<'_, S>,
    resp: UpstreamResponse,
    up_started: Instant,
    request_body: &[u8],
) -> bool {
    let rec = &mut call.rec;
    rec.upstream_latency_ms = Some(up_started.elapsed().as_secs_f64() * 1000.0);
    rec.upstream_ttfb_ms = Some(resp.ttfb.as_secs_f64() * 1000.0);
    rec.upstream_request_id.clone_from(&resp.head.request_id);
    let status = resp.head.status;
    // The error type from `x-amzn-errortype`, else from the body (`__type`): an auth
    // failure is recognised, and its message replaced, with or without the header.
    let error_type = if status >= 400 {
        error_type_of(resp.head.error_type.as_deref(), resp.body())
    } else {
        resp.head
            .error_type
            .as_deref()
            .and_then(error_type_from_header)
            .map(str::to_string)
    };
    if status >= 400 {
        if let Some(t) = error_type.as_deref().filter(|t| is_auth_error(t)) {
            let err = ProxyError::new(
                ErrorCode::AwsAuthenticationFailed,
                format!("AWS refused the credentials: {t}. Check X-Aws-Access-Key-Id, X-Aws-Secret-Access-Key and X-Aws-Session-Token"),
            );
            rec.error_type = Some(t.to_string());
            rec.error_message = Some(cut_message(&err.message));
            rec.status = err.status();
            let out = error_response(&err, &rec.request_id, call.close, &[]);
            return call.respond(out, None).await;
        }
    }
    // For successes: the exact cost and the token counts, as headers.
    let mut cost: Option<String> = None;
    let mut tokens: [(&str, Option<i64>); 2] = [("x-llmops-input-tokens", None), ("x-llmops-output-tokens", None)];
    if (200..300).contains(&status) {
        let usage = if call.op.is_invoke() {
            let mut u = call
                .shard
                .scanner
                .borrow_mut()
                .scan_invoke(resp.body())
                .unwrap_or_default();
            u.merge(invoke::header_usage(&resp.head));
            invoke::fill_total(&mut u);
            u
        } else {
            call.shard.scanner.borrow_mut().scan(resp.body()).unwrap_or_default()
        };
        call.rec.apply_usage(&usage);
        call.price(&usage, request_body);
        cost = call.rec.cost_pico_usd.map(format_usd);
        tokens[0].1 = call.rec.input_tokens;
        tokens[1].1 = call.rec.output_tokens;
    } else {
        call.rec.error_type = error_type.or_else(|| Some(format!("HTTP{status}")));
        call.rec.error_message = aws_message(resp.body(), MAX_ERROR_MESSAGE_CHARS);
    }
    call.rec.status = status;
    let body_len = resp.body().len();
    call.rec.response_bytes = body_len as i64;
    let mut out = Vec::with_capacity(512 + if body_len <= SMALL_BODY_BYTES { body_len } else { 0 });
    {
        let mut w = HeadWriter::new(&mut out, status);
        if let Some(ct) = &resp.head.content_type {
            w.header("content-type", ct);
        }
        w.header("x-request-id", call.rec.request_id.as_bytes());
        super::route::route_headers(&call.rec, &mut w);
        if let Some(id) = &resp.head.request_id {
            w.header("x-amzn-requestid", id.as_bytes());
        }
        if let Some(et) = &resp.head.error_type {
            w.header("x-amzn-errortype", et);
        }
        for (name, value) in &resp.head.bedrock {
            w.header(name, value);
        }
        if let Some(c) = &cost {
            w.header("x-llmops-cost-usd", c.as_bytes());
        }
        let mut num = crate::util::num::I64Buf::default();
        for (k, v) in tokens {
            if let Some(n) = v {
                w.header(k, num.format(n).as_bytes());
            }
        }
        w.header_u64("content-length", body_len as u64).finish(call.close);
    }
    let (buf, start) = resp.into_body_parts();
    if body_len <= SMALL_BODY_BYTES {
        out.extend_from_slice(&buf[start..]);
        call.respond(out, None).await
    } else {
        call.respond(out, Some((buf, start))).await
    }
}
