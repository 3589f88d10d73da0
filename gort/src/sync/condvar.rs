//! Condvar: Go's `sync.Cond` with std's `Condvar` API, for gort's
//! [`Mutex`].
//!
//! A FIFO queue of parked waiters behind a small lock, plus a count of
//! queued entries so a notify with nobody waiting takes no lock.
//!
//! No lost wake-up (DESIGN.md rule 1): `wait` enqueues its entry *before*
//! it releases the mutex, and keeps the queue lock until its park's
//! `after` step. A notifier that changed the condition did so holding the
//! mutex, so after the waiter released it: its notify comes after the
//! enqueue, finds the entry (it must take the queue lock, which it gets
//! only once the waiter is parked) and wakes it. Releasing the mutex while
//! holding the queue lock is deadlock-free: unlocking never waits for
//! anything but the mutex's own queue lock, and no path takes the two
//! queue locks the other way round.
//!
//! A notifier claims the entry's waiter and writes `NOTIFIED` into the
//! waiter's slot before waking it. A timer claims the waiter at its
//! deadline instead, so exactly one of them wins; the waiter tells which
//! from its slot and, on a timeout, removes its own (now stale) entry. A
//! `notify_one` that finds a stale entry drops it and wakes the next, so
//! it always wakes a waiter that was still waiting, if there is one.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::mutex::{Mutex, MutexGuard};
use super::wait::{self, Claimed, Entry, Slot};
use crate::runtime::g::WaitReason;
use crate::runtime::lock::Lock;
use crate::runtime::park::{self, Waiter};

const NOTIFIED: usize = 1;

/// A condition variable: waits, with a [`Mutex`] released, until notified
/// (Go's `sync.Cond`, std's method names). A goroutine parks, a plain
/// thread blocks.
///
/// ```
/// use std::sync::Arc;
/// use gort::sync::{Condvar, Mutex};
///
/// gort::run(|| {
///     let pair = Arc::new((Mutex::new(false), Condvar::new()));
///     let p2 = pair.clone();
///     gort::go(move || {
///         *p2.0.lock() = true;
///         p2.1.notify_one();
///     });
///     let (ready, cv) = &*pair;
///     let mut g = ready.lock();
///     while !*g {
///         g = cv.wait(g);
///     }
/// });
/// ```
pub struct Condvar {
    /// Entries in `queue` (a hint read without the lock).
    waiting: AtomicUsize,
    queue: Lock<VecDeque<Entry>>,
}

impl Condvar {
    /// A condition variable nobody waits on.
    ///
    /// ```
    /// static CV: gort::sync::Condvar = gort::sync::Condvar::new();
    /// CV.notify_all(); // nobody waits: nothing happens
    /// ```
    pub const fn new() -> Condvar {
        Condvar {
            waiting: AtomicUsize::new(0),
            queue: Lock::new(VecDeque::new()),
        }
    }

    /// Releases the guard's mutex, waits until notified, and locks the
    /// mutex again. Like any condition variable it is used in a loop that
    /// re-checks the condition (or through [`wait_while`](Self::wait_while)).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use gort::sync::{Condvar, Mutex};
    ///
    /// let pair = Arc::new((Mutex::new(0), Condvar::new()));
    /// let p2 = pair.clone();
    /// let t = std::thread::spawn(move || {
    ///     *p2.0.lock() = 1;
    ///     p2.1.notify_all();
    /// });
    /// let mut g = pair.0.lock();
    /// while *g == 0 {
    ///     g = pair.1.wait(g);
    /// }
    /// drop(g);
    /// t.join().unwrap();
    /// ```
    #[track_caller]
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.wait_until(guard, None).0
    }

    /// As [`wait`](Self::wait), but gives up after `dur`. Returns the guard
    /// (locked again) and whether the wait timed out (`false`: notified).
    ///
    /// ```
    /// use std::time::Duration;
    /// use gort::sync::{Condvar, Mutex};
    ///
    /// let m = Mutex::new(());
    /// let cv = Condvar::new();
    /// let (_g, timed_out) = cv.wait_timeout(m.lock(), Duration::from_millis(5));
    /// assert!(timed_out);
    /// ```
    #[track_caller]
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        dur: Duration,
    ) -> (MutexGuard<'a, T>, bool) {
        // A deadline too far to represent is no deadline.
        self.wait_until(guard, Instant::now().checked_add(dur))
    }

    /// Waits while `condition` returns true for the data (std's
    /// `wait_while`): returns with the mutex locked and the condition false.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use gort::sync::{Condvar, Mutex};
    ///
    /// gort::run(|| {
    ///     let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
    ///     for _ in 0..3 {
    ///         let p = pair.clone();
    ///         gort::go(move || {
    ///             *p.0.lock() += 1;
    ///             p.1.notify_all();
    ///         });
    ///     }
    ///     let g = pair.1.wait_while(pair.0.lock(), |n| *n < 3);
    ///     assert_eq!(*g, 3);
    /// });
    /// ```
    #[track_caller]
    pub fn wait_while<'a, T: ?Sized, F: FnMut(&mut T) -> bool>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: F,
    ) -> MutexGuard<'a, T> {
        while condition(&mut *guard) {
            guard = self.wait(guard);
        }
        guard
    }

    /// Wakes one waiter that is still waiting, if any (FIFO: the one that
    /// has waited longest).
    ///
    /// ```
    /// let cv = gort::sync::Condvar::new();
    /// cv.notify_one(); // nobody waits: the notification is not kept
    /// ```
    pub fn notify_one(&self) {
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut q = self.queue.lock();
        while let Some(e) = q.pop_front() {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            if let Some(c) = e.claim(NOTIFIED) {
                drop(q);
                c.wake();
                return;
            }
        }
    }

    /// Wakes every waiter.
    ///
    /// ```
    /// let cv = gort::sync::Condvar::new();
    /// cv.notify_all();
    /// ```
    pub fn notify_all(&self) {
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        let mut q = self.queue.lock();
        let n = q.len();
        let woken: Vec<Claimed> = q.drain(..).filter_map(|e| e.claim(NOTIFIED)).collect();
        self.waiting.fetch_sub(n, Ordering::Relaxed);
        drop(q);
        for c in woken {
            c.wake();
        }
    }

    #[track_caller]
    fn wait_until<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
    ) -> (MutexGuard<'a, T>, bool) {
        let mutex: &'a Mutex<T> = guard.mutex;
        let slot = Slot::new();
        let parking = park::prepare();
        let mut q = self.queue.lock();
        // SAFETY: `slot` lives in this frame until after the park below
        // ends, and the queue lock is released only by its `after` step.
        q.push_back(unsafe { Entry::new(parking.waiter().clone(), &slot, 0) });
        self.waiting.fetch_add(1, Ordering::SeqCst);
        // Enqueued: now release the mutex (see the module docs).
        std::mem::forget(guard);
        // SAFETY: the guard we just forgot proved we hold the lock.
        unsafe { mutex.raw().unlock() };
        let reg = Registration {
            cv: self,
            slot: &slot,
            me: parking.waiter().clone(),
        };
        parking.park(WaitReason::CondWait, deadline, move || drop(q));
        let notified = reg.finish() == NOTIFIED;
        (mutex.lock(), !notified)
    }
}

/// A queued waiter: on a timeout removes its stale entry; on unwinding (a
/// cancelled goroutine) passes on a notification it was handed.
struct Registration<'a> {
    cv: &'a Condvar,
    slot: &'a Slot,
    me: Waiter,
}

impl Registration<'_> {
    /// What the waiter was handed; removes its entry if it was not.
    fn finish(self) -> usize {
        let got = self.slot.get();
        if got != NOTIFIED {
            self.remove();
        }
        std::mem::forget(self);
        got
    }

    fn remove(&self) {
        let mut q = self.cv.queue.lock();
        if wait::remove(&mut q, &self.me) {
            self.cv.waiting.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        if self.slot.get() == NOTIFIED {
            // We were notified but go away: the notification is another
            // waiter's now.
            self.cv.notify_one();
        } else {
            self.remove();
        }
    }
}

impl Default for Condvar {
    fn default() -> Condvar {
        Condvar::new()
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar")
            .field("waiting", &self.waiting.load(Ordering::Relaxed))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn rt(procs: usize) -> crate::runtime::Runtime {
        crate::runtime::Builder::new().procs(procs).build().unwrap()
    }

    #[test]
    fn timeout_with_nobody_notifying_leaves_no_entry() {
        let m = Mutex::new(0);
        let cv = Condvar::new();
        let (g, timed_out) = cv.wait_timeout(m.lock(), Duration::from_millis(2));
        assert!(timed_out);
        drop(g);
        assert_eq!(cv.waiting.load(Ordering::Relaxed), 0);
        assert!(cv.queue.lock().is_empty());
        assert!(
            m.try_lock().is_some(),
            "the mutex is unlocked after the guard drops"
        );
    }

    #[test]
    fn goroutine_timeout_and_notify_are_told_apart() {
        let (a, b) = rt(2).run(|| {
            let pair = Arc::new((Mutex::new(false), Condvar::new()));
            let (m, cv) = &*pair;
            let (g, a) = cv.wait_timeout(m.lock(), Duration::from_millis(2));
            drop(g);
            let p2 = pair.clone();
            let h = crate::go(move || {
                let (m, cv) = &*p2;
                let mut g = m.lock();
                let mut timed_out = false;
                while !*g {
                    (g, timed_out) = cv.wait_timeout(g, Duration::from_secs(600));
                }
                timed_out
            });
            while cv.waiting.load(Ordering::SeqCst) == 0 {
                crate::yield_now();
            }
            *m.lock() = true;
            cv.notify_one();
            (a, h.join().unwrap())
        });
        assert!(a, "nobody notified: timed out");
        assert!(!b, "notified before the deadline");
    }

    #[test]
    fn notify_one_skips_a_timed_out_waiter() {
        let m = Mutex::new(());
        let cv = Condvar::new();
        // A stale entry at the head, as a timed-out waiter leaves it for an
        // instant: the waiter of a thread park that already timed out.
        let mut dead = None;
        crate::runtime::park::park_thread(
            |w| {
                dead = Some(w);
                true
            },
            Some(Instant::now()),
        );
        let slot = Slot::new();
        // SAFETY: `slot` outlives the entry; the waiter is stale anyway.
        let stale = unsafe { Entry::new(dead.unwrap(), &slot, 0) };
        std::thread::scope(|s| {
            s.spawn(|| {
                let g = m.lock();
                cv.queue.lock().push_front(stale);
                cv.waiting.fetch_add(1, Ordering::SeqCst);
                let (_g, timed_out) = cv.wait_timeout(g, Duration::from_secs(600));
                assert!(!timed_out);
            });
            while cv.waiting.load(Ordering::SeqCst) < 2 {
                std::thread::yield_now();
            }
            let _g = m.lock();
            cv.notify_one();
        });
        assert_eq!(cv.waiting.load(Ordering::Relaxed), 0);
    }
}
