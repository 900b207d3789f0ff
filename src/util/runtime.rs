//! Building a monoio runtime: io_uring by default, monoio's epoll driver when
//! `MONOIO_FORCE_LEGACY_DRIVER` asks for it or io_uring cannot be built (seccomp, old
//! kernel, memlock). `MONOIO_FORCE_LEGACY_DRIVER` is only read by monoio's own fusion
//! driver, so the choice is made here, once, for the shards and the mock alike.

use std::future::Future;

use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};

/// Which I/O driver a runtime runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Driver {
    IoUring,
    Epoll,
}

impl Driver {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Driver::IoUring => "io_uring",
            Driver::Epoll => "epoll",
        }
    }
}

/// Whether `MONOIO_FORCE_LEGACY_DRIVER` asks for epoll.
pub(crate) fn force_legacy() -> bool {
    matches!(
        std::env::var("MONOIO_FORCE_LEGACY_DRIVER").as_deref(),
        Ok("1" | "true" | "yes")
    )
}

/// Runs `f(driver)` to completion on a new runtime with `entries` io_uring entries and
/// timers; `on_fallback` hears why io_uring could not be built. Errs only when neither
/// driver can be built.
pub(crate) fn block_on<F, Fut>(
    entries: u32,
    on_fallback: impl FnOnce(&std::io::Error),
    f: F,
) -> std::io::Result<Fut::Output>
where
    F: FnOnce(Driver) -> Fut,
    Fut: Future,
{
    if !force_legacy() {
        match RuntimeBuilder::<IoUringDriver>::new()
            .with_entries(entries)
            .enable_timer()
            .build()
        {
            Ok(mut rt) => return Ok(rt.block_on(f(Driver::IoUring))),
            Err(e) => on_fallback(&e),
        }
    }
    let mut rt = RuntimeBuilder::<LegacyDriver>::new().enable_timer().build()?;
    Ok(rt.block_on(f(Driver::Epoll)))
}
