//! Response heads (what the upstream answered), parsed by httparse beside the request
//! parser: status, framing (Content-Length, chunked, or to the end of the connection;
//! Transfer-Encoding wins over Content-Length and makes the connection unreusable), the
//! `Connection` semantics, and the few headers the proxy reads or relays.

use super::limits::{MAX_HEADERS, MAX_HEAD_BYTES};
use super::HttpError;

/// Longest `x-amzn-RequestId` kept.
pub(crate) const MAX_REQUEST_ID_CHARS: usize = 128;

/// Most `x-amzn-bedrock-*` headers kept from one response (InvokeModel reports its
/// usage in them); more are ignored.
pub(crate) const MAX_BEDROCK_HEADERS: usize = 16;
/// Longest `x-amzn-bedrock-*` header value kept; a longer one is ignored.
pub(crate) const MAX_BEDROCK_HEADER_VALUE: usize = 256;

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseFraming {
    /// 1xx, 204 and 304 carry no body.
    None,
    Length(u64),
    Chunked,
    /// Delimited by the end of the connection.
    Eof,
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResponseHead {
    pub status: u16,
    /// Bytes of the head, blank line included.
    pub len: usize,
    pub framing: ResponseFraming,
    /// The connection must not carry another request.
    pub close: bool,
    pub content_type: Option<Vec<u8>>,
    /// `x-amzn-RequestId`.
    pub request_id: Option<String>,
    /// `x-amzn-ErrorType`, as sent.
    pub error_type: Option<Vec<u8>>,
    /// The `x-amzn-bedrock-*` headers (token counts, latency, tier, stream content
    /// type), names as sent: read for usage and relayed on InvokeModel answers.
    pub bedrock: Vec<(String, Vec<u8>)>,
}

impl ResponseHead {
    /// The value of the `x-amzn-bedrock-{suffix}` header (`suffix` lower-case).
    pub(crate) fn bedrock_header(&self, suffix: &str) -> Option<&[u8]> {
        self.bedrock
            .iter()
            .find(|(n, _)| {
                n.len() == BEDROCK_PREFIX.len() + suffix.len() && n[BEDROCK_PREFIX.len()..].eq_ignore_ascii_case(suffix)
            })
            .map(|(_, v)| v.as_slice())
    }
}

/// The prefix of Bedrock's own response headers.
const BEDROCK_PREFIX: &str = "x-amzn-bedrock-";

const BAD: fn(&'static str) -> HttpError = HttpError::BadResponse;

/// Parses a response head at the start of `buf`. `Ok(None)`: incomplete, read more.
pub(crate) fn parse_response_head(buf: &[u8]) -> Result<Option<ResponseHead>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let n = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > MAX_HEAD_BYTES {
                return Err(BAD("response head too large"));
            }
            return Ok(None);
        }
        Err(_) => return Err(BAD("malformed response head")),
    };
    let status = resp.code.unwrap_or(0);
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut h = ResponseHead {
        status,
        len: n,
        framing: ResponseFraming::Eof,
        close: resp.version == Some(0),
        content_type: None,
        request_id: None,
        error_type: None,
        bedrock: Vec::new(),
    };
    for hd in resp.headers.iter() {
        let v = hd.value;
        if hd.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(v)
                .ok()
                .map(str::trim)
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or(BAD("bad Content-Length"))?;
            if content_length.is_some_and(|p| p != n) {
                return Err(BAD("conflicting Content-Length"));
            }
            content_length = Some(n);
        } else if hd.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = v.rsplit(|&b| b == b',').next().unwrap_or(b"");
            if !String::from_utf8_lossy(last).trim().eq_ignore_ascii_case("chunked") {
                return Err(BAD("unsupported Transfer-Encoding"));
            }
            chunked = true;
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
            h.request_id = std::str::from_utf8(v)
                .ok()
                .map(|s| crate::util::text::truncate_chars(s, MAX_REQUEST_ID_CHARS));
        } else if hd.name.eq_ignore_ascii_case("x-amzn-errortype") {
            h.error_type = Some(v.to_vec());
        } else if hd.name.len() > BEDROCK_PREFIX.len()
            && hd.name.as_bytes()[..BEDROCK_PREFIX.len()].eq_ignore_ascii_case(BEDROCK_PREFIX.as_bytes())
            && h.bedrock.len() < MAX_BEDROCK_HEADERS
            && v.len() <= MAX_BEDROCK_HEADER_VALUE
        {
            h.bedrock.push((hd.name.to_string(), v.to_vec()));
        }
    }
    h.framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        ResponseFraming::None
    } else if chunked {
        // Transfer-Encoding wins over Content-Length (RFC 9112 §6.3); never reuse such a
        // connection.
        if content_length.is_some() {
            h.close = true;
        }
        ResponseFraming::Chunked
    } else {
        match content_length {
            Some(n) => ResponseFraming::Length(n),
            None => ResponseFraming::Eof,
        }
    };
    if h.framing == ResponseFraming::Eof {
        h.close = true;
    }
    Ok(Some(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_and_headers() {
        let h = parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nx-amzn-RequestId: abc\r\n\r\nhello")
            .unwrap()
            .unwrap();
        assert_eq!((h.status, h.framing, h.close), (200, ResponseFraming::Length(5), false));
        assert_eq!(h.request_id.as_deref(), Some("abc"));
        let h = parse_response_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((h.framing, h.close), (ResponseFraming::Chunked, true));
        let h = parse_response_head(b"HTTP/1.1 204 No Content\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, ResponseFraming::None);
        let h = parse_response_head(b"HTTP/1.0 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!((h.framing, h.close), (ResponseFraming::Eof, true));
        assert!(parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").is_err());
        assert!(parse_response_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n").is_err());
        assert_eq!(parse_response_head(b"HTTP/1.1 200 OK\r\n"), Ok(None));
        // Bedrock's own headers are kept with their names as sent, found by suffix.
        let long = format!("x-amzn-bedrock-trace: {}\r\n", "a".repeat(MAX_BEDROCK_HEADER_VALUE + 1));
        let raw = format!("HTTP/1.1 200 OK\r\nX-Amzn-Bedrock-Input-Token-Count: 12\r\n{long}x-amzn-bedrock-: 1\r\nContent-Length: 0\r\n\r\n");
        let h = parse_response_head(raw.as_bytes()).unwrap().unwrap();
        assert_eq!(
            h.bedrock,
            vec![("X-Amzn-Bedrock-Input-Token-Count".to_string(), b"12".to_vec())]
        );
        assert_eq!(h.bedrock_header("input-token-count"), Some(&b"12"[..]));
        assert_eq!(h.bedrock_header("output-token-count"), None);
    }
}
