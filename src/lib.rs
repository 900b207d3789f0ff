//! llmops-proxy: a thread-per-core proxy in front of Amazon Bedrock that signs every
//! Converse call with SigV4, relays it, and meters its usage into Parquet.
//!
//! Module map (DESIGN.md §2): `server` (runtimes, listeners, connection loop),
//! `http` (hand-parsed HTTP/1.1), `bedrock` (routes, model ids, regions, AWS errors),
//! `sigv4` (signing), `upstream` (endpoint and pool), `usage` (records, prices,
//! queues, Parquet), `mock` (a Bedrock simulator that verifies signatures).

pub mod sigv4;
pub mod util;
