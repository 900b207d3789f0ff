//! Bill-grade cost: the price model, the price file and the built-in table, and the
//! resolution of one call's exact cost from what its response reported
//! (shared/reference/bedrock-pricing.md has the facts and their sources).
//!
//! A price depends on the endpoint scope (global / geo profile / in-region), the source
//! region, the service tier and latency mode the response reports, the cache-write TTL,
//! the whole-request long-context cliff and the request's date; guardrail text units have
//! their own meters, and application-inference-profile ARNs are aliased to a model.
//! Money is integers end to end: femto-USD per token in the table, pico-USD in a row.
//! An unknown price is `None` with flags, never zero.
//!
//! `decimal` (exact parsing and formatting), `dims` (the dimensions and flags), `file`
//! (the TOML format, validation, the built-in table), `table` (cards, resolution),
//! `explain` (`llmops-proxy prices`). `gen_prices.py` regenerates `builtin.toml`.

pub mod decimal;
pub mod dims;
pub(crate) mod explain;
pub mod file;
pub mod table;

pub use dims::{Flag, Flags, Latency, Scope, Tier};
pub use file::PriceFileError;
pub use table::{Metered, PriceTable, Priced, Query, Trace};
