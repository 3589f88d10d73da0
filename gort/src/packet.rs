//! The join packet's state machine: the result slot, the joiner's waiter
//! slot and the state word that a goroutine and its `JoinHandle` share
//! (`go.rs` owns the allocation and frees it when told to).
//!
//! One state word says who has let go: the goroutine sets `COMPLETE` after
//! writing the result, the handle sets `WAITER` after storing its waiter
//! (parking unless `COMPLETE` was already set) or `DETACHED` when dropped
//! unjoined. Whichever side acts second is told to free the packet, so a
//! spawn and join cost one atomic RMW on each side. The atomics and cells
//! come from `crate::loom`, so the loom models below drive this very code
//! (DESIGN.md rule 1): a racy access to a slot is a causality violation, a
//! lost wake-up a deadlock, and each model has a mutant twin.

use crate::loom::atomic::{AtomicU8, Ordering};
use crate::loom::cell::UnsafeCell;
use crate::loom::mutant;
use crate::runtime::g::WaitReason;
use crate::runtime::park::{self, Waiter};

/// State bits.
const COMPLETE: u8 = 1;
const DETACHED: u8 = 2;
const WAITER: u8 = 4;

/// The reason a joiner parks with (loom's waiter ignores reasons, and its
/// stand-in for `g.rs` has no `Join`).
#[cfg(not(loom))]
const JOIN: WaitReason = WaitReason::Join;
#[cfg(loom)]
const JOIN: WaitReason = WaitReason::WaitGroup;

/// The shared part of a join packet.
pub(crate) struct Slot<T> {
    state: AtomicU8,
    result: UnsafeCell<Option<T>>,
    waiter: UnsafeCell<Option<Waiter>>,
}

/// What the goroutine must do after [`Slot::complete`].
pub(crate) enum Completed {
    /// The handle let go first: free the packet.
    Free,
    /// The handle may free the packet at any moment now: touch it no more,
    /// and wake the joiner, if one was parked.
    Wake(Option<Waiter>),
}

impl<T> Slot<T> {
    pub(crate) fn new() -> Slot<T> {
        Slot {
            state: AtomicU8::new(0),
            result: UnsafeCell::new(None),
            waiter: UnsafeCell::new(None),
        }
    }

    /// The goroutine's side: stores the result and lets go.
    ///
    /// # Safety
    /// Called at most once, by the goroutine's owner of the packet.
    pub(crate) unsafe fn complete(&self, r: T) -> Completed {
        // SAFETY: only the goroutine writes the result, once, before
        // publishing COMPLETE; the handle reads it only after seeing it.
        self.result.with_mut(|s| unsafe { *s = Some(r) });
        let prev = self.state.fetch_or(COMPLETE, Ordering::AcqRel);
        if prev & DETACHED != 0 && !mutant("packet_complete_ignores_detach") {
            // The handle let go before us.
            return Completed::Free;
        }
        Completed::Wake(if prev & WAITER != 0 {
            // SAFETY: WAITER (acquired) means the handle stored its waiter
            // and is parked until we wake it, so the slot is ours to take.
            self.waiter.with_mut(|s| unsafe { (*s).take() })
        } else {
            None
        })
    }

    /// Whether the goroutine has completed.
    pub(crate) fn is_finished(&self) -> bool {
        self.state.load(Ordering::Acquire) & COMPLETE != 0
    }

    /// The handle's side: waits for the result and takes it; the caller
    /// then frees the packet (the goroutine has let go).
    ///
    /// # Safety
    /// Called at most once, by the handle's owner of the packet, and never
    /// after [`Slot::detach`].
    #[track_caller]
    pub(crate) unsafe fn join(&self) -> T {
        while !self.is_finished() {
            park::park(JOIN, |w| {
                // SAFETY: the goroutine does not touch the waiter slot
                // until it sees WAITER, which we set only after the write.
                self.waiter.with_mut(|s| unsafe { *s = Some(w) });
                let prev = self.state.fetch_or(WAITER, Ordering::AcqRel);
                if prev & COMPLETE != 0 && !mutant("packet_no_recheck") {
                    // Completed meanwhile: it will not look at the slot.
                    // SAFETY: as above.
                    drop(self.waiter.with_mut(|s| unsafe { (*s).take() }));
                    return false;
                }
                true
            });
        }
        // SAFETY: COMPLETE was observed (acquire): the result is written
        // and the goroutine has let go.
        self.result
            .with_mut(|s| unsafe { (*s).take() })
            .expect("result present once done")
    }

    /// The handle let go unjoined (or the goroutine's owner without
    /// completing, which never happens); true if the caller must free the
    /// packet (the goroutine let go before).
    pub(crate) fn detach(&self) -> bool {
        self.state.fetch_or(DETACHED, Ordering::AcqRel) & COMPLETE != 0
    }

    /// The result, if nobody took it (the packet is being freed).
    pub(crate) fn take_mut(&mut self) -> Option<T> {
        // SAFETY: `&mut self`: nobody else can reach the slot.
        self.result.with_mut(|s| unsafe { (*s).take() })
    }
}

/// loom models of the real packet: each goroutine a `loom::thread`, the
/// joiner parked by the loom-friendly waiter (`runtime/park_loom.rs`).
/// "Freeing" counts, so the models check that exactly one side frees.
#[cfg(all(test, loom))]
mod loom_models {
    use loom::sync::Arc;
    use loom::thread;

    use super::{Completed, Slot};
    use crate::loom::atomic::{AtomicUsize, Ordering};
    use crate::loom::{model, mutant_test};

    struct Packet {
        slot: Slot<u32>,
        frees: AtomicUsize,
    }

    fn packet() -> Arc<Packet> {
        Arc::new(Packet {
            slot: Slot::new(),
            frees: AtomicUsize::new(0),
        })
    }

    /// The goroutine's side as `go.rs`'s `Owner::complete` drives it.
    fn complete(p: &Packet) {
        // SAFETY: the goroutine's side completes once.
        match unsafe { p.slot.complete(7) } {
            Completed::Free => {
                p.frees.fetch_add(1, Ordering::Relaxed);
            }
            Completed::Wake(w) => {
                if let Some(w) = w {
                    w.wake();
                }
            }
        }
    }

    /// A joiner races the completion: it gets the result, a parked joiner
    /// is woken, the joiner frees.
    fn join_vs_complete() {
        model(|| {
            let p = packet();
            let p2 = p.clone();
            let g = thread::spawn(move || complete(&p2));
            // SAFETY: the handle's side joins once.
            assert_eq!(unsafe { p.slot.join() }, 7);
            p.frees.fetch_add(1, Ordering::Relaxed);
            g.join().unwrap();
            assert_eq!(p.frees.load(Ordering::Relaxed), 1, "freed exactly once");
        });
    }

    #[test]
    fn loom_packet_join_vs_complete() {
        join_vs_complete();
    }

    // The joiner parks without re-checking COMPLETE after publishing its
    // waiter: a completion in between wakes nobody.
    mutant_test!(
        loom_packet_join_vs_complete_mutant,
        join_vs_complete,
        "packet_no_recheck",
        "deadlock"
    );

    /// A dropped handle races the completion: whichever lets go second
    /// frees, exactly once.
    fn detach_vs_complete() {
        model(|| {
            let p = packet();
            let p2 = p.clone();
            let g = thread::spawn(move || complete(&p2));
            if p.slot.detach() {
                p.frees.fetch_add(1, Ordering::Relaxed);
            }
            g.join().unwrap();
            assert_eq!(p.frees.load(Ordering::Relaxed), 1, "freed exactly once");
        });
    }

    #[test]
    fn loom_packet_detach_vs_complete() {
        detach_vs_complete();
    }

    // The goroutine ignores DETACHED: a packet whose handle let go first
    // is never freed.
    mutant_test!(
        loom_packet_detach_vs_complete_mutant,
        detach_vs_complete,
        "packet_complete_ignores_detach",
        "freed exactly once"
    );
}
