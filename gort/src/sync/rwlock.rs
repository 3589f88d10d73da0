//! RwLock: Go's `sync.RWMutex` semantics with std's `RwLock` API.
//!
//! One state word: `WRITER` (a writer holds the lock), `WRITER_WAITING`
//! (the writer queue is not empty), `READER_WAITING` (the reader queue is
//! not empty) and the number of active readers above them. Both queues
//! live behind one small lock; the two `*_WAITING` bits change only under
//! it, together with the queues.
//!
//! Fast paths (one CAS or one RMW): `read` adds a reader if no writer
//! holds *or waits*; `read` unlock subtracts one; `write` takes a free
//! lock; `write` unlock releases when nobody queued.
//!
//! Go's rules: a waiting writer blocks new readers (they queue), so a
//! stream of readers cannot starve a writer; when a writer unlocks, *all*
//! readers queued meanwhile are admitted at once, before the next writer,
//! so writers cannot starve readers either. The last reader out hands the
//! lock to the first queued writer. Hand-offs are direct: the waker sets
//! the state on the woken caller's behalf (one reader more, or `WRITER`),
//! claims its waiter and writes `GRANTED` into its slot.
//!
//! No lost wake-up (DESIGN.md rule 1): a blocked caller re-checks the state
//! and sets its `*_WAITING` bit with a CAS under the queue lock, keeping
//! the lock until its park's `after` step. Unlocks change the same word
//! with an RMW: either the blocked caller's CAS sees the lock available
//! (and takes it instead of parking), or the unlock sees the `*_WAITING`
//! bit and takes the queue lock, which it gets once the caller is parked.
//! Every slow path ends in [`RawRwLock::dispatch`], which, under the queue
//! lock, admits whoever can go now.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::wait::{self, Claimed, Entry, Slot};
use crate::runtime::g::WaitReason;
use crate::runtime::lock::{Lock, LockGuard};
use crate::runtime::park::{self, Waiter};

const WRITER: usize = 1;
const WRITER_WAITING: usize = 2;
const READER_WAITING: usize = 4;
const READER_SHIFT: u32 = 3;
const ONE_READER: usize = 1 << READER_SHIFT;

/// Slot value: the lock was handed over (read or write, as requested).
const GRANTED: usize = 1;

#[derive(Default)]
struct Queues {
    readers: VecDeque<Entry>,
    writers: VecDeque<Entry>,
}

struct RawRwLock {
    state: AtomicUsize,
    queues: Lock<Queues>,
}

#[inline]
fn readers(s: usize) -> usize {
    s >> READER_SHIFT
}

impl RawRwLock {
    const fn new() -> RawRwLock {
        RawRwLock {
            state: AtomicUsize::new(0),
            queues: Lock::new(Queues {
                readers: VecDeque::new(),
                writers: VecDeque::new(),
            }),
        }
    }

    #[inline]
    fn try_read(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & (WRITER | WRITER_WAITING) != 0 {
                return false;
            }
            assert!(
                readers(s) < usize::MAX >> (READER_SHIFT + 1),
                "too many readers"
            );
            match self.state.compare_exchange_weak(
                s,
                s + ONE_READER,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(cur) => s = cur,
            }
        }
    }

    #[inline]
    #[track_caller]
    fn read(&self) {
        if !self.try_read() {
            self.read_slow();
        }
    }

    #[inline]
    fn try_write(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        // Only a free lock with no one queued: while anyone is queued, an
        // unlock may be between releasing the state and `dispatch` admitting
        // the queued readers or writer (which it does with an RMW, trusting
        // that no one else takes the lock meanwhile), so taking it here
        // would let a writer in beside them.
        while s & (WRITER | WRITER_WAITING | READER_WAITING) == 0 && readers(s) == 0 {
            match self.state.compare_exchange_weak(
                s,
                s | WRITER,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(cur) => s = cur,
            }
        }
        false
    }

    #[inline]
    #[track_caller]
    fn write(&self) {
        if self
            .state
            .compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            self.write_slow();
        }
    }

    /// # Safety
    /// The caller holds a read lock.
    #[inline]
    unsafe fn read_unlock(&self) {
        let s = self.state.fetch_sub(ONE_READER, Ordering::Release) - ONE_READER;
        // The last reader out with a writer waiting hands it the lock.
        if readers(s) == 0 && s & WRITER_WAITING != 0 {
            self.dispatch(self.queues.lock(), false);
        }
    }

    /// # Safety
    /// The caller holds the write lock.
    #[inline]
    unsafe fn write_unlock(&self) {
        if self
            .state
            .compare_exchange(WRITER, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            // Someone queued: release under the queue lock, readers first.
            let q = self.queues.lock();
            self.state.fetch_and(!WRITER, Ordering::Release);
            self.dispatch(q, true);
        }
    }

    #[cold]
    #[track_caller]
    fn read_slow(&self) {
        loop {
            let slot = Slot::new();
            let parking = park::prepare();
            let mut q = self.queues.lock();
            let mut s = self.state.load(Ordering::Relaxed);
            let queued = loop {
                let (new, queue) = if s & (WRITER | WRITER_WAITING) == 0 {
                    (s + ONE_READER, false)
                } else {
                    (s | READER_WAITING, true)
                };
                match self
                    .state
                    .compare_exchange(s, new, Ordering::Acquire, Ordering::Relaxed)
                {
                    Ok(_) => break queue,
                    Err(cur) => s = cur,
                }
            };
            if !queued {
                return;
            }
            // SAFETY: `slot` lives in this frame until after the park below
            // ends, and the queue lock is released only by its `after` step.
            q.readers
                .push_back(unsafe { Entry::new(parking.waiter().clone(), &slot, 0) });
            if self.park(q, &slot, parking, false) {
                return;
            }
        }
    }

    #[cold]
    #[track_caller]
    fn write_slow(&self) {
        loop {
            let slot = Slot::new();
            let parking = park::prepare();
            let mut q = self.queues.lock();
            let mut s = self.state.load(Ordering::Relaxed);
            let queued = loop {
                // Free: no writer, no reader (queued readers wait only for a
                // writer, so there are none).
                let (new, queue) = if s & WRITER == 0 && readers(s) == 0 {
                    (s | WRITER, false)
                } else {
                    (s | WRITER_WAITING, true)
                };
                match self
                    .state
                    .compare_exchange(s, new, Ordering::Acquire, Ordering::Relaxed)
                {
                    Ok(_) => break queue,
                    Err(cur) => s = cur,
                }
            };
            if !queued {
                return;
            }
            // SAFETY: as in `read_slow`.
            q.writers
                .push_back(unsafe { Entry::new(parking.waiter().clone(), &slot, 0) });
            if self.park(q, &slot, parking, true) {
                return;
            }
        }
    }

    /// Parks a caller queued under `q`; true if it was granted the lock.
    #[track_caller]
    fn park(
        &self,
        q: LockGuard<'_, Queues>,
        slot: &Slot,
        parking: park::Parking,
        write: bool,
    ) -> bool {
        let reg = Registration {
            rw: self,
            slot,
            me: parking.waiter().clone(),
            write,
        };
        let reason = if write {
            WaitReason::RwLockWrite
        } else {
            WaitReason::RwLockRead
        };
        parking.park(reason, None, move || drop(q));
        let got = reg.slot.get();
        std::mem::forget(reg);
        debug_assert_eq!(got, GRANTED, "only a hand-off wakes an RwLock waiter");
        got == GRANTED
    }

    /// Admits whoever can go now, under the queue lock: with no writer
    /// holding, the first writer if no reader holds (unless
    /// `readers_first`), else every queued reader if no writer is queued
    /// or `readers_first` (a writer just unlocked). Wakes them after
    /// releasing the lock.
    fn dispatch(&self, mut q: LockGuard<'_, Queues>, readers_first: bool) {
        let mut woken: Vec<Claimed> = Vec::new();
        loop {
            // Acquire: a writer admitted below must see everything the
            // readers that left did (their release decrements).
            let s = self.state.load(Ordering::Acquire);
            if s & WRITER != 0 {
                break;
            }
            let admit_readers = !q.readers.is_empty() && (readers_first || q.writers.is_empty());
            if admit_readers {
                let mut n = 0;
                while let Some(e) = q.readers.pop_front() {
                    if let Some(c) = e.claim(GRANTED) {
                        woken.push(c);
                        n += 1;
                    }
                }
                // Readers get in; READER_WAITING goes (the queue is empty).
                self.state.fetch_add(
                    (n * ONE_READER).wrapping_sub(READER_WAITING),
                    Ordering::Relaxed,
                );
                if n > 0 {
                    break;
                }
                continue;
            }
            if readers(s) != 0 {
                // The last reader out will dispatch.
                break;
            }
            let Some(e) = q.writers.pop_front() else {
                break;
            };
            let last = q.writers.is_empty();
            if let Some(c) = e.claim(GRANTED) {
                let mut add = WRITER;
                if last {
                    add = add.wrapping_sub(WRITER_WAITING);
                }
                self.state.fetch_add(add, Ordering::Relaxed);
                woken.push(c);
                break;
            }
            if last {
                self.state.fetch_and(!WRITER_WAITING, Ordering::Relaxed);
            }
        }
        drop(q);
        for c in woken {
            c.wake();
        }
    }

    /// A queued caller unwinding (its goroutine was cancelled).
    #[cold]
    fn abandon(&self, got: usize, me: &Waiter, write: bool) {
        if got == GRANTED {
            // SAFETY: we were handed the lock, so we hold it.
            unsafe {
                if write {
                    self.write_unlock()
                } else {
                    self.read_unlock()
                }
            }
            return;
        }
        let mut q = self.queues.lock();
        let (queue, bit) = if write {
            (&mut q.writers, WRITER_WAITING)
        } else {
            (&mut q.readers, READER_WAITING)
        };
        if wait::remove(queue, me) && queue.is_empty() {
            self.state.fetch_and(!bit, Ordering::Relaxed);
        }
        // A writer gone may let readers in.
        self.dispatch(q, false);
    }
}

/// A queued caller: on unwinding, passes on what it was handed.
struct Registration<'a> {
    rw: &'a RawRwLock,
    slot: &'a Slot,
    me: Waiter,
    write: bool,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.rw.abandon(self.slot.get(), &self.me, self.write);
    }
}

/// A reader-writer lock protecting a `T` (Go's `sync.RWMutex`, std's API):
/// many readers or one writer. A goroutine that must wait parks, a plain
/// thread blocks.
///
/// A writer waiting blocks new readers, so readers cannot starve it; the
/// readers that queued behind a writer are all let in when it unlocks,
/// before the next writer. There is no poisoning. Not reentrant: a reader
/// that takes the read lock again while a writer waits deadlocks, as in Go.
///
/// ```
/// use std::sync::Arc;
/// use gort::sync::RwLock;
///
/// gort::run(|| {
///     let config = Arc::new(RwLock::new(String::from("v1")));
///     let c = config.clone();
///     gort::go(move || *c.write() = String::from("v2")).join().unwrap();
///     let r1 = config.read();
///     let r2 = config.read(); // readers share the lock
///     assert_eq!((r1.as_str(), r2.as_str()), ("v2", "v2"));
/// });
/// ```
pub struct RwLock<T: ?Sized> {
    raw: RawRwLock,
    data: UnsafeCell<T>,
}

// SAFETY: writers get `&mut T` one at a time, possibly on another thread
// (`T: Send`); readers get `&T` on several threads at once (`T: Sync`).
// Same bounds as std's `RwLock`.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}
// SAFETY: moving the lock moves the `T` it owns.
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}

impl<T: ?Sized> std::panic::RefUnwindSafe for RwLock<T> {}
impl<T: ?Sized> std::panic::UnwindSafe for RwLock<T> {}

/// A held read lock: derefs to the data, unlocks on drop.
///
/// ```
/// let l = gort::sync::RwLock::new(3);
/// let g = l.read();
/// assert_eq!(*g, 3);
/// ```
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

/// The held write lock: derefs (mutably) to the data, unlocks on drop.
///
/// ```
/// let l = gort::sync::RwLock::new(3);
/// *l.write() += 1;
/// assert_eq!(*l.read(), 4);
/// ```
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
}

// SAFETY: a read guard gives out `&T` only: sharing or sending it needs
// `T: Sync` (sending needs nothing of `T: Send`: no `&mut T` comes out).
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}
// SAFETY: as above; the lock itself belongs to no thread.
unsafe impl<T: ?Sized + Sync> Send for RwLockReadGuard<'_, T> {}
// SAFETY: a shared write guard gives out `&T` only.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<T> RwLock<T> {
    /// A new unlocked lock holding `value`.
    ///
    /// ```
    /// static L: gort::sync::RwLock<u8> = gort::sync::RwLock::new(1);
    /// assert_eq!(*L.read(), 1);
    /// ```
    pub const fn new(value: T) -> RwLock<T> {
        RwLock {
            raw: RawRwLock::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the lock and returns its data.
    ///
    /// ```
    /// let l = gort::sync::RwLock::new(vec![1]);
    /// assert_eq!(l.into_inner(), [1]);
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Locks for reading, waiting while a writer holds the lock or waits
    /// for it.
    ///
    /// ```
    /// let l = gort::sync::RwLock::new(5);
    /// let (a, b) = (l.read(), l.read());
    /// assert_eq!(*a + *b, 10);
    /// ```
    #[inline]
    #[track_caller]
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        self.raw.read();
        RwLockReadGuard { lock: self }
    }

    /// Locks for writing, waiting until no reader or writer holds it.
    ///
    /// ```
    /// let l = gort::sync::RwLock::new(5);
    /// *l.write() = 6;
    /// assert_eq!(*l.read(), 6);
    /// ```
    #[inline]
    #[track_caller]
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.raw.write();
        RwLockWriteGuard { lock: self }
    }

    /// Locks for reading if that is possible right now (no writer holds
    /// or waits).
    ///
    /// ```
    /// let l = gort::sync::RwLock::new(0);
    /// let w = l.write();
    /// assert!(l.try_read().is_none());
    /// drop(w);
    /// assert!(l.try_read().is_some());
    /// ```
    #[inline]
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        if self.raw.try_read() {
            Some(RwLockReadGuard { lock: self })
        } else {
            None
        }
    }

    /// Locks for writing if the lock is free right now.
    ///
    /// ```
    /// let l = gort::sync::RwLock::new(0);
    /// let r = l.read();
    /// assert!(l.try_write().is_none());
    /// drop(r);
    /// assert!(l.try_write().is_some());
    /// ```
    #[inline]
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        if self.raw.try_write() {
            Some(RwLockWriteGuard { lock: self })
        } else {
            None
        }
    }

    /// The data, through a unique borrow (no locking needed).
    ///
    /// ```
    /// let mut l = gort::sync::RwLock::new(0);
    /// *l.get_mut() = 2;
    /// assert_eq!(*l.read(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(value: T) -> RwLock<T> {
        RwLock::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Some(g) => d.field("data", &&*g),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard exists only while its holder holds a read lock.
        unsafe { self.lock.raw.read_unlock() }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard exists only while its holder holds the write
        // lock.
        unsafe { self.lock.raw.write_unlock() }
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a read lock is held, so no writer (and no `&mut T`)
        // exists until the guard drops.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the write lock is held: no other reference to the data
        // exists outside this guard.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the write lock is held, and `&mut self` makes this the
        // only reference derived from the guard.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn state<T>(l: &RwLock<T>) -> usize {
        l.raw.state.load(Ordering::SeqCst)
    }

    #[test]
    fn readers_share_and_writers_exclude() {
        let l = RwLock::new(1);
        let a = l.read();
        let b = l.try_read().unwrap();
        assert_eq!(state(&l), 2 * ONE_READER);
        assert!(l.try_write().is_none());
        drop((a, b));
        let w = l.try_write().unwrap();
        assert!(l.try_read().is_none());
        assert!(l.try_write().is_none());
        drop(w);
        assert_eq!(state(&l), 0);
        assert_eq!(format!("{l:?}"), "RwLock { data: 1, .. }");
    }

    #[test]
    fn a_waiting_writer_blocks_new_readers_then_queued_readers_go_together() {
        let l = Arc::new(RwLock::new(0));
        let r = l.read();
        let l2 = l.clone();
        let writer = std::thread::spawn(move || *l2.write() += 1);
        while state(&l) & WRITER_WAITING == 0 {
            std::thread::yield_now();
        }
        assert!(
            l.try_read().is_none(),
            "a waiting writer blocks new readers"
        );
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let l = l.clone();
                std::thread::spawn(move || *l.read())
            })
            .collect();
        while state(&l) & READER_WAITING == 0 || l.raw.queues.lock().readers.len() < 3 {
            std::thread::yield_now();
        }
        drop(r); // the last reader out hands the lock to the writer
        writer.join().unwrap();
        for t in readers {
            assert_eq!(t.join().unwrap(), 1, "queued readers ran after the writer");
        }
        assert_eq!(state(&l), 0);
    }

    #[test]
    fn threads_mixing_reads_and_writes_count_exactly() {
        let l = Arc::new(RwLock::new(0u64));
        let ts: Vec<_> = (0..4)
            .map(|i| {
                let l = l.clone();
                std::thread::spawn(move || {
                    for k in 0..5_000 {
                        if (k + i) % 4 == 0 {
                            *l.write() += 1;
                        } else {
                            let v = *l.read();
                            assert!(v <= 5_000);
                        }
                    }
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(*l.read(), 5_000);
        assert_eq!(state(&l), 0);
    }
}
