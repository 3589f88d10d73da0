//! The wake protocol's two counters and its two sides (Go's `wakep` and
//! the spinning M's "delicate dance" in `findRunnable`).
//!
//! `npidle` counts idle Ps, `nmspinning` Ms looking for work. A submitter
//! queues work, then [`wanted`]: it starts a spinning M only if a P is
//! idle and no M spins, and only if it [`claim`]s the first spinner's
//! place. A spinning M that found nothing releases its P and then
//! [`give_up`]s spinning: it uncounts itself, and only then looks at the
//! queues again. Both sides put a SeqCst fence between their store and
//! their load (a Dekker pair): either the submitter sees the M still
//! spinning (and the M's second look sees the work), or it sees no
//! spinner and an idle P and wakes an M. `sched.rs` owns the counters,
//! `idle.rs` (`wakep`) and `schedule.rs` (`find_runnable`) call these.
//!
//! Model `spinning_wake_loses_no_work`: a submitter queues work on the
//! real run queue and runs `wakep`'s steps (handing the idle P to the
//! sleeping M through the real mailbox of `mailbox.rs`), while the last
//! spinning M fails to steal, releases its P, gives up spinning, and
//! sleeps (`stopm`'s steps). loom reports a deadlock if the work can be
//! left with the M asleep. Twins: the M skipping its second look
//! (`spin_no_recheck`) and skipping the fence before it (`spin_no_fence`).

use crate::loom::atomic::{fence, AtomicUsize, Ordering};
use crate::loom::mutant;

/// The submitter, after queueing work: whether to start a spinning M (a P
/// is idle and no M spins). Go's `wakep` fast path.
#[inline]
pub(crate) fn wanted(npidle: &AtomicUsize, nmspinning: &AtomicUsize) -> bool {
    fence(Ordering::SeqCst);
    !(npidle.load(Ordering::SeqCst) == 0 || nmspinning.load(Ordering::SeqCst) != 0)
}

/// Takes the first spinner's place (0 -> 1); false if another M spins.
#[inline]
pub(crate) fn claim(nmspinning: &AtomicUsize) -> bool {
    nmspinning
        .compare_exchange(0, 1, Ordering::SeqCst, Ordering::Relaxed)
        .is_ok()
}

/// An M starts spinning.
#[inline]
pub(crate) fn enter(nmspinning: &AtomicUsize) {
    nmspinning.fetch_add(1, Ordering::SeqCst);
}

/// An M stops spinning (it found work, or a claim found no P).
#[inline]
pub(crate) fn leave(nmspinning: &AtomicUsize) {
    nmspinning.fetch_sub(1, Ordering::SeqCst);
}

/// The spinning M that found nothing and released its P: stops spinning,
/// then looks again (`work`: is anything queued?). A submitter may have
/// seen it spinning and woken no one; true if there is work after all.
#[inline]
pub(crate) fn give_up(nmspinning: &AtomicUsize, work: impl FnOnce() -> bool) -> bool {
    leave(nmspinning);
    if !mutant("spin_no_fence") {
        fence(Ordering::SeqCst);
    }
    !mutant("spin_no_recheck") && work()
}

#[cfg(all(loom, test))]
mod loom_models {
    use super::*;
    use crate::loom::{model_bounded, mutant_test};
    use crate::runtime::lock::Lock;
    use crate::runtime::mailbox::loom_models::IdleM;
    use crate::runtime::runq::RunQueue;
    use loom::sync::Arc;
    use loom::thread;

    struct Sched {
        queue: RunQueue<usize>,
        npidle: AtomicUsize,
        nmspinning: AtomicUsize,
        idle_ps: Lock<Vec<usize>>,
        m: IdleM,
    }

    impl Sched {
        /// `pidleget`.
        fn pidleget(&self) -> Option<usize> {
            let p = self.idle_ps.lock().pop()?;
            self.npidle.fetch_sub(1, Ordering::SeqCst);
            Some(p)
        }

        /// `pidleput`.
        fn pidleput(&self, p: usize) {
            self.idle_ps.lock().push(p);
            self.npidle.fetch_add(1, Ordering::SeqCst);
        }

        /// `wakep`: `startm` hands the P to the model's one other M.
        fn wakep(&self) {
            if !wanted(&self.npidle, &self.nmspinning) || !claim(&self.nmspinning) {
                return;
            }
            match self.pidleget() {
                Some(p) => self.m.startm(p, true),
                None => leave(&self.nmspinning),
            }
        }
    }

    fn item(v: usize) -> *mut usize {
        Box::into_raw(Box::new(v))
    }

    fn wake_loses_no_work() {
        model_bounded(2, || {
            // P 0 is the submitter's; P 1 is held by the one spinning M.
            let s = Arc::new(Sched {
                queue: RunQueue::new(),
                npidle: AtomicUsize::new(0),
                nmspinning: AtomicUsize::new(1),
                idle_ps: Lock::new(Vec::new()),
                m: IdleM::new(),
            });
            let s2 = s.clone();
            let m = thread::spawn(move || {
                let mine = RunQueue::new();
                let mut p = Some(1);
                let mut spinning = true;
                loop {
                    if p.is_some() {
                        if let Some(g) = s2.queue.steal_into(&mine, true) {
                            if spinning {
                                leave(&s2.nmspinning);
                            }
                            // SAFETY: every item comes from `item` and is
                            // taken once (the run queue's own models).
                            return *unsafe { Box::from_raw(g) };
                        }
                        // Nothing: give the P back.
                        s2.pidleput(p.take().unwrap());
                        if spinning {
                            spinning = false;
                            if give_up(&s2.nmspinning, || !s2.queue.is_empty()) {
                                if let Some(id) = s2.pidleget() {
                                    p = Some(id);
                                    enter(&s2.nmspinning);
                                    spinning = true;
                                    continue;
                                }
                            }
                        }
                    }
                    if let Some((id, sp)) = s2.m.stopm() {
                        p = Some(id);
                        spinning = sp;
                    }
                }
            });
            // The submitter: queue work, then wakep (as `ready` does).
            assert!(s.queue.put(item(42), false).is_none());
            s.wakep();
            assert_eq!(m.join().unwrap(), 42);
        });
    }

    #[test]
    fn loom_spinning_wake_loses_no_work() {
        wake_loses_no_work();
    }

    mutant_test!(
        loom_spinning_wake_loses_no_work_mutant_recheck,
        wake_loses_no_work,
        "spin_no_recheck",
        "deadlock"
    );

    mutant_test!(
        loom_spinning_wake_loses_no_work_mutant_fence,
        wake_loses_no_work,
        "spin_no_fence",
        "deadlock"
    );
}
