//! Request heads: parsed by httparse, then held as one owned copy of the head bytes plus
//! header offsets (two allocations per request). Framing is decided here, strictly:
//! duplicate Content-Length, Content-Length with Transfer-Encoding, any coding but
//! `chunked`, obs-fold, bare LF and NUL bytes are all rejected.

use super::limits::{MAX_HEADERS, MAX_HEAD_BYTES, MAX_URI_BYTES};

/// Longest request line: the longest target plus room for method and version.
const MAX_REQUEST_LINE: usize = MAX_URI_BYTES + 32;
use super::HttpError;

/// The request method, as far as the proxy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Other,
}

/// How the body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    None,
    Length(u64),
    Chunked,
}

/// A parsed request head. Its `Debug` shows the method, target and header names, never a
/// header value (they carry credentials).
#[derive(Clone)]
pub struct RequestHead {
    bytes: Vec<u8>,
    method: Method,
    target: (usize, usize),
    headers: Vec<[usize; 4]>,
    pub minor_version: u8,
    pub framing: BodyFraming,
    pub expect_continue: bool,
    /// The client asked to close after this request (or is HTTP/1.0 without keep-alive).
    pub close: bool,
}

fn offset(base: &[u8], part: &[u8]) -> usize {
    part.as_ptr() as usize - base.as_ptr() as usize
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !matches!(b, b' ' | b'\t')).unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |e| e + 1);
    &v[start..end]
}

fn has_token(v: &[u8], token: &[u8]) -> bool {
    v.split(|&b| b == b',').any(|t| trim(t).eq_ignore_ascii_case(token))
}

/// Parses a request head at the start of `buf`. `Ok(None)`: incomplete, read more.
/// On success returns the head and its length in bytes.
pub fn parse_head(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HttpError> {
    // A request line longer than any valid one is a URI problem (414), however the bytes
    // arrived: decide it before the head-size checks.
    match buf.iter().position(|&b| b == b'\n') {
        Some(end) if end > MAX_REQUEST_LINE => return Err(HttpError::UriTooLong),
        None if buf.len() > MAX_REQUEST_LINE => return Err(HttpError::UriTooLong),
        _ => {}
    }
    // Leading empty lines before a request line are tolerated by RFC 9112 §2.2, but
    // only as CRLF pairs.
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let status = match req.parse(buf) {
        Ok(s) => s,
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeadersTooLarge),
        Err(httparse::Error::Token) | Err(httparse::Error::HeaderName) if looks_like_obs_fold(buf) => {
            return Err(HttpError::BadRequest("obsolete line folding"))
        }
        Err(_) => {
            if buf.len() > MAX_HEAD_BYTES {
                return Err(HttpError::HeadersTooLarge);
            }
            return Err(HttpError::BadRequest("invalid request head"));
        }
    };
    let head_len = match status {
        httparse::Status::Partial => {
            if buf.len() > MAX_HEAD_BYTES {
                return Err(HttpError::HeadersTooLarge);
            }
            return Ok(None);
        }
        httparse::Status::Complete(n) => n,
    };
    if head_len > MAX_HEAD_BYTES {
        return Err(HttpError::HeadersTooLarge);
    }
    let head = &buf[..head_len];
    check_head_bytes(head)?;
    let method = match req.method {
        Some("GET") => Method::Get,
        Some("HEAD") => Method::Head,
        Some("POST") => Method::Post,
        _ => Method::Other,
    };
    let path = req.path.unwrap_or("");
    if path.len() > MAX_URI_BYTES {
        return Err(HttpError::UriTooLong);
    }
    if !path.starts_with('/') {
        return Err(HttpError::BadRequest("request target must be an absolute path"));
    }
    let minor_version = req.version.unwrap_or(1);
    let target = (offset(buf, path.as_bytes()), offset(buf, path.as_bytes()) + path.len());

    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut expect_continue = false;
    let mut close = minor_version == 0;
    let mut hosts = 0;
    let mut idx = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let name = h.name;
        let value = h.value;
        if name.eq_ignore_ascii_case("content-length") {
            if content_length.is_some() {
                return Err(HttpError::BadRequest("duplicate Content-Length"));
            }
            let v = trim(value);
            if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
                return Err(HttpError::BadRequest("invalid Content-Length"));
            }
            let mut n = 0u64;
            for &d in v {
                n = n * 10 + (d - b'0') as u64;
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if transfer_encoding {
                return Err(HttpError::BadRequest("duplicate Transfer-Encoding"));
            }
            if !trim(value).eq_ignore_ascii_case(b"chunked") {
                return Err(HttpError::BadRequest("unsupported Transfer-Encoding (only chunked)"));
            }
            transfer_encoding = true;
        } else if name.eq_ignore_ascii_case("connection") {
            if has_token(value, b"close") {
                close = true;
            } else if has_token(value, b"keep-alive") && minor_version == 0 {
                close = false;
            }
        } else if name.eq_ignore_ascii_case("expect") {
            // HTTP/1.0 has no interim responses (RFC 9110 §10.1.1): no 100 for it.
            if minor_version >= 1 && trim(value).eq_ignore_ascii_case(b"100-continue") {
                expect_continue = true;
            }
        } else if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            if hosts > 1 {
                return Err(HttpError::BadRequest("duplicate Host"));
            }
        }
        let ns = offset(buf, name.as_bytes());
        let vs = offset(buf, value);
        idx.push([ns, ns + name.len(), vs, vs + value.len()]);
    }
    if transfer_encoding && content_length.is_some() {
        return Err(HttpError::BadRequest("Content-Length with Transfer-Encoding"));
    }
    if transfer_encoding && minor_version == 0 {
        return Err(HttpError::BadRequest("Transfer-Encoding in HTTP/1.0"));
    }
    let framing = if transfer_encoding {
        BodyFraming::Chunked
    } else {
        match content_length {
            Some(0) | None => BodyFraming::None,
            Some(n) => BodyFraming::Length(n),
        }
    };
    let head = RequestHead {
        bytes: head.to_vec(),
        method,
        target,
        headers: idx,
        minor_version,
        framing,
        expect_continue,
        close,
    };
    Ok(Some((head, head_len)))
}

/// Bare LF line endings and NUL bytes are smuggling shapes: refuse them outright. Eight
/// bytes at a time: a word with neither a NUL nor an LF (most of a head) costs a few
/// instructions, and only a word holding one is looked at byte by byte.
fn check_head_bytes(head: &[u8]) -> Result<(), HttpError> {
    use crate::util::swar::{has_byte, has_zero, word};
    let words = head.chunks_exact(8);
    let tail = head.len() - words.remainder().len();
    for (n, c) in words.enumerate() {
        let w = word(c);
        if has_zero(w) || has_byte(w, b'\n') {
            check_bytes_at(head, n * 8, n * 8 + 8)?;
        }
    }
    check_bytes_at(head, tail, head.len())
}

fn check_bytes_at(head: &[u8], from: usize, to: usize) -> Result<(), HttpError> {
    for i in from..to {
        match head[i] {
            0 => return Err(HttpError::BadRequest("NUL byte in head")),
            b'\n' if i == 0 || head[i - 1] != b'\r' => return Err(HttpError::BadRequest("bare LF line ending")),
            _ => {}
        }
    }
    Ok(())
}

/// A line that starts with SP or HTAB right after a CRLF, inside the head.
fn looks_like_obs_fold(buf: &[u8]) -> bool {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(buf.len());
    buf[..end]
        .windows(3)
        .any(|w| w[0] == b'\r' && w[1] == b'\n' && (w[2] == b' ' || w[2] == b'\t'))
}

impl std::fmt::Debug for RequestHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .headers()
            .map(|(n, _)| String::from_utf8_lossy(n).into_owned())
            .collect();
        f.debug_struct("RequestHead")
            .field("method", &self.method)
            .field("target", &String::from_utf8_lossy(self.target()))
            .field("header_names", &names)
            .field("framing", &self.framing)
            .finish_non_exhaustive()
    }
}

impl RequestHead {
    pub fn method(&self) -> Method {
        self.method
    }

    /// The raw request target (path and query).
    pub fn target(&self) -> &[u8] {
        &self.bytes[self.target.0..self.target.1]
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| self.is_named(h, name))
            .map(|h| trim(&self.bytes[h[2]..h[3]]))
    }

    /// How many times header `name` appears.
    pub fn header_count(&self, name: &str) -> usize {
        self.headers.iter().filter(|h| self.is_named(h, name)).count()
    }

    /// Whether header entry `h` is called `name` (lengths first: a request looks up ~20
    /// names among its headers, and most differ in length).
    fn is_named(&self, h: &[usize; 4], name: &str) -> bool {
        h[1] - h[0] == name.len() && self.bytes[h[0]..h[1]].eq_ignore_ascii_case(name.as_bytes())
    }

    /// Every (name, value) pair, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.headers
            .iter()
            .map(|h| (&self.bytes[h[0]..h[1]], trim(&self.bytes[h[2]..h[3]])))
    }

    /// Whether the connection may carry another request after this one.
    pub fn keep_alive(&self) -> bool {
        !self.close
    }

    /// Zeroes the head bytes (they hold credentials) before the memory is freed.
    pub(crate) fn wipe(&mut self) {
        crate::util::wipe::wipe_vec(&mut self.bytes);
    }
}

impl Drop for RequestHead {
    fn drop(&mut self) {
        self.wipe();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Option<(RequestHead, usize)>, HttpError> {
        parse_head(s.as_bytes())
    }

    #[test]
    fn head_byte_check_matches_the_byte_rule() {
        let base = b"POST /model/x/converse HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX-Dept: eng\r\n\r\n".to_vec();
        let rule = |h: &[u8]| {
            h.iter()
                .enumerate()
                .all(|(i, &b)| b != 0 && (b != b'\n' || (i > 0 && h[i - 1] == b'\r')))
        };
        assert!(check_head_bytes(&base).is_ok());
        let mut refused = 0;
        for len in [base.len(), base.len() - 3, 9, 8, 7, 1] {
            for i in 0..len {
                for b in [0u8, b'\n', b'\r', b'x'] {
                    let mut h = base[..len].to_vec();
                    h[i] = b;
                    assert_eq!(check_head_bytes(&h).is_ok(), rule(&h), "byte {b} at {i} of {len}");
                    refused += usize::from(!rule(&h));
                }
            }
        }
        assert!(refused > 100, "the cases exercise refusals: {refused}");
    }

    #[test]
    fn simple_post() {
        let raw = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nX-Dept:  eng \r\n\r\nhello";
        let (h, n) = parse(raw).unwrap().unwrap();
        assert_eq!(&raw[n..], "hello");
        assert_eq!(h.method(), Method::Post);
        assert_eq!(h.target(), b"/x");
        assert_eq!(h.framing, BodyFraming::Length(5));
        assert_eq!(h.header("x-dept"), Some(&b"eng"[..]));
        assert!(h.keep_alive());
    }

    #[test]
    fn debug_shows_no_header_value() {
        let raw = "POST /x HTTP/1.1\r\nX-Aws-Secret-Access-Key: s3cr3t-value\r\nContent-Length: 0\r\n\r\n";
        let (h, _) = parse(raw).unwrap().unwrap();
        let d = format!("{h:?}");
        assert!(d.contains("X-Aws-Secret-Access-Key") && !d.contains("s3cr3t"), "{d}");
    }

    #[test]
    fn partial() {
        assert!(parse("POST /x HTTP/1.1\r\nHost: a\r\n").unwrap().is_none());
    }

    #[test]
    fn smuggling_shapes_rejected() {
        for bad in [
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n",
            "POST / HTTP/1.1\nHost: a\n\n",
            "POST / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "POST http://x/ HTTP/1.1\r\n\r\n",
        ] {
            assert!(
                matches!(parse(bad), Err(HttpError::BadRequest(_))),
                "{bad:?} -> {:?}",
                parse(bad).map(|o| o.map(|x| x.1))
            );
        }
    }

    #[test]
    fn limits() {
        let long_uri = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_URI_BYTES + 10));
        assert_eq!(parse(&long_uri).unwrap_err(), HttpError::UriTooLong);
        let many = format!("GET / HTTP/1.1\r\n{}\r\n", "X: y\r\n".repeat(MAX_HEADERS + 1));
        assert_eq!(parse(&many).unwrap_err(), HttpError::HeadersTooLarge);
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "y".repeat(MAX_HEAD_BYTES));
        assert_eq!(parse(&big).unwrap_err(), HttpError::HeadersTooLarge);
    }

    #[test]
    fn connection_semantics() {
        let (h, _) = parse("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!h.keep_alive());
        let (h, _) = parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.keep_alive());
        let (h, _) = parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap().unwrap();
        assert!(!h.keep_alive());
        let (h, _) = parse("POST / HTTP/1.1\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.expect_continue);
        assert_eq!(h.framing, BodyFraming::Chunked);
    }
}
