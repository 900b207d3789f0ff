//! `serve`: start-up and shutdown (`startup`), the shard runtime (`runtime`: a thread and
//! a monoio runtime per shard, listeners, accept loops), the client connection loop
//! (`conn`: keep-alive, dispatch, the proxy's own small answers), SIGHUP reloads
//! (`reload`), signals, `/metrics`, and the configuration (`config`).

pub mod config;
pub mod conn;
pub mod metrics;
pub mod reload;
pub mod runtime;
pub mod signals;
pub mod startup;

use std::fmt;

pub use config::ServeConfig;
pub use startup::serve;

/// Why `serve` stopped with an error.
#[derive(Debug)]
pub enum ServeError {
    /// Bad configuration (exit code 2).
    Config(crate::args::ConfigError),
    /// Runtime failure (exit code 1).
    Runtime(String),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Config(e) => write!(f, "{e}"),
            ServeError::Runtime(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for ServeError {}
