//! `demo`: the offline demo (no environment variables: it is the same everywhere).

use super::{config_exit, with_sources};

pub(crate) fn run(rest: &[String]) -> i32 {
    with_sources(crate::demo::FLAGS, rest, false, |_, sources| {
        let n: usize = match sources.parse_num("requests", 16) {
            Ok(n) => n,
            Err(e) => return config_exit(&e),
        };
        let serve = match sources.switch("serve") {
            Ok(s) => s,
            Err(e) => return config_exit(&e),
        };
        match sources.path("usage-dir") {
            Ok(dir) => crate::demo::run(dir, n, serve),
            Err(e) => config_exit(&e),
        }
    })
}
