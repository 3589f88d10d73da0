//! Semaphore: a counting semaphore with FIFO hand-off (Go's
//! `x/sync/semaphore.Weighted`, Tokio's method names).
//!
//! One state word: the number of available permits shifted left by one,
//! and `QUEUED` (bit 0: someone is parked in the FIFO queue; it changes
//! only under the queue lock, together with the queue).
//!
//! Strictly FIFO: while anyone is queued, `try_acquire` fails and a new
//! `acquire` queues behind, even if enough permits are free for it (no
//! barging past a parked acquirer, so a large request is not starved by
//! small ones). A release adds its permits and, if `QUEUED`, takes the
//! queue lock and hands permits to the queue head(s) directly: it
//! subtracts the head's request from the count on the head's behalf,
//! claims its waiter and writes `GRANTED` into its slot.
//!
//! No lost wake-up (DESIGN.md rule 1): an acquirer re-checks the count
//! and sets `QUEUED` with one CAS under the queue lock, and keeps the lock
//! until its park's `after` step. A release adds with one RMW on the same
//! word: either the acquirer's CAS sees the permits (and takes them
//! instead of parking), or the release sees `QUEUED` and takes the queue
//! lock, which it gets only once the acquirer is parked.

use std::collections::VecDeque;
use std::fmt;

use super::wait::{self, Claimed, Entry, Slot};
use crate::loom::atomic::{AtomicUsize, Ordering};
use crate::runtime::g::WaitReason;
use crate::runtime::lock::{Lock, LockGuard};
use crate::runtime::park::{self, Waiter};

const QUEUED: usize = 1;
const ONE: usize = 2;

/// Slot value: the permits asked for were handed over.
const GRANTED: usize = 1;

/// A counting semaphore: [`acquire`](Self::acquire) takes a permit (a
/// goroutine parks while none is free, a plain thread blocks); dropping
/// the returned [`SemaphorePermit`] gives it back.
///
/// FIFO: permits go to waiters in arrival order, and nobody barges past a
/// queued waiter (not even [`try_acquire`](Self::try_acquire)).
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use gort::sync::Semaphore;
///
/// gort::run(|| {
///     let sem = Arc::new(Semaphore::new(2)); // at most 2 at a time
///     let (now, max) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
///     let hs: Vec<_> = (0..8)
///         .map(|_| {
///             let (sem, now, max) = (sem.clone(), now.clone(), max.clone());
///             gort::go(move || {
///                 let _permit = sem.acquire();
///                 let n = now.fetch_add(1, Ordering::SeqCst) + 1;
///                 max.fetch_max(n, Ordering::SeqCst);
///                 gort::yield_now();
///                 now.fetch_sub(1, Ordering::SeqCst);
///             })
///         })
///         .collect();
///     for h in hs {
///         h.join().unwrap();
///     }
///     assert!(max.load(Ordering::SeqCst) <= 2);
///     assert_eq!(sem.available_permits(), 2);
/// });
/// ```
pub struct Semaphore {
    state: AtomicUsize,
    queue: Lock<VecDeque<Entry>>,
}

/// Permits taken from a [`Semaphore`]; they go back to it on drop.
///
/// ```
/// let sem = gort::sync::Semaphore::new(3);
/// let p = sem.acquire_many(2);
/// assert_eq!(p.num_permits(), 2);
/// assert_eq!(sem.available_permits(), 1);
/// drop(p);
/// assert_eq!(sem.available_permits(), 3);
/// ```
#[must_use = "dropping the permit releases it at once"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
    permits: usize,
}

impl Semaphore {
    /// The most permits a semaphore can hold.
    pub const MAX_PERMITS: usize = usize::MAX >> 1;

    crate::maybe_const_fn! {
        /// A semaphore with `permits` permits available.
        ///
        /// # Panics
        /// If `permits` exceeds [`MAX_PERMITS`](Self::MAX_PERMITS).
        ///
        /// ```
        /// static S: gort::sync::Semaphore = gort::sync::Semaphore::new(1);
        /// assert_eq!(S.available_permits(), 1);
        /// ```
        pub fn new(permits: usize) -> Semaphore {
            assert!(permits <= Self::MAX_PERMITS, "semaphore: too many permits");
            Semaphore {
                state: AtomicUsize::new(permits * ONE),
                queue: Lock::new(VecDeque::new()),
            }
        }
    }

    /// Takes one permit, waiting in line until one is free.
    ///
    /// ```
    /// let sem = gort::sync::Semaphore::new(1);
    /// let p = sem.acquire();
    /// assert_eq!(sem.available_permits(), 0);
    /// drop(p);
    /// ```
    #[track_caller]
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        self.acquire_many(1)
    }

    /// Takes `n` permits at once, waiting in line until they are free.
    ///
    /// # Panics
    /// If `n` exceeds [`MAX_PERMITS`](Self::MAX_PERMITS).
    ///
    /// ```
    /// let sem = gort::sync::Semaphore::new(5);
    /// let p = sem.acquire_many(5);
    /// assert!(sem.try_acquire().is_none());
    /// drop(p);
    /// ```
    #[track_caller]
    pub fn acquire_many(&self, n: usize) -> SemaphorePermit<'_> {
        assert!(n <= Self::MAX_PERMITS, "semaphore: too many permits");
        if !self.try_take(n) {
            self.acquire_slow(n);
        }
        SemaphorePermit {
            sem: self,
            permits: n,
        }
    }

    /// Takes one permit if one is free and nobody is queued; `None`
    /// otherwise.
    ///
    /// ```
    /// let sem = gort::sync::Semaphore::new(1);
    /// let p = sem.try_acquire().unwrap();
    /// assert!(sem.try_acquire().is_none());
    /// drop(p);
    /// assert!(sem.try_acquire().is_some());
    /// ```
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        self.try_acquire_many(1)
    }

    /// Takes `n` permits if they are free and nobody is queued; `None`
    /// otherwise.
    ///
    /// ```
    /// let sem = gort::sync::Semaphore::new(2);
    /// assert!(sem.try_acquire_many(3).is_none());
    /// assert_eq!(sem.try_acquire_many(2).unwrap().num_permits(), 2);
    /// ```
    pub fn try_acquire_many(&self, n: usize) -> Option<SemaphorePermit<'_>> {
        if self.try_take(n) {
            Some(SemaphorePermit {
                sem: self,
                permits: n,
            })
        } else {
            None
        }
    }

    /// Adds `n` permits (they go to queued waiters first, in order).
    ///
    /// # Panics
    /// If the total would exceed [`MAX_PERMITS`](Self::MAX_PERMITS).
    ///
    /// ```
    /// let sem = gort::sync::Semaphore::new(0);
    /// sem.add_permits(2);
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn add_permits(&self, n: usize) {
        if n == 0 {
            return;
        }
        assert!(n <= Self::MAX_PERMITS, "semaphore: too many permits");
        let prev = self.state.fetch_add(n * ONE, Ordering::Release);
        if prev / ONE + n > Self::MAX_PERMITS {
            self.state.fetch_sub(n * ONE, Ordering::Relaxed);
            panic!("semaphore: too many permits");
        }
        if prev & QUEUED != 0 && !crate::loom::mutant("semaphore_no_hand_off") {
            self.hand_off(self.queue.lock());
        }
    }

    /// The permits free right now (racy: for tests and diagnostics).
    ///
    /// ```
    /// let sem = gort::sync::Semaphore::new(4);
    /// let _p = sem.acquire();
    /// assert_eq!(sem.available_permits(), 3);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.state.load(Ordering::Relaxed) / ONE
    }

    /// Entries queued (loom models check it).
    #[cfg(loom)]
    pub(crate) fn queued(&self) -> usize {
        self.queue.lock().len()
    }

    #[inline]
    fn try_take(&self, n: usize) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if (s & QUEUED != 0 && !crate::loom::mutant("semaphore_barge")) || s / ONE < n {
                return false;
            }
            match self.state.compare_exchange_weak(
                s,
                s - n * ONE,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(cur) => s = cur,
            }
        }
    }

    #[cold]
    #[track_caller]
    fn acquire_slow(&self, n: usize) {
        let slot = Slot::new();
        let parking = park::prepare();
        let mut q = self.queue.lock();
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let (new, queue) = if s & QUEUED == 0 && s / ONE >= n {
                (s - n * ONE, false)
            } else {
                (s | QUEUED, true)
            };
            match self
                .state
                .compare_exchange(s, new, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) if queue => break,
                Ok(_) => return,
                Err(cur) => s = cur,
            }
        }
        // SAFETY: `slot` lives in this frame until after the park below
        // ends, and the queue lock is released only by its `after` step.
        q.push_back(unsafe { Entry::new(parking.waiter().clone(), &slot, n) });
        let reg = Registration {
            sem: self,
            slot: &slot,
            me: parking.waiter().clone(),
            n,
        };
        parking.park(WaitReason::Semacquire, None, move || drop(q));
        let got = reg.slot.get();
        std::mem::forget(reg);
        debug_assert_eq!(got, GRANTED, "only a hand-off wakes a semaphore waiter");
    }

    /// Under the queue lock: gives permits to the queue head(s) while they
    /// suffice, in order; clears `QUEUED` when the queue empties. Wakes the
    /// served waiters after releasing the lock.
    fn hand_off(&self, mut q: LockGuard<'_, VecDeque<Entry>>) {
        let mut woken: Vec<Claimed> = Vec::new();
        // Acquire: a served waiter must see what the releasers did.
        let mut s = self.state.load(Ordering::Acquire);
        while let Some(head) = q.front() {
            let want = head.want;
            if s / ONE < want && !crate::loom::mutant("semaphore_grant_unchecked") {
                break;
            }
            let e = q.pop_front().expect("front exists");
            let clear = if q.is_empty() { QUEUED } else { 0 };
            if let Some(c) = e.claim(GRANTED) {
                s = self.state.fetch_sub(want * ONE + clear, Ordering::Acquire)
                    - want * ONE
                    - clear;
                woken.push(c);
            } else if clear != 0 {
                s = self.state.fetch_and(!QUEUED, Ordering::Acquire) & !QUEUED;
            }
        }
        drop(q);
        for c in woken {
            c.wake();
        }
    }

    /// A queued acquirer unwinding (its goroutine was cancelled).
    #[cold]
    fn abandon(&self, got: usize, me: &Waiter, n: usize) {
        if got == GRANTED {
            self.add_permits(n);
            return;
        }
        let mut q = self.queue.lock();
        if wait::remove(&mut q, me) && q.is_empty() {
            self.state.fetch_and(!QUEUED, Ordering::Relaxed);
        }
        // The waiter behind us may be served now.
        self.hand_off(q);
    }
}

/// A queued acquirer: on unwinding, gives back or passes on what it had.
struct Registration<'a> {
    sem: &'a Semaphore,
    slot: &'a Slot,
    me: Waiter,
    n: usize,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.sem.abandon(self.slot.get(), &self.me, self.n);
    }
}

impl SemaphorePermit<'_> {
    /// How many permits this holds.
    pub fn num_permits(&self) -> usize {
        self.permits
    }

    /// Drops the permits without giving them back to the semaphore.
    ///
    /// ```
    /// let sem = gort::sync::Semaphore::new(2);
    /// sem.acquire().forget();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn forget(mut self) {
        self.permits = 0;
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.sem.add_permits(self.permits);
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("permits", &self.permits)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.load(Ordering::Relaxed);
        f.debug_struct("Semaphore")
            .field("permits", &(s / ONE))
            .field("queued", &(s & QUEUED != 0))
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn try_acquire_fails_while_someone_is_queued() {
        let sem = Arc::new(Semaphore::new(1));
        let p = sem.acquire();
        let s2 = sem.clone();
        let big = std::thread::spawn(move || s2.acquire_many(2).num_permits());
        while sem.state.load(Ordering::SeqCst) & QUEUED == 0 {
            std::thread::yield_now();
        }
        sem.add_permits(1); // 1 free, but the head wants 2
        assert_eq!(sem.available_permits(), 1);
        assert!(sem.try_acquire().is_none(), "no barging past the queue");
        drop(p); // now 2: the head gets both
        assert_eq!(big.join().unwrap(), 2);
        assert_eq!(sem.available_permits(), 2);
        assert_eq!(sem.state.load(Ordering::SeqCst) & QUEUED, 0);
    }

    #[test]
    fn forget_and_zero_permits() {
        let sem = Semaphore::new(0);
        assert_eq!(sem.acquire_many(0).num_permits(), 0);
        sem.add_permits(3);
        sem.acquire_many(2).forget();
        assert_eq!(sem.available_permits(), 1);
        assert_eq!(
            format!("{sem:?}"),
            "Semaphore { permits: 1, queued: false }"
        );
    }

    #[test]
    #[should_panic(expected = "too many permits")]
    fn overflow_panics() {
        let sem = Semaphore::new(Semaphore::MAX_PERMITS);
        sem.add_permits(1);
    }
}
