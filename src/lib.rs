//! llmops-proxy: a thread-per-core proxy in front of Amazon Bedrock that signs every
//! Bedrock call with SigV4, relays it, and meters its usage into Parquet.
//!
//! The request's path, top down: `commands` (the command line) starts `server`
//! (start-up, one runtime per shard, the connection loop), which hands each Bedrock call
//! to `proxy` (the stages: validate, budget, sign, relay, stream), which signs with
//! `sigv4`, sends through `upstream` (connect, TLS via `tls`, pool, retry), reads usage
//! into a `usage` row priced by `pricing`, and journals the row for the `usage` ledger
//! (Parquet, exactly once; `budget` watches the spend). Underneath: `http` (HTTP/1.1 for both
//! directions), `bedrock` (model ids, regions, routes, event streams, AWS errors),
//! `tenant` (tracking keys), `args` (flags, environment, config file), `log`, `util`.
//! Beside it: `mock` (a Bedrock simulator that verifies signatures), `demo`, `report`.
//! The contract is `docs/DESIGN.md`. Modules are public only where the tests, the fuzz
//! targets or the benches reach in.

pub(crate) mod args;
pub mod bedrock;
pub(crate) mod budget;
pub mod commands;
pub(crate) mod dashboard;
pub(crate) mod demo;
pub mod http;
pub(crate) mod log;
pub mod mock;
pub(crate) mod optimizer;
pub mod pricing;
pub(crate) mod proxy;
pub(crate) mod report;
pub(crate) mod server;
pub mod sigv4;
pub(crate) mod tenant;
pub(crate) mod tls;
pub(crate) mod upstream;
pub mod usage;
pub mod util;
