//! Publishing a value to the shards without a lock on their path: a writer replaces the
//! whole value ([`Published::publish`]) and bumps a generation; each shard keeps its own
//! copy ([`Local`]) and looks at the generation (one atomic load) before using it, taking
//! the lock only when it moved. Keys, prices and the TLS configuration (on SIGHUP) and
//! the budgets' block set (from the writer) travel this way. A poisoned lock is recovered
//! ([`lock`]): every value here is replaced whole, so a panic elsewhere cannot leave one
//! half-written.

use std::cell::{Cell, Ref, RefCell};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Locks `m`, recovering the guard if a thread panicked while holding it (the one way
/// this crate handles a poisoned lock).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A value replaced whole, with a generation that moves on every replacement.
#[derive(Debug, Default)]
pub(crate) struct Published<T> {
    generation: AtomicU64,
    value: Mutex<Arc<T>>,
}

impl<T> Published<T> {
    pub(crate) fn new(value: Arc<T>) -> Self {
        Published {
            generation: AtomicU64::new(0),
            value: Mutex::new(value),
        }
    }

    /// Replaces the value; readers see it from their next look.
    pub(crate) fn publish(&self, value: Arc<T>) {
        *lock(&self.value) = value;
        self.generation.fetch_add(1, Ordering::Release);
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current value (takes the lock: not for a request's path, see [`Local`]).
    pub(crate) fn current(&self) -> Arc<T> {
        lock(&self.value).clone()
    }
}

/// One thread's copy of a published value, derived from it once per generation:
/// `derive` may build a thread-local form (its own session cache, ids allocated anew).
pub(crate) struct Local<T, U = T> {
    seen: Cell<u64>,
    value: RefCell<Arc<U>>,
    derive: fn(&Arc<T>) -> Arc<U>,
}

impl<T, U> Local<T, U> {
    /// A copy of `src`'s current value.
    pub(crate) fn new(src: &Published<T>, derive: fn(&Arc<T>) -> Arc<U>) -> Self {
        let seen = src.generation();
        Local {
            seen: Cell::new(seen),
            value: RefCell::new(derive(&src.current())),
            derive,
        }
    }

    /// The current value, borrowed: a generation check, and a new copy only when `src`
    /// published since the last look.
    pub(crate) fn get(&self, src: &Published<T>) -> Ref<'_, U> {
        let gen = src.generation();
        if self.seen.get() != gen {
            *self.value.borrow_mut() = (self.derive)(&src.current());
            self.seen.set(gen);
        }
        Ref::map(self.value.borrow(), |v| &**v)
    }

    /// The current value, shared (for holding across an await, where a borrow must not be).
    pub(crate) fn get_arc(&self, src: &Published<T>) -> Arc<U> {
        let _ = self.get(src);
        self.value.borrow().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locals_follow_publications() {
        let p = Published::new(Arc::new(1u32));
        let l: Local<u32, String> = Local::new(&p, |v| Arc::new(format!("v{v}")));
        assert_eq!(&*l.get(&p), "v1");
        p.publish(Arc::new(2));
        assert_eq!(&*l.get(&p), "v2");
        assert_eq!(*p.current(), 2);
        let poisoned = Arc::new(Mutex::new(5));
        let q = poisoned.clone();
        let _ = std::thread::spawn(move || {
            let _g = q.lock();
            panic!("poison it");
        })
        .join();
        assert!(poisoned.lock().is_err());
        assert_eq!(*lock(&poisoned), 5);
    }
}
