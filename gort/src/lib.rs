//! gort: Go's goroutine runtime for Rust.
//!
//! Goroutines are stackful green threads written as plain blocking code and
//! multiplexed M:N onto a few OS threads by a work-stealing G-M-P scheduler
//! (Go's runtime/proc.go is the reference design). A goroutine costs about a
//! page of memory and well under a microsecond to start.
//!
//! ```
//! use gort::sync::WaitGroup;
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//!
//! let total = gort::run(|| {
//!     let wg = WaitGroup::new();
//!     let sum = Arc::new(AtomicU64::new(0));
//!     for i in 1..=100 {
//!         let sum = sum.clone();
//!         wg.go(move || sum.fetch_add(i, Ordering::Relaxed));
//!     }
//!     wg.wait();
//!     sum.load(Ordering::Relaxed)
//! });
//! assert_eq!(total, 5050);
//! ```
//!
//! Layers, bottom to top (DESIGN.md): `stack` (reserved, guarded, lazily
//! committed stacks), context switching (corosensei), `runtime` (G, P, M,
//! the scheduler, park/ready, timers), and the public modules built on
//! park/ready only: [`sync`], [`time`], [`net`]; [`fs`] and [`process`]
//! (files and child processes that never hold a processor).

#![warn(missing_docs)]

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
compile_error!("gort supports Linux on x86_64 and aarch64 only");

mod loom;

#[cfg(not(loom))]
pub mod chan;
#[cfg(not(loom))]
pub mod context;
#[cfg(not(loom))]
pub mod debug;
#[cfg(not(loom))]
pub mod fs;
#[cfg(not(loom))]
mod go;
#[cfg(not(loom))]
pub mod net;
#[cfg_attr(loom, allow(dead_code))]
mod packet;
#[cfg(not(loom))]
pub mod process;
#[cfg(not(loom))]
pub mod runtime;
#[cfg(not(loom))]
mod scope;
#[cfg(not(loom))]
mod select_macro;
#[cfg(not(loom))]
mod stack;
#[cfg(not(loom))]
pub mod sync;
#[cfg(not(loom))]
pub mod time;

// Under loom: the run queue, the join packet, the poll descriptor, the
// group live counts, the scheduler's protocol units (P slot, mailbox, hog
// stop, spinning), the channels and the `sync` primitives that hand off
// through wait queues, over the loom shims (`loom.rs`) and the
// loom-friendly waiter (`runtime/park_loom.rs`).
#[cfg(loom)]
#[allow(dead_code)]
mod runtime {
    pub(crate) mod claim;
    pub(crate) mod counts;
    pub(crate) mod futex;
    pub(crate) mod lock;
    pub(crate) mod mailbox;
    pub(crate) mod membarrier;
    pub(crate) mod note;
    #[path = "park_loom.rs"]
    pub(crate) mod park;
    pub(crate) mod polldesc;
    pub(crate) mod pslot;
    pub(crate) mod rand;
    pub(crate) mod runq;
    pub(crate) mod spinning;
    pub(crate) mod stop;
    pub(crate) mod throw;
    pub(crate) use park::g;
}
#[cfg(loom)]
#[allow(dead_code, unused_imports)]
mod chan;
#[cfg(all(loom, test))]
mod loom_models;
#[cfg(loom)]
#[allow(dead_code, unused_imports)]
mod sync;

#[cfg(not(loom))]
pub use go::{go, Builder, GoId, JoinHandle, CANCELLED};
#[cfg(not(loom))]
pub use gort_macros::{main, test};
#[cfg(not(loom))]
pub use runtime::blocking::blocking;
#[cfg(not(loom))]
pub use runtime::lockosthread::{lock_os_thread, unlock_os_thread};
#[cfg(not(loom))]
pub use scope::{scope, Scope, ScopedJoinHandle};
#[cfg(not(loom))]
pub use stack::{DEFAULT_STACK_SIZE, MAX_STACK_SIZE, MIN_STACK_SIZE};

#[cfg(not(loom))]
mod api {
    use crate::runtime;

    /// Runs `f` as the main goroutine of the default runtime and blocks
    /// until it returns. Goroutines still alive then are cancelled (parked
    /// ones unwind, running their destructors) before `run` returns `f`'s
    /// value; a panic in `f` resumes in the caller.
    ///
    /// `procs` defaults to the available cores, or `GOMAXPROCS`.
    ///
    /// ```
    /// let answer = gort::run(|| gort::go(|| 42).join().unwrap());
    /// assert_eq!(answer, 42);
    /// ```
    #[track_caller]
    pub fn run<F, T>(f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        runtime::default_runtime().run(f)
    }

    /// Yields the processor so other goroutines run (Go's
    /// `runtime.Gosched`); on a plain thread, `std::thread::yield_now`.
    ///
    /// ```
    /// gort::run(|| {
    ///     let h = gort::go(|| 1);
    ///     while !h.is_finished() {
    ///         gort::yield_now();
    ///     }
    /// });
    /// ```
    pub fn yield_now() {
        runtime::park::yield_now();
    }

    /// The number of processors of the current runtime (Go's
    /// `GOMAXPROCS(0)`).
    ///
    /// ```
    /// assert!(gort::procs() >= 1);
    /// ```
    pub fn procs() -> usize {
        runtime::current_sched()
            .nprocs
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Sets the number of processors of the current runtime while it runs
    /// and returns the previous value (Go's `GOMAXPROCS(n)`); `0` only
    /// queries. Values above [`runtime::MAX_PROCS`] are clamped to it.
    ///
    /// ```
    /// let rt = gort::runtime::Builder::new().procs(2).build().unwrap();
    /// rt.run(|| {
    ///     assert_eq!(gort::set_procs(3), 2);
    ///     assert_eq!(gort::set_procs(0), 3);
    /// });
    /// ```
    pub fn set_procs(n: usize) -> usize {
        runtime::current_sched().set_procs(n)
    }

    /// The number of live goroutines in the current runtime.
    ///
    /// ```
    /// gort::run(|| assert!(gort::num_goroutines() >= 1));
    /// ```
    pub fn num_goroutines() -> usize {
        runtime::current_sched().goroutines()
    }
}

#[cfg(not(loom))]
pub use api::{num_goroutines, procs, run, set_procs, yield_now};

/// Spawns a goroutine running an expression: `go!(worker(i))` is
/// `gort::go(move || worker(i))`.
///
/// ```
/// fn square(x: u64) -> u64 { x * x }
/// let h = gort::go!(square(9));
/// assert_eq!(h.join().unwrap(), 81);
/// ```
#[macro_export]
macro_rules! go {
    ($e:expr) => {
        $crate::go(move || $e)
    };
}
