//! Routes of the client contract: `POST /bedrock/model/{modelId}/{operation}` for
//! Converse, ConverseStream, InvokeModel, InvokeModelWithResponseStream and CountTokens,
//! `GET /healthz`, `GET /metrics`, and on the admin listener `GET /dashboard` and `/api/`.

/// Which Bedrock operation a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Converse,
    ConverseStream,
    /// InvokeModel: a model-native body (the Anthropic Messages body, say).
    Invoke,
    /// InvokeModelWithResponseStream: its answer is an event stream of `chunk` events.
    InvokeStream,
    /// CountTokens: AWS does not bill it.
    CountTokens,
}

impl Operation {
    /// Every operation, in the order of [`Operation::as_str`]'s names.
    pub(crate) const ALL: [Operation; 5] = [
        Operation::Converse,
        Operation::ConverseStream,
        Operation::Invoke,
        Operation::InvokeStream,
        Operation::CountTokens,
    ];

    /// The name recorded in the usage row (`operation` column).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Operation::Converse => "converse",
            Operation::ConverseStream => "converse-stream",
            Operation::Invoke => "invoke",
            Operation::InvokeStream => "invoke-stream",
            Operation::CountTokens => "count-tokens",
        }
    }

    /// The last segment of the path, on the proxy's routes and upstream alike.
    pub(crate) fn path_segment(self) -> &'static str {
        match self {
            Operation::InvokeStream => "invoke-with-response-stream",
            op => op.as_str(),
        }
    }

    /// Whether the answer is an event stream.
    pub(crate) fn is_stream(self) -> bool {
        matches!(self, Operation::ConverseStream | Operation::InvokeStream)
    }

    /// Whether the call is an InvokeModel family one (model-native body, Bedrock's own
    /// request headers forwarded, usage in response headers).
    pub(crate) fn is_invoke(self) -> bool {
        matches!(self, Operation::Invoke | Operation::InvokeStream)
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
    /// `GET /dashboard` (admin listener).
    Dashboard,
    /// `GET /api/...` (admin listener): the dashboard's JSON.
    Api,
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
        b"/dashboard" | b"/dashboard/" => return Route::Dashboard,
        _ => {}
    }
    if path.starts_with(b"/api/") {
        return Route::Api;
    }
    let Some(rest) = path.strip_prefix(BEDROCK_PREFIX) else {
        return Route::NotFound;
    };
    let Some(slash) = rest.iter().rposition(|&b| b == b'/') else {
        return Route::NotFound;
    };
    let (model, op) = (&rest[..slash], &rest[slash + 1..]);
    let Some(op) = Operation::ALL.into_iter().find(|o| o.path_segment().as_bytes() == op) else {
        return Route::NotFound;
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
        for op in Operation::ALL {
            let path = format!("/bedrock/model/x/{}?q", op.path_segment());
            assert_eq!(resolve(path.as_bytes()), Route::Bedrock { op, raw_model: b"x" });
        }
        assert_eq!(resolve(b"/bedrock/model/x/invoke-stream"), Route::NotFound);
        assert_eq!(resolve(b"/bedrock/model/x/invokes"), Route::NotFound);
        assert_eq!(resolve(b"/"), Route::NotFound);
    }
}
