//! P: a processor, the right to run goroutines.
//!
//! There are `procs` Ps (Go's GOMAXPROCS); an M must hold one to run Go
//! code. A P carries everything that makes the common case lock-free: its
//! run queue (a 256-slot ring plus `runnext`, see `runq.rs`), its timers,
//! and a cache of finished goroutines with their stacks, so that `go` in
//! steady state takes a G and a stack without a lock or a syscall.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};

use super::group::Counts;

use super::g::GRef;
use super::runq::RunQueue;
use super::timers::Timers;

/// P status: on the idle list.
pub(crate) const P_IDLE: u8 = 0;
/// P status: held by an M.
pub(crate) const P_RUNNING: u8 = 1;
/// P status: beyond `procs` after `set_procs` shrank it; owned by no one.
pub(crate) const P_RETIRED: u8 = 2;

/// Ownership of one P, as a value (DESIGN.md rule 8).
///
/// At any moment a P is held by exactly one of: an M (its window word,
/// `MShared::p`), the idle list, one M's mailbox (`nextp`) or a stopped
/// hog's slot (`stop_p`). Moving between them moves a `PToken`: it is
/// neither `Copy` nor `Clone`, so code that hands a P on cannot keep using
/// it, and dropping one is a lost P, which aborts naming it. The slots are
/// atomics holding ids: [`PToken::into_slot`] moves ownership into one,
/// and [`PToken::claim`] takes it back out after the operation that won it
/// (a pop off the idle list, a successful CAS or swap on the slot).
#[must_use = "dropping a P token loses the P"]
pub(crate) struct PToken {
    id: usize,
}

impl PToken {
    /// Ownership of P `id`, just won from the slot that held it.
    #[inline]
    pub(crate) fn claim(id: usize) -> PToken {
        debug_assert!(id != usize::MAX, "claimed the empty slot");
        PToken { id }
    }

    /// Which P this is.
    #[inline]
    pub(crate) fn id(&self) -> usize {
        self.id
    }

    /// Moves ownership into a slot: returns the id to store there.
    #[inline]
    pub(crate) fn into_slot(self) -> usize {
        let id = self.id;
        std::mem::forget(self);
        id
    }
}

impl Drop for PToken {
    fn drop(&mut self) {
        super::throw::throw("a P token was dropped: the P is lost");
    }
}

/// Finished goroutines kept per P before half move to the runtime's list.
pub(crate) const GFREE_MAX: usize = 64;
/// Finished goroutines taken from the runtime's list at once.
pub(crate) const GFREE_REFILL: usize = 32;

pub(crate) struct P {
    pub(crate) id: usize,
    pub(crate) runq: RunQueue<super::g::G>,
    pub(crate) timers: Timers,
    pub(crate) status: AtomicU8,
    /// Goroutines started on this P, not counting `runnext` hand-offs,
    /// which inherit the time slice (Go's `schedtick`); sysmon watches it.
    pub(crate) schedtick: AtomicU32,
    /// sysmon saw one slice run 10 ms: the next `runnext` hand-off goes to
    /// the back of the queue instead (rule 7: a ping-ponging pair shares
    /// one slice).
    pub(crate) slice_expired: AtomicBool,
    /// sysmon asks the holder to give back deep pages of the stacks cached
    /// here (see `spawn::scavenge`).
    pub(crate) scavenge: AtomicBool,
    /// Goroutines spawned on this P (holder only writes; `debug::stats`).
    pub(crate) spawned: AtomicU64,
    /// Goroutines spawned minus goroutines exited on this P, by group
    /// (see `group.rs`).
    pub(crate) counts: Counts,
    local: UnsafeCell<Local>,
}

/// State only the M holding the P touches.
#[derive(Default)]
pub(crate) struct Local {
    /// Finished goroutines with default-size stacks.
    pub(crate) gfree: Vec<GRef>,
    pub(crate) rng: u64,
    /// Goroutine ids reserved from the global counter: `next..end`.
    pub(crate) goid_next: u64,
    pub(crate) goid_end: u64,
}

// SAFETY: `local` is only accessed by the M that holds the P (P ownership
// moves between Ms under the scheduler lock or with release/acquire on
// `nextp`); everything else is atomic or internally locked.
unsafe impl Sync for P {}

impl P {
    pub(crate) fn new(id: usize) -> P {
        P {
            id,
            runq: RunQueue::new(),
            timers: Timers::default(),
            status: AtomicU8::new(P_IDLE),
            schedtick: AtomicU32::new(0),
            slice_expired: AtomicBool::new(false),
            scavenge: AtomicBool::new(false),
            spawned: AtomicU64::new(0),
            counts: Counts::default(),
            local: UnsafeCell::new(Local {
                rng: 0x9E37_79B9_7F4A_7C15 ^ (id as u64 + 1).wrapping_mul(0xD6E8_FEB8_6659_FD93),
                ..Local::default()
            }),
        }
    }

    /// # Safety
    /// The caller must be the M holding this P, and must not keep two of
    /// these references alive at once.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn local(&self) -> &mut Local {
        // SAFETY: guaranteed by the caller.
        unsafe { &mut *self.local.get() }
    }

    pub(crate) fn status(&self) -> u8 {
        self.status.load(Ordering::Acquire)
    }
}

impl Local {
    /// xorshift64*: the random victim order for stealing.
    pub(crate) fn rand(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}
