//! P windows: how sysmon takes a P from under a running thread.
//!
//! `MShared::p` is the P an M holds. Besides the M itself, only sysmon
//! changes it, with a CAS from the P to `NO_P`, when the M's goroutine has
//! kept the P too long (inside `blocking`, or without a scheduling point).
//! The M's thread touches its P only inside a *window*: it sets `using`,
//! then (light barrier) checks that `p` is still its P. Sysmon, after its
//! CAS (heavy barrier), waits until `using` is clear before it hands the P
//! on. Either the thread sees its P gone, or sysmon sees it inside a window
//! and waits for it to leave (a Dekker pair on `using`/`p`, with the
//! asymmetric fences of `membarrier.rs`). The scheduler loop is one long
//! window, closed while a goroutine runs; the goroutine's own runtime calls
//! open short ones through [`current_p`]. The protocol's steps are
//! `pslot.rs`'s (loom-checked there).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::m::{mctx, MCtx, MShared, NO_P};
use super::p::{PToken, P};
use super::pslot;
use super::sched::Sched;

impl MShared {
    /// Sysmon's side of the window protocol: takes P `p` from this M if it
    /// still holds it, and waits until the M's thread is out of its window.
    /// `Some`: the P is now the caller's.
    pub(crate) fn take_p(&self, p: usize) -> Option<PToken> {
        pslot::take(&self.p, &self.using, p).then(|| PToken::claim(p))
    }
}

impl MCtx {
    /// Opens the scheduler's window after a goroutine ran: false if
    /// sysmon took the P meanwhile.
    pub(crate) fn reenter(&self) -> bool {
        pslot::open(&self.shared.p, &self.shared.using, &self.p).is_some()
    }

    /// Takes P `p` (from the idle list or a hand-off), in the scheduler
    /// loop (whose window is open while it holds a P).
    pub(crate) fn acquire(&self, p: PToken) {
        pslot::acquire(&self.shared.p, &self.shared.using, &self.p, p.into_slot());
    }

    /// Records P `p` as this M's (both views), without opening a window.
    pub(crate) fn hold(&self, p: PToken) {
        pslot::hold(&self.shared.p, &self.p, p.into_slot());
    }

    /// Gives up this M's P, returning it to place; `None` if sysmon took
    /// it first (then it is sysmon's to place, not ours). Either way the M
    /// holds no P and is out of any window afterwards.
    pub(crate) fn release(&self) -> Option<PToken> {
        let id = self.p.get();
        pslot::release(&self.shared.p, &self.shared.using, &self.p).then(|| PToken::claim(id))
    }
}

/// The P held by this thread's M, inside a window (see [`MShared`]); the
/// window closes when the guard drops. `None` if this thread is not an M
/// of `sched` holding a P. Never keep the guard across a park.
#[inline(never)] // a thread-local read: see `g::current`
pub(crate) fn current_p(sched: &Sched) -> Option<PWindow> {
    let m = mctx()?;
    if !std::ptr::eq(Arc::as_ptr(&m.sched), sched) {
        return None;
    }
    let sh = &*m.shared;
    if sh.using.load(Ordering::Relaxed) {
        // The scheduler loop's own window (timers, netpoll readiness).
        let id = m.p.get();
        if id == NO_P {
            return None;
        }
        // SAFETY: Ps live as long as their Sched, which outlives its Ms.
        let p = unsafe { &*(m.sched.p(id) as *const P) };
        return Some(PWindow { p, using: None });
    }
    if m.p.get() == NO_P {
        return None;
    }
    // Read our view of the P only inside the window: until it opened, a
    // stop for a hog (`preempt.rs`) may have replaced it.
    let id = pslot::open(&sh.p, &sh.using, &m.p)?;
    // SAFETY: Ps live as long as their Sched, which outlives its Ms.
    let p = unsafe { &*(m.sched.p(id) as *const P) };
    Some(PWindow {
        p,
        using: Some(&sh.using),
    })
}

/// A P borrowed inside a window; see [`current_p`].
pub(crate) struct PWindow {
    p: &'static P,
    using: Option<&'static AtomicBool>,
}

impl std::ops::Deref for PWindow {
    type Target = P;
    fn deref(&self) -> &P {
        self.p
    }
}

impl Drop for PWindow {
    #[inline]
    fn drop(&mut self) {
        if let Some(u) = self.using {
            pslot::close(u);
        }
    }
}
