//! The request headers of Bedrock's own that select an InvokeModel call's behaviour
//! (`Accept`, the tier, the latency mode, tracing, guardrails): a client's values are
//! forwarded upstream and signed. Nothing else of the client's head goes upstream (its
//! `Authorization`, `X-Amz-*`, the proxy's own `X-Aws-*` headers stay behind). A header
//! sent twice, or with a value longer than [`MAX_FORWARDED_VALUE`], is refused (400):
//! the proxy and AWS must not disagree on how a call is billed.

use super::route::Operation;
use crate::http::request::RequestHead;

/// Longest forwarded header value (a guardrail ARN is the longest legitimate one).
pub(crate) const MAX_FORWARDED_VALUE: usize = 2048;

/// A forwarded header: its name lower-cased, and as written upstream.
pub(crate) struct Forwarded {
    pub lower: &'static str,
    pub upstream: &'static str,
}

const fn fwd(lower: &'static str, upstream: &'static str) -> Forwarded {
    Forwarded { lower, upstream }
}

/// Index of `Accept` in [`FORWARDED`]: InvokeModel's response type. On
/// InvokeModelWithResponseStream the proxy asks for the event stream itself and the
/// model's type travels as `X-Amzn-Bedrock-Accept`.
pub(crate) const ACCEPT: usize = 0;

/// The forwarded headers (botocore's `bedrock-runtime` model: InvokeModel and
/// InvokeModelWithResponseStream).
pub(crate) const FORWARDED: [Forwarded; 7] = [
    fwd("accept", "Accept"),
    fwd("x-amzn-bedrock-accept", "X-Amzn-Bedrock-Accept"),
    fwd("x-amzn-bedrock-trace", "X-Amzn-Bedrock-Trace"),
    fwd(
        "x-amzn-bedrock-guardrailidentifier",
        "X-Amzn-Bedrock-GuardrailIdentifier",
    ),
    fwd("x-amzn-bedrock-guardrailversion", "X-Amzn-Bedrock-GuardrailVersion"),
    fwd(
        "x-amzn-bedrock-performanceconfig-latency",
        "X-Amzn-Bedrock-PerformanceConfig-Latency",
    ),
    fwd("x-amzn-bedrock-service-tier", "X-Amzn-Bedrock-Service-Tier"),
];

/// Index of the service tier in [`FORWARDED`].
pub(crate) const SERVICE_TIER: usize = 6;
/// Index of the latency mode in [`FORWARDED`].
pub(crate) const LATENCY: usize = 5;

/// Why a client's Bedrock header is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForwardError {
    Duplicate(&'static str),
    TooLong(&'static str),
}

impl std::fmt::Display for ForwardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ForwardError::Duplicate(h) => write!(f, "the {h} header appears more than once; send it once"),
            ForwardError::TooLong(h) => write!(f, "the {h} header is longer than {MAX_FORWARDED_VALUE} bytes"),
        }
    }
}

/// The values of [`FORWARDED`] a request carries, by index; always empty unless `op` is
/// an InvokeModel one (Converse carries these choices in its body).
pub(crate) fn forwarded(head: &RequestHead, op: Operation) -> Result<[Option<&[u8]>; FORWARDED.len()], ForwardError> {
    let mut out = [None; FORWARDED.len()];
    if !op.is_invoke() {
        return Ok(out);
    }
    for (name, value) in head.headers() {
        let Some(i) = FORWARDED
            .iter()
            .position(|f| name.eq_ignore_ascii_case(f.lower.as_bytes()))
        else {
            continue;
        };
        if i == ACCEPT && op != Operation::Invoke {
            continue;
        }
        let h = FORWARDED[i].upstream;
        if out[i].is_some() {
            return Err(ForwardError::Duplicate(h));
        }
        if value.len() > MAX_FORWARDED_VALUE {
            return Err(ForwardError::TooLong(h));
        }
        out[i] = Some(value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::parse_head;

    fn head(extra: &str) -> RequestHead {
        let raw = format!("POST /x HTTP/1.1\r\nHost: h\r\n{extra}Content-Length: 0\r\n\r\n");
        parse_head(raw.as_bytes()).unwrap().unwrap().0
    }

    #[test]
    fn forwards_bedrocks_headers_on_invoke_only() {
        let h = head("accept: application/json\r\nX-Amzn-Bedrock-Service-Tier: flex\r\nAuthorization: AWS4 x\r\nX-Amz-Date: 1\r\nX-Amzn-Bedrock-Other: 1\r\n");
        let f = forwarded(&h, Operation::Invoke).unwrap();
        assert_eq!(f[ACCEPT], Some(&b"application/json"[..]));
        assert_eq!(f[SERVICE_TIER], Some(&b"flex"[..]));
        assert_eq!(f.iter().flatten().count(), 2);
        // The stream's own Accept is the proxy's; Converse forwards nothing.
        let f = forwarded(&h, Operation::InvokeStream).unwrap();
        assert_eq!((f[ACCEPT], f[SERVICE_TIER]), (None, Some(&b"flex"[..])));
        assert!(forwarded(&h, Operation::Converse).unwrap().iter().all(Option::is_none));
        assert!(forwarded(&h, Operation::CountTokens)
            .unwrap()
            .iter()
            .all(Option::is_none));
    }

    #[test]
    fn refuses_duplicates_and_long_values() {
        let h = head("x-amzn-bedrock-service-tier: flex\r\nX-Amzn-Bedrock-Service-Tier: priority\r\n");
        assert_eq!(
            forwarded(&h, Operation::Invoke),
            Err(ForwardError::Duplicate("X-Amzn-Bedrock-Service-Tier"))
        );
        let h = head(&format!(
            "X-Amzn-Bedrock-Trace: {}\r\n",
            "a".repeat(MAX_FORWARDED_VALUE + 1)
        ));
        assert_eq!(
            forwarded(&h, Operation::InvokeStream),
            Err(ForwardError::TooLong("X-Amzn-Bedrock-Trace"))
        );
    }
}
