//! Mutex: Go's `sync.Mutex` algorithm (sync/mutex.go) on gort's park.
//!
//! One state word: `LOCKED`, `WOKEN` (a woken waiter or a spinner is on
//! its way, so unlock need not wake another), `STARVING`, and the number
//! of queued entries above them. Uncontended, `lock` is one CAS and
//! `unlock` one CAS.
//!
//! Normal mode: a contender spins briefly while the lock is held and other
//! threads can run, then queues FIFO and parks. `unlock` clears `LOCKED`
//! and, if there are waiters and nobody is already on the way, sets
//! `WOKEN` and wakes the queue head, which then competes with newcomers
//! (they usually win: they are already running). A woken waiter that
//! loses goes back to the *front* of the queue.
//!
//! Starvation mode: a woken waiter that has waited more than 1 ms sets
//! `STARVING` when it queues again. From then on `unlock` does not clear
//! `LOCKED`: it hands ownership to the queue head directly (claims its
//! waiter, writes `HANDED` into the waiter's slot, wakes it), and
//! newcomers neither barge nor spin, they queue at the back. The waiter
//! handed the lock leaves starvation mode if it waited less than 1 ms or
//! is the last waiter. Invariant: `STARVING` implies `LOCKED`.
//!
//! No lost wake-up (DESIGN.md rule 1): a contender queues under the queue
//! lock with a CAS on the state word that requires `LOCKED` (and adds
//! itself to the count), and releases the queue lock only in its park's
//! `after` step (`wait.rs`). `unlock` changes `LOCKED` with an RMW on the
//! same word, so either the contender's CAS sees the lock free (and it
//! retries instead of parking), or `unlock` sees the count and takes the
//! queue lock, which it gets only once the contender is parked.
//!
//! A waiter that goes away without being handed anything (its goroutine
//! was cancelled) fails the waker's claim: the waker drops its entry and
//! tries the next one. A cancelled waiter that was handed `WOKEN` or the
//! lock passes it on as it unwinds (see `Registration`).

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::Duration;

use super::wait::{self, Entry, Slot};
use crate::loom::atomic::{AtomicU32, AtomicUsize, Ordering};
use crate::loom::time::Instant;
use crate::runtime::g::WaitReason;
use crate::runtime::lock::Lock;
use crate::runtime::park::{self, Waiter};

const LOCKED: u32 = 1;
const WOKEN: u32 = 2;
const STARVING: u32 = 4;
const WAITER_SHIFT: u32 = 3;
const ONE_WAITER: u32 = 1 << WAITER_SHIFT;

/// A waiter that waited longer than this switches the lock to starvation
/// mode (Go's `starvationThresholdNs`).
const STARVATION_THRESHOLD: Duration = Duration::from_millis(1);

/// Slot values: woken in normal mode (compete again), or handed the lock.
const SLOT_WOKEN: usize = 1;
const SLOT_HANDED: usize = 2;

/// The lock itself, without data: shared by [`Mutex`] and
/// [`Condvar`](super::Condvar).
pub(crate) struct RawMutex {
    state: AtomicU32,
    queue: Lock<VecDeque<Entry>>,
}

impl RawMutex {
    crate::maybe_const_fn! {
        pub(crate) fn new() -> RawMutex {
            RawMutex {
                state: AtomicU32::new(0),
                queue: Lock::new(VecDeque::new()),
            }
        }
    }

    #[inline]
    #[track_caller]
    pub(crate) fn lock(&self) {
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow();
        }
    }

    /// The state word (loom models check it).
    #[cfg(loom)]
    pub(crate) fn state(&self) -> u32 {
        self.state.load(Ordering::SeqCst)
    }

    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        let mut old = self.state.load(Ordering::Relaxed);
        // Unlocked implies normal mode (STARVING implies LOCKED), where
        // taking a free lock is allowed even with waiters queued.
        while old & LOCKED == 0 {
            match self.state.compare_exchange_weak(
                old,
                old | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(cur) => old = cur,
            }
        }
        false
    }

    /// # Safety
    /// The caller holds the lock.
    #[inline]
    pub(crate) unsafe fn unlock(&self) {
        if self
            .state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.unlock_slow();
        }
    }

    #[cold]
    #[track_caller]
    fn lock_slow(&self) {
        let mut wait_start: Option<Instant> = None;
        let mut starving = false;
        // Whether this caller set (or was handed) WOKEN and must clear it.
        let mut awoke = false;
        let mut iter = 0;
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            // Spin while the lock is held in normal mode, if that can help.
            if old & (LOCKED | STARVING) == LOCKED && can_spin(iter) {
                // Tell unlock not to wake a waiter: we are on the way.
                if !awoke
                    && old & WOKEN == 0
                    && old >> WAITER_SHIFT != 0
                    && self
                        .state
                        .compare_exchange(old, old | WOKEN, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    awoke = true;
                }
                for _ in 0..30 {
                    std::hint::spin_loop();
                }
                iter += 1;
                old = self.state.load(Ordering::Relaxed);
                continue;
            }
            if old & LOCKED == 0 {
                // Free (hence normal mode): take it, even past waiters.
                let mut new = old | LOCKED;
                if awoke {
                    debug_assert_ne!(old & WOKEN, 0, "sync: inconsistent mutex state");
                    new &= !WOKEN;
                }
                match self
                    .state
                    .compare_exchange(old, new, Ordering::Acquire, Ordering::Relaxed)
                {
                    Ok(_) => return,
                    Err(cur) => {
                        old = cur;
                        continue;
                    }
                }
            }
            // Held: queue up, unless it was released meanwhile.
            let slot = Slot::new();
            let parking = park::prepare();
            let mut q = self.queue.lock();
            old = self.state.load(Ordering::Relaxed);
            let registered = loop {
                if old & LOCKED == 0 && !crate::loom::mutant("mutex_queue_while_free") {
                    break false;
                }
                let mut new = old + ONE_WAITER;
                if starving {
                    new |= STARVING;
                }
                if awoke {
                    debug_assert_ne!(old & WOKEN, 0, "sync: inconsistent mutex state");
                    new &= !WOKEN;
                }
                match self
                    .state
                    .compare_exchange(old, new, Ordering::Relaxed, Ordering::Relaxed)
                {
                    Ok(_) => break true,
                    Err(cur) => old = cur,
                }
            };
            if !registered {
                drop(q);
                continue;
            }
            // (The CAS cleared WOKEN if we owned it; the wake-up below
            // decides `awoke` afresh.)
            // A waiter woken before goes back to the front (Go's LIFO
            // re-queue): it keeps its place in line.
            let requeue = wait_start.is_some();
            let start = *wait_start.get_or_insert_with(Instant::now);
            // SAFETY: `slot` lives in this frame until after the park below
            // ends, and the queue lock is released only by the park's
            // `after` step.
            let e = unsafe { Entry::new(parking.waiter().clone(), &slot, 0) };
            if requeue {
                q.push_front(e);
            } else {
                q.push_back(e);
            }
            let reg = Registration {
                m: self,
                slot: &slot,
                me: parking.waiter().clone(),
            };
            parking.park(WaitReason::MutexLock, None, move || drop(q));
            let got = reg.finish();
            let waited = start.elapsed();
            if got == SLOT_HANDED {
                // We own the lock (LOCKED stayed set). Leave starvation
                // mode if we did not really starve or nobody is left.
                let s = self.state.load(Ordering::Relaxed);
                debug_assert_eq!(s & (LOCKED | STARVING), LOCKED | STARVING);
                if waited < STARVATION_THRESHOLD || s >> WAITER_SHIFT == 0 {
                    self.state.fetch_and(!STARVING, Ordering::Relaxed);
                }
                return;
            }
            debug_assert_eq!(got, SLOT_WOKEN);
            awoke = true;
            starving = starving || waited > STARVATION_THRESHOLD;
            iter = 0;
            old = self.state.load(Ordering::Relaxed);
        }
    }

    #[cold]
    fn unlock_slow(&self) {
        let mut old = self.state.load(Ordering::Relaxed);
        loop {
            debug_assert_ne!(old & LOCKED, 0, "sync: unlock of unlocked mutex");
            if old & STARVING != 0 {
                self.hand_off();
                return;
            }
            match self.state.compare_exchange_weak(
                old,
                old & !LOCKED,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    old &= !LOCKED;
                    break;
                }
                Err(cur) => old = cur,
            }
        }
        self.wake_one(old);
    }

    /// Normal mode, after the lock was released with state `old`: wakes
    /// the queue head unless nobody waits, the lock was taken again, or a
    /// woken waiter or spinner is already on the way.
    fn wake_one(&self, mut old: u32) {
        loop {
            if old >> WAITER_SHIFT == 0 || old & (LOCKED | WOKEN | STARVING) != 0 {
                return;
            }
            match self.state.compare_exchange_weak(
                old,
                old | WOKEN,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(cur) => old = cur,
            }
        }
        // We own WOKEN now: hand it to a live waiter, or clear it.
        let mut q = self.queue.lock();
        while let Some(e) = q.pop_front() {
            self.state.fetch_sub(ONE_WAITER, Ordering::Relaxed);
            if let Some(c) = e.claim(SLOT_WOKEN) {
                drop(q);
                c.wake();
                return;
            }
        }
        // Every entry was stale. Clear WOKEN under the queue lock, so a
        // contender queuing after this sees it clear at its next unlock.
        self.state.fetch_and(!WOKEN, Ordering::Relaxed);
    }

    /// Starvation mode: gives the lock (LOCKED stays set) to the first live
    /// waiter; with none left, leaves starvation mode and releases it.
    fn hand_off(&self) {
        let mut q = self.queue.lock();
        while let Some(e) = q.pop_front() {
            self.state.fetch_sub(ONE_WAITER, Ordering::Relaxed);
            if crate::loom::mutant("mutex_hand_off_unlocks") {
                self.state.fetch_and(!LOCKED, Ordering::Release);
            }
            if let Some(c) = e.claim(SLOT_HANDED) {
                drop(q);
                c.wake();
                return;
            }
        }
        // Nobody queued (all stale): the count is 0 under the queue lock.
        self.state
            .fetch_and(!(LOCKED | STARVING), Ordering::Release);
    }

    /// A cancelled waiter unwinding: pass on what it was handed.
    #[cold]
    fn abandon(&self, got: usize, me: &Waiter) {
        match got {
            SLOT_HANDED => {
                // SAFETY: we were handed the lock, so we hold it.
                unsafe { self.unlock() }
            }
            SLOT_WOKEN => {
                let old = self.state.fetch_and(!WOKEN, Ordering::Relaxed) & !WOKEN;
                self.wake_one(old);
            }
            _ => {
                let mut q = self.queue.lock();
                if wait::remove(&mut q, me) {
                    self.state.fetch_sub(ONE_WAITER, Ordering::Relaxed);
                }
            }
        }
    }
}

/// A queued caller: reads what it was handed when its park ends, and on
/// unwinding (a cancelled goroutine) passes that on so nothing is lost.
struct Registration<'a> {
    m: &'a RawMutex,
    slot: &'a Slot,
    me: Waiter,
}

impl Registration<'_> {
    fn finish(self) -> usize {
        let got = self.slot.get();
        std::mem::forget(self);
        got
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.m.abandon(self.slot.get(), &self.me);
    }
}

/// Whether a contender should spin (Go's `runtime_canSpin`): only a few
/// times, and only on a multicore machine, where the holder may be running.
#[inline]
#[cfg(loom)]
fn can_spin(iter: usize) -> bool {
    // One round: a spinner's WOKEN is part of the protocol; more rounds
    // only multiply the interleavings.
    iter < 1
}

#[inline]
#[cfg(not(loom))]
fn can_spin(iter: usize) -> bool {
    static CPUS: AtomicUsize = AtomicUsize::new(0);
    if iter >= 4 {
        return false;
    }
    let mut n = CPUS.load(Ordering::Relaxed);
    if n == 0 {
        n = std::thread::available_parallelism().map_or(1, |n| n.get());
        CPUS.store(n, Ordering::Relaxed);
    }
    n > 1
}

/// A mutual-exclusion lock protecting a `T` (Go's `sync.Mutex`, with
/// std's API): a goroutine that finds it locked parks, a plain thread
/// blocks.
///
/// Fair enough to never starve a waiter: a waiter that waited more than
/// 1 ms puts the lock in starvation mode, where it passes from one waiter
/// to the next in FIFO order. There is no
/// poisoning: a panic while the lock is held unlocks it.
///
/// ```
/// use std::sync::Arc;
/// use gort::sync::Mutex;
///
/// gort::run(|| {
///     let counter = Arc::new(Mutex::new(0));
///     let hs: Vec<_> = (0..8)
///         .map(|_| {
///             let counter = counter.clone();
///             gort::go(move || {
///                 for _ in 0..100 {
///                     *counter.lock() += 1;
///                 }
///             })
///         })
///         .collect();
///     for h in hs {
///         h.join().unwrap();
///     }
///     assert_eq!(*counter.lock(), 800);
/// });
/// ```
pub struct Mutex<T: ?Sized> {
    raw: RawMutex,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands `&mut T` to one holder at a time, possibly on
// another thread than the one that created `T`: `T: Send` suffices (as
// std's `Mutex`).
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}
// SAFETY: moving the mutex moves the `T` it owns.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}

// No poisoning, so a panic while locked leaves nothing to observe.
impl<T: ?Sized> std::panic::RefUnwindSafe for Mutex<T> {}
impl<T: ?Sized> std::panic::UnwindSafe for Mutex<T> {}

/// Proof of holding a [`Mutex`]: derefs to the data, unlocks on drop.
///
/// ```
/// let m = gort::sync::Mutex::new(vec![1]);
/// let mut g = m.lock();
/// g.push(2);
/// drop(g);
/// assert_eq!(*m.lock(), [1, 2]);
/// ```
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    pub(crate) mutex: &'a Mutex<T>,
}

// SAFETY: a shared guard gives out `&T` only, so it may be shared between
// threads when `T: Sync` (as std's; the auto impl would ask only for
// `T: Send`). Unlike std's, the guard is also `Send` (when `T: Send`):
// gort's lock belongs to no thread, so it may be released on another
// thread or by another goroutine, as Go allows.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<T> Mutex<T> {
    crate::maybe_const_fn! {
        /// A new unlocked mutex holding `value`.
        ///
        /// ```
        /// static M: gort::sync::Mutex<u32> = gort::sync::Mutex::new(0);
        /// *M.lock() += 1;
        /// assert_eq!(*M.lock(), 1);
        /// ```
        pub fn new(value: T) -> Mutex<T> {
            Mutex {
                raw: RawMutex::new(),
                data: UnsafeCell::new(value),
            }
        }
    }

    /// Consumes the mutex and returns its data.
    ///
    /// ```
    /// let m = gort::sync::Mutex::new(String::from("hi"));
    /// assert_eq!(m.into_inner(), "hi");
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex: a goroutine that finds it locked parks until it is
    /// its turn, a plain thread blocks.
    ///
    /// ```
    /// let m = gort::sync::Mutex::new(1);
    /// *m.lock() += 1;
    /// assert_eq!(*m.lock(), 2);
    /// ```
    #[inline]
    #[track_caller]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.raw.lock();
        MutexGuard { mutex: self }
    }

    /// Locks the mutex if it is free right now; `None` if it is held.
    ///
    /// ```
    /// let m = gort::sync::Mutex::new(0);
    /// let g = m.try_lock().unwrap();
    /// assert!(m.try_lock().is_none());
    /// drop(g);
    /// assert!(m.try_lock().is_some());
    /// ```
    #[inline]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        if self.raw.try_lock() {
            Some(MutexGuard { mutex: self })
        } else {
            None
        }
    }

    /// The data, through a unique borrow (no locking needed).
    ///
    /// ```
    /// let mut m = gort::sync::Mutex::new(0);
    /// *m.get_mut() = 5;
    /// assert_eq!(*m.lock(), 5);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    pub(crate) fn raw(&self) -> &RawMutex {
        &self.raw
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Mutex<T> {
        Mutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard exists only while its holder holds the lock.
        unsafe { self.mutex.raw.unlock() }
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while the lock is held, so no
        // `&mut T` exists elsewhere.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard exists only while the lock is held, and
        // `&mut self` makes this the only reference derived from it.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn rt(procs: usize) -> crate::runtime::Runtime {
        crate::runtime::Builder::new().procs(procs).build().unwrap()
    }

    #[test]
    fn uncontended_lock_and_unlock_leave_the_state_clean() {
        let m = Mutex::new(1);
        *m.lock() += 1;
        assert_eq!(m.raw.state.load(Ordering::Relaxed), 0);
        let g = m.try_lock().unwrap();
        assert_eq!(m.raw.state.load(Ordering::Relaxed), LOCKED);
        assert!(m.try_lock().is_none());
        drop(g);
        assert_eq!(m.into_inner(), 2);
    }

    #[test]
    fn debug_shows_data_or_locked() {
        let m = Mutex::new(7);
        assert_eq!(format!("{m:?}"), "Mutex { data: 7, .. }");
        let _g = m.lock();
        assert_eq!(format!("{m:?}"), "Mutex { data: <locked>, .. }");
    }

    #[test]
    fn threads_contending_count_exactly() {
        let m = Arc::new(Mutex::new(0u64));
        let ts: Vec<_> = (0..4)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        *m.lock() += 1;
                    }
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(*m.lock(), 80_000);
        assert_eq!(m.raw.state.load(Ordering::Relaxed), 0, "no waiter left");
    }

    #[test]
    fn goroutines_park_on_a_held_lock_and_all_get_it() {
        let m = Arc::new(Mutex::new(Vec::new()));
        let out = rt(2).run({
            let m = m.clone();
            move || {
                let g = m.lock();
                let hs: Vec<_> = (0..16)
                    .map(|i| {
                        let m = m.clone();
                        crate::go(move || m.lock().push(i))
                    })
                    .collect();
                // Let them queue behind the held lock.
                while m.raw.state.load(Ordering::Relaxed) >> WAITER_SHIFT < 16 {
                    crate::yield_now();
                }
                drop(g);
                for h in hs {
                    h.join().unwrap();
                }
                let mut v = m.lock().clone();
                v.sort_unstable();
                v
            }
        });
        assert_eq!(out, (0..16).collect::<Vec<_>>());
        assert_eq!(m.raw.state.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn starving_waiter_is_handed_the_lock() {
        // One P: a readied waiter runs only when the main goroutine yields.
        let m = Arc::new(Mutex::new(Vec::new()));
        rt(1).run({
            let m = m.clone();
            move || {
                let g = m.lock();
                let h = {
                    let m = m.clone();
                    crate::go(move || m.lock().push(1))
                };
                crate::yield_now(); // the waiter queues
                assert_eq!(m.raw.state.load(Ordering::Relaxed), LOCKED | ONE_WAITER);
                std::thread::sleep(Duration::from_millis(3));
                drop(g); // normal mode: wakes the waiter...
                let g = m.lock(); // ...but a running newcomer barges in
                crate::yield_now(); // the waiter, after >1 ms, queues again starving
                assert_eq!(
                    m.raw.state.load(Ordering::Relaxed),
                    LOCKED | STARVING | ONE_WAITER
                );
                drop(g); // starvation mode: LOCKED goes to the waiter
                assert!(m.try_lock().is_none(), "the lock was handed over");
                h.join().unwrap();
                // The last waiter left starvation mode.
                assert_eq!(m.raw.state.load(Ordering::Relaxed), 0);
                assert_eq!(*m.lock(), [1]);
            }
        });
    }

    #[test]
    fn a_cancelled_waiter_leaves_no_entry_behind() {
        let m = Arc::new(Mutex::new(()));
        let g = m.lock();
        {
            let r = rt(1);
            let m2 = m.clone();
            r.run(move || {
                crate::go(move || drop(m2.lock()));
                crate::yield_now();
            });
            // Dropping the runtime cancels the parked goroutine.
        }
        assert_eq!(m.raw.state.load(Ordering::Relaxed), LOCKED);
        drop(g);
        assert_eq!(m.raw.state.load(Ordering::Relaxed), 0);
        assert!(m.raw.queue.lock().is_empty());
    }
}
