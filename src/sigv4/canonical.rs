//! The canonical request of SigV4: URI (normalised, encoded once or twice), query,
//! sorted lower-cased headers with trimmed values, signed-header list, payload hash.
//! Everything is written into a caller-owned buffer so a shard reuses one allocation.

use super::SignError;

/// At most this many header lines are signed in one request.
pub const MAX_SIGNED_HEADERS: usize = 64;

/// How the canonical URI encodes the (already wire-encoded) path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathEncoding {
    /// Every service but S3: each byte outside the unreserved set, `%` included, is
    /// encoded, so `%3A` on the wire becomes `%253A` in the canonical URI.
    Double,
    /// S3 style (and AWS's generic test suite): the wire path is taken as encoded;
    /// only bytes that are not yet encoded (`%` is kept) are encoded.
    Single,
}

#[inline]
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Percent-encodes `input` into `out`, keeping unreserved bytes and those in `keep`.
pub fn uri_encode(input: &[u8], keep: &[u8], out: &mut Vec<u8>) {
    for &b in input {
        if is_unreserved(b) || keep.contains(&b) {
            out.push(b);
        } else {
            out.push(b'%');
            out.push(UPPER_HEX[(b >> 4) as usize]);
            out.push(UPPER_HEX[(b & 0xf) as usize]);
        }
    }
}

/// Writes the canonical URI of `path` (the path as sent on the wire, without query).
///
/// With `normalize`, RFC 3986 dot segments are removed and empty segments dropped
/// (a trailing slash is kept), as AWS does for every service but S3.
pub fn write_canonical_uri(path: &[u8], normalize: bool, enc: PathEncoding, out: &mut Vec<u8>) {
    let keep: &[u8] = match enc {
        PathEncoding::Double => b"/",
        PathEncoding::Single => b"/%",
    };
    if path.is_empty() {
        out.push(b'/');
        return;
    }
    if !normalize {
        uri_encode(path, keep, out);
        return;
    }
    // Normalise into a stack of segment ranges (any number of segments: a fuzzer found
    // that a fixed-size stack silently dropped the 129th).
    let mut segs: Vec<(usize, usize)> = Vec::with_capacity(8);
    let trailing =
        path.ends_with(b"/") || path.ends_with(b"/.") || path.ends_with(b"/..") || path == b"." || path == b"..";
    for seg in split_segments(path) {
        match seg {
            (s, e) if e == s => {}
            (s, e) if &path[s..e] == b"." => {}
            (s, e) if &path[s..e] == b".." => {
                segs.pop();
            }
            (s, e) => segs.push((s, e)),
        }
    }
    out.push(b'/');
    for (i, &(s, e)) in segs.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        // Segments hold no '/', so `keep` only matters for '%'.
        uri_encode(&path[s..e], keep, out);
    }
    if trailing && !segs.is_empty() {
        out.push(b'/');
    }
}

fn split_segments(path: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut start = 0usize;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        match path[start..].iter().position(|&b| b == b'/') {
            Some(p) => {
                let seg = (start, start + p);
                start += p + 1;
                Some(seg)
            }
            None => {
                done = true;
                Some((start, path.len()))
            }
        }
    })
}

/// Writes the canonical query string: parameters sorted by encoded name then value.
/// `query` is the raw query as sent (without `?`); its parts are decoded and re-encoded.
pub fn write_canonical_query(query: &[u8], out: &mut Vec<u8>) {
    if query.is_empty() {
        return;
    }
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for part in query.split(|&b| b == b'&') {
        if part.is_empty() {
            continue;
        }
        let (k, v) = match part.iter().position(|&b| b == b'=') {
            Some(p) => (&part[..p], &part[p + 1..]),
            None => (part, &b""[..]),
        };
        let mut ek = Vec::new();
        let mut ev = Vec::new();
        uri_encode(&percent_decode(k), b"", &mut ek);
        uri_encode(&percent_decode(v), b"", &mut ev);
        pairs.push((ek, ev));
    }
    pairs.sort();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(k);
        out.push(b'=');
        out.extend_from_slice(v);
    }
}

/// Decodes `%XX` escapes; malformed escapes are kept as they are.
pub(crate) fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'%' && i + 2 < input.len() {
            if let (Some(h), Some(l)) = (
                crate::util::hex::digit_value(input[i + 1]),
                crate::util::hex::digit_value(input[i + 2]),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    out
}

fn cmp_lower(a: &str, b: &str) -> std::cmp::Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

/// Appends a header value trimmed, with every run of whitespace (line breaks of a
/// folded value included) collapsed to one space.
fn push_trimmed_value(v: &[u8], out: &mut Vec<u8>) {
    let mut pending_space = false;
    let mut any = false;
    for &b in v {
        if matches!(b, b' ' | b'\t' | b'\r' | b'\n') {
            pending_space = any;
        } else {
            if pending_space {
                out.push(b' ');
                pending_space = false;
            }
            out.push(b);
            any = true;
        }
    }
}

/// Writes the canonical headers block and returns the signed-headers list appended
/// at `signed_out`. Duplicate names are joined with `,` in their original order.
pub fn write_canonical_headers(
    headers: &[(&str, &[u8])],
    out: &mut Vec<u8>,
    signed_out: &mut Vec<u8>,
) -> Result<(), SignError> {
    if headers.len() > MAX_SIGNED_HEADERS {
        return Err(SignError::TooManyHeaders);
    }
    let mut idx = [0u8; MAX_SIGNED_HEADERS];
    for (i, slot) in idx.iter_mut().enumerate().take(headers.len()) {
        *slot = i as u8;
    }
    let idx = &mut idx[..headers.len()];
    // Stable: duplicates keep their order.
    idx.sort_by(|&a, &b| cmp_lower(headers[a as usize].0, headers[b as usize].0));
    let mut prev: Option<&str> = None;
    for &i in idx.iter() {
        let (name, value) = headers[i as usize];
        if name.is_empty() || name.bytes().any(|c| c == b':' || c.is_ascii_whitespace()) {
            return Err(SignError::InvalidHeaderName);
        }
        let same = prev.is_some_and(|p| p.eq_ignore_ascii_case(name));
        if same {
            out.push(b',');
        } else {
            if prev.is_some() {
                out.push(b'\n');
                signed_out.push(b';');
            }
            for c in name.bytes() {
                out.push(c.to_ascii_lowercase());
                signed_out.push(c.to_ascii_lowercase());
            }
            out.push(b':');
        }
        push_trimmed_value(value, out);
        prev = Some(name);
    }
    if prev.is_some() {
        out.push(b'\n');
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(p: &str, norm: bool, enc: PathEncoding) -> String {
        let mut out = Vec::new();
        write_canonical_uri(p.as_bytes(), norm, enc, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn double_encoding_of_model_ids() {
        assert_eq!(
            uri("/model/amazon.nova-lite-v1%3A0/converse", true, PathEncoding::Double),
            "/model/amazon.nova-lite-v1%253A0/converse"
        );
        assert_eq!(
            uri(
                "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ax%2Fy/converse",
                true,
                PathEncoding::Double
            ),
            "/model/arn%253Aaws%253Abedrock%253Aus-east-1%253A1%253Ax%252Fy/converse"
        );
    }

    #[test]
    fn normalisation() {
        assert_eq!(uri("//example//", true, PathEncoding::Single), "/example/");
        assert_eq!(uri("/example/..", true, PathEncoding::Single), "/");
        assert_eq!(uri("/./example", true, PathEncoding::Single), "/example");
        assert_eq!(uri("/a/b/../c/.", true, PathEncoding::Single), "/a/c/");
        assert_eq!(uri("//", false, PathEncoding::Single), "//");
        assert_eq!(uri("", true, PathEncoding::Double), "/");
    }

    #[test]
    fn header_canonicalisation() {
        let h: Vec<(&str, &[u8])> = vec![
            ("My-Header1", b"value2"),
            ("Host", b"example.amazonaws.com"),
            ("my-header1", b"  a   b \n  c "),
        ];
        let mut out = Vec::new();
        let mut signed = Vec::new();
        write_canonical_headers(&h, &mut out, &mut signed).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "host:example.amazonaws.com\nmy-header1:value2,a b c\n"
        );
        assert_eq!(signed, b"host;my-header1");
    }

    #[test]
    fn query_sorted() {
        let mut out = Vec::new();
        write_canonical_query(b"b=2&a=1&%E1%88%B4=x", &mut out);
        assert_eq!(out, b"%E1%88%B4=x&a=1&b=2");
    }
}
