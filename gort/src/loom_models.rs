//! loom models of the scheduler's lock-free parts.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p gort --lib --release loom`
//! (`.ci/run` does). Under `cfg(loom)` the crate compiles only the run queue
//! and these models, with loom's atomics swapped in (see `loom.rs`).
//!
//! * `runq_*`: the real `RunQueue` (a 4-slot ring under loom) with the
//!   owner pushing and popping while a thief steals: every item is taken
//!   exactly once, through overflow and `runnext` stealing.
//! * `wake_protocol`: Go's spinning-M protocol as `sched.rs`/`m.rs`
//!   implement it: a submitter queues work then `wakep`s (start an M only
//!   if a P is idle and no M spins); a spinning M that found nothing
//!   releases its P, stops spinning, re-checks the queues, and sleeps. loom
//!   explores every interleaving and reports a deadlock if the work could be
//!   stranded with the M asleep (a lost wake-up).

use crate::loom::atomic::{fence, AtomicUsize, Ordering};
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

/// The M's note: sleep until woken.
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

struct Sched {
    queue: RunQueue<usize>,
    npidle: AtomicUsize,
    nmspinning: AtomicUsize,
    idle_p: Mutex<usize>,
    note: Note,
}

impl Sched {
    /// `Sched::wakep`, with `startm` handing the P to the (only) M.
    fn wakep(&self) {
        fence(Ordering::SeqCst);
        if self.npidle.load(Ordering::SeqCst) == 0 || self.nmspinning.load(Ordering::SeqCst) != 0 {
            return;
        }
        if self
            .nmspinning
            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let got = {
            let mut idle = self.idle_p.lock().unwrap();
            if *idle > 0 {
                *idle -= 1;
                self.npidle.fetch_sub(1, Ordering::SeqCst);
                true
            } else {
                false
            }
        };
        if got {
            self.note.wake();
        } else {
            self.nmspinning.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[test]
fn wake_protocol_loses_no_work() {
    loom::model(|| {
        // One busy P (the submitter's) and one P held by a spinning M.
        let s = Arc::new(Sched {
            queue: RunQueue::new(),
            npidle: AtomicUsize::new(0),
            nmspinning: AtomicUsize::new(1),
            idle_p: Mutex::new(0),
            note: Note {
                woken: Mutex::new(false),
                cv: Condvar::new(),
            },
        });
        let s2 = s.clone();
        let m = thread::spawn(move || {
            let mine = RunQueue::new();
            let mut spinning = true;
            loop {
                if let Some(p) = s2.queue.steal_into(&mine, true) {
                    if spinning {
                        // reset_spinning
                        s2.nmspinning.fetch_sub(1, Ordering::SeqCst);
                    }
                    return take(p);
                }
                // Release the P.
                {
                    let mut idle = s2.idle_p.lock().unwrap();
                    *idle += 1;
                    s2.npidle.fetch_add(1, Ordering::SeqCst);
                }
                if spinning {
                    s2.nmspinning.fetch_sub(1, Ordering::SeqCst);
                    fence(Ordering::SeqCst);
                    if !s2.queue.is_empty() {
                        let mut idle = s2.idle_p.lock().unwrap();
                        if *idle > 0 {
                            *idle -= 1;
                            s2.npidle.fetch_sub(1, Ordering::SeqCst);
                            s2.nmspinning.fetch_add(1, Ordering::SeqCst);
                            spinning = true;
                            continue;
                        }
                    }
                }
                // stopm: sleep until handed a P (as spinning, by wakep).
                s2.note.sleep();
                spinning = true;
            }
        });
        // The submitter: queue work, then wakep (as `ready` does).
        assert!(s.queue.put(item(42), false).is_none());
        s.wakep();
        assert_eq!(m.join().unwrap(), 42);
    });
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
