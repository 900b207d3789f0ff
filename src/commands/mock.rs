//! `mock-upstream`: the Bedrock simulator, configured by its own flags.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::{config_exit, with_sources};
use crate::args::{log_format, LogFormat};
use crate::mock::MockConfig;

pub(crate) fn run(rest: &[String]) -> i32 {
    with_sources(crate::mock::FLAGS, rest, true, |args, sources| {
        if let Ok(f) = log_format(sources) {
            crate::log::set_json(f == LogFormat::Json);
        }
        let cfg = match MockConfig::from_sources(args, sources) {
            Ok(c) => c,
            Err(e) => return config_exit(&e),
        };
        match crate::mock::run(cfg, None, Arc::new(AtomicBool::new(false))) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("llmops-proxy mock-upstream: {e}");
                1
            }
        }
    })
}
