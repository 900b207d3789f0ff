//! The `llmops-proxy` binary: hands the command line to `llmops_proxy::commands`, on
//! glibc's allocator with the per-thread cache the shards and the usage writer turn on
//! (`llmops_proxy::util::alloc`).

#[global_allocator]
static ALLOC: llmops_proxy::util::alloc::Cached = llmops_proxy::util::alloc::Cached;

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(llmops_proxy::commands::run(&argv));
}
