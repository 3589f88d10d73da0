//! A processor's local run queue: Go's `runqput`/`runqget`/`runqsteal`.
//!
//! A fixed ring of 256 slots plus a `runnext` slot. Only the owning P pushes
//! and writes `tail`; the owner and thieves take from `head` with a CAS. A
//! thief grabs half of the victim's queue in one CAS (`grab`), so stealing
//! costs one cache-line transfer per batch, not per goroutine. When the ring
//! is full the owner moves half of it plus the new item to the global queue
//! (`put` returns that batch), which keeps both the local push O(1) and the
//! global queue fair.
//!
//! `runnext` holds the goroutine just readied by the running one (a
//! receiver woken by a sender, a freshly spawned goroutine): it runs next and
//! inherits the time slice, which is what makes hand-offs fast.
//!
//! Slots are `AtomicPtr` with relaxed accesses: a thief may read a slot the
//! owner is overwriting after a wrap, but then its CAS on `head` fails and
//! the value is discarded, so the race is benign and still free of UB.
//! Modelled with loom in `loom_models`.

use crate::loom::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::ptr;

/// Ring capacity (Go uses 256 as well; loom models a small ring so that
/// overflow and wrap-around are explored).
#[cfg(not(loom))]
pub(crate) const CAP: u32 = 256;
#[cfg(loom)]
pub(crate) const CAP: u32 = 4;

pub(crate) struct RunQueue<T> {
    head: AtomicU32,
    tail: AtomicU32,
    buf: Box<[AtomicPtr<T>]>,
    runnext: AtomicPtr<T>,
}

impl<T> RunQueue<T> {
    pub(crate) fn new() -> Self {
        RunQueue {
            head: AtomicU32::new(0),
            tail: AtomicU32::new(0),
            buf: (0..CAP).map(|_| AtomicPtr::new(ptr::null_mut())).collect(),
            runnext: AtomicPtr::new(ptr::null_mut()),
        }
    }

    #[inline]
    fn slot(&self, i: u32) -> &AtomicPtr<T> {
        &self.buf[(i % CAP) as usize]
    }

    /// Owner only. Queues `item` (into `runnext` if `next`, kicking the old
    /// occupant to the tail). When the ring is full, returns half the ring
    /// plus the item, for the caller to move to the global queue.
    pub(crate) fn put(&self, mut item: *mut T, next: bool) -> Option<Vec<*mut T>> {
        if next {
            let old = self.runnext.swap(item, Ordering::AcqRel);
            if old.is_null() {
                return None;
            }
            item = old;
        }
        loop {
            let h = self.head.load(Ordering::Acquire);
            let t = self.tail.load(Ordering::Relaxed);
            if t.wrapping_sub(h) < CAP {
                self.slot(t).store(item, Ordering::Relaxed);
                self.tail.store(t.wrapping_add(1), Ordering::Release);
                return None;
            }
            if let Some(batch) = self.put_slow(item, h, t) {
                return Some(batch);
            }
        }
    }

    /// Moves half the full ring plus `item` out (Go's `runqputslow`).
    fn put_slow(&self, item: *mut T, h: u32, t: u32) -> Option<Vec<*mut T>> {
        let n = t.wrapping_sub(h) / 2;
        debug_assert_eq!(n, CAP / 2);
        let mut batch = Vec::with_capacity(n as usize + 1);
        for i in 0..n {
            batch.push(self.slot(h.wrapping_add(i)).load(Ordering::Relaxed));
        }
        if self
            .head
            .compare_exchange(h, h.wrapping_add(n), Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return None; // a thief took some; the ring has room now
        }
        batch.push(item);
        Some(batch)
    }

    /// Owner only. Takes the next item; `true` when it came from `runnext`
    /// (it inherits the current time slice).
    #[inline]
    pub(crate) fn get(&self) -> Option<(*mut T, bool)> {
        let next = self.runnext.load(Ordering::Relaxed);
        if !next.is_null()
            && self
                .runnext
                .compare_exchange(next, ptr::null_mut(), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            return Some((next, true));
        }
        loop {
            let h = self.head.load(Ordering::Acquire);
            let t = self.tail.load(Ordering::Relaxed);
            if t == h {
                return None;
            }
            let item = self.slot(h).load(Ordering::Relaxed);
            if self
                .head
                .compare_exchange(h, h.wrapping_add(1), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return Some((item, false));
            }
        }
    }

    /// Owner only. Takes the `runnext` item, if any, so that it can be queued
    /// behind the others instead (a pair handing off through `runnext` must
    /// not starve the rest of the queue).
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn take_runnext(&self) -> Option<*mut T> {
        let next = self.runnext.swap(ptr::null_mut(), Ordering::AcqRel);
        (!next.is_null()).then_some(next)
    }

    /// Thief. Moves about half of `self`'s items into `dst` (which must be
    /// the thief's own queue) and returns one of them to run now. With
    /// `steal_next`, also takes `runnext` when the ring is empty.
    pub(crate) fn steal_into(&self, dst: &RunQueue<T>, steal_next: bool) -> Option<*mut T> {
        let t = dst.tail.load(Ordering::Relaxed);
        let n = self.grab(dst, t, steal_next);
        if n == 0 {
            return None;
        }
        let n = n - 1;
        let item = dst.slot(t.wrapping_add(n)).load(Ordering::Relaxed);
        if n > 0 {
            let h = dst.head.load(Ordering::Acquire);
            debug_assert!(t.wrapping_sub(h).wrapping_add(n) < CAP, "runq overflow");
            dst.tail.store(t.wrapping_add(n), Ordering::Release);
        }
        Some(item)
    }

    /// Copies half of the ring into `dst` at `dst_tail` (Go's `runqgrab`).
    fn grab(&self, dst: &RunQueue<T>, dst_tail: u32, steal_next: bool) -> u32 {
        loop {
            let h = self.head.load(Ordering::Acquire);
            let t = self.tail.load(Ordering::Acquire);
            let n = t.wrapping_sub(h);
            let n = n - n / 2;
            if n == 0 {
                if steal_next {
                    let next = self.runnext.load(Ordering::Relaxed);
                    if !next.is_null()
                        && self
                            .runnext
                            .compare_exchange(
                                next,
                                ptr::null_mut(),
                                Ordering::AcqRel,
                                Ordering::Relaxed,
                            )
                            .is_ok()
                    {
                        dst.slot(dst_tail).store(next, Ordering::Relaxed);
                        return 1;
                    }
                }
                return 0;
            }
            if n > CAP / 2 {
                continue; // read h and t at different times; retry
            }
            for i in 0..n {
                let item = self.slot(h.wrapping_add(i)).load(Ordering::Relaxed);
                dst.slot(dst_tail.wrapping_add(i))
                    .store(item, Ordering::Relaxed);
            }
            if self
                .head
                .compare_exchange(h, h.wrapping_add(n), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return n;
            }
        }
    }

    /// Number of queued items, `runnext` included (racy snapshot).
    pub(crate) fn len(&self) -> usize {
        let h = self.head.load(Ordering::Acquire);
        let t = self.tail.load(Ordering::Acquire);
        let n = t.wrapping_sub(h).min(CAP) as usize;
        n + usize::from(!self.runnext.load(Ordering::Relaxed).is_null())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn item(i: usize) -> *mut usize {
        Box::into_raw(Box::new(i))
    }
    fn val(p: *mut usize) -> usize {
        // SAFETY: every pointer in these tests comes from `item` and is
        // consumed exactly once.
        *unsafe { Box::from_raw(p) }
    }

    #[test]
    fn fifo_with_runnext_first() {
        let q = RunQueue::new();
        for i in 0..10 {
            assert!(q.put(item(i), false).is_none());
        }
        assert!(q.put(item(100), true).is_none());
        assert_eq!(q.len(), 11);
        let (p, inherit) = q.get().unwrap();
        assert!(inherit);
        assert_eq!(val(p), 100);
        for i in 0..10 {
            let (p, inherit) = q.get().unwrap();
            assert!(!inherit);
            assert_eq!(val(p), i);
        }
        assert!(q.get().is_none());
    }

    #[test]
    fn runnext_kick_goes_to_tail() {
        let q = RunQueue::new();
        q.put(item(1), true);
        q.put(item(2), true);
        assert_eq!(val(q.get().unwrap().0), 2);
        assert_eq!(val(q.get().unwrap().0), 1);
    }

    #[test]
    fn overflow_moves_half_plus_one() {
        let q = RunQueue::new();
        for i in 0..CAP as usize {
            assert!(q.put(item(i), false).is_none());
        }
        let batch = q.put(item(999), false).expect("full ring overflows");
        assert_eq!(batch.len(), CAP as usize / 2 + 1);
        let vals: Vec<_> = batch.into_iter().map(val).collect();
        assert_eq!(vals[0], 0);
        assert_eq!(vals[CAP as usize / 2 - 1], CAP as usize / 2 - 1);
        assert_eq!(*vals.last().unwrap(), 999);
        assert_eq!(q.len(), CAP as usize / 2);
        while let Some((p, _)) = q.get() {
            val(p);
        }
    }

    #[test]
    fn steal_takes_half() {
        let victim = RunQueue::new();
        let thief = RunQueue::new();
        for i in 0..20 {
            victim.put(item(i), false);
        }
        let first = thief_run(&victim, &thief);
        assert_eq!(first, 9);
        assert_eq!(thief.len(), 9);
        assert_eq!(victim.len(), 10);
        let mut all: Vec<usize> = vec![first];
        while let Some((p, _)) = thief.get() {
            all.push(val(p));
        }
        while let Some((p, _)) = victim.get() {
            all.push(val(p));
        }
        all.sort();
        assert_eq!(all, (0..20).collect::<Vec<_>>());
    }

    fn thief_run(victim: &RunQueue<usize>, thief: &RunQueue<usize>) -> usize {
        val(victim.steal_into(thief, false).unwrap())
    }

    #[test]
    fn steal_runnext_only_when_asked() {
        let victim = RunQueue::new();
        let thief = RunQueue::new();
        victim.put(item(5), true);
        assert!(victim.steal_into(&thief, false).is_none());
        assert_eq!(val(victim.steal_into(&thief, true).unwrap()), 5);
        assert!(victim.is_empty());
    }

    #[test]
    fn concurrent_steal_loses_nothing() {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        let victim = Arc::new(RunQueue::<usize>::new());
        let done = Arc::new(AtomicBool::new(false));
        let n = 200_000usize;
        let thieves: Vec<_> = (0..2)
            .map(|_| {
                let victim = victim.clone();
                let done = done.clone();
                std::thread::spawn(move || {
                    let mine = RunQueue::new();
                    let mut got = Vec::new();
                    while !done.load(Ordering::Acquire) || !victim.is_empty() {
                        if let Some(p) = victim.steal_into(&mine, true) {
                            got.push(val(p));
                            while let Some((p, _)) = mine.get() {
                                got.push(val(p));
                            }
                        }
                    }
                    got
                })
            })
            .collect();
        let mut got = Vec::new();
        let mut overflowed = Vec::new();
        for i in 0..n {
            if let Some(batch) = victim.put(item(i), i % 7 == 0) {
                overflowed.extend(batch.into_iter().map(val));
            }
            if i % 3 == 0 {
                if let Some((p, _)) = victim.get() {
                    got.push(val(p));
                }
            }
        }
        done.store(true, Ordering::Release);
        for t in thieves {
            got.extend(t.join().unwrap());
        }
        while let Some((p, _)) = victim.get() {
            got.push(val(p));
        }
        got.extend(overflowed);
        got.sort_unstable();
        assert_eq!(got.len(), n);
        assert!(got.iter().enumerate().all(|(i, &v)| i == v));
    }
}
