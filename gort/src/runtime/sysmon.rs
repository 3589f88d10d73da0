//! sysmon: the monitor thread (Go's `sysmon` and `retake` in proc.go).
//!
//! One thread per runtime, started with its first M, running without a P.
//! It sleeps 20 µs at first and, after 50 rounds in a row with nothing to
//! do, doubles its sleep up to 10 ms. Each round it:
//!
//! * retakes Ps (DESIGN.md rule 4): from an M whose goroutine has been
//!   inside `blocking` for more than 20 µs (unless there is nothing else to
//!   run and someone is already looking for work, as Go's syscall retake),
//!   and from an M whose goroutine has run for more than 10 ms without a
//!   scheduling point (a hog: a signal stops its thread, which gives up
//!   its P until it gets one back, `preempt.rs`, so `procs` is a bound,
//!   rule 7; a hog that cannot stop loses its P at once). How the P
//!   is taken from under a running thread safely is the window protocol in
//!   `window.rs` (`MShared::take_p`);
//! * ends time slices: a P whose `schedtick` has not moved for 10 ms (a
//!   `runnext` ping-pong, a loop of short `blocking` calls) gets its
//!   goroutine's preempt flag set and its next hand-off queued behind the
//!   others (Go's `inheritTime` and `preemptone`);
//! * queues the proxies of stopped hogs for a P (`preempt::tend`);
//! * polls the netpoller if it has waiters and no one has polled for 10 ms
//!   (every P busy running goroutines that never look for work);
//! * starts a thread for timers that are overdue (every P busy, or the
//!   timer sleeper late).
//!
//! "The same for too long" is judged from each M's status word, which
//! counts transitions: sysmon remembers the word and when it first saw it.

use std::collections::HashMap;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::lock::Lock;
use super::m::{MShared, NO_P, S_BLOCKING, S_G};
use super::note::Note;
use super::sched::Sched;
use super::timers;

/// A goroutine inside `blocking` keeps its P this long.
const BLOCKING_SLICE: u64 = 20_000;
/// A goroutine without a scheduling point keeps its P this long.
const RUN_SLICE: u64 = 10_000_000;
/// The netpoller is polled by sysmon if no one has for this long.
const POLL_EVERY: u64 = 10_000_000;
/// Cached stacks are checked for deep pages this often (nanoseconds).
const SCAVENGE_EVERY: u64 = 1_000_000_000;
const MIN_DELAY_US: u64 = 20;
const MAX_DELAY_US: u64 = 10_000;

/// The monitor's per-runtime state.
#[derive(Default)]
pub(crate) struct Sysmon {
    started: AtomicBool,
    note: Note,
    /// Asleep until a P goes busy (every P was idle); changed under the
    /// scheduler lock.
    pub(crate) sleeping: AtomicBool,
    handle: Lock<Option<JoinHandle<()>>>,
}

impl Sysmon {
    /// A P left the idle list (scheduler lock held): wake a sleeping
    /// monitor, since a goroutine may now block or hog.
    /// Wakes the monitor for an immediate round (a hog just stopped, see
    /// `preempt.rs`): a futex wake, async-signal-safe.
    pub(crate) fn kick(&self) {
        self.note.wakeup();
    }

    #[inline]
    pub(crate) fn p_busy(&self) {
        if self.sleeping.load(Ordering::Relaxed) {
            self.sleeping.store(false, Ordering::Relaxed);
            self.note.wakeup();
        }
    }
}

/// How long an idle monitor sleeps before one round anyway: the stack
/// scavenger's (cached stacks give back deep pages within about this long,
/// whether or not they are reused).
const DEEP_SLEEP: Duration = Duration::from_secs(1);

/// Starts `sched`'s monitor if it is not running yet.
pub(crate) fn start(sched: &Sched) {
    if sched.sysmon.started.swap(true, Ordering::AcqRel) {
        return;
    }
    let s = sched.arc();
    let handle = std::thread::Builder::new()
        .name(format!("gort-{}-sysmon", sched.id))
        .spawn(move || {
            let fatal = super::m::FatalOnUnwind("sysmon");
            run(&s);
            std::mem::forget(fatal);
        });
    match handle {
        Ok(h) => *sched.sysmon.handle.lock() = Some(h),
        Err(e) => eprintln!("gort: cannot start the sysmon thread ({e}); blocking calls and CPU-bound goroutines will hold their processors"),
    }
}

/// Stops the monitor (runtime shutdown; `shutdown` is already set).
pub(crate) fn stop(sched: &Sched) {
    {
        // Under the lock `deep_sleep` decides under: it either sees the
        // shutdown flag or gets this wake-up after its `clear`.
        let _inner = sched.inner.lock();
        sched.sysmon.note.wakeup();
    }
    let h = sched.sysmon.handle.lock().take();
    if let Some(h) = h {
        let _ = h.join();
    }
}

fn run(sched: &Arc<Sched>) {
    let _counted = super::deadlock::GortThread::enter();
    super::trace::thread_sysmon(sched.id);
    let mut delay = MIN_DELAY_US;
    let mut idle = 0u32;
    let mut seen: HashMap<usize, (u64, u64)> = HashMap::new();
    let mut slices: Vec<(u32, u64)> = Vec::new();
    let mut cands: Vec<(Arc<MShared>, usize, u64, u64)> = Vec::new();
    let mut ms: Vec<Arc<MShared>> = Vec::new();
    let mut last_scavenge = timers::now();
    let trace = super::schedtrace::period();
    let mut last_trace = std::time::Instant::now();
    loop {
        if idle == 0 {
            delay = MIN_DELAY_US;
        } else if idle > 50 {
            delay = (delay * 2).min(MAX_DELAY_US);
        }
        if let Some(every) = trace {
            delay = delay.min(every.as_micros().max(1) as u64);
            if last_trace.elapsed() >= every {
                last_trace = std::time::Instant::now();
                eprintln!("{}", super::schedtrace::line(sched));
            }
        }
        sched.sysmon.note.sleep(Some(Duration::from_micros(delay)));
        // A kick is for this round only (shutdown is seen by the flag).
        sched.sysmon.note.clear();
        if sched.shutdown.load(Ordering::Acquire) {
            return;
        }
        if idle > 50 {
            // Going quiet: the stacks of what just finished give back
            // their deep pages first (no round runs while asleep).
            let now = timers::now();
            if now.saturating_sub(last_scavenge) >= SCAVENGE_EVERY / 10 {
                last_scavenge = now;
                sched.scavenge_stacks();
            }
        }
        // Tracing keeps the monitor awake, as Go's sysmon does.
        if idle > 50 && trace.is_none() && deep_sleep(sched) {
            // Woken by a P going busy: watch closely again. A timed-out
            // deep sleep runs one round (the scavenger's) and sleeps on.
            if !sched.sysmon.sleeping.swap(false, Ordering::Relaxed) {
                idle = 0;
            } else {
                // A whole second with every P idle: look for a deadlock
                // again (the idle transition's check can come too early,
                // before a thread starting or parking is counted).
                super::deadlock::check(sched);
            }
            if sched.shutdown.load(Ordering::Acquire) {
                return;
            }
        }
        let now = timers::now();
        sched.clock.store(now, Ordering::Relaxed);
        let mut busy = false;
        if let Some(np) = sched.netpoll.get() {
            if np.has_waiters()
                && !np.is_blocked()
                && now.saturating_sub(np.last_poll()) > POLL_EVERY
                && np.poll_now() > 0
            {
                busy = true;
            }
        }
        if sched
            .next_timer()
            .is_some_and(|when| when + BLOCKING_SLICE < now)
        {
            sched.wakep();
        }
        if retake(sched, now, &mut seen, &mut slices, &mut cands) > 0 {
            busy = true;
        }
        if now.saturating_sub(last_scavenge) >= SCAVENGE_EVERY {
            last_scavenge = now;
            sched.scavenge_stacks();
        }
        // Only Ms with a stop in progress (rare): no Arc clone per M per
        // round otherwise. `tend` queues and wakes, so not under `allm`.
        ms.clear();
        ms.extend(
            sched
                .allm
                .lock()
                .iter()
                .filter(|m| super::preempt::stopping(m))
                .cloned(),
        );
        if !ms.is_empty() && super::preempt::tend(sched, &ms) {
            busy = true;
        }
        // Work queued with a P idle and no one looking: a thread start the
        // OS refused, or a wake-up that found no thread (rule 6's retry).
        if sched.npidle.load(Ordering::SeqCst) > 0
            && sched.nmspinning.load(Ordering::SeqCst) == 0
            && (sched.global_len() > 0 || sched.all_ps().any(|p| !p.runq.is_empty()))
        {
            sched.wakep();
        }
        idle = if busy { 0 } else { idle.saturating_add(1) };
    }
}

/// Every P idle: nothing can block or hog, the blocked poller (if any)
/// watches the network and the timer sleeper the timers, so sleep until a P
/// goes busy (Go's `sysmonwait`). True if it slept.
fn deep_sleep(sched: &Sched) -> bool {
    {
        let _inner = sched.inner.lock();
        if sched.shutdown.load(Ordering::SeqCst) {
            return true; // the caller looks at the flag next
        }
        if sched.npidle.load(Ordering::SeqCst) < sched.nprocs.load(Ordering::SeqCst) {
            return false;
        }
        sched.sysmon.note.clear();
        // A hog stopped in the preemption handler needs us to queue its
        // proxy: it publishes its stop, then kicks; we cleared, then look
        // (Dekker: either we see it, or its kick comes after the clear).
        fence(Ordering::SeqCst);
        if sched
            .allm
            .lock()
            .iter()
            .any(|m| m.stop_state.load(Ordering::SeqCst) != 0)
        {
            return false;
        }
        sched.sysmon.sleeping.store(true, Ordering::Relaxed);
    }
    sched.sysmon.note.sleep(Some(DEEP_SLEEP));
    let _inner = sched.inner.lock();
    // Shutdown stores its flag before it wakes us, and the caller looks
    // at the flag after this clear.
    sched.sysmon.note.clear();
    true
}

/// Takes Ps from Ms that kept them too long; returns how many.
///
/// Two clocks: an M's status word (unchanged: the same run of the same
/// goroutine, or the same `blocking` call) and a P's `schedtick`
/// (unchanged: the same time slice, which `runnext` hand-offs and short
/// `blocking` calls inherit). A slice older than 10 ms is ended: the
/// running goroutine's preempt flag is set (it yields at its next
/// scheduling point, the end of a `blocking` call included) and the next
/// `runnext` hand-off on that P goes to the back of the queue. A single
/// run older than 10 ms is a hog: its thread is asked to stop and give up
/// its P (`preempt.rs`); if it has not stopped 50 ms later, its P is taken
/// and handed on. Either way at most `procs` threads execute goroutines.
fn retake(
    sched: &Sched,
    now: u64,
    seen: &mut HashMap<usize, (u64, u64)>,
    slices: &mut Vec<(u32, u64)>,
    cands: &mut Vec<(Arc<MShared>, usize, u64, u64)>,
) -> usize {
    {
        let allm = sched.allm.lock();
        if seen.len() > 2 * allm.len() + 16 {
            seen.retain(|id, _| allm.iter().any(|m| m.id == *id));
        }
        for m in allm.iter() {
            let p = m.p.load(Ordering::SeqCst);
            let st = m.status.load(Ordering::Acquire);
            let e = seen.entry(m.id).or_insert((st, now));
            let same_run = e.0 == st;
            if !same_run {
                *e = (st, now);
            }
            let held = now.saturating_sub(e.1);
            if p == NO_P {
                // A hog whose stop gave up (or was declined) runs on without
                // a P: ask again.
                if same_run
                    && st & 3 == S_G
                    && held >= RUN_SLICE
                    && m.stop_req.load(Ordering::Relaxed) == 0
                    && m.stop_state.load(Ordering::Relaxed) == 0
                {
                    super::preempt::request_stop(m, st);
                }
                continue;
            }
            match st & 3 {
                S_G | S_BLOCKING => {
                    if slices.len() <= p {
                        slices.resize(p + 1, (u32::MAX, now));
                    }
                    let tick = sched.p(p).schedtick.load(Ordering::Relaxed);
                    let s = &mut slices[p];
                    if s.0 != tick {
                        *s = (tick, now);
                    } else if now.saturating_sub(s.1) >= RUN_SLICE {
                        // The slice is over; flag it once and start anew.
                        s.1 = now;
                        sched.p(p).slice_expired.store(true, Ordering::Relaxed);
                        sched.preemptions.fetch_add(1, Ordering::Relaxed);
                        let g = m.curg.load(Ordering::Relaxed);
                        super::trace::slice_end(m.id, p, g);
                        if !g.is_null() {
                            // SAFETY: Gs are immortal (g.rs); a stale flag on a
                            // G that moved on costs it one extra yield.
                            unsafe { &*g }.preempt.store(true, Ordering::Relaxed);
                        }
                    }
                }
                _ => {}
            }
            if !same_run {
                continue;
            }
            match st & 3 {
                S_G if held >= RUN_SLICE => cands.push((m.clone(), p, st, held)),
                S_BLOCKING if held >= BLOCKING_SLICE => {
                    let nothing_else = sched.p(p).runq.is_empty()
                        && sched.global_len() == 0
                        && sched.nmspinning.load(Ordering::SeqCst)
                            + sched.npidle.load(Ordering::SeqCst)
                            > 0;
                    if nothing_else && held < RUN_SLICE {
                        continue;
                    }
                    cands.push((m.clone(), p, st, 0));
                }
                _ => {}
            }
        }
    }
    let mut n = 0;
    for (m, p, st, held) in cands.drain(..) {
        let hog = held > 0;
        if hog {
            let g = m.curg.load(Ordering::Relaxed);
            if !g.is_null() {
                // SAFETY: as above.
                unsafe { &*g }.preempt.store(true, Ordering::Relaxed);
            }
            // Ask first and leave the P (`preempt.rs`, step 1); take it
            // only from a hog that has not stopped for `STOP_ANSWER` (a
            // decline at an unsafe point is asked again by `tend`).
            if m.stop_state.load(Ordering::Acquire) != super::preempt::STOP_NONE {
                continue; // stopped: `tend` hands its P on
            }
            if m.stop_req.load(Ordering::Acquire) != st {
                sched.preemptions.fetch_add(1, Ordering::Relaxed);
                super::preempt::request_stop(&m, st);
                continue;
            }
            if held < RUN_SLICE + super::preempt::STOP_ANSWER {
                continue;
            }
        }
        if let Some(p) = m.take_p(p) {
            if hog {
                super::preempt::request_stop(&m, st);
            }
            sched.handoffs.fetch_add(1, Ordering::Relaxed);
            super::trace::retake(m.id, p.id(), hog);
            sched.handoffp(p);
            n += 1;
        }
    }
    n
}
