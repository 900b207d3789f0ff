//! Owned-buffer I/O helpers over monoio's rent traits: read into a `Vec`'s spare
//! capacity (appending), with and without a deadline.

use std::time::Instant;

use monoio::buf::IoBufMut;
use monoio::io::AsyncReadRent;

/// Why a read did not produce bytes.
#[derive(Debug)]
pub enum ReadError {
    Eof,
    Timeout,
    Io(std::io::Error),
}

/// Appends at least one byte read from `s` to `buf` (growing it by `spare` if full).
pub async fn read_more<S: AsyncReadRent>(
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
pub async fn read_more_until<S: AsyncReadRent>(
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
