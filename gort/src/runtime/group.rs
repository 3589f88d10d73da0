//! Goroutine groups: whom a `run` cancels and waits for.
//!
//! Every goroutine belongs to a group, inherited from the goroutine that
//! spawned it. Each `Runtime::run` starts a new group for its main
//! goroutine; goroutines spawned from plain threads (`Runtime::go`, `go`
//! outside any runtime) are `DETACHED`. When a run's main goroutine returns,
//! only its group is cancelled (Go exits the process; we end the run), so
//! concurrent `gort::run` calls on the default runtime, as parallel tests
//! make them, never cancel each other. Dropping a runtime cancels `ALL`.
//!
//! Cancellation is checked by the goroutines themselves at scheduling
//! points (`is_cancelled`: one relaxed load while nothing is cancelled);
//! the canceller only readies the parked ones so they can look.
//!
//! Live counts are kept per P, in a few slots that each pack
//! `(group, count)` into one atomic word written only by the P's holder
//! (spawn +1 where spawned, exit -1 where exited; a slot may go negative).
//! Readers sum the slots. A slot whose group has finished is reused. Counts
//! that do not fit, and spawns from outside any P, go to a locked overflow
//! list. Waiting for a group to empty is a Dekker handshake with exits
//! (`membarrier`): exit stores its count then loads `waiting`; the waiter
//! stores `waiting` then sums.

use std::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use super::g::WaitReason;
use super::lock::Lock;
use super::membarrier;
use super::park::{self, Waiter};

/// Goroutines spawned from outside any run.
pub(crate) const DETACHED: u32 = 0;
/// Every group (runtime shutdown).
pub(crate) const ALL: u32 = u32::MAX;
/// Count slots per P.
const SLOTS: usize = 4;

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
/// P's counts at one instant (see [`Groups::snapshot`]).
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

/// A runtime's groups.
pub(crate) struct Groups {
    next: AtomicU32,
    /// Groups started by `run` and not yet finished (DETACHED is implied).
    live: Lock<Vec<u32>>,
    ncancelled: AtomicUsize,
    cancelled: Lock<Vec<u32>>,
    /// Counts from outside any P, and those that found no free slot, with
    /// a version bumped on every change (for snapshots).
    overflow: Lock<(u64, Vec<(u32, i64)>)>,
    waiting: AtomicUsize,
    waiters: Lock<Vec<(u32, Waiter)>>,
}

impl Default for Groups {
    fn default() -> Self {
        Groups {
            next: AtomicU32::new(DETACHED + 1),
            live: Lock::default(),
            ncancelled: AtomicUsize::new(0),
            cancelled: Lock::default(),
            overflow: Lock::default(),
            waiting: AtomicUsize::new(0),
            waiters: Lock::default(),
        }
    }
}

impl Groups {
    /// A new group for a run's main goroutine.
    pub(crate) fn start(&self) -> u32 {
        let mut id = self.next.fetch_add(1, Ordering::Relaxed);
        if id == ALL || id == DETACHED {
            id = self.next.fetch_add(2, Ordering::Relaxed) % (ALL - 1) + 1;
        }
        self.live.lock().push(id);
        id
    }

    fn is_live(&self, group: u32) -> bool {
        group == DETACHED || self.live.lock().contains(&group)
    }

    /// Whether goroutines of `group` must unwind.
    #[inline]
    pub(crate) fn is_cancelled(&self, group: u32) -> bool {
        self.ncancelled.load(Ordering::Relaxed) != 0 && self.is_cancelled_slow(group)
    }

    #[cold]
    fn is_cancelled_slow(&self, group: u32) -> bool {
        let c = self.cancelled.lock();
        c.contains(&ALL) || c.contains(&group)
    }

    /// Marks `group` (or `ALL`) cancelled, visibly to every thread.
    pub(crate) fn cancel(&self, group: u32) {
        self.cancelled.lock().push(group);
        self.ncancelled.fetch_add(1, Ordering::SeqCst);
        membarrier::heavy();
    }

    /// Ends a cancellation once the group is empty; the group is finished.
    pub(crate) fn uncancel(&self, group: u32) {
        let mut c = self.cancelled.lock();
        if let Some(i) = c.iter().position(|&g| g == group) {
            c.swap_remove(i);
            self.ncancelled.fetch_sub(1, Ordering::SeqCst);
        }
        drop(c);
        if group != ALL {
            self.live.lock().retain(|&g| g != group);
            let mut o = self.overflow.lock();
            o.0 += 1;
            o.1.retain(|&(g, _)| g != group);
        }
    }

    /// Counts a goroutine of `group` in (+1) or out (-1) on `counts` (the
    /// caller's P), or in the overflow list.
    #[inline]
    pub(crate) fn count(&self, counts: Option<&Counts>, group: u32, d: i32) {
        if let Some(c) = counts {
            if c.add(group, d, |g| self.is_live(g)) {
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

    /// Live goroutines of `group` (or of all live groups, for `ALL`), as a
    /// snapshot if one can be had, else the last inconsistent sum (for
    /// `num_goroutines`, which is a hint anyway).
    pub(crate) fn live_count<'a>(
        &self,
        ps: impl Fn() -> Box<dyn Iterator<Item = &'a Counts> + 'a>,
        group: u32,
    ) -> usize {
        match self.snapshot(&ps, group) {
            Ok(n) | Err(n) => n.max(0) as usize,
        }
    }

    /// Whether `group` has no goroutine, judged from a snapshot (an
    /// inconsistent read says "not empty").
    fn is_empty<'a>(
        &self,
        ps: &impl Fn() -> Box<dyn Iterator<Item = &'a Counts> + 'a>,
        group: u32,
    ) -> bool {
        matches!(self.snapshot(ps, group), Ok(n) if n <= 0)
    }

    /// Sums every P's counts and the overflow list at one instant (a
    /// double collect: each P's seqlock read, then every epoch and the
    /// overflow version read again; unchanged means every value held at
    /// the moment between the two passes). `Err` with the last sum only if
    /// no consistent pair was seen in 100,000 tries.
    fn snapshot<'a>(
        &self,
        ps: &impl Fn() -> Box<dyn Iterator<Item = &'a Counts> + 'a>,
        group: u32,
    ) -> Result<i64, i64> {
        let live: Vec<u32> = if group == ALL {
            let mut v = self.live.lock().clone();
            v.push(DETACHED);
            v
        } else {
            vec![group]
        };
        let want = |g: u32| live.contains(&g);
        let mut epochs = Vec::new();
        let mut last = 0;
        for attempt in 0..100_000u32 {
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
                match (0..16).find_map(|_| c.read(want)) {
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
            fence(Ordering::SeqCst);
            // The same Ps (set_procs may have created one meanwhile, whose
            // counts the first pass did not see), each unchanged.
            let mut seen = 0;
            let same = ps().all(|c| {
                seen += 1;
                epochs.get(seen - 1) == Some(&c.epoch.load(Ordering::Acquire))
            }) && seen == epochs.len()
                && self.overflow.lock().0 == ver;
            if same {
                return Ok(n);
            }
        }
        Err(last)
    }

    /// Ends `group`'s cancellation once it has no goroutine left (it is
    /// finished then; its id is never live again). Called at the end of a
    /// run and by the exit of a cancelled group's last goroutine.
    pub(crate) fn finish_if_empty<'a>(
        &self,
        group: u32,
        all: impl Fn() -> Box<dyn Iterator<Item = &'a Counts> + 'a>,
    ) {
        if group != ALL && self.is_empty(&all, group) {
            self.uncancel(group);
        }
    }

    /// A goroutine of `group` exited on the P owning `counts`: count it out
    /// and wake anyone waiting for its group (or all) to empty.
    pub(crate) fn exited<'a>(
        &self,
        counts: Option<&Counts>,
        group: u32,
        all: impl Fn() -> Box<dyn Iterator<Item = &'a Counts> + 'a>,
    ) {
        self.count(counts, group, -1);
        if self.ncancelled.load(Ordering::Relaxed) != 0 && self.cancelled.lock().contains(&group) {
            self.finish_if_empty(group, &all);
        }
        membarrier::light();
        if self.waiting.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut ws = self.waiters.lock();
        let mut i = 0;
        while i < ws.len() {
            let target = ws[i].0;
            if (target == group || target == ALL) && self.is_empty(&all, target) {
                ws.swap_remove(i).1.wake();
            } else {
                i += 1;
            }
        }
    }

    /// Blocks until `group` (or every group, for `ALL`) has no goroutine,
    /// or until `deadline`; true if it is empty.
    pub(crate) fn wait_empty_until<'a>(
        &self,
        group: u32,
        deadline: Instant,
        all: impl Fn() -> Box<dyn Iterator<Item = &'a Counts> + 'a>,
    ) -> bool {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        membarrier::heavy();
        let empty = loop {
            if self.is_empty(&all, group) {
                break true;
            }
            if Instant::now() >= deadline {
                break false;
            }
            let parking = park::prepare();
            let me = parking.waiter().clone();
            let mut ws = self.waiters.lock();
            if self.is_empty(&all, group) {
                break true;
            }
            ws.push((group, me.clone()));
            // An exit that empties the group takes the waiter under the
            // lock, which the park's after step releases (rule 1); a torn
            // snapshot that kept an exit from waking us is caught by the
            // short deadline.
            let until = deadline.min(Instant::now() + std::time::Duration::from_millis(10));
            parking.park(WaitReason::Shutdown, Some(until), move || drop(ws));
            self.waiters.lock().retain(|(_, w)| !w.same(&me));
        };
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        empty
    }
}

#[cfg(test)]
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
