//! Cancellation and shutdown: ending a `run`'s group of goroutines and
//! dropping a runtime.
//!
//! Cancelling a group readies its parked goroutines, which unwind from
//! their park; runnable ones unwind where they resume; running ones at
//! their next scheduling point. Dropping a runtime cancels every group,
//! waits for every goroutine, stops its threads and returns the G shells
//! to the process-wide pool.

use std::sync::atomic::Ordering;

use super::g::{self, pack, unpack, GRef, RUNNABLE, WAITING};
use super::group;
use super::sched::Sched;
use super::spawn::SHELLS;
use crate::stack;

impl Sched {
    /// Cancels `group` (or `group::ALL`): its parked goroutines are readied
    /// and unwind from their park, runnable ones unwind where they resume
    /// (or are dropped unrun), running ones unwind at their next scheduling
    /// point. Goroutines spawned into the group from now on never run.
    pub(crate) fn begin_cancel(&self, group: u32) {
        self.groups.cancel(group);
        let gs: Vec<GRef> = self.allgs.lock().clone();
        for g in gs {
            // Load the state first: the CAS below then fails if the G was
            // recycled after we read its group.
            let (gen, status) = unpack(g.state.load(Ordering::Acquire));
            if status != WAITING {
                continue;
            }
            let gg = g.group.load(Ordering::Relaxed);
            if (group == group::ALL || gg == group)
                && g.state
                    .compare_exchange(
                        pack(gen, WAITING),
                        pack(gen, RUNNABLE),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    )
                    .is_ok()
            {
                self.global_put(g);
                self.wakep_force();
            }
        }
    }

    /// Waits until `group` has no goroutine left, then ends its
    /// cancellation (the group is finished).
    pub(crate) fn end_cancel(&self, group: u32) {
        self.groups.wait_empty(group, || self.counts());
        self.groups.uncancel(group);
    }

    /// Stops every M and releases the goroutine shells (runtime drop).
    pub(crate) fn shutdown(&self) {
        self.begin_cancel(group::ALL);
        self.end_cancel(group::ALL);
        self.shutdown.store(true, Ordering::SeqCst);
        super::sysmon::stop(self);
        loop {
            {
                let inner = self.inner.lock();
                for m in &inner.idle_ms {
                    m.note.wakeup();
                }
            }
            if let Some(np) = self.netpoll.get() {
                np.wake();
            }
            let threads = std::mem::take(&mut *self.threads.lock());
            if threads.is_empty() {
                break;
            }
            for t in threads {
                let _ = t.join();
            }
        }
        for p in self.all_ps() {
            p.timers.clear();
        }
        let gs = std::mem::take(&mut *self.allgs.lock());
        self.gfree.lock().clear();
        for p in self.all_ps() {
            // SAFETY: every M has exited, so no one holds any P.
            unsafe { p.local() }.gfree.clear();
        }
        let mut stacks = Vec::with_capacity(gs.len());
        for &g in &gs {
            // SAFETY: every goroutine has finished and every M has exited.
            if let Some(s) = unsafe { g.stack_mut() }.take() {
                stacks.push(s);
            }
            let (gen, _) = unpack(g.state.load(Ordering::Relaxed));
            g.state.store(pack(gen + 1, g::IDLE), Ordering::SeqCst);
        }
        stack::free_many(stacks);
        SHELLS.lock().extend(gs);
    }
}
