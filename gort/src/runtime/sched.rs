//! The scheduler's shared state (Go's `schedt`): every P, the global run
//! queue, the idle P and M lists, the spinning count, the threads, the
//! goroutine groups and the monitor. The operations live one concept to a
//! file: `idle` (idle lists, `wakep`, `startm`, `stopm`), `schedule` (the
//! loop), `spawn`, `shutdown`, `procs` (`set_procs`); here are only the
//! global queue and the timer hooks.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use super::g::{self, GRef};
use super::group::{self, Counts, Groups};
use super::lock::Lock;
use super::m::MShared;
use super::netpoll::Netpoll;
use super::p::P;
use super::sysmon::Sysmon;
use super::timers::Hint;

/// The most processors a runtime may have.
///
/// ```
/// let err = gort::runtime::Builder::new().procs(gort::runtime::MAX_PROCS + 1).build();
/// assert!(err.is_err());
/// ```
pub const MAX_PROCS: usize = 1024;

static NEXT_RUNTIME_ID: AtomicUsize = AtomicUsize::new(1);

pub(crate) struct Sched {
    pub(crate) id: usize,
    pub(crate) allp: Box<[OnceLock<P>]>,
    /// Ps created so far (all of `allp[..created]` are initialised).
    pub(crate) created: AtomicUsize,
    pub(crate) nprocs: AtomicUsize,
    pub(crate) npidle: AtomicUsize,
    pub(crate) nmspinning: AtomicUsize,
    pub(crate) inner: Lock<Inner>,
    pub(crate) global_len: AtomicUsize,
    /// Goroutine groups: live counts and cancellation (see `group.rs`).
    pub(crate) groups: Groups,
    /// Every G this runtime owns (live, or cached for reuse).
    pub(crate) allgs: Lock<Vec<GRef>>,
    /// Finished Gs (with their stacks) beyond the per-P caches.
    pub(crate) gfree: Lock<Vec<GRef>>,
    /// Finished Gs whose custom-size stacks were freed (Go's `gFree.noStack`).
    pub(crate) gfree_nostack: Lock<Vec<GRef>>,
    pub(crate) stack_size: usize,
    pub(crate) shutdown: AtomicBool,
    pub(crate) ntimers_hint: Hint,
    /// Deadline of the M sleeping for timers (u64::MAX: none).
    pub(crate) sleeper_until: AtomicU64,
    pub(crate) threads: Lock<Vec<JoinHandle<()>>>,
    /// Ms started so far (names and ids).
    pub(crate) nthreads: AtomicUsize,
    /// Ms alive now, and every M's shared part (sysmon scans them).
    pub(crate) allm: Lock<Vec<Arc<MShared>>>,
    /// Cap on live Ms (`Builder::max_threads`, Go's SetMaxThreads).
    pub(crate) max_threads: usize,
    pub(crate) steals: AtomicU64,
    /// Thread starts the OS refused (each backed out, see `newm`).
    pub(crate) newm_failures: AtomicU64,
    /// Ps sysmon took from goroutines in `blocking` or hogging their P.
    pub(crate) handoffs: AtomicU64,
    /// Time slices sysmon ended and hogs it asked to stop (`debug::stats`).
    pub(crate) preemptions: AtomicU64,
    /// A coarse clock (`timers::now` ns) for the time a goroutine parked
    /// (`debug`'s "since"): sysmon advances it every round (at most 10 ms
    /// apart while any P is busy) and a P going busy refreshes it, so a
    /// park costs one load of a line that changes rarely, not a clock read.
    pub(crate) clock: crossbeam_utils::CachePadded<AtomicU64>,
    /// When the runtime was built (`GORT_SCHEDTRACE`'s clock).
    pub(crate) started_at: std::time::Instant,
    /// Ids of the main goroutines of `run` calls in progress.
    pub(crate) mains: Lock<Vec<u64>>,
    /// The report a deadlocked main goroutine panics with.
    pub(crate) deadlock_report: Lock<Option<String>>,
    /// Goroutines spawned from outside any P (each P counts its own).
    pub(crate) spawned: AtomicU64,
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
        let s = Arc::new(Sched {
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
            gfree_nostack: Lock::new(Vec::new()),
            stack_size,
            shutdown: AtomicBool::new(false),
            ntimers_hint: Hint::default(),
            sleeper_until: AtomicU64::new(u64::MAX),
            threads: Lock::new(Vec::new()),
            nthreads: AtomicUsize::new(0),
            allm: Lock::new(Vec::new()),
            max_threads,
            steals: AtomicU64::new(0),
            newm_failures: AtomicU64::new(0),
            handoffs: AtomicU64::new(0),
            preemptions: AtomicU64::new(0),
            clock: crossbeam_utils::CachePadded::new(AtomicU64::new(super::timers::now())),
            started_at: std::time::Instant::now(),
            mains: Lock::new(Vec::new()),
            deadlock_report: Lock::new(None),
            spawned: AtomicU64::new(0),
            netpoll: OnceLock::new(),
            sysmon: Sysmon::default(),
        });
        super::deadlock::register(&s);
        s
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

    /// Every P's live counts.
    pub(crate) fn counts(&self) -> Box<dyn Iterator<Item = &Counts> + '_> {
        Box::new(self.all_ps().map(|p| &p.counts))
    }

    /// The number of live goroutines.
    pub(crate) fn goroutines(&self) -> usize {
        self.groups.live_count(|| self.counts(), group::ALL)
    }

    /// A goroutine of `group` finished on P `p` (or on an M without one).
    pub(crate) fn goroutine_exited(&self, p: Option<&P>, group: u32) {
        self.groups
            .exited(p.map(|p| &p.counts), group, || self.counts());
    }
}

impl Sched {
    /// Checks what must hold once nothing runs (every goroutine finished
    /// and the threads gone idle): every P below `procs` is idle, on the
    /// idle list exactly once, with empty queues; no M holds a P or spins;
    /// no goroutine is alive. The first violation is named.
    pub(crate) fn check_quiescent(&self) -> Result<(), String> {
        let n = self.goroutines();
        if n != 0 {
            return Err(format!("{n} goroutines still alive"));
        }
        let inner = self.inner.lock();
        if !inner.global.is_empty() {
            return Err(format!(
                "{} goroutines on the global queue",
                inner.global.len()
            ));
        }
        let procs = self.nprocs.load(Ordering::Acquire);
        for id in 0..procs {
            let p = self.p(id);
            let on_list = inner.idle_ps.iter().filter(|&&x| x == id).count();
            if on_list != 1 {
                return Err(format!("P {id} is on the idle list {on_list} times"));
            }
            if p.status() != super::p::P_IDLE {
                return Err(format!("P {id} has status {} while idle", p.status()));
            }
            if !p.runq.is_empty() {
                return Err(format!("P {id} has {} goroutines queued", p.runq.len()));
            }
        }
        if let Some(id) = inner.idle_ps.iter().find(|&&x| x >= procs) {
            return Err(format!("P {id} beyond procs = {procs} is on the idle list"));
        }
        let npidle = self.npidle.load(Ordering::SeqCst);
        if npidle != procs {
            return Err(format!("npidle = {npidle} but procs = {procs}"));
        }
        let spinning = self.nmspinning.load(Ordering::SeqCst);
        if spinning != 0 {
            return Err(format!("{spinning} Ms counted as spinning"));
        }
        drop(inner);
        for m in self.allm.lock().iter() {
            let p = m.p.load(Ordering::SeqCst);
            if p != super::m::NO_P {
                return Err(format!("M {} holds P {p}", m.id));
            }
        }
        Ok(())
    }
}
