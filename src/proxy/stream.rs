//! Stage 5 for ConverseStream and InvokeModelWithResponseStream: the upstream's
//! `application/vnd.amazon.eventstream` body goes to the client as it arrives, as HTTP
//! chunks, never buffered whole. An incremental event-stream decoder reads along (bytes
//! untouched) to find the usage for the row: ConverseStream's `metadata` event (usage,
//! metrics, tier) and `messageStop` (stop reason); InvokeModel's `chunk` events (their
//! base64 JSON: `usage::invoke`), the last of which carries Bedrock's invocation metrics;
//! and exception events.
//! A client that goes away ends the upstream read at the next piece. A non-200 answer to
//! a stream request is a small JSON body: it is read whole and relayed as such.

use std::time::Instant;

use monoio::io::{AsyncReadRent, AsyncWriteRent};

use super::call::Call;
use super::error::{ErrorCode, ProxyError};
use super::shard::Shard;
use crate::bedrock::error::aws_message;
use crate::bedrock::eventstream::{Decoder, Frame};
use crate::http::head::HeadWriter;
use crate::http::io::write_all;
use crate::pricing::Flag;
use crate::upstream::client::Streaming;
use crate::usage::record::{cut_message, MAX_ERROR_MESSAGE_CHARS};
use crate::usage::scan::Usage;
use crate::usage::UsageRecord;

/// Reads one decoded frame into the row; returns whether it carried the stream's final
/// usage (ConverseStream's `metadata` event, InvokeModel's invocation metrics).
fn read_frame(f: &Frame, rec: &mut UsageRecord, usage: &mut Usage, shard: &Shard) -> bool {
    match f.message_type() {
        Some("event") => match f.event_type() {
            Some(t @ ("metadata" | "messageStop")) => {
                let scanned = shard.scanner.borrow_mut().scan(&f.payload);
                if let Some(u) = scanned {
                    usage.merge(u);
                }
                return t == "metadata";
            }
            Some("chunk") => {
                let scanned = shard.scanner.borrow_mut().scan_chunk(&f.payload);
                if let Some((u, last)) = scanned {
                    usage.merge(u);
                    return last;
                }
            }
            _ => {}
        },
        Some("exception") => {
            rec.error_type = f.exception_type().map(str::to_string);
            rec.error_message = aws_message(&f.payload, MAX_ERROR_MESSAGE_CHARS);
        }
        Some("error") => {
            rec.error_type = f.error_code().map(str::to_string);
            rec.error_message = f.error_message().map(|m| cut_message(&crate::bedrock::error::scrub(m)));
        }
        _ => {}
    }
    false
}

/// The response head of a relayed stream: chunked toward the client, or for an HTTP/1.0
/// client (`chunked = false`) delimited by the connection's end.
fn stream_head(s: &Streaming, rec: &UsageRecord, close: bool, chunked: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut w = HeadWriter::new(&mut out, s.head.status);
    w.header(
        "content-type",
        s.head
            .content_type
            .as_deref()
            .unwrap_or(b"application/vnd.amazon.eventstream"),
    );
    w.header("x-request-id", rec.request_id.as_bytes());
    super::route::route_headers(rec, &mut w);
    if let Some(id) = &s.head.request_id {
        w.header("x-amzn-requestid", id.as_bytes());
    }
    for (name, value) in &s.head.bedrock {
        w.header(name, value);
    }
    if chunked {
        w.header("transfer-encoding", b"chunked");
    }
    w.finish(close);
    out
}

/// One HTTP chunk holding `piece`.
fn chunk(piece: &[u8]) -> Vec<u8> {
    let mut c = Vec::with_capacity(piece.len() + 16);
    c.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
    c.extend_from_slice(piece);
    c.extend_from_slice(b"\r\n");
    c
}

/// The event-stream decoder reading along the relayed bytes.
struct ReadAlong {
    decoder: Decoder,
    /// False once the stream stopped decoding (the bytes are still relayed).
    decoding: bool,
    usage: Usage,
    saw_metadata: bool,
}

impl Default for ReadAlong {
    fn default() -> Self {
        ReadAlong {
            decoder: Decoder::new(),
            decoding: true,
            usage: Usage::default(),
            saw_metadata: false,
        }
    }
}

impl ReadAlong {
    fn feed(&mut self, piece: &[u8], rec: &mut UsageRecord, shard: &Shard) {
        if !self.decoding {
            return;
        }
        if self.decoder.feed(piece).is_err() {
            self.decoding = false;
            rec.error_type.get_or_insert_with(|| "EventStreamDecodeError".into());
        }
        while let Some(f) = self.decoder.next_frame() {
            self.saw_metadata |= read_frame(&f, rec, &mut self.usage, shard);
        }
    }
}

/// Relays a stream request's answer and records the row.
pub async fn relay<S: AsyncReadRent + AsyncWriteRent>(
    mut call: Call<'_, S>,
    mut s: Streaming,
    up_started: Instant,
    deadline: Instant,
    request_body: Vec<u8>,
) -> bool {
    call.rec.upstream_ttfb_ms = Some(s.ttfb.as_secs_f64() * 1000.0);
    call.rec.upstream_request_id.clone_from(&s.head.request_id);
    if s.head.status != 200 {
        return match s.collect(deadline).await {
            Ok(r) => super::relay::relay(call, r, up_started, &request_body).await,
            Err(e) => {
                let err = ProxyError::new(ErrorCode::UpstreamUnavailable, e.to_string());
                call.refuse(err, &[]).await
            }
        };
    }
    call.rec.status = s.head.status;
    // HTTP/1.0 has no chunked encoding: the stream ends when the connection closes.
    let chunked = !call.http10;
    call.close |= !chunked;
    let head = stream_head(&s, &call.rec, call.close, chunked);
    let mut client_ok = write_all(call.client, head).await;
    let mut read = ReadAlong::default();
    let mut upstream_ok = true;
    let mut bytes: i64 = 0;
    while client_ok {
        match s.body.next(&mut s.conn, deadline).await {
            Ok(Some(piece)) => {
                if piece.is_empty() {
                    continue;
                }
                bytes += piece.len() as i64;
                read.feed(&piece, &mut call.rec, call.shard);
                client_ok = if chunked {
                    write_all(call.client, chunk(&piece)).await
                } else {
                    write_all(call.client, piece).await
                };
            }
            Ok(None) => break,
            Err(e) => {
                upstream_ok = false;
                call.shard.upstream.counters.failed(&e);
                call.rec.error_type = Some(
                    if e.is_timeout() {
                        "UpstreamTimeout"
                    } else {
                        "UpstreamUnavailable"
                    }
                    .into(),
                );
                call.rec.error_message = Some(cut_message(&format!("stream interrupted: {e}")));
                break;
            }
        }
    }
    // The row is complete before the stream's last chunk: journal it, then end the stream.
    let relayed = client_ok && upstream_ok;
    if !client_ok {
        call.rec.error_type = Some("ClientDisconnected".into());
        call.rec.error_message = Some("the client closed the connection mid-stream".into());
    }
    call.rec.response_bytes = bytes;
    call.rec.upstream_latency_ms = Some(up_started.elapsed().as_secs_f64() * 1000.0);
    if call.op.is_invoke() {
        crate::usage::invoke::fill_total(&mut read.usage);
    }
    call.rec.apply_usage(&read.usage);
    if !read.saw_metadata && !relayed {
        call.rec.cost_flags.set(Flag::StreamCutBeforeUsage);
    }
    call.price(&read.usage, &request_body);
    call.commit();
    if relayed && chunked {
        client_ok = write_all(call.client, b"0\r\n\r\n".to_vec()).await;
    }
    let clean = upstream_ok && client_ok && read.decoder.pending_bytes() == 0;
    call.shard.upstream.finish_stream(s, clean);
    call.finish(client_ok && upstream_ok)
}
