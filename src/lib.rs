//! llmops-proxy: a thread-per-core proxy in front of Amazon Bedrock that signs every
//! Converse call with SigV4, relays it, and meters its usage into Parquet.
//!
//! Module map (DESIGN.md §2): `server` (runtimes, listeners, connection loop),
//! `http` (hand-parsed HTTP/1.1), `bedrock` (routes, model ids, regions, AWS errors),
//! `sigv4` (signing), `upstream` (endpoint, TLS, pool, exchange), `usage` (records,
//! prices, queues, Parquet), `tenant` (tracking keys), `mock` (a Bedrock simulator that
//! verifies signatures), `demo` (the offline demo).

pub mod args;
pub mod bedrock;
pub mod budget;
pub mod commands;
pub mod demo;
pub mod http;
pub mod log;
pub mod mock;
pub mod pricing;
pub mod proxy;
pub mod report;
pub mod server;
pub mod sigv4;
pub mod tenant;
pub mod tls;
pub mod upstream;
pub mod usage;
pub mod util;
