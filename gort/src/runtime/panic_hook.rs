//! Names the goroutine in panic reports.
//!
//! std's panic message names the OS thread (`gort-1-m2`), which says
//! nothing to a user of goroutines. Once per process, when a runtime is
//! built, gort chains a hook in front of the one installed before: for a
//! panic inside a goroutine it first prints
//! `goroutine 7 "worker" (spawned at src/main.rs:12:5) panicked:`, then
//! the previous hook prints the message as usual. Cancellation unwinds with
//! `resume_unwind`, which runs no hook, so cancelled goroutines stay quiet.

use std::sync::atomic::Ordering;
use std::sync::Once;

use super::g;

/// Installs the hook (once per process).
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(g) = g::current() {
                let id = g.id.load(Ordering::Relaxed);
                let loc = g.spawned_at();
                // SAFETY: the running goroutine's stack info is written at
                // spawn and stays unchanged while it runs (this is it).
                let name = unsafe { (*g.info.get()).name };
                match name {
                    Some(n) => eprintln!("goroutine {id} {n:?} (spawned at {loc}) panicked:"),
                    None => eprintln!("goroutine {id} (spawned at {loc}) panicked:"),
                }
            }
            prev(info);
        }));
    });
}
