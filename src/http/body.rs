//! Message bodies, one decoder for both directions (`Decoder`: a fixed length, `chunked`,
//! or to the end of the connection) used by the server's body reader, the upstream
//! response reader and the stream relay; under it the incremental, strict `chunked`
//! decoder (bounded size lines and trailers, CRLF only, no overflow).

use super::limits::{MAX_CHUNK_LINE, MAX_TRAILER_BYTES};
use super::request::BodyFraming;
use super::response::ResponseFraming;
use super::HttpError;

/// How a body is delimited and how much of it has been seen.
#[derive(Debug, Clone)]
pub(crate) enum Decoder {
    /// A fixed length: payload bytes still to come.
    Length(u64),
    Chunked(ChunkedDecoder),
    /// To the end of the connection (responses only); `done` once it ended.
    Eof {
        done: bool,
    },
}

impl Decoder {
    /// The decoder of a request body.
    pub(crate) fn request(f: BodyFraming) -> Decoder {
        match f {
            BodyFraming::None => Decoder::Length(0),
            BodyFraming::Length(n) => Decoder::Length(n),
            BodyFraming::Chunked => Decoder::Chunked(ChunkedDecoder::new()),
        }
    }

    /// The decoder of a response body.
    pub(crate) fn response(f: ResponseFraming) -> Decoder {
        match f {
            ResponseFraming::None => Decoder::Length(0),
            ResponseFraming::Length(n) => Decoder::Length(n),
            ResponseFraming::Chunked => Decoder::Chunked(ChunkedDecoder::new()),
            ResponseFraming::Eof => Decoder::Eof { done: false },
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        match self {
            Decoder::Length(n) => *n == 0,
            Decoder::Chunked(c) => c.is_done(),
            Decoder::Eof { done } => *done,
        }
    }

    /// Payload bytes still to come for a fixed length (read them straight into the
    /// destination, then [`Decoder::consumed`]).
    pub(crate) fn remaining(&self) -> Option<u64> {
        match self {
            Decoder::Length(n) => Some(*n),
            _ => None,
        }
    }

    /// Notes `n` payload bytes of a fixed length read straight into the destination.
    pub(crate) fn consumed(&mut self, n: u64) {
        if let Decoder::Length(left) = self {
            *left = left.saturating_sub(n);
        }
    }

    /// Decodes the body bytes at the start of `input`, appending the payload to `out`
    /// (never beyond `max` in total). Returns how many input bytes belonged to the body;
    /// the rest is what follows it (the next message).
    pub(crate) fn decode(&mut self, input: &[u8], out: &mut Vec<u8>, max: usize) -> Result<usize, HttpError> {
        match self {
            Decoder::Length(left) => {
                let n = (*left).min(input.len() as u64) as usize;
                if out.len() + n > max {
                    return Err(HttpError::BodyTooLarge);
                }
                out.extend_from_slice(&input[..n]);
                *left -= n as u64;
                Ok(n)
            }
            Decoder::Chunked(c) => c.feed(input, out, max),
            Decoder::Eof { .. } => {
                if out.len() + input.len() > max {
                    return Err(HttpError::BodyTooLarge);
                }
                out.extend_from_slice(input);
                Ok(input.len())
            }
        }
    }

    /// [`Decoder::decode`] of an owned piece, without a copy where the framing allows it
    /// (a fixed length is truncated, a body to the end passes as is). Returns the payload
    /// and whether bytes followed the end of the body in `piece`.
    pub(crate) fn decode_owned(&mut self, mut piece: Vec<u8>, max: usize) -> Result<(Vec<u8>, bool), HttpError> {
        match self {
            Decoder::Length(left) => {
                let n = (*left).min(piece.len() as u64) as usize;
                *left -= n as u64;
                let extra = n < piece.len();
                piece.truncate(n);
                Ok((piece, extra))
            }
            Decoder::Chunked(c) => {
                let mut out = Vec::with_capacity(piece.len());
                let used = c.feed(&piece, &mut out, max)?;
                Ok((out, used < piece.len()))
            }
            Decoder::Eof { .. } => Ok((piece, false)),
        }
    }

    /// The connection ended: the end of an `Eof` body, else a cut message.
    pub(crate) fn end_of_stream(&mut self) -> Result<(), HttpError> {
        match self {
            Decoder::Eof { done } => {
                *done = true;
                Ok(())
            }
            _ if self.is_done() => Ok(()),
            _ => Err(HttpError::UnexpectedEof),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size (accumulated in `ChunkedDecoder::size`).
    Size {
        digits: u8,
    },
    /// Skipping a chunk extension up to CR.
    Ext,
    /// Expecting LF after the size line's CR.
    SizeLf,
    /// Copying chunk data.
    Data(u64),
    /// Expecting CR then LF after chunk data.
    DataCr,
    DataLf,
    /// Inside the trailer section: `line_start` tells whether this line is empty so far.
    Trailer {
        line_start: bool,
    },
    TrailerLf {
        empty: bool,
    },
    Done,
}

/// Incremental decoder for `Transfer-Encoding: chunked`.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    size: u64,
    line_len: usize,
    trailer_bytes: usize,
    decoded: u64,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: State::Size { digits: 0 },
            size: 0,
            line_len: 0,
            trailer_bytes: 0,
            decoded: 0,
        }
    }
}

const BAD_CHUNK: HttpError = HttpError::BadRequest("invalid chunked encoding");

impl ChunkedDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Total payload bytes decoded so far.
    pub fn decoded(&self) -> u64 {
        self.decoded
    }

    /// Feeds `input`, appending payload bytes to `out` (never beyond `max_body` in
    /// total). Returns how many input bytes were consumed; stops at the end of the
    /// message, leaving what follows (a pipelined request) unconsumed.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>, max_body: usize) -> Result<usize, HttpError> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Done => return Ok(i),
                State::Size { digits } => {
                    self.bump_line()?;
                    match crate::util::hex::digit_value(b) {
                        Some(d) => {
                            if digits >= 15 {
                                return Err(BAD_CHUNK);
                            }
                            self.size = self.size << 4 | d as u64;
                            self.state = State::Size { digits: digits + 1 };
                        }
                        None if digits == 0 => return Err(BAD_CHUNK),
                        None => match b {
                            b';' => self.state = State::Ext,
                            b'\r' => self.state = State::SizeLf,
                            // Whitespace before an extension (RFC 9112 BWS) is tolerated.
                            b' ' | b'\t' => self.state = State::Ext,
                            _ => return Err(BAD_CHUNK),
                        },
                    }
                }
                State::Ext => {
                    self.bump_line()?;
                    match b {
                        b'\r' => self.state = State::SizeLf,
                        b'\n' | 0 => return Err(BAD_CHUNK),
                        _ => {}
                    }
                }
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(BAD_CHUNK);
                    }
                    self.line_len = 0;
                    let size = self.size;
                    self.size = 0;
                    if size == 0 {
                        self.state = State::Trailer { line_start: true };
                    } else {
                        if self.decoded + size > max_body as u64 {
                            return Err(HttpError::BodyTooLarge);
                        }
                        self.state = State::Data(size);
                    }
                }
                State::Data(left) => {
                    let take = (left as usize).min(input.len() - i);
                    out.extend_from_slice(&input[i..i + take]);
                    self.decoded += take as u64;
                    i += take;
                    self.state = if left as usize == take {
                        State::DataCr
                    } else {
                        State::Data(left - take as u64)
                    };
                    continue;
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(BAD_CHUNK);
                    }
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(BAD_CHUNK);
                    }
                    self.state = State::Size { digits: 0 };
                }
                State::Trailer { line_start } => {
                    self.trailer_bytes += 1;
                    if self.trailer_bytes > MAX_TRAILER_BYTES {
                        return Err(BAD_CHUNK);
                    }
                    match b {
                        b'\r' => self.state = State::TrailerLf { empty: line_start },
                        b'\n' | 0 => return Err(BAD_CHUNK),
                        _ => self.state = State::Trailer { line_start: false },
                    }
                }
                State::TrailerLf { empty } => {
                    if b != b'\n' {
                        return Err(BAD_CHUNK);
                    }
                    if empty {
                        self.state = State::Done;
                        return Ok(i + 1);
                    }
                    self.state = State::Trailer { line_start: true };
                }
            }
            i += 1;
        }
        Ok(i)
    }

    fn bump_line(&mut self) -> Result<(), HttpError> {
        self.line_len += 1;
        if self.line_len > MAX_CHUNK_LINE {
            return Err(BAD_CHUNK);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_split(input: &[u8], split: usize) -> Result<(Vec<u8>, usize), HttpError> {
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        let a = d.feed(&input[..split], &mut out, 1 << 20)?;
        let mut used = a;
        if !d.is_done() {
            used = split + d.feed(&input[split..], &mut out, 1 << 20)?;
        }
        assert!(d.is_done());
        Ok((out, used))
    }

    #[test]
    fn decodes_at_every_split() {
        let msg = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\nGET /next";
        for split in 0..msg.len() - 9 {
            let (out, used) = decode_split(msg, split).unwrap();
            assert_eq!(out, b"hello world");
            assert_eq!(&msg[used..], b"GET /next");
        }
    }

    #[test]
    fn rejects_bad_framing() {
        for bad in [
            &b"g\r\n"[..],
            b"\r\n",
            b"5\nhello\r\n",
            b"5\r\nhelloX\r\n",
            b"ffffffffffffffff0\r\n",
            b"-5\r\n",
            b"0\r\nX: y\n\r\n",
        ] {
            let mut d = ChunkedDecoder::new();
            let mut out = Vec::new();
            assert!(
                d.feed(bad, &mut out, 1 << 20).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long_ext = format!("1;{}\r\n", "a".repeat(MAX_CHUNK_LINE));
        assert!(ChunkedDecoder::new()
            .feed(long_ext.as_bytes(), &mut Vec::new(), 1 << 20)
            .is_err());
    }

    #[test]
    fn one_decoder_for_every_framing() {
        let mut d = Decoder::request(BodyFraming::Length(5));
        let mut out = Vec::new();
        assert_eq!(d.decode(b"hel", &mut out, 100), Ok(3));
        assert_eq!(d.remaining(), Some(2));
        assert_eq!(d.decode(b"loGET", &mut out, 100), Ok(2));
        assert!(d.is_done() && out == b"hello");
        let mut d = Decoder::response(ResponseFraming::Length(3));
        assert_eq!(d.decode_owned(b"abcd".to_vec(), 100), Ok((b"abc".to_vec(), true)));
        let mut d = Decoder::response(ResponseFraming::Chunked);
        assert_eq!(
            d.decode_owned(b"3\r\nabc\r\n0\r\n\r\n".to_vec(), 100),
            Ok((b"abc".to_vec(), false))
        );
        assert!(d.is_done());
        let mut d = Decoder::response(ResponseFraming::Eof);
        assert_eq!(d.decode_owned(b"xyz".to_vec(), 100), Ok((b"xyz".to_vec(), false)));
        assert!(!d.is_done());
        assert_eq!(d.end_of_stream(), Ok(()));
        assert!(d.is_done());
        let mut d = Decoder::response(ResponseFraming::Length(3));
        assert_eq!(d.end_of_stream(), Err(HttpError::UnexpectedEof));
        assert!(Decoder::request(BodyFraming::None).is_done());
        assert_eq!(
            Decoder::request(BodyFraming::Length(9)).decode(b"123456789", &mut Vec::new(), 4),
            Err(HttpError::BodyTooLarge)
        );
    }

    #[test]
    fn enforces_max_body() {
        let mut d = ChunkedDecoder::new();
        let r = d.feed(b"10\r\n0123456789abcdef\r\n0\r\n\r\n", &mut Vec::new(), 8);
        assert_eq!(r, Err(HttpError::BodyTooLarge));
    }
}
