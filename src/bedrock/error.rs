//! How upstream AWS errors are classified: the error type of `x-amzn-errortype` (or of
//! the body's `__type` when the header is missing), the types that mean the caller's
//! credentials were refused, and the short message of an AWS error body (`message` /
//! `Message`), scrubbed of what may identify or replay a credential before the proxy
//! records it: access key ids, signatures and other long hex or base64 runs (session
//! tokens), and the canonical request and string to sign that a signature error echoes.

/// AWS error types that mean the caller's credentials or signature were refused.
pub(crate) const AWS_AUTH_ERRORS: [&str; 5] = [
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
    "IncompleteSignatureException",
    "MissingAuthenticationTokenException",
];

/// The AWS error type from an `x-amzn-errortype` value (`Type:http://...` → `Type`).
pub(crate) fn error_type_from_header(v: &[u8]) -> Option<&str> {
    let v = std::str::from_utf8(v).ok()?;
    let t = v.split(':').next()?.trim();
    (!t.is_empty()).then_some(t)
}

/// Whether an AWS error type is an authentication failure.
pub(crate) fn is_auth_error(error_type: &str) -> bool {
    AWS_AUTH_ERRORS.contains(&error_type)
}

/// The error type an AWS JSON error body names itself (`__type`, `code` or `Code`;
/// `com.amazon.coral.service#UnrecognizedClientException` → the part after `#`).
pub(crate) fn error_type_from_body(body: &[u8]) -> Option<String> {
    use simd_json::prelude::*;
    let mut scratch = body.to_vec();
    let v = simd_json::to_borrowed_value(&mut scratch).ok()?;
    let t = v
        .get("__type")
        .or_else(|| v.get("code"))
        .or_else(|| v.get("Code"))?
        .as_str()?;
    let t = t.rsplit('#').next()?.split(':').next()?.trim();
    let ok = !t.is_empty() && t.len() <= 128 && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '.');
    ok.then(|| t.to_string())
}

/// The AWS error type of an error answer: its `x-amzn-errortype` header, else its body's
/// `__type` (so an error is recognised with or without the header).
pub(crate) fn error_type_of(header: Option<&[u8]>, body: &[u8]) -> Option<String> {
    header
        .and_then(error_type_from_header)
        .map(str::to_string)
        .or_else(|| error_type_from_body(body))
}

/// The `message` (or `Message`) of an AWS JSON error body or exception event, scrubbed
/// ([`scrub`]) and cut to `max_chars`. `None` for anything else.
pub(crate) fn aws_message(body: &[u8], max_chars: usize) -> Option<String> {
    use simd_json::prelude::*;
    let mut scratch = body.to_vec();
    let v = simd_json::to_borrowed_value(&mut scratch).ok()?;
    let m = v.get("message").or_else(|| v.get("Message"))?.as_str()?;
    Some(crate::util::text::truncate_chars(&scrub(m), max_chars))
}

/// Where a signature error's message starts echoing what was signed.
const ECHO_MARKERS: [&str; 3] = ["The Canonical String", "The String-to-Sign", "Canonical request"];
/// Runs of hex at least this long are removed (signatures, hashes).
const MIN_HEX_RUN: usize = 32;
/// Runs of base64 characters at least this long are removed (session tokens).
const MIN_TOKEN_RUN: usize = 40;

fn is_key_id(w: &str) -> bool {
    w.len() >= 16
        && ["AKIA", "ASIA", "AIDA", "AROA", "ABIA", "ACCA"]
            .iter()
            .any(|p| w.starts_with(p))
        && w.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// `m` without access key ids (by their prefixes, and whatever follows `Credential=`),
/// long hex or base64 runs, and anything after a signature
/// error starts echoing the canonical request or the string to sign.
pub(crate) fn scrub(m: &str) -> String {
    let cut = ECHO_MARKERS.iter().filter_map(|k| m.find(k)).min();
    let (m, echoed) = match cut {
        Some(at) => (&m[..at], true),
        None => (m, false),
    };
    let mut out = String::with_capacity(m.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.is_empty() {
            return;
        }
        let hex = word.len() >= MIN_HEX_RUN && word.bytes().all(|b| b.is_ascii_hexdigit());
        if is_key_id(word) || out.ends_with("Credential=") {
            out.push_str("[access key id]");
        } else if hex {
            out.push_str("[hex]");
        } else if word.len() >= MIN_TOKEN_RUN {
            out.push_str("[token]");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in m.chars() {
        // `/` and `=` end a word: they join a credential scope's parts (`Credential=AKIA.../
        // 20250101/...`); a token's base64 pieces between them are long runs of their own.
        if c.is_ascii_alphanumeric() || matches!(c, '+' | '_' | '-') {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    if echoed {
        out.push_str("[what was signed: removed]");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_aws_errors() {
        assert_eq!(
            error_type_from_header(b"ThrottlingException:http://internal.amazon.com/coral/"),
            Some("ThrottlingException")
        );
        assert!(is_auth_error("ExpiredTokenException"));
        assert!(!is_auth_error("AccessDeniedException"));
        assert_eq!(aws_message(br#"{"Message":"slow down"}"#, 4).as_deref(), Some("slow"));
        assert_eq!(aws_message(b"not json", 9), None);
        assert_eq!(
            error_type_from_body(br#"{"__type":"com.amazon.coral.service#UnrecognizedClientException","message":"x"}"#)
                .as_deref(),
            Some("UnrecognizedClientException")
        );
        assert_eq!(error_type_from_body(br#"{"message":"x"}"#), None);
    }

    #[test]
    fn scrubs_key_ids_signatures_tokens_and_echoes() {
        let sig = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\nThe Canonical String for this request should have been\n'POST\n/model/x/converse\n\nhost:bedrock-runtime.us-east-1.amazonaws.com\nx-amz-security-token:IQoJb3JpZ2luX2VjEXAMPLETOKENabcdefghijklmnopqrstuvwxyz0123456789\n'\n\nThe String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20250101T000000Z'";
        let s = scrub(sig);
        assert!(
            s.starts_with("The request signature we calculated does not match"),
            "{s}"
        );
        assert!(
            !s.contains("Canonical String") && !s.contains("security-token") && !s.contains("IQoJ"),
            "{s}"
        );
        assert!(s.ends_with("[what was signed: removed]"), "{s}");
        let s = scrub("Credential=AKIAIOSFODNN7EXAMPLE/20250101/us-east-1/bedrock/aws4_request, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
        assert!(
            !s.contains("AKIAIOSFODNN7EXAMPLE") && !s.contains("0123456789abcdef0123"),
            "{s}"
        );
        assert!(s.contains("[access key id]") && s.contains("[hex]"), "{s}");
        let token = "FwoGZXIvYXdzEXAMPLEdGVzdHRva2VudGVzdHRva2VudGVzdHRva2Vu";
        let s = scrub(&format!("The security token {token} is invalid."));
        assert_eq!(s, "The security token [token] is invalid.");
        let plain = "Too many requests, please wait before trying again.";
        assert_eq!(scrub(plain), plain);
        assert_eq!(
            scrub("Model anthropic.claude-3-haiku-20240307-v1:0 is not available"),
            "Model anthropic.claude-3-haiku-20240307-v1:0 is not available"
        );
    }
}
