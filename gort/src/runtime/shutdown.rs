//! Cancellation and shutdown: ending a `run`'s group of goroutines and
//! dropping a runtime.
//!
//! Cancelling a group readies its parked goroutines, which unwind from
//! their park; runnable ones unwind where they resume; running ones at
//! their next scheduling point. Dropping a runtime cancels every group,
//! waits for every goroutine, stops its threads and returns the G shells
//! to the process-wide pool.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::g::{self, pack, unpack, GRef, CLAIMED, RUNNABLE, RUNNING, WAITING};
use super::group;
use super::park;
use super::sched::Sched;
use super::spawn::SHELLS;
use crate::stack;

/// How long a runtime's drop waits before it names what it waits for, and
/// then how often it names them again.
const REPORT_AFTER: Duration = Duration::from_secs(1);
const REPORT_EVERY: Duration = Duration::from_secs(10);
/// How long the end of a run waits for goroutines still running to finish
/// before it returns without them.
const END_GRACE: Duration = Duration::from_millis(50);

impl Sched {
    /// Cancels `group` (or `group::ALL`): its parked goroutines are readied
    /// and unwind from their park, runnable ones unwind where they resume
    /// (or have their closure dropped unrun, on their own stack), running
    /// ones unwind at their next scheduling point. Goroutines spawned into
    /// the group from now on never run. A goroutine already unwinding is
    /// left alone: its parks (a destructor waiting, a scope waiting for its
    /// goroutines) are real waits.
    pub(crate) fn begin_cancel(&self, group: u32) {
        self.groups.cancel(group);
        let gs: Vec<GRef> = self.allgs.lock().clone();
        for g in gs {
            // Load the state first: the CAS below then fails if the G was
            // recycled after we read its group.
            let (gen, status) = unpack(g.state.load(Ordering::Acquire));
            if status != WAITING || g.unwinding.load(Ordering::Acquire) {
                continue;
            }
            let gg = g.group.load(Ordering::Relaxed);
            if (group == group::ALL || gg == group) && g.unpark(gen) {
                self.global_put(g);
                self.wakep_force();
            }
        }
    }

    /// The end of a run (its main goroutine returned): waits until no
    /// goroutine of `group` is parked or queued without unwinding, so every
    /// parked one has unwound; goroutines still executing user code (a CPU
    /// loop, a `blocking` call, a destructor) are not waited for: they
    /// unwind at their next scheduling point. The group stays cancelled
    /// until its last goroutine exits (`goroutine_exited`).
    pub(crate) fn end_cancel(&self, group: u32) {
        sleep_while(|| self.pending_in(group));
        // A short grace for what is about to finish anyway: the main
        // goroutine itself (its result is out before it exits), and one
        // between its last step and its park, which unwinds there. A CPU
        // loop or a long `blocking` call costs `run` this much, no more.
        let grace = Instant::now() + END_GRACE;
        self.groups.wait_empty_until(group, grace, || self.counts());
        self.groups.finish_if_empty(group, || self.counts());
    }

    /// Waits until goroutine `id`, whose result is out (it is past its
    /// last user code), has exited and been counted out: a run's main, so
    /// that the run's end sees an exact count.
    pub(crate) fn wait_exited(&self, id: u64) {
        sleep_while(|| {
            self.allgs.lock().iter().any(|g| {
                let (_, status) = unpack(g.state.load(Ordering::Acquire));
                g.id.load(Ordering::Relaxed) == id && !matches!(status, g::DEAD | g::IDLE)
            })
        });
    }

    /// Whether a goroutine of `group` has yet to unwind: queued (it unwinds
    /// once it runs), parked without unwinding (it is readied to unwind),
    /// or running its unwind. Not pending: goroutines running user code
    /// (they unwind at their next scheduling point), and unwinding ones
    /// parked in a real wait (a scope waiting for its goroutines).
    fn pending_in(&self, group: u32) -> bool {
        let gs = self.allgs.lock();
        gs.iter().any(|g| {
            let (_, status) = unpack(g.state.load(Ordering::Acquire));
            if g.group.load(Ordering::Relaxed) != group {
                return false;
            }
            let unwinding = g.unwinding.load(Ordering::Acquire);
            match status {
                RUNNABLE | CLAIMED => true,
                WAITING => !unwinding,
                RUNNING => unwinding,
                _ => false,
            }
        })
    }

    /// Stops every M and releases the goroutine shells (runtime drop):
    /// cancels everything, waits for every goroutine (also those in user
    /// code, whose stacks belong to this runtime), naming them on stderr
    /// after 1 s and every 10 s. With a `limit`, gives up after it: what
    /// still runs is leaked (its memory stays), and false is returned.
    pub(crate) fn shutdown(&self, limit: Option<Duration>) -> bool {
        self.begin_cancel(group::ALL);
        let start = Instant::now();
        let mut next_report = start + REPORT_AFTER;
        loop {
            let deadline = match limit {
                Some(l) => next_report.min(start + l),
                None => next_report,
            };
            if self
                .groups
                .wait_empty_until(group::ALL, deadline, || self.counts())
            {
                break;
            }
            if limit.is_some_and(|l| start.elapsed() >= l) {
                self.abandon();
                return false;
            }
            if Instant::now() >= next_report {
                self.report_waiting(start.elapsed());
                next_report += REPORT_EVERY;
            }
        }
        self.shutdown.store(true, Ordering::SeqCst);
        super::sysmon::stop(self);
        self.wake_all_ms();
        loop {
            let threads = std::mem::take(&mut *self.threads.lock());
            if threads.is_empty() {
                break;
            }
            for t in threads {
                let _ = t.join();
            }
            self.wake_all_ms();
        }
        for p in self.all_ps() {
            p.timers.clear();
        }
        let gs = std::mem::take(&mut *self.allgs.lock());
        self.gfree.lock().clear();
        self.gfree_nostack.lock().clear();
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
        super::trace::flush();
        true
    }

    fn wake_all_ms(&self) {
        {
            let inner = self.inner.lock();
            for m in &inner.idle_ms {
                m.note.wakeup();
            }
        }
        if let Some(np) = self.netpoll.get() {
            np.wake();
        }
    }

    /// `shutdown_timeout` gave up: keep this runtime's memory alive for the
    /// goroutines still running on it (one strong count, never released),
    /// and let its idle threads end. Threads running goroutines go on until
    /// those reach a scheduling point, then end too.
    fn abandon(&self) {
        std::mem::forget(self.arc());
        self.shutdown.store(true, Ordering::SeqCst);
        self.wake_all_ms();
        std::mem::take(&mut *self.threads.lock());
    }

    /// Names on stderr every goroutine a runtime drop still waits for.
    fn report_waiting(&self, waited: Duration) {
        use std::fmt::Write;
        let mut lines = Vec::new();
        for g in self.allgs.lock().iter() {
            let (_, status) = unpack(g.state.load(Ordering::Acquire));
            if matches!(status, g::IDLE | g::DEAD) {
                continue;
            }
            let mut line = format!("    goroutine {}", g.id.load(Ordering::Relaxed));
            if let Some(name) = g.name.lock().as_deref() {
                let _ = write!(line, " \"{name}\"");
            }
            let doing = match status {
                RUNNING if self.in_blocking(*g) => "in a blocking call".to_string(),
                RUNNING => "running".to_string(),
                RUNNABLE => "runnable".to_string(),
                _ => format!("waiting ({})", g.reason()),
            };
            let _ = write!(line, " (spawned at {}): {doing}", g.spawned_at());
            lines.push(line);
        }
        let mut msg = format!(
            "gort: dropping runtime {}: waiting for {} goroutine{} still running ({:.1}s so far):\n",
            self.id,
            lines.len(),
            if lines.len() == 1 { "" } else { "s" },
            waited.as_secs_f64()
        );
        for l in lines {
            msg.push_str(&l);
            msg.push('\n');
        }
        eprint!("{msg}");
    }

    /// Whether `g` runs inside `blocking` now (an M running it says so).
    fn in_blocking(&self, g: GRef) -> bool {
        self.allm.lock().iter().any(|m| {
            m.curg.load(Ordering::Relaxed) == g.as_ptr()
                && m.status.load(Ordering::Relaxed) & 3 == super::m::S_BLOCKING
        })
    }
}

/// Sleeps (parking a goroutine, blocking a thread) while `cond` holds,
/// looking again after 20 µs, then less and less often (up to every 2 ms):
/// the end of a run waits for state that others change without telling.
fn sleep_while(mut cond: impl FnMut() -> bool) {
    let mut pause = Duration::from_micros(20);
    while cond() {
        park::sleep_for(pause);
        pause = (pause * 2).min(Duration::from_millis(2));
    }
}
