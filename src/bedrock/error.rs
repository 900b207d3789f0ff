//! The errors the proxy answers itself (DESIGN.md §1), and how upstream AWS errors are
//! classified. Bodies are `{"message": "...", "code": "..."}`.

use std::fmt;

use crate::http::HttpError;

/// The `code` of a proxy error; each has one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    MissingTrackingKey,
    InvalidTrackingKey,
    MissingAwsCredentials,
    InvalidRegion,
    InvalidModelId,
    BadRequest,
    AwsAuthenticationFailed,
    NotFound,
    MethodNotAllowed,
    LengthRequired,
    PayloadTooLarge,
    UriTooLong,
    RequestHeaderFieldsTooLarge,
    UpstreamUnavailable,
    UpstreamTimeout,
    BudgetExceeded,
    ShuttingDown,
}

impl ErrorCode {
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            MissingTrackingKey | MissingAwsCredentials | InvalidRegion | InvalidModelId | BadRequest => 400,
            InvalidTrackingKey | AwsAuthenticationFailed => 401,
            NotFound => 404,
            MethodNotAllowed => 405,
            LengthRequired => 411,
            PayloadTooLarge => 413,
            UriTooLong => 414,
            BudgetExceeded => 429,
            RequestHeaderFieldsTooLarge => 431,
            UpstreamUnavailable => 502,
            ShuttingDown => 503,
            UpstreamTimeout => 504,
        }
    }

    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            MissingTrackingKey => "MissingTrackingKey",
            InvalidTrackingKey => "InvalidTrackingKey",
            MissingAwsCredentials => "MissingAwsCredentials",
            InvalidRegion => "InvalidRegion",
            InvalidModelId => "InvalidModelId",
            BadRequest => "BadRequest",
            AwsAuthenticationFailed => "AwsAuthenticationFailed",
            NotFound => "NotFound",
            MethodNotAllowed => "MethodNotAllowed",
            LengthRequired => "LengthRequired",
            PayloadTooLarge => "PayloadTooLarge",
            UriTooLong => "UriTooLong",
            RequestHeaderFieldsTooLarge => "RequestHeaderFieldsTooLarge",
            UpstreamUnavailable => "UpstreamUnavailable",
            UpstreamTimeout => "UpstreamTimeout",
            BudgetExceeded => "BudgetExceeded",
            ShuttingDown => "ShuttingDown",
        }
    }
}

/// An error the proxy answers itself. The message never holds a secret, a prompt or
/// a completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyError {
    pub code: ErrorCode,
    pub message: String,
}

impl ProxyError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ProxyError {
            code,
            message: message.into(),
        }
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl From<HttpError> for ProxyError {
    fn from(e: HttpError) -> Self {
        let code = match e {
            HttpError::BadRequest(_) | HttpError::UnexpectedEof => ErrorCode::BadRequest,
            HttpError::HeadersTooLarge => ErrorCode::RequestHeaderFieldsTooLarge,
            HttpError::UriTooLong => ErrorCode::UriTooLong,
            HttpError::BodyTooLarge => ErrorCode::PayloadTooLarge,
            HttpError::LengthRequired => ErrorCode::LengthRequired,
        };
        ProxyError::new(code, e.to_string())
    }
}

/// AWS error types that mean the caller's credentials or signature were refused.
pub const AWS_AUTH_ERRORS: [&str; 5] = [
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
    "IncompleteSignatureException",
    "MissingAuthenticationTokenException",
];

/// The AWS error type from an `x-amzn-errortype` value (`Type:http://...` → `Type`).
pub fn error_type_from_header(v: &[u8]) -> Option<&str> {
    let v = std::str::from_utf8(v).ok()?;
    let t = v.split(':').next()?.trim();
    (!t.is_empty()).then_some(t)
}

/// Whether an AWS error type is an authentication failure.
pub fn is_auth_error(error_type: &str) -> bool {
    AWS_AUTH_ERRORS.contains(&error_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(ErrorCode::InvalidTrackingKey.status(), 401);
        assert_eq!(ErrorCode::UpstreamTimeout.status(), 504);
        assert_eq!(ProxyError::from(HttpError::BodyTooLarge).status(), 413);
        assert_eq!(
            error_type_from_header(b"ThrottlingException:http://internal.amazon.com/coral/"),
            Some("ThrottlingException")
        );
        assert!(is_auth_error("ExpiredTokenException"));
        assert!(!is_auth_error("AccessDeniedException"));
    }
}
