//! The `llmops-proxy` binary: hands the command line to `llmops_proxy::commands`.

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(llmops_proxy::commands::run(&argv));
}
