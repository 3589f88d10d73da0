//! The scheduling loop (Go's `schedule`, `findRunnable`, `execute`,
//! `goexit0`).
//!
//! An M holds at most one P. Its loop finds a runnable goroutine
//! (`find_runnable`: timers, every 61st round the global queue, the local
//! queue, the global queue, the netpoller, then stealing half of another
//! P's queue), runs it until it yields, parks or exits, and repeats. With
//! nothing to do it gives its P back to the idle list and sleeps
//! (`idle.rs`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use corosensei::CoroutineResult;

use super::g::{self, pack, unpack, GRef, Switch, DEAD, RUNNABLE, RUNNING, WAITING};
use super::idle::stopm;
use super::lockosthread::{startlockedm, stoplockedm};
use super::m::{MCtx, S_BLOCKING, S_G, S_SCHED};
use super::membarrier;
use super::p::P;
use super::park::Waiter;
use super::procs::retire;
use super::sched::Sched;
use super::spinning;
use super::throw::throw;
use super::timers;
use crate::stack::overflow;

/// A goroutine struct's stack is checked for deep pages every this many
/// exits (see `stack::Stack::trim`).
const TRIM_EVERY: u8 = 8;

pub(crate) fn schedule(ctx: &MCtx) {
    while let Some((g, inherit)) = find_runnable(ctx) {
        if ctx.spinning.get() {
            reset_spinning(ctx);
        }
        if let Some(stopped) = super::preempt::proxy(g) {
            // A stopped hog's stand-in: hand that M our P.
            if let Some(m) = stopped {
                hand_p(ctx, m);
            }
            continue;
        }
        let locked = g.locked_m.get();
        if !locked.is_null() && !std::ptr::eq(locked, Arc::as_ptr(&ctx.shared)) {
            startlockedm(ctx, g);
            continue;
        }
        execute(ctx, g, inherit);
        if ctx.exit.get() {
            return;
        }
    }
}

pub(crate) fn reset_spinning(ctx: &MCtx) {
    ctx.spinning.set(false);
    spinning::leave(&ctx.sched.nmspinning);
    ctx.sched.wakep();
}

pub(crate) fn become_spinning(ctx: &MCtx) {
    if !ctx.spinning.get() {
        ctx.spinning.set(true);
        spinning::enter(&ctx.sched.nmspinning);
    }
}

/// Finds a goroutine to run, sleeping if there is none. `None`: shut down.
pub(crate) fn find_runnable(ctx: &MCtx) -> Option<(GRef, bool)> {
    let sched = &*ctx.sched;
    loop {
        if sched.shutdown.load(Ordering::Acquire) {
            release_p(ctx);
            return None;
        }
        let Some(p) = ctx.p() else {
            stopm(ctx);
            continue;
        };
        if p.id >= sched.nprocs.load(Ordering::Acquire) {
            retire(ctx, p);
            continue;
        }
        // SAFETY: this M holds `p` (inside the scheduler's window).
        let local = unsafe { p.local() };
        if p.scavenge.load(Ordering::Relaxed) {
            p.scavenge.store(false, Ordering::Relaxed);
            super::spawn::scavenge(&local.gfree);
        }

        if sched.ntimers_hint.get() != u64::MAX || p.timers.len() > 0 {
            let now = timers::now();
            p.timers.run_due(now);
            sched.run_all_timers(now);
        }
        // Every 61st slice: the global queue and the network first, even
        // with local work (Go's fairness rule, DESIGN.md rule 7).
        if p.schedtick.load(Ordering::Relaxed) % 61 == 0 {
            if sched.global_len() > 0 {
                if let Some(g) = sched.global_get(p, 1) {
                    return Some((g, false));
                }
            }
            if let Some(np) = sched.netpoll.get() {
                if np.has_waiters() && !np.is_blocked() {
                    np.poll_now();
                }
            }
        }
        if let Some((gp, inherit)) = p.runq.get() {
            // SAFETY: run queues hold GRef pointers.
            let g = unsafe { GRef::from_ptr(gp) };
            if inherit && p.slice_expired.swap(false, Ordering::Relaxed) {
                // The hand-off chain used up its slice: behind the others.
                if let Some(batch) = p.runq.put(gp, false) {
                    sched.global_put_batch(batch);
                }
                continue;
            }
            return Some((g, inherit));
        }
        if let Some(g) = sched.global_get(p, usize::MAX) {
            return Some((g, false));
        }
        // Poll the network before stealing (Go: "only an optimization").
        if let Some(np) = sched.netpoll.get() {
            if !np.is_blocked() && np.poll_now() > 0 {
                continue;
            }
        }

        // Steal, unless enough Ms are spinning already (at most half the
        // busy Ps' worth).
        let procs = sched.nprocs.load(Ordering::Relaxed);
        let busy = procs.saturating_sub(sched.npidle.load(Ordering::SeqCst));
        if ctx.spinning.get() || 2 * sched.nmspinning.load(Ordering::SeqCst) < busy {
            become_spinning(ctx);
            if let Some(g) = steal_work(sched, p, local) {
                return Some((g, false));
            }
        }

        // Nothing to do: give the P back.
        {
            let mut inner = sched.inner.lock();
            if let Some(g) = sched.global_get_locked(&mut inner, p, usize::MAX) {
                return Some((g, false));
            }
            if let Some(p) = ctx.release() {
                sched.pidleput(&mut inner, p);
            }
        }
        if ctx.spinning.get() {
            ctx.spinning.set(false);
            // The delicate dance: a submitter may have seen us spinning and
            // not woken anyone. Look again now that we are not counted.
            if spinning::give_up(&sched.nmspinning, || {
                sched.all_ps().any(|q| !q.runq.is_empty()) || sched.global_len() > 0
            }) {
                let mut inner = sched.inner.lock();
                if let Some(p) = sched.pidleget(&mut inner) {
                    drop(inner);
                    ctx.acquire(p);
                    become_spinning(ctx);
                    continue;
                }
            }
        }
        // A due timer is work too.
        if let Some(when) = sched.next_timer() {
            if when <= timers::now() {
                let mut inner = sched.inner.lock();
                if let Some(p) = sched.pidleget(&mut inner) {
                    drop(inner);
                    ctx.acquire(p);
                    continue;
                }
            }
        }
    }
}

/// Steals half of a random victim's run queue (4 rounds over all Ps; the
/// last round also takes `runnext` and runs the victims' due timers).
fn steal_work(sched: &Sched, p: &P, local: &mut super::p::Local) -> Option<GRef> {
    let n = sched.created();
    if n <= 1 {
        return None;
    }
    for round in 0..4 {
        let last = round == 3;
        let start = (local.rand() % n as u64) as usize;
        for i in 0..n {
            let v = (start + i) % n;
            if v == p.id {
                continue;
            }
            let victim = sched.p(v);
            if last && victim.timers.len() > 0 {
                victim.timers.run_due(timers::now());
                if let Some((g, _)) = p.runq.get() {
                    // SAFETY: run queues hold GRef pointers.
                    return Some(unsafe { GRef::from_ptr(g) });
                }
            }
            if let Some(g) = victim.runq.steal_into(&p.runq, last) {
                sched.steals.fetch_add(1, Ordering::Relaxed);
                super::trace::steal(sched.id, v, p.id, g);
                // SAFETY: run queues hold GRef pointers.
                return Some(unsafe { GRef::from_ptr(g) });
            }
        }
    }
    None
}

pub(crate) fn release_p(ctx: &MCtx) {
    if ctx.p().is_some() {
        let sched = &*ctx.sched;
        let mut inner = sched.inner.lock();
        if let Some(p) = ctx.release() {
            sched.pidleput(&mut inner, p);
        }
    }
}

/// Runs `g` on this M until it yields, parks or finishes.
pub(crate) fn execute(ctx: &MCtx, g: GRef, inherit: bool) {
    let sched = &*ctx.sched;
    if !inherit {
        if let Some(p) = ctx.p() {
            // A new time slice (a `runnext` hand-off inherits the current one).
            let t = p.schedtick.load(Ordering::Relaxed);
            p.schedtick.store(t.wrapping_add(1), Ordering::Relaxed);
            p.slice_expired.store(false, Ordering::Relaxed);
        }
    }
    g.preempt.store(false, Ordering::Relaxed);
    loop {
        let (gen, status) = unpack(g.state.load(Ordering::Acquire));
        if status != RUNNABLE {
            // Two owners (a G queued twice, run while parked or after it
            // exited): running it would share one stack between two runs.
            throw("execute: the goroutine is not runnable");
        }
        g.state.store(pack(gen, RUNNING), Ordering::Release);
        // SAFETY: the G came off a run queue, so this M owns it now.
        let coroutine = unsafe { g.ctx_mut() }
            .as_mut()
            .expect("a runnable G has a context");
        g::set_current(Some(g));
        overflow::set_current(g.info.get());
        ctx.shared.curg.store(g.as_ptr(), Ordering::Relaxed);
        ctx.set_status(if g.blocking.get() > 0 {
            S_BLOCKING
        } else {
            S_G
        });
        super::trace::run_begin(g);
        // Close the scheduler's window while the goroutine runs.
        ctx.shared.using.store(false, Ordering::Release);
        let result = coroutine.resume(());
        ctx.set_status(S_SCHED);
        ctx.reenter();
        super::trace::run_end();
        overflow::set_current(std::ptr::null());
        g::set_current(None);
        match result {
            CoroutineResult::Return(()) => {
                goexit(ctx, g);
                return;
            }
            CoroutineResult::Yield(Switch::Yield) => {
                g.state.store(pack(gen, RUNNABLE), Ordering::Release);
                match ctx.p() {
                    Some(p) if !is_locked_here(ctx, g) => {
                        if let Some(batch) = p.runq.put(g.as_ptr(), false) {
                            sched.global_put_batch(batch);
                        }
                    }
                    _ => {
                        // No P (sysmon took it, or `blocking` returned
                        // without one): queue globally, as Go's
                        // `exitsyscall0` and preemption do.
                        sched.global_put(g);
                        sched.wakep();
                    }
                }
                if is_locked_here(ctx, g) {
                    stoplockedm(ctx, g);
                    continue;
                }
                return;
            }
            CoroutineResult::Yield(Switch::Park) => {
                let after = g.after.take().expect("park sets its after step");
                let gen = gen + 1;
                g.state.store(pack(gen, WAITING), Ordering::Release);
                // SAFETY: `after.data` points at the closure in the parked
                // goroutine's `park` frame, which stays untouched until the
                // goroutine is readied, and is consumed exactly once here.
                let parked = unsafe { (after.call)(after.data, Waiter::G { g, gen }) };
                if !parked {
                    // Resume at once, unless a cancellation readied (and
                    // queued) it meanwhile: then the queue runs it.
                    if g.unpark(gen) {
                        continue;
                    }
                } else {
                    // A cancel that raced with this park: ready it ourselves.
                    // Dekker with `begin_cancel` (see membarrier.rs): we stored
                    // WAITING and load the cancelled set; it stores the set
                    // (and runs a heavy barrier) and then loads states.
                    membarrier::light();
                    if g.must_unwind() && g.unpark(gen) {
                        sched.global_put(g);
                    }
                }
                if is_locked_here(ctx, g) {
                    stoplockedm(ctx, g);
                    continue;
                }
                return;
            }
        }
    }
}

pub(crate) fn is_locked_here(ctx: &MCtx, g: GRef) -> bool {
    ctx.shared.locked_g.load(Ordering::Relaxed) == g.as_ptr()
}

/// A goroutine returned: recycle its G and stack (Go's `goexit0`).
pub(crate) fn goexit(ctx: &MCtx, g: GRef) {
    let sched = &*ctx.sched;
    // SAFETY: the goroutine finished on this M, which owns it.
    let coroutine = unsafe { g.ctx_mut() }.take().expect("context present");
    let stack = coroutine.into_stack();
    let exits = g.exits.get().wrapping_add(1);
    g.exits.set(exits);
    if exits % TRIM_EVERY == 0 {
        stack.trim();
        g.stack_dirty.set(false);
    } else {
        g.stack_dirty.set(true);
    }
    // SAFETY: as above.
    unsafe { *g.stack_mut() = Some(stack) };
    let locked = is_locked_here(ctx, g);
    g.blocking.set(0);
    g.lock_count.set(0);
    g.locked_m.set(std::ptr::null());
    let (gen, status) = unpack(g.state.load(Ordering::Acquire));
    if status != RUNNING {
        throw("goexit: the goroutine that returned is not running");
    }
    // Counted out before it is DEAD, so whoever sees it DEAD (a run's end
    // waiting for its main) also sees the count.
    let p = ctx.p();
    let group = g.group.load(Ordering::Relaxed);
    sched.goroutine_exited(p, group);
    g.state.store(pack(gen + 1, DEAD), Ordering::Release);
    sched.put_g(g, p);
    if locked {
        // Exited while locked to this thread: the thread may carry state
        // the goroutine changed, so it ends with it (Go does the same).
        ctx.shared
            .locked_g
            .store(std::ptr::null_mut(), Ordering::Release);
        if let Some(p) = ctx.release() {
            sched.handoffp(p);
        }
        ctx.exit.set(true);
    }
}

/// Gives this M's P to the stopped M `m` whose stop it claimed (see
/// `preempt.rs`); this M then looks for work without a P (and sleeps).
fn hand_p(ctx: &MCtx, m: &super::m::MShared) {
    let sched = &*ctx.sched;
    if let Some(p) = ctx.p() {
        // The hog's resumed run is a new turn on this P (as `execute`
        // counts one): sysmon's slice clock and the every-61st-turn look
        // at the global queue both go by it.
        let t = p.schedtick.load(Ordering::Relaxed);
        p.schedtick.store(t.wrapping_add(1), Ordering::Relaxed);
    }
    match ctx.release() {
        Some(p) => {
            m.handoff(p, false);
            m.note.wakeup();
        }
        None => {
            // No P to give after all (sysmon took ours): put the stop back
            // as it was and let another M serve it.
            m.stop().unclaim();
            sched.global_put(m.proxy);
            sched.wakep();
        }
    }
}
