//! Helpers shared by the integration tests (`mod common;` in each).

#![allow(dead_code)] // each test file uses its own subset

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A runtime with `procs` processors.
pub fn rt(procs: usize) -> gort::runtime::Runtime {
    gort::runtime::Builder::new().procs(procs).build().unwrap()
}

/// Aborts the test process if the test holding it hangs for 120 s: a hang
/// becomes a failure that names the test (it is not a timing check).
/// Dropping it (also during a panic) disarms it.
pub struct Watchdog(Arc<AtomicBool>);

pub fn watchdog(what: impl Display + Send + 'static) -> Watchdog {
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    std::thread::spawn(move || {
        for _ in 0..1200 {
            std::thread::sleep(Duration::from_millis(100));
            if d.load(Ordering::Relaxed) {
                return;
            }
        }
        // Straight to stderr: `eprintln!` in a thread spawned by a test is
        // captured by the test harness, and the abort would lose it.
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "watchdog: {what} hung for 120 s");
        std::process::abort();
    });
    Watchdog(done)
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
