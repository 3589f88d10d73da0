//! loom models of the hand-off protocols in `mutex.rs` and `semaphore.rs`.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p gort --lib --release
//! --target-dir target/loom loom` (under `cfg(loom)` the crate compiles only
//! the run queue and the models; this file is included from
//! `loom_models.rs`). As the other models, these re-state the algorithm
//! over loom's atomics rather than compile the runtime: the code below
//! follows `RawMutex` and `Semaphore` line for line, with
//!
//! * `Parker`, a stand-in for `park.rs`'s `Waiter`: `claim`
//!   (WAITING -> CLAIMED), `wake_claimed`, and `wait`; an entry's `Slot` is
//!   written between claim and wake, as in `wait.rs`;
//! * the queue lock held from the waiter's re-check until it "parks"
//!   (released right before `Parker::wait`, as the park's `after` step
//!   releases it once the goroutine is switched out);
//! * "waited more than 1 ms" as a per-caller flag instead of a clock.
//!
//! loom reports a deadlock if a wake-up or a hand-off is lost (a waiter
//! parked forever), and a causality violation if two callers hold the
//! mutex at once (the data is a loom `UnsafeCell`).

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;
use std::collections::VecDeque;

const WAITING: u8 = 0;
const CLAIMED: u8 = 1;
const WOKEN: u8 = 2;

/// One park of one thread (park.rs's `ThreadParker` for a single park).
struct Parker {
    state: Mutex<u8>,
    cv: Condvar,
}

impl Parker {
    fn new() -> Arc<Parker> {
        Arc::new(Parker {
            state: Mutex::new(WAITING),
            cv: Condvar::new(),
        })
    }

    fn claim(&self) -> bool {
        let mut s = self.state.lock().unwrap();
        if *s == WAITING {
            *s = CLAIMED;
            true
        } else {
            false
        }
    }

    fn wake_claimed(&self) {
        *self.state.lock().unwrap() = WOKEN;
        self.cv.notify_one();
    }

    fn wait(&self) {
        let mut s = self.state.lock().unwrap();
        while *s != WOKEN {
            s = self.cv.wait(s).unwrap();
        }
    }
}

/// `wait.rs`'s `Entry`: the waiter, its slot, what it wants, and (for the
/// checks only) who it is.
struct Entry {
    parker: Arc<Parker>,
    slot: Arc<AtomicUsize>,
    want: usize,
    id: usize,
}

impl Entry {
    fn claim(self, v: usize) -> Option<Arc<Parker>> {
        if !self.parker.claim() {
            return None;
        }
        self.slot.store(v, Ordering::Release);
        Some(self.parker)
    }
}

mod mutex {
    use super::*;

    const LOCKED: u32 = 1;
    const WOKEN: u32 = 2;
    const STARVING: u32 = 4;
    const WAITER_SHIFT: u32 = 3;
    const ONE_WAITER: u32 = 1 << WAITER_SHIFT;
    const SLOT_WOKEN: usize = 1;
    const SLOT_HANDED: usize = 2;

    pub(super) struct RawMutex {
        pub(super) state: AtomicU32,
        queue: Mutex<VecDeque<Entry>>,
        /// The protected data: a counter.
        pub(super) data: UnsafeCell<u32>,
    }

    impl RawMutex {
        pub(super) fn new() -> RawMutex {
            RawMutex {
                state: AtomicU32::new(0),
                queue: Mutex::new(VecDeque::new()),
                data: UnsafeCell::new(0),
            }
        }

        /// Locks, increments the data, unlocks.
        pub(super) fn add(&self, long_wait: bool) {
            self.lock(long_wait);
            // SAFETY: the lock under test excludes every other access;
            // loom reports it if it does not.
            self.data.with_mut(|d| unsafe { *d += 1 });
            self.unlock();
        }

        pub(super) fn lock(&self, long_wait: bool) {
            if self
                .state
                .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                self.lock_slow(long_wait);
            }
        }

        /// `lock_slow`; `long_wait`: every wait counts as more than 1 ms.
        fn lock_slow(&self, long_wait: bool) {
            let mut waited_before = false;
            let mut starving = false;
            let mut awoke = false;
            let mut iter = 0;
            let mut old = self.state.load(Ordering::Relaxed);
            loop {
                // One spin round (no actual spinning: only its WOKEN CAS).
                if old & (LOCKED | STARVING) == LOCKED && iter < 1 {
                    if !awoke
                        && old & WOKEN == 0
                        && old >> WAITER_SHIFT != 0
                        && self
                            .state
                            .compare_exchange(
                                old,
                                old | WOKEN,
                                Ordering::Relaxed,
                                Ordering::Relaxed,
                            )
                            .is_ok()
                    {
                        awoke = true;
                    }
                    iter += 1;
                    old = self.state.load(Ordering::Relaxed);
                    continue;
                }
                if old & LOCKED == 0 {
                    let mut new = old | LOCKED;
                    if awoke {
                        assert_ne!(old & WOKEN, 0, "inconsistent mutex state");
                        new &= !WOKEN;
                    }
                    match self.state.compare_exchange(
                        old,
                        new,
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => return,
                        Err(cur) => {
                            old = cur;
                            continue;
                        }
                    }
                }
                let slot = Arc::new(AtomicUsize::new(0));
                let parker = Parker::new();
                let mut q = self.queue.lock().unwrap();
                old = self.state.load(Ordering::Relaxed);
                let registered = loop {
                    if old & LOCKED == 0 {
                        break false;
                    }
                    let mut new = old + ONE_WAITER;
                    if starving {
                        new |= STARVING;
                    }
                    if awoke {
                        assert_ne!(old & WOKEN, 0, "inconsistent mutex state");
                        new &= !WOKEN;
                    }
                    match self.state.compare_exchange(
                        old,
                        new,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => break true,
                        Err(cur) => old = cur,
                    }
                };
                if !registered {
                    drop(q);
                    continue;
                }
                let e = Entry {
                    parker: parker.clone(),
                    slot: slot.clone(),
                    want: 0,
                    id: 0,
                };
                if waited_before {
                    q.push_front(e);
                } else {
                    q.push_back(e);
                }
                waited_before = true;
                drop(q); // the park's `after` step
                parker.wait();
                let got = slot.load(Ordering::Acquire);
                if got == SLOT_HANDED {
                    let s = self.state.load(Ordering::Relaxed);
                    assert_eq!(s & (LOCKED | STARVING), LOCKED | STARVING);
                    if !long_wait || s >> WAITER_SHIFT == 0 {
                        self.state.fetch_and(!STARVING, Ordering::Relaxed);
                    }
                    return;
                }
                assert_eq!(got, SLOT_WOKEN);
                awoke = true;
                starving = starving || long_wait;
                iter = 0;
                old = self.state.load(Ordering::Relaxed);
            }
        }

        pub(super) fn unlock(&self) {
            if self
                .state
                .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
                .is_err()
            {
                self.unlock_slow();
            }
        }

        fn unlock_slow(&self) {
            let mut old = self.state.load(Ordering::Relaxed);
            loop {
                assert_ne!(old & LOCKED, 0, "unlock of unlocked mutex");
                if old & STARVING != 0 {
                    self.hand_off();
                    return;
                }
                match self.state.compare_exchange(
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

        fn wake_one(&self, mut old: u32) {
            loop {
                if old >> WAITER_SHIFT == 0 || old & (LOCKED | WOKEN | STARVING) != 0 {
                    return;
                }
                match self.state.compare_exchange(
                    old,
                    old | WOKEN,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break,
                    Err(cur) => old = cur,
                }
            }
            let mut q = self.queue.lock().unwrap();
            while let Some(e) = q.pop_front() {
                self.state.fetch_sub(ONE_WAITER, Ordering::Relaxed);
                if let Some(p) = e.claim(SLOT_WOKEN) {
                    drop(q);
                    p.wake_claimed();
                    return;
                }
            }
            self.state.fetch_and(!WOKEN, Ordering::Relaxed);
        }

        fn hand_off(&self) {
            let mut q = self.queue.lock().unwrap();
            while let Some(e) = q.pop_front() {
                self.state.fetch_sub(ONE_WAITER, Ordering::Relaxed);
                if let Some(p) = e.claim(SLOT_HANDED) {
                    drop(q);
                    p.wake_claimed();
                    return;
                }
            }
            self.state
                .fetch_and(!(LOCKED | STARVING), Ordering::Release);
        }
    }
}

/// Normal mode: the holder unlocks and locks again (a running newcomer
/// barging) while a waiter parks; every lock is exclusive, nobody is left
/// parked, and the state ends clean.
#[test]
fn mutex_normal_mode_unlock_races_a_parking_waiter() {
    loom::model(|| {
        let m = Arc::new(mutex::RawMutex::new());
        m.lock(false);
        let m2 = m.clone();
        let waiter = thread::spawn(move || m2.add(false));
        // SAFETY: held (see `RawMutex::add`).
        m.data.with_mut(|d| unsafe { *d += 1 });
        m.unlock();
        m.add(false);
        waiter.join().unwrap();
        assert_eq!(m.state.load(Ordering::Relaxed), 0);
        // SAFETY: every thread is done.
        assert_eq!(m.data.with(|d| unsafe { *d }), 3);
    });
}

/// Starvation mode: a waiter that waited long (woken, then beaten by the
/// barging holder) switches the mutex to starvation mode; unlock then hands
/// the lock to it directly while a newcomer tries to get in. Exclusive,
/// nobody left parked, starvation mode left at the end.
#[test]
fn mutex_starvation_mode_hand_off_races_a_newcomer() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(|| {
        let m = Arc::new(mutex::RawMutex::new());
        m.lock(false);
        let m2 = m.clone();
        let starving = thread::spawn(move || m2.add(true));
        let m3 = m.clone();
        let newcomer = thread::spawn(move || m3.add(false));
        m.unlock();
        m.add(false);
        starving.join().unwrap();
        newcomer.join().unwrap();
        assert_eq!(m.state.load(Ordering::Relaxed), 0);
        // SAFETY: every thread is done.
        assert_eq!(m.data.with(|d| unsafe { *d }), 3);
    });
}

mod semaphore {
    use super::*;

    const QUEUED: usize = 1;
    const ONE: usize = 2;
    const GRANTED: usize = 1;

    pub(super) struct Semaphore {
        state: AtomicUsize,
        queue: Mutex<VecDeque<Entry>>,
        /// Checks only: who is queued, and who was granted from the queue.
        pub(super) queued: [AtomicBool; 3],
        pub(super) granted: [AtomicBool; 3],
    }

    impl Semaphore {
        pub(super) fn new(permits: usize) -> Semaphore {
            Semaphore {
                state: AtomicUsize::new(permits * ONE),
                queue: Mutex::new(VecDeque::new()),
                queued: Default::default(),
                granted: Default::default(),
            }
        }

        pub(super) fn available(&self) -> usize {
            self.state.load(Ordering::SeqCst) / ONE
        }

        pub(super) fn acquire_many(&self, n: usize, id: usize) {
            if !self.try_take(n) {
                self.acquire_slow(n, id);
            }
        }

        fn try_take(&self, n: usize) -> bool {
            let mut s = self.state.load(Ordering::Relaxed);
            loop {
                if s & QUEUED != 0 || s / ONE < n {
                    return false;
                }
                match self.state.compare_exchange(
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

        fn acquire_slow(&self, n: usize, id: usize) {
            let slot = Arc::new(AtomicUsize::new(0));
            let parker = Parker::new();
            let mut q = self.queue.lock().unwrap();
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
            q.push_back(Entry {
                parker: parker.clone(),
                slot: slot.clone(),
                want: n,
                id,
            });
            self.queued[id].store(true, Ordering::SeqCst);
            drop(q); // the park's `after` step
            parker.wait();
            assert_eq!(slot.load(Ordering::Acquire), GRANTED);
        }

        pub(super) fn add_permits(&self, n: usize) {
            let prev = self.state.fetch_add(n * ONE, Ordering::Release);
            if prev & QUEUED != 0 {
                self.hand_off();
            }
        }

        fn hand_off(&self) {
            let mut q = self.queue.lock().unwrap();
            let mut woken = Vec::new();
            let mut s = self.state.load(Ordering::Acquire);
            while let Some(head) = q.front() {
                let want = head.want;
                if s / ONE < want {
                    break;
                }
                let e = q.pop_front().unwrap();
                let clear = if q.is_empty() { QUEUED } else { 0 };
                let id = e.id;
                if let Some(p) = e.claim(GRANTED) {
                    self.granted[id].store(true, Ordering::SeqCst);
                    s = self.state.fetch_sub(want * ONE + clear, Ordering::Acquire)
                        - want * ONE
                        - clear;
                    woken.push(p);
                } else if clear != 0 {
                    s = self.state.fetch_and(!QUEUED, Ordering::Acquire) & !QUEUED;
                }
            }
            drop(q);
            for p in woken {
                p.wake_claimed();
            }
        }
    }
}

/// FIFO hand-off: with 1 permit free, caller 1 wants 2 and queues; caller 2
/// wants 1 and must not take the free permit past caller 1 (if it saw
/// caller 1 queued, caller 1 was served first); a release of 1 serves the
/// head. Permits are never over-committed and all come back.
#[test]
fn semaphore_fifo_hand_off_races_a_release_and_a_newcomer() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(|| {
        let sem = Arc::new(semaphore::Semaphore::new(1));
        let in_use = Arc::new(AtomicUsize::new(0));
        let (s1, u1) = (sem.clone(), in_use.clone());
        let big = thread::spawn(move || {
            s1.acquire_many(2, 1);
            assert!(u1.fetch_add(2, Ordering::SeqCst) + 2 <= 2);
            u1.fetch_sub(2, Ordering::SeqCst);
            s1.add_permits(2);
        });
        let (s2, u2) = (sem.clone(), in_use.clone());
        let small = thread::spawn(move || {
            let big_queued = s2.queued[1].load(Ordering::SeqCst);
            s2.acquire_many(1, 2);
            if big_queued {
                assert!(
                    s2.granted[1].load(Ordering::SeqCst),
                    "barged past a queued acquirer"
                );
            }
            assert!(u2.fetch_add(1, Ordering::SeqCst) < 2);
            u2.fetch_sub(1, Ordering::SeqCst);
            s2.add_permits(1);
        });
        sem.add_permits(1);
        big.join().unwrap();
        small.join().unwrap();
        assert_eq!(sem.available(), 2);
    });
}
