//! Fuzz-target support for llmops-proxy: the properties each target checks live in
//! [`props`], so `tests/fuzz_regressions.rs` in the main crate replays seeds and
//! minimised crashes through exactly the same checks.

pub mod props;
