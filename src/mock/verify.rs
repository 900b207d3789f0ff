//! SigV4 verification as AWS does it: parse `Authorization`, check the scope, date skew
//! and session token, rebuild the canonical request from the headers the request names
//! as signed (values as received), recompute and compare in constant time.

use crate::http::request::RequestHead;
use crate::sigv4::signer::payload_hash;
use crate::sigv4::{Credentials, SignRequest, Signer, SigningTime, ALGORITHM};
use crate::util::time::parse_amz_date;

/// Largest accepted clock difference, seconds (AWS: 5 minutes).
pub(crate) const MAX_SKEW_SECS: i64 = 300;
/// A session token with this value is reported as expired (to test that mapping).
pub(crate) const EXPIRED_TOKEN: &str = "expired-session-token";

/// A credential the mock knows.
#[derive(Debug, Clone)]
pub(crate) struct Credential {
    pub access_key_id: String,
    pub secret: String,
    pub session_token: Option<String>,
}

impl Credential {
    /// Parses `AKID:SECRET[:TOKEN]`.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let mut it = s.splitn(3, ':');
        let akid = it.next()?.to_string();
        let secret = it.next()?.to_string();
        if akid.is_empty() || secret.is_empty() {
            return None;
        }
        Some(Credential {
            access_key_id: akid,
            secret,
            session_token: it.next().map(str::to_string),
        })
    }
}

/// Why a request's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VerifyError {
    Missing,
    Malformed(&'static str),
    UnknownKey,
    ExpiredToken,
    Skew,
    Mismatch { canonical: String },
}

fn field<'a>(auth: &'a str, name: &str) -> Option<&'a str> {
    auth.split([',', ' '])
        .map(str::trim)
        .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
}

/// Verifies `head` + `body` against `creds` at unix time `now`.
pub(crate) fn verify(head: &RequestHead, body: &[u8], creds: &[Credential], now: i64) -> Result<(), VerifyError> {
    let auth = head.header("authorization").ok_or(VerifyError::Missing)?;
    let auth = std::str::from_utf8(auth).map_err(|_| VerifyError::Malformed("not ASCII"))?;
    let rest = auth
        .strip_prefix(ALGORITHM)
        .ok_or(VerifyError::Malformed("unsupported algorithm"))?;
    let credential = field(rest, "Credential").ok_or(VerifyError::Malformed("no Credential"))?;
    let signed_headers = field(rest, "SignedHeaders").ok_or(VerifyError::Malformed("no SignedHeaders"))?;
    let signature = field(rest, "Signature").ok_or(VerifyError::Malformed("no Signature"))?;
    let parts: Vec<&str> = credential.split('/').collect();
    if parts.len() != 5 || parts[4] != "aws4_request" {
        return Err(VerifyError::Malformed("bad credential scope"));
    }
    let (akid, day, region, service) = (parts[0], parts[1], parts[2], parts[3]);
    if service != "bedrock" {
        return Err(VerifyError::Malformed("credential scope must name service bedrock"));
    }
    let cred = creds
        .iter()
        .find(|c| c.access_key_id == akid)
        .ok_or(VerifyError::UnknownKey)?;
    let token = head.header("x-amz-security-token");
    match (&cred.session_token, token) {
        (_, Some(t)) if t == EXPIRED_TOKEN.as_bytes() => return Err(VerifyError::ExpiredToken),
        (Some(expected), Some(t)) if expected.as_bytes() == t => {}
        (None, None) => {}
        _ => return Err(VerifyError::UnknownKey),
    }
    let names: Vec<&str> = signed_headers.split(';').collect();
    for required in ["host", "x-amz-date"] {
        if !names.contains(&required) {
            return Err(VerifyError::Malformed("host and x-amz-date must be signed"));
        }
    }
    if token.is_some() && !names.contains(&"x-amz-security-token") {
        return Err(VerifyError::Malformed("x-amz-security-token must be signed"));
    }
    let date = head
        .header("x-amz-date")
        .ok_or(VerifyError::Malformed("no X-Amz-Date"))?;
    let t = parse_amz_date(date).ok_or(VerifyError::Malformed("bad X-Amz-Date"))?;
    if (t - now).abs() > MAX_SKEW_SECS {
        return Err(VerifyError::Skew);
    }
    if &date[..8] != day.as_bytes() {
        return Err(VerifyError::Malformed("credential date differs from X-Amz-Date"));
    }
    // Every header the client says it signed, with every value as received.
    let mut signed: Vec<(&str, &[u8])> = Vec::new();
    for n in &names {
        let mut found = false;
        for (hn, hv) in head.headers() {
            if hn.eq_ignore_ascii_case(n.as_bytes()) {
                signed.push((n, hv));
                found = true;
            }
        }
        if !found {
            return Err(VerifyError::Malformed("a signed header is missing"));
        }
    }
    let target = head.target();
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(q) => (&target[..q], &target[q + 1..]),
        None => (target, &b""[..]),
    };
    let ph = payload_hash(body);
    let req = SignRequest {
        method: "POST",
        path,
        query,
        headers: &signed,
        payload_hash: std::str::from_utf8(&ph).unwrap_or_default(),
        region,
        service,
        time: SigningTime::from_unix(t),
    };
    let creds = Credentials {
        access_key_id: akid.to_string(),
        secret_access_key: cred.secret.as_str().into(),
        session_token: None,
    };
    let mut signer = Signer::default();
    let expected = signer
        .signature(&creds, &req)
        .map_err(|_| VerifyError::Malformed("unsignable request"))?;
    let sig = signature.as_bytes();
    let mut diff = (sig.len() != expected.len()) as u8;
    for (a, b) in sig.iter().zip(expected.iter()) {
        diff |= a ^ b;
    }
    if diff != 0 {
        let canonical = signer
            .canonical_request(&req)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .unwrap_or_default();
        return Err(VerifyError::Mismatch { canonical });
    }
    Ok(())
}
