//! The process's allocator: glibc's `malloc`, with a per-thread cache of freed blocks in
//! front of it for the threads that allocate per request (the shards, the usage writer:
//! [`cache_this_thread`]). A request's allocations and frees then cost a thread-local
//! list pop and push instead of glibc's bins, whose own per-thread cache holds 7 blocks
//! per size up to 1 KiB: with tens of requests in flight glibc spills into its slow paths
//! (`_int_free`, `malloc_consolidate`), and every block over 1 KiB or aligned beyond 16
//! bytes (a connection's read buffer, the boxed request: `posix_memalign`) takes them
//! each time.
//!
//! Every block up to [`MAX_CACHED`] gets its size class's size (at most a quarter more than
//! asked) on every thread, so a block freed with a layout of a class can join that class's
//! list without a check; a listed block is a glibc block (or a slot, below), so any thread
//! may free it. A list is bounded ([`LIST_BYTES`], [`THREAD_BYTES`] for all of a thread's;
//! [`BATCH_SCALE`] times longer lists on the usage writer, which frees a batch of rows at
//! once) and emptied when its thread stops. Threads that did not ask, and blocks over
//! [`MAX_CACHED`], go straight to glibc.
//!
//! The 8 KiB class (a connection's read buffer) comes, on the caching threads, from
//! page-aligned slots (`pages`) instead of glibc, so an idle connection's buffer can give
//! back every page it touched ([`release_pages`]).

mod pages;

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::ptr;

/// The largest block the lists keep; bigger ones (request bodies past 64 KiB, the
/// writer's column buffers) go to glibc, which hands them out by `mmap` from 128 KiB.
pub const MAX_CACHED: usize = 64 * 1024;

/// What one list may hold, in bytes (at most [`MAX_BLOCKS`] blocks, at least 4).
pub const LIST_BYTES: usize = 256 * 1024;

/// What all of a thread's lists may hold together, in bytes (a few hundred KiB in
/// practice: a list holds what the thread had in flight at its peak).
pub const THREAD_BYTES: usize = 4 * 1024 * 1024;

/// The most blocks one list holds (the small classes).
pub const MAX_BLOCKS: usize = 1024;

/// How many times the per-list bounds are on a batching thread ([`cache_this_thread_for_batches`]).
pub const BATCH_SCALE: usize = 32;

/// What all of a batching thread's lists may hold together, in bytes (a batch of 4,096
/// usage rows frees ~2 MB of small blocks at once).
pub const BATCH_THREAD_BYTES: usize = 32 * 1024 * 1024;

/// Size classes: 16, 32, 48, 64, then four per power of two (80, 96, 112, 128, 160, ...
/// 57344, 65536), so a block is at most a quarter bigger than asked (a connection's
/// 3,200-byte task takes 3,584).
const CLASSES: usize = 44;

/// Blocks asked for with an alignment of 32 to 128 bytes have lists of their own,
/// allocated 128-aligned: a shard's boxed request future is one (8 KiB, 128-aligned by
/// a cache-padded type it holds), allocated and freed once per request.
const ALIGNED: usize = 128;

/// Two lists per class: 16- and 128-aligned blocks.
const LISTS: usize = 2 * CLASSES;

const fn class_size(i: usize) -> usize {
    if i < 4 {
        return 16 * (i + 1);
    }
    let p = 6 + (i - 4) / 4;
    (1 << p) + ((i - 4) % 4 + 1) * (1 << (p - 2))
}

/// The smallest class that holds `size` bytes.
const fn class_of(size: usize) -> Option<usize> {
    if size <= 64 {
        return Some(size.saturating_sub(1) / 16);
    }
    if size > MAX_CACHED {
        return None;
    }
    // 2^p < size <= 2^(p+1), p >= 6; a quarter of 2^p per class.
    let p = (usize::BITS - 1 - (size - 1).leading_zeros()) as usize;
    let k = (size - 1 - (1 << p)) >> (p - 2);
    Some(4 + (p - 6) * 4 + k)
}

/// Where a layout's blocks are kept: its list, the class's size and the blocks' alignment.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Slot {
    list: usize,
    size: usize,
    align: usize,
}

fn slot(layout: Layout) -> Option<Slot> {
    let c = class_of(layout.size())?;
    let size = class_size(c);
    let (list, align) = if layout.align() <= 16 {
        (c, 16)
    } else {
        (CLASSES + c, ALIGNED)
    };
    (layout.align() <= align).then_some(Slot { list, size, align })
}

fn limit(size: usize) -> usize {
    (LIST_BYTES / size).clamp(4, MAX_BLOCKS)
}

/// One thread's lists: heads of intrusive singly linked lists (a free block's first
/// word points to the next), their lengths, and what the thread asked of glibc.
struct Lists {
    on: Cell<bool>,
    /// Each list's bounds are this many times [`LIST_BYTES`] and [`MAX_BLOCKS`]: 1, or
    /// [`BATCH_SCALE`] on a batching thread.
    scale: Cell<usize>,
    /// The bound of all the thread's lists together.
    thread_bytes: Cell<usize>,
    head: [Cell<*mut u8>; LISTS],
    len: [Cell<u32>; LISTS],
    held: Cell<usize>,
    cached: Cell<u64>,
    system: Cell<u64>,
}

thread_local! {
    static LISTS_OF_THIS_THREAD: Lists = const {
        Lists {
            on: Cell::new(false),
            scale: Cell::new(1),
            thread_bytes: Cell::new(THREAD_BYTES),
            head: [const { Cell::new(ptr::null_mut()) }; LISTS],
            len: [const { Cell::new(0) }; LISTS],
            held: Cell::new(0),
            cached: Cell::new(0),
            system: Cell::new(0),
        }
    };
}

/// glibc, for a layout: `malloc` for the usual alignments, `posix_memalign` beyond.
unsafe fn system_alloc(size: usize, align: usize) -> *mut u8 {
    if align <= 16 {
        // SAFETY: plain malloc; null on failure is passed on.
        unsafe { libc::malloc(size) as *mut u8 }
    } else {
        let mut p: *mut libc::c_void = ptr::null_mut();
        // SAFETY: align is a power of two and a multiple of the pointer size (a Layout's
        // alignment from 32 up).
        match unsafe { libc::posix_memalign(&mut p, align, size) } {
            0 => p as *mut u8,
            _ => ptr::null_mut(),
        }
    }
}

/// The allocator (`#[global_allocator]` in the binary).
pub struct Cached;

impl Cached {
    /// A block for `layout`: from this thread's list when it caches, else from glibc. A
    /// layout the lists cover always gets its class's size and alignment, on every thread,
    /// so any block freed with such a layout can join a list unchecked.
    unsafe fn take(&self, layout: Layout) -> *mut u8 {
        let Some(s) = slot(layout) else {
            count_system();
            // SAFETY: the layout's own size and alignment.
            return unsafe { system_alloc(layout.size(), layout.align()) };
        };
        let from_list = LISTS_OF_THIS_THREAD.try_with(|l| {
            if !l.on.get() {
                return None;
            }
            let head = l.head[s.list].get();
            if head.is_null() {
                l.system.set(l.system.get() + 1);
                return None;
            }
            l.cached.set(l.cached.get() + 1);
            // SAFETY: a listed block is a free block whose first word is the next one.
            l.head[s.list].set(unsafe { (head as *mut *mut u8).read() });
            l.len[s.list].set(l.len[s.list].get() - 1);
            l.held.set(l.held.get() - s.size);
            Some(head)
        });
        match from_list {
            Ok(Some(p)) => p,
            Ok(None) if s.list == PAGED_LIST && caching() => match pages::take() {
                Some(p) => p,
                // SAFETY: as below.
                None => unsafe { system_alloc(s.size, s.align) },
            },
            // SAFETY: the class's size and alignment, which cover the layout.
            _ => unsafe { system_alloc(s.size, s.align) },
        }
    }

    /// Keeps a freed block in this thread's list when it caches and the list has room;
    /// `false` sends it on to [`release`] (the slots or glibc).
    unsafe fn keep(&self, p: *mut u8, layout: Layout) -> bool {
        let Some(s) = slot(layout) else {
            return false;
        };
        LISTS_OF_THIS_THREAD
            .try_with(|l| {
                let n = l.len[s.list].get();
                if !l.on.get()
                    || n as usize >= limit(s.size) * l.scale.get()
                    || l.held.get() + s.size > l.thread_bytes.get()
                {
                    return false;
                }
                // SAFETY: p is a live slot or glibc block (every block of this allocator is).
                debug_assert!(
                    (p as usize).is_multiple_of(s.align)
                        && (pages::contains(p)
                            || unsafe { libc::malloc_usable_size(p as *mut libc::c_void) } >= s.size),
                    "a block freed with a listed layout is class-sized"
                );
                // SAFETY: the block is free and at least 16 bytes, aligned for a pointer.
                unsafe { (p as *mut *mut u8).write(l.head[s.list].get()) };
                l.head[s.list].set(p);
                l.len[s.list].set(n + 1);
                l.held.set(l.held.get() + s.size);
                true
            })
            .unwrap_or(false)
    }
}

/// The list whose blocks are page-aligned slots on the caching threads.
const PAGED_LIST: usize = match class_of(pages::SLOT_BYTES) {
    Some(c) => c,
    None => panic!("the slots' size is a class"),
};

fn caching() -> bool {
    LISTS_OF_THIS_THREAD.try_with(|l| l.on.get()).unwrap_or(false)
}

/// Frees a block no list keeps: a slot back to the slots, anything else to glibc.
///
/// # Safety
/// `p` is a live block of this allocator, freed once.
unsafe fn release(p: *mut u8) {
    // SAFETY: the caller's block.
    unsafe {
        if pages::contains(p) {
            pages::give(p, false);
        } else {
            libc::free(p as *mut libc::c_void);
        }
    }
}

/// Frees an idle connection's read buffer, giving its pages straight back to the OS when
/// it is a slot (then `true`; otherwise glibc frees it and `false`).
pub fn release_pages(buf: Vec<u8>) -> bool {
    let mut buf = std::mem::ManuallyDrop::new(buf);
    let p = buf.as_mut_ptr();
    if buf.capacity() > 0 && pages::contains(p) {
        // SAFETY: the vector's own block, which no one uses any more (it is never dropped).
        unsafe { pages::give(p, true) };
        true
    } else {
        drop(std::mem::ManuallyDrop::into_inner(buf));
        false
    }
}

/// Counts an allocation that goes to glibc on a caching thread.
fn count_system() {
    let _ = LISTS_OF_THIS_THREAD.try_with(|l| {
        if l.on.get() {
            l.system.set(l.system.get() + 1);
        }
    });
}

// SAFETY: every block comes from glibc (malloc or posix_memalign) or is a slot, with at
// least the layout's size and alignment (its class's, for a layout the lists cover), and
// goes back where it came from (free, or the slots' stack), or to the list of its class,
// from which only layouts of that class take it.
unsafe impl GlobalAlloc for Cached {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded.
        unsafe { self.take(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if slot(layout).is_none() && layout.align() <= 16 {
            // SAFETY: calloc's fresh pages need no clearing.
            return unsafe { libc::calloc(1, layout.size()) as *mut u8 };
        }
        // SAFETY: forwarded, then the layout's bytes cleared.
        unsafe {
            let p = self.take(layout);
            if !p.is_null() {
                ptr::write_bytes(p, 0, layout.size());
            }
            p
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        // SAFETY: the caller's block, freed once.
        unsafe {
            if !self.keep(p, layout) {
                release(p);
            }
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract (new_size > 0, a valid layout rounded).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let (old, new) = (slot(layout), slot(new_layout));
        match (old, new) {
            // The block already has the class's size.
            (Some(o), Some(n)) if o.list == n.list => return p,
            (None, None) if layout.align() <= 16 => {
                // SAFETY: a glibc block too big for the lists, grown or shrunk by glibc.
                return unsafe { libc::realloc(p as *mut libc::c_void, new_size) as *mut u8 };
            }
            _ => {}
        }
        // SAFETY: a new block, the old bytes copied, the old block freed.
        unsafe {
            let q = self.alloc(new_layout);
            if !q.is_null() {
                ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                self.dealloc(p, layout);
            }
            q
        }
    }
}

/// What a caching thread asked of its lists and of glibc.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Allocations served from the lists.
    pub cached: u64,
    /// Allocations the lists could not serve (glibc's, or a fresh read-buffer slot).
    pub system: u64,
}

/// Turns the cache on for this thread until the guard drops (then the lists go back to
/// glibc).
pub fn cache_this_thread() -> CacheGuard {
    cache_with(1, THREAD_BYTES)
}

/// [`cache_this_thread`] for a thread that frees a batch of thousands of blocks at once and
/// allocates them again for the next (the usage writer), which the usual bounds would send
/// to glibc: lists [`BATCH_SCALE`] times longer, [`BATCH_THREAD_BYTES`] in all.
pub fn cache_this_thread_for_batches() -> CacheGuard {
    cache_with(BATCH_SCALE, BATCH_THREAD_BYTES)
}

fn cache_with(scale: usize, thread_bytes: usize) -> CacheGuard {
    let _ = LISTS_OF_THIS_THREAD.try_with(|l| {
        l.scale.set(scale);
        l.thread_bytes.set(thread_bytes);
        l.on.set(true);
    });
    CacheGuard(())
}

/// This thread's counts so far.
pub fn counts() -> Counts {
    LISTS_OF_THIS_THREAD
        .try_with(|l| Counts {
            cached: l.cached.get(),
            system: l.system.get(),
        })
        .unwrap_or_default()
}

/// Keeps the calling thread's cache on; its drop frees the cached blocks.
pub struct CacheGuard(());

impl Drop for CacheGuard {
    fn drop(&mut self) {
        let _ = LISTS_OF_THIS_THREAD.try_with(|l| {
            l.on.set(false);
            for (head, len) in l.head.iter().zip(&l.len) {
                let mut p = head.replace(ptr::null_mut());
                while !p.is_null() {
                    // SAFETY: a listed free block: read its link, then free it.
                    unsafe {
                        let next = (p as *mut *mut u8).read();
                        release(p);
                        p = next;
                    }
                }
                len.set(0);
            }
            l.held.set(0);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paged_list_is_the_read_buffers_class() {
        assert_eq!(class_size(PAGED_LIST), pages::SLOT_BYTES);
        assert_eq!(class_of(crate::http::limits::READ_BUFFER_BYTES), Some(PAGED_LIST));
    }

    #[test]
    fn an_idle_buffer_gives_its_pages_back_and_its_slot_is_reused() {
        use crate::http::limits::READ_BUFFER_BYTES;
        on_caching_thread(|| unsafe {
            // Unit tests run on the system allocator: this allocator is called directly.
            let layout = Layout::array::<u8>(READ_BUFFER_BYTES).unwrap();
            let p = Cached.alloc(layout);
            assert!(pages::contains(p), "a caching thread's read buffer is a slot");
            assert_eq!(p as usize % 4096, 0, "page-aligned");
            ptr::copy_nonoverlapping(b"POST /model/x/converse HTTP/1.1\r\n".as_ptr(), p, 33);
            // The vector is never dropped: release_pages returns its slot.
            assert!(release_pages(Vec::from_raw_parts(p, 0, READ_BUFFER_BYTES)));
            let q = Cached.alloc(layout);
            if q == p {
                // (another test may have taken the slot first)
                let bytes = std::slice::from_raw_parts(q, 64);
                assert!(bytes.iter().all(|&b| b == 0), "its pages were discarded");
            }
            Cached.dealloc(q, layout);
            // A vector that is not a slot is simply freed.
            assert!(!release_pages(vec![1u8; 100]));
        });
    }

    #[test]
    fn every_size_gets_the_smallest_class_that_holds_it() {
        for size in 1..=MAX_CACHED {
            let c = class_of(size).unwrap();
            assert!(class_size(c) >= size, "{size} in class {c}");
            assert!(
                c == 0 || class_size(c - 1) < size,
                "{size}: class {c} is not the smallest"
            );
        }
        assert_eq!(class_of(MAX_CACHED + 1), None);
        assert_eq!(class_size(CLASSES - 1), MAX_CACHED);
        for c in 1..CLASSES {
            assert!(class_size(c) > class_size(c - 1));
        }
    }

    #[test]
    fn layouts_map_to_lists_that_satisfy_their_alignment() {
        let l = |s, a| slot(Layout::from_size_align(s, a).unwrap());
        assert_eq!(l(100, 8).unwrap().align, 16);
        assert_eq!(l(100, 64).unwrap().list, CLASSES + class_of(100).unwrap());
        assert_eq!(l(8192, 128).unwrap().align, 128);
        assert_eq!(l(100, 256), None);
        assert_eq!(
            l(8192, 1).unwrap(),
            Slot {
                list: class_of(8192).unwrap(),
                size: 8192,
                align: 16
            }
        );
        assert_eq!(l(8192, 4096), None);
        assert_eq!(l(MAX_CACHED + 1, 1), None);
    }

    /// Runs `f` on a fresh thread that caches (the lists are per thread).
    fn on_caching_thread(f: impl FnOnce() + Send + 'static) {
        std::thread::spawn(move || {
            let _g = cache_this_thread();
            f();
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_freed_block_is_reused_and_keeps_what_the_layout_needs() {
        on_caching_thread(|| {
            let a = Cached;
            for (size, align) in [
                (1, 1),
                (24, 8),
                (700, 16),
                (5000, 8),
                (7000, 64),
                (8192, 128),
                (65536, 1),
                (100, 32),
            ] {
                let layout = Layout::from_size_align(size, align).unwrap();
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    ptr::write_bytes(p, 0xab, size);
                    a.dealloc(p, layout);
                    let before = counts();
                    let q = a.alloc(layout);
                    assert_eq!(q, p, "size {size} align {align}: the freed block comes back");
                    assert_eq!(counts().cached, before.cached + 1);
                    assert_eq!(q as usize % align, 0);
                    assert!(libc::malloc_usable_size(q as *mut libc::c_void) >= size);
                    let z = a.alloc_zeroed(layout);
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                    a.dealloc(z, layout);
                    a.dealloc(q, layout);
                }
            }
        });
    }

    #[test]
    fn steady_state_asks_nothing_of_glibc() {
        on_caching_thread(|| {
            let a = Cached;
            let sizes = [16usize, 40, 200, 1500, 7168, 8192, 30000];
            let round = || unsafe {
                let blocks: Vec<(*mut u8, Layout)> = sizes
                    .iter()
                    .map(|&s| {
                        let l = Layout::from_size_align(s, 8).unwrap();
                        (a.alloc(l), l)
                    })
                    .collect();
                for (p, l) in blocks {
                    a.dealloc(p, l);
                }
            };
            round();
            let warm = counts();
            for _ in 0..100 {
                round();
            }
            let after = counts();
            // The Vec holding the blocks is itself allocated through the global allocator
            // (System in unit tests), so only this allocator's own calls are counted.
            assert_eq!(after.system, warm.system, "no glibc call once warm");
            assert_eq!(after.cached - warm.cached, 100 * sizes.len() as u64);
        });
    }

    #[test]
    fn a_batching_thread_keeps_a_whole_batch_of_small_blocks() {
        // A batch of 5,000 32-byte blocks freed at once, then allocated again: a shard's
        // bounds keep 1,024 of them (the rest go back to glibc and are asked for again); a
        // batching thread's keep them all.
        fn glibc_calls_of_the_second_batch(guard: fn() -> CacheGuard) -> u64 {
            std::thread::spawn(move || {
                let _g = guard();
                let a = Cached;
                let layout = Layout::from_size_align(32, 8).unwrap();
                let batch = || unsafe {
                    let blocks: Vec<*mut u8> = (0..5000).map(|_| a.alloc(layout)).collect();
                    for p in blocks {
                        a.dealloc(p, layout);
                    }
                };
                batch();
                let before = counts().system;
                batch();
                counts().system - before
            })
            .join()
            .unwrap()
        }
        assert_eq!(
            glibc_calls_of_the_second_batch(cache_this_thread),
            5000 - MAX_BLOCKS as u64
        );
        assert_eq!(glibc_calls_of_the_second_batch(cache_this_thread_for_batches), 0);
    }

    #[test]
    fn lists_are_bounded_and_other_threads_free_cached_blocks() {
        let layout = Layout::from_size_align(8192, 8).unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<usize>();
        on_caching_thread(move || {
            let a = Cached;
            let blocks: Vec<*mut u8> = (0..limit(8192) + 10).map(|_| unsafe { a.alloc(layout) }).collect();
            for p in &blocks[..limit(8192) + 5] {
                unsafe { a.dealloc(*p, layout) };
            }
            LISTS_OF_THIS_THREAD.with(|l| {
                assert_eq!(l.len[slot(layout).unwrap().list].get() as usize, limit(8192));
            });
            for p in &blocks[limit(8192) + 5..] {
                tx.send(*p as usize).unwrap();
            }
        });
        // Blocks allocated by a caching thread freed by one that does not cache.
        for p in rx.iter() {
            unsafe { Cached.dealloc(p as *mut u8, layout) };
        }
    }

    #[test]
    fn realloc_keeps_the_bytes_across_classes_and_beyond_the_lists() {
        on_caching_thread(|| {
            let a = Cached;
            unsafe {
                let mut layout = Layout::from_size_align(10, 8).unwrap();
                let mut p = a.alloc(layout);
                for i in 0..10 {
                    *p.add(i) = i as u8;
                }
                for new_size in [12, 100, 5000, 70_000, 300_000, 60_000, 20] {
                    p = a.realloc(p, layout, new_size);
                    assert!(!p.is_null());
                    for i in 0..10 {
                        assert_eq!(*p.add(i), i as u8, "byte {i} after growing to {new_size}");
                    }
                    layout = Layout::from_size_align(new_size, 8).unwrap();
                    assert!(libc::malloc_usable_size(p as *mut libc::c_void) >= new_size);
                }
                a.dealloc(p, layout);
            }
        });
    }
}
