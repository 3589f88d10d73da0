//! Time: sleeping and timers without blocking a thread.
//!
//! A sleeping goroutine parks with a timer on its P's heap (see
//! `runtime/timers.rs`); its thread runs other goroutines meanwhile, and no
//! thread is dedicated to a sleeper. Called from a plain thread, `sleep`
//! blocks the thread as `std::thread::sleep` does. [`Timer`], [`Ticker`],
//! [`after`] and [`tick`] deliver on channels (`timer.rs`), usable in
//! `select!`.

mod timer;

use std::time::{Duration, Instant};

use crate::chan::Receiver;
use crate::runtime::timers;

pub(crate) use timer::{after_func, FuncTimer};
pub use timer::{Ticker, Timer};

/// A channel that receives the current time once, after `d` (Go's
/// `time.After`); handy as a `select!` timeout.
///
/// ```
/// use std::time::Duration;
/// use gort::chan;
/// gort::run(|| {
///     let (_tx, rx) = chan::bounded::<u32>(0);
///     let timeout = gort::time::after(Duration::from_millis(2));
///     let r = gort::select! {
///         recv(rx) -> _ => "value",
///         recv(timeout) -> _ => "timeout",
///     };
///     assert_eq!(r, "timeout");
/// });
/// ```
pub fn after(d: Duration) -> Receiver<Instant> {
    timer::after(d)
}

/// A channel that receives the time every `d` until it is dropped (Go's
/// `time.Tick`); a slow receiver loses ticks. A zero `d` gives a channel
/// that never receives (Go returns nil).
///
/// ```
/// use std::time::Duration;
/// let ticks = gort::time::tick(Duration::from_millis(1));
/// let a = ticks.recv().unwrap();
/// let b = ticks.recv().unwrap();
/// assert!(b > a);
/// ```
pub fn tick(d: Duration) -> Receiver<Instant> {
    timer::tick(d)
}

/// Pauses the current goroutine for at least `d`.
///
/// ```
/// use std::time::{Duration, Instant};
/// gort::run(|| {
///     // Another goroutine runs on this thread meanwhile.
///     let h = gort::go(|| 7);
///     let t = Instant::now();
///     gort::time::sleep(Duration::from_millis(5));
///     assert!(t.elapsed() >= Duration::from_millis(5)); // never early
///     assert_eq!(h.join().unwrap(), 7);
/// });
/// ```
#[track_caller]
pub fn sleep(d: Duration) {
    if d.is_zero() {
        return;
    }
    match Instant::now().checked_add(d) {
        Some(at) => sleep_until(at),
        None => timers::park_until(None),
    }
}

/// Pauses the current goroutine until `deadline` (returns at once if it
/// has passed).
///
/// ```
/// use std::time::{Duration, Instant};
/// gort::run(|| {
///     let at = Instant::now() + Duration::from_millis(2);
///     gort::time::sleep_until(at); // parks until `at`
///     assert!(Instant::now() >= at); // never early
///     gort::time::sleep_until(at); // passed: returns at once
/// });
/// ```
#[track_caller]
pub fn sleep_until(deadline: Instant) {
    if deadline <= Instant::now() {
        return;
    }
    timers::park_until(Some(deadline));
}
