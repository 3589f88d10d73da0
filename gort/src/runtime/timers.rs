//! Per-P timer heaps (Go's runtime/time.go).
//!
//! A timer is an entry `(when, fire)` on one P's heap, where `fire` either
//! wakes a parked [`Waiter`] (a sleep, or the deadline of a timed wait) or
//! runs a [`TimerTask`] (`time::Timer`, `Ticker`, context deadlines).
//! Entries are deleted lazily, as Go's zombies: an entry whose park ended
//! (its waiter is stale) or whose task was stopped or reset (its sequence
//! number is old) stays in the heap until it is due or until a sweep; a
//! heap sweeps itself whenever it has doubled since its last sweep, so
//! dead entries never outnumber live ones by much and `add` stays O(log n)
//! amortised. A goroutine that sleeps parks with a timer on its P's heap. Each M checks
//! its own P's heap at every scheduling round when any timer exists, runs
//! other Ps' due timers when the runtime-wide hint says one is due (so a
//! timer is not late because its P is busy), and an M with nothing to do
//! sleeps on its note until the earliest timer (see `m.rs`). There is no
//! thread per sleeper.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::lock::Lock;
use super::park::Waiter;
use super::sched::Sched;

/// Nanoseconds on the runtime's monotonic clock.
pub(crate) fn nanos(at: Instant) -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    at.checked_duration_since(epoch)
        .map_or(0, |d| d.as_nanos().min(u64::MAX as u128 - 1) as u64)
}

pub(crate) fn now() -> u64 {
    nanos(Instant::now())
}

/// A timer that runs code when due (rather than waking a waiter).
pub(crate) trait TimerTask: Send + Sync {
    /// Called once per due entry, outside every heap lock, with the entry's
    /// sequence number; the task ignores sequences it has moved past.
    fn fire(self: Arc<Self>, seq: u64);
    /// Whether an entry with this sequence number is dead (stopped or reset
    /// since it was added), so a sweep may drop it.
    fn is_stale(&self, seq: u64) -> bool;
}

enum Fire {
    Wake(Waiter),
    Task(Arc<dyn TimerTask>, u64),
}

impl Fire {
    fn is_stale(&self) -> bool {
        match self {
            Fire::Wake(w) => w.is_stale(),
            Fire::Task(t, seq) => t.is_stale(*seq),
        }
    }
    fn run(self) {
        match self {
            Fire::Wake(w) => {
                w.wake_fifo();
            }
            Fire::Task(t, seq) => t.fire(seq),
        }
    }
}

struct Entry {
    when: u64,
    seq: u64,
    fire: Fire,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.when, self.seq) == (o.when, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> CmpOrdering {
        // BinaryHeap is a max-heap: reverse for earliest first.
        (o.when, o.seq).cmp(&(self.when, self.seq))
    }
}

struct Heap {
    entries: BinaryHeap<Entry>,
    seq: u64,
    /// Sweep dead entries when the heap reaches this size.
    sweep_at: usize,
}

const MIN_SWEEP: usize = 256;

impl Default for Heap {
    fn default() -> Self {
        Heap {
            entries: BinaryHeap::new(),
            seq: 0,
            sweep_at: MIN_SWEEP,
        }
    }
}

/// One P's timers.
#[derive(Default)]
pub(crate) struct Timers {
    heap: Lock<Heap>,
    len: AtomicUsize,
}

impl Timers {
    fn push(&self, when: u64, fire: Fire) {
        let mut h = self.heap.lock();
        h.seq += 1;
        let seq = h.seq;
        h.entries.push(Entry { when, seq, fire });
        if h.entries.len() >= h.sweep_at {
            h.entries.retain(|e| !e.fire.is_stale());
            h.sweep_at = (h.entries.len() * 2).max(MIN_SWEEP);
        }
        self.len.store(h.entries.len(), Ordering::Release);
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Wakes every timer due at `now`; returns how many ran and the
    /// earliest remaining deadline.
    pub(crate) fn run_due(&self, now: u64) -> (usize, Option<u64>) {
        if self.len() == 0 {
            return (0, None);
        }
        let mut due = Vec::new();
        let next = {
            let mut h = self.heap.lock();
            while h.entries.peek().is_some_and(|e| e.when <= now) {
                due.push(h.entries.pop().expect("peeked").fire);
            }
            self.len.store(h.entries.len(), Ordering::Release);
            h.entries.peek().map(|e| e.when)
        };
        let n = due.len();
        for f in due {
            f.run();
        }
        (n, next)
    }

    pub(crate) fn next(&self) -> Option<u64> {
        if self.len() == 0 {
            return None;
        }
        self.heap.lock().entries.peek().map(|e| e.when)
    }

    /// Drops every timer (runtime shutdown: their goroutines are gone).
    pub(crate) fn clear(&self) {
        let mut h = self.heap.lock();
        h.entries.clear();
        self.len.store(0, Ordering::Release);
    }
}

/// A lower bound on the earliest timer of all Ps (`u64::MAX`: none).
/// Adders `fetch_min` after pushing; a scanner resets it to MAX *before*
/// scanning and `fetch_min`s what it found, so no deadline is ever lost.
#[derive(Debug)]
pub(crate) struct Hint(AtomicU64);

impl Default for Hint {
    fn default() -> Self {
        Hint(AtomicU64::new(u64::MAX))
    }
}

impl Hint {
    pub(crate) fn lower(&self, when: u64) {
        self.0.fetch_min(when, Ordering::SeqCst);
    }
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
    pub(crate) fn reset(&self) {
        self.0.store(u64::MAX, Ordering::SeqCst);
    }
}

/// Adds a timer that wakes `w` at `when` to the current P's heap (the
/// first P's when the caller runs on none of `sched`'s threads).
pub(crate) fn add_wake(sched: &Sched, when: u64, w: Waiter) {
    push(sched, when, Fire::Wake(w));
    sched.timer_added(when);
}

/// Adds a timer that fires `task` with `seq` at `when` (see `add_wake`).
pub(crate) fn add_task(sched: &Sched, when: u64, task: Arc<dyn TimerTask>, seq: u64) {
    push(sched, when, Fire::Task(task, seq));
    sched.timer_added(when);
}

fn push(sched: &Sched, when: u64, fire: Fire) {
    match super::window::current_p(sched) {
        Some(p) => p.timers.push(when, fire),
        None => sched.p(0).timers.push(when, fire),
    }
}

/// Parks the caller until `at` (`None`: forever, until cancelled). A plain
/// thread sleeps instead.
#[track_caller]
pub(crate) fn park_until(at: Option<Instant>) {
    let Some(g) = super::g::current() else {
        match at {
            Some(at) => std::thread::sleep(at.saturating_duration_since(Instant::now())),
            None => loop {
                std::thread::park();
            },
        }
        return;
    };
    let sched = g.sched();
    let when = at.map_or(u64::MAX - 1, nanos);
    loop {
        super::park::park(super::g::WaitReason::Sleep, |w| {
            if when != u64::MAX - 1 {
                add_wake(sched, when, w);
            }
            // Forever: nothing will wake this waiter but cancellation.
            true
        });
        if now() >= when {
            return;
        }
    }
}
