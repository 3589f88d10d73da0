//! Once: run a closure exactly once (Go's `sync.Once`, std's `Once` API).
//!
//! One state word, `INCOMPLETE` -> `RUNNING` -> `COMPLETE`, and a queue of
//! callers that found it `RUNNING`. Once complete, `call_once` is a single
//! acquire load.
//!
//! The caller that moves it to `RUNNING` runs the closure; the others
//! queue and park. When the closure returns, the runner stores `COMPLETE`
//! and then wakes the whole queue. If it panics, unlike Go (which counts a
//! panicking `Do` as done) and std (which poisons), the Once goes back to
//! `INCOMPLETE` and the runner wakes *one* waiter, which tries again and
//! runs its own closure; the panic goes on in the runner.
//!
//! No lost wake-up (DESIGN.md rule 1): a waiter re-checks the state under
//! the queue lock and keeps that lock until its park's `after` step; the
//! runner changes the state before it takes the queue lock to wake. So
//! either the waiter sees the new state and does not park, or its entry is
//! queued when the runner looks.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

use super::wait::{self, Claimed, Entry, Slot};
use crate::runtime::g::WaitReason;
use crate::runtime::lock::Lock;
use crate::runtime::park::{self, Waiter};

const INCOMPLETE: u8 = 0;
const RUNNING: u8 = 1;
const COMPLETE: u8 = 2;

/// Slot values: the closure ran (return), or it panicked (try again).
const DONE: usize = 1;
const RETRY: usize = 2;

/// Runs a closure exactly once, however many goroutines and threads call
/// [`call_once`](Self::call_once) concurrently; the others wait for it.
///
/// If the closure panics, the `Once` stays incomplete (it is not poisoned):
/// the panic propagates to the caller that ran it, and one of the waiting
/// callers (or the next caller) runs its own closure instead.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use gort::sync::Once;
///
/// static INIT: Once = Once::new();
/// static RUNS: AtomicUsize = AtomicUsize::new(0);
///
/// gort::run(|| {
///     let hs: Vec<_> = (0..10)
///         .map(|_| gort::go(|| INIT.call_once(|| { RUNS.fetch_add(1, Ordering::SeqCst); })))
///         .collect();
///     for h in hs {
///         h.join().unwrap();
///     }
/// });
/// assert_eq!(RUNS.load(Ordering::SeqCst), 1);
/// assert!(INIT.is_completed());
/// ```
pub struct Once {
    state: AtomicU8,
    queue: Lock<VecDeque<Entry>>,
}

impl Once {
    /// A `Once` that has not run yet.
    ///
    /// ```
    /// static O: gort::sync::Once = gort::sync::Once::new();
    /// assert!(!O.is_completed());
    /// ```
    pub const fn new() -> Once {
        Once {
            state: AtomicU8::new(INCOMPLETE),
            queue: Lock::new(VecDeque::new()),
        }
    }

    /// Runs `f` if no call has completed yet; otherwise does nothing.
    /// Returns once a call has completed: a caller that finds another
    /// running its closure waits for it (a goroutine parks, a plain thread
    /// blocks). Everything the completed closure did happens before any
    /// `call_once` returns.
    ///
    /// ```
    /// let once = gort::sync::Once::new();
    /// let mut n = 0;
    /// once.call_once(|| n += 1);
    /// once.call_once(|| n += 1);
    /// assert_eq!(n, 1);
    /// ```
    #[track_caller]
    pub fn call_once<F: FnOnce()>(&self, f: F) {
        if self.state.load(Ordering::Acquire) == COMPLETE {
            return;
        }
        self.call_once_slow(f);
    }

    /// Whether a call has completed (its closure returned).
    ///
    /// ```
    /// let once = gort::sync::Once::new();
    /// assert!(!once.is_completed());
    /// once.call_once(|| {});
    /// assert!(once.is_completed());
    /// ```
    pub fn is_completed(&self) -> bool {
        self.state.load(Ordering::Acquire) == COMPLETE
    }

    #[cold]
    #[track_caller]
    fn call_once_slow<F: FnOnce()>(&self, f: F) {
        loop {
            match self.state.compare_exchange(
                INCOMPLETE,
                RUNNING,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    let runner = Runner { once: self };
                    f();
                    runner.complete();
                    return;
                }
                Err(COMPLETE) => return,
                Err(_) => {
                    if self.wait() == DONE {
                        return;
                    }
                }
            }
        }
    }

    /// Waits for the running call; returns what it handed over (or 0 if
    /// the state changed before we parked).
    #[track_caller]
    fn wait(&self) -> usize {
        let slot = Slot::new();
        let parking = park::prepare();
        let mut q = self.queue.lock();
        match self.state.load(Ordering::Acquire) {
            RUNNING => {}
            COMPLETE => return DONE,
            _ => return RETRY,
        }
        // SAFETY: `slot` lives in this frame until after the park below
        // ends, and the queue lock is released only by its `after` step.
        q.push_back(unsafe { Entry::new(parking.waiter().clone(), &slot, 0) });
        let reg = Registration {
            once: self,
            slot: &slot,
            me: parking.waiter().clone(),
        };
        parking.park(WaitReason::Once, None, move || drop(q));
        let got = reg.slot.get();
        std::mem::forget(reg);
        // Only the runner wakes us, after it changed the state.
        debug_assert!(got == DONE || got == RETRY);
        if got == DONE {
            // Pairs with the runner's release store of COMPLETE.
            debug_assert_eq!(self.state.load(Ordering::Acquire), COMPLETE);
        }
        got
    }

    /// After a panicking run: lets one live waiter try again.
    fn retry_one(&self) {
        let mut q = self.queue.lock();
        while let Some(e) = q.pop_front() {
            if let Some(c) = e.claim(RETRY) {
                drop(q);
                c.wake();
                return;
            }
        }
    }
}

/// The running call: completes the Once, or on a panic, reopens it.
struct Runner<'a> {
    once: &'a Once,
}

impl Runner<'_> {
    fn complete(self) {
        let once = self.once;
        std::mem::forget(self);
        once.state.store(COMPLETE, Ordering::Release);
        let waiters: Vec<Claimed> = {
            let mut q = once.queue.lock();
            q.drain(..).filter_map(|e| e.claim(DONE)).collect()
        };
        for c in waiters {
            c.wake();
        }
    }
}

impl Drop for Runner<'_> {
    fn drop(&mut self) {
        // `f` panicked.
        self.once.state.store(INCOMPLETE, Ordering::Release);
        self.once.retry_one();
    }
}

/// A queued caller unwinding (its goroutine was cancelled): removes its
/// entry, or passes on a retry it was handed.
struct Registration<'a> {
    once: &'a Once,
    slot: &'a Slot,
    me: Waiter,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        match self.slot.get() {
            RETRY => self.once.retry_one(),
            DONE => {}
            _ => {
                wait::remove(&mut self.once.queue.lock(), &self.me);
            }
        }
    }
}

impl Default for Once {
    fn default() -> Once {
        Once::new()
    }
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once")
            .field("completed", &self.is_completed())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    #[test]
    fn a_panicking_closure_leaves_it_incomplete() {
        let once = Once::new();
        let r = std::panic::catch_unwind(|| once.call_once(|| panic!("first")));
        assert!(r.is_err());
        assert!(!once.is_completed());
        let mut ran = false;
        once.call_once(|| ran = true);
        assert!(ran && once.is_completed());
    }

    #[test]
    fn a_waiter_runs_its_own_closure_after_a_panic() {
        let once = Arc::new(Once::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let o = once.clone();
        let first = std::thread::spawn(move || {
            let _ = std::panic::catch_unwind(|| {
                o.call_once(|| {
                    rx.recv().unwrap();
                    panic!("boom")
                })
            });
        });
        while once.state.load(Ordering::SeqCst) != RUNNING {
            std::thread::yield_now();
        }
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let (o, runs) = (once.clone(), runs.clone());
                std::thread::spawn(move || {
                    o.call_once(|| {
                        runs.fetch_add(1, Ordering::SeqCst);
                    })
                })
            })
            .collect();
        while once.queue.lock().len() < 3 {
            std::thread::yield_now();
        }
        tx.send(()).unwrap();
        first.join().unwrap();
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(once.is_completed());
    }
}
