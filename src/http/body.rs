//! Message bodies: an incremental, strict `chunked` decoder (bounded size lines and
//! trailers, CRLF only, no overflow) used for client requests and upstream responses.

use super::limits::{MAX_CHUNK_LINE, MAX_TRAILER_BYTES};
use super::HttpError;

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
    fn enforces_max_body() {
        let mut d = ChunkedDecoder::new();
        let r = d.feed(b"10\r\n0123456789abcdef\r\n0\r\n\r\n", &mut Vec::new(), 8);
        assert_eq!(r, Err(HttpError::BodyTooLarge));
    }
}
