//! What `gort::debug` reports, read off the scheduler.
//!
//! A goroutine's entry is built from what it publishes atomically: its
//! state word, wait reason, park site and park time (`g.rs`), spawn site
//! and name. Whether it runs inside `blocking`, and whether it is locked to
//! its thread, is read off the Ms (`MShared::curg`, `status`, `locked_g`):
//! a G's own `blocking` and `locked_m` cells belong to its owner. The walk
//! holds `allgs`'s lock (spawning a brand-new G shell waits for it; reusing
//! a cached one does not) and each name's lock for a moment, never the
//! scheduler's, so goroutines run on meanwhile.

use std::sync::atomic::{fence, Ordering};
use std::time::Duration;

use super::g::{self, unpack, GRef, WaitReason};
use super::m::S_BLOCKING;
use super::sched::Sched;
use crate::debug::{GoroutineInfo, GoroutineState, SchedStats};
use crate::go::GoId;

/// The calling goroutine's runtime, or the default one if it has started.
pub(crate) fn current() -> Option<&'static Sched> {
    match g::current() {
        Some(g) => Some(g.sched()),
        None => super::started_default().map(|rt| &*rt.sched),
    }
}

impl Sched {
    /// Every live goroutine, by id.
    pub(crate) fn goroutine_infos(&self) -> Vec<GoroutineInfo> {
        self.goroutine_infos_where(|_| true)
    }

    /// The live goroutines for which `keep` holds, by id.
    pub(crate) fn goroutine_infos_where(&self, keep: impl Fn(GRef) -> bool) -> Vec<GoroutineInfo> {
        // The Ms' view first: which goroutines are inside `blocking`, and
        // which are wired to a thread.
        let (blocking, locked): (Vec<*mut g::G>, Vec<*mut g::G>) = {
            let allm = self.allm.lock();
            (
                allm.iter()
                    .filter(|m| m.status.load(Ordering::Relaxed) & 3 == S_BLOCKING)
                    .map(|m| m.curg.load(Ordering::Relaxed))
                    .collect(),
                allm.iter()
                    .map(|m| m.locked_g.load(Ordering::Relaxed))
                    .filter(|g| !g.is_null())
                    .collect(),
            )
        };
        let now = super::timers::now();
        let gs: Vec<GRef> = self.allgs.lock().clone();
        let mut out: Vec<GoroutineInfo> = gs
            .into_iter()
            .filter(|&g| keep(g))
            .filter_map(|g| self.entry(g, now, &blocking, &locked))
            .collect();
        out.sort_by_key(|g| g.id);
        out
    }

    /// One goroutine's entry, read as a seqlock reader reads: its state
    /// word before and after the other fields (a park, a wake and an exit
    /// each change the word, and the fields they clear are cleared with
    /// Release after the change), retried until both agree, so an entry
    /// never mixes two moments (a reason from one park with the state of
    /// the next, or the site of a previous life of a recycled G).
    fn entry(
        &self,
        g: GRef,
        now: u64,
        blocking: &[*mut g::G],
        locked: &[*mut g::G],
    ) -> Option<GoroutineInfo> {
        for _ in 0..1000 {
            let w1 = g.state.load(Ordering::Acquire);
            let state = match unpack(w1).1 {
                g::RUNNABLE => GoroutineState::Runnable,
                g::RUNNING if blocking.contains(&g.as_ptr()) => GoroutineState::Blocking,
                g::RUNNING => GoroutineState::Running,
                g::WAITING | g::CLAIMED => GoroutineState::Waiting,
                _ => return None, // IDLE, DEAD: not a goroutine now
            };
            let id = g.id.load(Ordering::Relaxed);
            let reason = g.reason();
            let since = g.since.load(Ordering::Relaxed);
            let site = g.waiting_at();
            let spawned_at = g.spawned_at();
            let name = g.name.lock().as_deref().map(str::to_owned);
            fence(Ordering::Acquire);
            if g.state.load(Ordering::Relaxed) != w1 {
                continue; // it moved while we read: read it again
            }
            let waiting = state == GoroutineState::Waiting;
            return Some(GoroutineInfo {
                id: GoId::from_u64(id),
                name,
                state,
                wait_reason: (waiting && reason != WaitReason::None).then(|| reason.as_str()),
                since: if waiting {
                    Duration::from_nanos(now.saturating_sub(since))
                } else {
                    Duration::ZERO
                },
                spawned_at,
                waiting_at: match state {
                    GoroutineState::Waiting | GoroutineState::Blocking => site,
                    _ => None,
                },
                locked_to_thread: locked.contains(&g.as_ptr()),
            });
        }
        None // never still for a moment in 1,000 reads: running, not waiting
    }

    /// The scheduler's counts.
    pub(crate) fn stats(&self) -> SchedStats {
        let (threads, idle_threads) = (self.allm.lock().len(), self.inner.lock().idle_ms.len());
        SchedStats {
            procs: self.nprocs.load(Ordering::Acquire),
            threads,
            idle_procs: self.npidle.load(Ordering::Relaxed),
            spinning_threads: self.nmspinning.load(Ordering::Relaxed),
            idle_threads,
            global_queue: self.global_len(),
            local_queues: (0..self.nprocs.load(Ordering::Acquire))
                .map(|p| self.p(p).runq.len())
                .collect(),
            goroutines: self.goroutines(),
            spawned: self.spawned.load(Ordering::Relaxed)
                + self
                    .all_ps()
                    .map(|p| p.spawned.load(Ordering::Relaxed))
                    .sum::<u64>(),
            steals: self.steals.load(Ordering::Relaxed),
            handoffs: self.handoffs.load(Ordering::Relaxed),
            preemptions: self.preemptions.load(Ordering::Relaxed),
        }
    }
}
