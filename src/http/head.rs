//! Writing message heads, both directions: a response to a client (`HTTP/1.1 200 OK`)
//! or a request to the upstream (`POST /model/... HTTP/1.1`), header by header into one
//! owned buffer, so that a head and a small body leave in a single write. Every value
//! passes one CR/LF scrub: nothing a header carries can end the line it is on.

/// The reason phrase of the statuses this server produces.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        424 => "Failed Dependency",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// Builds a message head into `out`.
pub(crate) struct HeadWriter<'a> {
    out: &'a mut Vec<u8>,
}

/// Appends `v` with every CR and LF replaced by a space: a copy, then a look at the copy
/// eight bytes at a time, and byte by byte only in a word that holds a CR or LF (none, in
/// practice).
fn push_scrubbed(out: &mut Vec<u8>, v: &[u8]) {
    use crate::util::swar::{has_byte, word};
    let start = out.len();
    out.extend_from_slice(v);
    let mut words = out[start..].chunks_exact_mut(8);
    for c in &mut words {
        let w = word(c);
        if has_byte(w, b'\r') || has_byte(w, b'\n') {
            scrub(c);
        }
    }
    scrub(words.into_remainder());
}

fn scrub(bytes: &mut [u8]) {
    for b in bytes {
        if *b == b'\r' || *b == b'\n' {
            *b = b' ';
        }
    }
}

impl<'a> HeadWriter<'a> {
    /// Starts a response: `HTTP/1.1 {status} {reason}`.
    pub(crate) fn new(out: &'a mut Vec<u8>, status: u16) -> Self {
        out.extend_from_slice(b"HTTP/1.1 ");
        push_u64(out, status as u64);
        out.push(b' ');
        out.extend_from_slice(reason(status).as_bytes());
        out.extend_from_slice(b"\r\n");
        HeadWriter { out }
    }

    /// Starts a request: `{method} {target} HTTP/1.1` (the target is scrubbed too).
    pub(crate) fn request(out: &'a mut Vec<u8>, method: &str, target: &[u8]) -> Self {
        out.extend_from_slice(method.as_bytes());
        out.push(b' ');
        push_scrubbed(out, target);
        out.extend_from_slice(b" HTTP/1.1\r\n");
        HeadWriter { out }
    }

    pub(crate) fn header(&mut self, name: &str, value: &[u8]) -> &mut Self {
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b": ");
        // Values are ours or were relayed after httparse validated them; still, never
        // let a CR or LF through into a head.
        push_scrubbed(self.out, value);
        self.out.extend_from_slice(b"\r\n");
        self
    }

    pub(crate) fn header_u64(&mut self, name: &str, value: u64) -> &mut Self {
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b": ");
        push_u64(self.out, value);
        self.out.extend_from_slice(b"\r\n");
        self
    }

    /// Ends the head; `close` adds `Connection: close`.
    pub(crate) fn finish(&mut self, close: bool) {
        if close {
            self.out.extend_from_slice(b"Connection: close\r\n");
        }
        self.end();
    }

    /// Ends the head (the blank line).
    pub(crate) fn end(&mut self) {
        self.out.extend_from_slice(b"\r\n");
    }
}

/// Appends the decimal form of `v`.
pub(crate) fn push_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(crate::util::num::I64Buf::default().format_u64(v).as_bytes());
}

/// Appends `s` as the inside of a JSON string (quotes not included).
pub(crate) fn push_json_str(out: &mut Vec<u8>, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

/// The proxy's error body: `{"message": "...", "code": "..."}`.
pub(crate) fn error_body(message: &str, code: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + code.len() + 32);
    out.extend_from_slice(b"{\"message\":\"");
    push_json_str(&mut out, message);
    out.extend_from_slice(b"\",\"code\":\"");
    push_json_str(&mut out, code);
    out.extend_from_slice(b"\"}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_and_error_body() {
        let mut out = Vec::new();
        HeadWriter::new(&mut out, 404)
            .header("x-request-id", b"abc")
            .header_u64("content-length", 12)
            .finish(true);
        assert_eq!(
            out,
            b"HTTP/1.1 404 Not Found\r\nx-request-id: abc\r\ncontent-length: 12\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(error_body("a \"b\"\n", "X"), br#"{"message":"a \"b\"\n","code":"X"}"#);
        let mut req = Vec::new();
        HeadWriter::request(&mut req, "POST", b"/model/x\r\nEvil: 1/converse")
            .header("Host", b"h\nX: y")
            .end();
        assert_eq!(req, b"POST /model/x  Evil: 1/converse HTTP/1.1\r\nHost: h X: y\r\n\r\n");
    }

    #[test]
    fn every_cr_and_lf_is_scrubbed_wherever_it_falls() {
        let base: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        for len in 0..base.len() {
            for at in 0..len {
                for bad in [b'\r', b'\n'] {
                    let mut v = base[..len].to_vec();
                    v[at] = bad;
                    if at + 1 < len {
                        v[len - 1] = b'\n';
                    }
                    let mut out = b"x: ".to_vec();
                    push_scrubbed(&mut out, &v);
                    let want: Vec<u8> = v
                        .iter()
                        .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
                        .collect();
                    assert_eq!(&out[3..], &want[..], "len {len}, {bad} at {at}");
                }
            }
        }
    }
}
