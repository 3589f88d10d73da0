//! loom models of the `sync` hand-offs: the real `WaitGroup`, `Mutex`
//! (normal and starvation mode) and `Semaphore` (FIFO hand-off), with the
//! wait-queue entry of `wait.rs`, over the loom shims (`crate::loom`) and
//! the loom-friendly waiter (`runtime/park_loom.rs`).
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p gort --lib --release
//! --target-dir target/loom loom`. loom reports a deadlock if a wake-up or
//! a hand-off is lost; the data a mutex guards is a loom cell, so two
//! holders at once are a causality violation. Each model has a
//! `mutant_test!` twin that switches on a deliberate bug in the real code
//! and must fail.

use std::time::Duration;

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

use super::{Mutex, Semaphore, WaitGroup};
use crate::loom::{model_bounded, mutant_test, time};

/// Two `done`s race a `wait`: the `done` that reaches zero drains the
/// waiter list under its lock, the waiter re-checks the counter under that
/// lock before it appends itself. The waiter is always released.
fn waitgroup() {
    model_bounded(2, || {
        let wg = WaitGroup::new();
        wg.add(2);
        let done: Vec<_> = (0..2)
            .map(|_| {
                let wg = wg.clone();
                thread::spawn(move || wg.done())
            })
            .collect();
        wg.wait();
        assert_eq!(wg.count(), 0);
        for d in done {
            d.join().unwrap();
        }
    });
}

#[test]
fn loom_waitgroup() {
    waitgroup();
}

// The waiter appends itself without the re-check under the lock: the last
// `done` drains an empty list first.
mutant_test!(
    loom_waitgroup_mutant,
    waitgroup,
    "waitgroup_no_recheck",
    "deadlock"
);

/// Locks, bumps the guarded counter, unlocks.
fn bump(m: &Mutex<UnsafeCell<u32>>) {
    let g = m.lock();
    // SAFETY: loom reports it if another holder's access is concurrent.
    g.with_mut(|p| unsafe { *p += 1 });
}

fn total(m: &Mutex<UnsafeCell<u32>>) -> u32 {
    let g = m.lock();
    // SAFETY: as in `bump`.
    g.with(|p| unsafe { *p })
}

/// Normal mode: the holder unlocks and locks again (a running newcomer
/// barging) while a waiter queues and parks: every lock is exclusive and
/// nobody is left parked.
fn mutex_normal() {
    model_bounded(3, || {
        let m = Arc::new(Mutex::new(UnsafeCell::new(0)));
        let m2 = m.clone();
        let waiter = thread::spawn(move || bump(&m2));
        bump(&m);
        bump(&m);
        waiter.join().unwrap();
        assert_eq!(total(&m), 3);
    });
}

#[test]
fn loom_mutex_normal() {
    mutex_normal();
}

// A contender queues without its CAS requiring LOCKED: it can queue after
// the last unlock, and nobody wakes it.
mutant_test!(
    loom_mutex_normal_mutant,
    mutex_normal,
    "mutex_queue_while_free",
    "deadlock"
);

/// Starvation mode: a waiter queues; time passes (the clock moves 2 ms)
/// while the holder unlocks and re-locks, so a waiter woken and beaten
/// re-queues starving; unlock then hands the lock to it directly (LOCKED
/// stays set) while a newcomer tries to get in. Exclusive, nobody left
/// parked, starvation mode left at the end.
fn mutex_starvation() {
    model_bounded(2, || {
        let m = Arc::new(Mutex::new(UnsafeCell::new(0)));
        let g = m.lock();
        let m2 = m.clone();
        let waiter = thread::spawn(move || bump(&m2));
        // Let the waiter queue (it cannot get the lock).
        while m.raw().state() >> 3 == 0 {
            thread::yield_now();
        }
        time::advance(Duration::from_millis(2));
        drop(g);
        bump(&m);
        let m3 = m.clone();
        let newcomer = thread::spawn(move || bump(&m3));
        bump(&m);
        waiter.join().unwrap();
        newcomer.join().unwrap();
        assert_eq!(total(&m), 4);
        assert_eq!(m.raw().state(), 0, "unlocked, normal mode, nobody queued");
    });
}

#[test]
fn loom_mutex_starvation() {
    mutex_starvation();
}

// Hand-off clears LOCKED: the handed waiter and a newcomer both hold it.
mutant_test!(
    loom_mutex_starvation_mutant,
    mutex_starvation,
    "mutex_hand_off_unlocks",
    "panicked"
);

/// FIFO hand-off: 1 permit of 2 free; caller "big" wants 2 and queues;
/// caller "small" wants 1 and must queue behind it; the holder's release
/// serves the queue in order. Permits are never over-committed, all come
/// back, nobody is left parked.
fn semaphore_fifo() {
    model_bounded(2, || {
        let sem = Arc::new(Semaphore::new(2));
        let in_use = Arc::new(AtomicUsize::new(0));
        let held = sem.acquire();
        in_use.fetch_add(1, Ordering::SeqCst);
        let hs: Vec<_> = [2, 1]
            .into_iter()
            .map(|n| {
                let (sem, in_use) = (sem.clone(), in_use.clone());
                thread::spawn(move || {
                    let p = sem.acquire_many(n);
                    let now = in_use.fetch_add(n, Ordering::SeqCst) + n;
                    assert!(now <= 2, "over-committed: {now} permits in use");
                    in_use.fetch_sub(n, Ordering::SeqCst);
                    drop(p);
                })
            })
            .collect();
        in_use.fetch_sub(1, Ordering::SeqCst);
        drop(held);
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(sem.available_permits(), 2);
    });
}

#[test]
fn loom_semaphore_fifo() {
    semaphore_fifo();
}

// A release that finds QUEUED set does not hand off: the queue sleeps.
mutant_test!(
    loom_semaphore_fifo_mutant,
    semaphore_fifo,
    "semaphore_no_hand_off",
    "deadlock"
);

// Hand-off without checking the head's request against the free permits:
// the count wraps, and the next release finds too many permits.
mutant_test!(
    loom_semaphore_fifo_grant_mutant,
    semaphore_fifo,
    "semaphore_grant_unchecked",
    "too many permits"
);

/// No barging: while a waiter is queued, `try_acquire` fails even with a
/// permit free.
fn semaphore_no_barging() {
    model_bounded(2, || {
        let sem = Arc::new(Semaphore::new(0));
        let s2 = sem.clone();
        let big = thread::spawn(move || drop(s2.acquire_many(2)));
        while sem.queued() == 0 {
            thread::yield_now();
        }
        sem.add_permits(1);
        assert!(sem.try_acquire().is_none(), "barged past a queued waiter");
        sem.add_permits(1);
        big.join().unwrap();
        assert_eq!(sem.available_permits(), 2);
    });
}

#[test]
fn loom_semaphore_no_barging() {
    semaphore_no_barging();
}

// `try_acquire` ignores QUEUED.
mutant_test!(
    loom_semaphore_no_barging_mutant,
    semaphore_no_barging,
    "semaphore_barge",
    "barged past a queued waiter"
);
