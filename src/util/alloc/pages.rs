//! Page-aligned slots for the allocator's [`SLOT_BYTES`] class (a connection's read
//! buffer), so an idle connection can give its buffer's pages back whole
//! ([`super::release_pages`]). A glibc block cannot: its header and free-list links sit in
//! its first page, which stays resident after `free` and `malloc_trim`.
//!
//! One reservation of address space for [`RESERVED_SLOTS`] slots (`PROT_NONE`: neither
//! memory nor `VmData`), made on first use and made usable [`CHUNK_SLOTS`] at a time as
//! slots are first handed out (a page is resident only once written); freed slots are
//! kept on a lock-free stack whose links live in a side table (so a freed, discarded slot
//! is never touched). Any thread may free a slot. When the reservation cannot be made or
//! is used up, the class falls back to glibc blocks.

use std::ptr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// A slot's size: the read buffer's (`http::limits::READ_BUFFER_BYTES`).
pub const SLOT_BYTES: usize = 8 * 1024;

/// Slots reserved: 4 GiB of address space, room for 524,288 buffers at once (past that,
/// glibc's blocks serve the class).
pub const RESERVED_SLOTS: usize = 512 * 1024;

/// Slots made usable at once (16 MiB): the most `VmData` grows by before they are used.
pub const CHUNK_SLOTS: usize = 2048;

/// The side table's entry for "no slot" (the stack's end).
const NIL: u32 = u32::MAX;

/// The reservation's start (0: not made yet, 1: it failed; the side table follows the
/// slots), the next never-used slot, and the free stack's head (a generation in the high
/// half, against ABA, and a slot in the low half).
static BASE: AtomicUsize = AtomicUsize::new(0);
/// Slots made usable so far (a multiple of [`CHUNK_SLOTS`]), grown under [`GROW`].
static USABLE: AtomicU32 = AtomicU32::new(0);
static GROW: Mutex<()> = Mutex::new(());
static BUMP: AtomicU32 = AtomicU32::new(0);
static FREE: AtomicU64 = AtomicU64::new(NIL as u64);

const FAILED: usize = 1;

const SLOTS_BYTES: usize = RESERVED_SLOTS * SLOT_BYTES;
const RESERVED_BYTES: usize = SLOTS_BYTES + RESERVED_SLOTS * std::mem::size_of::<AtomicU32>();

fn reserve() -> Option<usize> {
    // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            RESERVED_BYTES,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    (p != libc::MAP_FAILED).then_some(p as usize)
}

/// The reservation's start, made by the first caller (a loser of the race unmaps its own).
fn region() -> Option<usize> {
    match BASE.load(Ordering::Acquire) {
        0 => {}
        FAILED => return None,
        base => return Some(base),
    }
    let Some(base) = reserve() else {
        let _ = BASE.compare_exchange(0, FAILED, Ordering::AcqRel, Ordering::Acquire);
        return region();
    };
    if BASE
        .compare_exchange(0, base, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        // SAFETY: our own mapping, never handed out.
        unsafe { libc::munmap(base as *mut libc::c_void, RESERVED_BYTES) };
    }
    region()
}

fn link(base: usize, i: u32) -> &'static AtomicU32 {
    // SAFETY: slot i was handed out, so its side-table entry (after the slots) was made
    // usable first; the mapping lasts as long as the process and starts zeroed: a valid
    // AtomicU32.
    unsafe { &*((base + SLOTS_BYTES) as *const AtomicU32).add(i as usize) }
}

/// Whether `p` is a slot.
pub fn contains(p: *const u8) -> bool {
    let base = BASE.load(Ordering::Acquire);
    base > FAILED && (p as usize) >= base && (p as usize) < base + SLOTS_BYTES
}

/// A free slot (a discarded one reads as zeros), or `None` when there is no reservation
/// or it is used up.
pub fn take() -> Option<*mut u8> {
    let base = region()?;
    let mut head = FREE.load(Ordering::Acquire);
    loop {
        let i = head as u32;
        if i == NIL {
            break;
        }
        let next = link(base, i).load(Ordering::Relaxed);
        let new = ((head >> 32).wrapping_add(1) << 32) | u64::from(next);
        match FREE.compare_exchange_weak(head, new, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Some((base + i as usize * SLOT_BYTES) as *mut u8),
            Err(h) => head = h,
        }
    }
    let i = BUMP.fetch_add(1, Ordering::Relaxed);
    if i as usize >= RESERVED_SLOTS {
        BUMP.store(RESERVED_SLOTS as u32, Ordering::Relaxed);
        return None;
    }
    if i >= USABLE.load(Ordering::Acquire) && !grow(base, i) {
        return None;
    }
    Some((base + i as usize * SLOT_BYTES) as *mut u8)
}

/// Makes the chunks up to slot `i` usable (slots and side-table entries); `false` if
/// the kernel refuses (that slot is then never handed out).
fn grow(base: usize, i: u32) -> bool {
    let _held = GROW.lock().unwrap_or_else(|e| e.into_inner());
    while USABLE.load(Ordering::Acquire) <= i {
        let from = USABLE.load(Ordering::Acquire) as usize;
        let spans = [
            (base + from * SLOT_BYTES, CHUNK_SLOTS * SLOT_BYTES),
            (base + SLOTS_BYTES + from * 4, CHUNK_SLOTS * 4),
        ];
        for (at, len) in spans {
            // SAFETY: a part of our own reservation, not handed out yet (the side
            // table's part is page-aligned: CHUNK_SLOTS * 4 is 8 KiB).
            if unsafe { libc::mprotect(at as *mut libc::c_void, len, libc::PROT_READ | libc::PROT_WRITE) } != 0 {
                return false;
            }
        }
        USABLE.store((from + CHUNK_SLOTS) as u32, Ordering::Release);
    }
    true
}

/// Returns slot `p` to the free stack; `discard` gives its pages back to the OS first.
///
/// # Safety
/// `p` is a slot ([`contains`]) no one uses any more, returned once.
pub unsafe fn give(p: *mut u8, discard: bool) {
    let base = BASE.load(Ordering::Acquire);
    let i = ((p as usize - base) / SLOT_BYTES) as u32;
    if discard {
        // SAFETY: the slot's own pages, page-aligned; no one reads them until handed out
        // again (then they read as zeros).
        unsafe { libc::madvise(p as *mut libc::c_void, SLOT_BYTES, libc::MADV_DONTNEED) };
    }
    let mut head = FREE.load(Ordering::Relaxed);
    loop {
        link(base, i).store(head as u32, Ordering::Relaxed);
        let new = ((head >> 32).wrapping_add(1) << 32) | u64::from(i);
        match FREE.compare_exchange_weak(head, new, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return,
            Err(h) => head = h,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_page_aligned_reused_and_safe_to_share_between_threads() {
        let a = take().expect("a reservation on Linux");
        assert!(contains(a));
        assert_eq!(a as usize % 4096, 0);
        unsafe {
            ptr::write_bytes(a, 0x5a, SLOT_BYTES);
            give(a, true);
        }
        // Other tests may take slots meanwhile: take until ours comes back (LIFO).
        let b = take().unwrap();
        if b == a {
            // Discarded pages read as zeros.
            assert!(unsafe { std::slice::from_raw_parts(b, SLOT_BYTES) }
                .iter()
                .all(|&x| x == 0));
        }
        unsafe { give(b, false) };
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                std::thread::spawn(move || {
                    // Each slot held carries a value no other holder writes.
                    let mut mine: Vec<(usize, u64)> = Vec::new();
                    for round in 0..2000u64 {
                        let p = take().unwrap();
                        let v = (t << 32) | round;
                        unsafe { (p as *mut u64).write(v) };
                        mine.push((p as usize, v));
                        if round % 3 == 0 {
                            let (q, v) = mine.swap_remove(0);
                            assert_eq!(unsafe { (q as *const u64).read() }, v, "no slot handed out twice");
                            unsafe { give(q as *mut u8, round % 2 == 0) };
                        }
                    }
                    for (q, v) in mine {
                        assert_eq!(unsafe { (q as *const u64).read() }, v, "no slot handed out twice");
                        unsafe { give(q as *mut u8, false) };
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(!contains(ptr::null()));
    }
}
