//! The unbounded flavour: a queue behind a short lock, plus Go's direct
//! hand-off to a parked receiver when the queue is empty.
//!
//! `len` mirrors the queue's length in a SeqCst atomic so that a sender's
//! "pushed, is a receiver waiting?" and a registering receiver's "I am
//! waiting, is the queue empty?" form a Dekker pair (see `waker.rs`).

use crate::loom::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::collections::VecDeque;

use super::error::{TryRecvError, TrySendError};
use super::waker::{Cx, WaitLock, Waiters};
use crate::runtime::lock::Lock;

pub(crate) struct Channel<T> {
    pub(crate) wait: WaitLock,
    queue: Lock<VecDeque<T>>,
    len: AtomicUsize,
    /// Pushes plus pops, for `stamp` (`len` alone can return to a value).
    ops: AtomicU64,
    /// Written under the queue lock.
    closed: AtomicBool,
}

impl<T> Channel<T> {
    pub(crate) fn new() -> Self {
        let c = Channel {
            wait: WaitLock::new(true),
            queue: Lock::new(VecDeque::new()),
            len: AtomicUsize::new(0),
            ops: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        };
        #[cfg(loom)]
        {
            // The initial value as a SeqCst store (see `WaitLock::new`).
            c.len.store(0, Ordering::SeqCst);
        }
        c
    }

    pub(crate) fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        if self.wait.receivers_waiting() && self.len.load(Ordering::SeqCst) == 0 {
            let mut w = self.wait.lock();
            if let Some(e) = w.receivers.claim_transfer(std::ptr::null()) {
                drop(w);
                // SAFETY: we claimed the entry, so its slot is ours to
                // write until `finish` (see `waker.rs`).
                unsafe {
                    *e.slot::<T>() = Some(v);
                    e.finish();
                }
                return Ok(());
            }
        }
        {
            let mut q = self.queue.lock();
            if self.closed.load(Ordering::Relaxed) {
                return Err(TrySendError::Disconnected(v));
            }
            q.push_back(v);
            self.ops.fetch_add(1, Ordering::SeqCst);
            self.len.fetch_add(1, Ordering::SeqCst);
        }
        if self.wait.receivers_waiting() {
            self.wait.lock().receivers.notify_one(std::ptr::null());
        }
        Ok(())
    }

    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut q = self.queue.lock();
        match q.pop_front() {
            Some(v) => {
                self.ops.fetch_add(1, Ordering::SeqCst);
                self.len.fetch_sub(1, Ordering::SeqCst);
                Ok(v)
            }
            None if self.closed.load(Ordering::Relaxed) => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    pub(crate) fn send_ready(&self, _w: &Waiters, _me: *const Cx) -> bool {
        true
    }

    pub(crate) fn recv_ready(&self, _w: &Waiters, _me: *const Cx) -> bool {
        self.len.load(Ordering::SeqCst) > 0 || self.closed.load(Ordering::SeqCst)
    }

    pub(crate) fn close(&self) -> bool {
        {
            let _q = self.queue.lock();
            if self.closed.swap(true, Ordering::SeqCst) {
                return false;
            }
        }
        self.wait.lock().notify_all();
        true
    }

    /// Changes whenever readiness may have (see `select.rs`).
    pub(crate) fn stamp(&self) -> [u64; 3] {
        [
            self.ops.load(Ordering::SeqCst),
            self.closed.load(Ordering::SeqCst) as u64,
            self.wait.version(),
        ]
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::SeqCst)
    }
}
