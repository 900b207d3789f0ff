//! Connection-level I/O over monoio's owned-buffer (rent) traits, shared by the proxy,
//! its upstream side and the mock: read into a `Vec`'s spare capacity with and without a
//! deadline, wait for and parse the next request head (idle and header timeouts,
//! drain-aware), read a body by its framing (with `100 Continue` when asked; its buffer
//! grown as bytes arrive and accounted against the shard's bound, its rate bounded
//! below, hashed as it arrives), and write under a deadline. A plain connection idle
//! between requests holds no read buffer after [`IDLE_RELEASE_AFTER`] ([`IdleRead`]).

use std::time::Instant;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};

use super::body::Decoder;
use super::drain::DrainSignal;
use super::limits::{
    BODY_GROWTH_STEP, BODY_RATE_GRACE, BODY_READ_TIMEOUT, BODY_TOTAL_TIMEOUT, CLIENT_WRITE_TIMEOUT,
    HEADER_READ_TIMEOUT, IDLE_RELEASE_AFTER, IDLE_TIMEOUT, MIN_BODY_RATE, READ_BUFFER_BYTES,
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

/// Removes the first `n` bytes of a buffer that may hold request heads (credentials),
/// zeroing the bytes the move leaves behind in its spare capacity.
pub(crate) fn consume(buf: &mut Vec<u8>, n: usize) {
    let before = buf.len();
    buf.drain(..n.min(before));
    let vacated = before - buf.len();
    for b in &mut buf.spare_capacity_mut()[..vacated] {
        b.write(0);
    }
}

/// Grows `buf` for `more` bytes without leaving its old contents in freed memory: a new
/// allocation takes the bytes, the old one is zeroed before it is freed.
pub(crate) fn grow_wiped(buf: &mut Vec<u8>, more: usize) {
    let mut bigger = Vec::with_capacity((buf.len() + more).max(buf.capacity() * 2));
    bigger.extend_from_slice(buf);
    crate::util::wipe::wipe_vec(buf);
    *buf = bigger;
}

/// A read buffer that zeroes itself when dropped: what a cancelled read (a timeout, a
/// drain) takes with it may be part of a request head, and the runtime frees it.
struct WipeOnDrop(Vec<u8>);

impl Drop for WipeOnDrop {
    fn drop(&mut self) {
        crate::util::wipe::wipe_vec(&mut self.0);
    }
}

// SAFETY: every method forwards to the `Vec<u8>` implementation of the same trait; the
// vector is never moved or reallocated while the runtime holds the buffer.
unsafe impl monoio::buf::IoBuf for WipeOnDrop {
    fn read_ptr(&self) -> *const u8 {
        self.0.as_ptr()
    }
    fn bytes_init(&self) -> usize {
        self.0.len()
    }
}

// SAFETY: as above.
unsafe impl IoBufMut for WipeOnDrop {
    fn write_ptr(&mut self) -> *mut u8 {
        self.0.as_mut_ptr()
    }
    fn bytes_total(&mut self) -> usize {
        self.0.capacity()
    }
    unsafe fn set_init(&mut self, pos: usize) {
        // SAFETY: the runtime initialised `pos` bytes (the trait's contract).
        unsafe { self.0.set_len(pos) }
    }
}

/// Appends at least one byte read from `s` to `buf` (growing it by `spare` if full; the
/// old allocation zeroed, see [`grow_wiped`]). If the read is cancelled, the buffer is
/// zeroed when the runtime drops it.
pub(crate) async fn read_more<S: AsyncReadRent>(
    s: &mut S,
    mut buf: Vec<u8>,
    spare: usize,
) -> (Result<usize, ReadError>, Vec<u8>) {
    if buf.capacity() - buf.len() < spare.max(1) {
        grow_wiped(&mut buf, spare.max(1));
    }
    let len = buf.len();
    let cap = buf.capacity();
    let (res, slice) = s.read(WipeOnDrop(buf).slice_mut(len..cap)).await;
    let buf = std::mem::take(&mut slice.into_inner().0);
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

/// How a keep-alive connection waits for the first bytes of its next request.
pub(crate) trait IdleRead: AsyncReadRent + Sized {
    /// Reads the first bytes of the next request into the empty `buf`, giving up at
    /// `deadline` (`None`). The default reads with the buffer the whole time.
    async fn idle_read(&mut self, buf: Vec<u8>, _idle: &mut IdleState, deadline: Instant) -> Option<(usize, Vec<u8>)> {
        match monoio::time::timeout_at(deadline.into(), read_more(self, buf, READ_BUFFER_BYTES)).await {
            Ok((Ok(n), b)) => Some((n, b)),
            _ => None,
        }
    }
}

/// A connection's reusable state for [`IdleRead::idle_read`]: the canceller of its
/// idle read (kept, so a hot connection's wait allocates nothing).
#[derive(Default)]
pub(crate) struct IdleState {
    canceller: monoio::io::Canceller,
}

/// Plain TCP: reads with the buffer for [`IDLE_RELEASE_AFTER`]; a connection still idle
/// then cancels that read (taking any bytes that raced the cancel), frees the buffer,
/// and waits for readiness (no buffer) before reading into a fresh one.
impl IdleRead for monoio::net::TcpStream {
    async fn idle_read(&mut self, buf: Vec<u8>, idle: &mut IdleState, deadline: Instant) -> Option<(usize, Vec<u8>)> {
        use monoio::io::CancelableAsyncReadRent;
        let release = (Instant::now() + IDLE_RELEASE_AFTER).min(deadline);
        let mut buf = buf;
        if buf.capacity() < READ_BUFFER_BYTES {
            grow_wiped(&mut buf, READ_BUFFER_BYTES);
        }
        let cap = buf.capacity();
        let (res, slice) = {
            let read = self.cancelable_read(WipeOnDrop(buf).slice_mut(0..cap), idle.canceller.handle());
            let mut read = std::pin::pin!(read);
            match monoio::time::timeout_at(release.into(), &mut read).await {
                Ok(done) => done,
                Err(_) => {
                    // Still idle: cancel, then wait for the read to settle (cancelled, or
                    // completed with bytes that arrived meanwhile: those are kept).
                    idle.canceller = std::mem::take(&mut idle.canceller).cancel();
                    read.await
                }
            }
        };
        let buf = std::mem::take(&mut slice.into_inner().0);
        match res {
            Ok(0) => return None,
            Ok(n) => return Some((n, buf)),
            Err(e) if e.raw_os_error() == Some(libc::ECANCELED) || e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
        // The buffer is empty (nothing was read): freeing it leaves no secret behind. A
        // slot's pages go straight back to the OS; a glibc block waits for the trim.
        let bytes = buf.capacity();
        if !crate::util::alloc::release_pages(buf) {
            crate::util::memory::released(bytes);
        }
        match monoio::time::timeout_at(deadline.into(), self.readable(false)).await {
            Ok(Ok(())) => {}
            _ => return None,
        }
        let fresh = Vec::with_capacity(READ_BUFFER_BYTES);
        match monoio::time::timeout_at(deadline.into(), read_more(self, fresh, READ_BUFFER_BYTES)).await {
            Ok((Ok(n), b)) => Some((n, b)),
            _ => None,
        }
    }
}

/// TLS keeps its buffers: rustls may hold decrypted bytes the socket no longer shows.
impl IdleRead for monoio_rustls::ServerTlsStream<monoio::net::TcpStream> {}

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
pub(crate) async fn next_head<S: IdleRead>(
    stream: &mut S,
    mut buf: Vec<u8>,
    idle_state: &mut IdleState,
    drain: &DrainSignal,
    conn_id: u64,
) -> NextHead {
    let mut deadline: Option<Instant> = None;
    loop {
        if !buf.is_empty() {
            match parse_head(&buf) {
                Ok(Some((h, n))) => {
                    consume(&mut buf, n);
                    return NextHead::Head(h, buf);
                }
                Ok(None) => {}
                Err(e) => {
                    crate::util::wipe::wipe_vec(&mut buf);
                    return NextHead::Invalid(e);
                }
            }
            let dl = *deadline.get_or_insert_with(|| Instant::now() + HEADER_READ_TIMEOUT);
            match read_more_until(stream, buf, READ_BUFFER_BYTES, dl).await {
                Ok((_, b)) => buf = b,
                Err((_, b)) => {
                    // A cancelled read (timeout) took the buffer with it; a failed one
                    // gives it back to be zeroed.
                    if let Some(mut b) = b {
                        crate::util::wipe::wipe_vec(&mut b);
                    }
                    return NextHead::Closed;
                }
            }
        } else {
            if drain.is_fired() {
                crate::util::wipe::wipe_vec(&mut buf);
                return NextHead::Closed;
            }
            // Idle: the read races the drain signal. If draining wins, the read is
            // cancelled and the connection closed, as any server closing an idle
            // keep-alive connection does.
            let idle_until = Instant::now() + IDLE_TIMEOUT;
            let idle = monoio::select! {
                r = stream.idle_read(buf, idle_state, idle_until) => r,
                _ = drain.wait(conn_id) => None,
            };
            match idle {
                Some((_, b)) => buf = b,
                None => return NextHead::Closed,
            }
        }
    }
}

/// Request body bytes buffered on one shard, against a bound (one per shard, so a
/// `Cell`: no atomics on the request path).
#[derive(Debug)]
pub(crate) struct InFlight {
    used: std::cell::Cell<usize>,
    max: usize,
}

impl InFlight {
    pub(crate) fn new(max: usize) -> Self {
        InFlight {
            used: Default::default(),
            max,
        }
    }

    /// A request's share, empty until its body grows.
    pub(crate) fn charge(&self) -> Charge<'_> {
        Charge { pool: self, held: 0 }
    }
}

/// What one request's body buffer holds of its shard's [`InFlight`]; given back on drop
/// (keep it alive as long as the body).
#[derive(Debug)]
pub(crate) struct Charge<'a> {
    pool: &'a InFlight,
    held: usize,
}

impl Charge<'_> {
    /// Accounts for a buffer of `capacity` bytes; refused when the shard's bound would
    /// be passed.
    fn hold(&mut self, capacity: usize) -> Result<(), HttpError> {
        if capacity <= self.held {
            return Ok(());
        }
        let more = capacity - self.held;
        let used = self.pool.used.get();
        if used + more > self.pool.max {
            return Err(HttpError::BodiesInFlightFull);
        }
        self.pool.used.set(used + more);
        self.held = capacity;
        Ok(())
    }
}

impl Drop for Charge<'_> {
    fn drop(&mut self) {
        self.pool.used.set(self.pool.used.get().saturating_sub(self.held));
    }
}

/// The capacity a fixed-length body grows to next: doubling from one read buffer, by at
/// most [`BODY_GROWTH_STEP`], never past `limit` (the body's whole length).
fn next_capacity(cap: usize, limit: usize) -> usize {
    cap.saturating_mul(2)
        .max(READ_BUFFER_BYTES)
        .min(cap + BODY_GROWTH_STEP)
        .min(limit)
}

/// When a body that started at `start` and has `bytes` so far falls below
/// [`MIN_BODY_RATE`].
fn rate_deadline(start: Instant, bytes: usize) -> Instant {
    start + BODY_RATE_GRACE + std::time::Duration::from_millis(bytes as u64 * 1000 / MIN_BODY_RATE)
}

/// Reads into `buf` up to `limit` bytes in total (never past it, so a pipelined request
/// after the body stays in the socket), growing the buffer as bytes arrive.
async fn read_bounded<S: AsyncReadRent>(
    s: &mut S,
    mut buf: Vec<u8>,
    limit: usize,
    deadline: Instant,
    charge: &mut Charge<'_>,
) -> Result<Vec<u8>, HttpError> {
    if buf.len() == buf.capacity() {
        let cap = next_capacity(buf.capacity(), limit);
        charge.hold(cap)?;
        buf.reserve_exact(cap - buf.len());
    }
    let len = buf.len();
    let end = buf.capacity().min(limit);
    let fut = s.read(buf.slice_mut(len..end));
    match monoio::time::timeout_at(deadline.into(), fut).await {
        Err(_) => Err(HttpError::BodyTooSlow),
        Ok((Ok(0), _)) | Ok((Err(_), _)) => Err(HttpError::UnexpectedEof),
        Ok((Ok(_), slice)) => Ok(slice.into_inner()),
    }
}

/// A request body and its SHA-256, taken as the bytes arrived (each read's new bytes
/// hashed while still in cache, so the signer never walks the body again).
pub(crate) struct Body {
    pub bytes: Vec<u8>,
    pub sha256: [u8; 32],
}

/// Hashes what `body` gained since `hashed` bytes.
fn hash_new(ctx: &mut ring::digest::Context, body: &[u8], hashed: &mut usize) {
    ctx.update(&body[*hashed..]);
    *hashed = body.len();
}

/// Reads the request body as framed by `head`. `buf` holds bytes already read after the
/// head; on return it holds whatever followed the body. A fixed-length body is read
/// straight into the body buffer, which grows as bytes arrive (a declared length reserves
/// nothing); a chunked one goes through the decoder. The body's buffer is accounted in
/// `charge`; a body slower than [`MIN_BODY_RATE`] after [`BODY_RATE_GRACE`], or one read
/// stalled for [`BODY_READ_TIMEOUT`], is [`HttpError::BodyTooSlow`].
pub(crate) async fn read_body<S: AsyncReadRent + AsyncWriteRent>(
    stream: &mut S,
    head: &RequestHead,
    buf: &mut Vec<u8>,
    max: usize,
    charge: &mut Charge<'_>,
) -> Result<Body, HttpError> {
    let start = Instant::now();
    let body_deadline = start + BODY_TOTAL_TIMEOUT;
    let mut sha = ring::digest::Context::new(&ring::digest::SHA256);
    let mut hashed = 0;
    let mut dec = Decoder::request(head.framing);
    if let Some(n) = dec.remaining() {
        if n > max as u64 {
            return Err(HttpError::BodyTooLarge);
        }
    }
    let first = dec
        .remaining()
        .map_or(0, |n| (n as usize).min(buf.len().max(READ_BUFFER_BYTES)));
    charge.hold(first)?;
    let mut body = Vec::with_capacity(first);
    let used = dec.decode(buf, &mut body, max)?;
    consume(buf, used);
    charge.hold(body.capacity())?;
    hash_new(&mut sha, &body, &mut hashed);
    if !dec.is_done() && head.expect_continue && body.is_empty() {
        send_continue(stream).await?;
    }
    while !dec.is_done() {
        let deadline = (Instant::now() + BODY_READ_TIMEOUT)
            .min(body_deadline)
            .min(rate_deadline(start, body.len() + buf.len()));
        if let Some(left) = dec.remaining() {
            let before = body.len();
            body = read_bounded(stream, body, before + left as usize, deadline, charge).await?;
            dec.consumed((body.len() - before) as u64);
        } else {
            match read_more_until(stream, std::mem::take(buf), READ_BUFFER_BYTES, deadline).await {
                Ok((_, b)) => *buf = b,
                Err((ReadError::Timeout, _)) => return Err(HttpError::BodyTooSlow),
                Err(_) => return Err(HttpError::UnexpectedEof),
            }
            let used = dec.decode(buf, &mut body, max)?;
            consume(buf, used);
            charge.hold(body.capacity())?;
        }
        hash_new(&mut sha, &body, &mut hashed);
    }
    let mut sha256 = [0u8; 32];
    sha256.copy_from_slice(sha.finish().as_ref());
    Ok(Body { bytes: body, sha256 })
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
