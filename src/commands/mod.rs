//! The `llmops-proxy` command line, one entry per subcommand. Each subcommand's flags
//! live with the configuration they build (`server::config`, `mock`, `demo`, `report`,
//! `pricing::explain`); this module only dispatches, prints help and the version, and
//! turns a configuration error into exit code 2. Exit codes: 0 clean stop, 2 bad
//! configuration (the message names the flag), 1 runtime failure.

mod demo;
mod mock;
mod prices;
mod report;
mod serve;

use crate::args::{help, Args, ConfigError, FlagSpec, Sources};

/// One subcommand.
struct Command {
    name: &'static str,
    /// What follows the name in the usage line.
    args: &'static str,
    about: &'static str,
    flags: &'static [FlagSpec],
    run: fn(&[String]) -> i32,
}

const COMMANDS: &[Command] = &[
    Command {
        name: "serve",
        args: "[FLAGS]",
        about: "run the proxy",
        flags: crate::server::config::FLAGS,
        run: serve::run,
    },
    Command {
        name: "demo",
        args: "[FLAGS]",
        about: "offline demo: mock Bedrock + proxy + sample traffic + cost table",
        flags: crate::demo::FLAGS,
        run: demo::run,
    },
    Command {
        name: "mock-upstream",
        args: "[FLAGS]",
        about: "a Bedrock Runtime simulator that verifies SigV4 (tests, demos)",
        flags: crate::mock::FLAGS,
        run: mock::run,
    },
    Command {
        name: "report",
        args: "[FLAGS]",
        about: "cost, tokens and error rates from the Parquet files (text, --html)",
        flags: crate::report::FLAGS,
        run: report::run,
    },
    Command {
        name: "prices",
        args: "explain [FLAGS] | check FILE",
        about: "how one call is priced, line by line; or validate a --pricing file",
        flags: crate::pricing::explain::FLAGS,
        run: prices::run,
    },
];

/// `llmops-proxy 0.1.0`.
const VERSION: &str = concat!("llmops-proxy ", env!("CARGO_PKG_VERSION"));

fn usage() -> String {
    let mut out = format!(
        "{VERSION}: a thread-per-core Amazon Bedrock proxy that signs with SigV4 and meters usage into Parquet\n\nUsage:\n"
    );
    for c in COMMANDS {
        let left = format!("llmops-proxy {} {}", c.name, c.args);
        out.push_str(&format!("  {left:<50} {}\n", c.about));
    }
    out.push_str("  llmops-proxy --help | --version\n\n`llmops-proxy COMMAND --help` lists a command's flags.\n");
    out
}

/// Runs the command line (without the program name); returns the exit code.
pub fn run(argv: &[String]) -> i32 {
    let Some(first) = argv.first() else {
        eprint!("{}", usage());
        return 2;
    };
    let rest = &argv[1..];
    match first.as_str() {
        "--help" | "-h" | "help" => {
            print!("{}", usage());
            return 0;
        }
        "--version" | "-V" | "version" => {
            println!("{VERSION}");
            return 0;
        }
        _ => {}
    }
    let Some(cmd) = COMMANDS.iter().find(|c| c.name == first) else {
        eprintln!("llmops-proxy: unknown command `{first}`\n\n{}", usage());
        return 2;
    };
    if rest.iter().any(|a| a == "--help" || a == "-h") {
        print!("{}", help(cmd.name, cmd.about, cmd.flags));
        return 0;
    }
    if rest.iter().any(|a| a == "--version" || a == "-V") {
        println!("{VERSION}");
        return 0;
    }
    (cmd.run)(rest)
}

/// Reports a configuration error; exit code 2.
fn config_exit(e: &ConfigError) -> i32 {
    eprintln!("llmops-proxy: configuration error: {e}");
    2
}

/// Parses `rest` against `flags` and hands the sources (flags, then `LLMOPS_*` when
/// `use_env`, then `--config`) to `f`; a bad flag exits with code 2 naming it.
fn with_sources(flags: &[FlagSpec], rest: &[String], use_env: bool, f: impl FnOnce(&Args, &Sources<'_>) -> i32) -> i32 {
    let args = match Args::parse(flags, rest) {
        Ok(a) => a,
        Err(e) => return config_exit(&e),
    };
    let env = |k: &str| std::env::var(k).ok();
    let no_env = |_: &str| None;
    let envf: &dyn Fn(&str) -> Option<String> = if use_env { &env } else { &no_env };
    match Sources::new(&args, envf) {
        Ok(s) => f(&args, &s),
        Err(e) => config_exit(&e),
    }
}
