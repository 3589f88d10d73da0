//! What `#[gort::test]` checks beyond `run` (Go's goleak, and a deadlock
//! that does not hang CI).
//!
//! * Leaks: when the test's main goroutine returns, goroutines of its
//!   group (spawned from it, transitively) that are still alive fail the
//!   test, listed as `debug::dump` lists them. Goroutines that are about to
//!   exit get a second to do so (goleak retries too).
//! * Deadlock: a test binary has threads of its own (libtest's), so the
//!   process-wide detection of `deadlock.rs` never fires in it. Instead a
//!   watcher thread samples the test's runtime every 20 ms; if every
//!   goroutine waits with nothing pending (no timer, socket wait, runnable
//!   or running goroutine) and no state word changes for `deadlock_after`,
//!   the test's main goroutine panics with the deadlock report. A plain
//!   thread that would act later than that is indistinguishable from none,
//!   hence the setting.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::g;
use super::sched::Sched;

/// `#[gort::test]`'s settings.
#[derive(Clone, Copy, Debug)]
pub struct TestChecks {
    /// Fail on goroutines alive when main returns.
    pub leaks: bool,
    /// Fail after every goroutine waited this long with nothing pending.
    pub deadlock_after: Duration,
}

/// Called by the main goroutine as it returns: the report of the
/// goroutines of its group still alive after a grace second, if any.
pub(crate) fn leaked(sched: &Sched) -> Option<String> {
    let me = g::current().expect("called from the main goroutine");
    let group = me.group.load(Ordering::Relaxed);
    let my_id = me.id.load(Ordering::Relaxed);
    let t = Instant::now();
    loop {
        let left: Vec<_> = sched.goroutine_infos_where(|g| {
            g.group.load(Ordering::Relaxed) == group && g.id.load(Ordering::Relaxed) != my_id
        });
        if left.is_empty() {
            return None;
        }
        if t.elapsed() >= Duration::from_secs(1) {
            let mut out = Vec::new();
            let _ = crate::debug::write_report(&mut out, &left);
            return Some(format!(
                "gort::test: {} goroutine{} still alive when the test's main returned \
                 (#[gort::test(leaks = \"allow\")] allows that):\n\n{}",
                left.len(),
                if left.len() == 1 { "" } else { "s" },
                String::from_utf8_lossy(&out).trim_end()
            ));
        }
        super::park::sleep_for(Duration::from_millis(10));
    }
}

/// Watches `sched` until `done`; declares a deadlock after `after` of
/// unchanged quiescence.
pub(crate) fn watch(sched: Arc<Sched>, after: Duration, done: Arc<AtomicBool>) {
    let mut since: Option<(Instant, Vec<u64>)> = None;
    while !done.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(20));
        match super::deadlock::quiescent(&sched) {
            None => since = None,
            Some(words) => match &since {
                Some((t, w)) if *w == words => {
                    if t.elapsed() >= after {
                        super::deadlock::declare(std::slice::from_ref(&sched));
                        since = None;
                    }
                }
                _ => since = Some((Instant::now(), words)),
            },
        }
    }
}
