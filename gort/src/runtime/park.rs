//! park/ready: the one blocking primitive (DESIGN.md rules 1 and 2).
//!
//! `park(reason, after)` blocks the caller until a [`Waiter`] handed to
//! `after` is woken:
//!
//! * In a goroutine, the goroutine switches out first; `after` then runs on
//!   its M's own stack (Go's `gopark(unlockf)`). `after` records the waiter
//!   somewhere (a wait list) and releases whatever lock protects it. Because
//!   the goroutine is already off its stack, a waker that takes the waiter
//!   can never see it still running: no lost and no early wake-up. If
//!   `after` returns `false` (the condition came true meanwhile), the
//!   goroutine resumes at once.
//! * On a plain OS thread (or a goroutine unwinding a panic, which must stay
//!   on its thread, DESIGN.md rule 3), `after` runs on the caller and the
//!   thread sleeps on a futex.
//!
//! `Waiter::wake` is `ready(g)` for a goroutine: it queues the goroutine on
//! the waker's P (`runnext`) or its runtime's global queue and wakes an idle
//! P. Both kinds of waiter carry the generation of the park they belong to,
//! so a stale waiter wakes nothing.

use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::futex;
use super::g::{self, GRef, Switch, WaitReason};

/// A parked goroutine or thread, as recorded in a wait list.
#[derive(Debug)]
pub(crate) enum Waiter {
    G { g: GRef, gen: u64 },
    Thread { parker: Arc<ThreadParker>, gen: u32 },
}

impl Waiter {
    /// Makes the waiter runnable. Returns false if it was stale (the park
    /// it belonged to already ended).
    pub(crate) fn wake(self) -> bool {
        self.wake_as(true)
    }

    /// As [`wake`](Self::wake), queuing a goroutine behind the others
    /// rather than in `runnext` (timers wake in deadline order this way).
    pub(crate) fn wake_fifo(self) -> bool {
        self.wake_as(false)
    }

    fn wake_as(self, next: bool) -> bool {
        match self {
            Waiter::G { g, gen } => super::sched::ready(g, gen, next),
            Waiter::Thread { parker, gen } => parker.wake(gen),
        }
    }
}

/// Panic payload that unwinds a cancelled goroutine (its runtime shut down,
/// or `run`'s main goroutine returned).
pub(crate) struct Cancelled;

/// Blocks the current goroutine or thread; see the module docs.
///
/// `after` must not touch the goroutine's stack once it has published the
/// waiter (the goroutine may already be running elsewhere); it receives
/// everything it needs by value.
pub(crate) fn park<F: FnOnce(Waiter) -> bool>(reason: WaitReason, after: F) {
    match g::current() {
        Some(g) if !std::thread::panicking() => park_goroutine(g, reason, after),
        _ => {
            park_thread(after, None);
        }
    }
}

/// As [`park`], but a plain thread gives up at `deadline` (returns false).
/// Goroutines use timers for deadlines instead.
pub(crate) fn park_thread<F: FnOnce(Waiter) -> bool>(after: F, deadline: Option<Instant>) -> bool {
    let parker = THREAD_PARKER.with(|p| p.clone());
    let gen = parker.prepare();
    if !after(Waiter::Thread {
        parker: parker.clone(),
        gen,
    }) {
        return true;
    }
    parker.wait(gen, deadline)
}

fn park_goroutine<F: FnOnce(Waiter) -> bool>(g: GRef, reason: WaitReason, after: F) {
    /// Moves the closure onto the M's stack and runs it there.
    ///
    /// # Safety
    /// `data` points at a live `F` that is never used or dropped again.
    unsafe fn call<F: FnOnce(Waiter) -> bool>(data: *mut u8, w: Waiter) -> bool {
        // SAFETY: guaranteed by the caller; reading moves it out.
        let f = unsafe { std::ptr::read(data.cast::<F>()) };
        f(w)
    }
    check_cancel(g);
    let mut after = ManuallyDrop::new(after);
    g.after.set(Some(g::AfterFn {
        data: (&mut *after as *mut F).cast(),
        call: call::<F>,
    }));
    g.wait_reason.store(reason as u8, Ordering::Relaxed);
    suspend(g, Switch::Park);
    g.wait_reason
        .store(WaitReason::None as u8, Ordering::Relaxed);
}

/// Switches the goroutine out; returns when it is resumed.
#[inline]
pub(crate) fn suspend(g: GRef, why: Switch) {
    let y = g.yielder.get();
    // SAFETY: `yielder` is set by the goroutine's entry closure to the
    // corosensei yielder of the coroutine we are running on, which lives as
    // long as the coroutine.
    unsafe { (*y).suspend(why) };
    check_cancel(g);
}

/// Unwinds a goroutine whose runtime cancelled it (not while it is already
/// unwinding: a second panic would abort).
#[inline]
fn check_cancel(g: GRef) {
    if g.cancelled() && !std::thread::panicking() {
        std::panic::resume_unwind(Box::new(Cancelled));
    }
}

/// `yield_now`: goes to the back of the run queue (Go's `Gosched`).
pub(crate) fn yield_now() {
    match g::current() {
        Some(g) => {
            check_cancel(g);
            suspend(g, Switch::Yield)
        }
        None => std::thread::yield_now(),
    }
}

thread_local! {
    static THREAD_PARKER: Arc<ThreadParker> = Arc::new(ThreadParker::default());
}

/// A plain thread's side of [`Waiter`]: a futex word packing the park
/// generation (high bits) with a woken flag (bit 0).
#[derive(Debug, Default)]
pub(crate) struct ThreadParker {
    state: AtomicU32,
}

impl ThreadParker {
    /// Starts a new park; only the owning thread calls this.
    fn prepare(&self) -> u32 {
        let gen = (self.state.load(Ordering::Relaxed) >> 1).wrapping_add(1) & (u32::MAX >> 1);
        self.state.store(gen << 1, Ordering::SeqCst);
        gen
    }

    /// Sleeps until woken for `gen`, or until `deadline`; true if woken.
    fn wait(&self, gen: u32, deadline: Option<Instant>) -> bool {
        let woken = (gen << 1) | 1;
        loop {
            let s = self.state.load(Ordering::Acquire);
            if s == woken {
                return true;
            }
            let timeout = match deadline {
                Some(at) => match at.checked_duration_since(Instant::now()) {
                    Some(d) if !d.is_zero() => Some(d),
                    _ => {
                        // Time is up: retract the park so a late wake is stale.
                        return self
                            .state
                            .compare_exchange(
                                s,
                                s.wrapping_add(2),
                                Ordering::AcqRel,
                                Ordering::Acquire,
                            )
                            .is_err();
                    }
                },
                None => None,
            };
            futex::wait(&self.state, s, timeout);
        }
    }

    fn wake(&self, gen: u32) -> bool {
        let waiting = gen << 1;
        if self
            .state
            .compare_exchange(waiting, waiting | 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            futex::wake(&self.state, 1);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::lock::Lock;

    #[test]
    fn thread_park_is_woken_by_its_waiter_only() {
        let slot: Arc<Lock<Option<Waiter>>> = Arc::new(Lock::new(None));
        let s2 = slot.clone();
        let t = std::thread::spawn(move || {
            park(WaitReason::Join, |w| {
                *s2.lock() = Some(w);
                true
            });
            7
        });
        let w = loop {
            if let Some(w) = slot.lock().take() {
                break w;
            }
            std::thread::yield_now();
        };
        assert!(w.wake());
        assert_eq!(t.join().unwrap(), 7);
    }

    #[test]
    fn after_returning_false_does_not_block() {
        let mut ran = false;
        park(WaitReason::Join, |_w| {
            ran = true;
            false
        });
        assert!(ran);
    }

    #[test]
    fn stale_thread_waiter_is_ignored() {
        let mut stale = None;
        let timed_out = !park_thread(
            |w| {
                stale = Some(w);
                true
            },
            Some(Instant::now()),
        );
        assert!(timed_out);
        assert!(!stale.unwrap().wake(), "a timed-out park's waiter is stale");
    }
}
