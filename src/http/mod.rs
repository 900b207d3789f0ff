//! Hand-written HTTP/1.1 on httparse, one codec for both directions: request heads
//! (`request`, strict framing rules) and response heads (`response`) parsed, heads of
//! either kind written (`head`), one body decoder (`body`: Content-Length, chunked, or to
//! the end of the connection), connection I/O (`io`, `drain`) and the named limits that
//! bound all of it (`limits`).

pub mod body;
pub(crate) mod drain;
pub(crate) mod head;
pub(crate) mod io;
pub mod limits;
pub mod request;
pub(crate) mod response;

use std::fmt;

/// Why a request (or an upstream response) could not be framed or parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// Malformed head or framing: 400, then close.
    BadRequest(&'static str),
    /// Head bigger than `MAX_HEAD_BYTES`, or too many headers: 431.
    HeadersTooLarge,
    /// Request target longer than `MAX_URI_BYTES`: 414.
    UriTooLong,
    /// Body bigger than the configured limit: 413.
    BodyTooLarge,
    /// A POST without Content-Length or chunked encoding: 411.
    LengthRequired,
    /// The peer closed before a full message arrived.
    UnexpectedEof,
    /// The body arrived slower than `MIN_BODY_RATE` (or a read stalled): 408, then close.
    BodyTooSlow,
    /// The shard's bodies in flight would pass their bound: 503, then close.
    BodiesInFlightFull,
    /// A malformed response head or body from the upstream.
    BadResponse(&'static str),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::BadRequest(why) => write!(f, "malformed HTTP request: {why}"),
            HttpError::HeadersTooLarge => f.write_str("request headers too large"),
            HttpError::UriTooLong => f.write_str("request URI too long"),
            HttpError::BodyTooLarge => f.write_str("request body too large"),
            HttpError::LengthRequired => f.write_str("Content-Length or chunked Transfer-Encoding required"),
            HttpError::UnexpectedEof => f.write_str("connection closed mid-message"),
            HttpError::BodyTooSlow => f.write_str("the request body arrived too slowly"),
            HttpError::BodiesInFlightFull => f.write_str("too many request body bytes in flight on this shard"),
            HttpError::BadResponse(why) => write!(f, "invalid upstream response: {why}"),
        }
    }
}

impl std::error::Error for HttpError {}
