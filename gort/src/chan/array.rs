//! The bounded flavour (`bounded(n)`, n > 0): a lock-free ring, after
//! crossbeam-channel's `array` flavour (itself Dmitry Vyukov's bounded
//! MPMC queue), where Go takes one channel lock per operation.
//!
//! `head` and `tail` are a lap count and an index packed in one word; each
//! slot's `stamp` says whether it is ready to be written (`stamp == tail`)
//! or read (`stamp == head + 1`) in the current lap. Closing sets
//! `mark_bit` in `tail`, atomically with respect to pushes, so a send
//! either lands before the close (and will be drained) or fails with its
//! value: nothing is stranded in a closed channel.
//!
//! Waiting goes through the shared wait queues (`waker.rs`): an operation
//! that found the ring empty or full registers and parks; a push wakes one
//! parked receiver to retry, a pop one parked sender. When the ring is
//! empty and a receiver is parked, a sender hands its value straight to
//! it instead (Go's direct hand-off); since that sender may itself have
//! been woken for a ring slot it now leaves free, it wakes the next parked
//! sender (a wake-up is never consumed without its slot being used). The ring's SeqCst `head`/`tail`
//! updates pair with the wait queues' SeqCst hints (no lost wake-up).

use std::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

use crate::loom::atomic::{self, AtomicUsize, Ordering};
use crate::loom::cell::UnsafeCell;
use crate::loom::Backoff;

use super::error::{TryRecvError, TrySendError};
use super::waker::{Cx, WaitLock, Waiters};

struct Slot<T> {
    stamp: AtomicUsize,
    msg: UnsafeCell<MaybeUninit<T>>,
}

pub(crate) struct Channel<T> {
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
    buffer: Box<[Slot<T>]>,
    cap: usize,
    /// `cap + 1` rounded up to a power of two: the closed flag in `tail`.
    mark_bit: usize,
    /// `2 * mark_bit`: adding it moves to the next lap.
    one_lap: usize,
    pub(crate) wait: WaitLock,
}

// SAFETY: values move between threads through the ring (hence `T: Send`);
// each slot is accessed by exactly one thread at a time, as decided by the
// CAS on `head`/`tail` and the slot's `stamp` (release/acquire).
unsafe impl<T: Send> Send for Channel<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Channel<T> {}

impl<T> Channel<T> {
    pub(crate) fn with_capacity(cap: usize) -> Self {
        assert!(cap > 0, "array flavour needs a capacity");
        let mark_bit = (cap + 1).next_power_of_two();
        let one_lap = mark_bit * 2;
        let buffer = (0..cap)
            .map(|i| Slot {
                stamp: AtomicUsize::new(i),
                msg: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        let c = Channel {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            buffer,
            cap,
            mark_bit,
            one_lap,
            wait: WaitLock::new(true),
        };
        #[cfg(loom)]
        {
            // The initial values as SeqCst stores (see `WaitLock::new`).
            c.head.store(0, Ordering::SeqCst);
            c.tail.store(0, Ordering::SeqCst);
        }
        c
    }

    pub(crate) fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        if self.wait.receivers_waiting() && self.is_empty() && !self.is_closed() {
            let mut w = self.wait.lock();
            if let Some(e) = w.receivers.claim_transfer(std::ptr::null()) {
                // A parked sender may have been woken for the ring slot we
                // are not using: pass the wake-up on, or it is lost.
                if !w.senders.is_empty() && !crate::loom::mutant("array_no_pass_on") {
                    w.senders.notify_one(std::ptr::null());
                }
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
        self.push(v)?;
        if self.wait.receivers_waiting() {
            self.wait.lock().receivers.notify_one(std::ptr::null());
        }
        Ok(())
    }

    pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
        let v = self.pop()?;
        if self.wait.senders_waiting() {
            self.wait.lock().senders.notify_one(std::ptr::null());
        }
        Ok(v)
    }

    fn push(&self, v: T) -> Result<(), TrySendError<T>> {
        let backoff = Backoff::new();
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            if tail & self.mark_bit != 0 {
                return Err(TrySendError::Disconnected(v));
            }
            let index = tail & (self.mark_bit - 1);
            let lap = tail & !(self.one_lap - 1);
            let slot = &self.buffer[index];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if tail == stamp {
                let new_tail = if index + 1 < self.cap {
                    tail + 1
                } else {
                    lap.wrapping_add(self.one_lap)
                };
                match self.tail.compare_exchange_weak(
                    tail,
                    new_tail,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: winning the CAS reserved this slot for us;
                        // its stamp keeps readers out until we publish.
                        unsafe { slot.msg.with_mut(|p| p.write(MaybeUninit::new(v))) };
                        slot.stamp.store(tail + 1, Ordering::Release);
                        return Ok(());
                    }
                    Err(t) => {
                        tail = t;
                        backoff.spin();
                    }
                }
            } else if stamp.wrapping_add(self.one_lap) == tail + 1 {
                atomic::fence(Ordering::SeqCst);
                let head = self.head.load(Ordering::Relaxed);
                if head.wrapping_add(self.one_lap) == tail {
                    return Err(TrySendError::Full(v));
                }
                backoff.spin();
                tail = self.tail.load(Ordering::Relaxed);
            } else {
                // A reader of the previous lap is still taking this slot.
                backoff.snooze();
                tail = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    fn pop(&self) -> Result<T, TryRecvError> {
        let backoff = Backoff::new();
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            let index = head & (self.mark_bit - 1);
            let lap = head & !(self.one_lap - 1);
            let slot = &self.buffer[index];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if head + 1 == stamp {
                let new = if index + 1 < self.cap {
                    head + 1
                } else {
                    lap.wrapping_add(self.one_lap)
                };
                match self.head.compare_exchange_weak(
                    head,
                    new,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: winning the CAS reserved this slot, whose
                        // stamp says a writer published a value in it.
                        let v = unsafe { slot.msg.with(|p| p.read().assume_init()) };
                        slot.stamp
                            .store(head.wrapping_add(self.one_lap), Ordering::Release);
                        return Ok(v);
                    }
                    Err(h) => {
                        head = h;
                        backoff.spin();
                    }
                }
            } else if stamp == head {
                atomic::fence(Ordering::SeqCst);
                let tail = self.tail.load(Ordering::Relaxed);
                if tail & !self.mark_bit == head {
                    return Err(if tail & self.mark_bit != 0 {
                        TryRecvError::Disconnected
                    } else {
                        TryRecvError::Empty
                    });
                }
                backoff.spin();
                head = self.head.load(Ordering::Relaxed);
            } else {
                // A writer has reserved this slot and is still writing.
                backoff.snooze();
                head = self.head.load(Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn send_ready(&self, _w: &Waiters, _me: *const Cx) -> bool {
        !self.is_full() || self.is_closed()
    }

    pub(crate) fn recv_ready(&self, _w: &Waiters, _me: *const Cx) -> bool {
        !self.is_empty() || self.is_closed()
    }

    pub(crate) fn close(&self) -> bool {
        let tail = self.tail.fetch_or(self.mark_bit, Ordering::SeqCst);
        if tail & self.mark_bit != 0 {
            return false;
        }
        self.wait.lock().notify_all();
        true
    }

    /// Changes whenever readiness may have (see `select.rs`): `head` and
    /// `tail` only grow (by laps), and `tail` carries the closed mark.
    pub(crate) fn stamp(&self) -> [u64; 3] {
        [
            self.head.load(Ordering::SeqCst) as u64,
            self.tail.load(Ordering::SeqCst) as u64,
            self.wait.version(),
        ]
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.tail.load(Ordering::SeqCst) & self.mark_bit != 0
    }

    fn is_empty(&self) -> bool {
        let head = self.head.load(Ordering::SeqCst);
        let tail = self.tail.load(Ordering::SeqCst);
        tail & !self.mark_bit == head
    }

    fn is_full(&self) -> bool {
        let tail = self.tail.load(Ordering::SeqCst);
        let head = self.head.load(Ordering::SeqCst);
        head.wrapping_add(self.one_lap) == tail & !self.mark_bit
    }

    pub(crate) fn len(&self) -> usize {
        loop {
            let tail = self.tail.load(Ordering::SeqCst);
            let head = self.head.load(Ordering::SeqCst);
            if self.tail.load(Ordering::SeqCst) == tail {
                let hix = head & (self.mark_bit - 1);
                let tix = tail & (self.mark_bit - 1);
                return if hix < tix {
                    tix - hix
                } else if hix > tix {
                    self.cap - hix + tix
                } else if tail & !self.mark_bit == head {
                    0
                } else {
                    self.cap
                };
            }
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }
}

impl<T> Drop for Channel<T> {
    fn drop(&mut self) {
        let n = self.len();
        let head = self.head.load(Ordering::Relaxed);
        let hix = head & (self.mark_bit - 1);
        for i in 0..n {
            let index = if hix + i < self.cap {
                hix + i
            } else {
                hix + i - self.cap
            };
            // SAFETY: `&mut self`: no other access; the `n` slots from the
            // head hold initialised values that were never read.
            unsafe { self.buffer[index].msg.with_mut(|p| (*p).assume_init_drop()) };
        }
    }
}
