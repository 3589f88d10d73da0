//! The rendezvous flavour (`bounded(0)`, Go's unbuffered channel).
//!
//! There is no buffer: a value moves only from a parked sender's slot to a
//! receiver, or from a sender straight into a parked receiver's slot (Go's
//! direct hand-off, `chan.go`'s `send`/`recv` on a waiting `sudog`). All
//! state is behind the channel's wait lock; the hand-off itself (writing
//! the slot, waking into the waker's `runnext`) happens after the lock is
//! released, under the claim (see `waker.rs`).

use crate::loom::atomic::{AtomicBool, Ordering};
use std::marker::PhantomData;

use super::error::{TryRecvError, TrySendError};
use super::waker::{Cx, WaitLock, Waiters};

pub(crate) struct Channel<T> {
    pub(crate) wait: WaitLock,
    /// Written under the wait lock.
    closed: AtomicBool,
    _marker: PhantomData<T>,
}

impl<T> Channel<T> {
    pub(crate) fn new() -> Self {
        Channel {
            wait: WaitLock::new(false),
            closed: AtomicBool::new(false),
            _marker: PhantomData,
        }
    }

    pub(crate) fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        let mut w = self.wait.lock();
        if self.closed.load(Ordering::Relaxed) {
            return Err(TrySendError::Disconnected(v));
        }
        match w.receivers.claim_transfer(std::ptr::null()) {
            Some(e) => {
                drop(w);
                // SAFETY: we claimed the entry, so its parked frame and its
                // `Option<T>` slot are ours to write until `finish`.
                unsafe {
                    *e.slot::<T>() = Some(v);
                    e.finish();
                }
                Ok(())
            }
            None => {
                w.receivers.notify_ready(std::ptr::null());
                Err(TrySendError::Full(v))
            }
        }
    }

    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut w = self.wait.lock();
        match w.senders.claim_transfer(std::ptr::null()) {
            Some(e) => {
                drop(w);
                // SAFETY: claimed, as in `try_send`; a sender's slot holds
                // its value until a receiver takes it.
                unsafe {
                    let v = (*e.slot::<T>())
                        .take()
                        .expect("a parked sender holds its value");
                    e.finish();
                    Ok(v)
                }
            }
            None if self.closed.load(Ordering::Relaxed) => Err(TryRecvError::Disconnected),
            None => {
                w.senders.notify_ready(std::ptr::null());
                Err(TryRecvError::Empty)
            }
        }
    }

    pub(crate) fn send_ready(&self, w: &Waiters, me: *const Cx) -> bool {
        self.closed.load(Ordering::Relaxed) || w.receivers.has_live(me)
    }

    pub(crate) fn recv_ready(&self, w: &Waiters, me: *const Cx) -> bool {
        self.closed.load(Ordering::Relaxed) || w.senders.has_live(me)
    }

    pub(crate) fn close(&self) -> bool {
        let mut w = self.wait.lock();
        if self.closed.swap(true, Ordering::SeqCst) {
            return false;
        }
        w.bump();
        w.notify_all();
        true
    }

    /// Changes whenever readiness may have (see `select.rs`).
    pub(crate) fn stamp(&self) -> [u64; 3] {
        [self.wait.version(), 0, 0]
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}
