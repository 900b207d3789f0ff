//! `serve`: the configuration from flags, environment and file, then the server.

use super::{config_exit, with_sources};
use crate::args::LogFormat;
use crate::server::{ServeConfig, ServeError};

pub(crate) fn run(rest: &[String]) -> i32 {
    with_sources(crate::server::config::FLAGS, rest, true, |_, sources| {
        let cfg = match ServeConfig::from_sources(sources) {
            Ok(c) => c,
            Err(e) => return config_exit(&e),
        };
        crate::log::set_json(cfg.log_format == LogFormat::Json);
        match crate::server::serve(cfg, None) {
            Ok(()) => 0,
            Err(ServeError::Config(e)) => config_exit(&e),
            Err(ServeError::Runtime(e)) => {
                crate::log::error("fatal", &[("error", &e)]);
                crate::log::flush(std::time::Duration::from_secs(2));
                1
            }
        }
    })
}
