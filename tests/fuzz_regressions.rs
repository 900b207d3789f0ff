//! The fuzz targets' properties (fuzz/src/props.rs, included here by path), replayed on
//! the committed seeds in fuzz/seeds/<target>/ and on every crash the fuzzers found,
//! minimised and inlined. A cheap always-on check that the properties hold; a crash
//! that exposed a bug not yet fixed is `#[ignore = "BUG: ..."]` until it is.
//! How to run the fuzzers and turn a crash into a test here: fuzz/README.md.

// A test: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "../fuzz/src/props.rs"]
mod props;

use std::path::Path;

/// Every seed of `target`, by file name.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(out.len() >= 5, "{target}: only {} seeds", out.len());
    out
}

/// Runs `check` on every seed of `target`, naming the seed that fails.
fn replay(target: &str, check: fn(&[u8])) {
    for (name, data) in seeds(target) {
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("{target}: seed {name} breaks the property");
        }
    }
}

#[test]
fn request_head_seeds() {
    replay("request_head", props::check_request_head);
}

#[test]
fn chunked_body_seeds() {
    replay("chunked_body", props::check_chunked_body);
}

#[test]
fn eventstream_seeds() {
    replay("eventstream", props::check_eventstream);
}

#[test]
fn usage_scan_seeds() {
    replay("usage_scan", props::check_usage_scan);
}

#[test]
fn model_region_seeds() {
    replay("model_region", props::check_model_region);
}

#[test]
fn sigv4_canonical_seeds() {
    replay("sigv4_canonical", props::check_sigv4_canonical);
}

/// The seeds reach the deep paths (a property that holds only on rejected input proves
/// little): each target has a seed its parser accepts in full.
#[test]
fn seeds_reach_the_deep_paths() {
    use llmops_proxy::bedrock::eventstream::Decoder;
    use llmops_proxy::http::body::ChunkedDecoder;
    use llmops_proxy::http::request::{parse_head, BodyFraming};

    let seed = |target: &str, name: &str| {
        seeds(target)
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{target}/{name} missing"))
            .1
    };

    let post = seed("request_head", "converse_post");
    let (head, n) = parse_head(&post).unwrap().unwrap();
    assert!(matches!(head.framing, BodyFraming::Length(len) if len as usize == post.len() - n));

    let body = seed("chunked_body", "two_chunks_ext_trailer");
    let mut out = Vec::new();
    let mut d = ChunkedDecoder::new();
    d.feed(&body[2..], &mut out, 1 << 20).unwrap();
    assert!(d.is_done());
    assert_eq!(out, b"hello world");

    let stream = seed("eventstream", "bedrock_stream");
    let mut d = Decoder::new();
    d.feed(&stream[2..]).unwrap();
    let frames: Vec<_> = std::iter::from_fn(|| d.next_frame()).collect();
    assert_eq!(frames.len(), 5);
    assert_eq!(frames[4].event_type(), Some("metadata"));

    let usage = llmops_proxy::usage::scan::Scanner::new()
        .scan(&seed("usage_scan", "converse_full"))
        .unwrap();
    assert_eq!(usage.total_tokens, Some(46));

    let model = seed("model_region", "arn_profile");
    let raw = model.split(|&b| b == b'\n').next().unwrap();
    assert!(llmops_proxy::bedrock::model::decode_model_id(raw)
        .unwrap()
        .starts_with("arn:aws:bedrock:"));
}

/// SigV4 canonical URI with normalisation kept a fixed stack of 128 segments and silently
/// dropped the rest, so the canonical URI (and so the signature) did not cover the path
/// that was sent; a `..` after them popped the wrong segment. AWS's own normalisation
/// (aws-sigv4 `normalize_path_segment`) keeps every segment. Expected `/0/1/.../128`,
/// got `/0/1/.../127`. Spotted while writing the sigv4_canonical reference check; fixed
/// in f82c59a (src/sigv4/canonical.rs).
#[test]
fn canonical_uri_keeps_every_segment() {
    use llmops_proxy::sigv4::PathEncoding;

    let long: String = (0..129).map(|i| format!("/{i}")).collect();
    props::check_canonical_uri_reference(long.as_bytes(), PathEncoding::Double);
    let pop = format!("{long}/x/..");
    props::check_canonical_uri_reference(pop.as_bytes(), PathEncoding::Single);
}

/// The same bug as the fuzzer finds it (minimised with `cargo fuzz tmin`, 67 executions
/// from the seeds against a copy of the pre-f82c59a algorithm): flags 0xfe repeat the path
/// `/:` 249 times, so the canonical URI must have 249 `%3A` segments; the 128-segment
/// stack gave 128.
#[test]
fn sigv4_canonical_249_segments() {
    props::check_sigv4_canonical(b"\xfe\n/:");
}
