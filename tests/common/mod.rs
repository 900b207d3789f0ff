//! Test harness: runs the real binary (`mock-upstream`, `serve`) as child processes on
//! loopback through one launcher ([`launch::Launch`]; children are killed when dropped,
//! also when a test fails), captures their logs, and talks raw HTTP/1.1 over std sockets
//! (`client`), with one headers builder, one `/metrics` scraper (`metrics`), a test PKI
//! (`pki`) and the mock-plus-proxy [`rig::Rig`] most suites start from.
#![allow(dead_code, unused_imports)]
// Test helpers: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

pub mod client;
pub mod launch;
pub mod metrics;
pub mod pki;
pub mod rig;

pub use client::*;
pub use launch::*;
pub use metrics::*;
pub use pki::*;
pub use rig::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_llmops-proxy");
pub const AKID: &str = "AKIDTESTINTEGRATION01";
pub const SECRET: &str = "test-secret-Zq8vW3xR7yT1uI9oP0aS2dF4gH6jK8l";
pub const TOKEN_AKID: &str = "ASIATESTINTEGRATION02";
pub const TOKEN_SECRET: &str = "token-secret-Mn5bV7cX9zL1kJ3hG5fD7sA9qW2e";
pub const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjTESTSESSIONTOKENxyz0123456789abcdefSECRETSESSION";
pub const TRACKING_KEY: &str = "trk_integration_test_key_0001";
pub const PROMPT: &str = "PROMPT-CANARY-7f3a: tell me about the quarterly numbers";
