//! Model ids: decoded from the one path segment the client sent (`:` raw or `%3A`, an
//! ARN's `/` as `%2F`), validated, geo-prefixed by a configurable rule table, and
//! percent-encoded again as one segment for the upstream path.

use crate::sigv4::canonical::uri_encode;

/// Longest model id accepted (Bedrock's own limit for ids and ARNs).
pub const MAX_MODEL_ID_LEN: usize = 2048;

/// Why a model id was refused (becomes `InvalidModelId`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelIdError {
    Empty,
    TooLong,
    BadEscape,
    BadCharacter,
    DotSegment,
}

impl std::fmt::Display for ModelIdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ModelIdError::Empty => "model id is empty",
            ModelIdError::TooLong => "model id is longer than 2048 characters",
            ModelIdError::BadEscape => "model id has an invalid percent escape",
            ModelIdError::BadCharacter => {
                "model id may only contain letters, digits and . _ : / - + @ = , ~ (send ARNs with / as %2F)"
            }
            ModelIdError::DotSegment => "model id must not contain '.' or '..' path segments",
        })
    }
}

fn allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'/' | b'-' | b'+' | b'@' | b'=' | b',' | b'~')
}

/// Decodes and validates the model id segment of a request path.
pub fn decode_model_id(raw: &[u8]) -> Result<String, ModelIdError> {
    if raw.is_empty() {
        return Err(ModelIdError::Empty);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'%' {
            let (Some(h), Some(l)) = (
                raw.get(i + 1).and_then(|&c| crate::util::hex::digit_value(c)),
                raw.get(i + 2).and_then(|&c| crate::util::hex::digit_value(c)),
            ) else {
                return Err(ModelIdError::BadEscape);
            };
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    if out.len() > MAX_MODEL_ID_LEN {
        return Err(ModelIdError::TooLong);
    }
    if !out.iter().all(|&b| allowed(b)) {
        return Err(ModelIdError::BadCharacter);
    }
    if out.split(|&b| b == b'/').any(|seg| seg == b"." || seg == b"..") {
        return Err(ModelIdError::DotSegment);
    }
    // Every byte is ASCII (checked above).
    String::from_utf8(out).map_err(|_| ModelIdError::BadCharacter)
}

/// Percent-encodes a model id as one path segment (`:` → `%3A`, `/` → `%2F`).
pub fn encode_model_segment(id: &str, out: &mut Vec<u8>) {
    uri_encode(id.as_bytes(), b"", out);
}

/// The cross-region inference-profile rules (DESIGN.md §1), configurable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeoRules {
    /// Providers whose bare ids get a prefix (`anthropic`, `meta`, `deepseek`).
    pub providers: Vec<String>,
    /// Region-name prefix to profile prefix, most specific first (`us-gov-` before `us-`).
    pub regions: Vec<(String, String)>,
    /// Prefixes that mark an id as already geo-prefixed.
    pub known_prefixes: Vec<String>,
}

impl Default for GeoRules {
    fn default() -> Self {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        GeoRules {
            providers: s(&["anthropic", "meta", "deepseek"]),
            regions: vec![
                ("us-gov-".into(), "us-gov.".into()),
                ("us-".into(), "us.".into()),
                ("eu-".into(), "eu.".into()),
                ("ap-".into(), "apac.".into()),
            ],
            known_prefixes: s(&["us.", "eu.", "apac.", "us-gov.", "jp.", "au.", "ca.", "global."]),
        }
    }
}

impl GeoRules {
    /// The id sent upstream for `id` in `region`: unchanged for ARNs, already-prefixed
    /// ids, other providers and regions without a rule.
    pub fn effective(&self, id: &str, region: &str) -> String {
        if id.starts_with("arn:") || self.known_prefixes.iter().any(|p| id.starts_with(p.as_str())) {
            return id.to_string();
        }
        let provider = id.split('.').next().unwrap_or("");
        if !id.contains('.') || !self.providers.iter().any(|p| p == provider) {
            return id.to_string();
        }
        // Regions are sorted most specific first by `sorted`.
        for (rp, prefix) in &self.regions {
            if region.starts_with(rp.as_str()) {
                return format!("{prefix}{id}");
            }
        }
        id.to_string()
    }

    /// Orders region rules longest prefix first so `us-gov-` wins over `us-`.
    pub fn sorted(mut self) -> Self {
        self.regions.sort_by_key(|r| std::cmp::Reverse(r.0.len()));
        self
    }

    /// The id without its geo prefix, if it has one (for price fallback).
    pub fn base_model<'a>(&self, id: &'a str) -> Option<&'a str> {
        self.known_prefixes.iter().find_map(|p| id.strip_prefix(p.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode() {
        assert_eq!(
            decode_model_id(b"amazon.nova-lite-v1%3A0").unwrap(),
            "amazon.nova-lite-v1:0"
        );
        assert_eq!(
            decode_model_id(b"amazon.nova-lite-v1:0").unwrap(),
            "amazon.nova-lite-v1:0"
        );
        assert_eq!(
            decode_model_id(b"arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.x").unwrap(),
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.x"
        );
        assert_eq!(decode_model_id(b"%2E%2E"), Err(ModelIdError::DotSegment));
        assert_eq!(decode_model_id(b"a/../b"), Err(ModelIdError::DotSegment));
        assert_eq!(decode_model_id(b"a%2"), Err(ModelIdError::BadEscape));
        assert_eq!(decode_model_id(b"a%20b"), Err(ModelIdError::BadCharacter));
        assert_eq!(decode_model_id(b"a?b"), Err(ModelIdError::BadCharacter));
        assert_eq!(decode_model_id(b""), Err(ModelIdError::Empty));
    }

    #[test]
    fn encode() {
        let mut out = Vec::new();
        encode_model_segment("arn:aws:bedrock:us-east-1:1:x/y", &mut out);
        assert_eq!(out, b"arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ax%2Fy");
    }

    #[test]
    fn geo() {
        let g = GeoRules::default().sorted();
        assert_eq!(
            g.effective("anthropic.claude-sonnet-4-6", "us-east-1"),
            "us.anthropic.claude-sonnet-4-6"
        );
        assert_eq!(
            g.effective("anthropic.claude-sonnet-4-6", "us-gov-west-1"),
            "us-gov.anthropic.claude-sonnet-4-6"
        );
        assert_eq!(
            g.effective("meta.llama3-1-8b-instruct-v1:0", "eu-west-1"),
            "eu.meta.llama3-1-8b-instruct-v1:0"
        );
        assert_eq!(
            g.effective("deepseek.r1-v1:0", "ap-northeast-1"),
            "apac.deepseek.r1-v1:0"
        );
        assert_eq!(
            g.effective("amazon.nova-lite-v1:0", "us-east-1"),
            "amazon.nova-lite-v1:0"
        );
        assert_eq!(
            g.effective("global.anthropic.claude-sonnet-4-6", "us-east-1"),
            "global.anthropic.claude-sonnet-4-6"
        );
        assert_eq!(
            g.effective("jp.anthropic.claude-sonnet-4-6", "ap-northeast-1"),
            "jp.anthropic.claude-sonnet-4-6"
        );
        assert_eq!(
            g.effective("arn:aws:bedrock:us-east-1:1:x/anthropic.y", "us-east-1"),
            "arn:aws:bedrock:us-east-1:1:x/anthropic.y"
        );
        assert_eq!(g.effective("anthropic.claude", "ca-central-1"), "anthropic.claude");
        assert_eq!(g.base_model("us.anthropic.x"), Some("anthropic.x"));
    }
}
