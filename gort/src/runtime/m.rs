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
use std::sync::atomic::{fence, AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use corosensei::CoroutineResult;

use super::g::{self, pack, unpack, GRef, Switch, DEAD, G, RUNNABLE, RUNNING, WAITING};
use super::membarrier;
use super::note::Note;
use super::p::P;
use super::park::Waiter;
use super::sched::Sched;
use super::timers;
use crate::stack::overflow;

pub(crate) const NO_P: usize = usize::MAX;
/// `runnext` hand-offs in a row before the hand-off target goes to the back
/// of the queue, so a ping-ponging pair cannot starve the rest of the queue
/// (Go relies on sysmon's 10 ms time slice for this; a count costs no clock).
const MAX_STREAK: u32 = 64;

/// A goroutine struct's stack is checked for deep pages every this many
/// exits (see `stack::Stack::trim`).
const TRIM_EVERY: u8 = 8;

/// What an M is doing, for sysmon: the low two bits of `MShared::status`
/// (the rest counts transitions, so sysmon can tell "still the same").
pub(crate) const S_SCHED: u64 = 0;
/// Running a goroutine.
pub(crate) const S_G: u64 = 1;
/// Running a goroutine inside `blocking`.
pub(crate) const S_BLOCKING: u64 = 2;

/// The part of an M other threads see.
///
/// # P ownership and sysmon
///
/// `p` is the P this M holds. Besides the M itself, only sysmon changes it,
/// with a CAS from the P to `NO_P`, when the M's goroutine has kept the P
/// too long (inside `blocking`, or without a scheduling point). The M's
/// thread touches its P only inside a *window*: it sets `using`, then
/// (light barrier) checks that `p` is still its P. Sysmon, after its CAS
/// (heavy barrier), waits until `using` is clear before it hands the P on.
/// Either the thread sees its P gone, or sysmon sees it inside a window
/// and waits for it to leave (a Dekker pair on `using`/`p`, with the
/// asymmetric fences of `membarrier.rs`). The scheduler loop is one long
/// window, closed while a goroutine runs; the goroutine's own runtime
/// calls open short ones through [`current_p`].
pub(crate) struct MShared {
    pub(crate) id: usize,
    pub(crate) note: Note,
    nextp: AtomicUsize,
    next_spinning: AtomicBool,
    /// A goroutine handed over by `startlockedm` (a G locked to this M).
    nextg: AtomicPtr<G>,
    pub(crate) p: AtomicUsize,
    using: AtomicBool,
    pub(crate) status: AtomicU64,
    /// The goroutine running (sysmon sets its preempt flag).
    pub(crate) curg: AtomicPtr<G>,
    /// The goroutine wired to this M by `lock_os_thread` (null: none).
    locked_g: AtomicPtr<G>,
}

impl MShared {
    /// Gives this (idle) M the P `p` and wakes it.
    pub(crate) fn handoff(&self, p: usize, spinning: bool) {
        self.next_spinning.store(spinning, Ordering::Relaxed);
        self.nextp.store(p, Ordering::Release);
        self.note.wakeup();
    }

    /// Sysmon's side of the window protocol: takes P `p` from this M if it
    /// still holds it, and waits until the M's thread is out of its window.
    /// True if the P is now the caller's.
    pub(crate) fn take_p(&self, p: usize) -> bool {
        if self
            .p
            .compare_exchange(p, NO_P, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        membarrier::heavy();
        while self.using.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        true
    }
}

/// This thread's M.
struct MCtx {
    sched: Arc<Sched>,
    shared: Arc<MShared>,
    /// This thread's view of `shared.p` (valid inside a window).
    p: Cell<usize>,
    spinning: Cell<bool>,
    /// The locked goroutine exited still locked: the thread ends (Go).
    exit: Cell<bool>,
}

impl MCtx {
    /// Opens the scheduler's window after a goroutine ran: false if
    /// sysmon took the P meanwhile.
    fn reenter(&self) -> bool {
        let id = self.p.get();
        if id == NO_P {
            return false; // lost while the goroutine ran (and it noticed)
        }
        self.shared.using.store(true, Ordering::Relaxed);
        membarrier::light();
        if self.shared.p.load(Ordering::Relaxed) != id {
            self.lost();
            return false;
        }
        true
    }

    /// Sysmon took our P: forget it, and leave the window so sysmon (which
    /// waits for that) can hand the P on.
    fn lost(&self) {
        self.p.set(NO_P);
        self.shared.using.store(false, Ordering::Release);
    }

    /// Takes P `id` (from the idle list or a hand-off), in the scheduler
    /// loop (whose window is open while it holds a P).
    fn acquire(&self, id: usize) {
        self.shared.using.store(true, Ordering::Relaxed);
        self.hold(id);
    }

    /// Records P `id` as this M's (both views), without opening a window.
    fn hold(&self, id: usize) {
        self.p.set(id);
        self.shared.p.store(id, Ordering::SeqCst);
    }

    /// Gives up this M's P; false if sysmon took it first (then it is
    /// sysmon's to place, not ours). Either way the M holds no P and is
    /// out of any window afterwards.
    fn release(&self) -> bool {
        let id = self.p.replace(NO_P);
        let ok = id != NO_P
            && self
                .shared
                .p
                .compare_exchange(id, NO_P, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok();
        self.shared.using.store(false, Ordering::Release);
        ok
    }

    fn p(&self) -> Option<&P> {
        let id = self.p.get();
        (id != NO_P).then(|| self.sched.p(id))
    }

    fn set_status(&self, what: u64) {
        let s = self.shared.status.load(Ordering::Relaxed);
        self.shared
            .status
            .store(((s >> 2) + 1) << 2 | what, Ordering::Release);
    }
}

thread_local! {
    static M: Cell<*const MCtx> = const { Cell::new(std::ptr::null()) };
}

#[inline(always)]
fn mctx() -> Option<&'static MCtx> {
    let m = M.with(|m| m.get());
    // SAFETY: M is set for the lifetime of `mstart`'s frame, which owns the
    // MCtx; the reference is used only on this thread meanwhile.
    (!m.is_null()).then(|| unsafe { &*m })
}

/// The P held by this thread's M, inside a window (see [`MShared`]); the
/// window closes when the guard drops. `None` if this thread is not an M
/// of `sched` holding a P. Never keep the guard across a park.
#[inline(never)] // a thread-local read: see `g::current`
pub(crate) fn current_p(sched: &Sched) -> Option<PWindow> {
    let m = mctx()?;
    if !std::ptr::eq(Arc::as_ptr(&m.sched), sched) {
        return None;
    }
    let id = m.p.get();
    if id == NO_P {
        return None;
    }
    // SAFETY: Ps live as long as their Sched, which outlives its Ms.
    let p = unsafe { &*(m.sched.p(id) as *const P) };
    let sh = &*m.shared;
    if sh.using.load(Ordering::Relaxed) {
        // The scheduler loop's own window (timers, netpoll readiness).
        return Some(PWindow { p, using: None });
    }
    sh.using.store(true, Ordering::Relaxed);
    membarrier::light();
    if sh.p.load(Ordering::Relaxed) != id {
        m.lost();
        return None;
    }
    Some(PWindow {
        p,
        using: Some(&sh.using),
    })
}

/// A P borrowed inside a window; see [`current_p`].
pub(crate) struct PWindow {
    p: &'static P,
    using: Option<&'static AtomicBool>,
}

impl std::ops::Deref for PWindow {
    type Target = P;
    fn deref(&self) -> &P {
        self.p
    }
}

impl Drop for PWindow {
    #[inline]
    fn drop(&mut self) {
        if let Some(u) = self.using {
            u.store(false, Ordering::Release);
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

/// The running goroutine's M, for `lock_os_thread`.
#[inline(never)] // a thread-local read: see `g::current`
pub(crate) fn current_shared() -> Option<*const MShared> {
    mctx().map(|m| Arc::as_ptr(&m.shared))
}

/// Wires goroutine `g` to this M (`lock_os_thread`'s first level).
pub(crate) fn lock_to(m: *const MShared, g: GRef) {
    // SAFETY: `m` is the running M's shared part (alive while it runs `g`).
    unsafe { &*m }.locked_g.store(g.as_ptr(), Ordering::Release);
}

/// Unwires the M (`unlock_os_thread`'s last level).
pub(crate) fn unlock_from(m: *const MShared) {
    // SAFETY: as in `lock_to`: `m` runs the calling goroutine.
    unsafe { &*m }
        .locked_g
        .store(std::ptr::null_mut(), Ordering::Release);
}

/// Thread entry of an M started with P `p`.
pub(crate) fn mstart(sched: Arc<Sched>, shared: Arc<MShared>, p: usize, spinning: bool) {
    overflow::install();
    let ctx = MCtx {
        shared,
        sched,
        p: Cell::new(NO_P),
        spinning: Cell::new(spinning),
        exit: Cell::new(false),
    };
    ctx.acquire(p);
    M.with(|m| m.set(&ctx));
    let fatal = FatalOnUnwind("the scheduler");
    schedule(&ctx);
    std::mem::forget(fatal);
    M.with(|m| m.set(std::ptr::null()));
    ctx.sched.mexit(&ctx.shared);
}

/// Held by a runtime thread (an M, sysmon): a panic there, outside any
/// goroutine (whose panics stay inside it), is a runtime bug, so the
/// process ends loudly rather than lose the thread and its P (Go's `fatal
/// error`). Forgotten on the normal way out.
pub(crate) struct FatalOnUnwind(pub(crate) &'static str);

impl Drop for FatalOnUnwind {
    fn drop(&mut self) {
        eprintln!("gort: fatal: {} panicked (message above)", self.0);
        std::process::abort();
    }
}

/// A new M's shared part.
pub(crate) fn new_shared(id: usize) -> Arc<MShared> {
    Arc::new(MShared {
        id,
        note: Note::default(),
        nextp: AtomicUsize::new(NO_P),
        next_spinning: AtomicBool::new(false),
        nextg: AtomicPtr::new(std::ptr::null_mut()),
        p: AtomicUsize::new(NO_P),
        using: AtomicBool::new(true),
        status: AtomicU64::new(S_SCHED),
        curg: AtomicPtr::new(std::ptr::null_mut()),
        locked_g: AtomicPtr::new(std::ptr::null_mut()),
    })
}

fn schedule(ctx: &MCtx) {
    while let Some((g, inherit)) = find_runnable(ctx) {
        if ctx.spinning.get() {
            reset_spinning(ctx);
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
            if ctx.release() {
                sched.pidleput(&mut inner, p.id);
            }
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
                    ctx.acquire(id);
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
                    drop(inner);
                    ctx.acquire(id);
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
    if ctx.release() {
        sched.pidleput(&mut inner, p.id);
    }
    if let Some(id) = sched.pidleget(&mut inner) {
        drop(inner);
        ctx.acquire(id);
    } else {
        drop(inner);
    }
    if ctx.spinning.get() {
        reset_spinning(ctx);
    }
    sched.wakep();
}

fn release_p(ctx: &MCtx) {
    if let Some(p) = ctx.p() {
        let id = p.id;
        let sched = &*ctx.sched;
        let mut inner = sched.inner.lock();
        if ctx.release() {
            sched.pidleput(&mut inner, id);
        }
    }
}

/// Sleeps until handed a P. The M that finds the netpoller unwatched
/// blocks in `epoll_wait` instead (until an event, the earliest timer or
/// a wake-up) and runs what it readied; otherwise one M sleeps until the
/// earliest timer. Either then takes an idle P if one is free.
fn stopm(ctx: &MCtx) {
    let sched = &*ctx.sched;
    let m = &ctx.shared;
    // An M without a P is outside any window (sysmon may be waiting).
    debug_assert!(!m.using.load(Ordering::Relaxed) && m.p.load(Ordering::Relaxed) == NO_P);
    let np = sched.netpoll.get();
    let poll = np.is_some_and(|np| np.has_waiters() && !np.is_blocked());
    let timeout = {
        let mut inner = sched.inner.lock();
        if sched.shutdown.load(Ordering::Acquire) {
            return;
        }
        m.note.clear();
        if !poll {
            inner.idle_ms.push(m.clone());
        }
        match sched.next_timer() {
            Some(when) if inner.timer_sleeper.is_none() => {
                inner.timer_sleeper = Some(m.id);
                inner.timer_sleeper_polls = poll;
                sched.sleeper_until.store(when, Ordering::SeqCst);
                Some(Duration::from_nanos(when.saturating_sub(timers::now())))
            }
            Some(when) if poll => Some(Duration::from_nanos(when.saturating_sub(timers::now()))),
            _ => None,
        }
    };
    let polled = match np {
        Some(np) if poll => np.poll_blocking(timeout),
        _ => None,
    };
    if !poll {
        m.note.sleep(timeout);
    }
    let mut inner = sched.inner.lock();
    if inner.timer_sleeper == Some(m.id) {
        inner.timer_sleeper = None;
        inner.timer_sleeper_polls = false;
        sched.sleeper_until.store(u64::MAX, Ordering::SeqCst);
    }
    if let Some(pos) = inner.idle_ms.iter().position(|x| Arc::ptr_eq(x, m)) {
        inner.idle_ms.swap_remove(pos);
    }
    let p = m.nextp.swap(NO_P, Ordering::Acquire);
    if p != NO_P {
        drop(inner);
        ctx.acquire(p);
        ctx.spinning.set(m.next_spinning.load(Ordering::Relaxed));
    } else if timeout.is_some() || poll {
        // Timers came due or the poller readied goroutines (onto the
        // global queue): run them if a P is free.
        if polled.is_some() || timeout.is_some() {
            if let Some(id) = sched.pidleget(&mut inner) {
                drop(inner);
                ctx.acquire(id);
            }
        }
    }
}

/// Runs `g` on this M until it yields, parks or finishes.
fn execute(ctx: &MCtx, g: GRef, inherit: bool) {
    let sched = &*ctx.sched;
    if !inherit {
        if let Some(p) = ctx.p() {
            // SAFETY: this M holds `p`.
            let local = unsafe { p.local() };
            local.schedtick = local.schedtick.wrapping_add(1);
        }
    }
    g.preempt.store(false, Ordering::Relaxed);
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
        ctx.shared.curg.store(g.as_ptr(), Ordering::Relaxed);
        ctx.set_status(if g.blocking.get() > 0 {
            S_BLOCKING
        } else {
            S_G
        });
        // Close the scheduler's window while the goroutine runs.
        ctx.shared.using.store(false, Ordering::Release);
        let result = coroutine.resume(());
        ctx.reenter();
        ctx.set_status(S_SCHED);
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
                } else {
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

fn is_locked_here(ctx: &MCtx, g: GRef) -> bool {
    ctx.shared.locked_g.load(Ordering::Relaxed) == g.as_ptr()
}

/// Another M found `g`, which is locked to a different M: hand that M our
/// P and the goroutine, and go idle (Go's `startlockedm`).
fn startlockedm(ctx: &MCtx, g: GRef) {
    let sched = &*ctx.sched;
    let Some(id) = ctx.p().map(|p| p.id) else {
        sched.global_put(g);
        return;
    };
    if !ctx.release() {
        // Sysmon took our P at this very moment: let someone else try.
        sched.global_put(g);
        sched.wakep();
        return;
    }
    // SAFETY: a locked goroutine's M lives until the goroutine unlocks it
    // or exits, and `g` is neither running nor finished.
    let target = unsafe { &*g.locked_m.get() };
    target.nextg.store(g.as_ptr(), Ordering::Release);
    target.handoff(id, false);
}

/// The goroutine locked to this M stopped running: give the P away and
/// sleep until some M hands the goroutine back with a P (Go's
/// `stoplockedm`). Returns holding a P, ready to resume `g`.
fn stoplockedm(ctx: &MCtx, g: GRef) {
    let sched = &*ctx.sched;
    if let Some(p) = ctx.p() {
        let id = p.id;
        if ctx.release() {
            sched.handoffp(id);
        }
    }
    let m = &ctx.shared;
    loop {
        // `startlockedm` stores the goroutine, then hands the P over: the
        // P is the signal (its Acquire makes the goroutine visible).
        let p = m.nextp.swap(NO_P, Ordering::Acquire);
        if p != NO_P {
            let next = m.nextg.swap(std::ptr::null_mut(), Ordering::Relaxed);
            assert_eq!(
                next,
                g.as_ptr(),
                "gort: a locked M was handed another goroutine"
            );
            m.note.clear();
            ctx.acquire(p);
            return;
        }
        m.note.sleep(None);
        if m.nextp.load(Ordering::Acquire) == NO_P {
            // A stale wake-up (or shutdown, whose cancellation readies the
            // goroutine through the queues, so the hand-off still comes).
            m.note.clear();
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
    let locked = is_locked_here(ctx, g);
    g.blocking.set(0);
    g.lock_count.set(0);
    g.locked_m.set(std::ptr::null());
    let (gen, _) = unpack(g.state.load(Ordering::Acquire));
    g.state.store(pack(gen + 1, DEAD), Ordering::Release);
    let p = ctx.p();
    let group = g.group.load(Ordering::Relaxed);
    sched.put_g(g, p);
    sched.goroutine_exited(p, group);
    if locked {
        // Exited while locked to this thread: the thread may carry state
        // the goroutine changed, so it ends with it (Go does the same).
        ctx.shared
            .locked_g
            .store(std::ptr::null_mut(), Ordering::Release);
        if let Some(id) = ctx.p().map(|p| p.id) {
            if ctx.release() {
                sched.handoffp(id);
            }
        }
        ctx.exit.set(true);
    }
}
