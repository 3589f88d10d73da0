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

use std::sync::atomic::Ordering;
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
            .filter_map(|g| {
                let (_, status) = unpack(g.state.load(Ordering::Acquire));
                let state = match status {
                    g::RUNNABLE => GoroutineState::Runnable,
                    g::RUNNING if blocking.contains(&g.as_ptr()) => GoroutineState::Blocking,
                    g::RUNNING => GoroutineState::Running,
                    g::WAITING | g::CLAIMED => GoroutineState::Waiting,
                    _ => return None, // IDLE, DEAD: not a goroutine now
                };
                let waiting = state == GoroutineState::Waiting;
                let reason = g.reason();
                Some(GoroutineInfo {
                    id: GoId::from_u64(g.id.load(Ordering::Relaxed)),
                    name: g.name.lock().as_deref().map(str::to_owned),
                    state,
                    wait_reason: (waiting && reason != WaitReason::None).then(|| reason.as_str()),
                    since: if waiting {
                        Duration::from_nanos(now.saturating_sub(g.since.load(Ordering::Relaxed)))
                    } else {
                        Duration::ZERO
                    },
                    spawned_at: g.spawned_at(),
                    waiting_at: match state {
                        GoroutineState::Waiting | GoroutineState::Blocking => g.waiting_at(),
                        _ => None,
                    },
                    locked_to_thread: locked.contains(&g.as_ptr()),
                })
            })
            .collect();
        out.sort_by_key(|g| g.id);
        out
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
