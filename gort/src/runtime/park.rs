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
use std::panic::Location;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::g::{self, pack, GRef, Switch, WaitReason, CLAIMED, RUNNABLE, WAITING};

/// A parked goroutine or thread, as recorded in a wait list (or a timer).
///
/// Two ways to wake it:
/// * [`wake`](Self::wake): one step, when there is nothing to hand over;
/// * [`claim`](Self::claim), then [`wake_claimed`](Self::wake_claimed):
///   between the two, the claimer owns the parked frame (nothing else can
///   wake it: not a timer, a stale waiter or a cancellation), so it may
///   write a value into the waiter's slot (Go's direct hand-off, a select's
///   chosen case). A select registers clones of one waiter on several
///   channels; whichever claims first wins, the others' claims fail.
#[derive(Debug, Clone)]
pub(crate) enum Waiter {
    G { g: GRef, gen: u64 },
    Thread { parker: Arc<ThreadParker>, gen: u32 },
}

impl Waiter {
    /// Makes the waiter runnable. Returns false if it was stale (the park
    /// it belonged to already ended, or another waker claimed it).
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
            Waiter::G { g, gen } => ready(g, gen, next),
            Waiter::Thread { parker, gen } => parker.wake(gen),
        }
    }

    /// Claims the waiter for this caller; false if stale or claimed by
    /// another. A successful claim must be followed by
    /// [`wake_claimed`](Self::wake_claimed).
    #[inline]
    pub(crate) fn claim(&self) -> bool {
        match self {
            Waiter::G { g, gen } => claim(*g, *gen),
            Waiter::Thread { parker, gen } => parker.claim(*gen),
        }
    }

    /// Wakes a waiter this caller claimed (into the waker's `runnext`).
    #[inline]
    pub(crate) fn wake_claimed(self) {
        match self {
            Waiter::G { g, gen } => ready_claimed(g, gen, true),
            Waiter::Thread { parker, gen } => parker.wake_claimed(gen),
        }
    }

    /// Whether the park this waiter belongs to has ended or been claimed
    /// (a stale entry in a timer heap or a wait list can be dropped).
    pub(crate) fn is_stale(&self) -> bool {
        match self {
            Waiter::G { g, gen } => g.state.load(Ordering::Relaxed) != g::pack(*gen, g::WAITING),
            Waiter::Thread { parker, gen } => parker.is_stale(*gen),
        }
    }

    /// Whether both are the same park of the same goroutine or thread.
    pub(crate) fn same(&self, o: &Waiter) -> bool {
        match (self, o) {
            (Waiter::G { g, gen }, Waiter::G { g: g2, gen: gen2 }) => g == g2 && gen == gen2,
            (
                Waiter::Thread { parker, gen },
                Waiter::Thread {
                    parker: p2,
                    gen: gen2,
                },
            ) => Arc::ptr_eq(parker, p2) && gen == gen2,
            _ => false,
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
#[track_caller]
pub(crate) fn park<F: FnOnce(Waiter) -> bool>(reason: WaitReason, after: F) {
    park_at(reason, Location::caller(), after)
}

/// [`park`], recording `at` as the wait site (for a wait whose user call
/// is not a caller of this, such as a scope's end).
pub(crate) fn park_at<F: FnOnce(Waiter) -> bool>(
    reason: WaitReason,
    at: &'static Location<'static>,
    after: F,
) {
    match g::current() {
        Some(g) => pinned_if_panicking(|| park_goroutine(g, reason, at, after, true)),
        None => {
            park_thread(after, None);
        }
    }
}

/// Runs `f` (which switches the goroutine out) with the goroutine wired to
/// its thread while it unwinds a panic: std's panic count is per thread, so
/// an unwinding goroutine must resume where it started (DESIGN.md rule 3).
/// Its M sleeps meanwhile and its P goes to another thread, as for
/// `lock_os_thread`, so the others run on.
#[inline]
fn pinned_if_panicking<R>(f: impl FnOnce() -> R) -> R {
    if !panicking() {
        return f();
    }
    super::lockosthread::lock_os_thread();
    let r = f();
    super::lockosthread::unlock_os_thread();
    r
}

/// Blocks a plain thread (see [`park`]); gives up at `deadline` (returns
/// false). Goroutines use [`Parking::park`] for deadlines.
pub(crate) fn park_thread<F: FnOnce(Waiter) -> bool>(after: F, deadline: Option<Instant>) -> bool {
    let parker = thread_parker();
    let gen = parker.prepare();
    if !after(Waiter::Thread {
        parker: parker.clone(),
        gen,
    }) {
        return true;
    }
    // Untimed: this thread cannot act until woken (deadlock.rs counts it).
    let _parked = deadline
        .is_none()
        .then(super::deadlock::ParkedThread::enter);
    parker.wait(gen, deadline)
}

/// The caller's next park, known before it parks: a select registers the
/// waiter on several channels while holding their locks, then parks with
/// an `after` step that releases them (Go's `selectgo` + `selparkcommit`).
/// Until then no waker can reach the waiter, and for a goroutine the
/// waiter's generation is not WAITING yet, so nothing can claim it early.
pub(crate) struct Parking {
    waiter: Waiter,
}

/// Prepares the caller's next park (see [`Parking`]). The caller must not
/// park in any other way before [`Parking::park`].
pub(crate) fn prepare() -> Parking {
    match g::current() {
        Some(g) => {
            let (gen, _) = g::unpack(g.state.load(Ordering::Relaxed));
            // `execute` parks the goroutine under the next generation.
            Parking {
                waiter: Waiter::G { g, gen: gen + 1 },
            }
        }
        _ => {
            let parker = thread_parker();
            let gen = parker.prepare();
            Parking {
                waiter: Waiter::Thread { parker, gen },
            }
        }
    }
}

impl Parking {
    /// The waiter this park will wait as.
    pub(crate) fn waiter(&self) -> &Waiter {
        &self.waiter
    }

    /// Parks until the waiter is woken or `deadline` passes (for a
    /// goroutine, a timer that claims the waiter, so the deadline and a
    /// waker never both win; the caller tells which from its own state: a
    /// waker records its hand-off before it wakes). `after` runs once the caller is switched out (a
    /// goroutine) or just before it sleeps (a thread): it releases whatever
    /// kept wakers away from the registered waiter. If the goroutine's
    /// runtime is cancelling it, it parks anyway and is readied at once,
    /// so `after` always runs before the cancellation unwinds it.
    #[track_caller]
    pub(crate) fn park<F: FnOnce()>(self, reason: WaitReason, deadline: Option<Instant>, after: F) {
        match self.waiter {
            Waiter::G { g, gen } => {
                let sched = g.sched();
                let at = Location::caller();
                pinned_if_panicking(|| {
                    park_goroutine(
                        g,
                        reason,
                        at,
                        move |w| {
                            debug_assert!(matches!(w, Waiter::G { gen: g2, .. } if g2 == gen));
                            after();
                            if let Some(at) = deadline {
                                super::timers::add_wake(sched, super::timers::nanos(at), w);
                            }
                            true
                        },
                        false,
                    )
                })
            }
            Waiter::Thread { parker, gen } => {
                after();
                let _parked = deadline
                    .is_none()
                    .then(super::deadlock::ParkedThread::enter);
                parker.wait(gen, deadline);
            }
        }
    }
}

fn park_goroutine<F: FnOnce(Waiter) -> bool>(
    g: GRef,
    reason: WaitReason,
    at: &'static Location<'static>,
    after: F,
    check_first: bool,
) {
    /// Moves the closure onto the M's stack and runs it there.
    ///
    /// # Safety
    /// `data` points at a live `F` that is never used or dropped again.
    unsafe fn call<F: FnOnce(Waiter) -> bool>(data: *mut u8, w: Waiter) -> bool {
        // SAFETY: guaranteed by the caller; reading moves it out.
        let f = unsafe { std::ptr::read(data.cast::<F>()) };
        f(w)
    }
    if check_first {
        check_cancel(g);
    }
    let mut after = ManuallyDrop::new(after);
    g.after.set(Some(g::AfterFn {
        data: (&mut *after as *mut F).cast(),
        call: call::<F>,
    }));
    g.wait_reason.store(reason as u8, Ordering::Relaxed);
    g.parked_at(at);
    super::trace::park(g, reason, at);
    suspend(g, Switch::Park);
    if g.deadlocked.load(Ordering::Relaxed) && !panicking() {
        super::deadlock::panic_now(g);
    }
    // Release: `debug`'s reader that sees the cleared reason also sees the
    // state change before it (snapshot.rs).
    g.wait_reason
        .store(WaitReason::None as u8, Ordering::Release);
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

/// Unwinds a goroutine whose runtime cancelled it, once: not while it is
/// unwinding already (a second panic would abort, and a destructor's or a
/// scope's wait during that unwind is a real wait).
#[inline]
fn check_cancel(g: GRef) {
    if g.must_unwind() && !panicking() {
        g.unwinding.store(true, Ordering::Release);
        std::panic::resume_unwind(Box::new(Cancelled));
    }
}

/// Sleeps the caller for `d`: a goroutine parks (with a timer), a thread
/// sleeps on its futex. Used by the runtime's own waits.
pub(crate) fn sleep_for(d: std::time::Duration) {
    prepare().park(WaitReason::Shutdown, Some(Instant::now() + d), || {});
}

/// A scheduling point that does not otherwise switch (a socket call that
/// did not block, `go`, the end of `blocking`): if sysmon asked the running
/// goroutine to yield (it held its P for more than 10 ms), yield now.
#[inline]
pub(crate) fn preempt_point() {
    if let Some(g) = g::current() {
        if g.preempt.load(Ordering::Relaxed) {
            g.preempt.store(false, Ordering::Relaxed);
            yield_g(g);
        }
    }
}

/// `yield_now`: goes to the back of the run queue (Go's `Gosched`).
pub(crate) fn yield_now() {
    match g::current() {
        Some(g) => {
            check_cancel(g);
            yield_g(g)
        }
        None => std::thread::yield_now(),
    }
}

/// Switches `g` out to the back of a run queue; while it unwinds a panic
/// it comes back on the same thread.
#[inline]
pub(crate) fn yield_g(g: GRef) {
    pinned_if_panicking(|| suspend(g, Switch::Yield));
}

/// `std::thread::panicking`, never inlined (a thread-local read around a
/// park: see `g::current`).
#[inline(never)]
fn panicking() -> bool {
    std::thread::panicking()
}

/// The calling thread's parker. Never inlined: see `g::current`.
#[inline(never)]
fn thread_parker() -> Arc<ThreadParker> {
    THREAD_PARKER.with(|p| p.clone())
}

thread_local! {
    static THREAD_PARKER: Arc<ThreadParker> = Arc::new(ThreadParker::default());
}

pub(crate) use super::claim::ThreadParker;

// ---- ready: making a parked goroutine runnable (Go's goready) -----------

/// Makes a parked goroutine runnable (Go's `goready`): queued in the
/// waker's `runnext` when the waker runs on this runtime, else on the
/// runtime's global queue; then wakes an idle P.
///
/// `next` false queues it at the tail instead (timers: several goroutines
/// whose timers fire together then run in deadline order, rather than each
/// kicking the previous one out of `runnext`).
pub(crate) fn ready(g: GRef, gen: u64, next: bool) -> bool {
    if !g.unpark(gen) {
        return false;
    }
    enqueue(g, next);
    true
}

/// Claims a parked goroutine for a waker (WAITING -> CLAIMED under the
/// park's generation): from here on nothing else can ready it (a stale
/// waiter, a timer, a cancellation), so the claimer may write into the
/// goroutine's parked frame before [`ready_claimed`].
pub(crate) fn claim(g: GRef, gen: u64) -> bool {
    g.state
        .compare_exchange(
            pack(gen, WAITING),
            pack(gen, CLAIMED),
            Ordering::SeqCst,
            Ordering::Relaxed,
        )
        .is_ok()
}

/// Readies a goroutine this caller claimed (see [`claim`]).
pub(crate) fn ready_claimed(g: GRef, gen: u64, next: bool) {
    if g.state.load(Ordering::Relaxed) != pack(gen, CLAIMED) {
        super::throw::throw("ready: the goroutine was not claimed by this waker");
    }
    g.state.store(pack(gen, RUNNABLE), Ordering::Release);
    enqueue(g, next);
}

fn enqueue(g: GRef, next: bool) {
    let sched = g.sched();
    super::trace::ready(g);
    match super::window::current_p(sched) {
        Some(p) => {
            if let Some(batch) = p.runq.put(g.as_ptr(), next) {
                drop(p);
                sched.global_put_batch(batch);
            }
        }
        None => {
            // From outside this runtime's Ms: the G is alive (we made it
            // runnable), so the runtime is too, but once it is queued it
            // may run, exit and let a dropping runtime finish; hold the
            // runtime until `wakep` is done with it.
            let _alive = sched.arc();
            sched.global_put(g);
            sched.wakep();
            return;
        }
    }
    sched.wakep();
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
