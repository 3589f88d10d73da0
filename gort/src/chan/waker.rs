//! Wait queues shared by every channel flavour (Go's `waitq` of `sudog`s).
//!
//! A blocked operation is an [`Entry`] in its channel's senders or
//! receivers [`Queue`]: the parked caller's [`Waiter`], a pointer to the
//! operation's [`Cx`] on the caller's stack, the case number, and a pointer
//! to the case's value slot (`*mut Option<T>` on the caller's stack: the
//! value to send, or the place to receive into; null for a readiness-only
//! case of a dynamic `Select`).
//!
//! A counterpart takes an entry under the channel's [`WaitLock`] and
//! *claims* its waiter ([`Waiter::claim`]); from then until
//! [`Entry::finish`] wakes it, the parked frame is the counterpart's to
//! write: it moves the value into or out of the slot (Go's direct hand-off,
//! `send`/`recv` on a `sudog`) and records which case fired in the `Cx`. A
//! select registers one entry per case, all sharing one waiter, so exactly
//! one claim succeeds; the others find a stale waiter and drop the entry.
//! The caller removes its leftover entries when it wakes.
//!
//! No lost wake-up (DESIGN.md rule 1): registration happens with the
//! channel's `WaitLock` held, and the lock is released only by the park's
//! `after` step, once the waiter can be claimed. For lock-free flavours the
//! `*_waiting` flags, stored SeqCst under the lock, and the flavour's
//! SeqCst buffer operations form a Dekker pair: a sender that buffered a
//! value then sees the flag, or the registering receiver's re-check (done
//! before it parks) sees the value.

use crate::loom::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::collections::VecDeque;

use crate::runtime::lock::{Lock, LockGuard};
use crate::runtime::park::Waiter;

/// The blocked operation's context on the caller's stack: which case fired.
#[derive(Debug, Default)]
pub(crate) struct Cx {
    selected: AtomicUsize,
}

/// `Cx::selected` before any case fired (woken by a deadline, or not yet).
pub(crate) const NONE: usize = usize::MAX;

impl Cx {
    pub(crate) fn new() -> Cx {
        Cx {
            selected: AtomicUsize::new(NONE),
        }
    }

    /// The case a counterpart chose, or [`NONE`]. Read after waking.
    pub(crate) fn selected(&self) -> usize {
        self.selected.load(Ordering::Acquire)
    }
}

/// One blocked operation in a wait queue.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) waiter: Waiter,
    pub(crate) cx: *const Cx,
    pub(crate) case: usize,
    /// `*mut Option<T>` for the channel's `T`, or null (readiness only).
    pub(crate) slot: *mut (),
}

// SAFETY: the raw pointers point into a parked caller's frame and are
// dereferenced only by the counterpart that claimed the entry's waiter,
// which owns that frame until it wakes the waiter (module docs).
unsafe impl Send for Entry {}

impl Entry {
    /// Records this entry's case as the one that fired and wakes the waiter.
    ///
    /// # Safety
    /// The caller claimed `self.waiter` and has not woken it.
    pub(crate) unsafe fn finish(self) {
        // SAFETY: the claim keeps the waiter parked, so its frame (and the
        // `Cx` in it) is alive until `wake_claimed` below.
        unsafe { (*self.cx).selected.store(self.case, Ordering::Release) };
        self.waiter.wake_claimed();
    }

    /// The slot as `*mut Option<T>`.
    ///
    /// # Safety
    /// `T` is the entry's channel's element type.
    pub(crate) unsafe fn slot<T>(&self) -> *mut Option<T> {
        self.slot.cast()
    }
}

/// Blocked senders or receivers of one channel, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    entries: VecDeque<Entry>,
    /// Counts changes (see `WaitLock::version`).
    changes: u64,
}

impl Queue {
    pub(crate) fn push(&mut self, e: Entry) {
        self.changes += 1;
        self.entries.push_back(e);
    }

    fn take(&mut self, i: usize) -> Entry {
        self.changes += 1;
        if i == 0 {
            self.entries.pop_front()
        } else {
            self.entries.remove(i)
        }
        .expect("index in range")
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes the entries of `cx` (a woken or aborting select's leftovers).
    pub(crate) fn remove(&mut self, cx: *const Cx) {
        let before = self.entries.len();
        self.entries.retain(|e| e.cx != cx);
        if self.entries.len() != before {
            self.changes += 1;
        }
    }

    /// Takes and claims the oldest live entry that carries a slot (skipping
    /// `me`'s own: a select may wait on both ends of one channel). Dead
    /// entries met on the way are dropped.
    pub(crate) fn claim_transfer(&mut self, me: *const Cx) -> Option<Entry> {
        let mut i = 0;
        while i < self.entries.len() {
            let e = &self.entries[i];
            if e.cx == me || e.slot.is_null() {
                i += 1;
                continue;
            }
            let e = self.take(i);
            if e.waiter.claim() {
                return Some(e);
            }
        }
        None
    }

    /// Wakes the oldest live readiness-only entry (a dynamic `Select` that
    /// waits for this operation to become possible); true if one was woken.
    pub(crate) fn notify_ready(&mut self, me: *const Cx) -> bool {
        let mut i = 0;
        while i < self.entries.len() {
            let e = &self.entries[i];
            if e.cx == me || !e.slot.is_null() {
                i += 1;
                continue;
            }
            let e = self.take(i);
            if e.waiter.claim() {
                // SAFETY: claimed just above.
                unsafe { e.finish() };
                return true;
            }
        }
        false
    }

    /// Wakes the oldest live entry of any kind without transferring
    /// anything: it retries its operation (a buffered channel's "space or
    /// data appeared"). True if one was woken.
    pub(crate) fn notify_one(&mut self, me: *const Cx) -> bool {
        let mut i = 0;
        while i < self.entries.len() {
            if self.entries[i].cx == me {
                i += 1;
                continue;
            }
            let e = self.take(i);
            if e.waiter.claim() {
                // SAFETY: claimed just above.
                unsafe { e.finish() };
                return true;
            }
        }
        false
    }

    /// Wakes every entry to retry (the channel closed).
    pub(crate) fn notify_all(&mut self) {
        self.changes += 1;
        for e in self.entries.drain(..) {
            if e.waiter.claim() {
                // SAFETY: claimed just above.
                unsafe { e.finish() };
            }
        }
    }

    /// Whether a live entry other than `me`'s waits here.
    pub(crate) fn has_live(&self, me: *const Cx) -> bool {
        self.entries
            .iter()
            .any(|e| e.cx != me && !e.waiter.is_stale())
    }
}

/// Both wait queues of a channel.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    pub(crate) senders: Queue,
    pub(crate) receivers: Queue,
    /// Other state changes made under the lock (a rendezvous close).
    changes: u64,
}

impl Waiters {
    /// Removes `cx`'s entries from both queues.
    pub(crate) fn remove(&mut self, cx: *const Cx) {
        self.senders.remove(cx);
        self.receivers.remove(cx);
    }

    /// Records a change of state kept under the lock.
    pub(crate) fn bump(&mut self) {
        self.changes += 1;
    }

    fn version(&self) -> u64 {
        self.senders.changes + self.receivers.changes + self.changes
    }
}

/// A channel's wait queues behind their lock, with lock-free hints of
/// whether anyone waits (so a buffered operation skips the lock when no
/// one does).
pub(crate) struct WaitLock {
    lock: Lock<Waiters>,
    senders_waiting: AtomicBool,
    receivers_waiting: AtomicBool,
    /// Counts changes to the queues (and to state kept under the lock),
    /// published when a guard is released: a select with `default` reads
    /// it before and after polling to know that nothing changed meanwhile.
    version: AtomicU64,
    /// Whether the flavour reads the hints (the rendezvous flavour does
    /// everything under the lock and skips their upkeep).
    hints: bool,
    /// Under loom, the lock order (addresses differ between executions,
    /// and loom needs every execution to replay the same choices).
    #[cfg(loom)]
    id: usize,
}

/// Held [`WaitLock`]: updates the hints when released.
pub(crate) struct WaitGuard<'a> {
    owner: &'a WaitLock,
    guard: LockGuard<'a, Waiters>,
}

impl WaitLock {
    /// Wait queues; `hints`: keep the lock-free "anyone waiting" hints.
    pub(crate) fn new(hints: bool) -> WaitLock {
        let wl = WaitLock {
            lock: Lock::new(Waiters::default()),
            senders_waiting: AtomicBool::new(false),
            receivers_waiting: AtomicBool::new(false),
            version: AtomicU64::new(0),
            hints,
            #[cfg(loom)]
            id: crate::loom::next_id(),
        };
        #[cfg(loom)]
        {
            // loom regards an atomic's initial value as a Release store,
            // which a later SeqCst load may still read after another
            // thread's SeqCst store (loom README, "Unsupported features").
            // In C11 it cannot (the initial value happens-before the first
            // SeqCst store, which precedes the load in S): storing it once
            // more with SeqCst, before other threads start, removes loom's
            // false alarm and adds nothing the real code lacks.
            wl.senders_waiting.store(false, Ordering::SeqCst);
            wl.receivers_waiting.store(false, Ordering::SeqCst);
        }
        wl
    }

    pub(crate) fn lock(&self) -> WaitGuard<'_> {
        WaitGuard {
            owner: self,
            guard: self.lock.lock(),
        }
    }

    /// Where this lock comes in the order a select takes several in: its
    /// address (a fixed creation order under loom).
    #[inline]
    pub(crate) fn order(&self) -> usize {
        #[cfg(loom)]
        return self.id;
        #[cfg(not(loom))]
        return self as *const WaitLock as usize;
    }

    /// The published change count (see the field).
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }

    /// Whether a sender may be waiting (SeqCst: see the module docs).
    #[inline]
    pub(crate) fn senders_waiting(&self) -> bool {
        self.senders_waiting.load(Ordering::SeqCst)
    }

    /// Whether a receiver may be waiting (SeqCst: see the module docs).
    #[inline]
    pub(crate) fn receivers_waiting(&self) -> bool {
        self.receivers_waiting.load(Ordering::SeqCst)
    }
}

impl WaitGuard<'_> {
    /// Wakes every waiter of both queues (the channel closed); they retry.
    pub(crate) fn notify_all(&mut self) {
        self.guard.senders.notify_all();
        self.guard.receivers.notify_all();
    }

    /// Publishes the queues' emptiness to the hints. Called after a
    /// registration, before the caller re-checks its channel's buffer.
    pub(crate) fn publish(&self) {
        let o = self.owner;
        let v = self.guard.version();
        if o.version.load(Ordering::Relaxed) != v {
            o.version.store(v, Ordering::SeqCst);
        }
        if !o.hints {
            return;
        }
        let s = !self.guard.senders.is_empty();
        let r = !self.guard.receivers.is_empty();
        if o.senders_waiting.load(Ordering::Relaxed) != s {
            o.senders_waiting.store(s, Ordering::SeqCst);
        }
        if o.receivers_waiting.load(Ordering::Relaxed) != r {
            o.receivers_waiting.store(r, Ordering::SeqCst);
        }
    }
}

impl std::ops::Deref for WaitGuard<'_> {
    type Target = Waiters;
    fn deref(&self) -> &Waiters {
        &self.guard
    }
}

impl std::ops::DerefMut for WaitGuard<'_> {
    fn deref_mut(&mut self) -> &mut Waiters {
        &mut self.guard
    }
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.publish();
    }
}
