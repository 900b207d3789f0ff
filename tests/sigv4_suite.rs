//! AWS's SigV4 test suite (header signing): for every case, the canonical request, the
//! string to sign and the signature produced by `llmops_proxy::sigv4` must equal AWS's.

// A test: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};

use llmops_proxy::sigv4::{Credentials, PathEncoding, SignRequest, Signer, SigningKeyCache, SigningTime};
use llmops_proxy::util::time::{days_from_civil, parse_amz_date};
use simd_json::prelude::*;

struct Case {
    name: String,
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

fn parse_request(name: &str, text: &str) -> Case {
    let (head, body) = match text.find("\n\n") {
        Some(p) => (&text[..p], text.as_bytes()[p + 2..].to_vec()),
        None => (text, Vec::new()),
    };
    let mut lines = head.lines();
    let first = lines.next().expect("request line");
    let sp = first.find(' ').expect("method");
    let method = first[..sp].to_string();
    let target = first[sp + 1..].trim_end_matches(" HTTP/1.1").to_string();
    let (path, query) = match target.find('?') {
        Some(q) => (target[..q].to_string(), target[q + 1..].to_string()),
        None => (target.clone(), String::new()),
    };
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    for line in lines {
        if line.starts_with(' ') || line.starts_with('\t') {
            let last = headers.last_mut().expect("continuation after a header");
            last.1.push(b'\n');
            last.1.extend_from_slice(line.as_bytes());
        } else {
            let c = line.find(':').expect("header colon");
            headers.push((line[..c].to_string(), line.as_bytes()[c + 1..].to_vec()));
        }
    }
    Case {
        name: name.to_string(),
        method,
        path,
        query,
        headers,
        body,
    }
}

fn iso_to_unix(s: &str) -> i64 {
    // 2015-08-30T12:36:00Z
    let n = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap();
    days_from_civil(n(0..4) as i32, n(5..7), n(8..10)) * 86_400 + (n(11..13) * 3600 + n(14..16) * 60 + n(17..19)) as i64
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sigv4")
}

fn read(dir: &Path, f: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(f)).ok()
}

#[test]
fn aws_signing_test_suite_header_cases() {
    let mut dirs: Vec<_> = std::fs::read_dir(fixtures())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 35, "fixtures missing: {}", dirs.len());
    let mut checked_signatures = 0;
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let case = parse_request(&name, &read(dir, "request.txt").unwrap());
        let expected_canonical = read(dir, "header-canonical-request.txt").unwrap();
        let expected_sts = read(dir, "header-string-to-sign.txt");
        let expected_sig = read(dir, "header-signature.txt");

        let (creds, region, service, time, normalize, encoding, omit_token);
        let mut sign_body = false;
        match read(dir, "context.json") {
            Some(ctx) => {
                let mut bytes = ctx.into_bytes();
                let v = simd_json::to_owned_value(&mut bytes).unwrap();
                let c = v.get("credentials").unwrap();
                creds = Credentials {
                    access_key_id: c.get_str("access_key_id").unwrap().to_string(),
                    secret_access_key: c.get_str("secret_access_key").unwrap().into(),
                    session_token: c.get_str("token").map(Into::into),
                };
                region = v.get_str("region").unwrap().to_string();
                service = v.get_str("service").unwrap().to_string();
                time = SigningTime::from_unix(iso_to_unix(v.get_str("timestamp").unwrap()));
                normalize = v.get_bool("normalize").unwrap_or(true);
                omit_token = v.get_bool("omit_session_token").unwrap_or(false);
                sign_body = v.get_bool("sign_body").unwrap_or(false);
                encoding = PathEncoding::Single;
            }
            None => {
                // smithy-rs's double-encoding cases: scope from the string to sign; the
                // signer sets X-Amz-Date itself, at the time smithy-rs signs them with.
                let date = b"20210511T154045Z";
                let mut parts = expected_sts
                    .as_deref()
                    .and_then(|s| s.lines().nth(2))
                    .unwrap_or("20150830/us-east-1/service/aws4_request")
                    .split('/');
                parts.next();
                region = parts.next().unwrap().to_string();
                service = parts.next().unwrap().to_string();
                time = SigningTime::from_unix(parse_amz_date(date).unwrap());
                creds = Credentials {
                    access_key_id: "AKIDEXAMPLE".into(),
                    secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
                    session_token: None,
                };
                normalize = true;
                omit_token = true;
                encoding = PathEncoding::Double;
            }
        }

        // As a signer does: X-Amz-Date is (re)set to the signing time.
        let mut headers: Vec<(String, Vec<u8>)> = case.headers.clone();
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case("x-amz-date"));
        headers.push(("X-Amz-Date".into(), time.amz_date().as_bytes().to_vec()));
        if let (Some(tok), false) = (&creds.session_token, omit_token) {
            headers.push(("X-Amz-Security-Token".into(), tok.expose().to_vec()));
        }
        let payload = llmops_proxy::sigv4::signer::payload_hash(&case.body);
        if sign_body {
            headers.push(("X-Amz-Content-Sha256".into(), payload.to_vec()));
        }
        let hrefs: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
        let req = SignRequest {
            method: &case.method,
            path: case.path.as_bytes(),
            query: case.query.as_bytes(),
            headers: &hrefs,
            payload_hash: std::str::from_utf8(&payload).unwrap(),
            region: &region,
            service: &service,
            time,
        };
        let mut signer = Signer::with_rules(SigningKeyCache::default(), encoding, normalize);
        let canonical = String::from_utf8(signer.canonical_request(&req).unwrap().to_vec()).unwrap();
        assert_eq!(canonical, expected_canonical, "canonical request of {}", case.name);
        if let Some(sts) = expected_sts {
            let got = String::from_utf8(signer.string_to_sign(&req).unwrap().to_vec()).unwrap();
            assert_eq!(got, sts.trim_end_matches('\n'), "string to sign of {}", case.name);
        }
        if let Some(sig) = expected_sig {
            let got = signer.signature(&creds, &req).unwrap();
            assert_eq!(
                std::str::from_utf8(&got).unwrap(),
                sig.trim(),
                "signature of {}",
                case.name
            );
            let auth = signer.sign(&creds, &req).unwrap();
            assert!(auth.ends_with(sig.trim()), "{}", case.name);
            checked_signatures += 1;
        }
    }
    assert!(checked_signatures >= 35, "only {checked_signatures} signatures checked");
}
