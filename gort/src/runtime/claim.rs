//! A plain thread's side of `park.rs`'s `Waiter`: the claim state machine
//! WAITING -> CLAIMED -> WOKEN (or WAITING -> WOKEN in one step) on one
//! futex word, generation-tagged so a stale waiter wakes nothing.
//!
//! Factored out of `park.rs` so that the loom models run it: under
//! `cfg(loom)` its word is a loom atomic and the futex loom's emulation
//! (`crate::loom`), and `park_loom.rs` builds the models' waiter on it. A
//! goroutine's waiter (`sched.rs`'s `claim`/`ready_claimed`/`ready` on the
//! G's state word) follows the same transitions.

use std::time::Duration;

use super::futex;
use crate::loom::atomic::{AtomicU32, Ordering};
use crate::loom::time::Instant;

/// A futex word packing the park generation (bits 2..) with WAITING (0),
/// CLAIMED (1) or WOKEN (2).
#[derive(Debug, Default)]
pub(crate) struct ThreadParker {
    state: AtomicU32,
}

const T_CLAIMED: u32 = 1;
const T_WOKEN: u32 = 2;

impl ThreadParker {
    /// Starts a new park; only the owning thread calls this.
    pub(crate) fn prepare(&self) -> u32 {
        let gen = (self.state.load(Ordering::Relaxed) >> 2).wrapping_add(1) & (u32::MAX >> 2);
        self.state.store(gen << 2, Ordering::SeqCst);
        gen
    }

    /// Sleeps until woken for `gen`, or until `deadline`; true if woken.
    pub(crate) fn wait(&self, gen: u32, deadline: Option<Instant>) -> bool {
        let waiting = gen << 2;
        loop {
            let s = self.state.load(Ordering::Acquire);
            if s == waiting | T_WOKEN {
                return true;
            }
            let timeout: Option<Duration> = match deadline {
                // Claimed: the claimer is about to wake us; wait for it.
                Some(_) if s != waiting => None,
                Some(at) => match at.checked_duration_since(Instant::now()) {
                    Some(d) if !d.is_zero() => Some(d),
                    _ => {
                        // Time is up: claim ourselves so a late waker's
                        // claim fails; if one got there first, it wakes us.
                        if self
                            .state
                            .compare_exchange(
                                waiting,
                                waiting | T_CLAIMED,
                                Ordering::AcqRel,
                                Ordering::Acquire,
                            )
                            .is_ok()
                        {
                            return false;
                        }
                        continue;
                    }
                },
                None => None,
            };
            futex::wait(&self.state, s, timeout);
        }
    }

    /// WAITING -> CLAIMED for `gen`; false if stale or claimed already.
    pub(crate) fn claim(&self, gen: u32) -> bool {
        if crate::loom::mutant("claim_load_then_store") {
            // Broken on purpose (loom models only): two claimers can win.
            if self.state.load(Ordering::Acquire) != gen << 2 {
                return false;
            }
            self.state.store((gen << 2) | T_CLAIMED, Ordering::Release);
            return true;
        }
        self.state
            .compare_exchange(
                gen << 2,
                (gen << 2) | T_CLAIMED,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// CLAIMED -> WOKEN (the caller claimed `gen`).
    pub(crate) fn wake_claimed(&self, gen: u32) {
        self.state.store((gen << 2) | T_WOKEN, Ordering::Release);
        futex::wake(&self.state, 1);
    }

    /// WAITING -> WOKEN for `gen`; false if stale or claimed.
    pub(crate) fn wake(&self, gen: u32) -> bool {
        if self
            .state
            .compare_exchange(
                gen << 2,
                (gen << 2) | T_WOKEN,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            futex::wake(&self.state, 1);
            true
        } else {
            false
        }
    }

    /// Whether park `gen` has ended or been claimed.
    pub(crate) fn is_stale(&self, gen: u32) -> bool {
        self.state.load(Ordering::Relaxed) != gen << 2
    }
}
