//! M: an OS thread of the scheduler (Go's `m`, `newm`, `mstart`).
//!
//! An M runs the scheduling loop (`schedule.rs`) while it holds a P, and
//! sleeps on its note while it has none (`idle.rs`). `MShared` is the part
//! other threads see (its P, its status for sysmon, its hand-off mailbox);
//! `MCtx` is the thread's own view, reachable through a thread-local while
//! the thread runs `mstart`.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use super::g::{self, GRef, G};
use super::note::Note;
use super::p::{PToken, P};
use super::sched::Sched;
use crate::stack::overflow;

pub(crate) use super::pslot::NO_P;

/// What an M is doing, for sysmon: the low two bits of `MShared::status`
/// (the rest counts transitions, so sysmon can tell "still the same").
pub(crate) const S_SCHED: u64 = 0;
/// Running a goroutine.
pub(crate) const S_G: u64 = 1;
/// Running a goroutine inside `blocking`.
pub(crate) const S_BLOCKING: u64 = 2;

/// The part of an M other threads see. `p` and `using` follow the window
/// protocol of `window.rs`; `nextp`/`next_spinning` (and `nextg` for a
/// locked goroutine) are the one-slot hand-off mailbox of an idle M
/// (`idle.rs`).
pub(crate) struct MShared {
    pub(crate) id: usize,
    pub(crate) note: Note,
    pub(crate) nextp: AtomicUsize,
    pub(crate) next_spinning: AtomicBool,
    /// A goroutine handed over by `startlockedm` (a G locked to this M).
    pub(crate) nextg: AtomicPtr<G>,
    pub(crate) p: AtomicUsize,
    pub(crate) using: AtomicBool,
    pub(crate) status: AtomicU64,
    /// The goroutine running (sysmon sets its preempt flag).
    pub(crate) curg: AtomicPtr<G>,
    /// The goroutine wired to this M by `lock_os_thread` (null: none).
    pub(crate) locked_g: AtomicPtr<G>,
    /// The thread's pthread_t (0 until `mstart` stores it), for signals.
    pub(crate) pthread: AtomicU64,
    /// sysmon asked the hog running at this status word to stop (0: no
    /// request); see `preempt.rs`.
    pub(crate) stop_req: AtomicU64,
    /// Where a stop stands (`preempt::STOP_*`).
    pub(crate) stop_state: AtomicU8,
    /// The P a hog detached when it stopped, for sysmon to hand on
    /// (`NO_P`: none; see `preempt.rs`).
    pub(crate) stop_p: AtomicUsize,
    /// This M's stand-in on the run queues while it is stopped: whoever
    /// dequeues it hands this M its P (never executed; see `preempt.rs`).
    pub(crate) proxy: GRef,
}

/// This thread's M.
pub(crate) struct MCtx {
    pub(crate) sched: Arc<Sched>,
    pub(crate) shared: Arc<MShared>,
    /// This thread's view of `shared.p` (valid inside a window).
    pub(crate) p: Cell<usize>,
    pub(crate) spinning: Cell<bool>,
    /// The locked goroutine exited still locked: the thread ends (Go).
    pub(crate) exit: Cell<bool>,
}

impl MCtx {
    pub(crate) fn p(&self) -> Option<&P> {
        let id = self.p.get();
        (id != NO_P).then(|| self.sched.p(id))
    }

    pub(crate) fn set_status(&self, what: u64) {
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
pub(crate) fn mctx() -> Option<&'static MCtx> {
    let m = M.with(|m| m.get());
    // SAFETY: M is set for the lifetime of `mstart`'s frame, which owns the
    // MCtx; the reference is used only on this thread meanwhile.
    (!m.is_null()).then(|| unsafe { &*m })
}

/// Thread entry of an M started with the P in its mailbox (`newm`).
pub(crate) fn mstart(sched: Arc<Sched>, shared: Arc<MShared>) {
    let _counted = super::deadlock::GortThread::enter();
    let p = PToken::claim(shared.nextp.swap(NO_P, Ordering::Acquire));
    let spinning = shared.next_spinning.load(Ordering::Relaxed);
    overflow::install();
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() };
    shared.pthread.store(me as u64, Ordering::Release);
    let ctx = MCtx {
        shared,
        sched,
        p: Cell::new(NO_P),
        spinning: Cell::new(spinning),
        exit: Cell::new(false),
    };
    ctx.acquire(p);
    super::trace::thread_m(ctx.sched.id, ctx.shared.id);
    M.with(|m| m.set(&ctx));
    let fatal = FatalOnUnwind("the scheduler");
    super::schedule::schedule(&ctx);
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
    let m = Arc::new(MShared {
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
        pthread: AtomicU64::new(0),
        stop_req: AtomicU64::new(0),
        stop_state: AtomicU8::new(0),
        stop_p: AtomicUsize::new(NO_P),
        proxy: GRef::alloc(),
    });
    m.proxy
        .proxy_for
        .store(Arc::as_ptr(&m).cast_mut(), Ordering::Release);
    // Immortal, as Gs are: a stale proxy may point here after the thread
    // ended (a few hundred bytes per thread ever started).
    std::mem::forget(m.clone());
    m
}

impl Sched {
    pub(crate) fn newm(&self, p: PToken, spinning: bool) {
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
            let shared = new_shared(n);
            allm.push(shared.clone());
            (n, shared)
        };
        let (n, shared) = live;
        let sched = self.arc();
        let m = shared.clone();
        // The P waits in the new M's mailbox, not in the thread's closure:
        // if the OS refuses the thread, the closure is dropped, the P not.
        shared.handoff(p, spinning);
        let handle = std::thread::Builder::new()
            .name(format!("gort-{}-m{n}", self.id))
            .spawn(move || mstart(sched, m));
        match handle {
            Ok(h) => self.threads.lock().push(h),
            Err(e) => {
                // The OS said no (DESIGN.md rule 6): back out what the
                // caller took (the P, the spinning count, the M's entry)
                // and let sysmon retry once there is work and an idle P.
                self.mexit(&shared);
                {
                    let p = PToken::claim(shared.nextp.swap(NO_P, Ordering::Acquire));
                    let mut inner = self.inner.lock();
                    self.pidleput(&mut inner, p);
                }
                if spinning {
                    self.nmspinning.fetch_sub(1, Ordering::SeqCst);
                }
                let first = self.newm_failures.fetch_add(1, Ordering::Relaxed) == 0;
                if self.allm.lock().is_empty() && g::current().is_none() {
                    // No thread at all would ever run the work: an error at
                    // the call that needed the thread.
                    panic!("gort: cannot start an OS thread for the scheduler: {e}");
                }
                if first {
                    eprintln!(
                        "gort: cannot start an OS thread for the scheduler ({e}); \
                         running on the {} there are, retrying later",
                        self.allm.lock().len()
                    );
                }
                return;
            }
        }
        super::sysmon::start(self);
    }

    /// An M's thread is ending.
    pub(crate) fn mexit(&self, m: &Arc<MShared>) {
        self.allm.lock().retain(|x| !Arc::ptr_eq(x, m));
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
