//! Criterion benchmark of SigV4 signing a 1 KiB Converse body: with the signing key
//! cached (the steady state of a shard) and cold (a new credential every time).
//! Run: `cargo bench --bench sigv4`.

// A test: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

use criterion::{criterion_group, criterion_main, Criterion};
use llmops_proxy::sigv4::signer::payload_hash;
use llmops_proxy::sigv4::{Credentials, SignRequest, Signer, SigningKeyCache, SigningTime, BEDROCK_SERVICE};

fn sign_once(signer: &mut Signer, creds: &Credentials, body: &[u8], time: SigningTime) -> String {
    let ph = payload_hash(body);
    let headers: [(&str, &[u8]); 4] = [
        ("content-type", b"application/json"),
        ("host", b"bedrock-runtime.us-east-1.amazonaws.com"),
        ("x-amz-date", time.amz_date().as_bytes()),
        ("x-amz-security-token", b"IQoJb3JpZ2luX2VjEXAMPLETOKEN"),
    ];
    let req = SignRequest {
        method: "POST",
        path: b"/model/us.anthropic.claude-sonnet-4-6/converse",
        query: b"",
        headers: &headers,
        payload_hash: std::str::from_utf8(&ph).unwrap_or_default(),
        region: "us-east-1",
        service: BEDROCK_SERVICE,
        time,
    };
    signer.sign(creds, &req).unwrap_or_default()
}

fn bench(c: &mut Criterion) {
    let body = vec![b'x'; 1024];
    let time = SigningTime::from_unix(1_764_000_000);
    let creds = Credentials {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        session_token: None,
    };
    let mut signer = Signer::new(SigningKeyCache::default());
    c.bench_function("sigv4_sign_1KiB_cached_key", |b| {
        b.iter(|| sign_once(&mut signer, &creds, &body, time))
    });
    // Two credentials alternating through a one-entry cache: every call misses and runs
    // the 4-HMAC derivation.
    let other = Credentials {
        access_key_id: "AKIAIOSFODNN7EXAMPL2".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKE2".into(),
        session_token: None,
    };
    let mut cold = Signer::new(SigningKeyCache::with_capacity(1));
    let mut flip = false;
    c.bench_function("sigv4_sign_1KiB_cold_key", |b| {
        b.iter(|| {
            flip = !flip;
            sign_once(&mut cold, if flip { &creds } else { &other }, &body, time)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
