//! Stopping a hog: how `procs` stays a bound (DESIGN.md rule 7).
//!
//! A goroutine that runs 10 ms without a scheduling point is a hog. It
//! must stop executing so that the others run, but it must stay on its
//! thread (it may hold thread-local borrows, rule 3), and no other
//! goroutine may be switched onto that thread. So sysmon sends its thread
//! `SIGURG` (Go's preemption signal), and the handler, on the thread's
//! alternate signal stack, parks the thread on its note, as
//! `lock_os_thread`'s `stoplockedm` does:
//!
//! 1. sysmon records the M's status word in `stop_req` (the stop is for
//!    this run of this goroutine only: any scheduler transition changes
//!    the word) and signals the thread. It leaves the P where it is, as
//!    Go's `preemptone` does: a thread that has not answered yet is one
//!    the OS is not running, which executes nothing;
//! 2. the handler stops only at a *safe point*: the request is current,
//!    the thread holds no gort lock (`LOCKS`, Go's `m.locks == 0`), is not
//!    unwinding a panic (std's backtrace machinery holds libc's loader
//!    lock) and is outside any P window; otherwise it returns and sysmon
//!    asks again next round. Stopping, it detaches its P into `stop_p`,
//!    sets `stop_state` to STOPPED and sleeps on its note;
//! 3. sysmon queues the M's *proxy*, a G that is never executed and stands
//!    for "hand this M a P", and only then hands the P on: at the tail of
//!    the detached P's queue, where `yield_now` would have put the hog, or
//!    if that queue is empty at the tail of the global one, where Go's
//!    `gopreempt_m` puts a preempted goroutine. Either way the hog waits
//!    its turn behind what was queued before it stopped;
//! 4. whichever M dequeues the proxy claims the stop (QUEUED -> HANDED)
//!    and gives the stopped M its own P through the M's mailbox, starting
//!    a new time slice on it (the hog's resumed run is a turn, as
//!    `execute` counts one);
//! 5. the handler takes the P as the thread's own and returns: the
//!    goroutine goes on where it was interrupted.
//!
//! A hog that has not stopped `STOP_ANSWER` after the request (it keeps
//! declining: it unwinds a panic for that long; it blocks `SIGURG`; the OS
//! does not run its thread) has its P taken and handed on; it runs on
//! without a P until a later signal finds it at a safe point, where it
//! stops as above with no P to detach.
//!
//! A stop is bounded: a thread the OS or a lock it holds elsewhere (libc's
//! allocator, say, interrupted inside `malloc`) keeps the others from
//! reaching its proxy would otherwise never run again, so after
//! `STOP_WAIT` the handler withdraws its stop (STOPPED -> NONE; a proxy
//! still queued is then dropped by whoever dequeues it) and runs on without
//! a P, as before this mechanism, and sysmon asks again later. So a stop
//! can only delay, never deadlock.
//!
//! The states and their transitions are `stop.rs`'s (loom-checked there).
//!
//! The handler does only what is async-signal-safe: atomics, thread-local
//! `Cell`s without destructors, and futex calls. `SA_RESTART` restarts the
//! system calls it interrupts.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::Once;

use super::g::GRef;
use super::m::{mctx, MShared, NO_P, S_G};
use super::p::PToken;
use super::sched::Sched;

thread_local! {
    /// gort locks this thread holds (`Lock` counts them).
    static LOCKS: Cell<u32> = const { Cell::new(0) };
}

/// A gort lock was taken (+1) or released (-1) on this thread. Never
/// inlined: a thread-local address must not be cached across a park (see
/// `g::current`).
#[inline(never)]
pub(crate) fn locks_add(d: i32) {
    LOCKS.with(|l| l.set(l.get().wrapping_add_signed(d)));
}

static INSTALL: Once = Once::new();
static mut PREV: std::mem::MaybeUninit<libc::sigaction> = std::mem::MaybeUninit::zeroed();

/// Installs the `SIGURG` handler once per process.
pub(crate) fn install() {
    INSTALL.call_once(|| {
        // SAFETY: a valid sigaction for our extern "C" handler; the previous
        // action is stored before any signal can reach the handler (the
        // Once orders this before any M starts).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGURG, &sa, (&raw mut PREV).cast::<libc::sigaction>());
        }
    });
}

/// sysmon: asks the M running goroutine code at status word `status` to
/// stop (with its P, or without it if sysmon took it).
pub(crate) fn request_stop(m: &MShared, status: u64) {
    super::trace::preempt(m.id);
    m.stop_req.store(status, Ordering::Release);
    signal(m);
}

fn signal(m: &MShared) {
    let t = m.pthread.load(Ordering::Acquire);
    if t != 0 {
        // SAFETY: `t` is the pthread_t of a live M (an M in `allm` has not
        // returned from `mstart`, which stores it first).
        unsafe { libc::pthread_kill(t as libc::pthread_t, libc::SIGURG) };
    }
}

pub(crate) use super::stop::{Stop, STOP_NONE};

impl MShared {
    /// This M's stop words, for the state machine of `stop.rs`.
    pub(crate) fn stop(&self) -> Stop<'_> {
        Stop {
            state: &self.stop_state,
            stop_p: &self.stop_p,
            nextp: &self.nextp,
            note: &self.note,
        }
    }
}

/// How long a stopped thread waits for a P before it runs on without one.
const STOP_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// How long sysmon waits for a hog to answer a stop before it takes the
/// hog's P anyway, in its clock's units (ns).
pub(crate) const STOP_ANSWER: u64 = 50_000_000;

/// Whether `m` has a stop requested or in progress (sysmon tends only those).
#[inline]
pub(crate) fn stopping(m: &MShared) -> bool {
    m.stop_req.load(Ordering::Relaxed) != 0 || m.stop_state.load(Ordering::Relaxed) != STOP_NONE
}

/// sysmon, every round: queues the proxies of stopped Ms so that they get
/// a P back and hands on the Ps they detached, drops requests that went
/// stale, and repeats requests not yet answered. True if it queued any.
pub(crate) fn tend(sched: &Sched, ms: &[std::sync::Arc<MShared>]) -> bool {
    let mut queued = false;
    for m in ms {
        if let Some(p) = m.stop().queue() {
            // The proxy first, then the P: the hog's turn comes after what
            // was queued before it stopped (step 3). Between the swap and
            // `handoffp` no M holds that P: its queue is ours to put to.
            if p == NO_P {
                sched.global_put(m.proxy);
                sched.wakep();
            } else {
                let q = &sched.p(p).runq;
                if q.is_empty() {
                    // Nothing else local: behind the global queue, as Go
                    // queues a preempted goroutine. On the local queue it
                    // would come straight back, and a P whose turns are all
                    // hogs' would not look at the global queue for 61 of
                    // them (0.6 s).
                    sched.global_put(m.proxy);
                } else if let Some(batch) = q.put(m.proxy.as_ptr(), false) {
                    // Behind the goroutines queued here, where `yield_now`
                    // would have put it.
                    sched.global_put_batch(batch);
                }
                sched.handoffs.fetch_add(1, Ordering::Relaxed);
                super::trace::hog_stopped(m.id, p);
                sched.handoffp(PToken::claim(p));
            }
            queued = true;
            continue;
        }
        if m.stop_state.load(Ordering::Relaxed) != STOP_NONE {
            continue;
        }
        let req = m.stop_req.load(Ordering::Acquire);
        if req == 0 {
            continue;
        }
        if m.status.load(Ordering::Acquire) != req {
            // The run it was for is over (the hog reached a scheduling
            // point).
            let _ = m
                .stop_req
                .compare_exchange(req, 0, Ordering::AcqRel, Ordering::Relaxed);
        } else {
            signal(m);
        }
    }
    queued
}

/// The scheduler dequeued `g`: if it is a stop proxy, claims the stop it
/// stands for and returns the stopped M to hand a P to; a proxy whose stop
/// is over (withdrawn, or already served) is dropped (`Some(None)`).
/// `None`: an ordinary goroutine.
#[inline]
pub(crate) fn proxy(g: GRef) -> Option<Option<&'static MShared>> {
    let m = g.proxy_for.load(Ordering::Acquire);
    if m.is_null() {
        return None;
    }
    // SAFETY: MShared structs are immortal (`m::new_shared` leaks one
    // count), so even a stale proxy points at a valid one; only a stopped
    // M satisfies the CAS below.
    let m = unsafe { &*m };
    Some(m.stop().claim().then_some(m))
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: errno is this thread's; we restore what we found.
    let errno = unsafe { *libc::__errno_location() };
    if !stop_here() {
        chain(sig, info, ctx);
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Not ours to handle: the previous handler, if it was a function.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: PREV was written once by `install` before the handler could
    // run, and only read since.
    let prev = unsafe { &*(&raw const PREV).cast::<libc::sigaction>() };
    let h = prev.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        return; // SIGURG's default is to ignore it
    }
    if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed as a three-argument one.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(h) };
        f(sig, info, ctx);
    } else {
        // SAFETY: the previous handler was installed as a one-argument one.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(h) };
        f(sig);
    }
}

/// Stops this thread if sysmon asked and it is at a safe point; returns
/// true if the signal was ours (whether or not it stopped).
fn stop_here() -> bool {
    let Some(m) = mctx() else { return false };
    let sh = &*m.shared;
    let req = sh.stop_req.load(Ordering::Acquire);
    if req == 0 {
        return false;
    }
    let safe = sh.status.load(Ordering::Relaxed) == req
        && req & 3 == S_G
        && !sh.using.load(Ordering::Relaxed)
        && LOCKS.with(|l| l.get()) == 0
        && !std::thread::panicking();
    if !safe {
        return true;
    }
    if sh
        .stop_req
        .compare_exchange(req, 0, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        return true;
    }
    // Detach our P if sysmon left it to us (step 2): outside any window
    // the P is ours to give up, and this CAS and sysmon's `take_p` (a CAS
    // on the same word) cannot both succeed.
    let held = sh.p.load(Ordering::SeqCst);
    let own = if held != NO_P
        && sh
            .p
            .compare_exchange(held, NO_P, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
    {
        held
    } else {
        NO_P
    };
    m.p.set(NO_P);
    sh.stop().publish(own);
    sysmon_kick(m);
    let p = sh.stop().await_p(STOP_WAIT);
    if let Some(p) = p {
        // Goroutine code: hold the P outside any window.
        m.hold(PToken::claim(p));
    }
    // A new status word, so sysmon starts this run's clock afresh.
    m.set_status(S_G);
    true
}

/// Wakes sysmon so it queues the stopped goroutine now rather than at its
/// next round (a futex wake: async-signal-safe).
fn sysmon_kick(m: &super::m::MCtx) {
    m.sched.sysmon.kick();
}
