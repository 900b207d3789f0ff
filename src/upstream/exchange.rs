//! One request/response exchange with the upstream over an owned connection: the request
//! head and a small body leave in one write (a large body follows, uncopied); the response
//! head is parsed with httparse and the body is read by Content-Length (into the same
//! buffer, no copy), chunked (decoded), or to end of stream — whole ([`exchange`]) or
//! piece by piece as it arrives ([`StreamBody`], for ConverseStream). Deadlines: time to
//! first byte and whole request.

use std::time::{Duration, Instant};

use monoio::io::AsyncWriteRentExt;
use zeroize::Zeroize;

use super::connection::UpstreamStream;
use super::UpstreamError;
use crate::http::body::ChunkedDecoder;
use crate::http::limits::{MAX_HEADERS, MAX_HEAD_BYTES, MAX_UPSTREAM_BODY_BYTES, READ_BUFFER_BYTES, SMALL_BODY_BYTES};
use crate::http::io::{read_more_until, ReadError};

/// A complete upstream response.
#[derive(Debug)]
pub struct UpstreamResponse {
    pub status: u16,
    pub content_type: Option<Vec<u8>>,
    pub request_id: Option<String>,
    /// `x-amzn-errortype`, as sent.
    pub error_type_header: Option<Vec<u8>>,
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
    pub fn from_parts(head: Head, body: Vec<u8>, ttfb: Duration, reusable: bool) -> Self {
        finish(head, body, 0, ttfb, reusable)
    }

    pub fn body(&self) -> &[u8] {
        &self.buf[self.body_start..]
    }

    /// The owned buffer and where the body starts in it.
    pub fn into_body_parts(self) -> (Vec<u8>, usize) {
        (self.buf, self.body_start)
    }
}

/// Parsed response head.
pub struct Head {
    pub status: u16,
    pub len: usize,
    pub content_length: Option<u64>,
    pub chunked: bool,
    pub close: bool,
    pub content_type: Option<Vec<u8>>,
    pub request_id: Option<String>,
    pub error_type: Option<Vec<u8>>,
}

fn parse_head(buf: &[u8]) -> Result<Option<Head>, UpstreamError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let n = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > MAX_HEAD_BYTES {
                return Err(UpstreamError::Protocol("response head too large"));
            }
            return Ok(None);
        }
        Err(_) => return Err(UpstreamError::Protocol("malformed response head")),
    };
    let mut h = Head {
        status: resp.code.unwrap_or(0),
        len: n,
        content_length: None,
        chunked: false,
        close: resp.version == Some(0),
        content_type: None,
        request_id: None,
        error_type: None,
    };
    for hd in resp.headers.iter() {
        let v = hd.value;
        if hd.name.eq_ignore_ascii_case("content-length") {
            let s = std::str::from_utf8(v).ok().map(str::trim);
            let n = s
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or(UpstreamError::Protocol("bad Content-Length"))?;
            if h.content_length.is_some_and(|p| p != n) {
                return Err(UpstreamError::Protocol("conflicting Content-Length"));
            }
            h.content_length = Some(n);
        } else if hd.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = v.rsplit(|&b| b == b',').next().unwrap_or(b"");
            if String::from_utf8_lossy(last).trim().eq_ignore_ascii_case("chunked") {
                h.chunked = true;
            } else {
                return Err(UpstreamError::Protocol("unsupported Transfer-Encoding"));
            }
        } else if hd.name.eq_ignore_ascii_case("connection") {
            if String::from_utf8_lossy(v)
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"))
            {
                h.close = true;
            }
        } else if hd.name.eq_ignore_ascii_case("content-type") {
            h.content_type = Some(v.to_vec());
        } else if hd.name.eq_ignore_ascii_case("x-amzn-requestid") {
            h.request_id = std::str::from_utf8(v).ok().map(|s| s.chars().take(128).collect());
        } else if hd.name.eq_ignore_ascii_case("x-amzn-errortype") {
            h.error_type = Some(v.to_vec());
        }
    }
    if h.chunked {
        // Transfer-Encoding wins over Content-Length (RFC 9112 §6.3); never reuse such a connection.
        if h.content_length.is_some() {
            h.close = true;
            h.content_length = None;
        }
    }
    Ok(Some(h))
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

/// Writes the request (head, then body). Returns the body back, so that a failed attempt
/// can be retried with it, and the time the request was sent.
pub async fn write_request(
    conn: &mut UpstreamStream,
    head: Vec<u8>,
    body: Vec<u8>,
    deadline: Instant,
) -> (Result<Instant, UpstreamError>, Vec<u8>) {
    let started_at = Instant::now();
    // Small bodies travel in the head's buffer (one write); large ones follow it as their
    // own owned buffer, never copied. (monoio's vectored write-all mishandles partial
    // writes of large buffers, so two plain writes are used instead.)
    let mut head = head;
    let small = body.len() <= SMALL_BODY_BYTES;
    if small {
        head.extend_from_slice(&body);
    }
    // The head holds the signature and any session token: zero it once written.
    match monoio::time::timeout_at(deadline.into(), conn.write_all(head)).await {
        Err(_) => return (Err(UpstreamError::Deadline), body),
        Ok((res, mut h)) => {
            h.zeroize();
            if let Err(error) = res {
                return (Err(UpstreamError::Io { started: false, error }), body);
            }
        }
    }
    let body = if small {
        body
    } else {
        match monoio::time::timeout_at(deadline.into(), conn.write_all(body)).await {
            Err(_) => return (Err(UpstreamError::Deadline), Vec::new()),
            Ok((Err(error), b)) => return (Err(UpstreamError::Io { started: false, error }), b),
            Ok((Ok(_), b)) => b,
        }
    };
    (Ok(started_at), body)
}

/// Writes the request and reads a full response. Returns the request body back (so a
/// failed attempt can be retried with it) together with the result.
pub async fn exchange(
    conn: &mut UpstreamStream,
    head: Vec<u8>,
    body: Vec<u8>,
    ttfb: Duration,
    deadline: Instant,
) -> (Result<UpstreamResponse, UpstreamError>, Vec<u8>) {
    let (sent, body) = write_request(conn, head, body, deadline).await;
    let started_at = match sent {
        Ok(t) => t,
        Err(e) => return (Err(e), body),
    };
    let res = read_response(conn, started_at, ttfb, deadline).await;
    (res, body)
}

/// Reads a response head (skipping 1xx heads). Returns the head, the buffer (the head
/// followed by whatever body bytes came with it) and the time to first byte.
pub async fn read_head(
    conn: &mut UpstreamStream,
    sent_at: Instant,
    ttfb: Duration,
    deadline: Instant,
) -> Result<(Head, Vec<u8>, Duration), UpstreamError> {
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
        while let Some(h) = parse_head(&buf)? {
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
    let (head, mut buf, ttfb_measured) = read_head(conn, sent_at, ttfb, deadline).await?;
    let no_body = h_no_body(head.status);
    let (buf, body_start, reusable) = if no_body {
        buf.truncate(head.len);
        (buf, head.len, !head.close)
    } else if head.chunked {
        let mut dec = ChunkedDecoder::new();
        let mut body = Vec::with_capacity(buf.len() - head.len);
        let mut used = dec
            .feed(&buf[head.len..], &mut body, MAX_UPSTREAM_BODY_BYTES)
            .map_err(|_| UpstreamError::Protocol("bad chunked body"))?;
        let mut scratch = Vec::with_capacity(READ_BUFFER_BYTES);
        while !dec.is_done() {
            let _ = used;
            scratch.clear();
            match read_more_until(conn, scratch, READ_BUFFER_BYTES, deadline).await {
                Ok((_, s)) => scratch = s,
                Err((e, _)) => return Err(io_err(e, true)),
            }
            used = dec
                .feed(&scratch, &mut body, MAX_UPSTREAM_BODY_BYTES)
                .map_err(|_| UpstreamError::Protocol("bad chunked body"))?;
            if used < scratch.len() && dec.is_done() {
                // Bytes after the response: the connection is not clean.
                return Ok(finish(head, body, 0, ttfb_measured, false));
            }
        }
        (body, 0, !head.close)
    } else if let Some(cl) = head.content_length {
        let total = head.len as u64 + cl;
        if cl as usize > MAX_UPSTREAM_BODY_BYTES {
            return Err(UpstreamError::Protocol("response body too large"));
        }
        let total = total as usize;
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
        (buf, head.len, clean && !head.close)
    } else {
        // Delimited by close.
        loop {
            if buf.len() - head.len > MAX_UPSTREAM_BODY_BYTES {
                return Err(UpstreamError::Protocol("response body too large"));
            }
            match read_more_until(conn, buf, READ_BUFFER_BYTES, deadline).await {
                Ok((_, b)) => buf = b,
                Err((ReadError::Eof, Some(b))) => {
                    buf = b;
                    break;
                }
                Err((e, _)) => return Err(io_err(e, true)),
            }
        }
        (buf, head.len, false)
    };
    Ok(finish(head, buf, body_start, ttfb_measured, reusable))
}

fn h_no_body(status: u16) -> bool {
    status == 204 || status == 304
}

fn finish(head: Head, buf: Vec<u8>, body_start: usize, ttfb: Duration, reusable: bool) -> UpstreamResponse {
    UpstreamResponse {
        status: head.status,
        content_type: head.content_type,
        request_id: head.request_id,
        error_type_header: head.error_type,
        buf,
        body_start,
        ttfb,
        reusable,
    }
}

/// How a streamed body is delimited.
enum StreamFraming {
    Length(u64),
    Chunked(ChunkedDecoder),
    Close,
}

/// A response body read piece by piece as it arrives (ConverseStream): every piece is
/// handed on at once, nothing is accumulated.
pub struct StreamBody {
    framing: StreamFraming,
    leftover: Vec<u8>,
    done: bool,
    /// Whether the connection ended cleanly and may be pooled again.
    pub reusable: bool,
}

impl StreamBody {
    /// Starts reading the body of `head`; `buf` is what [`read_head`] returned.
    pub fn new(head: &Head, mut buf: Vec<u8>) -> Self {
        buf.drain(..head.len);
        let framing = if h_no_body(head.status) {
            StreamFraming::Length(0)
        } else if head.chunked {
            StreamFraming::Chunked(ChunkedDecoder::new())
        } else if let Some(n) = head.content_length {
            StreamFraming::Length(n)
        } else {
            StreamFraming::Close
        };
        let done = matches!(framing, StreamFraming::Length(0));
        StreamBody {
            framing,
            leftover: buf,
            done,
            reusable: !head.close && done,
        }
    }

    fn take(&mut self, input: Vec<u8>) -> Result<Vec<u8>, UpstreamError> {
        match &mut self.framing {
            StreamFraming::Close => Ok(input),
            StreamFraming::Length(left) => {
                let n = (*left as usize).min(input.len());
                *left -= n as u64;
                if *left == 0 {
                    self.done = true;
                    self.reusable = n == input.len();
                }
                let mut input = input;
                input.truncate(n);
                Ok(input)
            }
            StreamFraming::Chunked(dec) => {
                let mut out = Vec::with_capacity(input.len());
                let used = dec
                    .feed(&input, &mut out, MAX_UPSTREAM_BODY_BYTES)
                    .map_err(|_| UpstreamError::Protocol("bad chunked body"))?;
                if dec.is_done() {
                    self.done = true;
                    self.reusable = used == input.len();
                }
                Ok(out)
            }
        }
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
        if self.done {
            return Ok(None);
        }
        match read_more_until(conn, Vec::with_capacity(READ_BUFFER_BYTES), READ_BUFFER_BYTES, deadline).await {
            Ok((_, b)) => self.take(b).map(Some),
            Err((ReadError::Eof, _)) if matches!(self.framing, StreamFraming::Close) => {
                self.done = true;
                Ok(None)
            }
            Err((e, _)) => Err(io_err(e, true)),
        }
    }
}
