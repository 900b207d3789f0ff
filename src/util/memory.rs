//! Giving idle memory back to the OS. Buffers a shard frees while connections sit idle
//! (see `http::io::IdleRead`) go back to the allocator, which keeps the pages: a shard
//! counts the bytes it released, and its housekeeping task asks glibc to return free
//! pages (`malloc_trim`) at most every [`TRIM_INTERVAL`], once [`TRIM_MIN_BYTES`] were
//! released. Busy shards release nothing and never trim.

use std::cell::Cell;
use std::time::Duration;

/// Least bytes released before a trim is worth its walk over the heap.
pub(crate) const TRIM_MIN_BYTES: usize = 1024 * 1024;
/// Most often a shard trims.
pub(crate) const TRIM_INTERVAL: Duration = Duration::from_secs(1);

thread_local! {
    static RELEASED: Cell<usize> = const { Cell::new(0) };
}

/// Notes that this thread freed `bytes` of idle buffers.
pub(crate) fn released(bytes: usize) {
    RELEASED.with(|r| r.set(r.get().saturating_add(bytes)));
}

/// Returns free pages to the OS if enough was released since the last call; whether it
/// trimmed.
pub(crate) fn trim_if_released() -> bool {
    let due = RELEASED.with(|r| r.get() >= TRIM_MIN_BYTES);
    if !due {
        return false;
    }
    RELEASED.with(|r| r.set(0));
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
    true
}

/// A shard's housekeeping task: [`trim_if_released`] every [`TRIM_INTERVAL`].
pub(crate) async fn housekeeping() {
    loop {
        monoio::time::sleep(TRIM_INTERVAL).await;
        trim_if_released();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_only_after_enough_was_released() {
        assert!(!trim_if_released());
        released(TRIM_MIN_BYTES / 2);
        assert!(!trim_if_released());
        released(TRIM_MIN_BYTES / 2);
        assert!(trim_if_released());
        assert!(!trim_if_released(), "the count starts again after a trim");
    }
}
