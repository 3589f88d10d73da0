//! G: a goroutine.
//!
//! A G owns its register context (a corosensei coroutine on a gort stack),
//! an id, an optional name, its spawn location, a wait reason, a preempt
//! flag and its group (whose cancellation it checks at scheduling points). Its `state` word packs a status with a *park
//! generation*: every park bumps the generation, and a waiter records the
//! generation it parked under. `ready` readies a G only with a CAS from
//! exactly (that generation, WAITING), so a stale waiter (left in a wait
//! list after a timeout, a cancellation or the G's death) can never wake
//! the wrong park of the same G.
//!
//! G structs are type-stable, like Go's: once allocated they are never
//! freed, only recycled (per-P free list, then the runtime's, then a
//! process-wide pool of shells). A stale waiter therefore always points at
//! valid memory, and its CAS simply fails.

use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::panic::Location;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, Ordering};

use corosensei::{Coroutine, Yielder};

use super::lock::Lock;
use super::park::Waiter;
use super::sched::Sched;
use crate::stack::overflow::StackInfo;
use crate::stack::Stack;

/// Why a goroutine's coroutine handed control back to its M.
pub(crate) enum Switch {
    /// `yield_now`: queue me behind the others.
    Yield,
    /// `park`: run my `after` step, then leave me waiting.
    Park,
}

pub(crate) type Context = Coroutine<(), Switch, (), Stack>;
pub(crate) type GYielder = Yielder<(), Switch>;

pub(crate) const IDLE: u8 = 0;
pub(crate) const RUNNABLE: u8 = 1;
pub(crate) const RUNNING: u8 = 2;
pub(crate) const WAITING: u8 = 3;
pub(crate) const DEAD: u8 = 4;
/// Waiting, but a waker has claimed it (see `Waiter::claim`): only that
/// waker may make it runnable, after handing it a value.
pub(crate) const CLAIMED: u8 = 5;

#[inline]
pub(crate) fn pack(gen: u64, status: u8) -> u64 {
    (gen << 8) | status as u64
}
#[inline]
pub(crate) fn unpack(state: u64) -> (u64, u8) {
    (state >> 8, state as u8)
}

/// What a goroutine is waiting for (shown by the debug module, Go's
/// `waitReason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
#[non_exhaustive]
pub(crate) enum WaitReason {
    /// Not waiting.
    None = 0,
    /// `JoinHandle::join`.
    Join,
    /// `WaitGroup::wait`.
    WaitGroup,
    /// `time::sleep`.
    Sleep,
    /// Waiting for its runtime's goroutines to finish.
    Shutdown,
    /// `scope` waiting for its goroutines.
    Scope,
    /// `Receiver::recv`.
    ChanReceive,
    /// `Sender::send`.
    ChanSend,
    /// `select!` or `Select`.
    Select,
    /// `select!` with no cases, or a receive on `chan::never()`.
    SelectNoCases,
    /// `Mutex::lock`.
    MutexLock,
    /// `RwLock::read`.
    RwLockRead,
    /// `RwLock::write`.
    RwLockWrite,
    /// `Condvar::wait`.
    CondWait,
    /// `Semaphore::acquire`.
    Semacquire,
    /// `Once::call_once` while another caller runs the closure.
    Once,
    /// A socket operation waiting for readiness.
    IoWait,
}

impl WaitReason {
    const ALL: [WaitReason; 17] = [
        WaitReason::None,
        WaitReason::Join,
        WaitReason::WaitGroup,
        WaitReason::Sleep,
        WaitReason::Shutdown,
        WaitReason::Scope,
        WaitReason::ChanReceive,
        WaitReason::ChanSend,
        WaitReason::Select,
        WaitReason::SelectNoCases,
        WaitReason::MutexLock,
        WaitReason::RwLockRead,
        WaitReason::RwLockWrite,
        WaitReason::CondWait,
        WaitReason::Semacquire,
        WaitReason::Once,
        WaitReason::IoWait,
    ];

    /// The reason stored as `r as u8`.
    pub(crate) fn from_u8(r: u8) -> WaitReason {
        Self::ALL
            .get(r as usize)
            .copied()
            .unwrap_or(WaitReason::None)
    }
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl WaitReason {
    /// Go's words for it (`runtime/runtime2.go`'s waitReasonStrings).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            WaitReason::None => "running",
            WaitReason::Join => "join",
            WaitReason::WaitGroup => "sync.WaitGroup.Wait",
            WaitReason::Sleep => "sleep",
            WaitReason::Shutdown => "shutdown",
            WaitReason::Scope => "scope",
            WaitReason::ChanReceive => "chan receive",
            WaitReason::ChanSend => "chan send",
            WaitReason::Select => "select",
            WaitReason::SelectNoCases => "select (no cases)",
            WaitReason::MutexLock => "sync.Mutex.Lock",
            WaitReason::RwLockRead => "sync.RWMutex.RLock",
            WaitReason::RwLockWrite => "sync.RWMutex.Lock",
            WaitReason::CondWait => "sync.Cond.Wait",
            WaitReason::Semacquire => "semacquire",
            WaitReason::Once => "sync.Once.Do",
            WaitReason::IoWait => "IO wait",
        }
    }
}

/// The `after` step of a park, type-erased: `call(data, waiter)` moves the
/// closure out of the parked goroutine's stack and runs it on the M.
#[derive(Clone, Copy)]
pub(crate) struct AfterFn {
    pub(crate) data: *mut u8,
    pub(crate) call: unsafe fn(*mut u8, Waiter) -> bool,
}

pub(crate) struct G {
    pub(crate) state: AtomicU64,
    pub(crate) id: AtomicU64,
    /// The goroutine's group (see `group.rs`), inherited from its spawner.
    pub(crate) group: AtomicU32,
    pub(crate) preempt: AtomicBool,
    /// Unwinding from a cancellation: its parks from now on are real waits
    /// (a destructor, a scope waiting for its goroutines), which neither a
    /// cancellation nor a check at a scheduling point interrupts again.
    pub(crate) unwinding: AtomicBool,
    /// `deadlock::check` woke this main goroutine to panic.
    pub(crate) deadlocked: AtomicBool,
    pub(crate) wait_reason: AtomicU8,
    /// The runtime this goroutine belongs to (valid while it is alive).
    pub(crate) sched: AtomicPtr<Sched>,
    /// Non-null for an M's stop proxy (`preempt.rs`): not a goroutine.
    pub(crate) proxy_for: AtomicPtr<super::m::MShared>,
    // The fields below are touched only by whoever owns the G at the time:
    // the spawner before it is queued, the M running it, or the M that
    // recycles it. Ownership moves with the run queues' release/acquire.
    pub(crate) ctx: UnsafeCell<Option<Context>>,
    /// A stack kept with a dead G for reuse.
    pub(crate) stack: UnsafeCell<Option<Stack>>,
    pub(crate) yielder: Cell<*const GYielder>,
    pub(crate) after: Cell<Option<AfterFn>>,
    pub(crate) info: UnsafeCell<StackInfo>,
    pub(crate) name: Lock<Option<Box<str>>>,
    /// Where it was spawned (`debug` reads it from any thread).
    spawned_at: AtomicPtr<Location<'static>>,
    /// Where it last parked (the user's call: blocking calls are
    /// `#[track_caller]` down to the park) and when, on the clock of
    /// `timers::now` (ns): `debug` reports them while it waits.
    waiting_at: AtomicPtr<Location<'static>>,
    pub(crate) since: AtomicU64,
    /// Exits since the stack was last checked for deep pages.
    pub(crate) exits: Cell<u8>,
    /// The cached stack has not been checked for deep pages since the
    /// goroutine on it exited (sysmon's scavenger looks at it).
    pub(crate) stack_dirty: Cell<bool>,
    /// Nesting depth of `blocking` calls in progress (see `blocking.rs`).
    pub(crate) blocking: Cell<u32>,
    /// `lock_os_thread` nesting count, and the M it wires the G to.
    pub(crate) lock_count: Cell<u32>,
    pub(crate) locked_m: Cell<*const super::m::MShared>,
}

// SAFETY: a G is shared between threads only through the scheduler, which
// hands the non-atomic fields from one owner to the next with release/acquire
// (run queues, the lock-protected lists); the atomics are safe to share.
unsafe impl Sync for G {}
// SAFETY: as above; the coroutine inside is `!Send` only because it may hold
// arbitrary data, and goroutine closures are required to be `Send`.
unsafe impl Send for G {}

/// A pointer to an immortal G.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct GRef(NonNull<G>);

// SAFETY: Gs are immortal and `Sync` (see above).
unsafe impl Send for GRef {}
// SAFETY: as above.
unsafe impl Sync for GRef {}

impl std::ops::Deref for GRef {
    type Target = G;
    #[inline]
    fn deref(&self) -> &G {
        // SAFETY: Gs are leaked on allocation and never freed.
        unsafe { self.0.as_ref() }
    }
}

impl GRef {
    pub(crate) fn as_ptr(self) -> *mut G {
        self.0.as_ptr()
    }
    /// # Safety
    /// `p` must come from [`GRef::as_ptr`].
    pub(crate) unsafe fn from_ptr(p: *mut G) -> GRef {
        // SAFETY: the caller passes a pointer from `as_ptr`, never null.
        GRef(unsafe { NonNull::new_unchecked(p) })
    }

    /// Allocates a new, never-freed G shell.
    pub(crate) fn alloc() -> GRef {
        let g = Box::new(G {
            state: AtomicU64::new(pack(0, IDLE)),
            id: AtomicU64::new(0),
            group: AtomicU32::new(0),
            preempt: AtomicBool::new(false),
            unwinding: AtomicBool::new(false),
            deadlocked: AtomicBool::new(false),
            wait_reason: AtomicU8::new(0),
            sched: AtomicPtr::new(std::ptr::null_mut()),
            proxy_for: AtomicPtr::new(std::ptr::null_mut()),
            ctx: UnsafeCell::new(None),
            stack: UnsafeCell::new(None),
            yielder: Cell::new(std::ptr::null()),
            after: Cell::new(None),
            info: UnsafeCell::new(StackInfo {
                guard_lo: 0,
                guard_hi: 0,
                size: 0,
                id: 0,
                name: None,
            }),
            name: Lock::new(None),
            spawned_at: AtomicPtr::new(std::ptr::from_ref(Location::caller()).cast_mut()),
            waiting_at: AtomicPtr::new(std::ptr::null_mut()),
            since: AtomicU64::new(0),
            exits: Cell::new(0),
            stack_dirty: Cell::new(false),
            blocking: Cell::new(0),
            lock_count: Cell::new(0),
            locked_m: Cell::new(std::ptr::null()),
        });
        GRef(NonNull::from(Box::leak(g)))
    }

    /// Where the goroutine was spawned.
    pub(crate) fn spawned_at(self) -> &'static Location<'static> {
        // SAFETY: only `&'static Location`s are ever stored.
        unsafe { &*self.spawned_at.load(Ordering::Relaxed) }
    }

    pub(crate) fn set_spawned_at(self, at: &'static Location<'static>) {
        // Release: a new life's fields, seen by `debug`'s reader, bring the
        // old life's end with them (snapshot.rs).
        self.spawned_at
            .store(std::ptr::from_ref(at).cast_mut(), Ordering::Release);
    }

    /// Where the goroutine last parked (`None` before its first park).
    pub(crate) fn waiting_at(self) -> Option<&'static Location<'static>> {
        let at = self.waiting_at.load(Ordering::Relaxed);
        // SAFETY: only `&'static Location`s are ever stored.
        (!at.is_null()).then(|| unsafe { &*at })
    }

    pub(crate) fn waiting_at_clear(self) {
        // Release: see `park_goroutine`'s clear of the reason.
        self.waiting_at
            .store(std::ptr::null_mut(), Ordering::Release);
    }

    /// Records the blocking call at `at` the goroutine is entering.
    #[inline]
    pub(crate) fn set_waiting_at(self, at: &'static Location<'static>) {
        self.waiting_at
            .store(std::ptr::from_ref(at).cast_mut(), Ordering::Relaxed);
    }

    /// Records a park at `at`, now by the runtime's coarse clock (so a
    /// reported wait is never shorter than the real one, and may be longer
    /// by up to one sysmon round).
    #[inline]
    pub(crate) fn parked_at(self, at: &'static Location<'static>) {
        self.set_waiting_at(at);
        let now = self.sched().clock.load(Ordering::Relaxed);
        self.since.store(now, Ordering::Relaxed);
    }

    /// Makes the park of generation `gen` runnable (WAITING -> RUNNABLE),
    /// if it is still that park and unclaimed: the one transition every
    /// waker without a hand-off makes (`ready`, a cancellation, a park whose
    /// `after` step declined). The caller then owns the G and queues it.
    #[inline]
    pub(crate) fn unpark(self, gen: u64) -> bool {
        self.state
            .compare_exchange(
                pack(gen, WAITING),
                pack(gen, RUNNABLE),
                Ordering::SeqCst,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// What it waits for (`WaitReason::None` when not parked).
    pub(crate) fn reason(self) -> WaitReason {
        WaitReason::from_u8(self.wait_reason.load(Ordering::Relaxed))
    }

    /// Whether this goroutine must unwind at its next scheduling point:
    /// its group is being cancelled and it is not unwinding already.
    #[inline]
    pub(crate) fn must_unwind(self) -> bool {
        self.cancelled() && !self.unwinding.load(Ordering::Relaxed)
    }

    /// Whether this goroutine's group is being cancelled.
    #[inline]
    pub(crate) fn cancelled(self) -> bool {
        self.sched()
            .groups
            .is_cancelled(self.group.load(Ordering::Relaxed))
    }

    pub(crate) fn sched(self) -> &'static Sched {
        // SAFETY: a live G's runtime outlives it: the runtime cancels and
        // waits for all its goroutines before it is freed. The 'static is
        // a lie confined to the runtime's own code.
        unsafe { &*self.sched.load(Ordering::Acquire) }
    }

    /// # Safety
    /// Only the G's current owner (see the field comments) may call this.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn ctx_mut(self) -> &'static mut Option<Context> {
        // SAFETY: guaranteed by the caller.
        unsafe { &mut *self.ctx.get() }
    }

    /// # Safety
    /// As [`ctx_mut`](Self::ctx_mut).
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn stack_mut(self) -> &'static mut Option<Stack> {
        // SAFETY: guaranteed by the caller.
        unsafe { &mut *self.stack.get() }
    }
}

thread_local! {
    static CURRENT: Cell<*mut G> = const { Cell::new(std::ptr::null_mut()) };
}

/// The goroutine running on this thread, if any.
///
/// Never inlined, nor is any other thread-local access a goroutine makes
/// around a park: LLVM treats the thread pointer as constant within a
/// function, so an inlined access before a park and one after it may share
/// one address computation, and a goroutine that resumed on another thread
/// would read its old thread's variable (a goroutine migrates, DESIGN.md
/// rule 3). A call computes the address afresh on the thread it runs on.
#[inline(never)]
pub(crate) fn current() -> Option<GRef> {
    let p = CURRENT.with(|c| c.get());
    // SAFETY: only `set_current` writes CURRENT, with pointers from GRef.
    (!p.is_null()).then(|| unsafe { GRef::from_ptr(p) })
}

#[inline(never)]
pub(crate) fn set_current(g: Option<GRef>) {
    CURRENT.with(|c| c.set(g.map_or(std::ptr::null_mut(), |g| g.as_ptr())));
}
