//! Deadlock detection (Go's `checkdead`): "all goroutines are asleep".
//!
//! A process is deadlocked when nothing in it can make progress: every
//! goroutine of every runtime is parked on a gort primitive, nothing
//! pending could wake one (no timer, no socket wait, no goroutine inside
//! `blocking` or runnable), and every thread of the process is either one
//! of gort's own (Ms, sysmon) or a plain thread parked in a gort call
//! without a deadline. Then no one will ever wake anyone, and the main
//! goroutine of each `run` gets a panic from its blocking call naming the
//! deadlock, with the report of every goroutine, as Go's fatal error does.
//!
//! It is checked when a runtime's last P goes idle (an M about to sleep
//! finds every P idle), never by polling. The check must never see a
//! deadlock that is not one, so it is conservative and double-collects:
//! the thread counts first (a plain thread counted parked did everything
//! it did before parking, so its wake-ups are visible to the scans after
//! it), then every runtime's state twice, comparing every goroutine's
//! state word (its generation moves at every park and wake) and the idle
//! counts; any difference, any timer (even a stale one: when it fires, its
//! P goes idle again and the check runs again), any socket waiter, any
//! thread that could act means "not now". A thread outside gort that is
//! blocked elsewhere (a `std` channel, a read of stdin) could act as far as
//! anyone can tell, so it rules a deadlock out; `#[gort::test]`'s
//! `deadlock_after` covers that case for tests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use super::g::{self, unpack, GRef};
use super::lock::Lock;
use super::sched::Sched;

/// Every runtime of the process.
static RUNTIMES: Lock<Vec<Weak<Sched>>> = Lock::new(Vec::new());

/// Threads gort started that are running (Ms and sysmon).
static GORT_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Plain threads parked in a gort call with no deadline.
static PARKED_THREADS: AtomicUsize = AtomicUsize::new(0);

/// `run` calls in progress in the process (no deadlock to report without).
pub(crate) static RUNS: AtomicUsize = AtomicUsize::new(0);

/// The panic message (the report follows it).
pub(crate) const MESSAGE: &str = "gort: all goroutines are asleep - deadlock!";

/// Every live runtime of the process.
pub(crate) fn runtimes() -> Vec<Arc<Sched>> {
    RUNTIMES.lock().iter().filter_map(Weak::upgrade).collect()
}

pub(crate) fn register(s: &Arc<Sched>) {
    let mut all = RUNTIMES.lock();
    all.retain(|w| w.strong_count() > 0);
    all.push(Arc::downgrade(s));
}

/// Held by each thread gort starts, for its lifetime.
pub(crate) struct GortThread(());

impl GortThread {
    pub(crate) fn enter() -> GortThread {
        GORT_THREADS.fetch_add(1, Ordering::SeqCst);
        GortThread(())
    }
}

impl Drop for GortThread {
    fn drop(&mut self) {
        GORT_THREADS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Held by a plain thread while it is parked in a gort call without a
/// deadline (it cannot act until someone wakes it).
pub(crate) struct ParkedThread(());

impl ParkedThread {
    pub(crate) fn enter() -> ParkedThread {
        PARKED_THREADS.fetch_add(1, Ordering::SeqCst);
        if RUNS.load(Ordering::SeqCst) == 0 {
            return ParkedThread(()); // plain threads only: no main to tell
        }
        // The last thread that could act may be this one: a runtime whose
        // Ps all went idle before it parked did not see it asleep.
        let idle = RUNTIMES.lock().iter().filter_map(Weak::upgrade).find(|s| {
            s.npidle.load(Ordering::SeqCst) == s.nprocs.load(Ordering::SeqCst)
                && !s.mains.lock().is_empty()
        });
        if let Some(s) = idle {
            check(&s);
        }
        ParkedThread(())
    }
}

impl Drop for ParkedThread {
    fn drop(&mut self) {
        PARKED_THREADS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The process's thread count (`/proc/self/status`); `None` if unknown
/// (then no deadlock is ever declared).
fn process_threads() -> Option<usize> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// One pass over every runtime: the state word of each goroutine, or
/// `None` if something can still make progress.
fn collect(rts: &[Arc<Sched>]) -> Option<Vec<u64>> {
    if rts.iter().any(|s| pending(s)) {
        return None;
    }
    let mut words = Vec::new();
    for s in rts {
        for g in s.allgs.lock().iter() {
            let w = g.state.load(Ordering::SeqCst);
            match unpack(w).1 {
                g::IDLE | g::DEAD => {}
                g::WAITING => words.push(w),
                // Runnable, running (maybe inside `blocking`), or being
                // woken right now (CLAIMED).
                _ => return None,
            }
        }
    }
    Some(words)
}

/// Whether `s` has work or a wake-up pending: a busy P, a queued
/// goroutine, a timer, a socket waiter or a delivery in progress. Cheap:
/// no goroutine is looked at.
fn pending(s: &Sched) -> bool {
    s.shutdown.load(Ordering::Acquire)
        || s.npidle.load(Ordering::SeqCst) != s.nprocs.load(Ordering::SeqCst)
        || s.global_len() != 0
        || s.all_ps()
            .any(|p| !p.runq.is_empty() || p.timers.len() != 0)
        || s.netpoll.get().is_some_and(|np| np.may_wake())
}

/// Checks for a deadlock; called by an M of `sched` that found every P
/// idle and is about to sleep. If there is one, readies the main goroutine
/// of every `run` with the report to panic with.
pub(crate) fn check(sched: &Sched) {
    if sched.mains.lock().is_empty() {
        // Nobody to tell (the default runtime serving plain threads).
        return;
    }
    let rts: Vec<Arc<Sched>> = RUNTIMES.lock().iter().filter_map(Weak::upgrade).collect();
    // Cheap looks first (an idle runtime usually has a timer or a socket,
    // and a program usually has a thread of its own): the scans of every
    // goroutine below run only when a deadlock is likely.
    if rts.iter().any(|s| pending(s)) {
        return;
    }
    let (t1, p1) = (
        GORT_THREADS.load(Ordering::SeqCst),
        PARKED_THREADS.load(Ordering::SeqCst),
    );
    match process_threads() {
        Some(n) if n <= t1 + p1 => {}
        _ => return, // some thread could act
    }
    let Some(first) = collect(&rts) else { return };
    if first.is_empty() {
        return; // nothing waits: not a deadlock
    }
    let Some(second) = collect(&rts) else { return };
    if first != second
        || GORT_THREADS.load(Ordering::SeqCst) != t1
        || PARKED_THREADS.load(Ordering::SeqCst) != p1
    {
        return;
    }
    declare(&rts);
}

/// A deadlock in `rts`: the report of every goroutine, then each main
/// goroutine of a `run` is woken to panic with it.
pub(crate) fn declare(rts: &[Arc<Sched>]) {
    let mut report = Vec::new();
    for s in rts {
        let _ = crate::debug::write_report(&mut report, &s.goroutine_infos());
        report.push(b'\n');
    }
    let report = String::from_utf8_lossy(&report).trim_end().to_string();
    for s in rts {
        let mains = s.mains.lock().clone();
        if mains.is_empty() {
            continue;
        }
        *s.deadlock_report.lock() = Some(report.clone());
        let targets: Vec<GRef> = s
            .allgs
            .lock()
            .iter()
            .copied()
            .filter(|g| mains.contains(&g.id.load(Ordering::Relaxed)))
            .collect();
        for g in targets {
            let (gen, status) = unpack(g.state.load(Ordering::Acquire));
            if status == g::WAITING {
                g.deadlocked.store(true, Ordering::SeqCst);
                if g.unpark(gen) {
                    s.global_put(g);
                    s.wakep();
                } else {
                    g.deadlocked.store(false, Ordering::SeqCst);
                }
            }
        }
    }
}

/// One runtime's goroutine state words if every goroutine of it waits with
/// nothing pending (threads outside are not considered: `#[gort::test]`'s
/// `deadlock_after` judges by time instead).
pub(crate) fn quiescent(s: &Arc<Sched>) -> Option<Vec<u64>> {
    collect(std::slice::from_ref(s)).filter(|w| !w.is_empty())
}

/// The main goroutine `g` was woken by [`check`]: panics with the report.
#[cold]
pub(crate) fn panic_now(g: GRef) -> ! {
    g.deadlocked.store(false, Ordering::Relaxed);
    let report = g.sched().deadlock_report.lock().take().unwrap_or_default();
    panic!("{MESSAGE}\n\n{report}")
}
