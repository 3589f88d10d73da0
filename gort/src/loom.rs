//! The one switch between production primitives and loom's model-checked
//! ones (DESIGN.md rule 1: a model runs the real code).
//!
//! Lock-free parts of the runtime import their atomics, cells, back-off,
//! clock and futex from here, so the same source runs in production and
//! under `RUSTFLAGS="--cfg loom" cargo test -p gort --lib --release
//! --target-dir target/loom loom` (`.ci/run`). Outside `cfg(loom)` every
//! item is std's (or crossbeam's) own type or an `#[inline(always)]`
//! wrapper that compiles to it: production pays nothing.
//!
//! What each shim is, and what it becomes under loom:
//!
//! * [`atomic`]: `std::sync::atomic`, or loom's (every access a point where
//!   loom may switch threads, with the C11 memory model).
//! * [`cell::UnsafeCell`]: std's cell behind loom's `with`/`with_mut` API;
//!   under loom, loom's cell, which reports a "causality violation" when
//!   two threads' accesses are not ordered by happens-before.
//! * [`thread::yield_now`]: std's, or loom's.
//! * [`Backoff`]: crossbeam's; under loom, `loom::thread::yield_now` (a spin
//!   loop must yield for loom to schedule the thread it waits on).
//! * [`time::Instant`]: std's; under loom, a per-execution fake clock that
//!   stands still until a model calls [`time::advance`] (so where "time
//!   passes" is one more interleaving loom explores: deadlines expire and
//!   waits count as long exactly there).
//! * [`futex`] (`runtime/futex.rs` re-exports it under loom): a futex on a
//!   loom atomic, emulated with one loom `Mutex`/`Condvar` per execution,
//!   so the runtime's own `Lock` and the thread parker (`runtime/claim.rs`)
//!   block for real and loom reports a deadlock when nobody can wake them.
//! * [`mutant`]: `false` as a `const fn` outside loom. Under loom, true
//!   when the running model enabled that mutant: the code under test reads
//!   it at the spot a deliberate bug would be (`if !mutant("name") { the
//!   step }`), and each model has a twin, `mutant_test!(twin, model,
//!   "name", "expected failure")`, that runs the model with the mutant on
//!   in a child test process and asserts loom fails it (see
//!   `mutant_fails`), so "the model catches this bug" is re-checked on
//!   every CI run.
//! * [`maybe_const_fn!`](crate::maybe_const_fn): a `const fn` in
//!   production, a plain `fn` under loom (loom's atomics have no const
//!   constructors).
//!
//! The loom-friendly waiter: under loom `runtime::park` is
//! `runtime/park_loom.rs`, whose `Waiter`/`park`/`prepare`/`Parking` have
//! the production interface but every caller is a plain thread, parked by
//! the real `ThreadParker` (`runtime/claim.rs`, the WAITING -> CLAIMED ->
//! WOKEN state machine production uses for plain threads) over the
//! emulated futex. Code written against `park.rs` therefore runs unchanged
//! in a model; models run each goroutine as a `loom::thread`.
//!
//! Writing a model: call [`model`] (or [`model_bounded`] with a
//! preemption bound for three or more threads) rather than `loom::model`,
//! so the clock restarts for every execution, and give it a
//! `mutant_test!` twin.

#[cfg(loom)]
pub(crate) use loom::sync::atomic;

#[cfg(not(loom))]
pub(crate) use std::sync::atomic;

/// `UnsafeCell` with loom's closure API (see the module docs).
pub(crate) mod cell {
    #[cfg(loom)]
    pub(crate) use loom::cell::UnsafeCell;

    /// `std::cell::UnsafeCell` with loom's `with`/`with_mut` API.
    #[cfg(not(loom))]
    #[derive(Debug, Default)]
    #[repr(transparent)]
    pub(crate) struct UnsafeCell<T: ?Sized>(std::cell::UnsafeCell<T>);

    #[cfg(not(loom))]
    impl<T> UnsafeCell<T> {
        #[inline(always)]
        pub(crate) const fn new(v: T) -> UnsafeCell<T> {
            UnsafeCell(std::cell::UnsafeCell::new(v))
        }
    }

    #[cfg(not(loom))]
    impl<T: ?Sized> UnsafeCell<T> {
        /// Runs `f` with a shared pointer to the contents.
        #[inline(always)]
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }

        /// Runs `f` with a unique pointer to the contents.
        #[inline(always)]
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

/// Yielding the CPU in a wait loop: std's, or loom's (which schedules
/// another model thread).
pub(crate) mod thread {
    #[cfg(loom)]
    pub(crate) use loom::thread::yield_now;
    #[cfg(not(loom))]
    pub(crate) use std::thread::yield_now;
}

/// Exponential back-off for spin loops (see the module docs).
#[cfg(not(loom))]
pub(crate) use crossbeam_utils::Backoff;

/// Under loom, spinning yields to the other model threads.
#[cfg(loom)]
pub(crate) struct Backoff;

#[cfg(loom)]
impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff
    }
    pub(crate) fn spin(&self) {
        loom::thread::yield_now();
    }
    pub(crate) fn snooze(&self) {
        loom::thread::yield_now();
    }
}

/// A `const fn` in production, a plain `fn` under loom.
#[macro_export]
#[doc(hidden)]
macro_rules! maybe_const_fn {
    ($(#[$m:meta])* $vis:vis fn $($rest:tt)*) => {
        #[cfg(not(loom))]
        $(#[$m])* $vis const fn $($rest)*
        #[cfg(loom)]
        $(#[$m])* $vis fn $($rest)*
    };
}

/// Whether the deliberate bug `name` is switched on (never, outside loom).
#[cfg(not(loom))]
#[inline(always)]
pub(crate) const fn mutant(_name: &str) -> bool {
    false
}

#[cfg(loom)]
std::thread_local! {
    /// The mutant of the model running on this (test) thread. loom runs
    /// all of a model's threads as coroutines on the test's thread.
    static MUTANT: std::cell::Cell<Option<&'static str>> = const { std::cell::Cell::new(None) };
}

/// Whether the deliberate bug `name` is switched on (see the module docs).
#[cfg(loom)]
pub(crate) fn mutant(name: &str) -> bool {
    MUTANT.with(|m| m.get() == Some(name))
}

#[cfg(loom)]
std::thread_local! {
    static NEXT_ID: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Under loom, a number unique within the execution, in creation order:
/// a stand-in for an address where code orders objects by address (loom
/// needs every execution of a model to make the same choices).
#[cfg(loom)]
pub(crate) fn next_id() -> usize {
    NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id + 1);
        id
    })
}

/// Runs a model with loom's default settings (every interleaving).
#[cfg(all(loom, test))]
pub(crate) fn model(f: impl Fn() + Sync + Send + 'static) {
    run(None, f)
}

/// Runs a model with at most `bound` preemptions per execution.
#[cfg(all(loom, test))]
pub(crate) fn model_bounded(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    run(Some(bound), f)
}

#[cfg(all(loom, test))]
fn run(bound: Option<usize>, f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if bound.is_some() {
        b.preemption_bound = bound;
    }
    // Real code takes more steps per operation than a re-statement did.
    b.max_branches = 100_000;
    b.check(move || {
        time::reset();
        NEXT_ID.with(|n| n.set(0));
        f()
    });
}

/// The environment variable naming the mutant a child test process runs.
#[cfg(all(loom, test))]
const MUTANT_ENV: &str = "GORT_LOOM_MUTANT";

/// The mutation check of a model: runs the test `test` (this test, by its
/// path) in a child process with the mutant `name` switched on, and
/// asserts the child failed with `expect` in its output. In the child
/// (which the environment tells) it runs `model` with the mutant on.
///
/// A child process, not `#[should_panic]`: loom reports a deadlock by
/// panicking inside a blocked thread, and the unwinding then runs the
/// real code's destructors (unlocks, unregistrations), whose loom
/// operations abort the process; only a child can die like that.
#[cfg(all(loom, test))]
pub(crate) fn mutant_fails(name: &'static str, expect: &str, test: &str, model: impl FnOnce()) {
    if let Ok(m) = std::env::var(MUTANT_ENV) {
        assert_eq!(m, name, "a child runs only its own mutant");
        MUTANT.with(|m| m.set(Some(name)));
        model();
        return;
    }
    let test = test.strip_prefix("gort::").unwrap_or(test);
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            test,
            "--exact",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(MUTANT_ENV, name)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("spawn the mutant's child test");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("running 1 test"),
        "mutant {name}: the child did not run {test}:\n{text}"
    );
    assert!(
        !out.status.success(),
        "mutant {name}: loom did not catch it ({test} passed)"
    );
    assert!(
        text.contains(expect),
        "mutant {name}: the child failed, but without {expect:?}:\n{text}"
    );
}

/// A model's mutation check: `mutant_test!(test_name, model_fn, "mutant",
/// "what loom must report")` (see [`mutant_fails`]).
#[cfg(all(loom, test))]
macro_rules! mutant_test {
    ($test:ident, $model:ident, $mutant:literal, $expect:literal) => {
        #[test]
        fn $test() {
            $crate::loom::mutant_fails(
                $mutant,
                $expect,
                concat!(module_path!(), "::", stringify!($test)),
                $model,
            );
        }
    };
}
#[cfg(all(loom, test))]
pub(crate) use mutant_test;

/// The clock (see the module docs).
pub(crate) mod time {
    #[cfg(not(loom))]
    pub(crate) use std::time::Instant;

    #[cfg(loom)]
    pub(crate) use fake::moved;
    #[cfg(loom)]
    pub use fake::Instant;
    #[cfg(all(loom, test))]
    pub(crate) use fake::{advance, reset};

    #[cfg(loom)]
    mod fake {
        use std::cell::Cell;
        use std::ops::{Add, Sub};
        use std::time::Duration;

        std::thread_local! {
            static NOW: Cell<Duration> = const { Cell::new(Duration::ZERO) };
        }

        loom::thread_local! {
            /// The clock as this model thread last read it.
            static SEEN: Cell<Duration> = Cell::new(Duration::ZERO);
        }

        /// Whether the clock moved since this thread last read it (a
        /// timed wait computed from that reading must not sleep).
        pub(crate) fn moved() -> bool {
            NOW.with(|n| n.get()) != SEEN.with(|s| s.get())
        }

        /// A point on the model's clock.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct Instant(Duration);

        impl Instant {
            pub fn now() -> Instant {
                let now = NOW.with(|n| n.get());
                SEEN.with(|s| s.set(now));
                Instant(now)
            }
            pub fn elapsed(&self) -> Duration {
                Instant::now().0.saturating_sub(self.0)
            }
            pub fn checked_add(&self, d: Duration) -> Option<Instant> {
                self.0.checked_add(d).map(Instant)
            }
            pub fn checked_duration_since(&self, earlier: Instant) -> Option<Duration> {
                self.0.checked_sub(earlier.0)
            }
            pub fn saturating_duration_since(&self, earlier: Instant) -> Duration {
                self.0.saturating_sub(earlier.0)
            }
            pub fn duration_since(&self, earlier: Instant) -> Duration {
                self.saturating_duration_since(earlier)
            }
        }

        impl Add<Duration> for Instant {
            type Output = Instant;
            fn add(self, d: Duration) -> Instant {
                Instant(self.0 + d)
            }
        }

        impl Sub<Instant> for Instant {
            type Output = Duration;
            fn sub(self, o: Instant) -> Duration {
                self.saturating_duration_since(o)
            }
        }

        /// Time passes here: moves the clock and wakes every futex waiter,
        /// so a timed wait re-checks its deadline.
        #[cfg(test)]
        pub(crate) fn advance(d: Duration) {
            NOW.with(|n| n.set(n.get() + d));
            super::super::futex::wake_all();
        }

        #[cfg(test)]
        pub(crate) fn reset() {
            NOW.with(|n| n.set(Duration::ZERO));
        }
    }
}

/// Futex wait/wake on a loom atomic (see the module docs).
#[cfg(loom)]
pub(crate) mod futex {
    use super::atomic::{AtomicU32, Ordering};
    use loom::sync::{Condvar, Mutex};
    use std::time::Duration;

    loom::lazy_static! {
        /// The one wait queue of the execution (the kernel's futex hash).
        static ref FUTEX: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());
    }

    /// Sleeps while `*word == expected` until some `wake` (any word: the
    /// caller re-checks, as after a spurious futex wake-up). A timed wait
    /// also ends when the clock moves (`time::advance`).
    pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
        let (m, cv) = &*FUTEX;
        let g = m.lock().unwrap();
        // Under the mutex: a waker's store before its `wake` is seen here,
        // or its `wake` comes after this thread sleeps.
        if word.load(Ordering::SeqCst) != expected {
            return;
        }
        // The clock moved since the caller computed `timeout`: it may have
        // run out (and `advance`'s wake-up came before this wait).
        if timeout.is_some() && super::time::moved() {
            return;
        }
        drop(cv.wait(g).unwrap());
    }

    /// Wakes the sleepers (all of them: they re-check their words).
    pub(crate) fn wake(_word: &AtomicU32, _n: i32) {
        wake_all();
    }

    /// Wakes every sleeper of the execution.
    pub(crate) fn wake_all() {
        let (m, cv) = &*FUTEX;
        let _g = m.lock().unwrap();
        cv.notify_all();
    }
}
