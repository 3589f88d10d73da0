//! Synchronisation primitives that park goroutines (and block plain
//! threads) instead of blocking OS threads: Go's `sync` package with std's
//! method names.
//!
//! Every blocking call works from a goroutine (it parks, its thread runs
//! other goroutines) and from a plain OS thread (it blocks the thread), so
//! these primitives also connect goroutines with ordinary threads. Locks do
//! not poison: a panic while holding one simply unlocks it.

mod condvar;
mod mutex;
mod once;
mod rwlock;
mod semaphore;
mod wait;
mod waitgroup;

// The loom models of the hand-offs are in `models.rs`; this module is not
// compiled under `cfg(loom)`, so `loom_models.rs` includes that file.

pub use condvar::Condvar;
pub use mutex::{Mutex, MutexGuard};
pub use once::Once;
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{Semaphore, SemaphorePermit};
pub use waitgroup::WaitGroup;
