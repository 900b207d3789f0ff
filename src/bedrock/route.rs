//! Routes of the client contract: `POST /bedrock/model/{modelId}/converse[-stream]`,
//! `GET /healthz`, `GET /metrics`.

/// Which Bedrock operation a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Converse,
    ConverseStream,
}

impl Operation {
    /// The name recorded in the usage row and used in the upstream path.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Operation::Converse => "converse",
            Operation::ConverseStream => "converse-stream",
        }
    }
}

/// The route a request target resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    /// `raw_model` is the model id segment as sent (still percent-encoded).
    Bedrock {
        op: Operation,
        raw_model: &'a [u8],
    },
    Health,
    Metrics,
    NotFound,
}

/// The prefix of Bedrock routes.
pub(crate) const BEDROCK_PREFIX: &[u8] = b"/bedrock/model/";

/// Resolves a request target (query ignored).
pub(crate) fn resolve(target: &[u8]) -> Route<'_> {
    let path = match target.iter().position(|&b| b == b'?') {
        Some(q) => &target[..q],
        None => target,
    };
    match path {
        b"/healthz" => return Route::Health,
        b"/metrics" => return Route::Metrics,
        _ => {}
    }
    let Some(rest) = path.strip_prefix(BEDROCK_PREFIX) else {
        return Route::NotFound;
    };
    let Some(slash) = rest.iter().rposition(|&b| b == b'/') else {
        return Route::NotFound;
    };
    let (model, op) = (&rest[..slash], &rest[slash + 1..]);
    let op = match op {
        b"converse" => Operation::Converse,
        b"converse-stream" => Operation::ConverseStream,
        _ => return Route::NotFound,
    };
    if model.is_empty() {
        return Route::NotFound;
    }
    Route::Bedrock { op, raw_model: model }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(resolve(b"/healthz"), Route::Health);
        assert_eq!(resolve(b"/metrics?x=1"), Route::Metrics);
        assert_eq!(
            resolve(b"/bedrock/model/amazon.nova-lite-v1%3A0/converse"),
            Route::Bedrock {
                op: Operation::Converse,
                raw_model: b"amazon.nova-lite-v1%3A0"
            }
        );
        assert_eq!(
            resolve(b"/bedrock/model/a:b/converse-stream"),
            Route::Bedrock {
                op: Operation::ConverseStream,
                raw_model: b"a:b"
            }
        );
        assert_eq!(resolve(b"/bedrock/model//converse"), Route::NotFound);
        assert_eq!(resolve(b"/bedrock/model/x/invoke"), Route::NotFound);
        assert_eq!(resolve(b"/"), Route::NotFound);
    }
}
