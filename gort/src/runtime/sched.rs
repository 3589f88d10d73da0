//! The scheduler's shared state: global run queue, idle P and M lists, the
//! spinning count, and the operations that move goroutines between them
//! (Go's `schedt` and the functions around it in proc.go).
//!
//! Worker thread parking/unparking follows Go: `ready` and `go` put work on
//! a P and call `wakep`, which starts (or wakes) one *spinning* M only if
//! there is an idle P and no M is already spinning. A spinning M that finds
//! work stops spinning and calls `wakep` again, so wake-ups cascade only as
//! far as there is work. A spinning M that finds nothing releases its P,
//! decrements the spinning count, and then re-checks every run queue before
//! sleeping: either the submitter saw it spinning (and it sees the work on
//! re-check) or the submitter saw no spinner and woke an M. That argument is
//! model-checked in `loom_models.rs`.

use std::collections::VecDeque;
use std::io;
use std::panic::Location;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use super::g::{self, pack, unpack, GRef, CLAIMED, RUNNABLE, WAITING};
use super::group::{self, Counts, Groups};
use super::lock::Lock;
use super::m::{self, MShared};
use super::netpoll::Netpoll;
use super::p::{P, P_IDLE, P_RETIRED, P_RUNNING};
use super::sysmon::Sysmon;
use super::timers::Hint;
use crate::stack;

/// The most processors a runtime may have.
///
/// ```
/// let err = gort::runtime::Builder::new().procs(gort::runtime::MAX_PROCS + 1).build();
/// assert!(err.is_err());
/// ```
pub const MAX_PROCS: usize = 1024;

/// Process-wide goroutine ids (Go numbers goroutines from 1).
static NEXT_GOID: AtomicU64 = AtomicU64::new(1);
/// G shells released by dropped runtimes.
static SHELLS: Lock<Vec<GRef>> = Lock::new(Vec::new());
static NEXT_RUNTIME_ID: AtomicUsize = AtomicUsize::new(1);

pub(crate) struct Sched {
    pub(crate) id: usize,
    allp: Box<[OnceLock<P>]>,
    /// Ps created so far (all of `allp[..created]` are initialised).
    created: AtomicUsize,
    pub(crate) nprocs: AtomicUsize,
    pub(crate) npidle: AtomicUsize,
    pub(crate) nmspinning: AtomicUsize,
    pub(crate) inner: Lock<Inner>,
    global_len: AtomicUsize,
    /// Goroutine groups: live counts and cancellation (see `group.rs`).
    pub(crate) groups: Groups,
    /// Every G this runtime owns (live, or cached for reuse).
    allgs: Lock<Vec<GRef>>,
    /// Finished Gs (with their stacks) beyond the per-P caches.
    gfree: Lock<Vec<GRef>>,
    pub(crate) stack_size: usize,
    pub(crate) shutdown: AtomicBool,
    pub(crate) ntimers_hint: Hint,
    /// Deadline of the M sleeping for timers (u64::MAX: none).
    pub(crate) sleeper_until: AtomicU64,
    threads: Lock<Vec<JoinHandle<()>>>,
    /// Ms started so far (names and ids).
    pub(crate) nthreads: AtomicUsize,
    /// Ms alive now, and every M's shared part (sysmon scans them).
    pub(crate) allm: Lock<Vec<Arc<MShared>>>,
    /// Cap on live Ms (`Builder::max_threads`, Go's SetMaxThreads).
    pub(crate) max_threads: usize,
    pub(crate) steals: AtomicU64,
    /// Ps sysmon took from goroutines in `blocking` or hogging their P.
    pub(crate) handoffs: AtomicU64,
    /// The epoll instance, created with the first socket.
    pub(crate) netpoll: OnceLock<Netpoll>,
    /// The monitor thread's state (see `sysmon.rs`).
    pub(crate) sysmon: Sysmon,
}

pub(crate) struct Inner {
    pub(crate) global: VecDeque<GRef>,
    pub(crate) idle_ps: Vec<usize>,
    pub(crate) idle_ms: Vec<Arc<MShared>>,
    pub(crate) timer_sleeper: Option<usize>,
    /// The timer sleeper is blocked in `epoll_wait` (wake it through the
    /// netpoller, not its note).
    pub(crate) timer_sleeper_polls: bool,
}

impl Sched {
    pub(crate) fn new(procs: usize, stack_size: usize, max_threads: usize) -> Arc<Sched> {
        let allp: Box<[OnceLock<P>]> = (0..MAX_PROCS).map(|_| OnceLock::new()).collect();
        for (i, slot) in allp.iter().enumerate().take(procs) {
            let _ = slot.set(P::new(i));
        }
        Arc::new(Sched {
            id: NEXT_RUNTIME_ID.fetch_add(1, Ordering::Relaxed),
            allp,
            created: AtomicUsize::new(procs),
            nprocs: AtomicUsize::new(procs),
            npidle: AtomicUsize::new(procs),
            nmspinning: AtomicUsize::new(0),
            inner: Lock::new(Inner {
                global: VecDeque::new(),
                idle_ps: (0..procs).rev().collect(),
                idle_ms: Vec::new(),
                timer_sleeper: None,
                timer_sleeper_polls: false,
            }),
            global_len: AtomicUsize::new(0),
            groups: Groups::default(),
            allgs: Lock::new(Vec::new()),
            gfree: Lock::new(Vec::new()),
            stack_size,
            shutdown: AtomicBool::new(false),
            ntimers_hint: Hint::default(),
            sleeper_until: AtomicU64::new(u64::MAX),
            threads: Lock::new(Vec::new()),
            nthreads: AtomicUsize::new(0),
            allm: Lock::new(Vec::new()),
            max_threads,
            steals: AtomicU64::new(0),
            handoffs: AtomicU64::new(0),
            netpoll: OnceLock::new(),
            sysmon: Sysmon::default(),
        })
    }

    #[inline]
    pub(crate) fn p(&self, id: usize) -> &P {
        self.allp[id].get().expect("P initialised")
    }

    /// Every P ever created (retired ones included: their timers still run).
    pub(crate) fn all_ps(&self) -> impl Iterator<Item = &P> {
        self.allp[..self.created.load(Ordering::Acquire)]
            .iter()
            .filter_map(|p| p.get())
    }

    pub(crate) fn created(&self) -> usize {
        self.created.load(Ordering::Acquire)
    }

    // ---- global run queue -------------------------------------------------

    pub(crate) fn global_len(&self) -> usize {
        self.global_len.load(Ordering::Acquire)
    }

    pub(crate) fn global_put(&self, g: GRef) {
        let mut inner = self.inner.lock();
        inner.global.push_back(g);
        self.global_len.store(inner.global.len(), Ordering::Release);
    }

    pub(crate) fn global_put_batch(&self, batch: Vec<*mut g::G>) {
        let mut inner = self.inner.lock();
        // SAFETY: the batch came out of a run queue, which holds GRef pointers.
        inner
            .global
            .extend(batch.into_iter().map(|p| unsafe { GRef::from_ptr(p) }));
        self.global_len.store(inner.global.len(), Ordering::Release);
    }

    /// Takes a batch from the global queue for P `p` (Go's `globrunqget`):
    /// returns one G to run and moves up to `max - 1` more (and at most a
    /// fair share) to `p`'s queue.
    pub(crate) fn global_get(&self, p: &P, max: usize) -> Option<GRef> {
        if self.global_len() == 0 {
            return None;
        }
        let mut inner = self.inner.lock();
        self.global_get_locked(&mut inner, p, max)
    }

    pub(crate) fn global_get_locked(&self, inner: &mut Inner, p: &P, max: usize) -> Option<GRef> {
        let len = inner.global.len();
        if len == 0 {
            return None;
        }
        let procs = self.nprocs.load(Ordering::Relaxed).max(1);
        let n = (len / procs + 1)
            .min(len)
            .min(max)
            .min(super::runq::CAP as usize / 2);
        let g = inner.global.pop_front();
        for _ in 1..n {
            let Some(x) = inner.global.pop_front() else {
                break;
            };
            if let Some(batch) = p.runq.put(x.as_ptr(), false) {
                // SAFETY: pointers from the run queue are GRefs.
                inner
                    .global
                    .extend(batch.into_iter().map(|q| unsafe { GRef::from_ptr(q) }));
            }
        }
        self.global_len.store(inner.global.len(), Ordering::Release);
        g
    }

    // ---- idle Ps and waking Ms --------------------------------------------

    /// Takes an idle P (lock held).
    pub(crate) fn pidleget(&self, inner: &mut Inner) -> Option<usize> {
        let id = inner.idle_ps.pop()?;
        self.npidle.fetch_sub(1, Ordering::SeqCst);
        self.sysmon.p_busy();
        self.p(id).status.store(P_RUNNING, Ordering::Release);
        Some(id)
    }

    /// Puts P `id` on the idle list, or retires it if `set_procs` removed
    /// it (lock held).
    pub(crate) fn pidleput(&self, inner: &mut Inner, id: usize) {
        if id >= self.nprocs.load(Ordering::Acquire) {
            self.p(id).status.store(P_RETIRED, Ordering::Release);
            return;
        }
        self.p(id).status.store(P_IDLE, Ordering::Release);
        inner.idle_ps.push(id);
        self.npidle.fetch_add(1, Ordering::SeqCst);
    }

    /// Starts one spinning M if there is an idle P and no M spinning
    /// (Go's `wakep`).
    #[inline]
    pub(crate) fn wakep(&self) {
        fence(Ordering::SeqCst);
        if self.npidle.load(Ordering::SeqCst) == 0 || self.nmspinning.load(Ordering::SeqCst) != 0 {
            return;
        }
        self.wakep_slow();
    }

    #[cold]
    fn wakep_slow(&self) {
        if self
            .nmspinning
            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let p = {
            let mut inner = self.inner.lock();
            self.pidleget(&mut inner)
        };
        match p {
            Some(p) => self.startm(p, true),
            None => {
                self.nmspinning.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Hands P `p` to an idle M, or to a new thread.
    pub(crate) fn startm(&self, p: usize, spinning: bool) {
        let m = self.inner.lock().idle_ms.pop();
        match m {
            Some(m) => m.handoff(p, spinning),
            None => self.newm(p, spinning),
        }
    }

    /// Places a P that its M gave up or sysmon took (Go's `handoffp`): to
    /// a thread if there is work for it (its queue, the global queue, its
    /// timers, an unwatched netpoller, or no one looking for work), else
    /// on the idle list.
    pub(crate) fn handoffp(&self, id: usize) {
        let p = self.p(id);
        if id < self.nprocs.load(Ordering::Acquire) {
            if !p.runq.is_empty() || self.global_len() > 0 || p.timers.len() > 0 {
                self.startm(id, false);
                return;
            }
            if self.nmspinning.load(Ordering::SeqCst) + self.npidle.load(Ordering::SeqCst) == 0
                && self
                    .nmspinning
                    .compare_exchange(0, 1, Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok()
            {
                self.startm(id, true);
                return;
            }
            if self
                .netpoll
                .get()
                .is_some_and(|np| np.has_waiters() && !np.is_blocked())
            {
                self.startm(id, false);
                return;
            }
        }
        let mut inner = self.inner.lock();
        self.pidleput(&mut inner, id);
        drop(inner);
        // Work may have been queued while the P was in transit.
        if self.global_len() > 0 {
            self.wakep();
        }
    }

    fn newm(&self, p: usize, spinning: bool) {
        let live = {
            let mut allm = self.allm.lock();
            if allm.len() >= self.max_threads {
                drop(allm);
                // Undo what the caller took, then fail loudly.
                {
                    let mut inner = self.inner.lock();
                    self.pidleput(&mut inner, p);
                }
                if spinning {
                    self.nmspinning.fetch_sub(1, Ordering::SeqCst);
                }
                thread_exhaustion(self.max_threads);
            }
            let n = self.nthreads.fetch_add(1, Ordering::Relaxed) + 1;
            let shared = m::new_shared(n);
            allm.push(shared.clone());
            (n, shared)
        };
        let (n, shared) = live;
        let sched = self.arc();
        let handle = std::thread::Builder::new()
            .name(format!("gort-{}-m{n}", self.id))
            .spawn(move || m::mstart(sched, shared, p, spinning));
        match handle {
            Ok(h) => self.threads.lock().push(h),
            Err(e) => panic!(
                "gort: cannot start an OS thread for the scheduler ({n} threads so far): {e}"
            ),
        }
        super::sysmon::start(self);
    }

    /// An M's thread is ending.
    pub(crate) fn mexit(&self, m: &Arc<MShared>) {
        self.allm.lock().retain(|x| !Arc::ptr_eq(x, m));
    }

    /// An `Arc` to self (Scheds only ever live in an Arc).
    pub(crate) fn arc(&self) -> Arc<Sched> {
        // SAFETY: every Sched is created by `Sched::new` inside an Arc, and
        // `self` is borrowed from a live one, so the count is at least 1.
        unsafe {
            Arc::increment_strong_count(self as *const Sched);
            Arc::from_raw(self as *const Sched)
        }
    }

    // ---- timers -------------------------------------------------------------

    /// A timer at `when` was added: make sure some M will notice it.
    pub(crate) fn timer_added(&self, when: u64) {
        self.ntimers_hint.lower(when);
        let until = self.sleeper_until.load(Ordering::SeqCst);
        if until == u64::MAX {
            self.wakep();
        } else if when < until {
            let inner = self.inner.lock();
            if inner.timer_sleeper_polls {
                if let Some(np) = self.netpoll.get() {
                    np.wake();
                }
            } else if let Some(id) = inner.timer_sleeper {
                if let Some(m) = inner.idle_ms.iter().find(|m| m.id == id) {
                    m.note.wakeup();
                }
            }
        }
    }

    /// Runs the due timers of every P if the hint says one may be due.
    pub(crate) fn run_all_timers(&self, now: u64) -> usize {
        if self.ntimers_hint.get() > now {
            return 0;
        }
        self.ntimers_hint.reset();
        let mut ran = 0;
        let mut next = u64::MAX;
        for p in self.all_ps() {
            let (n, nx) = p.timers.run_due(now);
            ran += n;
            if let Some(nx) = nx {
                next = next.min(nx);
            }
        }
        self.ntimers_hint.lower(next);
        ran
    }

    /// The earliest timer of all Ps.
    pub(crate) fn next_timer(&self) -> Option<u64> {
        self.all_ps().filter_map(|p| p.timers.next()).min()
    }

    // ---- goroutines ---------------------------------------------------------

    /// Creates a goroutine running `f` and queues it (Go's `newproc`).
    /// `f` must not unwind (the public layer catches panics).
    pub(crate) fn spawn<F>(&self, f: F, opts: SpawnOpts) -> io::Result<GRef>
    where
        F: FnOnce() + Send + 'static,
    {
        if self.shutdown.load(Ordering::Acquire) {
            return Err(io::Error::other("gort: the runtime has shut down"));
        }
        let size = opts.stack_size.unwrap_or(self.stack_size);
        // The P window closes before anything below can switch.
        let window = m::current_p(self);
        let here = window.as_deref();
        let g = self.get_g(size, here)?;
        // SAFETY: `g` was just taken from a free list or allocated: no one
        // else owns it until it is queued below.
        let stack = unsafe { g.stack_mut().take() }.expect("get_g returns a G with a stack");
        let id = next_goid(here);
        g.id.store(id, Ordering::Relaxed);
        g.preempt.store(false, Ordering::Relaxed);
        let group = match (opts.group, g::current()) {
            (Some(group), _) => group,
            (None, Some(cur)) if std::ptr::eq(cur.sched(), self) => {
                cur.group.load(Ordering::Relaxed)
            }
            _ => group::DETACHED,
        };
        g.group.store(group, Ordering::Relaxed);
        g.location.set(opts.location);
        let name: Option<&'static str> = opts.name.map(|name| {
            let mut slot = g.name.lock();
            let name: &str = slot.insert(name.into_boxed_str());
            // SAFETY: the name lives in the immortal G until `put_g` clears
            // it after the goroutine finished; the overflow handler reads it
            // only while this goroutine runs.
            unsafe { std::mem::transmute::<&str, &'static str>(name) }
        });
        let (guard_lo, guard_hi) = stack.guard_range();
        // SAFETY: we own `g` (see above).
        unsafe {
            *g.info.get() = stack::overflow::StackInfo {
                guard_lo,
                guard_hi,
                size: stack.size(),
                id,
                name,
            };
        }
        g.sched
            .store(self as *const Sched as *mut Sched, Ordering::Release);
        let ctx = g::Context::with_stack(stack, move |y: &g::GYielder, ()| {
            /// The public layer catches every panic; one escaping `f` would
            /// be a gort bug, and unwinding into the scheduler worse.
            struct AbortOnUnwind(u64);
            impl Drop for AbortOnUnwind {
                fn drop(&mut self) {
                    eprintln!("gort: fatal: a panic escaped goroutine {}", self.0);
                    std::process::abort();
                }
            }
            let guard = AbortOnUnwind(id);
            let g = g::current().expect("a goroutine runs with CURRENT set");
            g.yielder.set(y as *const g::GYielder);
            f();
            std::mem::forget(guard);
        });
        // SAFETY: we own `g`.
        unsafe { *g.ctx_mut() = Some(ctx) };
        self.groups.count(here.map(|p| &p.counts), group, 1);
        let (gen, _) = unpack(g.state.load(Ordering::Relaxed));
        // A goroutine spawned into a cancelled group is dropped unrun by
        // `execute`, which checks the group (see group.rs).
        g.state.store(pack(gen, RUNNABLE), Ordering::Release);
        match here {
            Some(p) => {
                if let Some(batch) = p.runq.put(g.as_ptr(), true) {
                    self.global_put_batch(batch);
                }
            }
            None => self.global_put(g),
        }
        drop(window);
        self.wakep();
        super::park::preempt_point();
        Ok(g)
    }

    /// A G with a stack of `size` bytes: from the P's cache (refilled from
    /// the runtime's list in batches, as Go's `gfget`), the process-wide
    /// shells, or new.
    fn get_g(&self, size: usize, here: Option<&P>) -> io::Result<GRef> {
        if size == self.stack_size {
            let cached = match here {
                Some(p) => {
                    // SAFETY: `current_p` returned our own P, held by this thread.
                    let local = unsafe { p.local() };
                    if local.gfree.is_empty() {
                        let mut global = self.gfree.lock();
                        let n = global.len().min(super::p::GFREE_REFILL);
                        let at = global.len() - n;
                        local.gfree.extend(global.drain(at..));
                    }
                    local.gfree.pop()
                }
                None => self.gfree.lock().pop(),
            };
            if let Some(g) = cached {
                return Ok(g);
            }
        }
        let shell = SHELLS.lock().pop();
        let g = shell.unwrap_or_else(GRef::alloc);
        let stack = match stack::alloc(size) {
            Ok(s) => s,
            Err(e) => {
                SHELLS.lock().push(g);
                return Err(e);
            }
        };
        // SAFETY: the shell is unowned; we are its only user.
        unsafe { *g.stack_mut() = Some(stack) };
        self.allgs.lock().push(g);
        Ok(g)
    }

    /// Recycles a finished G (with its stack) into the caches.
    pub(crate) fn put_g(&self, g: GRef, here: Option<&P>) {
        // SAFETY: the G is dead; the M that ran it owns it.
        let stack = unsafe { g.stack_mut() };
        let default = stack.as_ref().is_some_and(|s| s.size() == self.stack_size);
        if !default {
            if let Some(s) = stack.take() {
                stack::free(s);
            }
        }
        match here {
            Some(p) if default => {
                // SAFETY: `here` is the P held by this thread.
                let local = unsafe { p.local() };
                local.gfree.push(g);
                if local.gfree.len() > super::p::GFREE_MAX {
                    let half = local.gfree.len() / 2;
                    let moved: Vec<GRef> = local.gfree.drain(..half).collect();
                    self.gfree.lock().extend(moved);
                }
            }
            _ => self.gfree.lock().push(g),
        }
        // SAFETY: as above.
        if unsafe { (*g.info.get()).name.is_some() } {
            *g.name.lock() = None;
        }
    }

    /// Every P's live counts.
    fn counts(&self) -> Box<dyn Iterator<Item = &Counts> + '_> {
        Box::new(self.all_ps().map(|p| &p.counts))
    }

    /// The number of live goroutines.
    pub(crate) fn goroutines(&self) -> usize {
        self.groups.live_count(self.counts(), group::ALL)
    }

    /// A goroutine of `group` finished on P `p` (or on an M without one).
    pub(crate) fn goroutine_exited(&self, p: Option<&P>, group: u32) {
        self.groups
            .exited(p.map(|p| &p.counts), group, || self.counts());
    }

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

    /// Like `wakep`, but also when an M is already spinning (used when
    /// work is queued from outside the runtime in bulk).
    fn wakep_force(&self) {
        let p = {
            let mut inner = self.inner.lock();
            self.pidleget(&mut inner)
        };
        if let Some(p) = p {
            self.startm(p, false);
        }
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

    /// Go's GOMAXPROCS(n): returns the old value; 0 only queries.
    pub(crate) fn set_procs(&self, n: usize) -> usize {
        let mut inner = self.inner.lock();
        let old = self.nprocs.load(Ordering::Acquire);
        if n == 0 || n == old {
            return old;
        }
        let n = n.min(MAX_PROCS);
        if n > old {
            for id in old..n {
                if id >= self.created() {
                    let _ = self.allp[id].set(P::new(id));
                    self.created.store(id + 1, Ordering::Release);
                }
            }
            self.nprocs.store(n, Ordering::Release);
            for id in old..n {
                let p = self.p(id);
                if p.status() == P_RETIRED {
                    p.status.store(P_IDLE, Ordering::Release);
                    inner.idle_ps.push(id);
                    self.npidle.fetch_add(1, Ordering::SeqCst);
                }
            }
            drop(inner);
            self.wakep();
        } else {
            self.nprocs.store(n, Ordering::Release);
            // Idle Ps beyond n retire now; running ones when their M next
            // schedules (m.rs moves their queue to the global queue).
            let mut removed = 0;
            inner.idle_ps.retain(|&id| {
                if id >= n {
                    self.allp[id]
                        .get()
                        .expect("idle P exists")
                        .status
                        .store(P_RETIRED, Ordering::Release);
                    removed += 1;
                    false
                } else {
                    true
                }
            });
            self.npidle.fetch_sub(removed, Ordering::SeqCst);
        }
        old
    }
}

/// Too many threads: Go's "thread exhaustion", naming the setting. In a
/// goroutine (which asked for the thread, say by spawning) it panics there;
/// on a runtime thread nothing could catch it, so the process ends.
#[cold]
fn thread_exhaustion(max: usize) -> ! {
    let msg = format!(
        "gort: thread exhaustion: the runtime needs more than max_threads = {max} OS threads \
         (goroutines blocked in `blocking` or hogging their processor each hold one); \
         raise it with runtime::Builder::max_threads"
    );
    if g::current().is_some() {
        panic!("{msg}");
    }
    eprintln!("{msg}");
    std::process::abort();
}

/// Per-goroutine spawn options.
pub(crate) struct SpawnOpts {
    pub(crate) name: Option<String>,
    pub(crate) stack_size: Option<usize>,
    pub(crate) location: &'static Location<'static>,
    /// The group to start in (a run's main goroutine); `None` inherits.
    pub(crate) group: Option<u32>,
}

/// Go's per-P goid cache: take ids from the global counter in batches of
/// 16, so spawning on many Ps does not contend on one cache line.
fn next_goid(here: Option<&P>) -> u64 {
    const BATCH: u64 = 16;
    let Some(p) = here else {
        return NEXT_GOID.fetch_add(1, Ordering::Relaxed);
    };
    // SAFETY: `here` is the P this thread holds.
    let local = unsafe { p.local() };
    if local.goid_next == local.goid_end {
        local.goid_next = NEXT_GOID.fetch_add(BATCH, Ordering::Relaxed);
        local.goid_end = local.goid_next + BATCH;
    }
    local.goid_next += 1;
    local.goid_next - 1
}

/// Makes a parked goroutine runnable (Go's `goready`): queued in the
/// waker's `runnext` when the waker runs on this runtime, else on the
/// runtime's global queue; then wakes an idle P.
///
/// `next` false queues it at the tail instead (timers: several goroutines
/// whose timers fire together then run in deadline order, rather than each
/// kicking the previous one out of `runnext`).
pub(crate) fn ready(g: GRef, gen: u64, next: bool) -> bool {
    if g.state
        .compare_exchange(
            pack(gen, WAITING),
            pack(gen, RUNNABLE),
            Ordering::SeqCst,
            Ordering::Relaxed,
        )
        .is_err()
    {
        return false;
    }
    enqueue(g, next);
    true
}

/// Claims a parked goroutine for a waker (WAITING -> CLAIMED under the
/// park's generation): from here on nothing else can ready it (a stale
/// waiter, a timer, a cancellation), so the claimer may write into the
/// goroutine's parked frame before [`ready_claimed`].
pub(crate) fn claim(g: GRef, gen: u64) -> bool {
    g.state
        .compare_exchange(
            pack(gen, WAITING),
            pack(gen, CLAIMED),
            Ordering::SeqCst,
            Ordering::Relaxed,
        )
        .is_ok()
}

/// Readies a goroutine this caller claimed (see [`claim`]).
pub(crate) fn ready_claimed(g: GRef, gen: u64, next: bool) {
    debug_assert_eq!(g.state.load(Ordering::Relaxed), pack(gen, CLAIMED));
    g.state.store(pack(gen, RUNNABLE), Ordering::Release);
    enqueue(g, next);
}

fn enqueue(g: GRef, next: bool) {
    let sched = g.sched();
    match m::current_p(sched) {
        Some(p) => {
            if let Some(batch) = p.runq.put(g.as_ptr(), next) {
                drop(p);
                sched.global_put_batch(batch);
            }
        }
        None => sched.global_put(g),
    }
    sched.wakep();
}
