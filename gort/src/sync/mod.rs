//! Synchronisation primitives that park goroutines (and block plain
//! threads) instead of blocking OS threads.
//!
//! This release has [`WaitGroup`]; Mutex, RwLock, Once, Condvar and
//! Semaphore come with the channels.

mod waitgroup;

pub use waitgroup::WaitGroup;
