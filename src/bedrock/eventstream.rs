//! The AWS event-stream binary framing (`application/vnd.amazon.eventstream`) that Bedrock
//! ConverseStream answers with: an incremental [`Decoder`] for upstream bytes arriving in
//! pieces of any size, a one-shot [`decode_frame`], and a small encoder ([`encode_frame`],
//! `event_frame`, `exception_frame`) for the mock upstream. Also owns the CRC32 the
//! framing uses.
//!
//! A frame, all integers big-endian:
//!
//! ```text
//! total_length u32 | headers_length u32 | prelude_crc u32   (CRC32 of the first 8 bytes)
//! headers (headers_length bytes) | payload | message_crc u32 (CRC32 of all bytes before it)
//! ```
//!
//! with `total_length = 12 + headers_length + payload_length + 4`. A header is
//! `name_len u8 | name | value_type u8 | value`, the value types being 0 bool true,
//! 1 bool false, 2 i8, 3 i16, 4 i32, 5 i64, 6 byte array (u16 length), 7 string (u16 length),
//! 8 timestamp (i64 milliseconds), 9 uuid (16 bytes).

use std::collections::VecDeque;
use std::fmt;

/// The largest frame (prelude, headers, payload and message CRC) accepted or buffered.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;
/// The smallest possible frame: a prelude and a message CRC, no headers, no payload.
pub const MIN_FRAME_BYTES: usize = 16;
/// The largest headers section accepted.
pub const MAX_HEADERS_BYTES: usize = 128 * 1024;
/// Bytes of the prelude: total length, headers length, prelude CRC.
pub const PRELUDE_BYTES: usize = 12;
/// Bytes of the trailing message CRC.
pub(crate) const MESSAGE_CRC_BYTES: usize = 4;
/// The longest header name (its length is one byte).
pub const MAX_HEADER_NAME_BYTES: usize = u8::MAX as usize;
/// The longest string or byte-array header value (its length is a u16).
pub const MAX_HEADER_VALUE_BYTES: usize = u16::MAX as usize;
/// A decoder's buffer keeps at most this capacity between frames; a larger one (left by
/// a big frame) is given back.
const RETAINED_BUFFER_BYTES: usize = 64 * 1024;

const TYPE_BOOL_TRUE: u8 = 0;
const TYPE_BOOL_FALSE: u8 = 1;
const TYPE_BYTE: u8 = 2;
const TYPE_SHORT: u8 = 3;
const TYPE_INT: u8 = 4;
const TYPE_LONG: u8 = 5;
const TYPE_BYTES: u8 = 6;
const TYPE_STRING: u8 = 7;
const TYPE_TIMESTAMP: u8 = 8;
const TYPE_UUID: u8 = 9;

// ---------------------------------------------------------------------------------------
// CRC32

static CRC32_TABLE: [u32; 256] = crate::util::crc::table(0xEDB8_8320);

/// CRC32 (IEEE 802.3, reflected polynomial 0xEDB88320), as zlib's `crc32`.
pub fn crc32(data: &[u8]) -> u32 {
    crate::util::crc::checksum(&CRC32_TABLE, data)
}

// ---------------------------------------------------------------------------------------
// Types

/// The value of one frame header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Vec<u8>),
    String(String),
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
    Uuid([u8; 16]),
}

impl HeaderValue {
    /// The string, for a `String` value.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            HeaderValue::String(s) => Some(s),
            _ => None,
        }
    }

    fn type_id(&self) -> u8 {
        match self {
            HeaderValue::Bool(true) => TYPE_BOOL_TRUE,
            HeaderValue::Bool(false) => TYPE_BOOL_FALSE,
            HeaderValue::Byte(_) => TYPE_BYTE,
            HeaderValue::Short(_) => TYPE_SHORT,
            HeaderValue::Int(_) => TYPE_INT,
            HeaderValue::Long(_) => TYPE_LONG,
            HeaderValue::Bytes(_) => TYPE_BYTES,
            HeaderValue::String(_) => TYPE_STRING,
            HeaderValue::Timestamp(_) => TYPE_TIMESTAMP,
            HeaderValue::Uuid(_) => TYPE_UUID,
        }
    }
}

/// One decoded frame: its headers in wire order and its payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The first header called `name`.
    pub(crate) fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The first header called `name`, if it is a string.
    pub(crate) fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(HeaderValue::as_str)
    }

    /// `:message-type`: "event", "exception" or "error".
    pub fn message_type(&self) -> Option<&str> {
        self.header_str(":message-type")
    }

    /// `:event-type` of an event, e.g. "contentBlockDelta" or "metadata".
    pub fn event_type(&self) -> Option<&str> {
        self.header_str(":event-type")
    }

    /// `:exception-type` of an exception, e.g. "throttlingException".
    pub fn exception_type(&self) -> Option<&str> {
        self.header_str(":exception-type")
    }

    /// `:error-code`, for a frame whose `:message-type` is "error".
    pub fn error_code(&self) -> Option<&str> {
        match self.message_type() {
            Some("error") => self.header_str(":error-code"),
            _ => None,
        }
    }

    /// `:error-message`, for a frame whose `:message-type` is "error".
    pub fn error_message(&self) -> Option<&str> {
        match self.message_type() {
            Some("error") => self.header_str(":error-message"),
            _ => None,
        }
    }
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameError {
    /// Fewer bytes than a frame needs ([`decode_frame`]), or a declared total length
    /// below [`MIN_FRAME_BYTES`].
    TooShort,
    /// A declared total length above [`MAX_FRAME_BYTES`].
    TooLong,
    /// The prelude CRC does not match the first 8 bytes.
    PreludeCrc,
    /// The message CRC does not match the frame.
    MessageCrc,
    /// The headers length exceeds [`MAX_HEADERS_BYTES`] or does not fit in the frame.
    HeadersLength,
    /// A header name is empty or runs past the headers section.
    HeaderNameLength,
    /// A header value type that is not 0..=9.
    HeaderValueType(u8),
    /// A header value runs past the headers section.
    HeaderTruncated,
    /// A header name or string value is not UTF-8.
    InvalidUtf8,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooShort => write!(f, "event-stream frame too short"),
            FrameError::TooLong => write!(f, "event-stream frame longer than {MAX_FRAME_BYTES} bytes"),
            FrameError::PreludeCrc => write!(f, "event-stream prelude checksum mismatch"),
            FrameError::MessageCrc => write!(f, "event-stream message checksum mismatch"),
            FrameError::HeadersLength => write!(f, "event-stream headers length invalid"),
            FrameError::HeaderNameLength => write!(f, "event-stream header name length invalid"),
            FrameError::HeaderValueType(t) => write!(f, "event-stream header value type {t} unknown"),
            FrameError::HeaderTruncated => write!(f, "event-stream header value truncated"),
            FrameError::InvalidUtf8 => write!(f, "event-stream header is not valid UTF-8"),
        }
    }
}

impl std::error::Error for FrameError {}

// ---------------------------------------------------------------------------------------
// Decoding

fn be_u32(b: &[u8], at: usize) -> u32 {
    // Callers pass `at + 4 <= b.len()`; the fold avoids a fallible slice-to-array conversion.
    b[at..at + 4].iter().fold(0u32, |acc, &x| (acc << 8) | u32::from(x))
}

/// Checks a 12-byte prelude and returns the frame's total length and headers length.
fn check_prelude(prelude: &[u8]) -> Result<(usize, usize), FrameError> {
    debug_assert!(prelude.len() >= PRELUDE_BYTES);
    if crc32(&prelude[..8]) != be_u32(prelude, 8) {
        return Err(FrameError::PreludeCrc);
    }
    let total = be_u32(prelude, 0) as usize;
    let headers = be_u32(prelude, 4) as usize;
    if total > MAX_FRAME_BYTES {
        return Err(FrameError::TooLong);
    }
    if total < MIN_FRAME_BYTES {
        return Err(FrameError::TooShort);
    }
    if headers > MAX_HEADERS_BYTES || headers > total - MIN_FRAME_BYTES {
        return Err(FrameError::HeadersLength);
    }
    Ok((total, headers))
}

/// Decodes a whole frame whose prelude `check_prelude` accepted; `bytes.len()` is the
/// total length.
fn decode_checked(bytes: &[u8], headers_len: usize) -> Result<Frame, FrameError> {
    let crc_at = bytes.len() - MESSAGE_CRC_BYTES;
    if crc32(&bytes[..crc_at]) != be_u32(bytes, crc_at) {
        return Err(FrameError::MessageCrc);
    }
    let payload_at = PRELUDE_BYTES + headers_len;
    let headers = decode_headers(&bytes[PRELUDE_BYTES..payload_at])?;
    Ok(Frame {
        headers,
        payload: bytes[payload_at..crc_at].to_vec(),
    })
}

/// A cursor over the headers section.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, err: FrameError) -> Result<&'a [u8], FrameError> {
        if self.rest.len() < n {
            return Err(err);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, FrameError::HeaderTruncated)?);
        Ok(out)
    }

    fn u8(&mut self, err: FrameError) -> Result<u8, FrameError> {
        Ok(self.take(1, err)?[0])
    }

    fn sized(&mut self) -> Result<&'a [u8], FrameError> {
        let len = u16::from_be_bytes(self.array()?) as usize;
        self.take(len, FrameError::HeaderTruncated)
    }
}

fn decode_headers(section: &[u8]) -> Result<Vec<(String, HeaderValue)>, FrameError> {
    let mut r = Reader { rest: section };
    let mut headers = Vec::new();
    while !r.rest.is_empty() {
        let name_len = r.u8(FrameError::HeaderNameLength)? as usize;
        if name_len == 0 {
            return Err(FrameError::HeaderNameLength);
        }
        let name = r.take(name_len, FrameError::HeaderNameLength)?;
        let name = std::str::from_utf8(name)
            .map_err(|_| FrameError::InvalidUtf8)?
            .to_owned();
        let value = match r.u8(FrameError::HeaderTruncated)? {
            TYPE_BOOL_TRUE => HeaderValue::Bool(true),
            TYPE_BOOL_FALSE => HeaderValue::Bool(false),
            TYPE_BYTE => HeaderValue::Byte(i8::from_be_bytes(r.array()?)),
            TYPE_SHORT => HeaderValue::Short(i16::from_be_bytes(r.array()?)),
            TYPE_INT => HeaderValue::Int(i32::from_be_bytes(r.array()?)),
            TYPE_LONG => HeaderValue::Long(i64::from_be_bytes(r.array()?)),
            TYPE_BYTES => HeaderValue::Bytes(r.sized()?.to_vec()),
            TYPE_STRING => {
                let s = std::str::from_utf8(r.sized()?).map_err(|_| FrameError::InvalidUtf8)?;
                HeaderValue::String(s.to_owned())
            }
            TYPE_TIMESTAMP => HeaderValue::Timestamp(i64::from_be_bytes(r.array()?)),
            TYPE_UUID => HeaderValue::Uuid(r.array()?),
            other => return Err(FrameError::HeaderValueType(other)),
        };
        headers.push((name, value));
    }
    Ok(headers)
}

/// Decodes exactly one frame from the start of `bytes` and returns it with the number of
/// bytes it used. Fewer bytes than the frame declares is [`FrameError::TooShort`].
pub fn decode_frame(bytes: &[u8]) -> Result<(Frame, usize), FrameError> {
    if bytes.len() < PRELUDE_BYTES {
        return Err(FrameError::TooShort);
    }
    let (total, headers_len) = check_prelude(&bytes[..PRELUDE_BYTES])?;
    if bytes.len() < total {
        return Err(FrameError::TooShort);
    }
    Ok((decode_checked(&bytes[..total], headers_len)?, total))
}

/// An incremental frame decoder: [`feed`](Decoder::feed) it bytes as they arrive, split
/// anywhere, and take completed frames with [`next_frame`](Decoder::next_frame).
///
/// Each byte is copied at most once (only a frame that arrives in several pieces is
/// buffered; whole frames inside one piece are decoded in place), and at most one partial
/// frame, never more than [`MAX_FRAME_BYTES`], is buffered. A prelude is checked as soon as
/// its 12 bytes are in, before its declared length is waited for. After an error the
/// decoder stays failed: every later `feed` returns the same error.
#[derive(Debug, Default)]
pub struct Decoder {
    /// The start of the frame in progress (empty between frames).
    buf: Vec<u8>,
    /// `(total_length, headers_length)` once the frame in progress has a checked prelude.
    prelude: Option<(usize, usize)>,
    ready: VecDeque<Frame>,
    failed: Option<FrameError>,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in the next bytes of the stream; frames they complete become available to
    /// [`next_frame`](Decoder::next_frame). Frames completed before an error in the same
    /// piece stay available.
    pub fn feed(&mut self, input: &[u8]) -> Result<(), FrameError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        let result = self.feed_inner(input);
        if let Err(err) = result {
            self.failed = Some(err);
            self.buf = Vec::new();
            self.prelude = None;
        }
        result
    }

    fn feed_inner(&mut self, mut input: &[u8]) -> Result<(), FrameError> {
        while !input.is_empty() {
            if self.buf.is_empty() {
                // Between frames: decode whole frames straight from the input.
                if input.len() < PRELUDE_BYTES {
                    self.buf.extend_from_slice(input);
                    return Ok(());
                }
                let (total, headers_len) = check_prelude(&input[..PRELUDE_BYTES])?;
                if input.len() >= total {
                    let frame = decode_checked(&input[..total], headers_len)?;
                    self.ready.push_back(frame);
                    input = &input[total..];
                    continue;
                }
                self.prelude = Some((total, headers_len));
                self.buf.extend_from_slice(input);
                return Ok(());
            }
            // Mid-frame: take only what the prelude, or the rest of the frame, needs.
            let need = self.prelude.map_or(PRELUDE_BYTES, |(total, _)| total);
            let take = (need - self.buf.len()).min(input.len());
            self.buf.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.buf.len() < need {
                return Ok(());
            }
            match self.prelude {
                None => self.prelude = Some(check_prelude(&self.buf)?),
                Some((_, headers_len)) => {
                    let frame = decode_checked(&self.buf, headers_len)?;
                    self.ready.push_back(frame);
                    self.prelude = None;
                    if self.buf.capacity() > RETAINED_BUFFER_BYTES {
                        self.buf = Vec::new();
                    } else {
                        self.buf.clear();
                    }
                }
            }
        }
        Ok(())
    }

    /// The oldest completed frame not yet taken.
    pub fn next_frame(&mut self) -> Option<Frame> {
        self.ready.pop_front()
    }

    /// Bytes of an incomplete frame held; non-zero at the end of a stream means the
    /// stream was cut mid-frame.
    pub fn pending_bytes(&self) -> usize {
        self.buf.len()
    }

    /// The error this decoder failed with, if any.
    pub fn error(&self) -> Option<FrameError> {
        self.failed
    }
}

// ---------------------------------------------------------------------------------------
// Encoding

/// Encodes one frame.
///
/// # Panics
///
/// If a header name is empty or longer than [`MAX_HEADER_NAME_BYTES`], a string or byte
/// value is longer than [`MAX_HEADER_VALUE_BYTES`], the headers exceed
/// [`MAX_HEADERS_BYTES`] or the frame exceeds [`MAX_FRAME_BYTES`]: the encoder serves the
/// mock upstream and tests, whose frames are the program's own.
pub fn encode_frame(headers: &[(&str, HeaderValue)], payload: &[u8]) -> Vec<u8> {
    let mut head = Vec::new();
    for (name, value) in headers {
        assert!(
            !name.is_empty() && name.len() <= MAX_HEADER_NAME_BYTES,
            "event-stream header name must be 1..=255 bytes"
        );
        head.push(name.len() as u8);
        head.extend_from_slice(name.as_bytes());
        head.push(value.type_id());
        match value {
            HeaderValue::Bool(_) => {}
            HeaderValue::Byte(v) => head.extend_from_slice(&v.to_be_bytes()),
            HeaderValue::Short(v) => head.extend_from_slice(&v.to_be_bytes()),
            HeaderValue::Int(v) => head.extend_from_slice(&v.to_be_bytes()),
            HeaderValue::Long(v) | HeaderValue::Timestamp(v) => head.extend_from_slice(&v.to_be_bytes()),
            HeaderValue::Bytes(v) => put_sized(&mut head, v),
            HeaderValue::String(v) => put_sized(&mut head, v.as_bytes()),
            HeaderValue::Uuid(v) => head.extend_from_slice(v),
        }
    }
    assert!(head.len() <= MAX_HEADERS_BYTES, "event-stream headers too long");
    let total = PRELUDE_BYTES + head.len() + payload.len() + MESSAGE_CRC_BYTES;
    assert!(total <= MAX_FRAME_BYTES, "event-stream frame too long");

    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(head.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(payload);
    let message_crc = crc32(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    out
}

fn put_sized(out: &mut Vec<u8>, value: &[u8]) {
    assert!(
        value.len() <= MAX_HEADER_VALUE_BYTES,
        "event-stream header value too long"
    );
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
}

/// An event frame as Bedrock sends it: `:event-type`, `:content-type` application/json,
/// `:message-type` event.
pub(crate) fn event_frame(event_type: &str, payload: &[u8]) -> Vec<u8> {
    encode_frame(
        &[
            (":event-type", HeaderValue::String(event_type.to_owned())),
            (":content-type", HeaderValue::String("application/json".to_owned())),
            (":message-type", HeaderValue::String("event".to_owned())),
        ],
        payload,
    )
}

/// An exception frame as Bedrock sends it: `:exception-type`, `:content-type`
/// application/json, `:message-type` exception.
pub(crate) fn exception_frame(exception_type: &str, payload: &[u8]) -> Vec<u8> {
    encode_frame(
        &[
            (":exception-type", HeaderValue::String(exception_type.to_owned())),
            (":content-type", HeaderValue::String("application/json".to_owned())),
            (":message-type", HeaderValue::String("exception".to_owned())),
        ],
        payload,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> Vec<(String, Vec<u8>)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eventstream");
        let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| e.file_name().into_string().unwrap())
            .filter(|n| n.starts_with("valid_") || n.starts_with("invalid_"))
            .map(|n| {
                let bytes = std::fs::read(dir.join(&n)).unwrap();
                (n, bytes)
            })
            .collect();
        out.sort();
        out
    }

    /// Feeds `pieces` and collects frames, or the first error.
    fn decode_pieces<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Result<Vec<Frame>, FrameError> {
        let mut d = Decoder::new();
        let mut frames = Vec::new();
        for piece in pieces {
            d.feed(piece)?;
            while let Some(f) = d.next_frame() {
                frames.push(f);
            }
        }
        assert_eq!(d.pending_bytes(), 0, "stream ended mid-frame");
        Ok(frames)
    }

    fn one_byte_at_a_time(bytes: &[u8]) -> Result<Vec<Frame>, FrameError> {
        decode_pieces(bytes.chunks(1))
    }

    /// A frame with valid prelude and message CRCs around an arbitrary headers section.
    fn raw_frame(headers: &[u8], payload: &[u8]) -> Vec<u8> {
        let total = PRELUDE_BYTES + headers.len() + payload.len() + MESSAGE_CRC_BYTES;
        let mut out = Vec::new();
        out.extend_from_slice(&(total as u32).to_be_bytes());
        out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        let c = crc32(&out);
        out.extend_from_slice(&c.to_be_bytes());
        out.extend_from_slice(headers);
        out.extend_from_slice(payload);
        let c = crc32(&out);
        out.extend_from_slice(&c.to_be_bytes());
        out
    }

    /// A prelude with a valid CRC declaring the given lengths.
    fn prelude(total: u32, headers: u32) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&total.to_be_bytes());
        out.extend_from_slice(&headers.to_be_bytes());
        let c = crc32(&out);
        out.extend_from_slice(&c.to_be_bytes());
        out
    }

    fn all_header_types() -> Vec<(&'static str, HeaderValue)> {
        vec![
            ("true", HeaderValue::Bool(true)),
            ("false", HeaderValue::Bool(false)),
            ("byte", HeaderValue::Byte(-7)),
            ("short", HeaderValue::Short(-20000)),
            ("int", HeaderValue::Int(500_000)),
            ("long", HeaderValue::Long(-50_000_000_000)),
            ("bytes", HeaderValue::Bytes(vec![0, 1, 0xff, 0x80])),
            ("empty-bytes", HeaderValue::Bytes(Vec::new())),
            ("str", HeaderValue::String("héllo ✓".to_owned())),
            ("time", HeaderValue::Timestamp(1_700_000_000_123)),
            ("uuid", HeaderValue::Uuid(*b"0123456789abcdef")),
        ]
    }

    fn owned(headers: &[(&str, HeaderValue)]) -> Vec<(String, HeaderValue)> {
        headers.iter().map(|(n, v)| (n.to_string(), v.clone())).collect()
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn fixtures_valid_decode_and_invalid_are_rejected() {
        let fixtures = fixtures();
        assert!(fixtures.iter().filter(|(n, _)| n.starts_with("valid_")).count() >= 3);
        assert!(fixtures.iter().filter(|(n, _)| n.starts_with("invalid_")).count() >= 8);
        for (name, bytes) in &fixtures {
            if name.starts_with("valid_") {
                let (frame, used) = decode_frame(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(used, bytes.len(), "{name}");
                let streamed = one_byte_at_a_time(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(streamed, vec![frame.clone()], "{name}");
                assert_eq!(decode_pieces([bytes.as_slice()]).unwrap(), vec![frame], "{name}");
            } else {
                let err = decode_frame(bytes).expect_err(name);
                assert_eq!(one_byte_at_a_time(bytes).expect_err(name), err, "{name}");
                assert_eq!(decode_pieces([bytes.as_slice()]).expect_err(name), err, "{name}");
                let expected = match name.as_str() {
                    "invalid_prelude_checksum" => FrameError::PreludeCrc,
                    "invalid_headers_length" => FrameError::HeadersLength,
                    // The other upstream fixtures keep the original message CRC.
                    _ => FrameError::MessageCrc,
                };
                assert_eq!(err, expected, "{name}");
            }
        }
    }

    #[test]
    fn fixture_contents() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eventstream");
        let read = |n: &str| std::fs::read(dir.join(n)).unwrap();

        let (f, _) = decode_frame(&read("valid_no_headers")).unwrap();
        assert!(f.headers.is_empty());
        assert_eq!(f.payload, b"another test payload");

        let (f, _) = decode_frame(&read("valid_empty_payload")).unwrap();
        assert_eq!(f.headers, vec![("some-header".to_owned(), HeaderValue::Short(500))]);
        assert!(f.payload.is_empty());

        let (f, _) = decode_frame(&read("valid_with_all_headers_and_payload")).unwrap();
        let uuid = [
            0xb7, 0x9b, 0xc9, 0x14, 0xde, 0x21, 0x4e, 0x13, 0xb8, 0xb2, 0xbc, 0x47, 0xe8, 0x5b, 0x7f, 0x0b,
        ];
        let expected = owned(&[
            ("true", HeaderValue::Bool(true)),
            ("false", HeaderValue::Bool(false)),
            ("byte", HeaderValue::Byte(50)),
            ("short", HeaderValue::Short(20_000)),
            ("int", HeaderValue::Int(500_000)),
            ("long", HeaderValue::Long(50_000_000_000)),
            ("bytes", HeaderValue::Bytes(b"some bytes".to_vec())),
            ("str", HeaderValue::String("some str".to_owned())),
            ("time", HeaderValue::Timestamp(5_000_000_000)),
            ("uuid", HeaderValue::Uuid(uuid)),
        ]);
        assert_eq!(f.headers, expected);
        assert_eq!(f.payload, b"some payload");
        assert_eq!(f.header_str("str"), Some("some str"));
        assert_eq!(f.header_str("int"), None);
        assert_eq!(f.header("missing"), None);
    }

    #[test]
    fn round_trip_every_header_type() {
        let headers = all_header_types();
        let bytes = encode_frame(&headers, b"{\"x\":1}");
        let (frame, used) = decode_frame(&bytes).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(frame.headers, owned(&headers));
        assert_eq!(frame.payload, b"{\"x\":1}");

        let empty = encode_frame(&[], b"");
        assert_eq!(empty.len(), MIN_FRAME_BYTES);
        assert_eq!(decode_frame(&empty).unwrap(), (Frame::default(), MIN_FRAME_BYTES));
    }

    #[test]
    fn event_and_exception_frames() {
        let (f, _) = decode_frame(&event_frame("contentBlockDelta", b"{}")).unwrap();
        assert_eq!(f.event_type(), Some("contentBlockDelta"));
        assert_eq!(f.message_type(), Some("event"));
        assert_eq!(f.header_str(":content-type"), Some("application/json"));
        assert_eq!(f.exception_type(), None);
        assert_eq!(f.error_code(), None);
        assert_eq!(f.payload, b"{}");

        let (f, _) = decode_frame(&exception_frame("throttlingException", b"{\"message\":\"slow\"}")).unwrap();
        assert_eq!(f.exception_type(), Some("throttlingException"));
        assert_eq!(f.message_type(), Some("exception"));
        assert_eq!(f.header_str(":content-type"), Some("application/json"));
        assert_eq!(f.event_type(), None);

        let err = encode_frame(
            &[
                (":message-type", HeaderValue::String("error".to_owned())),
                (":error-code", HeaderValue::String("InternalFailure".to_owned())),
                (":error-message", HeaderValue::String("boom".to_owned())),
            ],
            b"",
        );
        let (f, _) = decode_frame(&err).unwrap();
        assert_eq!(f.error_code(), Some("InternalFailure"));
        assert_eq!(f.error_message(), Some("boom"));
    }

    #[test]
    fn three_frames_split_at_every_boundary() {
        let frames_in = [
            encode_frame(&all_header_types(), b"first"),
            event_frame("messageStart", b"{\"role\":\"assistant\"}"),
            exception_frame("validationException", b""),
        ];
        let expected: Vec<Frame> = frames_in.iter().map(|b| decode_frame(b).unwrap().0).collect();
        let stream: Vec<u8> = frames_in.concat();

        assert_eq!(decode_pieces([stream.as_slice()]).unwrap(), expected);
        assert_eq!(one_byte_at_a_time(&stream).unwrap(), expected);
        for split in 0..=stream.len() {
            let (a, b) = stream.split_at(split);
            assert_eq!(decode_pieces([a, b]).unwrap(), expected, "split at {split}");
        }
        // Three pieces, so a middle piece can hold a whole frame plus parts of others.
        for i in (0..=stream.len()).step_by(7) {
            for j in (i..=stream.len()).step_by(5) {
                let pieces = [&stream[..i], &stream[i..j], &stream[j..]];
                assert_eq!(decode_pieces(pieces).unwrap(), expected, "split at {i}, {j}");
            }
        }
    }

    #[test]
    fn decode_frame_incomplete_is_too_short() {
        let bytes = event_frame("metadata", b"{}");
        for len in 0..bytes.len() {
            assert_eq!(decode_frame(&bytes[..len]), Err(FrameError::TooShort), "len {len}");
        }
        // Trailing bytes after a frame are left for the next call.
        let mut two = bytes.clone();
        two.extend_from_slice(&bytes);
        let (_, used) = decode_frame(&two).unwrap();
        assert_eq!(used, bytes.len());
    }

    #[test]
    fn corrupt_prelude_crc_fails_before_frame_arrives() {
        let mut bytes = event_frame("contentBlockDelta", &[b'x'; 1000]);
        bytes[9] ^= 0x01;
        let mut d = Decoder::new();
        d.feed(&bytes[..11]).unwrap();
        assert_eq!(d.feed(&bytes[11..12]), Err(FrameError::PreludeCrc));
        assert_eq!(d.pending_bytes(), 0);
        // A corrupt length is caught by the prelude CRC too.
        let mut bytes = event_frame("contentBlockDelta", b"{}");
        bytes[2] = 0x7f;
        let mut d = Decoder::new();
        assert_eq!(d.feed(&bytes[..12]), Err(FrameError::PreludeCrc));
    }

    #[test]
    fn corrupt_payload_is_message_crc() {
        let good = event_frame("contentBlockDelta", b"{\"delta\":{\"text\":\"hi\"}}");
        let mut bad = good.clone();
        let last_payload = bad.len() - MESSAGE_CRC_BYTES - 1;
        bad[last_payload] ^= 0x20;
        assert_eq!(decode_frame(&bad).unwrap_err(), FrameError::MessageCrc);
        assert_eq!(one_byte_at_a_time(&bad).unwrap_err(), FrameError::MessageCrc);

        // Frames before the bad one are still delivered.
        let mut d = Decoder::new();
        let mut stream = good.clone();
        stream.extend_from_slice(&bad);
        assert_eq!(d.feed(&stream), Err(FrameError::MessageCrc));
        assert_eq!(d.next_frame(), Some(decode_frame(&good).unwrap().0));
        assert_eq!(d.next_frame(), None);
    }

    #[test]
    fn declared_length_limits() {
        let too_long = prelude(MAX_FRAME_BYTES as u32 + 1, 0);
        assert_eq!(decode_frame(&too_long), Err(FrameError::TooLong));
        let mut d = Decoder::new();
        assert_eq!(d.feed(&too_long), Err(FrameError::TooLong));
        assert_eq!(decode_frame(&prelude(u32::MAX, 0)), Err(FrameError::TooLong));

        assert_eq!(
            decode_frame(&prelude(MIN_FRAME_BYTES as u32 - 1, 0)),
            Err(FrameError::TooShort)
        );
        assert_eq!(decode_frame(&prelude(0, 0)), Err(FrameError::TooShort));

        // Headers longer than the frame has room for, or than the limit.
        assert_eq!(decode_frame(&prelude(20, 5)), Err(FrameError::HeadersLength));
        let big = (MAX_HEADERS_BYTES + 1) as u32;
        assert_eq!(decode_frame(&prelude(big + 16, big)), Err(FrameError::HeadersLength));

        // A maximal frame is accepted, whole or in pieces.
        let payload = vec![7u8; MAX_FRAME_BYTES - MIN_FRAME_BYTES];
        let bytes = encode_frame(&[], &payload);
        assert_eq!(bytes.len(), MAX_FRAME_BYTES);
        let (f, used) = decode_frame(&bytes).unwrap();
        assert_eq!((f.payload.len(), used), (payload.len(), MAX_FRAME_BYTES));
        let frames = decode_pieces(bytes.chunks(1 << 20)).unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].payload.len(), payload.len());
    }

    #[test]
    fn decoder_stays_failed() {
        let mut bad = event_frame("a", b"x");
        bad[13] ^= 0xff;
        let good = event_frame("b", b"y");
        let mut d = Decoder::new();
        assert_eq!(d.feed(&bad), Err(FrameError::MessageCrc));
        assert_eq!(d.error(), Some(FrameError::MessageCrc));
        assert_eq!(d.feed(&good), Err(FrameError::MessageCrc));
        assert_eq!(d.feed(&[]), Err(FrameError::MessageCrc));
        assert_eq!(d.next_frame(), None);
    }

    #[test]
    fn header_errors() {
        // Unknown value type.
        let f = raw_frame(&[1, b'a', 10], b"");
        assert_eq!(decode_frame(&f).unwrap_err(), FrameError::HeaderValueType(10));
        // Empty name, and a name running past the section.
        assert_eq!(
            decode_frame(&raw_frame(&[0, 0], b"")).unwrap_err(),
            FrameError::HeaderNameLength
        );
        assert_eq!(
            decode_frame(&raw_frame(&[5, b'a', b'b'], b"")).unwrap_err(),
            FrameError::HeaderNameLength
        );
        // Missing value type, short fixed value, string length past the section.
        assert_eq!(
            decode_frame(&raw_frame(&[1, b'a'], b"")).unwrap_err(),
            FrameError::HeaderTruncated
        );
        assert_eq!(
            decode_frame(&raw_frame(&[1, b'a', 4, 0, 0], b"")).unwrap_err(),
            FrameError::HeaderTruncated
        );
        assert_eq!(
            decode_frame(&raw_frame(&[1, b'a', 7, 0], b"xx")).unwrap_err(),
            FrameError::HeaderTruncated
        );
        assert_eq!(
            decode_frame(&raw_frame(&[1, b'a', 7, 0, 3, b'x'], b"yy")).unwrap_err(),
            FrameError::HeaderTruncated
        );
        assert_eq!(
            decode_frame(&raw_frame(&[1, b'a', 9, 1, 2], b"")).unwrap_err(),
            FrameError::HeaderTruncated
        );
        // Invalid UTF-8 in a name and in a string value; byte arrays may hold anything.
        assert_eq!(
            decode_frame(&raw_frame(&[1, 0xff, 0], b"")).unwrap_err(),
            FrameError::InvalidUtf8
        );
        assert_eq!(
            decode_frame(&raw_frame(&[1, b'a', 7, 0, 1, 0xc3], b"")).unwrap_err(),
            FrameError::InvalidUtf8
        );
        let (f, _) = decode_frame(&raw_frame(&[1, b'a', 6, 0, 1, 0xc3], b"")).unwrap();
        assert_eq!(f.headers, vec![("a".to_owned(), HeaderValue::Bytes(vec![0xc3]))]);
    }

    #[test]
    fn errors_display() {
        for e in [
            FrameError::TooShort,
            FrameError::TooLong,
            FrameError::PreludeCrc,
            FrameError::MessageCrc,
            FrameError::HeadersLength,
            FrameError::HeaderNameLength,
            FrameError::HeaderValueType(42),
            FrameError::HeaderTruncated,
            FrameError::InvalidUtf8,
        ] {
            let boxed: Box<dyn std::error::Error> = Box::new(e);
            assert!(boxed.to_string().starts_with("event-stream"));
        }
        assert!(FrameError::HeaderValueType(42).to_string().contains("42"));
    }
}
