//! `blocking(f)`: a known blocking call (Go's `entersyscall` /
//! `exitsyscall`).
//!
//! The goroutine keeps its thread and, at first, its P: a short call costs
//! two status stores and one window check. The M's status says "blocking",
//! and if the call is still running after ~20 µs, sysmon takes the P (with
//! its run queue) and hands it to another thread (`sysmon.rs`). On return
//! the goroutine keeps its P if it still has it, else takes an idle one,
//! else yields: `execute` queues it on the global queue and its thread
//! goes idle, as Go's `exitsyscall0`.
//!
//! The blocking state belongs to the goroutine, not the thread: if `f`
//! parks (say it receives from a channel), the goroutine resumes, maybe on
//! another M, still inside `blocking` (`execute` restores the status).

use std::sync::atomic::Ordering;

use super::g::{self, GRef};
use super::m::{mctx, S_BLOCKING, S_G};
use super::park;
use super::window::current_p;

/// Runs `f`, a call that may block its thread (a system call, a blocking
/// library), without stalling the other goroutines: if `f` blocks for more
/// than about 20 µs, the goroutine's processor and its run queue are handed
/// to another thread (Go does the same for system calls). Returns `f`'s
/// value; a panic in `f` propagates. On a plain thread it just calls `f`.
///
/// ```
/// let rt = gort::runtime::Builder::new().procs(1).build().unwrap();
/// let n = rt.run(|| {
///     let other = gort::go(|| 1 + 1); // runs while main sleeps below
///     let v = gort::blocking(|| {
///         std::thread::sleep(std::time::Duration::from_millis(20));
///         40
///     });
///     v + other.join().unwrap()
/// });
/// assert_eq!(n, 42);
/// ```
#[track_caller]
pub fn blocking<F: FnOnce() -> R, R>(f: F) -> R {
    let Some(g) = g::current() else {
        return f();
    };
    let depth = g.blocking.get();
    g.blocking.set(depth + 1);
    if depth == 0 {
        // Where `debug` says it blocks (a store: no clock read here).
        g.set_waiting_at(std::panic::Location::caller());
        enter_blocking();
    }
    let _exit = Exit(g);
    f()
}

struct Exit(GRef);

impl Drop for Exit {
    fn drop(&mut self) {
        let g = self.0;
        let depth = g.blocking.get() - 1;
        g.blocking.set(depth);
        // No P to go on with (sysmon gave it away): queue for one (a
        // goroutine unwinding a panic waits on its own thread); one that
        // used up its time slice meanwhile yields (rule 7).
        if depth == 0 && (!exit_blocking() || g.preempt.swap(false, Ordering::Relaxed)) {
            park::yield_g(g);
        }
    }
}

/// Enters `blocking` for the running goroutine's M: from now on sysmon may
/// hand its P to another thread (Go's `entersyscall`).
#[inline(never)] // a thread-local read: see `g::current`
pub(crate) fn enter_blocking() {
    if let Some(m) = mctx() {
        m.set_status(S_BLOCKING);
    }
}

/// Leaves `blocking` (Go's `exitsyscall`): true if the M still has its P
/// or got an idle one; false if the goroutine must queue for a P (the
/// caller yields, and `execute` queues it globally).
#[inline(never)] // a thread-local read: see `g::current`
pub(crate) fn exit_blocking() -> bool {
    let Some(m) = mctx() else { return true };
    m.set_status(S_G);
    if let Some(p) = current_p(&m.sched) {
        drop(p);
        return true;
    }
    // The P is gone: take an idle one if there is one.
    let sched = &*m.sched;
    if sched.npidle.load(Ordering::SeqCst) > 0 {
        let mut inner = sched.inner.lock();
        if let Some(id) = sched.pidleget(&mut inner) {
            drop(inner);
            // Goroutine code: hold the P outside any window.
            m.hold(id);
            return true;
        }
    }
    false
}
