//! Live goroutine counts by group (`group.rs`), and the snapshot that
//! tells whether a group is empty.
//!
//! Counts are kept per P, in a few slots that each pack `(group, count)`
//! into one atomic word written only by the P's holder (spawn +1 where
//! spawned, exit -1 where exited; a slot may go negative, as a goroutine
//! may exit on another P than the one it was spawned on). Each P's `epoch`
//! is a seqlock over its slots (odd while the holder writes). Counts that
//! do not fit, and spawns from outside any P, go to a locked overflow list
//! with a version bumped on every change. A snapshot is a double collect:
//! every P's seqlock read and the overflow list, then every epoch and the
//! overflow version again; unchanged (and no P created meanwhile) means
//! every value held at the moment between the two passes, so a snapshot
//! never reports a group empty while a member is live.
//!
//! The atomics are `crate::loom`'s, so the loom models below drive this
//! code (spawn, exit and migration between Ps, and a P being created,
//! against a snapshot), each with a mutant twin.

use crate::loom::atomic::{fence, AtomicU64, Ordering};
use crate::loom::mutant;

use super::lock::Lock;

/// Count slots per P (fewer under loom, as the run queue's ring).
const SLOTS: usize = if cfg!(loom) { 2 } else { 4 };
/// Tries of a snapshot, and seqlock reads of one P per try. Fewer under
/// loom, which explores every step of each (and never reaches the yield
/// every 64 tries): a snapshot that gives up says "not empty" anyway.
const TRIES: u32 = if cfg!(loom) { 4 } else { 100_000 };
const READS: usize = if cfg!(loom) { 2 } else { 16 };

#[inline]
fn pack(group: u32, count: i32) -> u64 {
    ((group as u64) << 32) | count as u32 as u64
}
#[inline]
fn unpack(w: u64) -> (u32, i32) {
    ((w >> 32) as u32, w as u32 as i32)
}

/// One P's live counts by group. `epoch` is a seqlock over the slots
/// (odd while the holder writes), so a reader can take a snapshot of every
/// P's counts at one instant (see [`LiveCounts::snapshot`]).
#[derive(Default)]
pub(crate) struct Counts {
    slots: [AtomicU64; SLOTS],
    epoch: AtomicU64,
}

impl Counts {
    /// Holder only. Adds `d` to `group`'s count; false if no slot is free
    /// (every slot holds another live group with a non-zero count).
    #[inline]
    fn add(&self, group: u32, d: i32, live: impl Fn(u32) -> bool) -> bool {
        let e = self.epoch.load(Ordering::Relaxed);
        self.epoch.store(e + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        let done = self.add_slots(group, d, live);
        self.epoch.store(e + 2, Ordering::Release);
        done
    }

    #[inline]
    fn add_slots(&self, group: u32, d: i32, live: impl Fn(u32) -> bool) -> bool {
        let mut free = None;
        for slot in &self.slots {
            let (g, c) = unpack(slot.load(Ordering::Relaxed));
            if g == group {
                slot.store(pack(g, c + d), Ordering::Relaxed);
                return true;
            }
            if free.is_none() && c == 0 {
                free = Some(slot);
            }
        }
        let slot = free.or_else(|| {
            self.slots
                .iter()
                .find(|s| !live(unpack(s.load(Ordering::Relaxed)).0))
        });
        match slot {
            Some(slot) => {
                slot.store(pack(group, d), Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    fn sum(&self, want: impl Fn(u32) -> bool) -> i64 {
        self.slots
            .iter()
            .map(|s| unpack(s.load(Ordering::Relaxed)))
            .filter(|&(g, _)| want(g))
            .map(|(_, c)| c as i64)
            .sum()
    }

    /// A consistent read of this P's counts: `(epoch, sum)`, or `None` if
    /// the holder wrote meanwhile.
    fn read(&self, want: impl Fn(u32) -> bool) -> Option<(u64, i64)> {
        let e = self.epoch.load(Ordering::Acquire);
        if e & 1 != 0 {
            return None;
        }
        let s = self.sum(want);
        fence(Ordering::Acquire);
        (self.epoch.load(Ordering::Relaxed) == e).then_some((e, s))
    }
}

/// A runtime's counts off the Ps: those from outside any P, and those
/// that found no free slot, with a version bumped on every change (for
/// snapshots).
#[derive(Default)]
pub(crate) struct LiveCounts {
    overflow: Lock<(u64, Vec<(u32, i64)>)>,
}

impl LiveCounts {
    /// Counts a goroutine of `group` in (+1) or out (-1) on `counts` (the
    /// caller's P), or in the overflow list; `live` says which groups are
    /// not finished (a finished group's slot is reused).
    #[inline]
    pub(crate) fn count(
        &self,
        counts: Option<&Counts>,
        group: u32,
        d: i32,
        live: impl Fn(u32) -> bool,
    ) {
        if let Some(c) = counts {
            if c.add(group, d, live) {
                return;
            }
        }
        let mut o = self.overflow.lock();
        o.0 += 1;
        match o.1.iter_mut().find(|(g, _)| *g == group) {
            Some((_, c)) => *c += d as i64,
            None => o.1.push((group, d as i64)),
        }
    }

    /// `group` is finished: drops its overflow count.
    pub(crate) fn forget(&self, group: u32) {
        let mut o = self.overflow.lock();
        o.0 += 1;
        o.1.retain(|&(g, _)| g != group);
    }

    /// Sums the counts of the groups `want` picks, of every P `ps` lists
    /// and the overflow list, at one instant (a double collect: each P's
    /// seqlock read, then every epoch and the overflow version read again;
    /// unchanged means every value held at the moment between the two
    /// passes). `Err` with the last sum only if no consistent pair was
    /// seen in 100,000 tries.
    pub(crate) fn snapshot<'a>(
        &self,
        ps: &impl Fn() -> Box<dyn Iterator<Item = &'a Counts> + 'a>,
        want: impl Fn(u32) -> bool + Copy,
    ) -> Result<i64, i64> {
        let mut epochs = Vec::new();
        let mut last = 0;
        for attempt in 0..TRIES {
            if attempt % 64 == 63 {
                // Holders keep writing: let them finish (a torn read is
                // only ever momentary; a wrong count is not acceptable).
                std::thread::yield_now();
            }
            epochs.clear();
            let (ver, mut n) = {
                let o = self.overflow.lock();
                (
                    o.0,
                    o.1.iter()
                        .filter(|(g, _)| want(*g))
                        .map(|(_, c)| c)
                        .sum::<i64>(),
                )
            };
            let mut torn = false;
            for c in ps() {
                match (0..READS).find_map(|_| c.read(want)) {
                    Some((e, s)) => {
                        epochs.push(e);
                        n += s;
                    }
                    None => torn = true,
                }
            }
            last = n;
            if torn {
                continue;
            }
            if mutant("group_single_collect") {
                return Ok(n);
            }
            fence(Ordering::SeqCst);
            // The same Ps (set_procs may have created one meanwhile, whose
            // counts the first pass did not see), each unchanged.
            let mut now = ps();
            let same = epochs.iter().all(|&e| {
                now.next()
                    .is_some_and(|c| c.epoch.load(Ordering::Acquire) == e)
            }) && (now.next().is_none() || mutant("group_new_p_unseen"))
                && self.overflow.lock().0 == ver;
            if same {
                return Ok(n);
            }
        }
        Err(last)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn slots_pack_negative_counts_and_reuse_finished_groups() {
        let c = Counts::default();
        assert!(c.add(5, -3, |_| true));
        assert_eq!(c.sum(|g| g == 5), -3);
        for g in 6..9 {
            assert!(c.add(g, 1, |_| true));
        }
        // All four slots hold live groups with non-zero counts.
        assert!(!c.add(9, 1, |_| true));
        // Once group 5 is finished its slot (residual -3) is reused.
        assert!(c.add(9, 1, |g| g != 5));
        assert_eq!(c.sum(|g| g == 9), 1);
        assert_eq!(c.sum(|g| g == 5), 0);
    }
}

/// loom models of the real counts: each M holding a P is a `loom::thread`
/// writing its P's counts, another takes snapshots. A live member is kept
/// throughout (the exiting goroutine spawned its successor first), so a
/// snapshot must never say the group is empty.
#[cfg(all(test, loom))]
mod loom_models {
    use loom::sync::Arc;
    use loom::thread;

    use super::{Counts, LiveCounts};
    use crate::loom::atomic::{AtomicUsize, Ordering};
    use crate::loom::{model_bounded, mutant_test};

    const G: u32 = 1;

    /// A runtime's Ps (`Sched::allp[..created]`) and overflow counts.
    struct Rt {
        allp: [Counts; 2],
        created: AtomicUsize,
        live: LiveCounts,
    }

    impl Rt {
        fn new(created: usize) -> Arc<Rt> {
            Arc::new(Rt {
                allp: Default::default(),
                created: AtomicUsize::new(created),
                live: LiveCounts::default(),
            })
        }

        /// The holder of P `p` counts a goroutine of `G` in or out.
        fn count(&self, p: usize, d: i32) {
            self.live.count(Some(&self.allp[p]), G, d, |_| true);
        }

        /// `Sched::counts`-style snapshot of `G`.
        fn snapshot(&self) -> Result<i64, i64> {
            self.live.snapshot(
                &|| Box::new(self.allp[..self.created.load(Ordering::Acquire)].iter()),
                |g| g == G,
            )
        }

        fn check(&self) {
            let n = self.snapshot();
            assert!(
                !matches!(n, Ok(n) if n <= 0),
                "reported empty while a member is live: {n:?}"
            );
        }
    }

    /// set_procs creates P1 during a snapshot; G1 (counted on P0) migrates
    /// to it and spawns G2 there, then exits back on P0: a first pass that
    /// knew only P0, or read P1 before the spawn and P0 after the exit,
    /// sees the exit without the spawn. One model thread plays the Ms G1
    /// runs on (a migration orders the writes as its program order does).
    /// (A model whose writer does not store `created` first explores a
    /// single execution: loom's DPOR keeps only the last access of an
    /// atomic, and the holder's own epoch load hides the reader's.)
    fn new_p_during_snapshot() {
        model_bounded(2, || {
            let rt = Rt::new(1);
            rt.count(0, 1);
            let rt2 = rt.clone();
            let m = thread::spawn(move || {
                rt2.created.store(2, Ordering::Release);
                rt2.count(1, 1);
                rt2.count(0, -1);
            });
            rt.check();
            m.join().unwrap();
            assert_eq!(rt.snapshot(), Ok(1));
        });
    }

    #[test]
    fn loom_group_new_p_during_snapshot() {
        new_p_during_snapshot();
    }

    // The second collect compares only the Ps of the first.
    mutant_test!(
        loom_group_new_p_during_snapshot_mutant,
        new_p_during_snapshot,
        "group_new_p_unseen",
        "reported empty while a member is live"
    );

    // The snapshot skips its second collect: the first pass can read P0
    // after the exit and P1 before the spawn.
    mutant_test!(
        loom_group_single_collect_mutant,
        new_p_during_snapshot,
        "group_single_collect",
        "reported empty while a member is live"
    );
}
