//! An M's P slot: the state machine of the P window protocol
//! (`window.rs` explains the protocol; this is its atomic core).
//!
//! An M's P is in two words: `p` (the P the M holds, or `NO_P`; the M
//! stores it, sysmon CASes it away) and `using` (the M's thread is inside
//! a window and may touch the P's state), plus the thread's own view of
//! its P (a `Cell`, which the thread's signal handler may change while no
//! window is open). The functions below are the protocol's every step,
//! over those three; `window.rs` calls them with an `MShared`'s words and
//! an `MCtx`'s view, and the loom model at the bottom drives them with
//! loom's atomics (the barriers are `membarrier.rs`'s, SeqCst fences under
//! loom; see there why that stand-in is sound).
//!
//! Model `pslot_window_vs_sysmon`: the owner's thread touches its P in the
//! scheduler's window, closes it (a goroutine runs), reopens it, and
//! releases the P, while sysmon takes the P. The P's owner-only state is
//! a loom `UnsafeCell`, so loom reports any access by both at once; at the
//! end exactly one side owns the P (sysmon took it, or the release
//! succeeded). Its twin drops the window's light barrier
//! (`window_no_light_fence`): the owner's read of `p` may then miss
//! sysmon's CAS while sysmon misses `using`, and both touch the P.

use std::cell::Cell;

use super::membarrier;
use crate::loom::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::loom::mutant;

/// No P (an M's `p` or mailbox is empty).
pub(crate) const NO_P: usize = usize::MAX;

/// Sysmon's side: takes P `id` from the slot if the M still holds it,
/// then waits until the M's thread is out of its window. True if the P is
/// now the caller's.
pub(crate) fn take(p: &AtomicUsize, using: &AtomicBool, id: usize) -> bool {
    if p.compare_exchange(id, NO_P, Ordering::SeqCst, Ordering::Relaxed)
        .is_err()
    {
        return false;
    }
    membarrier::heavy();
    while using.load(Ordering::Acquire) {
        crate::loom::thread::yield_now();
    }
    true
}

/// The owner's side: opens a window and reads the thread's view of its P
/// inside it. `Some(id)`: the P is still this M's, the window stays open.
/// `None`: no P (the window is closed again), or sysmon took it (then the
/// view is forgotten too, see [`lost`]).
pub(crate) fn open(p: &AtomicUsize, using: &AtomicBool, view: &Cell<usize>) -> Option<usize> {
    // Open the window before reading our view of the P: a stop for a hog
    // (`preempt.rs`) may replace that view until the window is open,
    // never after.
    using.store(true, Ordering::Relaxed);
    if !mutant("window_no_light_fence") {
        membarrier::light();
    }
    let id = view.get();
    if id == NO_P {
        // Lost while the goroutine ran (and it noticed).
        close(using);
        return None;
    }
    if p.load(Ordering::Relaxed) != id {
        lost(using, view);
        return None;
    }
    Some(id)
}

/// Closes the window (sysmon may be waiting for that).
#[inline]
pub(crate) fn close(using: &AtomicBool) {
    using.store(false, Ordering::Release);
}

/// Sysmon took our P: forget it, and leave the window so sysmon (which
/// waits for that) can hand the P on.
pub(crate) fn lost(using: &AtomicBool, view: &Cell<usize>) {
    view.set(NO_P);
    close(using);
}

/// Takes P `id` (from the idle list or a hand-off) with the window open
/// (the scheduler loop's, which is open while it holds a P).
pub(crate) fn acquire(p: &AtomicUsize, using: &AtomicBool, view: &Cell<usize>, id: usize) {
    using.store(true, Ordering::Relaxed);
    hold(p, view, id);
}

/// Records P `id` as this M's (both views), without opening a window.
pub(crate) fn hold(p: &AtomicUsize, view: &Cell<usize>, id: usize) {
    view.set(id);
    p.store(id, Ordering::SeqCst);
}

/// Gives up the M's P; false if sysmon took it first (then it is
/// sysmon's to place, not ours). Either way the M holds no P and is out
/// of any window afterwards.
pub(crate) fn release(p: &AtomicUsize, using: &AtomicBool, view: &Cell<usize>) -> bool {
    let id = view.replace(NO_P);
    let ok = id != NO_P
        && p.compare_exchange(id, NO_P, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok();
    close(using);
    ok
}

#[cfg(all(loom, test))]
mod loom_models {
    use super::*;
    use crate::loom::cell::UnsafeCell;
    use crate::loom::{model, mutant_test};
    use loom::sync::Arc;
    use loom::thread;

    /// An M's slot words and its P's owner-only state.
    struct Slot {
        p: AtomicUsize,
        using: AtomicBool,
        local: UnsafeCell<u32>,
    }

    fn touch(s: &Slot, by: u32) {
        // SAFETY: loom checks exactly this: that no one else touches the
        // cell now (a violation fails the model, not UB).
        s.local.with_mut(|v| unsafe { *v += by });
    }

    fn window_vs_sysmon() {
        model(|| {
            // The M holds P 0 in its scheduler window (`mstart`'s acquire).
            let s = Arc::new(Slot {
                p: AtomicUsize::new(NO_P),
                using: AtomicBool::new(false),
                local: UnsafeCell::new(0),
            });
            let view = Cell::new(NO_P);
            acquire(&s.p, &s.using, &view, 0);
            let s2 = s.clone();
            let sysmon = thread::spawn(move || {
                let took = take(&s2.p, &s2.using, 0);
                if took {
                    // The P is sysmon's now (`handoffp`).
                    touch(&s2, 10);
                }
                took
            });
            touch(&s, 1);
            // A goroutine runs: the window closes (`execute`), then its
            // runtime call opens a short one (`current_p`).
            close(&s.using);
            if open(&s.p, &s.using, &view).is_some() {
                touch(&s, 1);
                close(&s.using);
            }
            // Back in the scheduler (`reenter`), which then gives the P up.
            if open(&s.p, &s.using, &view).is_some() {
                touch(&s, 1);
            }
            let released = release(&s.p, &s.using, &view);
            let took = sysmon.join().unwrap();
            assert!(took != released, "exactly one side owns the P");
            assert_eq!(view.get(), NO_P);
            // SAFETY: both threads are done (joined).
            let v = s.local.with(|v| unsafe { *v });
            assert_eq!(took, v >= 10);
        });
    }

    #[test]
    fn loom_pslot_window_vs_sysmon() {
        window_vs_sysmon();
    }

    mutant_test!(
        loom_pslot_window_vs_sysmon_mutant,
        window_vs_sysmon,
        "window_no_light_fence",
        "Causality violation"
    );
}
