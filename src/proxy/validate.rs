//! Stage 1, validation: the method, the tracking key (tenant), the Bedrock headers an
//! InvokeModel call forwards (`bedrock::headers`), the AWS credentials, the
//! region and the model id (decoded and geo-prefixed), and the body framing. The row
//! records what the request asked for before any check, so refusals carry it too.

use super::error::{ErrorCode, ProxyError};
use super::shard::{Peer, Shard};
use crate::bedrock::headers::{forwarded, LATENCY, SERVICE_TIER};
use crate::bedrock::model::decode_model_id;
use crate::bedrock::region::{is_valid_region, DEFAULT_REGION};
use crate::bedrock::route::Operation;
use crate::http::request::{BodyFraming, Method, RequestHead};
use crate::pricing::{Latency, Tier};
use crate::sigv4::{Credentials, SecretString};
use crate::tenant::KeyError;
use crate::usage::record::MAX_TAG_CHARS;
use crate::usage::UsageRecord;
use crate::util::text::lossy_truncate;

/// Longest region value recorded when it is invalid.
const MAX_RECORDED_REGION: usize = 64;

fn tag(head: &RequestHead, name: &str) -> Option<String> {
    let v = head.header(name)?;
    if v.is_empty() {
        return None;
    }
    // The usual tag: short printable ASCII, kept as sent (one allocation).
    if v.len() <= MAX_TAG_CHARS && v.iter().all(|b| (0x20..0x7f).contains(b)) {
        return std::str::from_utf8(v).ok().map(str::to_owned);
    }
    // Invalid UTF-8 is recorded lossily rather than refused: tags are attribution only.
    Some(
        String::from_utf8_lossy(v)
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_TAG_CHARS)
            .collect(),
    )
}

fn secret_header(head: &RequestHead, name: &str) -> Option<SecretString> {
    head.header(name)
        .filter(|v| !v.is_empty())
        .map(|v| SecretString::new(v.to_vec()))
}

/// Headers that must appear at most once: the key, the credentials, the region and the
/// attribution tags. Two of them would let whatever sits in front of the proxy and the
/// proxy itself (which reads the first) disagree on who pays; a 400 instead.
const SINGLE_HEADERS: [&str; 9] = [
    "x-cloudidr-key",
    "x-aws-access-key-id",
    "x-aws-secret-access-key",
    "x-aws-session-token",
    "x-aws-region",
    "x-department",
    "x-project",
    "x-team",
    "x-agent",
];

/// The first header of [`SINGLE_HEADERS`] that appears twice (one pass over the head).
fn duplicated(head: &RequestHead) -> Option<&'static str> {
    let mut seen = [false; SINGLE_HEADERS.len()];
    for (name, _) in head.headers() {
        if name.len() < 6 || !name[..2].eq_ignore_ascii_case(b"x-") {
            continue;
        }
        if let Some(i) = SINGLE_HEADERS
            .iter()
            .position(|h| name.eq_ignore_ascii_case(h.as_bytes()))
        {
            if seen[i] {
                return Some(SINGLE_HEADERS[i]);
            }
            seen[i] = true;
        }
    }
    None
}

/// What a validated request needs for the upstream call besides what its row holds (the
/// region in `rec.region`, the model in `rec.model_effective`).
pub struct Validated {
    pub creds: Credentials,
    /// The tier and latency mode an InvokeModel call asked for in its headers (the
    /// pricing fallback when the answer does not say); `None` for other operations.
    pub requested: Option<(Option<Tier>, Option<Latency>)>,
}

/// Checks the request and fills the row with what it asked for (tags, tenant, region,
/// models) — refused requests carry that too.
pub fn validate(
    head: &RequestHead,
    op: Operation,
    raw_model: &[u8],
    shard: &Shard,
    peer: &Peer,
    rec: &mut UsageRecord,
) -> Result<Validated, ProxyError> {
    rec.department = tag(head, "x-department");
    rec.project = tag(head, "x-project").or_else(|| tag(head, "x-team"));
    rec.agent = tag(head, "x-agent");
    let decoded = decode_model_id(raw_model);
    rec.model_requested = match &decoded {
        Ok(m) => m.clone(),
        Err(_) => lossy_truncate(raw_model, 256),
    };
    rec.region = match head.header("x-aws-region") {
        None => DEFAULT_REGION.to_string(),
        Some(r) => lossy_truncate(r, MAX_RECORDED_REGION),
    };
    rec.model_effective = rec.model_requested.clone();

    if head.method() != Method::Post {
        return Err(ProxyError::new(
            ErrorCode::MethodNotAllowed,
            "Bedrock routes accept POST only",
        ));
    }
    if let Some(name) = duplicated(head) {
        return Err(ProxyError::new(
            ErrorCode::BadRequest,
            format!("the {name} header appears more than once; send it once"),
        ));
    }
    match tenant(head, shard, peer) {
        Ok(t) => rec.tenant = t,
        Err((err, t)) => {
            rec.tenant = t;
            return Err(err);
        }
    }
    let fwd = forwarded(head, op).map_err(|e| ProxyError::new(ErrorCode::BadRequest, e.to_string()))?;
    let hint = |i: usize| {
        fwd[i]
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_ascii_lowercase)
    };
    let requested = op.is_invoke().then(|| {
        (
            hint(SERVICE_TIER).as_deref().and_then(Tier::parse),
            hint(LATENCY).as_deref().and_then(Latency::parse),
        )
    });
    let creds = credentials(head)?;
    if !is_valid_region(&rec.region) {
        return Err(ProxyError::new(
            ErrorCode::InvalidRegion,
            "X-Aws-Region must look like us-east-1 (^[a-z]{2}(-gov)?-[a-z]+-[0-9]+$)",
        ));
    }
    let model = match decoded {
        Ok(m) => m,
        Err(e) => return Err(ProxyError::new(ErrorCode::InvalidModelId, e.to_string())),
    };
    rec.model_effective = shard.shared.settings.geo.effective(&model, &rec.region);
    let framing_ok = head.framing != BodyFraming::None || head.header("content-length").is_some();
    if !framing_ok {
        return Err(ProxyError::new(
            ErrorCode::LengthRequired,
            "send the body with Content-Length or Transfer-Encoding: chunked",
        ));
    }
    Ok(Validated { creds, requested })
}

/// The tenant of the tracking key: its name in the key file, else the client
/// certificate's subject under mutual TLS, else the token's fingerprint (DESIGN.md §3).
/// A refused key still yields the fingerprint tenant, recorded with the refusal.
fn tenant(head: &RequestHead, shard: &Shard, peer: &Peer) -> Result<String, (ProxyError, String)> {
    let Some(token) = head.header("x-cloudidr-key").filter(|t| !t.is_empty()) else {
        let err = ProxyError::new(
            ErrorCode::MissingTrackingKey,
            "the X-Cloudidr-Key header (your trk_... tracking key) is required",
        );
        return Err((err, "anonymous".into()));
    };
    let keys = shard.keys();
    match keys.tenant(token) {
        Ok(t) => Ok(match (&peer.mtls_subject, keys.is_open()) {
            (Some(subject), true) => format!("mtls:{subject}"),
            _ => t,
        }),
        Err(e) => {
            let h = crate::util::hex::sha256(token);
            let msg = match e {
                KeyError::Malformed => {
                    "X-Cloudidr-Key is malformed: expected trk_ followed by at least 16 of A-Z a-z 0-9 _ -"
                }
                KeyError::Unknown => "X-Cloudidr-Key is not a known tracking key",
            };
            Err((
                ProxyError::new(ErrorCode::InvalidTrackingKey, msg),
                crate::tenant::fingerprint_tenant(&h),
            ))
        }
    }
}

/// The caller's AWS credentials from its headers (held only in memory, zeroed on drop).
fn credentials(head: &RequestHead) -> Result<Credentials, ProxyError> {
    let akid = head.header("x-aws-access-key-id").filter(|v| !v.is_empty());
    let secret = secret_header(head, "x-aws-secret-access-key");
    let (Some(akid), Some(secret)) = (akid, secret) else {
        return Err(ProxyError::new(
            ErrorCode::MissingAwsCredentials,
            "X-Aws-Access-Key-Id and X-Aws-Secret-Access-Key are required (X-Aws-Session-Token for temporary credentials)",
        ));
    };
    let Ok(akid) = std::str::from_utf8(akid) else {
        return Err(ProxyError::new(
            ErrorCode::MissingAwsCredentials,
            "X-Aws-Access-Key-Id must be ASCII",
        ));
    };
    Ok(Credentials {
        access_key_id: akid.to_string(),
        secret_access_key: secret,
        session_token: secret_header(head, "x-aws-session-token"),
    })
}
