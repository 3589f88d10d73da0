//! The runtime's internal mutex (Go's `runtime.mutex`, lock_futex.go).
//!
//! Critical sections in the runtime are a few instructions long (push a G
//! on the global queue, take an idle P, append a waiter), so the lock spins
//! briefly and then sleeps on a futex. Three states, after Drepper's
//! "Futexes are tricky": 0 unlocked, 1 locked, 2 locked with sleepers.
//!
//! Compiled under `cfg(loom)` too (the state word is a loom atomic, the
//! futex loom's emulation): the channel and `sync` models run it for real.
//! The data stays a std cell (a guard derefs to it); models that check
//! exclusion put a loom cell inside.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};

use crate::loom::atomic::{AtomicU32, Ordering};

use super::futex;

const UNLOCKED: u32 = 0;
const LOCKED: u32 = 1;
const CONTENDED: u32 = 2;

/// A small futex mutex owning its data.
pub(crate) struct Lock<T> {
    state: AtomicU32,
    data: UnsafeCell<T>,
}

// SAFETY: the lock serialises all access to `data`, so sharing the lock
// between threads only ever hands `&mut T` to one thread at a time; `T: Send`
// is needed because that thread may not be the one that created `T`.
unsafe impl<T: Send> Sync for Lock<T> {}
// SAFETY: moving the lock moves the `T` it owns.
unsafe impl<T: Send> Send for Lock<T> {}

impl<T: Default> Default for Lock<T> {
    fn default() -> Self {
        Lock::new(T::default())
    }
}

// Like std's Mutex: the runtime's critical sections never leave data
// half-updated on unwind, so the lock is unwind-safe.
impl<T> std::panic::RefUnwindSafe for Lock<T> {}
impl<T> std::panic::UnwindSafe for Lock<T> {}

/// Proof of holding a [`Lock`]; unlocks on drop.
pub(crate) struct LockGuard<'a, T> {
    lock: &'a Lock<T>,
}

/// Spins before sleeping (one under loom: each spin is one more
/// interleaving to explore, and the futex path is the one to check).
const SPINS: u32 = if cfg!(loom) { 1 } else { 100 };

/// Counts the gort locks this thread holds, so the preemption handler
/// never stops a thread holding one (`preempt.rs`); nothing under loom.
#[inline]
fn held(d: i32) {
    #[cfg(not(loom))]
    super::preempt::locks_add(d);
    #[cfg(loom)]
    let _ = d;
}

impl<T> Lock<T> {
    crate::maybe_const_fn! {
        pub(crate) fn new(data: T) -> Self {
            Lock {
                state: AtomicU32::new(UNLOCKED),
                data: UnsafeCell::new(data),
            }
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> LockGuard<'_, T> {
        if self
            .state
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.lock_slow();
        }
        held(1);
        LockGuard { lock: self }
    }

    /// Takes the lock if it is free, without waiting.
    #[inline]
    pub(crate) fn try_lock(&self) -> Option<LockGuard<'_, T>> {
        self.state
            .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| {
                held(1);
                LockGuard { lock: self }
            })
    }

    #[cold]
    fn lock_slow(&self) {
        for _ in 0..SPINS {
            std::hint::spin_loop();
            if self.state.load(Ordering::Relaxed) == UNLOCKED
                && self
                    .state
                    .compare_exchange(UNLOCKED, LOCKED, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return;
            }
        }
        // Mark the lock contended; whoever unlocks must wake a sleeper.
        while self.state.swap(CONTENDED, Ordering::Acquire) != UNLOCKED {
            futex::wait(&self.state, CONTENDED, None);
        }
    }
}

impl<T> Drop for LockGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if self.lock.state.swap(UNLOCKED, Ordering::Release) == CONTENDED {
            futex::wake(&self.lock.state, 1);
        }
        held(-1);
    }
}

impl<T> Deref for LockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while the lock is held.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for LockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard exists only while the lock is held, and `&mut self`
        // makes this the only reference derived from it.
        unsafe { &mut *self.lock.data.get() }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn lock_serialises_increments() {
        let lock = Arc::new(Lock::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let lock = lock.clone();
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        *lock.lock() += 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*lock.lock(), 80_000);
    }
}
