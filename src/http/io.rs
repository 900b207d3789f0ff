//! Connection-level I/O over monoio's owned-buffer (rent) traits, shared by the proxy,
//! its upstream side and the mock: read into a `Vec`'s spare capacity with and without a
//! deadline, wait for and parse the next request head (idle and header timeouts,
//! drain-aware), read a body by its framing (with `100 Continue` when asked), and write
//! under a deadline.

use std::time::Instant;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};

use super::body::Decoder;
use super::drain::DrainSignal;
use super::limits::{
    BODY_READ_TIMEOUT, BODY_TOTAL_TIMEOUT, CLIENT_WRITE_TIMEOUT, HEADER_READ_TIMEOUT, IDLE_TIMEOUT, READ_BUFFER_BYTES,
};
use super::request::{parse_head, RequestHead};
use super::HttpError;

/// Why a read did not produce bytes.
#[derive(Debug)]
pub(crate) enum ReadError {
    Eof,
    Timeout,
    Io(std::io::Error),
}

/// Appends at least one byte read from `s` to `buf` (growing it by `spare` if full).
pub(crate) async fn read_more<S: AsyncReadRent>(
    s: &mut S,
    mut buf: Vec<u8>,
    spare: usize,
) -> (Result<usize, ReadError>, Vec<u8>) {
    if buf.capacity() - buf.len() < spare.max(1) {
        buf.reserve(spare.max(1));
    }
    let len = buf.len();
    let cap = buf.capacity();
    let (res, slice) = s.read(buf.slice_mut(len..cap)).await;
    let buf = slice.into_inner();
    match res {
        Ok(0) => (Err(ReadError::Eof), buf),
        Ok(n) => (Ok(n), buf),
        Err(e) => (Err(ReadError::Io(e)), buf),
    }
}

/// [`read_more`] that gives up at `deadline`. On timeout the buffer is lost with the
/// cancelled operation, so the caller must close the connection.
pub(crate) async fn read_more_until<S: AsyncReadRent>(
    s: &mut S,
    buf: Vec<u8>,
    spare: usize,
    deadline: Instant,
) -> Result<(usize, Vec<u8>), (ReadError, Option<Vec<u8>>)> {
    match monoio::time::timeout_at(deadline.into(), read_more(s, buf, spare)).await {
        Err(_) => Err((ReadError::Timeout, None)),
        Ok((Ok(n), buf)) => Ok((n, buf)),
        Ok((Err(e), buf)) => Err((e, Some(buf))),
    }
}

/// What waiting for the next request produced.
pub(crate) enum NextHead {
    /// A head; the buffer holds what followed it.
    Head(RequestHead, Vec<u8>),
    /// The client went away, stayed idle too long, or the server is draining.
    Closed,
    /// The head was malformed: answer and close.
    Invalid(HttpError),
}

/// Waits for and parses the next request head on a keep-alive connection. While idle
/// (nothing buffered) the wait also ends when `drain` fires or after `IDLE_TIMEOUT`;
/// once a head has started, it must complete within `HEADER_READ_TIMEOUT`.
pub(crate) async fn next_head<S: AsyncReadRent>(
    stream: &mut S,
    mut buf: Vec<u8>,
    drain: &DrainSignal,
    conn_id: u64,
) -> NextHead {
    let mut deadline: Option<Instant> = None;
    loop {
        if !buf.is_empty() {
            match parse_head(&buf) {
                Ok(Some((h, n))) => {
                    buf.drain(..n);
                    return NextHead::Head(h, buf);
                }
                Ok(None) => {}
                Err(e) => return NextHead::Invalid(e),
            }
            let dl = *deadline.get_or_insert_with(|| Instant::now() + HEADER_READ_TIMEOUT);
            match read_more_until(stream, buf, READ_BUFFER_BYTES, dl).await {
                Ok((_, b)) => buf = b,
                Err(_) => return NextHead::Closed,
            }
        } else {
            if drain.is_fired() {
                return NextHead::Closed;
            }
            // Idle: the read races the drain signal. If draining wins, the read is
            // cancelled and the connection closed, as any server closing an idle
            // keep-alive connection does.
            let idle = async {
                monoio::select! {
                    r = read_more(stream, buf, READ_BUFFER_BYTES) => Some(r),
                    _ = drain.wait(conn_id) => None,
                }
            };
            match monoio::time::timeout(IDLE_TIMEOUT, idle).await {
                Ok(Some((Ok(_), b))) => buf = b,
                _ => return NextHead::Closed,
            }
        }
    }
}

/// Reads into `buf` up to exactly `limit` bytes in total (never past it, so a pipelined
/// request after the body stays in the socket).
async fn read_bounded<S: AsyncReadRent>(
    s: &mut S,
    mut buf: Vec<u8>,
    limit: usize,
    deadline: Instant,
) -> Result<Vec<u8>, ReadError> {
    if buf.capacity() < limit {
        buf.reserve_exact(limit - buf.len());
    }
    let len = buf.len();
    let fut = s.read(buf.slice_mut(len..limit));
    match monoio::time::timeout_at(deadline.into(), fut).await {
        Err(_) => Err(ReadError::Timeout),
        Ok((Ok(0), _)) => Err(ReadError::Eof),
        Ok((Ok(_), slice)) => Ok(slice.into_inner()),
        Ok((Err(e), _)) => Err(ReadError::Io(e)),
    }
}

/// Reads the request body as framed by `head`. `buf` holds bytes already read after the
/// head; on return it holds whatever followed the body. A fixed-length body is read
/// straight into the body buffer; a chunked one through the decoder.
pub(crate) async fn read_body<S: AsyncReadRent + AsyncWriteRent>(
    stream: &mut S,
    head: &RequestHead,
    buf: &mut Vec<u8>,
    max: usize,
) -> Result<Vec<u8>, HttpError> {
    let body_deadline = Instant::now() + BODY_TOTAL_TIMEOUT;
    let mut dec = Decoder::request(head.framing);
    if let Some(n) = dec.remaining() {
        if n > max as u64 {
            return Err(HttpError::BodyTooLarge);
        }
    }
    let mut body = Vec::with_capacity(dec.remaining().map_or(0, |n| n as usize));
    let used = dec.decode(buf, &mut body, max)?;
    buf.drain(..used);
    if !dec.is_done() && head.expect_continue && body.is_empty() {
        send_continue(stream).await?;
    }
    while !dec.is_done() {
        let deadline = (Instant::now() + BODY_READ_TIMEOUT).min(body_deadline);
        if let Some(left) = dec.remaining() {
            let before = body.len();
            body = read_bounded(stream, body, before + left as usize, deadline)
                .await
                .map_err(|_| HttpError::UnexpectedEof)?;
            dec.consumed((body.len() - before) as u64);
        } else {
            match read_more_until(stream, std::mem::take(buf), READ_BUFFER_BYTES, deadline).await {
                Ok((_, b)) => *buf = b,
                Err(_) => return Err(HttpError::UnexpectedEof),
            }
            let used = dec.decode(buf, &mut body, max)?;
            buf.drain(..used);
        }
    }
    Ok(body)
}

async fn send_continue<S: AsyncWriteRent>(stream: &mut S) -> Result<(), HttpError> {
    let (res, _) = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n".to_vec()).await;
    res.map(|_| ()).map_err(|_| HttpError::UnexpectedEof)
}

/// Writes all of `data` with a deadline; false if the client is gone or too slow.
pub(crate) async fn write_all<S: AsyncWriteRent, T: monoio::buf::IoBuf + 'static>(stream: &mut S, data: T) -> bool {
    matches!(
        monoio::time::timeout(CLIENT_WRITE_TIMEOUT, stream.write_all(data)).await,
        Ok((Ok(_), _))
    )
}
