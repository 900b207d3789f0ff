//! A shard-local drain signal. Idle keep-alive connections wait for their next request
//! *and* for this signal; when the shard starts draining it fires once and every idle
//! connection closes at once. No timers, no polling, no extra syscall per request.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// The signal (one per shard; `Rc`-shared by its connections).
#[derive(Default)]
pub(crate) struct DrainSignal {
    fired: Cell<bool>,
    next_id: Cell<u64>,
    /// Keyed by ids this signal hands out: no client picks them.
    waiters: RefCell<crate::util::hash::FastMap<u64, Waker>>,
}

impl DrainSignal {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A fresh waiter id for a connection.
    pub(crate) fn register(&self) -> u64 {
        let id = self.next_id.get() + 1;
        self.next_id.set(id);
        id
    }

    /// Forgets a connection's waker (call when the connection ends).
    pub(crate) fn unregister(&self, id: u64) {
        self.waiters.borrow_mut().remove(&id);
    }

    pub(crate) fn is_fired(&self) -> bool {
        self.fired.get()
    }

    /// Fires the signal and wakes every waiter.
    pub(crate) fn fire(&self) {
        self.fired.set(true);
        let waiters: Vec<Waker> = self.waiters.borrow_mut().drain().map(|(_, w)| w).collect();
        for w in waiters {
            w.wake();
        }
    }

    /// Resolves once the signal has fired.
    pub(crate) fn wait(&self, id: u64) -> Wait<'_> {
        Wait { signal: self, id }
    }
}

/// Future of [`DrainSignal::wait`].
pub(crate) struct Wait<'a> {
    signal: &'a DrainSignal,
    id: u64,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.signal.fired.get() {
            return Poll::Ready(());
        }
        let mut w = self.signal.waiters.borrow_mut();
        match w.get_mut(&self.id) {
            Some(existing) if existing.will_wake(cx.waker()) => {}
            Some(existing) => existing.clone_from(cx.waker()),
            None => {
                w.insert(self.id, cx.waker().clone());
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_once_and_bounds_waiters() {
        let s = DrainSignal::new();
        let a = s.register();
        let b = s.register();
        assert_ne!(a, b);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        for _ in 0..100 {
            let mut f = s.wait(a);
            assert!(Pin::new(&mut f).poll(&mut cx).is_pending());
        }
        assert_eq!(
            s.waiters.borrow().len(),
            1,
            "one waker per connection, however often it waits"
        );
        s.unregister(a);
        assert!(s.waiters.borrow().is_empty());
        s.fire();
        let mut f = s.wait(b);
        assert!(Pin::new(&mut f).poll(&mut cx).is_ready());
    }
}
