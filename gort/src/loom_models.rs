//! loom models of the scheduler's lock-free parts.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p gort --lib --release loom`
//! (`.ci/run` does). Under `cfg(loom)` the crate compiles only the run queue
//! and these models, with loom's atomics swapped in (see `loom.rs`).
//!
//! * `runq_*`: the real `RunQueue` (a 4-slot ring under loom) with the
//!   owner pushing and popping while a thief steals: every item is taken
//!   exactly once, through overflow and `runnext` stealing.
//! * the scheduler's protocols (the P window, the idle M's mailbox, the
//!   hog stop, the wake protocol) are modelled beside their real code, in
//!   `runtime/pslot.rs`, `mailbox.rs`, `stop.rs` and `spinning.rs`.

use crate::loom::atomic::{AtomicUsize, Ordering};
use crate::runtime::runq::RunQueue;
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

fn item(v: usize) -> *mut usize {
    Box::into_raw(Box::new(v))
}

fn take(p: *mut usize) -> usize {
    // SAFETY: every pointer comes from `item` and is taken exactly once
    // (which is what the models check).
    *unsafe { Box::from_raw(p) }
}

#[test]
fn runq_owner_and_thief_take_each_item_once() {
    loom::model(|| {
        let victim = Arc::new(RunQueue::<usize>::new());
        let v2 = victim.clone();
        let thief = thread::spawn(move || {
            let mine = RunQueue::new();
            let mut got = Vec::new();
            if let Some(p) = v2.steal_into(&mine, true) {
                got.push(take(p));
            }
            while let Some((p, _)) = mine.get() {
                got.push(take(p));
            }
            got
        });
        let mut got = Vec::new();
        let mut spilled = Vec::new();
        for i in 0..3 {
            if let Some(batch) = victim.put(item(i), i == 2) {
                spilled.extend(batch.into_iter().map(take));
            }
        }
        if let Some((p, _)) = victim.get() {
            got.push(take(p));
        }
        got.extend(thief.join().unwrap());
        while let Some((p, _)) = victim.get() {
            got.push(take(p));
        }
        got.extend(spilled);
        got.sort_unstable();
        assert_eq!(got, vec![0, 1, 2]);
    });
}

#[test]
fn runq_overflow_races_with_steal() {
    loom::model(|| {
        let victim = Arc::new(RunQueue::<usize>::new());
        for i in 0..4 {
            assert!(victim.put(item(i), false).is_none());
        }
        let v2 = victim.clone();
        let thief = thread::spawn(move || {
            let mine = RunQueue::new();
            let mut got = Vec::new();
            if let Some(p) = v2.steal_into(&mine, false) {
                got.push(take(p));
            }
            while let Some((p, _)) = mine.get() {
                got.push(take(p));
            }
            got
        });
        // Ring full: this put either overflows half to the "global queue"
        // or finds room that the thief just made.
        let mut got: Vec<usize> = victim
            .put(item(4), false)
            .map(|b| b.into_iter().map(take).collect())
            .unwrap_or_default();
        got.extend(thief.join().unwrap());
        while let Some((p, _)) = victim.get() {
            got.push(take(p));
        }
        got.sort_unstable();
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
    });
}

/// A one-shot wake-up flag (the join packet's waiter).
struct Note {
    woken: Mutex<bool>,
    cv: Condvar,
}

impl Note {
    fn wake(&self) {
        *self.woken.lock().unwrap() = true;
        self.cv.notify_one();
    }
    fn sleep(&self) {
        let mut w = self.woken.lock().unwrap();
        while !*w {
            w = self.cv.wait(w).unwrap();
        }
        *w = false;
    }
}

/// The join packet's protocol (`go.rs`): the goroutine writes the result
/// and sets COMPLETE; the handle either stores a waiter and sets WAITER
/// (parking unless COMPLETE was already set) or sets DETACHED. The side
/// that acts second frees. loom's `UnsafeCell` flags any racy access to
/// the result or waiter slot; the counters check exactly one free and one
/// wake-up when (and only when) the joiner parked.
mod packet {
    use super::*;
    use loom::cell::UnsafeCell;

    const COMPLETE: usize = 1;
    const DETACHED: usize = 2;
    const WAITER: usize = 4;

    struct Packet {
        state: AtomicUsize,
        result: UnsafeCell<Option<u32>>,
        waiter: UnsafeCell<Option<Arc<Note>>>,
        frees: AtomicUsize,
    }

    fn note() -> Arc<Note> {
        Arc::new(Note {
            woken: Mutex::new(false),
            cv: Condvar::new(),
        })
    }

    fn complete(p: &Packet) {
        // SAFETY: the slot access the protocol under test allows; loom
        // reports it if another thread can touch the slot concurrently.
        p.result.with_mut(|r| unsafe { *r = Some(7) });
        let prev = p.state.fetch_or(COMPLETE, Ordering::AcqRel);
        if prev & DETACHED != 0 {
            p.frees.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if prev & WAITER != 0 {
            // SAFETY: the slot access the protocol under test allows; loom
            // reports it if another thread can touch the slot concurrently.
            let w = p.waiter.with_mut(|s| unsafe { (*s).take() });
            w.expect("waiter stored before WAITER").wake();
        }
    }

    fn join(p: &Packet) -> u32 {
        if p.state.load(Ordering::Acquire) & COMPLETE == 0 {
            let me = note();
            // SAFETY: the slot access the protocol under test allows; loom
            // reports it if another thread can touch the slot concurrently.
            p.waiter.with_mut(|s| unsafe { *s = Some(me.clone()) });
            let prev = p.state.fetch_or(WAITER, Ordering::AcqRel);
            if prev & COMPLETE != 0 {
                // SAFETY: the slot access the protocol under test allows; loom
                // reports it if another thread can touch the slot concurrently.
                drop(p.waiter.with_mut(|s| unsafe { (*s).take() }));
            } else {
                me.sleep();
            }
        }
        assert_ne!(p.state.load(Ordering::Acquire) & COMPLETE, 0);
        // SAFETY: the slot access the protocol under test allows; loom
        // reports it if another thread can touch the slot concurrently.
        let r = p.result.with_mut(|r| unsafe { (*r).take() }).unwrap();
        p.frees.fetch_add(1, Ordering::Relaxed);
        r
    }

    fn detach(p: &Packet) {
        let prev = p.state.fetch_or(DETACHED, Ordering::AcqRel);
        if prev & COMPLETE != 0 {
            p.frees.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn packet() -> Arc<Packet> {
        Arc::new(Packet {
            state: AtomicUsize::new(0),
            result: UnsafeCell::new(None),
            waiter: UnsafeCell::new(None),
            frees: AtomicUsize::new(0),
        })
    }

    #[test]
    fn join_gets_the_result_and_frees_once() {
        loom::model(|| {
            let p = packet();
            let p2 = p.clone();
            let g = thread::spawn(move || complete(&p2));
            assert_eq!(join(&p), 7);
            g.join().unwrap();
            assert_eq!(p.frees.load(Ordering::Relaxed), 1);
        });
    }

    #[test]
    fn detach_races_with_completion_and_frees_once() {
        loom::model(|| {
            let p = packet();
            let p2 = p.clone();
            let g = thread::spawn(move || complete(&p2));
            detach(&p);
            g.join().unwrap();
            assert_eq!(p.frees.load(Ordering::Relaxed), 1);
        });
    }
}

/// The poll descriptor and P window models (their file lives with the
/// netpoller).
#[path = "runtime/netpoll_models.rs"]
mod netpoll_models;
