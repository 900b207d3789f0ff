//! Process signals: SIGTERM/SIGINT request a drain, SIGHUP a reload. The handlers only
//! store into atomics (async-signal-safe); the main thread polls them. A panicking thread
//! (a shard, the usage writer) requests a drain too, through the panic hook: the process
//! stops cleanly, with an error, instead of running on with a dead core.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);
static RELOAD: AtomicBool = AtomicBool::new(false);
static PANICKED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

extern "C" fn on_reload(_: libc::c_int) {
    RELOAD.store(true, Ordering::SeqCst);
}

/// Installs the handlers (idempotent).
pub fn install() {
    // SAFETY: installing plain C handlers that only touch atomics.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_stop as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGTERM, &sa, std::ptr::null_mut());
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
        let mut sh: libc::sigaction = std::mem::zeroed();
        sh.sa_sigaction = on_reload as *const () as usize;
        libc::sigemptyset(&mut sh.sa_mask);
        libc::sigaction(libc::SIGHUP, &sh, std::ptr::null_mut());
        // A client that goes away mid-write must not kill the process.
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// Replaces the panic hook (idempotent): a panic is logged with its thread and place only
/// (its message may hold request data), then the process drains and exits with an error.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        PANICKED.store(true, Ordering::SeqCst);
        STOP.store(true, Ordering::SeqCst);
        let thread = std::thread::current();
        let place = info
            .location()
            .map_or_else(|| "unknown".to_string(), |l| format!("{}:{}", l.file(), l.line()));
        crate::log::error(
            "thread_panicked",
            &[
                ("thread", thread.name().unwrap_or("unnamed")),
                ("location", &place),
                ("action", "draining the other shards, then exiting with status 1"),
            ],
        );
    }));
}

/// Whether a thread of the process panicked.
pub fn panicked() -> bool {
    PANICKED.load(Ordering::SeqCst)
}

/// Whether a stop was requested.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Takes a pending reload request.
pub fn take_reload() -> bool {
    RELOAD.swap(false, Ordering::SeqCst)
}

/// Requests a stop from inside the process (the demo and tests use it).
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}
