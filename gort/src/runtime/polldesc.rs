//! A socket's poll descriptor (Go's `pollDesc`): the state machine between
//! the goroutine waiting for readiness and the netpoller delivering it
//! (`netpoll.rs` owns the epoll instance, the tokens and the free list).
//!
//! Per direction the descriptor records whether readiness arrived and at
//! most one parked waiter (the net layer serialises readers and writers,
//! as Go's `fdMutex` does), under the descriptor's lock:
//!
//! ```text
//!   waiter (on EAGAIN)                      poller (an epoll event)
//!   lock desc                               lock desc
//!   ready? consume it, retry the call       ready = true
//!   else record waiter, park;               take the waiter
//!        the park's after step unlocks      unlock, wake the waiter
//! ```
//!
//! The waiter's lock is released only after it is switched out (DESIGN.md
//! rule 1), so readiness that arrives between `EAGAIN` and the park is
//! either seen by the waiter (`ready`) or finds the waiter recorded: no
//! lost wake-up. Readiness is sticky until a waiter consumes it, as
//! edge-triggered epoll requires. A waiter that a deadline (or a
//! cancellation) ended takes itself back out. A sequence number, bumped on
//! every reuse of the descriptor, lets the poller drop an event meant for
//! a socket that has since closed.
//!
//! The lock, the waiter and the clock are `crate::loom`'s, so the loom
//! models below drive this code, each with a mutant twin.

use crate::loom::atomic::{AtomicUsize, Ordering};
use crate::loom::mutant;
use crate::loom::time::Instant;

use super::g::WaitReason;
use super::lock::Lock;
use super::park::{self, Waiter};

/// Which way an I/O call waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    Read,
    Write,
}

/// A socket's poll descriptor.
pub(crate) struct PollDesc {
    state: Lock<DescState>,
}

#[derive(Default)]
struct DescState {
    /// Bumped each time the descriptor is reused.
    seq: u32,
    rd: Side,
    wr: Side,
}

#[derive(Default)]
struct Side {
    /// Readiness arrived and no waiter has consumed it yet.
    ready: bool,
    waiter: Option<Waiter>,
}

impl DescState {
    fn side(&mut self, dir: Dir) -> &mut Side {
        match dir {
            Dir::Read => &mut self.rd,
            Dir::Write => &mut self.wr,
        }
    }
}

impl PollDesc {
    pub(crate) fn new() -> PollDesc {
        PollDesc {
            state: Lock::new(DescState::default()),
        }
    }

    /// Takes the descriptor for a new socket: a new sequence number (the
    /// registration's tag), no readiness, no waiter.
    pub(crate) fn reuse(&self) -> u32 {
        let mut st = self.state.lock();
        st.seq = st.seq.wrapping_add(1);
        st.rd = Side::default();
        st.wr = Side::default();
        st.seq
    }

    /// Retires the descriptor (its socket closed): bumps its sequence, so
    /// late events are dropped.
    pub(crate) fn retire(&self) {
        let mut st = self.state.lock();
        st.seq = st.seq.wrapping_add(1);
        debug_assert!(st.rd.waiter.is_none() && st.wr.waiter.is_none());
        st.rd = Side::default();
        st.wr = Side::default();
    }

    /// Readiness for the registration tagged `tag` arrived: mark the sides
    /// ready and collect their waiters into `woken` (each one taken out of
    /// the `waiters` count).
    pub(crate) fn notify(
        &self,
        tag: u16,
        read: bool,
        write: bool,
        waiters: &AtomicUsize,
        woken: &mut Vec<Waiter>,
    ) {
        let mut st = self.state.lock();
        if st.seq as u16 != tag && !mutant("netpoll_stale_event") {
            return; // the socket closed and the descriptor moved on
        }
        let st = &mut *st;
        for (hit, side) in [(read, &mut st.rd), (write, &mut st.wr)] {
            if hit {
                side.ready = true;
                if let Some(w) = side.waiter.take() {
                    waiters.fetch_sub(1, Ordering::SeqCst);
                    woken.push(w);
                }
            }
        }
    }

    /// Waits until the socket of registration `seq` may be ready for
    /// `dir`; false if `deadline` passed first. A recorded waiter counts in
    /// `waiters`; `foreign(waiter)` says whether nobody of the netpoller's
    /// runtime looks for work on the waiter's behalf, in which case `kick`
    /// runs once it is switched out (to make sure someone polls).
    #[track_caller]
    pub(crate) fn wait(
        &self,
        seq: u32,
        dir: Dir,
        deadline: Option<Instant>,
        waiters: &AtomicUsize,
        foreign: impl Fn(&Waiter) -> bool,
        kick: impl Fn(),
    ) -> bool {
        let kick = &kick;
        loop {
            let mut st = self.state.lock();
            debug_assert_eq!(st.seq, seq);
            let side = st.side(dir);
            if side.ready && !mutant("netpoll_ignore_ready") {
                side.ready = false;
                return true;
            }
            if deadline.is_some_and(|at| Instant::now() >= at) {
                return false;
            }
            assert!(
                side.waiter.is_none(),
                "gort: two waiters on one socket direction (the net layer serialises them)"
            );
            let parking = park::prepare();
            let me = parking.waiter().clone();
            side.waiter = Some(me.clone());
            waiters.fetch_add(1, Ordering::SeqCst);
            let foreign = foreign(&me);
            // On unwind (a cancelled goroutine) or a timeout, take our
            // waiter back out of the descriptor.
            let cleanup = Unregister {
                desc: self,
                waiters,
                dir,
                me,
            };
            parking.park(WaitReason::IoWait, deadline, move || {
                drop(st);
                if foreign {
                    kick();
                }
            });
            drop(cleanup);
        }
    }
}

struct Unregister<'a> {
    desc: &'a PollDesc,
    waiters: &'a AtomicUsize,
    dir: Dir,
    me: Waiter,
}

impl Drop for Unregister<'_> {
    fn drop(&mut self) {
        let mut st = self.desc.state.lock();
        let side = st.side(self.dir);
        if side.waiter.as_ref().is_some_and(|w| w.same(&self.me))
            && !mutant("netpoll_no_unregister")
        {
            side.waiter = None;
            self.waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// loom models of the real descriptor: the waiter and the poller (and the
/// clock) are `loom::thread`s, the waiter parked by the loom-friendly
/// waiter (`runtime/park_loom.rs` over `claim.rs`'s `ThreadParker`), the
/// deadline a timed park on the fake clock. loom reports a deadlock if the
/// waiter can stay parked with the edge delivered (a lost wake-up).
#[cfg(all(test, loom))]
mod loom_models {
    use std::time::Duration;

    use loom::sync::Arc;
    use loom::thread;

    use super::{Dir, PollDesc};
    use crate::loom::atomic::{AtomicUsize, Ordering};
    use crate::loom::time::{self, Instant};
    use crate::loom::{model, model_bounded, mutant_test};

    struct Desc {
        desc: PollDesc,
        waiters: AtomicUsize,
        seq: u32,
    }

    fn desc() -> Arc<Desc> {
        let desc = PollDesc::new();
        let seq = desc.reuse();
        Arc::new(Desc {
            desc,
            waiters: AtomicUsize::new(0),
            seq,
        })
    }

    impl Desc {
        /// `Registration::wait` (for a waiter of the netpoller's runtime).
        #[track_caller]
        fn wait(&self, deadline: Option<Instant>) -> bool {
            self.desc.wait(
                self.seq,
                Dir::Read,
                deadline,
                &self.waiters,
                |_| false,
                || {},
            )
        }

        /// An epoll event for registration `tag`, dispatched as
        /// `Netpoll::poll_locked` does.
        fn notify(&self, tag: u32) {
            let mut woken = Vec::new();
            self.desc
                .notify(tag as u16, true, false, &self.waiters, &mut woken);
            for w in woken {
                w.wake_fifo();
            }
        }

        /// No readiness is left over (a wait that has already timed out
        /// returns at once).
        fn no_readiness_left(&self) -> bool {
            !self.wait(Some(Instant::now()))
        }
    }

    /// An edge races a goroutine that got EAGAIN: the wait returns, having
    /// consumed the edge, and leaves no waiter behind.
    fn edge_vs_wait() {
        model(|| {
            let d = desc();
            let d2 = d.clone();
            let poller = thread::spawn(move || d2.notify(d2.seq));
            assert!(d.wait(None));
            poller.join().unwrap();
            assert_eq!(d.waiters.load(Ordering::SeqCst), 0, "no waiter left");
            assert!(d.no_readiness_left(), "the one edge was consumed once");
        });
    }

    #[test]
    fn loom_netpoll_edge_vs_wait() {
        edge_vs_wait();
    }

    // The waiter ignores readiness that arrived before it locked: it parks
    // after the edge, and nobody wakes it.
    mutant_test!(
        loom_netpoll_edge_vs_wait_mutant,
        edge_vs_wait,
        "netpoll_ignore_ready",
        "deadlock"
    );

    /// The same race with a deadline: time passes (the clock moves past
    /// the deadline) while the edge arrives. A wait that timed out leaves
    /// no waiter behind, so the next wait (without a deadline) gets the
    /// edge, whether it came before or comes after.
    fn edge_vs_deadline() {
        model_bounded(2, || {
            let d = desc();
            let d2 = d.clone();
            let poller = thread::spawn(move || d2.notify(d2.seq));
            let clock = thread::spawn(|| time::advance(Duration::from_millis(1)));
            if !d.wait(Some(Instant::now() + Duration::from_millis(1))) {
                assert!(d.wait(None), "the edge ends the next wait");
            }
            poller.join().unwrap();
            clock.join().unwrap();
            assert_eq!(d.waiters.load(Ordering::SeqCst), 0, "no waiter left");
            assert!(d.no_readiness_left(), "the one edge was consumed once");
        });
    }

    #[test]
    fn loom_netpoll_edge_vs_deadline() {
        edge_vs_deadline();
    }

    // A timed-out waiter leaves itself recorded in the descriptor: the
    // next wait finds a second waiter on the direction.
    mutant_test!(
        loom_netpoll_edge_vs_deadline_mutant,
        edge_vs_deadline,
        "netpoll_no_unregister",
        "two waiters on one socket direction"
    );

    /// An event collected for a socket that then closed races the
    /// descriptor's reuse for a new socket: the new registration never
    /// sees the old socket's readiness.
    fn stale_event_vs_reuse() {
        model(|| {
            let d = desc();
            let old = d.seq;
            let d2 = d.clone();
            let poller = thread::spawn(move || d2.notify(old));
            d.desc.retire();
            let seq = d.desc.reuse();
            assert!(
                !d.desc.wait(
                    seq,
                    Dir::Read,
                    Some(Instant::now()),
                    &d.waiters,
                    |_| false,
                    || {}
                ),
                "a stale event made the new socket ready"
            );
            poller.join().unwrap();
        });
    }

    #[test]
    fn loom_netpoll_stale_event_vs_reuse() {
        stale_event_vs_reuse();
    }

    // The poller ignores the registration's tag.
    mutant_test!(
        loom_netpoll_stale_event_vs_reuse_mutant,
        stale_event_vs_reuse,
        "netpoll_stale_event",
        "a stale event made the new socket ready"
    );
}
