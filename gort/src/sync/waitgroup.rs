//! WaitGroup: wait for a collection of goroutines to finish (Go's
//! `sync.WaitGroup`).
//!
//! The counter is one atomic, so `add`/`done` are a single RMW. A waiter
//! parks with the `after` step "lock the wait list, re-check the counter,
//! append"; the `done` that reaches zero takes the same lock *after* its
//! decrement and drains the list. Either the waiter's re-check sees zero, or
//! its entry is in the list when the drain happens: no lost wake-up
//! (DESIGN.md rule 1).

use std::fmt;
use std::sync::Arc;

use crate::loom::atomic::{AtomicI64, Ordering};

use crate::runtime::g::WaitReason;
use crate::runtime::lock::Lock;
use crate::runtime::park::{self, Waiter};

/// Waits for a collection of goroutines (or threads) to finish.
///
/// `Clone` shares the same group.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// gort::run(|| {
///     let wg = gort::sync::WaitGroup::new();
///     let hits = Arc::new(AtomicUsize::new(0));
///     for _ in 0..10 {
///         let hits = hits.clone();
///         wg.go(move || hits.fetch_add(1, Ordering::Relaxed));
///     }
///     wg.wait();
///     assert_eq!(hits.load(Ordering::Relaxed), 10);
/// });
/// ```
#[derive(Clone, Default)]
pub struct WaitGroup {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    count: AtomicI64,
    waiters: Lock<Vec<Waiter>>,
}

impl WaitGroup {
    /// A group with a counter of zero.
    pub fn new() -> WaitGroup {
        WaitGroup::default()
    }

    /// Adds `delta` (may be negative) to the counter (Go's `Add`). When it
    /// reaches zero, every waiter is released.
    ///
    /// # Panics
    /// If the counter goes negative: `sync: negative WaitGroup counter`.
    pub fn add(&self, delta: isize) {
        let new = self.inner.count.fetch_add(delta as i64, Ordering::AcqRel) + delta as i64;
        if new < 0 {
            panic!("sync: negative WaitGroup counter");
        }
        if new == 0 && delta != 0 {
            let waiters = std::mem::take(&mut *self.inner.waiters.lock());
            for w in waiters {
                w.wake();
            }
        }
    }

    /// Decrements the counter by one (Go's `Done`).
    ///
    /// # Panics
    /// If the counter goes negative.
    pub fn done(&self) {
        self.add(-1);
    }

    /// Blocks until the counter is zero: a goroutine parks, a plain thread
    /// blocks.
    #[track_caller]
    pub fn wait(&self) {
        let inner = &*self.inner;
        while inner.count.load(Ordering::Acquire) > 0 {
            park::park(WaitReason::WaitGroup, |w| {
                let mut waiters = inner.waiters.lock();
                if inner.count.load(Ordering::Acquire) <= 0
                    && !crate::loom::mutant("waitgroup_no_recheck")
                {
                    return false;
                }
                waiters.push(w);
                true
            });
        }
    }

    #[cfg(not(loom))]
    /// Go 1.25's `wg.Go`: adds one, spawns `f` as a goroutine, and marks it
    /// done when `f` returns or panics.
    #[track_caller]
    pub fn go<F, T>(&self, f: F) -> crate::JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        struct DoneOnDrop(WaitGroup);
        impl Drop for DoneOnDrop {
            fn drop(&mut self) {
                self.0.done();
            }
        }
        self.add(1);
        let guard = DoneOnDrop(self.clone());
        crate::go(move || {
            let _guard = guard;
            f()
        })
    }

    /// The current counter (racy: for tests and diagnostics).
    pub fn count(&self) -> i64 {
        self.inner.count.load(Ordering::Acquire)
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.count())
            .finish()
    }
}
