//! loom models of the scheduler's lock-free parts.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p gort --lib --release loom`
//! (`.ci/run` does). Under `cfg(loom)` the crate compiles only the modules
//! `lib.rs` lists, with loom's atomics swapped in (see `loom.rs`); the
//! models of the join packet, the poll descriptor, the group counts, the
//! channels and `sync` sit beside their code.
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
//! * `p_window_vs_sysmon`: the P window protocol (a re-statement).

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

/// The P window protocol (`m.rs`, `window.rs`), still a re-statement:
/// sysmon taking a P (`MShared::take_p`: CAS `p` to NO_P, barrier, wait
/// while `using`) against the M's thread opening windows (`current_p`: set
/// `using`, barrier, check `p`). Both barriers are SeqCst fences here (the
/// fallback of `membarrier.rs`; the expedited membarrier gives the same
/// ordering). The P's owner-only state is a loom `UnsafeCell`, so loom
/// reports any access by both at once. (Checked by hand: dropping either
/// fence makes loom report concurrent access to the P's state.)
mod p_window {
    use super::*;
    use loom::cell::UnsafeCell;
    use loom::sync::atomic::AtomicBool;

    const NO_P: usize = usize::MAX;

    /// `MShared`'s `p` and `using`, and the P's owner-only state.
    struct M {
        p: AtomicUsize,
        using: AtomicBool,
        local: UnsafeCell<u32>,
    }

    #[test]
    fn p_window_vs_sysmon() {
        loom::model(|| {
            let m = Arc::new(M {
                p: AtomicUsize::new(0),
                using: AtomicBool::new(false),
                local: UnsafeCell::new(0),
            });
            let m2 = m.clone();
            let sysmon = thread::spawn(move || {
                // `take_p`.
                if m2
                    .p
                    .compare_exchange(0, NO_P, Ordering::SeqCst, Ordering::Relaxed)
                    .is_err()
                {
                    return false;
                }
                fence(Ordering::SeqCst);
                while m2.using.load(Ordering::Acquire) {
                    thread::yield_now();
                }
                // The P is sysmon's now (`handoffp`).
                // SAFETY: loom checks exactly this: that no one else touches
                // the cell now (a violation fails the model, not UB).
                m2.local.with_mut(|v| unsafe { *v += 10 });
                true
            });
            // The goroutine's thread: two windows (say, two `go` calls).
            let mut mine = true;
            for _ in 0..2 {
                if !mine {
                    break;
                }
                m.using.store(true, Ordering::Relaxed);
                fence(Ordering::SeqCst);
                if m.p.load(Ordering::Relaxed) == 0 {
                    // SAFETY: as above: loom tracks and reports concurrent use.
                    m.local.with_mut(|v| unsafe { *v += 1 });
                } else {
                    mine = false;
                }
                m.using.store(false, Ordering::Release);
            }
            let taken = sysmon.join().unwrap();
            // SAFETY: both threads are done (joined).
            let v = m.local.with(|v| unsafe { *v });
            assert_eq!(taken, v >= 10);
        });
    }
}
