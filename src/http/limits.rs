//! Parsing and timing limits, named once. Every bound the server enforces is here.

use std::time::Duration;

/// Largest request or response head (request line + headers), bytes. Over it: 431.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most header lines in one head. Over it: 431.
pub(crate) const MAX_HEADERS: usize = 64;
/// Longest request target. Over it: 414.
pub const MAX_URI_BYTES: usize = 4096;
/// Default largest request body (flag `--max-body-bytes`). Over it: 413.
pub(crate) const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Longest chunk-size line (size, extensions, CRLF) and trailer line.
pub(crate) const MAX_CHUNK_LINE: usize = 1024;
/// Most bytes of trailers after the last chunk.
pub(crate) const MAX_TRAILER_BYTES: usize = 8 * 1024;
/// Largest upstream response body read into memory (non-streaming Converse).
pub(crate) const MAX_UPSTREAM_BODY_BYTES: usize = 64 * 1024 * 1024;
/// Most a request body buffer grows by in one step (it doubles up to this, as bytes
/// arrive): a declared `Content-Length` reserves nothing up front, so a client that
/// declares 32 MiB and sends nothing costs a read buffer, not 32 MiB.
pub(crate) const BODY_GROWTH_STEP: usize = 1024 * 1024;
/// Default bound on request body bytes buffered per shard (flag
/// `--max-inflight-body-bytes`). A body that would pass it: 503 `Overloaded`.
pub(crate) const DEFAULT_MAX_INFLIGHT_BODY_BYTES: usize = 256 * 1024 * 1024;
/// Slowest average rate a request body may arrive at once [`BODY_RATE_GRACE`] has
/// passed, bytes per second. Slower: 408 and close (a trickle cannot hold memory).
pub(crate) const MIN_BODY_RATE: u64 = 16 * 1024;
/// Time a body may take before [`MIN_BODY_RATE`] applies.
pub(crate) const BODY_RATE_GRACE: Duration = Duration::from_secs(5);
/// Default most client connections per process (flag `--max-connections`). Above it a
/// new connection gets a 503 `Overloaded` and is closed.
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 20_000;
/// Initial size of a connection's read buffer.
pub(crate) const READ_BUFFER_BYTES: usize = 8 * 1024;
/// A plain keep-alive connection idle this long gives its read buffer back and waits
/// for readiness holding no buffer ([`READ_BUFFER_BYTES`] less per idle connection; a
/// connection busier than this keeps its buffer and pays nothing).
pub(crate) const IDLE_RELEASE_AFTER: Duration = Duration::from_secs(1);
/// Responses up to this size are written with their head in one buffer (one write).
pub(crate) const SMALL_BODY_BYTES: usize = 16 * 1024;

/// Time allowed to receive a whole request head once its first byte arrived.
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a keep-alive connection may sit idle between requests.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Time allowed between two reads of a request body.
pub(crate) const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed for a whole request body (32 MiB at ~60 KB/s), so a client trickling
/// a byte per read timeout cannot hold a connection forever.
pub(crate) const BODY_TOTAL_TIMEOUT: Duration = Duration::from_secs(600);
/// Time allowed for one write to a client to make progress.
pub(crate) const CLIENT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
