//! loom models of the netpoller's poll descriptor and of the P window
//! protocol (`netpoll.rs`, `m.rs`).
//!
//! Included from `loom_models.rs`; run with `RUSTFLAGS="--cfg loom" cargo
//! test -p gort --lib --release --target-dir target/loom loom`. These still
//! restate the descriptor and window logic (a follow-up factors the poll
//! descriptor out of `netpoll.rs` so the model runs it), but wait through
//! the real loom-friendly waiter (`park_loom.rs` over `claim.rs`'s
//! `ThreadParker`).
//!
//! * `netpoll_*`: a goroutine that got `EAGAIN` waits on a descriptor
//!   (`Registration::wait`: lock; consume `ready` or record the waiter and
//!   park, the park's after step unlocking; on resume take the waiter back
//!   out if it is still recorded) while the poller delivers an edge
//!   (`PollDesc::notify`: lock; `ready = true`; take the waiter; unlock;
//!   wake it) and, in the second model, a deadline timer claims the same
//!   park. loom reports a deadlock if the waiter can stay parked with the
//!   edge delivered (a lost wake-up), and the assertions check that a
//!   timed-out wait leaves the readiness for the next call and no waiter
//!   behind.
//! * `p_window_*`: sysmon taking a P (`MShared::take_p`: CAS `p` to NO_P,
//!   barrier, wait while `using`) against the M's thread opening windows
//!   (`current_p`: set `using`, barrier, check `p`). Both barriers are
//!   SeqCst fences here (the fallback of `membarrier.rs`; the expedited
//!   membarrier gives the same ordering). The P's owner-only state is a loom
//!   `UnsafeCell`, so loom reports any access by both at once.
//!
//! Mutation checks (each run once broken, failed as stated, restored):
//! unlocking the descriptor before the park (not in its after step) makes
//! loom report a deadlock in `netpoll_edge_vs_wait`; dropping the fence in
//! the window (or in `take_p`) makes loom report concurrent access to the
//! P's state in `p_window_vs_sysmon`.

#![cfg(test)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

use crate::runtime::g::WaitReason;
use crate::runtime::park::{prepare, Waiter};

#[derive(Default)]
struct Desc {
    ready: bool,
    waiter: Option<Waiter>,
}

/// `Registration::wait` with the `Unregister` clean-up; true if it
/// consumed readiness, false if the deadline (the timer) ended it.
fn wait(desc: &Arc<Mutex<Desc>>, timer: Option<&Mutex<Option<Waiter>>>) -> bool {
    loop {
        let mut st = desc.lock().unwrap();
        if st.ready {
            st.ready = false;
            return true;
        }
        let parking = prepare();
        let w = parking.waiter().clone();
        st.waiter = Some(w.clone());
        if let Some(t) = timer {
            // `Parking::park` adds the deadline timer in the after step;
            // handing the waiter over first is equivalent (it cannot claim
            // before WAITING).
            *t.lock().unwrap() = Some(w.clone());
        }
        parking.park(WaitReason::IoWait, None, move || drop(st));
        let mut st = desc.lock().unwrap();
        if st.waiter.as_ref().is_some_and(|x| x.same(&w)) {
            // Not taken by the poller: the timer woke us.
            st.waiter = None;
            drop(st);
            if timer.is_some() {
                return false;
            }
        }
    }
}

/// `PollDesc::notify` + the wake in `poll_locked`.
fn notify(desc: &Mutex<Desc>) {
    let w = {
        let mut st = desc.lock().unwrap();
        st.ready = true;
        st.waiter.take()
    };
    if let Some(w) = w {
        w.wake();
    }
}

#[test]
fn netpoll_edge_vs_wait() {
    loom::model(|| {
        let desc = Arc::new(Mutex::new(Desc::default()));
        let d2 = desc.clone();
        let poller = thread::spawn(move || notify(&d2));
        assert!(wait(&desc, None));
        poller.join().unwrap();
        let st = desc.lock().unwrap();
        assert!(st.waiter.is_none());
        assert!(!st.ready, "the one edge was consumed once");
    });
}

#[test]
fn netpoll_edge_vs_deadline() {
    // Three threads: bounded preemptions, as the other three-party models.
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(|| {
        let desc = Arc::new(Mutex::new(Desc::default()));
        let timer: Arc<Mutex<Option<Waiter>>> = Arc::new(Mutex::new(None));
        let (d2, t2) = (desc.clone(), timer.clone());
        let poller = thread::spawn(move || notify(&d2));
        let fire = thread::spawn(move || {
            // The deadline timer: claims the park, then readies it.
            let w = t2.lock().unwrap().take();
            if let Some(w) = w {
                if w.claim() {
                    w.wake_claimed();
                }
            }
        });
        let consumed = wait(&desc, Some(&timer));
        poller.join().unwrap();
        fire.join().unwrap();
        let st = desc.lock().unwrap();
        assert!(st.waiter.is_none(), "no waiter left behind");
        // The edge is never lost: consumed by the wait, or still there.
        assert!(consumed != st.ready);
    });
}

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
