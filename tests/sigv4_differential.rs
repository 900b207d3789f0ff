//! Differential test: our SigV4 signer against the independent `aws-sigv4` crate over
//! random model ids (with `:`, `/`, `%`, spaces, unicode), regions, hosts, bodies,
//! session tokens and times. Signatures must be identical, 10,000 cases.

// A test: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::{Duration, UNIX_EPOCH};

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use llmops_proxy::sigv4::canonical::uri_encode;
use llmops_proxy::sigv4::signer::payload_hash;
use llmops_proxy::sigv4::{Credentials, SignRequest, Signer, SigningTime, BEDROCK_SERVICE};
use proptest::prelude::*;

fn model_id() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{2,8}\\.[a-z0-9-]{1,20}(:[0-9])?",
        "arn:aws:bedrock:[a-z]{2}-[a-z]{4}-[0-9]:[0-9]{12}:(inference-profile|provisioned-model)/[a-z0-9.:-]{1,30}",
        "[a-zA-Z0-9:/%. _~+=@é漢-]{1,40}",
        "\\PC{1,24}",
    ]
    .prop_filter("dot segments are rejected before signing", |s| s != "." && s != "..")
}

fn region() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z]{2}-[a-z]{4,9}-[0-9]", "us-gov-(east|west)-1"]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn same_signature_as_aws_sigv4(
        model in model_id(),
        stream in any::<bool>(),
        region in region(),
        port in prop::option::of(1024u16..65535),
        body in prop::collection::vec(any::<u8>(), 0..2048),
        token in prop::option::of("[A-Za-z0-9+/=]{16,300}"),
        akid in "(AKIA|ASIA)[A-Z0-9]{16}",
        secret in "[A-Za-z0-9+/]{40}",
        secs in 946_684_800i64..4_102_444_800i64,
    ) {
        let mut path = Vec::from(&b"/model/"[..]);
        uri_encode(model.as_bytes(), b"", &mut path);
        path.extend_from_slice(if stream { b"/converse-stream" } else { b"/converse" });
        let path = String::from_utf8(path).unwrap();
        let host = match port {
            Some(p) => format!("bedrock-runtime.{region}.amazonaws.com:{p}"),
            None => format!("bedrock-runtime.{region}.amazonaws.com"),
        };

        // Theirs.
        let creds = aws_credential_types::Credentials::new(&akid, &secret, token.clone(), None, "test");
        let identity = creds.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&region)
            .name(BEDROCK_SERVICE)
            .time(UNIX_EPOCH + Duration::from_secs(secs as u64))
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let uri = format!("https://{host}{path}");
        let headers = [("content-type", "application/json"), ("host", host.as_str())];
        let signable = SignableRequest::new("POST", uri, headers.into_iter(), SignableBody::Bytes(&body)).unwrap();
        let (instructions, their_sig) = sign(signable, &params).unwrap().into_parts();
        let their_auth = instructions
            .headers()
            .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.to_string())
            .unwrap();

        // Ours.
        let time = SigningTime::from_unix(secs);
        let ours = Credentials {
            access_key_id: akid.clone(),
            secret_access_key: secret.as_str().into(),
            session_token: token.as_deref().map(Into::into),
        };
        let ph = payload_hash(&body);
        let mut signed: Vec<(&str, &[u8])> = vec![
            ("Content-Type", b"application/json"),
            ("Host", host.as_bytes()),
            ("X-Amz-Date", time.amz_date().as_bytes()),
        ];
        if let Some(t) = &token {
            signed.push(("X-Amz-Security-Token", t.as_bytes()));
        }
        let req = SignRequest {
            method: "POST",
            path: path.as_bytes(),
            query: b"",
            headers: &signed,
            payload_hash: std::str::from_utf8(&ph).unwrap(),
            region: &region,
            service: BEDROCK_SERVICE,
            time,
        };
        let mut signer = Signer::default();
        let our_auth = signer.sign(&ours, &req).unwrap();
        prop_assert!(our_auth.ends_with(&their_sig), "model {:?}: ours {} theirs {}", model, our_auth, their_sig);
        prop_assert_eq!(our_auth, their_auth);
    }
}
