//! The wait-queue entry every primitive in this module shares (Go's
//! `sudog` for `sync`).
//!
//! A blocked caller keeps a [`Slot`] on its own stack, takes the
//! primitive's queue lock, re-checks its condition, pushes an [`Entry`]
//! (its [`Waiter`] plus a pointer to the slot) and parks with `after` =
//! "release the queue lock" ([`park::prepare`] + [`Parking::park`]). The
//! lock is therefore held from the re-check until the caller is switched
//! out, so a waker, which must take the same lock to pop the entry, can
//! never claim the waiter early or miss it (DESIGN.md rule 1).
//!
//! A waker pops an entry under the lock and [`claim`](Entry::claim)s it.
//! A failed claim means the waiter is stale (it timed out, or its
//! goroutine was cancelled): the entry is dropped and the waker tries the
//! next one, so a hand-off is never lost on a waiter that went away.
//! Between a successful claim and [`Claimed::wake`] the waker owns the
//! parked frame and writes what it hands over (ownership of a lock,
//! permits, "notified") into the slot; the woken caller reads the slot to
//! tell a hand-off from a timeout or a cancellation.
//!
//! [`park::prepare`]: crate::runtime::park::prepare
//! [`Parking::park`]: crate::runtime::park::Parking::park

use crate::loom::atomic::{AtomicUsize, Ordering};

use crate::runtime::park::Waiter;

/// Nothing was handed over (yet).
pub(crate) const EMPTY: usize = 0;

/// A parked caller's hand-off cell, on the caller's stack.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    v: AtomicUsize,
}

impl Slot {
    crate::maybe_const_fn! {
        pub(crate) fn new() -> Slot {
            Slot {
                v: AtomicUsize::new(EMPTY),
            }
        }
    }

    /// What a waker handed over, or [`EMPTY`]. The caller reads it after
    /// its park returned (or while it unwinds from it): a waker writes the
    /// slot before it wakes the caller, and the wake-up orders the write
    /// before the caller runs again.
    #[inline]
    pub(crate) fn get(&self) -> usize {
        self.v.load(Ordering::Acquire)
    }
}

/// One parked caller in a wait queue.
#[derive(Debug)]
pub(crate) struct Entry {
    waiter: Waiter,
    slot: *const Slot,
    /// What the caller waits for (a semaphore's permit count); 0 otherwise.
    pub(crate) want: usize,
}

// SAFETY: `slot` points into a parked caller's frame and is dereferenced
// only by a waker that claimed `waiter`, which keeps that frame parked (and
// so alive) until `Claimed::wake`; the rest is `Send`.
unsafe impl Send for Entry {}

impl Entry {
    /// An entry for the caller's next park.
    ///
    /// # Safety
    /// `slot` must stay alive, at the same address, for as long as
    /// `waiter`'s park lasts (it lives in the frame that parks as
    /// `waiter`), and that park must not end before the entry is pushed to
    /// its queue and the queue's lock released by the park's `after` step.
    pub(crate) unsafe fn new(waiter: Waiter, slot: &Slot, want: usize) -> Entry {
        Entry { waiter, slot, want }
    }

    /// Whether the entry belongs to `waiter`'s park.
    pub(crate) fn is(&self, waiter: &Waiter) -> bool {
        self.waiter.same(waiter)
    }

    /// Claims the waiter and writes `v` (not [`EMPTY`]) into its slot; the
    /// caller then wakes it with [`Claimed::wake`], typically after
    /// releasing the queue lock. `None` if the waiter is stale.
    pub(crate) fn claim(self, v: usize) -> Option<Claimed> {
        debug_assert_ne!(v, EMPTY);
        if !self.waiter.claim() {
            return None;
        }
        // SAFETY: the claim succeeded, so the park this entry belongs to is
        // still in progress and cannot end until `Claimed::wake`: the frame
        // holding the slot is alive (see `Entry::new`).
        unsafe { (*self.slot).v.store(v, Ordering::Release) };
        Some(Claimed {
            waiter: self.waiter,
        })
    }
}

/// A claimed waiter whose slot is written: wake it.
#[must_use = "a claimed waiter must be woken"]
#[derive(Debug)]
pub(crate) struct Claimed {
    waiter: Waiter,
}

impl Claimed {
    pub(crate) fn wake(self) {
        self.waiter.wake_claimed();
    }
}

/// Removes `me`'s entry from `q` if it is still there (the caller timed
/// out or is unwinding); true if it was.
pub(crate) fn remove(q: &mut std::collections::VecDeque<Entry>, me: &Waiter) -> bool {
    match q.iter().position(|e| e.is(me)) {
        Some(i) => {
            q.remove(i);
            true
        }
        None => false,
    }
}
