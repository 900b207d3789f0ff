//! One request/response exchange over an owned connection: the request head and a small
//! body leave in one write (a large body follows, uncopied); the response head is parsed
//! by `http::response` and the body decoded by the one `http::body::Decoder` — a fixed
//! length is read straight into the head's buffer (no copy), chunked is decoded, a body
//! to the end of the connection is read until it closes — whole ([`read_response`]) or
//! piece by piece as it arrives ([`StreamBody`], for ConverseStream). Deadlines: time to
//! first byte and whole request.

use std::time::{Duration, Instant};

use monoio::io::AsyncWriteRentExt;

use super::connection::UpstreamStream;
use super::UpstreamError;
use crate::http::body::Decoder;
use crate::http::io::{read_more_until, ReadError};
use crate::http::limits::{MAX_UPSTREAM_BODY_BYTES, READ_BUFFER_BYTES, SMALL_BODY_BYTES};
use crate::http::response::{parse_response_head, ResponseHead};
use crate::http::HttpError;

/// A complete upstream response.
#[derive(Debug)]
pub struct UpstreamResponse {
    pub head: ResponseHead,
    /// Holds the body at `body_start..`.
    buf: Vec<u8>,
    body_start: usize,
    /// Request written → first response byte.
    pub ttfb: Duration,
    /// Whether the connection may be pooled again.
    pub reusable: bool,
}

impl UpstreamResponse {
    /// A response assembled from a streamed read.
    pub fn from_parts(head: ResponseHead, body: Vec<u8>, ttfb: Duration) -> Self {
        UpstreamResponse {
            head,
            buf: body,
            body_start: 0,
            ttfb,
            reusable: false,
        }
    }

    pub fn body(&self) -> &[u8] {
        &self.buf[self.body_start..]
    }

    /// The owned buffer and where the body starts in it.
    pub fn into_body_parts(self) -> (Vec<u8>, usize) {
        (self.buf, self.body_start)
    }
}

fn io_err(e: ReadError, started: bool) -> UpstreamError {
    match e {
        ReadError::Eof => UpstreamError::Closed { started },
        ReadError::Timeout => {
            if started {
                UpstreamError::Deadline
            } else {
                UpstreamError::FirstByteTimeout
            }
        }
        ReadError::Io(error) => UpstreamError::Io { started, error },
    }
}

fn protocol(e: HttpError) -> UpstreamError {
    match e {
        HttpError::BadResponse(why) => UpstreamError::Protocol(why),
        HttpError::BodyTooLarge => UpstreamError::Protocol("response body too large"),
        HttpError::UnexpectedEof => UpstreamError::Closed { started: true },
        _ => UpstreamError::Protocol("bad response body"),
    }
}

/// What writing a request gave back: when it was sent, the body (so a failed attempt can
/// be retried with it) and, when nothing of the request is known to have been acted on
/// ([`UpstreamError::Unsent`]), the head as signed (for the retry; zeroed by whoever holds
/// it last). A written head is zeroed here.
pub struct Written {
    pub sent: Result<Instant, UpstreamError>,
    pub body: Vec<u8>,
    pub head: Option<Vec<u8>>,
}

/// Writes the request (head, then body).
pub async fn write_request(conn: &mut UpstreamStream, head: Vec<u8>, body: Vec<u8>, deadline: Instant) -> Written {
    let started_at = Instant::now();
    // Small bodies travel in the head's buffer (one write); large ones follow it as their
    // own owned buffer, never copied. (monoio's vectored write-all mishandles partial
    // writes of large buffers, so two plain writes are used instead.)
    let mut head = head;
    let head_len = head.len();
    let small = body.len() <= SMALL_BODY_BYTES;
    if small {
        // The signer sized the head for this: no reallocation leaves a copy behind.
        debug_assert!(
            head.capacity() >= head.len() + body.len(),
            "the signed head would reallocate"
        );
        head.extend_from_slice(&body);
    }
    // The head holds the signature and any session token: zeroed once the request is
    // written, or given back (without the small body) for a retry when it was not.
    let unsent = |mut h: Vec<u8>, error, body| {
        h.truncate(head_len);
        Written {
            sent: Err(UpstreamError::Unsent(error)),
            body,
            head: Some(h),
        }
    };
    let mut head = match monoio::time::timeout_at(deadline.into(), conn.write_all(head)).await {
        Err(_) => {
            return Written {
                sent: Err(UpstreamError::Deadline),
                body,
                head: None,
            }
        }
        Ok((Err(error), h)) => return unsent(h, error, body),
        Ok((Ok(_), h)) => h,
    };
    let body = if small {
        body
    } else {
        match monoio::time::timeout_at(deadline.into(), conn.write_all(body)).await {
            Err(_) => {
                crate::util::wipe::wipe_vec(&mut head);
                return Written {
                    sent: Err(UpstreamError::Deadline),
                    body: Vec::new(),
                    head: None,
                };
            }
            Ok((Err(error), b)) => return unsent(head, error, b),
            Ok((Ok(_), b)) => b,
        }
    };
    crate::util::wipe::wipe_vec(&mut head);
    Written {
        sent: Ok(started_at),
        body,
        head: None,
    }
}

/// Reads a response head (skipping 1xx heads). Returns the head, the buffer (the head
/// followed by whatever body bytes came with it) and the time to first byte.
pub async fn read_head(
    conn: &mut UpstreamStream,
    sent_at: Instant,
    ttfb: Duration,
    deadline: Instant,
) -> Result<(ResponseHead, Vec<u8>, Duration), UpstreamError> {
    let first_deadline = (sent_at + ttfb).min(deadline);
    let mut buf = Vec::with_capacity(READ_BUFFER_BYTES);
    let mut first_byte_at: Option<Instant> = None;
    loop {
        let dl = if first_byte_at.is_some() {
            deadline
        } else {
            first_deadline
        };
        match read_more_until(conn, buf, READ_BUFFER_BYTES, dl).await {
            Ok((_, b)) => buf = b,
            Err((e, _)) => return Err(io_err(e, first_byte_at.is_some())),
        }
        first_byte_at.get_or_insert_with(Instant::now);
        while let Some(h) = parse_response_head(&buf).map_err(protocol)? {
            if (100..200).contains(&h.status) {
                buf.drain(..h.len);
                continue;
            }
            let t = first_byte_at.map_or(Duration::ZERO, |t| t - sent_at);
            return Ok((h, buf, t));
        }
    }
}

/// Reads one whole response.
pub async fn read_response(
    conn: &mut UpstreamStream,
    sent_at: Instant,
    ttfb: Duration,
    deadline: Instant,
) -> Result<UpstreamResponse, UpstreamError> {
    let (head, mut buf, ttfb) = read_head(conn, sent_at, ttfb, deadline).await?;
    let mut dec = Decoder::response(head.framing);
    if let Some(n) = dec.remaining() {
        // A fixed length: read the rest straight into the buffer after the head.
        if n > MAX_UPSTREAM_BODY_BYTES as u64 {
            return Err(UpstreamError::Protocol("response body too large"));
        }
        let total = head.len + n as usize;
        if buf.capacity() < total {
            buf.reserve_exact(total - buf.len());
        }
        while buf.len() < total {
            let want = total - buf.len();
            match read_more_until(conn, buf, want, deadline).await {
                Ok((_, b)) => buf = b,
                Err((e, _)) => return Err(io_err(e, true)),
            }
        }
        let clean = buf.len() == total;
        buf.truncate(total);
        let reusable = clean && !head.close;
        let body_start = head.len;
        return Ok(UpstreamResponse {
            head,
            buf,
            body_start,
            ttfb,
            reusable,
        });
    }
    // Chunked, or to the end of the connection: decoded into a body buffer.
    let mut body = Vec::with_capacity(buf.len() - head.len);
    let used = dec
        .decode(&buf[head.len..], &mut body, MAX_UPSTREAM_BODY_BYTES)
        .map_err(protocol)?;
    let mut trailing = used < buf.len() - head.len;
    let mut scratch = buf;
    while !dec.is_done() {
        scratch.clear();
        match read_more_until(conn, scratch, READ_BUFFER_BYTES, deadline).await {
            Ok((_, s)) => scratch = s,
            Err((ReadError::Eof, _)) => {
                dec.end_of_stream().map_err(protocol)?;
                break;
            }
            Err((e, _)) => return Err(io_err(e, true)),
        }
        let used = dec
            .decode(&scratch, &mut body, MAX_UPSTREAM_BODY_BYTES)
            .map_err(protocol)?;
        // Bytes after the response: the connection is not clean.
        trailing |= used < scratch.len();
    }
    let reusable = !trailing && !head.close;
    Ok(UpstreamResponse {
        head,
        buf: body,
        body_start: 0,
        ttfb,
        reusable,
    })
}

/// A response body read piece by piece as it arrives (ConverseStream): every piece is
/// handed on at once, nothing is accumulated.
pub struct StreamBody {
    dec: Decoder,
    leftover: Vec<u8>,
    close: bool,
    /// Whether the connection ended cleanly and may be pooled again.
    pub reusable: bool,
}

impl StreamBody {
    /// Starts reading the body of `head`; `buf` is what [`read_head`] returned.
    pub fn new(head: &ResponseHead, mut buf: Vec<u8>) -> Self {
        buf.drain(..head.len);
        let dec = Decoder::response(head.framing);
        let reusable = !head.close && dec.is_done();
        StreamBody {
            dec,
            leftover: buf,
            close: head.close,
            reusable,
        }
    }

    fn take(&mut self, input: Vec<u8>) -> Result<Vec<u8>, UpstreamError> {
        let (out, trailing) = self
            .dec
            .decode_owned(input, MAX_UPSTREAM_BODY_BYTES)
            .map_err(protocol)?;
        if self.dec.is_done() {
            self.reusable = !trailing && !self.close;
        }
        Ok(out)
    }

    /// The next piece of body (possibly empty), or `None` at the end.
    pub async fn next(
        &mut self,
        conn: &mut UpstreamStream,
        deadline: Instant,
    ) -> Result<Option<Vec<u8>>, UpstreamError> {
        if !self.leftover.is_empty() {
            let first = std::mem::take(&mut self.leftover);
            return self.take(first).map(Some);
        }
        if self.dec.is_done() {
            return Ok(None);
        }
        match read_more_until(conn, Vec::with_capacity(READ_BUFFER_BYTES), READ_BUFFER_BYTES, deadline).await {
            Ok((_, b)) => self.take(b).map(Some),
            Err((ReadError::Eof, _)) => {
                self.dec.end_of_stream().map_err(protocol)?;
                Ok(None)
            }
            Err((e, _)) => Err(io_err(e, true)),
        }
    }
}
