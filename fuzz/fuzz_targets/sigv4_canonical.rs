#![no_main]
//! Property: see `check_sigv4_canonical` in `fuzz/src/props.rs` (and fuzz/README.md).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| llmops_proxy_fuzz::props::check_sigv4_canonical(data));
