//! Time: sleeping without blocking a thread.
//!
//! A sleeping goroutine parks with a timer on its P's heap (see
//! `runtime/timers.rs`); its thread runs other goroutines meanwhile, and no
//! thread is dedicated to a sleeper. Called from a plain thread, these
//! block the thread as `std::thread::sleep` does.

use std::time::{Duration, Instant};

use crate::runtime::timers;

/// Pauses the current goroutine for at least `d`.
///
/// ```
/// use std::time::{Duration, Instant};
/// gort::run(|| {
///     let t = Instant::now();
///     gort::time::sleep(Duration::from_millis(5));
///     assert!(t.elapsed() >= Duration::from_millis(5));
/// });
/// ```
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
///     gort::time::sleep_until(at);
///     assert!(Instant::now() >= at);
/// });
/// ```
pub fn sleep_until(deadline: Instant) {
    if deadline <= Instant::now() {
        return;
    }
    timers::park_until(Some(deadline));
}
