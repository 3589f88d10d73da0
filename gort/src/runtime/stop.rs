//! The hog stop's state machine (`preempt.rs` explains the mechanism; the
//! signal handler, sysmon's queueing and the proxy's dequeuing live there
//! and in `schedule.rs`, and call these steps).
//!
//! `stop_state` goes NONE -> STOPPED (the handler, having detached its P
//! into `stop_p`: [`Stop::publish`]) -> QUEUED (sysmon, which then takes
//! `stop_p` and queues the proxy: [`Stop::queue`]) -> HANDED (whoever
//! dequeues the proxy, which then posts its own P to the M's mailbox:
//! [`Stop::claim`]) -> NONE (the handler, once it has its P:
//! [`Stop::await_p`]). The handler's timeout withdraws a stop that no one
//! claimed (STOPPED or QUEUED -> NONE: [`Stop::withdraw`]) and takes its
//! detached P back if sysmon has not: the swaps on `stop_p` give that P
//! to exactly one of the two, and the CAS to HANDED versus the withdrawal
//! gives the stopped thread exactly one way out (a P through its mailbox,
//! or running on).
//!
//! Everything here is async-signal-safe (atomics, the note's futex).
//!
//! Model `stop_hog_gets_one_p`: a stopped hog waits for a P (the fake
//! clock may run out its wait) while sysmon queues it and takes its
//! detached P, and an M that dequeues the proxy claims it and posts its
//! own P. Each P ends with exactly one owner (none stranded in `stop_p`
//! or the mailbox), and loom reports a deadlock if the hog can sleep
//! forever. Twins: the withdrawal ignoring a claim (`stop_withdraw_handed`:
//! the claimer's P lands in the mailbox of a thread that ran on) and the
//! withdrawal not taking its P back (`stop_withdraw_drops_p`: the
//! detached P is stranded in `stop_p`).

use std::time::Duration;

use super::mailbox;
use super::note::Note;
use super::pslot::NO_P;
use crate::loom::atomic::{AtomicU8, AtomicUsize, Ordering};
use crate::loom::mutant;
use crate::loom::time::Instant;

/// `stop_state`: no stop.
pub(crate) const STOP_NONE: u8 = 0;
/// Stopped in the handler, waiting for sysmon to queue its proxy.
pub(crate) const STOP_STOPPED: u8 = 1;
/// The proxy is queued (a proxy dequeued earlier, left over from a
/// withdrawn stop, cannot claim a stop sysmon has not queued yet).
pub(crate) const STOP_QUEUED: u8 = 2;
/// An M claimed the stop and is handing it a P.
pub(crate) const STOP_HANDED: u8 = 3;

/// One M's stop words (`MShared`'s `stop_state`, `stop_p`, and its
/// mailbox and note).
pub(crate) struct Stop<'a> {
    pub(crate) state: &'a AtomicU8,
    pub(crate) stop_p: &'a AtomicUsize,
    pub(crate) nextp: &'a AtomicUsize,
    pub(crate) note: &'a Note,
}

impl Stop<'_> {
    /// The handler: publishes the stop with the P it detached (`NO_P`:
    /// none; sysmon had taken it).
    pub(crate) fn publish(&self, own: usize) {
        self.stop_p.store(own, Ordering::SeqCst);
        // SeqCst: a Dekker pair with sysmon's deep sleep (see `deep_sleep`).
        self.state.store(STOP_STOPPED, Ordering::SeqCst);
    }

    /// The handler, after [`publish`](Self::publish): sleeps until a P
    /// arrives in the mailbox, or withdraws the stop after `wait` if no
    /// one claimed it. The P to run on (`None`: none), the stop over.
    pub(crate) fn await_p(&self, wait: Duration) -> Option<usize> {
        let deadline = Instant::now() + wait;
        let mut bounded = true;
        let p = loop {
            if let Some(p) = mailbox::take(self.nextp) {
                break Some(p);
            }
            let timeout = if bounded {
                match deadline.checked_duration_since(Instant::now()) {
                    Some(d) if !d.is_zero() => Some(d),
                    _ => {
                        if self.withdraw() {
                            // Run on with our P if sysmon has not handed
                            // it on yet, else without one.
                            let back = if !mutant("stop_withdraw_drops_p") {
                                self.stop_p.swap(NO_P, Ordering::AcqRel)
                            } else {
                                NO_P
                            };
                            break (back != NO_P).then_some(back);
                        }
                        // Claimed: the P is on its way.
                        bounded = false;
                        None
                    }
                }
            } else {
                None
            };
            self.note.sleep(timeout);
            if !mailbox::full(self.nextp) {
                self.note.clear();
            }
        };
        self.note.clear();
        self.state.store(STOP_NONE, Ordering::Release);
        p
    }

    /// Withdraws the stop unless an M claimed it (then its P is on the
    /// way): STOPPED or QUEUED -> NONE. True if withdrawn.
    pub(crate) fn withdraw(&self) -> bool {
        let mut cur = self.state.load(Ordering::Acquire);
        loop {
            if cur == STOP_HANDED && !mutant("stop_withdraw_handed") {
                return false;
            }
            match self
                .state
                .compare_exchange(cur, STOP_NONE, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }

    /// sysmon: queues a published stop (STOPPED -> QUEUED) and takes the
    /// P it detached. `None`: no stop to queue; `Some(NO_P)`: queued, no P.
    /// The caller then queues the proxy, and hands the P on.
    pub(crate) fn queue(&self) -> Option<usize> {
        self.state
            .compare_exchange(
                STOP_STOPPED,
                STOP_QUEUED,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .ok()?;
        // If the handler withdraws meanwhile, this swap and its own give
        // the P to one of us.
        Some(self.stop_p.swap(NO_P, Ordering::AcqRel))
    }

    /// Whoever dequeued the proxy: claims the stop (QUEUED -> HANDED); if
    /// true, the caller must post a P to the M's mailbox and wake it. A
    /// stale proxy (the stop withdrawn or already served) claims nothing.
    pub(crate) fn claim(&self) -> bool {
        self.state
            .compare_exchange(
                STOP_QUEUED,
                STOP_HANDED,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// The claimer had no P to give after all: puts the stop back as it
    /// was (the caller queues the proxy again).
    pub(crate) fn unclaim(&self) {
        self.state.store(STOP_QUEUED, Ordering::Release);
    }
}

#[cfg(all(loom, test))]
mod loom_models {
    use super::*;
    use crate::loom::atomic::AtomicBool;
    use crate::loom::{model_bounded, mutant_test, time};
    use loom::sync::Arc;
    use loom::thread;

    const WAIT: Duration = Duration::from_millis(50);

    /// One M's stop words, and its proxy's place on a run queue.
    struct M {
        state: AtomicU8,
        stop_p: AtomicUsize,
        nextp: AtomicUsize,
        note: Note,
        proxy_queued: AtomicBool,
    }

    impl M {
        fn stop(&self) -> Stop<'_> {
            Stop {
                state: &self.state,
                stop_p: &self.stop_p,
                nextp: &self.nextp,
                note: &self.note,
            }
        }
    }

    fn hog_gets_one_p() {
        model_bounded(3, || {
            let m = Arc::new(M {
                state: AtomicU8::new(STOP_NONE),
                stop_p: AtomicUsize::new(NO_P),
                nextp: AtomicUsize::new(NO_P),
                note: Note::default(),
                proxy_queued: AtomicBool::new(false),
            });
            // The handler detached P 0 and stopped.
            m.stop().publish(0);
            let m2 = m.clone();
            let sysmon = thread::spawn(move || {
                // `tend`: the P it takes is sysmon's to hand on.
                let took = m2.stop().queue();
                if took.is_some() {
                    m2.proxy_queued.store(true, Ordering::Release);
                }
                took == Some(0)
            });
            let m3 = m.clone();
            let dequeuer = thread::spawn(move || {
                // Time passes (the hog's wait may run out before sysmon
                // queues it, or after), then an M holding P 1 dequeues the
                // proxy if it is queued (`proxy`, `hand_p`).
                time::advance(WAIT);
                if m3.proxy_queued.load(Ordering::Acquire) && m3.stop().claim() {
                    mailbox::post(&m3.nextp, &AtomicBool::new(false), 1, false);
                    m3.note.wakeup();
                    false
                } else {
                    true // kept P 1
                }
            });
            let got = m.stop().await_p(WAIT);
            let sysmon_has_0 = sysmon.join().unwrap();
            let dequeuer_has_1 = dequeuer.join().unwrap();
            assert_eq!(m.nextp.load(Ordering::Relaxed), NO_P, "no P in the mailbox");
            assert_eq!(m.stop_p.load(Ordering::Relaxed), NO_P, "no P in stop_p");
            assert_eq!(m.state.load(Ordering::Relaxed), STOP_NONE);
            let owners0 = usize::from(sysmon_has_0) + usize::from(got == Some(0));
            let owners1 = usize::from(dequeuer_has_1) + usize::from(got == Some(1));
            assert_eq!((owners0, owners1), (1, 1), "each P has one owner");
        });
    }

    #[test]
    fn loom_stop_hog_gets_one_p() {
        hog_gets_one_p();
    }

    mutant_test!(
        loom_stop_hog_gets_one_p_mutant_handed,
        hog_gets_one_p,
        "stop_withdraw_handed",
        "no P in the mailbox"
    );

    mutant_test!(
        loom_stop_hog_gets_one_p_mutant_drops_p,
        hog_gets_one_p,
        "stop_withdraw_drops_p",
        "no P in stop_p"
    );
}
