//! An idle M's one-slot P mailbox (`MShared::nextp`/`next_spinning`):
//! the sender's and the receiver's steps.
//!
//! `startm` takes an idle M off the idle M list and [`post`]s a P to it,
//! both under the scheduler lock, then wakes the M's note; the M
//! (`idle.rs` `stopm`) cleared its note and enlisted itself under the same
//! lock before sleeping, and after waking it delists itself and
//! [`collect`]s under the lock again. So a P posted to an M is always
//! collected by it (the M cannot leave the list unseen), and the wake-up
//! comes after the clear (it cannot be lost). A stopped hog
//! (`stop.rs`) and a locked M (`lockosthread.rs`) receive through the
//! same slot, outside the lock: they never enlist, and a sender reaches
//! them only through a claim that makes it the one sender.
//!
//! Model `mailbox_sleeping_m_gets_its_p`: an idle M (cleared its note,
//! enlisted) runs the rest of `stopm`'s steps (sleep on the real `Note`
//! over the emulated futex; delist, collect) while `startm`'s steps (pop,
//! post; wake) hand it a P:
//! it receives the P exactly once, the slot is empty afterwards, and loom
//! reports a deadlock if the M can sleep through the hand-off. Its twin
//! drops the note's futex wake (`note_no_wake`), a lost wake-up.

use super::pslot::NO_P;
use super::throw::throw;
use crate::loom::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Puts P `p` in the mailbox (the caller then wakes the M). The slot must
/// be empty: a P is owned by exactly one of an M, the idle list or one
/// mailbox (DESIGN.md rule 8).
pub(crate) fn post(nextp: &AtomicUsize, next_spinning: &AtomicBool, p: usize, spinning: bool) {
    next_spinning.store(spinning, Ordering::Relaxed);
    if nextp.swap(p, Ordering::Release) != NO_P {
        throw("handoff: an M's P mailbox is already full");
    }
}

/// Empties the mailbox: the P posted, if any.
#[inline]
pub(crate) fn take(nextp: &AtomicUsize) -> Option<usize> {
    let p = nextp.swap(NO_P, Ordering::Acquire);
    (p != NO_P).then_some(p)
}

/// Whether a P is waiting in the mailbox.
#[inline]
pub(crate) fn full(nextp: &AtomicUsize) -> bool {
    nextp.load(Ordering::Acquire) != NO_P
}

/// Empties the mailbox: the P posted and whether it was posted to a
/// spinning M.
pub(crate) fn collect(nextp: &AtomicUsize, next_spinning: &AtomicBool) -> Option<(usize, bool)> {
    take(nextp).map(|p| (p, next_spinning.load(Ordering::Relaxed)))
}

#[cfg(all(loom, test))]
pub(crate) mod loom_models {
    use super::*;
    use crate::loom::{model, mutant_test};
    use crate::runtime::lock::Lock;
    use crate::runtime::note::Note;
    use loom::sync::Arc;
    use loom::thread;

    /// The words of one M that other threads see (`MShared`'s), and the
    /// idle M list (M ids) under its lock (`Inner::idle_ms`).
    #[derive(Default)]
    pub(crate) struct IdleM {
        pub(crate) note: Note,
        pub(crate) nextp: AtomicUsize,
        pub(crate) next_spinning: AtomicBool,
        pub(crate) idle_ms: Lock<Vec<usize>>,
    }

    impl IdleM {
        pub(crate) fn new() -> IdleM {
            IdleM {
                nextp: AtomicUsize::new(NO_P),
                ..IdleM::default()
            }
        }

        /// `stopm`'s steps for M 0 (no timer, no poller): the P and
        /// spinning flag it was handed.
        pub(crate) fn stopm(&self) -> Option<(usize, bool)> {
            self.enlist();
            self.sleep()
        }

        /// `stopm` up to its sleep: clears the note, enlists.
        pub(crate) fn enlist(&self) {
            let mut l = self.idle_ms.lock();
            self.note.clear();
            l.push(0);
        }

        /// `stopm` from its sleep on: sleeps, delists, collects.
        pub(crate) fn sleep(&self) -> Option<(usize, bool)> {
            self.note.sleep(None);
            let mut l = self.idle_ms.lock();
            l.retain(|&m| m != 0);
            collect(&self.nextp, &self.next_spinning)
        }

        /// `startm`'s steps, waiting for the model's one M to be idle
        /// (where production, finding none, starts a thread).
        pub(crate) fn startm(&self, p: usize, spinning: bool) {
            loop {
                let mut l = self.idle_ms.lock();
                if l.pop().is_some() {
                    post(&self.nextp, &self.next_spinning, p, spinning);
                    drop(l);
                    self.note.wakeup();
                    return;
                }
                drop(l);
                thread::yield_now();
            }
        }
    }

    fn sleeping_m_gets_its_p() {
        model(|| {
            // The M enlisted; the sender's hand-off races with its sleep.
            let m = Arc::new(IdleM::new());
            m.enlist();
            let m2 = m.clone();
            let sender = thread::spawn(move || m2.startm(7, true));
            assert_eq!(m.sleep(), Some((7, true)), "received once");
            sender.join().unwrap();
            assert!(!full(&m.nextp), "nothing left in the slot");
        });
    }

    #[test]
    fn loom_mailbox_sleeping_m_gets_its_p() {
        sleeping_m_gets_its_p();
    }

    mutant_test!(
        loom_mailbox_sleeping_m_gets_its_p_mutant,
        sleeping_m_gets_its_p,
        "note_no_wake",
        "deadlock"
    );
}
