//! AWS Signature Version 4, hand-written on `ring`: canonical request, string to sign,
//! signature, and a per-shard cache of derived signing keys.
//!
//! The proxy signs every Bedrock call with the caller's credentials. Secrets live in
//! [`Credentials`] (zeroed on drop); derived keys live in [`SigningKeyCache`] (zeroed on
//! drop, keyed by an HMAC fingerprint that includes the secret, so two secrets with one
//! access key id never share a key).
//!
//! Cost (criterion, `cargo bench --bench sigv4`, 1 KiB body, this 2-core VM, busy):
//! see `bench/README.md` for the figures and how they were produced.

pub mod cache;
pub mod canonical;
pub mod signer;

pub use cache::{SigningKeyCache, MAX_CACHED_KEYS};
pub use canonical::{PathEncoding, MAX_SIGNED_HEADERS};
pub use signer::{Credentials, SecretString, SignError, SignRequest, Signer, SigningTime};

/// The signing algorithm name, first token of the `Authorization` header.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Bedrock Runtime signs with service name `bedrock`, not `bedrock-runtime`.
pub const BEDROCK_SERVICE: &str = "bedrock";
