//! Standard base64 (RFC 4648 §4, `=` padding), for the `bytes` of InvokeModel stream
//! chunks: decoded into a caller-owned buffer (no allocation once it has grown), and
//! encoded by the mock.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Why a base64 text does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base64Error {
    /// A character outside the alphabet (or padding before the end).
    BadChar,
    /// A length that is not a multiple of four.
    BadLength,
}

fn value(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// Decodes `text` (padded) into `out`, which is cleared first.
pub fn decode_into(text: &[u8], out: &mut Vec<u8>) -> Result<(), Base64Error> {
    out.clear();
    if !text.len().is_multiple_of(4) {
        return Err(Base64Error::BadLength);
    }
    out.reserve(text.len() / 4 * 3);
    let quads = text.len() / 4;
    for (i, q) in text.chunks_exact(4).enumerate() {
        let last = i + 1 == quads;
        let pad = if last {
            q.iter().rev().take_while(|&&c| c == b'=').count()
        } else {
            0
        };
        if pad > 2 {
            return Err(Base64Error::BadChar);
        }
        let mut n: u32 = 0;
        for &c in &q[..4 - pad] {
            n = (n << 6) | value(c).ok_or(Base64Error::BadChar)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Ok(())
}

/// Appends `bytes` to `out` as padded base64.
pub fn encode_into(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        let chars = [(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63];
        for (i, v) in chars.iter().enumerate() {
            out.push(if i <= c.len() { ALPHABET[*v as usize] } else { b'=' });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors_both_ways() {
        // RFC 4648 §10.
        let vectors: [(&[u8], &[u8]); 7] = [
            (b"", b""),
            (b"f", b"Zg=="),
            (b"fo", b"Zm8="),
            (b"foo", b"Zm9v"),
            (b"foob", b"Zm9vYg=="),
            (b"fooba", b"Zm9vYmE="),
            (b"foobar", b"Zm9vYmFy"),
        ];
        let mut out = Vec::new();
        for (plain, text) in vectors {
            let mut enc = Vec::new();
            encode_into(plain, &mut enc);
            assert_eq!(enc, text);
            decode_into(text, &mut out).unwrap();
            assert_eq!(out, plain);
        }
        let all: Vec<u8> = (0..=255).collect();
        let mut enc = Vec::new();
        encode_into(&all, &mut enc);
        decode_into(&enc, &mut out).unwrap();
        assert_eq!(out, all);
    }

    #[test]
    fn rejects_what_is_not_base64() {
        let mut out = Vec::new();
        assert_eq!(decode_into(b"Zm9", &mut out), Err(Base64Error::BadLength));
        assert_eq!(decode_into(b"Zm9*", &mut out), Err(Base64Error::BadChar));
        assert_eq!(decode_into(b"Zg==Zm9v", &mut out), Err(Base64Error::BadChar));
        assert_eq!(decode_into(b"Z===", &mut out), Err(Base64Error::BadChar));
    }
}
