//! Scoped goroutines (std's `thread::scope`, for goroutines).
//!
//! Every scoped goroutine's packet counts itself in on creation and out when
//! dropped (after the goroutine finished and its handle was joined or
//! dropped); `scope` parks until the count is zero, so borrows of the
//! caller's stack never outlive it. A panic that no one joined makes
//! `scope` panic once all have finished, as std does.

use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe, Location};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use crate::go::{GoId, Invariant, JoinHandle};
use crate::runtime::g::WaitReason;
use crate::runtime::lock::Lock;
use crate::runtime::park::{self, Waiter};
use crate::runtime::{self as rt};

pub(crate) struct ScopeData {
    running: AtomicUsize,
    panicked: AtomicBool,
    waiter: Lock<Option<Waiter>>,
}

impl ScopeData {
    pub(crate) fn increment(&self) {
        self.running.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn decrement(&self, panicked: bool) {
        if panicked {
            self.panicked.store(true, Ordering::Relaxed);
        }
        if self.running.fetch_sub(1, Ordering::Release) == 1 {
            let w = self.waiter.lock().take();
            if let Some(w) = w {
                w.wake();
            }
        }
    }

    /// Waits until every scoped goroutine is done, whatever happens to the
    /// caller meanwhile: a cancellation of the caller (its run ended, its
    /// runtime is being dropped) is held back until then, so no scoped
    /// goroutine outlives the frame it borrows from. Returns that
    /// cancellation, for the caller to resume once the scope is over.
    fn wait(&self, at: &'static Location<'static>) -> Option<Box<dyn std::any::Any + Send>> {
        let mut cancelled = None;
        while self.running.load(Ordering::Acquire) != 0 {
            let parked = catch_unwind(AssertUnwindSafe(|| {
                park::park_at(WaitReason::Scope, at, |w| {
                    let mut slot = self.waiter.lock();
                    if self.running.load(Ordering::Acquire) == 0 {
                        return false;
                    }
                    *slot = Some(w);
                    true
                })
            }));
            // Only a cancellation unwinds out of a park; the goroutine is
            // marked unwinding by it, so the parks that follow are real.
            if let Err(payload) = parked {
                cancelled.get_or_insert(payload);
            }
        }
        cancelled
    }
}

/// A scope to spawn goroutines that borrow from the caller (see [`scope`]).
pub struct Scope<'scope, 'env: 'scope> {
    data: Arc<ScopeData>,
    _scope: Invariant<'scope>,
    _env: Invariant<'env>,
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("running", &self.data.running.load(Ordering::Relaxed))
            .finish()
    }
}

/// Runs `f` with a [`Scope`] whose goroutines may borrow non-`'static`
/// data; all of them are joined before `scope` returns. The caller parks if
/// it is a goroutine, blocks if it is a thread.
///
/// ```
/// gort::run(|| {
///     let mut counts = vec![0; 4];
///     let total = 10;
///     gort::scope(|s| {
///         for (i, c) in counts.iter_mut().enumerate() {
///             s.go(move || *c = total * i);
///         }
///     });
///     assert_eq!(counts, [0, 10, 20, 30]);
/// });
/// ```
#[track_caller]
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let at = Location::caller();
    let scope = Scope {
        data: Arc::new(ScopeData {
            running: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            waiter: Lock::new(None),
        }),
        _scope: Invariant::default(),
        _env: Invariant::default(),
    };
    let result = catch_unwind(AssertUnwindSafe(|| f(&scope)));
    if let Some(cancelled) = scope.data.wait(at) {
        resume_unwind(cancelled);
    }
    match result {
        Err(e) => resume_unwind(e),
        Ok(_) if scope.data.panicked.load(Ordering::Relaxed) => {
            panic!("a scoped goroutine panicked")
        }
        Ok(v) => v,
    }
}

impl<'scope> Scope<'scope, '_> {
    /// Spawns a goroutine that may borrow anything outliving the scope.
    /// Panics if no stack can be had.
    #[track_caller]
    pub fn go<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let inner = crate::Builder::new()
            .spawn_scoped(
                rt::current_sched(),
                Location::caller(),
                self.data.clone(),
                f,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        ScopedJoinHandle {
            inner,
            _scope: Invariant::default(),
        }
    }
}

/// Handle to a scoped goroutine (std's `ScopedJoinHandle` shape): a
/// [`JoinHandle`] that may not outlive its scope.
pub struct ScopedJoinHandle<'scope, T> {
    inner: JoinHandle<T>,
    _scope: Invariant<'scope>,
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the goroutine and returns its value or panic payload.
    #[track_caller]
    pub fn join(self) -> thread::Result<T> {
        self.inner.join()
    }
    /// Whether the goroutine has finished.
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }
    /// The goroutine's id.
    pub fn id(&self) -> GoId {
        self.inner.id()
    }
}

impl<T> fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedJoinHandle")
            .field("id", &self.id())
            .finish()
    }
}
