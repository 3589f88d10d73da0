//! Spawning goroutines: `go`, `Builder`, `JoinHandle`.
//!
//! A goroutine's closure runs under `catch_unwind`; its return value or
//! panic payload goes into a shared *packet* that the `JoinHandle` reads,
//! so a panic never crosses a context switch and never takes down the
//! runtime. If the goroutine is cancelled (its runtime shut down or `run`
//! returned) the packet receives a cancellation payload instead, so a
//! joiner never waits forever.

use std::any::Any;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe, Location};
use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;

use crate::packet::{Completed, Slot};
use crate::runtime::park::Cancelled;
use crate::runtime::sched::Sched;
use crate::runtime::spawn::SpawnOpts;
use crate::runtime::{self as rt};
use crate::scope::ScopeData;
use crate::stack;

/// The payload a cancelled goroutine's `join` returns as its `Err`.
///
/// ```
/// let rt = gort::runtime::Builder::new().build().unwrap();
/// let wg = gort::sync::WaitGroup::new();
/// wg.add(1);
/// let (w, started) = (wg.clone(), gort::sync::WaitGroup::new());
/// started.add(1);
/// let s = started.clone();
/// let h = rt.go(move || { s.done(); w.wait() }); // waits forever
/// started.wait();
/// drop(rt); // cancels it
/// assert_eq!(*h.join().unwrap_err().downcast_ref::<&str>().unwrap(), gort::CANCELLED);
/// ```
pub const CANCELLED: &str = "gort: goroutine cancelled: its runtime shut down or run() returned";

/// A goroutine's id, unique in the process (Go numbers goroutines from 1).
///
/// ```
/// gort::run(|| {
///     let h = gort::go(|| ());
///     assert!(h.id().as_u64() > 0);
///     println!("spawned {}", h.id());
/// });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GoId(u64);

impl GoId {
    pub(crate) fn from_u64(id: u64) -> GoId {
        GoId(id)
    }

    /// The id as a number.
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for GoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "goroutine {}", self.0)
    }
}

/// Where a goroutine's result goes. Two owners share it, the goroutine
/// (through [`Completion`]) and its handle; the state machine that says
/// who has let go is [`Slot`] (`packet.rs`), and whichever side it tells
/// to free the packet frees it, so after an ordinary join the joiner
/// (which allocated it) frees it.
pub(crate) struct Packet<T> {
    slot: Slot<thread::Result<T>>,
    scope: Option<Arc<ScopeData>>,
}

/// One of a packet's two owners.
pub(crate) struct Owner<T>(NonNull<Packet<T>>);

// SAFETY: an owner is a unique capability for one side of the packet's
// protocol; the result (`T`) crosses threads, hence `T: Send`.
unsafe impl<T: Send> Send for Owner<T> {}
// SAFETY: `&Owner` only allows `is_finished`, an atomic load.
unsafe impl<T: Send> Sync for Owner<T> {}

impl<T> Packet<T> {
    /// A packet and its two owners: (goroutine side, handle side).
    pub(crate) fn pair(scope: Option<Arc<ScopeData>>) -> (Owner<T>, Owner<T>) {
        if let Some(s) = &scope {
            s.increment();
        }
        let p = NonNull::from(Box::leak(Box::new(Packet {
            slot: Slot::new(),
            scope,
        })));
        (Owner(p), Owner(p))
    }
}

impl<T> Owner<T> {
    fn packet(&self) -> &Packet<T> {
        // SAFETY: the packet lives until both owners have let go, and this
        // owner has not.
        unsafe { self.0.as_ref() }
    }

    /// Frees the packet (the caller is the second owner to let go).
    ///
    /// # Safety
    /// The other owner must have let go already.
    unsafe fn free(self) {
        // SAFETY: allocated by `Box` in `Packet::new`; both owners are done.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
        std::mem::forget(self);
    }

    /// The goroutine's side: stores the result and lets go.
    fn complete(self, r: thread::Result<T>) {
        // SAFETY: this is the goroutine's owner, and it completes once
        // (`complete` consumes it).
        match unsafe { self.packet().slot.complete(r) } {
            // SAFETY: the handle let go before us.
            Completed::Free => unsafe { self.free() },
            Completed::Wake(waiter) => {
                // From here on the handle may free the packet at any moment.
                std::mem::forget(self);
                if let Some(w) = waiter {
                    w.wake();
                }
            }
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.packet().slot.is_finished()
    }

    /// The handle's side: waits for the result, takes it, frees the packet.
    #[track_caller]
    pub(crate) fn join(self) -> thread::Result<T> {
        // SAFETY: this is the handle's owner, and it joins once (`join`
        // consumes it, so it never detaches).
        let r = unsafe { self.packet().slot.join() };
        // SAFETY: the goroutine let go (COMPLETE).
        unsafe { self.free() };
        r
    }
}

impl<T> Drop for Owner<T> {
    /// A handle dropped unjoined (detach), or a goroutine's owner dropped
    /// without completing (never happens: `Completion` completes).
    fn drop(&mut self) {
        if self.packet().slot.detach() {
            // SAFETY: the goroutine let go before us.
            drop(unsafe { Box::from_raw(self.0.as_ptr()) });
        }
    }
}

impl<T> Drop for Packet<T> {
    fn drop(&mut self) {
        let result = self.slot.take_mut();
        let unhandled_panic = matches!(result, Some(Err(_)));
        drop(result);
        if let Some(scope) = &self.scope {
            scope.decrement(unhandled_panic);
        }
    }
}

/// Completes the packet with a cancellation if the closure never ran.
struct Completion<T>(Option<Owner<T>>);

impl<T> Drop for Completion<T> {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            p.complete(Err(Box::new(CANCELLED)));
        }
    }
}

/// The body every goroutine runs: `f` under `catch_unwind`, result into
/// the packet.
fn body<F, T>(f: F, packet: Owner<T>) -> impl FnOnce() + Send
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    let mut completion = Completion(Some(packet));
    move || {
        let r = catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
            if payload.is::<Cancelled>() {
                Box::new(CANCELLED) as Box<dyn Any + Send>
            } else {
                payload
            }
        });
        completion.0.take().expect("completed once").complete(r);
    }
}

/// An owned permission to join a goroutine (std's `JoinHandle` shape).
/// Dropping it detaches the goroutine.
///
/// ```
/// gort::run(|| {
///     let h = gort::go(|| panic!("boom"));
///     let err = h.join().unwrap_err();
///     assert_eq!(*err.downcast_ref::<&str>().unwrap(), "boom");
/// });
/// ```
pub struct JoinHandle<T> {
    packet: Owner<T>,
    id: GoId,
}

impl<T> JoinHandle<T> {
    /// Waits for the goroutine (parking a goroutine caller, blocking a
    /// thread caller) and returns its value, or the payload it panicked
    /// with.
    #[track_caller]
    pub fn join(self) -> thread::Result<T> {
        self.packet.join()
    }

    /// Whether the goroutine has finished.
    pub fn is_finished(&self) -> bool {
        self.packet.is_finished()
    }

    /// The goroutine's id.
    pub fn id(&self) -> GoId {
        self.id
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").field("id", &self.id).finish()
    }
}

/// Goroutine factory (std's `thread::Builder` shape).
///
/// ```
/// gort::run(|| {
///     let h = gort::Builder::new()
///         .name("worker")
///         .stack_size(64 * 1024)
///         .spawn(|| 1 + 1)
///         .unwrap();
///     assert_eq!(h.join().unwrap(), 2);
/// });
/// ```
#[derive(Debug, Clone, Default)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with no name and the runtime's stack size.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the goroutine (shown in stack overflow reports and `debug`).
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Sets this goroutine's stack size (rounded up to whole pages;
    /// 16 KiB to 1 GiB).
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Spawns the goroutine on the caller's runtime (the default runtime
    /// from a plain thread). Errors if the stack size is out of range
    /// (`InvalidInput`, naming `stack_size`) or no stack can be had.
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_on(rt::current_sched(), Location::caller(), f)
    }

    pub(crate) fn spawn_on<F, T>(
        self,
        sched: &Sched,
        location: &'static Location<'static>,
        f: F,
    ) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_in_group(sched, location, None, f)
    }

    /// Spawns into `group` (`None`: the spawner's group, or detached).
    pub(crate) fn spawn_in_group<F, T>(
        self,
        sched: &Sched,
        location: &'static Location<'static>,
        group: Option<u32>,
        f: F,
    ) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let mut opts = self.opts(location)?;
        opts.group = group;
        let (mine, packet) = Packet::pair(None);
        let g = sched.spawn(body(f, mine), opts)?;
        Ok(JoinHandle {
            packet,
            id: GoId(g.id.load(Ordering::Relaxed)),
        })
    }

    /// Spawns a goroutine that may borrow for `'scope` (see `scope`).
    pub(crate) fn spawn_scoped<'scope, F, T>(
        self,
        sched: &Sched,
        location: &'static Location<'static>,
        data: Arc<ScopeData>,
        f: F,
    ) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let opts = self.opts(location)?;
        let (mine, packet) = Packet::pair(Some(data));
        let run: Box<dyn FnOnce() + Send + 'scope> = Box::new(body(f, mine));
        // SAFETY: the scope waits until every scoped goroutine's packet is
        // dropped, which happens only after the closure has run or been
        // dropped, so nothing borrowed for 'scope is used after 'scope.
        let run: Box<dyn FnOnce() + Send + 'static> = unsafe { std::mem::transmute(run) };
        let g = sched.spawn(run, opts)?;
        Ok(JoinHandle {
            packet,
            id: GoId(g.id.load(Ordering::Relaxed)),
        })
    }

    fn opts(self, location: &'static Location<'static>) -> io::Result<SpawnOpts> {
        let stack_size = self
            .stack_size
            .map(|s| stack::validate_size(s, "stack_size"))
            .transpose()?;
        Ok(SpawnOpts {
            name: self.name,
            stack_size,
            location,
            group: None,
        })
    }
}

/// Spawns a goroutine on the caller's runtime, or on the default runtime
/// (started on first use) from a plain thread.
///
/// Goroutines migrate between OS threads at every blocking call, so a
/// goroutine must not hold a thread-local borrow (or a `StdoutLock`, or a
/// `!Send` value taken from a thread-local) across a blocking call.
///
/// Panics if no stack can be had, with the message `Builder::spawn` would
/// return as its `Err`.
///
/// ```
/// let h = gort::go(|| "hello from a goroutine");
/// assert_eq!(h.join().unwrap(), "hello from a goroutine");
/// ```
#[track_caller]
pub fn go<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new()
        .spawn_on(rt::current_sched(), Location::caller(), f)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Keeps `'scope` invariant in scoped handles.
pub(crate) type Invariant<'a> = PhantomData<&'a mut &'a ()>;
