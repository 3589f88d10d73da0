//! Synchronisation primitives that park goroutines (and block plain
//! threads) instead of blocking OS threads: Go's `sync` package with std's
//! method names.
//!
//! Every blocking call works from a goroutine (it parks, its thread runs
//! other goroutines) and from a plain OS thread (it blocks the thread), so
//! these primitives also connect goroutines with ordinary threads. Locks do
//! not poison: a panic while holding one simply unlocks it.

// Under `cfg(loom)` only the modelled primitives compile (see
// `loom_models.rs`).
#[cfg(not(loom))]
mod condvar;
mod mutex;
#[cfg(not(loom))]
mod once;
#[cfg(not(loom))]
mod rwlock;
mod semaphore;
mod wait;
mod waitgroup;

#[cfg(not(loom))]
pub use condvar::Condvar;
pub use mutex::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub use once::Once;
#[cfg(not(loom))]
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{Semaphore, SemaphorePermit};
pub use waitgroup::WaitGroup;

#[cfg(all(test, loom))]
mod loom_models;
