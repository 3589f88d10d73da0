//! The scheduler: explicit runtimes and the default one.
//!
//! A [`Runtime`] is a set of processors (P) and the OS threads (M) that run
//! goroutines (G) on them, after Go's runtime/proc.go. Module map, one
//! concept each: `g` (goroutine), `p` (processor), `m` (an OS thread),
//! `sched` (the shared state, global queue), `schedule` (the loop:
//! `schedule`/`find_runnable`/`execute`), `idle` (idle P and M lists,
//! spinning, `wakep`/`startm`/`stopm`), `spawn` (newproc, free G lists),
//! `window` (how sysmon takes a P from a running M), `shutdown`
//! (cancellation, drop), `procs` (`set_procs`), `runq` (lock-free local
//! run queue), `park` (park/ready, the one blocking primitive), `timers`
//! (per-P heaps), `sysmon`, `netpoll`, `blocking`, `lockosthread`, and
//! `note`/`futex`/`lock` (how threads sleep). Nothing outside
//! this module touches run queues, threads or stacks.

pub(crate) mod blocking;
pub(crate) mod claim;
pub(crate) mod counts;
pub(crate) mod deadlock;
pub(crate) mod futex;
pub(crate) mod g;
pub(crate) mod group;
pub(crate) mod idle;
pub(crate) mod lock;
pub(crate) mod lockosthread;
pub(crate) mod m;
pub(crate) mod mailbox;
pub(crate) mod membarrier;
pub(crate) mod netpoll;
pub(crate) mod note;
pub(crate) mod p;
pub(crate) mod panic_hook;
pub(crate) mod park;
pub(crate) mod polldesc;
pub(crate) mod preempt;
pub(crate) mod procs;
pub(crate) mod pslot;
pub(crate) mod rand;
pub(crate) mod runq;
pub(crate) mod sched;
pub(crate) mod schedtrace;
pub(crate) mod schedule;
pub(crate) mod shutdown;
pub(crate) mod sigquit;
pub(crate) mod snapshot;
pub(crate) mod spawn;
pub(crate) mod spinning;
pub(crate) mod stop;
pub(crate) mod sysmon;
pub(crate) mod testing;
pub(crate) mod throw;
pub(crate) mod timers;
pub(crate) mod trace;
pub(crate) mod window;

use std::io;
use std::panic::Location;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use sched::MAX_PROCS;

use crate::stack;
use lock::Lock;
use sched::Sched;

#[doc(hidden)]
pub use testing::TestChecks as __TestChecks;

/// Configures and builds a [`Runtime`].
///
/// ```
/// let rt = gort::runtime::Builder::new().procs(2).stack_size(64 * 1024).build()?;
/// assert_eq!(rt.procs(), 2);
/// assert_eq!(rt.run(|| gort::procs()), 2);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Builder {
    procs: Option<usize>,
    stack_size: Option<usize>,
    max_threads: Option<usize>,
}

/// Default cap on a runtime's OS threads (Go's default for SetMaxThreads).
pub const DEFAULT_MAX_THREADS: usize = 10_000;

impl Builder {
    /// A builder with the defaults: `procs` from `GOMAXPROCS` or the
    /// available cores, 256 KiB stacks.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Number of processors (Go's GOMAXPROCS), 1 to [`MAX_PROCS`].
    pub fn procs(mut self, n: usize) -> Builder {
        self.procs = Some(n);
        self
    }

    /// Default stack size of this runtime's goroutines, rounded up to whole
    /// pages; 16 KiB to 1 GiB.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Cap on the OS threads running this runtime's goroutines (Go's
    /// `debug.SetMaxThreads`), default [`DEFAULT_MAX_THREADS`]. Threads
    /// beyond `procs` are started for goroutines inside [`blocking`](crate::blocking)
    /// or hogging their processor; needing more than the cap is a panic
    /// naming this setting ("thread exhaustion").
    ///
    /// ```
    /// let rt = gort::runtime::Builder::new().max_threads(64).build()?;
    /// assert_eq!(rt.run(|| gort::blocking(|| 7)), 7);
    /// assert!(gort::runtime::Builder::new().max_threads(0).build().is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn max_threads(mut self, n: usize) -> Builder {
        self.max_threads = Some(n);
        self
    }

    /// Builds the runtime. Its threads start on demand.
    ///
    /// Errors with [`io::ErrorKind::InvalidInput`] naming the setting when
    /// `procs`, `stack_size` or `max_threads` is out of range.
    pub fn build(self) -> io::Result<Runtime> {
        let procs = match self.procs {
            Some(n) if (1..=MAX_PROCS).contains(&n) => n,
            Some(n) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "gort: procs = {n} is out of range: it must be between 1 and {MAX_PROCS}"
                    ),
                ))
            }
            None => default_procs(),
        };
        let stack_size = stack::validate_size(
            self.stack_size.unwrap_or(stack::DEFAULT_STACK_SIZE),
            "stack_size",
        )?;
        let max_threads = match self.max_threads {
            None => DEFAULT_MAX_THREADS,
            Some(n) if n >= 1 => n,
            Some(n) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("gort: max_threads = {n} is out of range: it must be at least 1"),
                ))
            }
        };
        stack::overflow::install();
        membarrier::init();
        panic_hook::install();
        preempt::install();
        trace::init();
        Ok(Runtime {
            sched: Sched::new(procs, stack_size, max_threads),
            closed: false,
        })
    }
}

/// `GOMAXPROCS` if set to a valid number, else the available cores.
fn default_procs() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match std::env::var("GOMAXPROCS") {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_PROCS).contains(&n) => n,
            _ => {
                eprintln!(
                    "gort: ignoring GOMAXPROCS={v:?}: it must be a number between 1 and \
                     {MAX_PROCS}; using {cores}"
                );
                cores
            }
        },
        Err(_) => cores,
    }
}

/// A goroutine runtime: processors, threads and the goroutines on them.
///
/// Several runtimes may live in one process. Dropping a runtime cancels the
/// goroutines still alive in it (parked ones unwind, running ones unwind at
/// their next scheduling point), waits for them, and joins its threads.
///
/// ```
/// let rt = gort::runtime::Builder::new().procs(1).build()?;
/// let h = rt.go(|| 6 * 7);
/// assert_eq!(h.join().unwrap(), 42);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Runtime {
    pub(crate) sched: Arc<Sched>,
    /// `shutdown_timeout` ran: nothing is left for the drop to do.
    closed: bool,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("id", &self.sched.id)
            .field("procs", &self.procs())
            .finish()
    }
}

impl Runtime {
    /// Runs `f` as this runtime's main goroutine and blocks until it
    /// returns. Goroutines it started (directly or through others) that are
    /// still alive then are cancelled (their destructors run) before `run`
    /// returns `f`'s value; a panic in `f` resumes here. Goroutines of other
    /// runs, and goroutines spawned from plain threads, are not affected.
    ///
    /// ```
    /// let rt = gort::runtime::Builder::new().procs(2).build().unwrap();
    /// let n = rt.run(|| {
    ///     let hs: Vec<_> = (0..10).map(|i| gort::go(move || i)).collect();
    ///     hs.into_iter().map(|h| h.join().unwrap()).sum::<i32>()
    /// });
    /// assert_eq!(n, 45);
    /// ```
    ///
    /// Called from a goroutine of this same runtime, `run` just runs `f` as
    /// a goroutine and joins it (it cannot cancel its own caller).
    #[track_caller]
    pub fn run<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.run_main(Location::caller(), f, None)
    }

    /// `#[gort::test]`'s `run`: also fails on leaked goroutines and on a
    /// deadlock of the test's goroutines (see `runtime/testing.rs`).
    #[doc(hidden)]
    #[track_caller]
    pub fn __run_test<F, T>(&self, checks: testing::TestChecks, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.run_main(Location::caller(), f, Some(checks))
    }

    fn run_main<F, T>(
        &self,
        at: &'static Location<'static>,
        f: F,
        checks: Option<testing::TestChecks>,
    ) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let inside = g::current().is_some_and(|g| std::ptr::eq(g.sched(), &*self.sched));
        if inside {
            return crate::Builder::new()
                .spawn_on(&self.sched, at, f)
                .unwrap_or_else(|e| panic!("{e}"))
                .join()
                .unwrap_or_else(|payload| std::panic::resume_unwind(payload));
        }
        // The main goroutine starts a new group; its descendants inherit
        // it. The moment main finishes (returns or panics), before any of
        // them runs again, the group is cancelled, as Go's exit ends them;
        // concurrent runs and detached goroutines are untouched.
        struct CancelGroup(Arc<Sched>, u32);
        impl Drop for CancelGroup {
            fn drop(&mut self) {
                self.0.begin_cancel(self.1);
            }
        }
        let group = self.sched.groups.start();
        let guard = CancelGroup(self.sched.clone(), group);
        let leaks = Arc::new(Lock::new(None::<String>));
        let leaks2 = leaks.clone();
        let sched = self.sched.clone();
        let main = move || {
            let _guard = guard;
            let v = f();
            if checks.is_some_and(|c| c.leaks) {
                *leaks2.lock() = testing::leaked(&sched);
            }
            v
        };
        let handle = crate::Builder::new()
            .name("main")
            .spawn_in_group(&self.sched, at, Some(group), main)
            .unwrap_or_else(|e| panic!("{e}"));
        let main_id = handle.id().as_u64();
        self.sched.mains.lock().push(main_id);
        deadlock::RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let watcher = checks.map(|c| {
            let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let (s, d) = (self.sched.clone(), done.clone());
            let t = std::thread::spawn(move || testing::watch(s, c.deadlock_after, d));
            (t, done)
        });
        let result = handle.join();
        if let Some((t, done)) = watcher {
            done.store(true, std::sync::atomic::Ordering::Release);
            let _ = t.join();
        }
        self.sched.mains.lock().retain(|&id| id != main_id);
        deadlock::RUNS.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.sched.wait_exited(main_id);
        self.sched.end_cancel(group);
        let v = match result {
            Ok(v) => v,
            Err(payload) => std::panic::resume_unwind(payload),
        };
        if let Some(report) = leaks.lock().take() {
            panic!("{report}");
        }
        v
    }

    /// Spawns a goroutine on this runtime, from any thread.
    #[track_caller]
    pub fn go<F, T>(&self, f: F) -> crate::JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        crate::Builder::new()
            .spawn_on(&self.sched, Location::caller(), f)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Test support, not part of the API: checks the scheduler's
    /// invariants at quiescence (no goroutine alive, every thread idle):
    /// every P idle and on the idle list exactly once, no M holding a P or
    /// spinning. `Err` names the first violation. Call it from outside the
    /// runtime, retrying for a while (threads go idle asynchronously).
    #[doc(hidden)]
    pub fn __check_quiescent(&self) -> Result<(), String> {
        self.sched.check_quiescent()
    }

    /// Test support, not part of the API: G structs this runtime owns
    /// (live goroutines and finished ones cached for reuse).
    #[doc(hidden)]
    pub fn __allgs(&self) -> usize {
        self.sched.allgs.lock().len()
    }

    /// The number of processors.
    ///
    /// ```
    /// let rt = gort::runtime::Builder::new().procs(3).build().unwrap();
    /// assert_eq!(rt.procs(), 3);
    /// ```
    pub fn procs(&self) -> usize {
        self.sched.nprocs.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl Runtime {
    /// Shuts the runtime down as dropping it does, but waits at most `d`
    /// for goroutines still executing user code (Tokio's name and meaning):
    /// what still runs then is leaked, with the runtime's memory, rather
    /// than freed under it.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rt = gort::runtime::Builder::new().procs(1).build()?;
    /// rt.go(|| loop {
    ///     gort::blocking(|| std::thread::sleep(Duration::from_millis(10)));
    /// });
    /// rt.shutdown_timeout(Duration::from_millis(50)); // returns; the loop is leaked
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown_timeout(mut self, d: Duration) {
        self.check_not_own(false);
        self.sched.shutdown(Some(d));
        self.closed = true;
    }

    fn check_not_own(&self, dropped: bool) {
        if g::current().is_some_and(|g| std::ptr::eq(g.sched(), &*self.sched)) {
            if dropped {
                panic!("gort: a Runtime cannot be dropped by one of its own goroutines");
            }
            panic!("gort: a Runtime cannot be shut down by one of its own goroutines");
        }
    }
}

impl Drop for Runtime {
    /// Cancels everything still alive and waits for it: goroutines still
    /// executing user code are waited for (their stacks belong to this
    /// runtime), and after 1 s each is named on stderr, again every 10 s.
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        self.check_not_own(true);
        self.sched.shutdown(None);
    }
}

static DEFAULT: OnceLock<Runtime> = OnceLock::new();

/// The default runtime, started on first use.
pub(crate) fn default_runtime() -> &'static Runtime {
    DEFAULT.get_or_init(|| {
        Builder::new()
            .build()
            .unwrap_or_else(|e| panic!("gort: cannot start the default runtime: {e}"))
    })
}

/// The default runtime, if it has started.
pub(crate) fn started_default() -> Option<&'static Runtime> {
    DEFAULT.get()
}

/// The runtime of the calling goroutine, or the default runtime.
pub(crate) fn current_sched() -> &'static Sched {
    match g::current() {
        Some(g) => g.sched(),
        None => &default_runtime().sched,
    }
}
