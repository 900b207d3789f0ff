//! ConverseStream relay: the upstream's `application/vnd.amazon.eventstream` body goes
//! to the client as it arrives, as HTTP chunks, never buffered whole. An incremental
//! event-stream decoder reads along (bytes untouched) to find the `metadata` event
//! (usage, metrics), `messageStop` (stop reason) and exception events for the usage row.
//! A client that goes away ends the upstream read at the next piece.

use std::rc::Rc;
use std::time::{Duration, Instant};

use monoio::io::{AsyncReadRent, AsyncWriteRent};

use crate::http::io::write_all;
use super::proxy::apply_price;
use super::stats::ShardStats;
use super::Shard;
use crate::bedrock::eventstream::{Decoder, Frame};
use crate::http::response::HeadWriter;
use crate::pricing::Flag;
use crate::upstream::endpoint::Target;
use crate::upstream::exchange::{Head, StreamBody, UpstreamResponse};
use crate::upstream::connection::UpstreamStream;
use crate::upstream::UpstreamError;
use crate::usage::record::cut_message;
use crate::usage::scan::Usage;
use crate::usage::UsageRecord;

/// Largest error body read from a stream request's non-200 answer.
pub const MAX_STREAM_ERROR_BODY: usize = 1024 * 1024;

/// Where a stream relay stands.
pub struct StreamCtx {
    pub target: Target,
    pub up_started: Instant,
    pub deadline: Instant,
    pub received: Instant,
    pub close: bool,
    /// The request body (the pricing fallback for an unreported tier or latency).
    pub request_body: Vec<u8>,
}

/// Reads a (small) non-streamed answer to a stream request whole.
pub async fn collect(
    head: Head,
    buf: Vec<u8>,
    ttfb: Duration,
    mut conn: UpstreamStream,
    deadline: Instant,
) -> Result<UpstreamResponse, UpstreamError> {
    let mut body = StreamBody::new(&head, buf);
    let mut out = Vec::new();
    while let Some(piece) = body.next(&mut conn, deadline).await? {
        out.extend_from_slice(&piece);
        if out.len() > MAX_STREAM_ERROR_BODY {
            return Err(UpstreamError::Protocol("error body too large"));
        }
    }
    Ok(UpstreamResponse::from_parts(head, out, ttfb, false))
}

/// Reads one decoded frame into the row; returns whether it was the `metadata` event.
fn read_frame(f: &Frame, rec: &mut UsageRecord, usage: &mut Usage, shard: &Shard) -> bool {
    match f.message_type() {
        Some("event") => {
            if let Some(t @ ("metadata" | "messageStop")) = f.event_type() {
                let scanned = shard.scanner.borrow_mut().scan(&f.payload);
                if let Some(u) = scanned {
                    usage.merge(u);
                }
                return t == "metadata";
            }
        }
        Some("exception") => {
            rec.error_type = f.exception_type().map(str::to_string);
            rec.error_message = exception_message(&f.payload);
        }
        Some("error") => {
            rec.error_type = f.error_code().map(str::to_string);
            rec.error_message = f.error_message().map(cut_message);
        }
        _ => {}
    }
    false
}

fn exception_message(payload: &[u8]) -> Option<String> {
    use simd_json::prelude::*;
    let mut p = payload.to_vec();
    let v = simd_json::to_borrowed_value(&mut p).ok()?;
    let m = v.get("message").or_else(|| v.get("Message"))?.as_str()?;
    Some(cut_message(m))
}

/// Relays a 200 event stream; returns whether the client connection may be reused.
pub async fn relay_stream<S: AsyncReadRent + AsyncWriteRent>(
    client: &mut S,
    head: Head,
    buf: Vec<u8>,
    mut conn: UpstreamStream,
    mut rec: UsageRecord,
    shard: &Rc<Shard>,
    ctx: StreamCtx,
) -> bool {
    rec.status = head.status;
    let mut out = Vec::with_capacity(256);
    {
        let mut w = HeadWriter::new(&mut out, head.status);
        w.header(
            "content-type",
            head.content_type
                .as_deref()
                .unwrap_or(b"application/vnd.amazon.eventstream"),
        );
        w.header("x-request-id", rec.request_id.as_bytes());
        if let Some(id) = &head.request_id {
            w.header("x-amzn-requestid", id.as_bytes());
        }
        w.header("transfer-encoding", b"chunked");
        w.finish(ctx.close);
    }
    let mut client_ok = write_all(client, out).await;
    let mut body = StreamBody::new(&head, buf);
    let mut decoder = Decoder::new();
    let mut decoding = true;
    let mut upstream_ok = true;
    let mut bytes: i64 = 0;
    let mut usage = Usage::default();
    let mut saw_metadata = false;
    while client_ok {
        match body.next(&mut conn, ctx.deadline).await {
            Ok(Some(piece)) => {
                if piece.is_empty() {
                    continue;
                }
                bytes += piece.len() as i64;
                if decoding {
                    if decoder.feed(&piece).is_err() {
                        // Keep relaying the bytes; only the read-along stops.
                        decoding = false;
                        rec.error_type.get_or_insert_with(|| "EventStreamDecodeError".into());
                    }
                    while let Some(f) = decoder.next_frame() {
                        saw_metadata |= read_frame(&f, &mut rec, &mut usage, shard);
                    }
                }
                let mut chunk = Vec::with_capacity(piece.len() + 16);
                chunk.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                chunk.extend_from_slice(&piece);
                chunk.extend_from_slice(b"\r\n");
                client_ok = write_all(client, chunk).await;
            }
            Ok(None) => break,
            Err(e) => {
                upstream_ok = false;
                shard.stats.upstream_error(e.kind());
                if e.is_timeout() {
                    ShardStats::inc(&shard.stats.upstream_timeouts);
                }
                rec.error_type = Some(
                    if e.is_timeout() {
                        "UpstreamTimeout"
                    } else {
                        "UpstreamUnavailable"
                    }
                    .into(),
                );
                rec.error_message = Some(cut_message(&format!("stream interrupted: {e}")));
                break;
            }
        }
    }
    if client_ok && upstream_ok {
        client_ok = write_all(client, b"0\r\n\r\n".to_vec()).await;
    }
    if !client_ok {
        rec.error_type = Some("ClientDisconnected".into());
        rec.error_message = Some("the client closed the connection mid-stream".into());
    }
    if upstream_ok && client_ok && body.reusable && decoder.pending_bytes() == 0 {
        shard.pool.put(&ctx.target, conn);
    }
    rec.response_bytes = bytes;
    rec.upstream_latency_ms = Some(ctx.up_started.elapsed().as_secs_f64() * 1000.0);
    rec.apply_usage(&usage);
    let completed = client_ok && upstream_ok;
    if !saw_metadata && !completed {
        rec.cost_flags.set(Flag::StreamCutBeforeUsage);
    }
    apply_price(&mut rec, &usage, &ctx.request_body, shard);
    rec.latency_ms = ctx.received.elapsed().as_secs_f64() * 1000.0;
    shard.stats.count_status(rec.status);
    shard.stats.request_latency.observe_ms(rec.latency_ms);
    if let Some(u) = rec.upstream_latency_ms {
        shard.stats.upstream_latency.observe_ms(u);
    }
    shard.record(rec);
    client_ok && upstream_ok && !ctx.close
}
