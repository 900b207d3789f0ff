//! The errors the proxy answers itself (DESIGN.md §1): one [`ErrorCode`] per row of the
//! contract's table, each with its HTTP status, and their rendering as a complete
//! response, `{"message": "...", "code": "..."}` (the same `message` key as AWS errors).

use std::fmt;

use crate::http::head::{error_body, HeadWriter};
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
    /// A `block` budget matches a request the proxy cannot price.
    BudgetUnpriced,
    /// An operators' surface without its bearer token.
    Unauthorized,
    ShuttingDown,
    /// The usage journal has no room for another row (disk full or its bound reached).
    LedgerUnavailable,
    /// A bound on connections or body bytes in flight was reached.
    Overloaded,
    /// The request body arrived too slowly.
    RequestTimeout,
}

impl ErrorCode {
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            MissingTrackingKey | MissingAwsCredentials | InvalidRegion | InvalidModelId | BadRequest => 400,
            InvalidTrackingKey | AwsAuthenticationFailed | Unauthorized => 401,
            BudgetUnpriced => 403,
            NotFound => 404,
            MethodNotAllowed => 405,
            LengthRequired => 411,
            PayloadTooLarge => 413,
            UriTooLong => 414,
            BudgetExceeded => 429,
            RequestHeaderFieldsTooLarge => 431,
            UpstreamUnavailable => 502,
            RequestTimeout => 408,
            ShuttingDown | LedgerUnavailable | Overloaded => 503,
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
            BudgetUnpriced => "BudgetUnpriced",
            Unauthorized => "Unauthorized",
            ShuttingDown => "ShuttingDown",
            LedgerUnavailable => "LedgerUnavailable",
            Overloaded => "Overloaded",
            RequestTimeout => "RequestTimeout",
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
            HttpError::BadResponse(_) => ErrorCode::UpstreamUnavailable,
            HttpError::BodyTooSlow => ErrorCode::RequestTimeout,
            HttpError::BodiesInFlightFull => ErrorCode::Overloaded,
        };
        ProxyError::new(code, e.to_string())
    }
}

/// A complete error response (head and JSON body in one buffer).
pub fn error_response(err: &ProxyError, request_id: &str, close: bool, extra: &[(&str, &[u8])]) -> Vec<u8> {
    let body = error_body(&err.message, err.code.as_str());
    let mut out = Vec::with_capacity(body.len() + 200);
    let mut w = HeadWriter::new(&mut out, err.status());
    w.header("content-type", b"application/json")
        .header("x-request-id", request_id.as_bytes());
    for (k, v) in extra {
        w.header(k, v);
    }
    w.header_u64("content-length", body.len() as u64).finish(close);
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_rendering() {
        assert_eq!(ErrorCode::InvalidTrackingKey.status(), 401);
        assert_eq!(ErrorCode::UpstreamTimeout.status(), 504);
        assert_eq!(ProxyError::from(HttpError::BodyTooLarge).status(), 413);
        let out = error_response(
            &ProxyError::new(ErrorCode::NotFound, "no"),
            "id1",
            true,
            &[("allow", b"GET")],
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(text.contains("allow: GET\r\n") && text.contains("Connection: close"));
        assert!(text.ends_with(r#"{"message":"no","code":"NotFound"}"#));
    }
}
