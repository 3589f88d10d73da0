//! `gort::debug`: what every goroutine is doing, without a debugger.
//!
//! Go prints every goroutine when a program deadlocks or gets SIGQUIT;
//! this module is that report as an API. [`goroutines`] takes a snapshot
//! of the calling goroutine's runtime (or the default one from a plain
//! thread): the runtime walks its list of goroutine structs under that
//! list's lock, reading only what each goroutine publishes atomically (its
//! state word, wait reason, park site and time, spawn site, name), so a
//! snapshot never stops the others and is safe while goroutines spawn,
//! exit and migrate. Each entry is consistent on its own; the set is
//! what the walk saw, as Go's traceback of a running program is.
//!
//! Blocking calls are `#[track_caller]` down to the park, which records
//! the caller's [`Location`] and the time, so a parked goroutine shows the
//! user's line it waits at. [`dump`] and [`write_dump`] format the
//! snapshot in Go's shape; [`stats`] counts what the scheduler holds.
//!
//! ```
//! let rt = gort::runtime::Builder::new().procs(1).build().unwrap();
//! rt.run(|| {
//!     let (tx, rx) = gort::chan::bounded::<()>(0);
//!     let h = gort::Builder::new().name("worker").spawn(move || rx.recv()).unwrap();
//!     gort::yield_now(); // the worker parks in recv
//!     let mut report = Vec::new();
//!     gort::debug::write_dump(&mut report).unwrap();
//!     let report = String::from_utf8(report).unwrap();
//!     assert!(report.contains("\"worker\" [chan receive"), "{report}");
//!     drop(tx);
//!     h.join().unwrap().unwrap_err();
//! });
//! ```

use std::fmt;
use std::io;
use std::panic::Location;
use std::time::Duration;

use crate::go::GoId;
use crate::runtime;

/// What a goroutine is doing (see [`GoroutineInfo::state`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GoroutineState {
    /// Queued, waiting for a processor.
    Runnable,
    /// Executing on a thread.
    Running,
    /// Parked on a gort primitive ([`GoroutineInfo::wait_reason`] says which).
    Waiting,
    /// Executing inside [`blocking`](crate::blocking) (Go's "syscall").
    Blocking,
}

/// One goroutine, as [`goroutines`] saw it.
///
/// ```
/// use gort::debug::GoroutineState;
/// let rt = gort::runtime::Builder::new().procs(1).build().unwrap();
/// rt.run(|| {
///     let me = gort::debug::goroutines();
///     assert!(me.iter().any(|g| g.state == GoroutineState::Running));
/// });
/// ```
#[derive(Clone, Debug)]
pub struct GoroutineInfo {
    /// Its id (the number the report shows).
    pub id: GoId,
    /// Its name, if it was spawned with one ([`Builder::name`](crate::Builder::name)).
    pub name: Option<String>,
    /// What it is doing.
    pub state: GoroutineState,
    /// Why it waits, in Go's words ("chan receive", "sync.Mutex.Lock",
    /// "sleep", "IO wait", ...); `None` unless `state` is `Waiting`.
    pub wait_reason: Option<&'static str>,
    /// How long it has been waiting (zero unless `state` is `Waiting`),
    /// on a coarse clock: never less than the real wait, and at most about
    /// 10 ms more (the runtime's monitor advances the clock; a park does not
    /// read the time, which would cost every blocking call).
    pub since: Duration,
    /// Where it was spawned.
    pub spawned_at: &'static Location<'static>,
    /// The blocking call it waits in: the park site while `Waiting`, the
    /// [`blocking`](crate::blocking) call while `Blocking`, else `None`.
    pub waiting_at: Option<&'static Location<'static>>,
    /// Wired to its thread by [`lock_os_thread`](crate::lock_os_thread).
    pub locked_to_thread: bool,
}

/// Scheduler counts of one runtime ([`stats`]).
///
/// ```
/// let rt = gort::runtime::Builder::new().procs(2).build().unwrap();
/// let s = rt.run(|| {
///     gort::go(|| ()).join().unwrap();
///     gort::debug::stats()
/// });
/// assert_eq!(s.procs, 2);
/// assert_eq!(s.local_queues.len(), 2);
/// assert!(s.spawned >= 2); // main and the one above
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchedStats {
    /// Processors (`procs`).
    pub procs: usize,
    /// OS threads started for goroutines (sysmon not counted).
    pub threads: usize,
    /// Processors on the idle list.
    pub idle_procs: usize,
    /// Threads looking for work.
    pub spinning_threads: usize,
    /// Threads asleep without a processor.
    pub idle_threads: usize,
    /// Goroutines on the global run queue.
    pub global_queue: usize,
    /// Goroutines on each processor's run queue.
    pub local_queues: Vec<usize>,
    /// Goroutines alive (runnable, running, waiting or blocking).
    pub goroutines: usize,
    /// Goroutines spawned since the runtime started.
    pub spawned: u64,
    /// Successful steals from another processor's queue.
    pub steals: u64,
    /// Processors taken from `blocking` calls and hogs and handed on.
    pub handoffs: u64,
    /// Time slices sysmon ended and hogs it asked to stop.
    pub preemptions: u64,
}

/// Every goroutine of the calling goroutine's runtime (the default
/// runtime's from a plain thread; none if it has not started), by id.
///
/// ```
/// let rt = gort::runtime::Builder::new().procs(1).build().unwrap();
/// let n = rt.run(|| {
///     let h = gort::go(|| gort::time::sleep(std::time::Duration::from_millis(50)));
///     gort::yield_now();
///     let n = gort::debug::goroutines().len();
///     h.join().unwrap();
///     n
/// });
/// assert_eq!(n, 2);
/// ```
pub fn goroutines() -> Vec<GoroutineInfo> {
    runtime::snapshot::current().map_or_else(Vec::new, |s| s.goroutine_infos())
}

/// The scheduler's counts for the calling goroutine's runtime (the default
/// runtime's from a plain thread; all zero if it has not started).
///
/// ```
/// let s = gort::runtime::Builder::new().procs(3).build().unwrap().run(gort::debug::stats);
/// assert_eq!(s.procs, 3);
/// ```
pub fn stats() -> SchedStats {
    runtime::snapshot::current().map_or_else(SchedStats::default, |s| s.stats())
}

/// Writes the report of every goroutine to stderr (see [`write_dump`]).
///
/// ```
/// gort::runtime::Builder::new().procs(1).build().unwrap().run(gort::debug::dump);
/// ```
pub fn dump() {
    let mut out = Vec::new();
    let _ = write_dump(&mut out);
    // One write, so reports from two threads do not interleave.
    let _ = io::Write::write_all(&mut io::stderr().lock(), &out);
}

/// Writes the report of every goroutine to `w`, one block per goroutine in
/// Go's shape; `w`'s errors come back.
///
/// ```text
/// goroutine 7 "worker" [chan receive, 2.3s]:
///     waiting at src/main.rs:9:17
///     spawned at src/main.rs:5:5
/// ```
///
/// ```
/// let rt = gort::runtime::Builder::new().procs(1).build().unwrap();
/// let text = rt.run(|| {
///     let mut v = Vec::new();
///     gort::debug::write_dump(&mut v).unwrap();
///     String::from_utf8(v).unwrap()
/// });
/// assert!(text.starts_with("goroutine "), "{text}");
/// assert!(text.contains("[running]:"), "{text}");
/// ```
pub fn write_dump(w: &mut dyn io::Write) -> io::Result<()> {
    write_report(w, &goroutines())
}

/// Makes SIGQUIT (`kill -QUIT`, Ctrl-\\) write the report of every
/// goroutine of every runtime to stderr and exit with status 2, as a Go
/// program does. `#[gort::main]` programs have it already; others call
/// this, from anywhere, at any time (again: nothing more happens). The
/// signal handler only wakes a thread of gort's, which writes the report.
///
/// ```
/// gort::debug::dump_on_sigquit();
/// gort::debug::dump_on_sigquit(); // a second call does nothing
/// ```
pub fn dump_on_sigquit() {
    runtime::sigquit::install();
}

/// Writes `gs` in the report's shape.
pub(crate) fn write_report(w: &mut dyn io::Write, gs: &[GoroutineInfo]) -> io::Result<()> {
    for (i, g) in gs.iter().enumerate() {
        if i > 0 {
            writeln!(w)?;
        }
        write!(w, "{g}")?;
    }
    Ok(())
}

impl fmt::Display for GoroutineInfo {
    /// The goroutine's block of the report.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "goroutine {}", self.id.as_u64())?;
        if let Some(name) = &self.name {
            write!(f, " {name:?}")?;
        }
        match self.state {
            GoroutineState::Runnable => write!(f, " [runnable")?,
            GoroutineState::Running => write!(f, " [running")?,
            GoroutineState::Blocking => write!(f, " [syscall")?,
            GoroutineState::Waiting => write!(
                f,
                " [{}, {}",
                self.wait_reason.unwrap_or("waiting"),
                Since(self.since)
            )?,
        }
        if self.locked_to_thread {
            write!(f, ", locked to thread")?;
        }
        writeln!(f, "]:")?;
        if let Some(at) = self.waiting_at {
            writeln!(f, "    waiting at {at}")?;
        }
        writeln!(f, "    spawned at {}", self.spawned_at)
    }
}

/// A wait's length as the report shows it: `850ms`, `2.3s`, `4 minutes`.
struct Since(Duration);

impl fmt::Display for Since {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d >= Duration::from_secs(60) {
            write!(f, "{} minutes", d.as_secs() / 60)
        } else if d >= Duration::from_secs(1) {
            write!(f, "{:.1}s", d.as_secs_f64())
        } else {
            write!(f, "{}ms", d.as_millis())
        }
    }
}
