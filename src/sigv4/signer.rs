//! The signer: credentials (zeroed on drop), signing time, and [`Signer::sign`], which
//! turns a request description into the `Authorization` header value.
//!
//! A [`Signer`] belongs to one shard and reuses its scratch buffers, so signing a
//! request allocates only the returned header value.

use std::fmt;

use ring::{digest, hmac};

use super::cache::SigningKeyCache;
use super::canonical::{self, PathEncoding};
use super::{SignError, ALGORITHM};
use crate::util::hex;
use crate::util::time::Civil;

/// A secret held only in memory: zeroed on drop, never printed.
#[derive(Clone, Default)]
pub struct SecretString(Vec<u8>);

impl SecretString {
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        SecretString(bytes)
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for SecretString {
    fn from(s: &str) -> Self {
        SecretString(s.as_bytes().to_vec())
    }
}

impl Drop for SecretString {
    fn drop(&mut self) {
        crate::util::wipe::wipe_vec(&mut self.0);
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

/// AWS credentials of one request.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: SecretString,
    pub session_token: Option<SecretString>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The access key id is not a secret but is still kept out of logs.
        f.write_str("Credentials(<redacted>)")
    }
}

/// The signing time in both forms SigV4 uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigningTime {
    amz_date: [u8; 16],
}

impl SigningTime {
    /// From unix seconds (UTC).
    pub fn from_unix(secs: i64) -> Self {
        let c = Civil::from_unix(secs);
        let mut amz_date = [b'0'; 16];
        c.put_digits(&mut amz_date, [0, 4, 6, 9, 11, 13]);
        amz_date[8] = b'T';
        amz_date[15] = b'Z';
        SigningTime { amz_date }
    }

    pub(crate) fn now() -> Self {
        Self::from_unix(crate::util::time::unix_now())
    }

    /// `YYYYMMDD'T'HHMMSS'Z'`, the `X-Amz-Date` value.
    pub fn amz_date(&self) -> &str {
        // Built from ASCII digits above.
        std::str::from_utf8(&self.amz_date).unwrap_or("19700101T000000Z")
    }

    /// `YYYYMMDD`, the credential scope's date.
    pub(crate) fn day(&self) -> &[u8; 8] {
        self.amz_date[..8].try_into().unwrap_or(&[b'0'; 8])
    }
}

/// What to sign. `path` is the path exactly as it goes on the wire (percent-encoded
/// once), `query` the raw query without `?` (empty for Bedrock), `headers` the headers
/// to sign (any case; `host` and `x-amz-date` must be among them), `payload_hash` the
/// hex SHA-256 of the body.
#[derive(Debug, Clone, Copy)]
pub struct SignRequest<'a> {
    pub method: &'a str,
    pub path: &'a [u8],
    pub query: &'a [u8],
    pub headers: &'a [(&'a str, &'a [u8])],
    pub payload_hash: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    pub time: SigningTime,
}

/// A shard's signer: key cache plus scratch buffers.
pub struct Signer {
    cache: SigningKeyCache,
    encoding: PathEncoding,
    normalize: bool,
    canonical: Vec<u8>,
    signed_headers: Vec<u8>,
    string_to_sign: Vec<u8>,
}

impl Drop for Signer {
    fn drop(&mut self) {
        crate::util::wipe::wipe_vec(&mut self.canonical);
    }
}

impl Default for Signer {
    fn default() -> Self {
        Self::new(SigningKeyCache::default())
    }
}

impl Signer {
    /// A signer for non-S3 services (double-encoded, normalised paths): Bedrock.
    pub fn new(cache: SigningKeyCache) -> Self {
        Self::with_rules(cache, PathEncoding::Double, true)
    }

    /// A signer with explicit path rules (AWS's generic test suite uses single encoding).
    pub fn with_rules(cache: SigningKeyCache, encoding: PathEncoding, normalize: bool) -> Self {
        Signer {
            cache,
            encoding,
            normalize,
            canonical: Vec::with_capacity(1024),
            signed_headers: Vec::with_capacity(128),
            string_to_sign: Vec::with_capacity(256),
        }
    }

    /// Builds the canonical request into the scratch buffer and returns it.
    pub fn canonical_request(&mut self, req: &SignRequest<'_>) -> Result<&[u8], SignError> {
        self.build_canonical(req)?;
        Ok(&self.canonical)
    }

    fn build_canonical(&mut self, req: &SignRequest<'_>) -> Result<(), SignError> {
        // The canonical request holds the session token: room for the largest it can be
        // is made up front (from a zeroed buffer), so it never reallocates and leaves a
        // copy behind in freed memory.
        let headers: usize = req.headers.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
        let most =
            req.method.len() + 5 * req.path.len() + 3 * req.query.len() + 2 * headers + req.payload_hash.len() + 64;
        if self.canonical.capacity() < most {
            crate::util::wipe::wipe_vec(&mut self.canonical);
            self.canonical = Vec::with_capacity(most.next_power_of_two());
        }
        let c = &mut self.canonical;
        c.clear();
        self.signed_headers.clear();
        c.extend_from_slice(req.method.as_bytes());
        c.push(b'\n');
        canonical::write_canonical_uri(req.path, self.normalize, self.encoding, c);
        c.push(b'\n');
        canonical::write_canonical_query(req.query, c);
        c.push(b'\n');
        canonical::write_canonical_headers(req.headers, c, &mut self.signed_headers)?;
        c.push(b'\n');
        c.extend_from_slice(&self.signed_headers);
        c.push(b'\n');
        c.extend_from_slice(req.payload_hash.as_bytes());
        Ok(())
    }

    /// Builds canonical request and string to sign; returns the string to sign.
    pub fn string_to_sign(&mut self, req: &SignRequest<'_>) -> Result<&[u8], SignError> {
        self.build_canonical(req)?;
        let hash = hex::sha256_hex(&self.canonical);
        let s = &mut self.string_to_sign;
        s.clear();
        s.extend_from_slice(ALGORITHM.as_bytes());
        s.push(b'\n');
        s.extend_from_slice(req.time.amz_date().as_bytes());
        s.push(b'\n');
        push_scope(s, &req.time, req.region, req.service);
        s.push(b'\n');
        s.extend_from_slice(&hash);
        Ok(&self.string_to_sign)
    }

    /// Signs and returns the hex signature (64 ASCII bytes).
    pub fn signature(&mut self, creds: &Credentials, req: &SignRequest<'_>) -> Result<[u8; 64], SignError> {
        if creds.access_key_id.is_empty() || creds.secret_access_key.is_empty() {
            return Err(SignError::EmptyCredential);
        }
        self.string_to_sign(req)?;
        let key = self.cache.get(
            &creds.access_key_id,
            creds.secret_access_key.expose(),
            req.time.day(),
            req.region,
            req.service,
        );
        let hkey = hmac::Key::new(hmac::HMAC_SHA256, key.bytes());
        let tag = hmac::sign(&hkey, &self.string_to_sign);
        let mut out = [0u8; 64];
        hex::encode_into(tag.as_ref(), &mut out);
        Ok(out)
    }

    /// Signs and returns the full `Authorization` header value.
    pub fn sign(&mut self, creds: &Credentials, req: &SignRequest<'_>) -> Result<String, SignError> {
        let sig = self.signature(creds, req)?;
        let mut out = Vec::with_capacity(160 + self.signed_headers.len());
        out.extend_from_slice(ALGORITHM.as_bytes());
        out.extend_from_slice(b" Credential=");
        out.extend_from_slice(creds.access_key_id.as_bytes());
        out.push(b'/');
        push_scope(&mut out, &req.time, req.region, req.service);
        out.extend_from_slice(b", SignedHeaders=");
        out.extend_from_slice(&self.signed_headers);
        out.extend_from_slice(b", Signature=");
        out.extend_from_slice(&sig);
        // The canonical request held the session token.
        crate::util::wipe::wipe_vec(&mut self.canonical);
        // Every piece is ASCII or came from &str.
        Ok(String::from_utf8(out).unwrap_or_default())
    }
}

fn push_scope(out: &mut Vec<u8>, time: &SigningTime, region: &str, service: &str) {
    out.extend_from_slice(time.day());
    out.push(b'/');
    out.extend_from_slice(region.as_bytes());
    out.push(b'/');
    out.extend_from_slice(service.as_bytes());
    out.extend_from_slice(b"/aws4_request");
}

/// Hex SHA-256 of a payload, for `SignRequest::payload_hash`.
pub fn payload_hash(body: &[u8]) -> [u8; 64] {
    let d = digest::digest(&digest::SHA256, body);
    let mut out = [0u8; 64];
    hex::encode_into(d.as_ref(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_time_forms() {
        let t = SigningTime::from_unix(1_440_938_160);
        assert_eq!(t.amz_date(), "20150830T123600Z");
        assert_eq!(t.day(), b"20150830");
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "topsecret".into(),
            session_token: Some("tok".into()),
        };
        let s = format!("{c:?} {:?}", c.secret_access_key);
        assert!(!s.contains("topsecret") && !s.contains("AKIDEXAMPLE") && !s.contains("tok\""));
    }
}
