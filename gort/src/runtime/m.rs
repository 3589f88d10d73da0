//! M: an OS thread running the scheduler loop (Go's `schedule`,
//! `findRunnable`, `execute`, `stopm`).
//!
//! An M holds at most one P. Its loop finds a runnable goroutine
//! (`find_runnable`: timers, every 61st round the global queue, the local
//! queue, the global queue, then stealing half of another P's queue), runs
//! it until it yields, parks or exits, and repeats. With nothing to do it
//! gives its P back to the idle list and sleeps on its note, until another
//! thread hands it a P (`handoff`) or, if it is the runtime's timer
//! sleeper, until the earliest timer is due.

use std::cell::Cell;
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use corosensei::CoroutineResult;

use super::g::{self, pack, unpack, GRef, Switch, DEAD, RUNNABLE, RUNNING, WAITING};
use super::membarrier;
use super::note::Note;
use super::p::P;
use super::park::Waiter;
use super::sched::Sched;
use super::timers;
use crate::stack::overflow;

const NO_P: usize = usize::MAX;
/// `runnext` hand-offs in a row before the hand-off target goes to the back
/// of the queue, so a ping-ponging pair cannot starve the rest of the queue
/// (Go relies on sysmon's 10 ms time slice for this; a count costs no clock).
const MAX_STREAK: u32 = 64;

/// A goroutine struct's stack is checked for deep pages every this many
/// exits (see `stack::Stack::trim`).
const TRIM_EVERY: u8 = 8;

/// The part of an M other threads see.
pub(crate) struct MShared {
    pub(crate) id: usize,
    pub(crate) note: Note,
    nextp: AtomicUsize,
    next_spinning: AtomicBool,
}

impl MShared {
    /// Gives this (idle) M the P `p` and wakes it.
    pub(crate) fn handoff(&self, p: usize, spinning: bool) {
        self.next_spinning.store(spinning, Ordering::Relaxed);
        self.nextp.store(p, Ordering::Release);
        self.note.wakeup();
    }
}

/// This thread's M.
struct MCtx {
    sched: Arc<Sched>,
    shared: Arc<MShared>,
    p: Cell<usize>,
    spinning: Cell<bool>,
}

thread_local! {
    static M: Cell<*const MCtx> = const { Cell::new(std::ptr::null()) };
}

/// The P held by this thread's M, if this thread is an M of `sched` holding
/// one. Only valid to use on this thread while the M keeps the P.
#[inline(never)] // a thread-local read: see `g::current`
pub(crate) fn current_p(sched: &Sched) -> Option<&'static P> {
    let m = M.with(|m| m.get());
    if m.is_null() {
        return None;
    }
    // SAFETY: M is set for the lifetime of `mstart`'s frame, which owns the
    // MCtx; the reference is used only on this thread meanwhile.
    let m = unsafe { &*m };
    if !std::ptr::eq(Arc::as_ptr(&m.sched), sched) || m.p.get() == NO_P {
        return None;
    }
    // SAFETY: Ps live as long as their Sched, which outlives its Ms.
    Some(unsafe { &*(m.sched.p(m.p.get()) as *const P) })
}

/// Thread entry of an M started with P `p`.
pub(crate) fn mstart(sched: Arc<Sched>, id: usize, p: usize, spinning: bool) {
    overflow::install();
    let ctx = MCtx {
        shared: Arc::new(MShared {
            id,
            note: Note::default(),
            nextp: AtomicUsize::new(NO_P),
            next_spinning: AtomicBool::new(false),
        }),
        sched,
        p: Cell::new(p),
        spinning: Cell::new(spinning),
    };
    M.with(|m| m.set(&ctx));
    schedule(&ctx);
    M.with(|m| m.set(std::ptr::null()));
}

fn schedule(ctx: &MCtx) {
    while let Some((g, inherit)) = find_runnable(ctx) {
        if ctx.spinning.get() {
            reset_spinning(ctx);
        }
        execute(ctx, g, inherit);
    }
}

fn reset_spinning(ctx: &MCtx) {
    ctx.spinning.set(false);
    ctx.sched.nmspinning.fetch_sub(1, Ordering::SeqCst);
    ctx.sched.wakep();
}

fn become_spinning(ctx: &MCtx) {
    if !ctx.spinning.get() {
        ctx.spinning.set(true);
        ctx.sched.nmspinning.fetch_add(1, Ordering::SeqCst);
    }
}

/// Finds a goroutine to run, sleeping if there is none. `None`: shut down.
fn find_runnable(ctx: &MCtx) -> Option<(GRef, bool)> {
    let sched = &*ctx.sched;
    loop {
        if sched.shutdown.load(Ordering::Acquire) {
            release_p(ctx);
            return None;
        }
        if ctx.p.get() == NO_P {
            stopm(ctx);
            continue;
        }
        let p = sched.p(ctx.p.get());
        if p.id >= sched.nprocs.load(Ordering::Acquire) {
            retire(ctx, p);
            continue;
        }
        // SAFETY: this M holds `p`.
        let local = unsafe { p.local() };

        if sched.ntimers_hint.get() != u64::MAX || p.timers.len() > 0 {
            let now = timers::now();
            p.timers.run_due(now);
            sched.run_all_timers(now);
        }
        if local.schedtick % 61 == 0 && sched.global_len() > 0 {
            if let Some(g) = sched.global_get(p, 1) {
                return Some((g, false));
            }
        }
        if let Some((gp, inherit)) = p.runq.get() {
            // SAFETY: run queues hold GRef pointers.
            let g = unsafe { GRef::from_ptr(gp) };
            if inherit {
                local.streak += 1;
                if local.streak >= MAX_STREAK {
                    local.streak = 0;
                    if let Some(batch) = p.runq.put(gp, false) {
                        sched.global_put_batch(batch);
                    }
                    continue;
                }
            } else {
                local.streak = 0;
            }
            return Some((g, inherit));
        }
        if let Some(g) = sched.global_get(p, usize::MAX) {
            return Some((g, false));
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
            sched.pidleput(&mut inner, p.id);
            ctx.p.set(NO_P);
        }
        if ctx.spinning.get() {
            ctx.spinning.set(false);
            sched.nmspinning.fetch_sub(1, Ordering::SeqCst);
            // The delicate dance: a submitter may have seen us spinning and
            // not woken anyone. Look again now that we are not counted.
            fence(Ordering::SeqCst);
            if sched.all_ps().any(|q| !q.runq.is_empty()) || sched.global_len() > 0 {
                let mut inner = sched.inner.lock();
                if let Some(id) = sched.pidleget(&mut inner) {
                    drop(inner);
                    ctx.p.set(id);
                    become_spinning(ctx);
                    continue;
                }
            }
        }
        // A due timer is work too.
        if let Some(when) = sched.next_timer() {
            if when <= timers::now() {
                let mut inner = sched.inner.lock();
                if let Some(id) = sched.pidleget(&mut inner) {
                    ctx.p.set(id);
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
                // SAFETY: run queues hold GRef pointers.
                return Some(unsafe { GRef::from_ptr(g) });
            }
        }
    }
    None
}

/// Moves a P that `set_procs` removed out of service.
fn retire(ctx: &MCtx, p: &P) {
    let sched = &*ctx.sched;
    let mut batch = Vec::new();
    if let Some(g) = p.runq.take_runnext() {
        batch.push(g);
    }
    while let Some((g, _)) = p.runq.get() {
        batch.push(g);
    }
    if !batch.is_empty() {
        sched.global_put_batch(batch);
    }
    // SAFETY: this M holds `p`.
    let local = unsafe { p.local() };
    let cached = std::mem::take(&mut local.gfree);
    for g in cached {
        sched.put_g(g, None);
    }
    let mut inner = sched.inner.lock();
    sched.pidleput(&mut inner, p.id);
    ctx.p.set(NO_P);
    if let Some(id) = sched.pidleget(&mut inner) {
        ctx.p.set(id);
    }
    drop(inner);
    if ctx.spinning.get() {
        reset_spinning(ctx);
    }
    sched.wakep();
}

fn release_p(ctx: &MCtx) {
    if ctx.p.get() != NO_P {
        let sched = &*ctx.sched;
        let mut inner = sched.inner.lock();
        sched.pidleput(&mut inner, ctx.p.get());
        ctx.p.set(NO_P);
    }
}

/// Sleeps until handed a P, or (as the timer sleeper) until the earliest
/// timer; then takes an idle P if one is free to run the timers.
fn stopm(ctx: &MCtx) {
    let sched = &*ctx.sched;
    let m = &ctx.shared;
    let timeout = {
        let mut inner = sched.inner.lock();
        if sched.shutdown.load(Ordering::Acquire) {
            return;
        }
        m.note.clear();
        inner.idle_ms.push(m.clone());
        match sched.next_timer() {
            Some(when) if inner.timer_sleeper.is_none() => {
                inner.timer_sleeper = Some(m.id);
                sched.sleeper_until.store(when, Ordering::SeqCst);
                Some(Duration::from_nanos(when.saturating_sub(timers::now())))
            }
            _ => None,
        }
    };
    m.note.sleep(timeout);
    let mut inner = sched.inner.lock();
    if inner.timer_sleeper == Some(m.id) {
        inner.timer_sleeper = None;
        sched.sleeper_until.store(u64::MAX, Ordering::SeqCst);
    }
    if let Some(pos) = inner.idle_ms.iter().position(|x| Arc::ptr_eq(x, m)) {
        inner.idle_ms.swap_remove(pos);
    }
    let p = m.nextp.swap(NO_P, Ordering::Acquire);
    if p != NO_P {
        ctx.p.set(p);
        ctx.spinning.set(m.next_spinning.load(Ordering::Relaxed));
    } else if timeout.is_some() {
        if let Some(id) = sched.pidleget(&mut inner) {
            ctx.p.set(id);
        }
    }
}

/// Runs `g` on this M until it yields, parks or finishes.
fn execute(ctx: &MCtx, g: GRef, inherit: bool) {
    let sched = &*ctx.sched;
    let p = sched.p(ctx.p.get());
    if !inherit {
        // SAFETY: this M holds `p`.
        let local = unsafe { p.local() };
        local.schedtick = local.schedtick.wrapping_add(1);
    }
    loop {
        let (gen, _) = unpack(g.state.load(Ordering::Acquire));
        g.state.store(pack(gen, RUNNING), Ordering::Release);
        // SAFETY: the G came off a run queue, so this M owns it now.
        let coroutine = unsafe { g.ctx_mut() }
            .as_mut()
            .expect("a runnable G has a context");
        if !coroutine.started() && g.cancelled() {
            // Cancelled before it ever ran: drop its closure (which reports
            // the cancellation to its JoinHandle) without running it.
            coroutine.force_unwind();
            goexit(ctx, g);
            return;
        }
        g::set_current(Some(g));
        overflow::set_current(g.info.get());
        let result = coroutine.resume(());
        overflow::set_current(std::ptr::null());
        g::set_current(None);
        match result {
            CoroutineResult::Return(()) => {
                goexit(ctx, g);
                return;
            }
            CoroutineResult::Yield(Switch::Yield) => {
                g.state.store(pack(gen, RUNNABLE), Ordering::Release);
                if let Some(batch) = p.runq.put(g.as_ptr(), false) {
                    sched.global_put_batch(batch);
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
                    if g.state
                        .compare_exchange(
                            pack(gen, WAITING),
                            pack(gen, RUNNABLE),
                            Ordering::AcqRel,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                    {
                        continue;
                    }
                    return;
                }
                // A cancel that raced with this park: ready it ourselves.
                // Dekker with `begin_cancel` (see membarrier.rs): we stored
                // WAITING and load the cancelled set; it stores the set
                // (and runs a heavy barrier) and then loads states.
                membarrier::light();
                if g.cancelled()
                    && g.state
                        .compare_exchange(
                            pack(gen, WAITING),
                            pack(gen, RUNNABLE),
                            Ordering::SeqCst,
                            Ordering::Relaxed,
                        )
                        .is_ok()
                {
                    sched.global_put(g);
                }
                return;
            }
        }
    }
}

/// A goroutine returned: recycle its G and stack (Go's `goexit0`).
fn goexit(ctx: &MCtx, g: GRef) {
    let sched = &*ctx.sched;
    // SAFETY: the goroutine finished on this M, which owns it.
    let coroutine = unsafe { g.ctx_mut() }.take().expect("context present");
    let stack = coroutine.into_stack();
    let exits = g.exits.get().wrapping_add(1);
    g.exits.set(exits);
    if exits % TRIM_EVERY == 0 {
        stack.trim();
    }
    // SAFETY: as above.
    unsafe { *g.stack_mut() = Some(stack) };
    let (gen, _) = unpack(g.state.load(Ordering::Acquire));
    g.state.store(pack(gen + 1, DEAD), Ordering::Release);
    let p = sched.p(ctx.p.get());
    let group = g.group.load(Ordering::Relaxed);
    sched.put_g(g, Some(p));
    sched.goroutine_exited(p, group);
}
