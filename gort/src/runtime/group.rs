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
//! Live counts are kept per P and read as snapshots (`counts.rs`).
//! Waiting for a group to empty is a Dekker handshake with exits
//! (`membarrier`): exit stores its count then loads `waiting`; the waiter
//! stores `waiting` then takes a snapshot.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Instant;

pub(crate) use super::counts::Counts;
use super::counts::LiveCounts;
use super::g::WaitReason;
use super::lock::Lock;
use super::membarrier;
use super::park::{self, Waiter};

/// Goroutines spawned from outside any run.
pub(crate) const DETACHED: u32 = 0;
/// Every group (runtime shutdown).
pub(crate) const ALL: u32 = u32::MAX;
/// A runtime's groups.
pub(crate) struct Groups {
    next: AtomicU32,
    /// Groups started by `run` and not yet finished (DETACHED is implied).
    live: Lock<Vec<u32>>,
    ncancelled: AtomicUsize,
    cancelled: Lock<Vec<u32>>,
    /// Counts off the Ps (from outside any P, or that found no slot).
    counts: LiveCounts,
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
            counts: LiveCounts::default(),
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
            self.counts.forget(group);
        }
    }

    /// Counts a goroutine of `group` in (+1) or out (-1) on `counts` (the
    /// caller's P), or in the overflow list.
    #[inline]
    pub(crate) fn count(&self, counts: Option<&Counts>, group: u32, d: i32) {
        self.counts.count(counts, group, d, |g| self.is_live(g));
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

    /// Sums the counts of `group` (or of every live group, for `ALL`)
    /// at one instant (see `LiveCounts::snapshot`).
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
        self.counts.snapshot(ps, |g: u32| live.contains(&g))
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
