//! The properties the fuzz targets check, one `check_*` function per target, each taking
//! the raw fuzzer input. Inputs are decoded by hand (no `arbitrary`) so the seeds in
//! `fuzz/seeds/` stay readable and this file compiles in the main crate's tests too
//! (`tests/fuzz_regressions.rs` includes it by path and replays the seeds and every
//! minimised crash through the same checks).
//!
//! Input layouts:
//! - `request_head`: the bytes a client sent.
//! - `chunked_body`: `[split][max]` then a chunked body; `split` picks where the body is
//!   cut for the two-piece feed (`len * split / 255`), `max` the body limit
//!   (`max * 4` bytes, 255 meaning 1 MiB).
//! - `eventstream`: `[flags][split]` then an event stream; flags bit 0 rewrites every
//!   prelude and message CRC so the decoder gets past them, bit 1 also clamps declared
//!   lengths into what the input holds; `split` as above.
//! - `usage_scan`: a response body.
//! - `model_region`: the raw model-id path segment, `\n`, a region name.
//! - `sigv4_canonical`: `[flags]` then `\n`-separated lines: method, target
//!   (`path?query`), region, unix time (decimal; anything else means 1440938160), then
//!   headers as `Name:value`. Flags bit 0: normalise paths; bit 1: double encoding;
//!   bit 2: the path is repeated `(flags >> 3) * 8 + 1` times (long paths from short inputs).

use llmops_proxy::bedrock::eventstream::{
    decode_frame, encode_frame, Decoder, Frame, FrameError, HeaderValue, MIN_FRAME_BYTES, PRELUDE_BYTES,
};
use llmops_proxy::bedrock::model::{decode_model_id, encode_model_segment, GeoRules, MAX_MODEL_ID_LEN};
use llmops_proxy::bedrock::region::{is_valid_region, MAX_REGION_LEN};
use llmops_proxy::http::body::ChunkedDecoder;
use llmops_proxy::http::limits::{MAX_HEAD_BYTES, MAX_URI_BYTES};
use llmops_proxy::http::request::{parse_head, BodyFraming, RequestHead};
use llmops_proxy::http::HttpError;
use llmops_proxy::sigv4::canonical::{
    uri_encode, write_canonical_headers, write_canonical_query, write_canonical_uri, PathEncoding, MAX_SIGNED_HEADERS,
};
use llmops_proxy::sigv4::{Credentials, SignError, SignRequest, Signer, SigningKeyCache, SigningTime};
use llmops_proxy::usage::scan::{Scanner, Usage, MAX_INVOKED_MODEL, MAX_STOP_REASON};
use llmops_proxy::util::base64;

/// `len * sel / 255`: a cut point anywhere in `0..=len` chosen by one input byte.
fn cut(len: usize, sel: u8) -> usize {
    len * sel as usize / 255
}

// ---------------------------------------------------------------------------------------
// request_head

/// A head's observable fields, for comparing two parses.
#[derive(Debug, PartialEq, Eq)]
struct HeadView {
    method: String,
    target: Vec<u8>,
    minor_version: u8,
    framing: BodyFraming,
    expect_continue: bool,
    keep_alive: bool,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
}

fn view(h: &RequestHead) -> HeadView {
    HeadView {
        method: format!("{:?}", h.method()),
        target: h.target().to_vec(),
        minor_version: h.minor_version,
        framing: h.framing,
        expect_continue: h.expect_continue,
        keep_alive: h.keep_alive(),
        headers: h.headers().map(|(n, v)| (n.to_vec(), v.to_vec())).collect(),
    }
}

/// Trims SP and HTAB, the only whitespace a header value may carry (RFC 9110 OWS).
fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !matches!(b, b' ' | b'\t')).unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |e| e + 1);
    &v[start..end]
}

fn has_token(v: &[u8], token: &[u8]) -> bool {
    v.split(|&b| b == b',').any(|t| trim_ows(t).eq_ignore_ascii_case(token))
}

/// `parse_head` never panics; an accepted head is self-contained, strictly framed,
/// within the limits, and every prefix of it is "incomplete" (so a client whose head
/// arrives in pieces is never refused); an incomplete input is never over the head limit.
pub fn check_request_head(data: &[u8]) {
    let (head, n) = match parse_head(data) {
        Ok(Some(x)) => x,
        Ok(None) => {
            assert!(data.len() <= MAX_HEAD_BYTES, "incomplete head of {} bytes", data.len());
            return;
        }
        Err(_) => return,
    };
    assert!(n > 0 && n <= data.len(), "head length {n} of {} bytes", data.len());
    assert!(n <= MAX_HEAD_BYTES, "head length {n} over the limit");
    let raw = &data[..n];
    assert!(raw.ends_with(b"\r\n\r\n"), "head does not end with CRLFCRLF");
    assert!(!raw.contains(&0), "NUL byte in an accepted head");
    for (i, &b) in raw.iter().enumerate() {
        assert!(
            b != b'\n' || (i > 0 && raw[i - 1] == b'\r'),
            "bare LF at {i} in an accepted head"
        );
    }
    let v = view(&head);
    assert!(
        v.target.starts_with(b"/"),
        "target {:?} is not an absolute path",
        v.target
    );
    assert!(v.target.len() <= MAX_URI_BYTES);
    assert!(v.minor_version <= 1);

    // Framing agrees with the headers it was decided from.
    let count = |name: &str| head.header_count(name);
    assert!(count("host") <= 1, "duplicate Host accepted");
    assert!(count("content-length") <= 1, "duplicate Content-Length accepted");
    assert!(count("transfer-encoding") <= 1, "duplicate Transfer-Encoding accepted");
    let cl = head.header("content-length").map(|v| {
        assert!(
            !v.is_empty() && v.len() <= 19 && v.iter().all(u8::is_ascii_digit),
            "Content-Length {v:?}"
        );
        std::str::from_utf8(v).unwrap().parse::<u64>().unwrap()
    });
    match v.framing {
        BodyFraming::Chunked => {
            assert!(cl.is_none(), "Content-Length with chunked");
            assert!(head
                .header("transfer-encoding")
                .unwrap()
                .eq_ignore_ascii_case(b"chunked"));
            assert_eq!(v.minor_version, 1, "chunked in HTTP/1.0");
        }
        BodyFraming::Length(len) => {
            assert!(len > 0 && cl == Some(len), "Length({len}) from Content-Length {cl:?}");
            assert_eq!(count("transfer-encoding"), 0);
        }
        BodyFraming::None => {
            assert!(cl.unwrap_or(0) == 0, "Content-Length {cl:?} framed as no body");
            assert_eq!(count("transfer-encoding"), 0);
        }
    }
    let close_asked = head
        .headers()
        .any(|(n, v)| n.eq_ignore_ascii_case(b"connection") && has_token(v, b"close"));
    if close_asked {
        assert!(!v.keep_alive, "Connection: close but keep-alive");
    }
    for (name, value) in &v.headers {
        assert!(!name.is_empty() && !name.contains(&b':'), "header name {name:?}");
        assert_eq!(trim_ows(value), &value[..], "header value not trimmed");
    }

    // Self-contained: the head alone parses the same.
    let (again, n2) = parse_head(raw)
        .expect("head alone refused")
        .expect("head alone incomplete");
    assert_eq!(n2, n);
    assert_eq!(view(&again), v);

    // Incremental: a prefix of an accepted head is only ever incomplete.
    let sel = data.get(n).copied().unwrap_or(0x80);
    for len in [n - 1, n - 2, n / 2, cut(n - 1, sel)] {
        let r = parse_head(&raw[..len]).map(|o| o.map(|(_, k)| k));
        assert_eq!(r, Ok(None), "prefix of {len} of an accepted {n}-byte head");
    }
}

// ---------------------------------------------------------------------------------------
// chunked_body

/// What feeding a body in pieces did.
#[derive(Debug, PartialEq, Eq)]
struct Fed {
    result: Result<usize, HttpError>,
    done: bool,
    out: Vec<u8>,
}

/// Feeds `body` cut at `cuts` (ascending, the last being `body.len()`), stopping at the
/// end of the message or the first error. `Ok(n)`: bytes of `body` consumed.
fn feed_pieces(body: &[u8], cuts: &[usize], max: usize) -> Fed {
    let mut d = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut start = 0;
    let mut consumed = 0;
    for &end in cuts {
        if d.is_done() {
            break;
        }
        let piece = &body[start..end];
        match d.feed(piece, &mut out, max) {
            Ok(n) => {
                assert!(n <= piece.len(), "consumed {n} of a {}-byte piece", piece.len());
                assert!(d.is_done() || n == piece.len(), "stopped early without finishing");
                consumed = start + n;
            }
            Err(e) => {
                assert!(out.len() <= max, "{} bytes out, limit {max}", out.len());
                return Fed {
                    result: Err(e),
                    done: d.is_done(),
                    out,
                };
            }
        }
        assert!(out.len() <= max, "{} bytes out, limit {max}", out.len());
        assert_eq!(d.decoded(), out.len() as u64);
        start = end;
    }
    Fed {
        result: Ok(consumed),
        done: d.is_done(),
        out,
    }
}

/// `payload` in chunked encoding, chunk sizes drawn from `sel`, with an extension and a
/// trailer now and then.
fn chunk_encode(payload: &[u8], sel: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let step = 1 + sel as usize % 13;
    for (i, c) in payload.chunks(step).enumerate() {
        if sel & 0x80 != 0 && i % 2 == 1 {
            out.extend_from_slice(format!("{:X} ;ext=\"v\"\r\n", c.len()).as_bytes());
        } else {
            out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        }
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n");
    if sel & 0x40 != 0 {
        out.extend_from_slice(b"X-Trailer: 1\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The chunked decoder never panics and never writes past `max`; fed whole, in two
/// pieces (cut chosen by the first input byte) or a byte at a time it gives the same
/// output, consumption and success or error; a body it encoded itself decodes back.
pub fn check_chunked_body(data: &[u8]) {
    let [split_sel, max_sel, body @ ..] = data else {
        return;
    };
    let max = if *max_sel == 0xff {
        1 << 20
    } else {
        *max_sel as usize * 4
    };
    let whole = feed_pieces(body, &[body.len()], max);
    let split = cut(body.len(), *split_sel);
    let two = feed_pieces(body, &[split, body.len()], max);
    assert_eq!(two, whole, "split at {split} differs from whole");
    if body.len() <= 4096 {
        let cuts: Vec<usize> = (1..=body.len()).collect();
        assert_eq!(
            feed_pieces(body, &cuts, max),
            whole,
            "byte-at-a-time differs from whole"
        );
    }
    if let Ok(n) = whole.result {
        if whole.done {
            assert!(n >= 5, "message of {n} bytes");
        } else {
            assert_eq!(n, body.len());
        }
    }

    // Round trip: the payload (the body bytes themselves) encoded and decoded back.
    let payload = body;
    let encoded = chunk_encode(payload, *split_sel);
    let mut with_next = encoded.clone();
    with_next.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
    let fed = feed_pieces(
        &with_next,
        &[cut(encoded.len(), *max_sel), with_next.len()],
        payload.len(),
    );
    assert_eq!(fed.result, Ok(encoded.len()), "own encoding not consumed exactly");
    assert!(fed.done);
    assert_eq!(fed.out, payload);
    if !payload.is_empty() {
        let small = feed_pieces(&encoded, &[encoded.len()], payload.len() - 1);
        assert_eq!(small.result, Err(HttpError::BodyTooLarge), "limit not enforced");
    }
}

// ---------------------------------------------------------------------------------------
// eventstream

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn crc32(data: &[u8]) -> u32 {
    llmops_proxy::bedrock::eventstream::crc32(data)
}

/// Rewrites the CRCs (and, with `clamp`, the declared lengths) of the frames in
/// `stream` so random bytes reach the header and payload decoding.
fn fix_frames(stream: &mut [u8], clamp: bool) {
    let mut pos = 0;
    while stream.len() - pos >= PRELUDE_BYTES {
        let rem = stream.len() - pos;
        let mut total = be_u32(stream, pos) as usize;
        if clamp && rem >= MIN_FRAME_BYTES {
            total = MIN_FRAME_BYTES + total % (rem - MIN_FRAME_BYTES + 1);
            let headers = be_u32(stream, pos + 4) as usize % (total - MIN_FRAME_BYTES + 1);
            stream[pos..pos + 4].copy_from_slice(&(total as u32).to_be_bytes());
            stream[pos + 4..pos + 8].copy_from_slice(&(headers as u32).to_be_bytes());
        }
        let c = crc32(&stream[pos..pos + 8]);
        stream[pos + 8..pos + 12].copy_from_slice(&c.to_be_bytes());
        if total < MIN_FRAME_BYTES || total > rem {
            break;
        }
        let end = pos + total - 4;
        let c = crc32(&stream[pos..end]);
        stream[end..end + 4].copy_from_slice(&c.to_be_bytes());
        pos += total;
    }
}

/// How a stream ended for `decode_frame` in a loop.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Clean,
    /// Cut mid-frame, this many bytes after the last whole frame.
    Partial(usize),
    Failed(FrameError),
}

/// The oracle: `decode_frame` in a loop, with each frame's byte range.
fn decode_loop(stream: &[u8]) -> (Vec<(Frame, std::ops::Range<usize>)>, End) {
    let mut frames = Vec::new();
    let mut pos = 0;
    loop {
        let rest = &stream[pos..];
        if rest.is_empty() {
            return (frames, End::Clean);
        }
        match decode_frame(rest) {
            Ok((f, used)) => {
                assert!(
                    (MIN_FRAME_BYTES..=rest.len()).contains(&used),
                    "used {used} of {}",
                    rest.len()
                );
                frames.push((f, pos..pos + used));
                pos += used;
            }
            Err(FrameError::TooShort) => {
                // Too few bytes for the prelude or for the declared length: a partial
                // frame. A declared length below the minimum: a real error.
                let incomplete = rest.len() < PRELUDE_BYTES || {
                    let total = be_u32(rest, 0) as usize;
                    total >= MIN_FRAME_BYTES && rest.len() < total
                };
                let end = if incomplete {
                    End::Partial(rest.len())
                } else {
                    End::Failed(FrameError::TooShort)
                };
                return (frames, end);
            }
            Err(e) => return (frames, End::Failed(e)),
        }
    }
}

/// Feeds `stream` to a [`Decoder`] in the given pieces; returns the frames, the error
/// (if any) and the bytes left pending.
fn decoder_pieces<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> (Vec<Frame>, Option<FrameError>, usize) {
    let mut d = Decoder::new();
    let mut frames = Vec::new();
    let mut err = None;
    for piece in pieces {
        let r = d.feed(piece);
        while let Some(f) = d.next_frame() {
            frames.push(f);
        }
        if let Err(e) = r {
            err = Some(e);
            break;
        }
    }
    if let Some(e) = err {
        assert_eq!(d.error(), Some(e));
        assert_eq!(d.feed(b"\0\0\0\x10"), Err(e), "a failed decoder accepted more");
        assert_eq!(d.next_frame(), None);
        assert_eq!(d.pending_bytes(), 0);
    }
    (frames, err, d.pending_bytes())
}

/// The incremental decoder, fed whole, in two pieces or a byte at a time, agrees with
/// `decode_frame` in a loop (frames, error, bytes pending); every decoded frame
/// re-encodes to exactly the bytes it came from and decodes back equal.
pub fn check_eventstream(data: &[u8]) {
    let [flags, split_sel, stream @ ..] = data else {
        return;
    };
    let mut stream = stream.to_vec();
    if flags & 1 != 0 {
        fix_frames(&mut stream, flags & 2 != 0);
    }
    let (expected, end) = decode_loop(&stream);
    let expected_frames: Vec<Frame> = expected.iter().map(|(f, _)| f.clone()).collect();
    let (want_err, want_pending) = match end {
        End::Clean => (None, 0),
        End::Partial(n) => (None, n),
        End::Failed(e) => (Some(e), 0),
    };
    let split = cut(stream.len(), *split_sel);
    let (a, b) = stream.split_at(split);
    let mut runs = vec![
        ("whole", decoder_pieces([&stream[..]])),
        ("two pieces", decoder_pieces([a, b])),
    ];
    if stream.len() <= 2048 {
        runs.push(("byte at a time", decoder_pieces(stream.chunks(1))));
    }
    for (how, (frames, err, pending)) in runs {
        assert_eq!(frames, expected_frames, "{how}: frames differ (split {split})");
        assert_eq!(err, want_err, "{how}: error differs (split {split})");
        assert_eq!(pending, want_pending, "{how}: pending bytes differ (split {split})");
    }

    for (frame, range) in &expected {
        let headers: Vec<(&str, HeaderValue)> = frame.headers.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        let bytes = encode_frame(&headers, &frame.payload);
        assert_eq!(bytes, &stream[range.clone()], "re-encoding differs from the wire bytes");
        assert_eq!(decode_frame(&bytes), Ok((frame.clone(), bytes.len())));
        // The accessors never panic.
        let _ = (frame.message_type(), frame.event_type(), frame.exception_type());
        let _ = (frame.error_code(), frame.error_message());
    }
}

// ---------------------------------------------------------------------------------------
// usage_scan

fn check_usage(u: &Usage) {
    for (name, v) in [
        ("input", u.metered.input),
        ("output", u.metered.output),
        ("total", u.total_tokens),
        ("cache read", u.metered.cache_read),
        ("cache write", u.metered.cache_write),
        ("cache write 5m", u.metered.cache_write_5m),
        ("cache write 1h", u.metered.cache_write_1h),
        ("latency", u.latency_ms),
    ] {
        assert!(v.is_none_or(|n| n >= 0), "{name} = {v:?}");
    }
    if let Some(g) = &u.metered.guardrail {
        assert!(g.iter().all(|n| *n >= 0), "guardrail units {g:?}");
    }
    if let Some(m) = &u.invoked_model {
        assert!(m.len() <= MAX_INVOKED_MODEL, "invokedModelId of {} bytes", m.len());
    }
    if let Some(s) = &u.stop_reason {
        assert!(
            s.chars().count() <= MAX_STOP_REASON,
            "stopReason of {} chars",
            s.chars().count()
        );
    }
}

/// The usage scanner never panics, counts are never negative, `stopReason` is bounded,
/// and a reused scanner (scratch and simd-json buffers) answers as a fresh one.
pub fn check_usage_scan(data: &[u8]) {
    let mut s = Scanner::new();
    let first = s.scan(data);
    if let Some(u) = &first {
        check_usage(u);
    }
    let other = br#"{"usage":{"inputTokens":1,"outputTokens":2,"totalTokens":3},"stopReason":"end_turn"}"#;
    assert_eq!(s.scan(other).map(|u| u.total_tokens), Some(Some(3)));
    assert_eq!(s.scan(data), first, "reused scanner answers differently");
    // The InvokeModel scans (a body of any family, a stream chunk's base64 payload): the
    // same invariants, and the same answers from a reused scanner.
    let invoke = s.scan_invoke(data);
    if let Some(u) = &invoke {
        check_usage(u);
    }
    let chunk = s.scan_chunk(data);
    if let Some((u, _)) = &chunk {
        check_usage(u);
    }
    assert_eq!(s.scan(other).map(|u| u.total_tokens), Some(Some(3)));
    assert_eq!(
        s.scan_invoke(data),
        invoke,
        "reused scanner answers differently (invoke)"
    );
    assert_eq!(s.scan_chunk(data), chunk, "reused scanner answers differently (chunk)");
    // Base64 round-trips whatever the bytes, and a chunk wrapping them scans as they do.
    let mut b64 = Vec::new();
    base64::encode_into(data, &mut b64);
    let mut back = Vec::new();
    assert_eq!(base64::decode_into(&b64, &mut back), Ok(()));
    assert_eq!(back, data, "base64 round trip");
    let mut wrapped = b"{\"bytes\":\"".to_vec();
    wrapped.extend_from_slice(&b64);
    wrapped.extend_from_slice(b"\"}");
    if let Some((u, _)) = s.scan_chunk(&wrapped) {
        check_usage(&u);
        assert_eq!(s.scan_invoke(data), Some(u), "a chunk scans as its payload does");
    }
}

// ---------------------------------------------------------------------------------------
// model_region

fn model_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b".:_/-+@=,~".contains(&b)
}

/// What `decode_model_id` should accept, once decoded.
fn valid_model_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_MODEL_ID_LEN
        && id.iter().all(|&b| model_char(b))
        && !id.split(|&b| b == b'/').any(|s| s == b"." || s == b"..")
}

/// `^[a-z]{2}(-gov)?-[a-z]+-[0-9]+$`, at most [`MAX_REGION_LEN`] bytes.
fn reference_region(r: &str) -> bool {
    let lower = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase());
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = r.split('-').collect();
    let shape = match parts[..] {
        [geo, word, num] => lower(word) && digits(num) && geo.len() == 2 && lower(geo),
        [geo, "gov", word, num] => lower(word) && digits(num) && geo.len() == 2 && lower(geo),
        _ => false,
    };
    r.len() <= MAX_REGION_LEN && shape
}

fn check_decoded_id(id: &str) {
    let b = id.as_bytes();
    assert!(valid_model_id(b), "decoded id {id:?} breaks the rules");
    assert!(
        !b.iter().any(|c| c.is_ascii_control() || b"?#% \\".contains(c)),
        "decoded id {id:?}"
    );
    let mut enc = Vec::new();
    encode_model_segment(id, &mut enc);
    assert!(
        !enc.contains(&b'/') && !enc.contains(&b':'),
        "segment {enc:?} is not one segment"
    );
    assert_eq!(decode_model_id(&enc).as_deref(), Ok(id), "encode then decode");
}

/// A decoded model id obeys the character and dot-segment rules and round-trips
/// through its path-segment encoding; `decode(encode(s))` accepts exactly the valid `s`;
/// geo prefixes are only ever prepended and strip back off; region validity matches the
/// documented pattern and implies `[a-z0-9-]` only.
pub fn check_model_region(data: &[u8]) {
    let (raw, region) = match data.iter().position(|&b| b == b'\n') {
        Some(p) => (&data[..p], &data[p + 1..]),
        None => (data, &b""[..]),
    };
    let region = String::from_utf8_lossy(region);

    let decoded = decode_model_id(raw);
    if let Ok(id) = &decoded {
        check_decoded_id(id);
        let geo = GeoRules::default().sorted();
        for r in [
            &region[..],
            "us-east-1",
            "us-gov-west-1",
            "eu-west-1",
            "ap-south-1",
            "ca-central-1",
        ] {
            let eff = geo.effective(id, r);
            if eff != *id {
                assert!(eff.ends_with(id.as_str()), "{eff:?} does not end with {id:?}");
                assert_eq!(
                    geo.base_model(&eff),
                    Some(id.as_str()),
                    "prefix of {eff:?} does not strip"
                );
            }
        }
    }

    // Any string, encoded as a segment, decodes back exactly when it is a valid id.
    let s = String::from_utf8_lossy(raw);
    let mut enc = Vec::new();
    encode_model_segment(&s, &mut enc);
    match decode_model_id(&enc) {
        Ok(id) => {
            assert_eq!(id, s, "encode then decode changed the id");
            assert!(valid_model_id(s.as_bytes()));
        }
        Err(e) => assert!(!valid_model_id(s.as_bytes()), "valid id {s:?} refused: {e:?}"),
    }

    let valid = is_valid_region(&region);
    assert_eq!(valid, reference_region(&region), "region {region:?}");
    if valid {
        assert!(region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
    }
}

// ---------------------------------------------------------------------------------------
// sigv4_canonical

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.~".contains(&b)
}

/// Only unreserved bytes, the bytes in `extra`, and `%XX` escapes (upper-case hex).
fn only_encoded(s: &[u8], extra: &[u8]) -> bool {
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b == b'%' && !extra.contains(&b'%') {
            let hex = |c: Option<&u8>| c.is_some_and(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c));
            if !(hex(s.get(i + 1)) && hex(s.get(i + 2))) {
                return false;
            }
            i += 3;
            continue;
        }
        if !is_unreserved(b) && !extra.contains(&b) {
            return false;
        }
        i += 1;
    }
    true
}

/// RFC 3986 dot-segment removal with empty segments dropped, as AWS normalises
/// non-S3 paths; written plainly with a growable stack.
pub fn reference_canonical_uri(path: &[u8], enc: PathEncoding) -> Vec<u8> {
    let keep: &[u8] = match enc {
        PathEncoding::Double => b"/",
        PathEncoding::Single => b"/%",
    };
    if path.is_empty() {
        return b"/".to_vec();
    }
    let trailing =
        path.ends_with(b"/") || path.ends_with(b"/.") || path.ends_with(b"/..") || path == b"." || path == b"..";
    let mut segs: Vec<&[u8]> = Vec::new();
    for seg in path.split(|&b| b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
    }
    let mut out = b"/".to_vec();
    for (i, s) in segs.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        uri_encode(s, keep, &mut out);
    }
    if trailing && !segs.is_empty() {
        out.push(b'/');
    }
    out
}

/// The normalised canonical URI of `path` equals the reference normalisation.
pub fn check_canonical_uri_reference(path: &[u8], enc: PathEncoding) {
    let mut out = Vec::new();
    write_canonical_uri(path, true, enc, &mut out);
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&reference_canonical_uri(path, enc)),
        "canonical URI differs from RFC 3986 normalisation"
    );
}

fn check_canonical_uri(path: &[u8]) {
    for normalize in [true, false] {
        for enc in [PathEncoding::Double, PathEncoding::Single] {
            let mut out = Vec::new();
            write_canonical_uri(path, normalize, enc, &mut out);
            // Without normalisation a path is taken as it is: one not starting with '/'
            // (never seen: request targets are origin-form) does not get one added.
            if normalize || path.is_empty() || path[0] == b'/' {
                assert!(
                    out.starts_with(b"/"),
                    "canonical URI {out:?} (normalize {normalize}, {enc:?})"
                );
            }
            let extra: &[u8] = match enc {
                PathEncoding::Double => b"/",
                PathEncoding::Single => b"/%",
            };
            assert!(
                only_encoded(&out, extra),
                "canonical URI {out:?} ({enc:?}) has raw bytes"
            );
            if normalize {
                let segs: Vec<&[u8]> = out[1..].split(|&b| b == b'/').collect();
                let last = segs.len() - 1;
                for (i, s) in segs.iter().enumerate() {
                    assert!(*s != b"." && *s != b"..", "dot segment left in {out:?}");
                    assert!(!s.is_empty() || i == last, "empty segment in {out:?}");
                }
                check_canonical_uri_reference(path, enc);
            }
        }
    }
}

fn check_canonical_query(query: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical_query(query, &mut out);
    let mut prev: Option<(&[u8], &[u8])> = None;
    if !out.is_empty() {
        for pair in out.split(|&b| b == b'&') {
            let eq = pair.iter().position(|&b| b == b'=').expect("pair without '='");
            let (k, v) = (&pair[..eq], &pair[eq + 1..]);
            assert!(only_encoded(k, b"") && only_encoded(v, b""), "query pair {pair:?}");
            assert!(prev.is_none_or(|p| p <= (k, v)), "query not sorted: {out:?}");
            prev = Some((k, v));
        }
    }
    let mut again = Vec::new();
    write_canonical_query(&out, &mut again);
    assert_eq!(again, out, "canonical query is not a fixed point");
    out
}

fn check_canonical_headers(headers: &[(&str, &[u8])]) -> Result<(Vec<u8>, Vec<u8>), SignError> {
    let mut out = Vec::new();
    let mut signed = Vec::new();
    let r = write_canonical_headers(headers, &mut out, &mut signed);
    let bad_name = headers
        .iter()
        .any(|(n, _)| n.is_empty() || n.bytes().any(|c| c == b':' || c.is_ascii_whitespace()));
    match r {
        Err(SignError::TooManyHeaders) => assert!(headers.len() > MAX_SIGNED_HEADERS),
        Err(SignError::InvalidHeaderName) => assert!(bad_name && headers.len() <= MAX_SIGNED_HEADERS),
        Err(e) => panic!("unexpected {e:?}"),
        Ok(()) => {
            assert!(!bad_name && headers.len() <= MAX_SIGNED_HEADERS);
            let mut names: Vec<Vec<u8>> = headers
                .iter()
                .map(|(n, _)| n.to_ascii_lowercase().into_bytes())
                .collect();
            names.sort();
            names.dedup();
            assert_eq!(signed, names.join(&b';'), "signed headers");
            let lines: Vec<&[u8]> = out.split(|&b| b == b'\n').collect();
            assert_eq!(lines.len(), names.len() + 1, "one line per distinct name");
            assert_eq!(lines.last(), Some(&&b""[..]));
            for (line, name) in lines.iter().zip(&names) {
                assert!(
                    line.starts_with(name) && line.get(name.len()) == Some(&b':'),
                    "line {line:?}"
                );
                let value = &line[name.len() + 1..];
                assert!(
                    !value.contains(&b'\r') && !value.contains(&b'\t'),
                    "raw whitespace in {line:?}"
                );
                assert!(!value.windows(2).any(|w| w == b"  "), "whitespace run in {line:?}");
            }
        }
    }
    r.map(|()| (out, signed))
}

/// SigV4 canonicalisation never panics on any path, query or header: the canonical URI
/// starts with '/' and holds only unreserved bytes, '/' and `%XX` escapes (plus '%' kept
/// as is with single encoding), normalised paths match RFC 3986 dot-segment removal, the
/// query is sorted and a fixed point, headers are sorted, lower-cased, joined and trimmed;
/// `Signer::canonical_request` is exactly those pieces joined, and signing is stable.
pub fn check_sigv4_canonical(data: &[u8]) {
    let [flags, rest @ ..] = data else {
        return;
    };
    let mut lines = rest.split(|&b| b == b'\n');
    let method = String::from_utf8_lossy(lines.next().unwrap_or(b"POST")).into_owned();
    let target = lines.next().unwrap_or(b"/");
    let region = String::from_utf8_lossy(lines.next().unwrap_or(b"us-east-1")).into_owned();
    let time = lines
        .next()
        .and_then(|t| std::str::from_utf8(t).ok())
        .and_then(|t| t.parse::<i64>().ok())
        .unwrap_or(1_440_938_160);
    let header_lines: Vec<(String, &[u8])> = lines
        .map(|l| match l.iter().position(|&b| b == b':') {
            Some(p) => (String::from_utf8_lossy(&l[..p]).into_owned(), &l[p + 1..]),
            None => (String::from_utf8_lossy(l).into_owned(), &b""[..]),
        })
        .collect();
    let headers: Vec<(&str, &[u8])> = header_lines.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(q) => (&target[..q], &target[q + 1..]),
        None => (target, &b""[..]),
    };
    let repeated;
    let path = if flags & 4 != 0 {
        repeated = path.repeat((flags >> 3) as usize * 8 + 1);
        &repeated[..]
    } else {
        path
    };
    let normalize = flags & 1 != 0;
    let enc = if flags & 2 != 0 {
        PathEncoding::Double
    } else {
        PathEncoding::Single
    };

    check_canonical_uri(path);
    let canonical_query = check_canonical_query(query);
    let canonical_headers = check_canonical_headers(&headers);

    let time = SigningTime::from_unix(time);
    assert_eq!(time.amz_date().len(), 16);
    let payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let req = SignRequest {
        method: &method,
        path,
        query,
        headers: &headers,
        payload_hash,
        region: &region,
        service: "bedrock",
        time,
    };
    let mut signer = Signer::with_rules(SigningKeyCache::default(), enc, normalize);
    let canonical = signer.canonical_request(&req).map(<[u8]>::to_vec);
    match (&canonical, &canonical_headers) {
        (Ok(c), Ok((h, signed))) => {
            let mut expected = method.as_bytes().to_vec();
            expected.push(b'\n');
            write_canonical_uri(path, normalize, enc, &mut expected);
            expected.push(b'\n');
            expected.extend_from_slice(&canonical_query);
            expected.push(b'\n');
            expected.extend_from_slice(h);
            expected.push(b'\n');
            expected.extend_from_slice(signed);
            expected.push(b'\n');
            expected.extend_from_slice(payload_hash.as_bytes());
            assert_eq!(c, &expected, "canonical request is not its parts joined");
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!("canonical request {a:?} but headers {b:?}"),
    }

    let creds = Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        session_token: None,
    };
    let first = signer.signature(&creds, &req);
    assert_eq!(first.is_ok(), canonical.is_ok());
    if let Ok(sig) = first {
        assert!(sig.iter().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(signer.signature(&creds, &req), first, "cached key signs differently");
        let mut fresh = Signer::with_rules(SigningKeyCache::default(), enc, normalize);
        assert_eq!(fresh.signature(&creds, &req), first, "fresh signer signs differently");
        let auth = signer.sign(&creds, &req).expect("sign after signature");
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"), "{auth}");
        assert!(auth.ends_with(std::str::from_utf8(&sig).unwrap()));
    }
}
