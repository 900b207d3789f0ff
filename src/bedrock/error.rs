//! How upstream AWS errors are classified: the error type of `x-amzn-errortype`, the
//! types that mean the caller's credentials were refused, and the short message of an
//! AWS error body (`message` / `Message`).

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

/// The `message` (or `Message`) of an AWS JSON error body or exception event, cut to
/// `max_chars`. `None` for anything else.
pub(crate) fn aws_message(body: &[u8], max_chars: usize) -> Option<String> {
    use simd_json::prelude::*;
    let mut scratch = body.to_vec();
    let v = simd_json::to_borrowed_value(&mut scratch).ok()?;
    let m = v.get("message").or_else(|| v.get("Message"))?.as_str()?;
    Some(m.chars().take(max_chars).collect())
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
    }
}
