//! loom models of the channel wake-up protocols (DESIGN.md rule 1: no lost
//! wake-up).
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p gort --lib --release
//! --target-dir target/loom loom` (this file is included from
//! `loom_models.rs`). As the other models, these re-state the algorithms
//! over loom's atomics instead of compiling the runtime:
//!
//! * [`G`] and [`Waiter`] stand in for a goroutine and `park.rs`'s
//!   `Waiter::G`: one `AtomicU64` packing the park generation with
//!   RUNNING / WAITING / CLAIMED / RUNNABLE, with `sched.rs`'s `claim`
//!   (WAITING -> CLAIMED), `ready_claimed` (CLAIMED -> RUNNABLE) and
//!   `ready` (WAITING -> RUNNABLE), and `m.rs`'s `execute` (store WAITING
//!   under the next generation, then run the `after` step; resume at once
//!   if it returns false). "Queued on a run queue and run again by some M"
//!   is the goroutine's own loom thread waiting (on a condvar) until its
//!   state reads RUNNABLE; `readied` counts the enqueues.
//! * [`Entry`], [`Cx`], [`WaitLock`] and the queue functions follow
//!   `chan/waker.rs`; [`block_on`] is `chan/select.rs`'s `run` for one case
//!   without a deadline; [`Zero`] and [`Array`] are the `zero.rs` and
//!   `array.rs` flavours (the ring as one atomic word of capacity 1).
//! * A case's value slot (an `Option<T>` on the parked caller's stack) is a
//!   loom `UnsafeCell`, so loom reports a causality violation if a
//!   counterpart's write is not ordered before the owner's read.
//!
//! loom reports a deadlock if a waiter can be left parked forever.
//!
//! loom regards SeqCst loads and stores as AcqRel, except that a SeqCst
//! load never returns a SeqCst store older than another SeqCst store (loom
//! README, "Unsupported features"); an atomic's initial value counts as a
//! Release store. The models therefore store the initial value of every
//! atomic in a SeqCst Dekker pair once more with SeqCst before any other
//! thread starts: in C11 a SeqCst load cannot read a value that
//! happens-before the last SeqCst store preceding it anyway, so this only
//! removes loom's false alarm, it adds no ordering the real code lacks.
//!
//! Mutation checks: each model was run once with its algorithm broken as
//! the comment above the test says, loom failed it as stated there, and
//! the code was restored. Dropping the SeqCst re-stores of the initial
//! values (above) makes loom report a deadlock in the correct array models:
//! that is the false alarm they are there for.

// Test-only: outside `cargo test` nothing here is used.
#![cfg(test)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
use loom::thread;
use std::collections::VecDeque;

const RUNNABLE: u64 = 1;
const RUNNING: u64 = 2;
const WAITING: u64 = 3;
const CLAIMED: u64 = 5;

fn pack(gen: u64, status: u64) -> u64 {
    (gen << 8) | status
}

/// A goroutine (`g.rs`), run by the loom thread that created it.
pub(crate) struct G {
    state: AtomicU64,
    /// Set when it is queued; the thread that plays its M sleeps on it.
    /// (A mutex and condvar, not `thread::park`: loom's own blocking in
    /// `join` and `Mutex::lock` must not see a late unpark.)
    queued: Mutex<bool>,
    cv: Condvar,
    /// How many times it was queued to run (checks only).
    readied: AtomicUsize,
}

impl G {
    /// The calling loom thread as a running goroutine.
    pub(crate) fn current() -> Arc<G> {
        Arc::new(G {
            state: AtomicU64::new(pack(0, RUNNING)),
            queued: Mutex::new(false),
            cv: Condvar::new(),
            readied: AtomicUsize::new(0),
        })
    }

    /// `Parking::park` (the waiter was handed out by `prepare`).
    pub(crate) fn park_prepared(&self, w: Waiter, after: impl FnOnce(Waiter) -> bool) {
        let gen = w.gen;
        assert_eq!(self.state.load(Ordering::Relaxed) >> 8, gen - 1);
        self.state.store(pack(gen, WAITING), Ordering::Release);
        if !after(w)
            && self
                .state
                .compare_exchange(
                    pack(gen, WAITING),
                    pack(gen, RUNNABLE),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            // Resumed at once by its own M.
            self.state.store(pack(gen, RUNNING), Ordering::Release);
            return;
        }
        // Wait until some waker queued it; then an M runs it (`execute`).
        loop {
            let s = self.state.load(Ordering::Acquire);
            if s == pack(gen, RUNNABLE) {
                break;
            }
            assert!(s == pack(gen, WAITING) || s == pack(gen, CLAIMED));
            let mut q = self.queued.lock().unwrap();
            while !*q {
                q = self.cv.wait(q).unwrap();
            }
            *q = false;
        }
        self.state.store(pack(gen, RUNNING), Ordering::Release);
    }

    /// `sched::enqueue`: queue it and wake an M.
    fn enqueue(&self) {
        self.readied.fetch_add(1, Ordering::Relaxed);
        *self.queued.lock().unwrap() = true;
        self.cv.notify_one();
    }
}

/// `park::prepare`: the waiter of `g`'s next park (generation + 1).
pub(crate) fn prepare(g: &Arc<G>) -> Waiter {
    Waiter {
        g: g.clone(),
        gen: (g.state.load(Ordering::Relaxed) >> 8) + 1,
    }
}

/// `park::park`: switch out, then (`execute`) store WAITING under the next
/// generation and run `after` with the waiter.
fn park(g: &Arc<G>, after: impl FnOnce(Waiter) -> bool) {
    let w = prepare(g);
    g.park_prepared(w, after)
}

/// `park.rs`'s `Waiter::G`.
#[derive(Clone)]
pub(crate) struct Waiter {
    pub(crate) g: Arc<G>,
    pub(crate) gen: u64,
}

impl Waiter {
    /// `sched::claim`.
    pub(crate) fn claim(&self) -> bool {
        self.g
            .state
            .compare_exchange(
                pack(self.gen, WAITING),
                pack(self.gen, CLAIMED),
                Ordering::SeqCst,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    /// `sched::ready_claimed`.
    pub(crate) fn wake_claimed(self) {
        assert_eq!(
            self.g.state.load(Ordering::Relaxed),
            pack(self.gen, CLAIMED)
        );
        self.g
            .state
            .store(pack(self.gen, RUNNABLE), Ordering::Release);
        self.g.enqueue();
    }

    /// `sched::ready` (`Waiter::wake`, `wake_fifo`).
    pub(crate) fn wake(self) -> bool {
        if self
            .g
            .state
            .compare_exchange(
                pack(self.gen, WAITING),
                pack(self.gen, RUNNABLE),
                Ordering::SeqCst,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return false;
        }
        self.g.enqueue();
        true
    }

    fn is_stale(&self) -> bool {
        self.g.state.load(Ordering::Relaxed) != pack(self.gen, WAITING)
    }
}

/// A case's value slot on the parked caller's stack.
type Slot = Arc<UnsafeCell<Option<u32>>>;

fn slot(v: Option<u32>) -> Slot {
    Arc::new(UnsafeCell::new(v))
}

fn put(s: &Slot, v: Option<u32>) {
    // SAFETY: only the slot's owner (while not registered) or the
    // counterpart that claimed its entry touches it; that is the protocol
    // under test, and loom reports any access it fails to order.
    s.with_mut(|p| unsafe { *p = v });
}

fn take(s: &Slot) -> Option<u32> {
    // SAFETY: as in `put`.
    s.with_mut(|p| unsafe { (*p).take() })
}

fn is_full(s: &Slot) -> bool {
    // SAFETY: as in `put`.
    s.with(|p| unsafe { (*p).is_some() })
}

/// `waker.rs`'s `Cx::selected` before any case fired.
const NONE: usize = usize::MAX;

/// `waker.rs`'s `Cx`: which case fired.
struct Cx {
    selected: AtomicUsize,
}

fn cx() -> Arc<Cx> {
    Arc::new(Cx {
        selected: AtomicUsize::new(NONE),
    })
}

/// `waker.rs`'s `Entry`.
struct Entry {
    waiter: Waiter,
    cx: Arc<Cx>,
    case: usize,
    slot: Slot,
}

impl Entry {
    /// `Entry::finish`: record the case, wake the claimed waiter.
    fn finish(self) {
        self.cx.selected.store(self.case, Ordering::Release);
        self.waiter.wake_claimed();
    }
}

fn mine(e: &Entry, me: Option<&Arc<Cx>>) -> bool {
    me.is_some_and(|me| Arc::ptr_eq(&e.cx, me))
}

/// `Queue::claim_transfer`.
fn claim_transfer(q: &mut VecDeque<Entry>, me: Option<&Arc<Cx>>) -> Option<Entry> {
    let mut i = 0;
    while i < q.len() {
        if mine(&q[i], me) {
            i += 1;
            continue;
        }
        let e = q.remove(i).expect("index in range");
        if e.waiter.claim() {
            return Some(e);
        }
    }
    None
}

/// `Queue::notify_one`.
fn notify_one(q: &mut VecDeque<Entry>, me: Option<&Arc<Cx>>) -> bool {
    let mut i = 0;
    while i < q.len() {
        if mine(&q[i], me) {
            i += 1;
            continue;
        }
        let e = q.remove(i).expect("index in range");
        if e.waiter.claim() {
            e.finish();
            return true;
        }
    }
    false
}

/// `Queue::has_live`.
fn has_live(q: &VecDeque<Entry>, me: &Arc<Cx>) -> bool {
    q.iter().any(|e| !mine(e, Some(me)) && !e.waiter.is_stale())
}

/// `Queue::remove`.
fn remove(q: &mut VecDeque<Entry>, cx: &Arc<Cx>) {
    q.retain(|e| !Arc::ptr_eq(&e.cx, cx));
}

#[derive(Default)]
struct Waiters {
    senders: VecDeque<Entry>,
    receivers: VecDeque<Entry>,
}

/// `waker.rs`'s `WaitLock`.
struct WaitLock {
    lock: Mutex<Waiters>,
    senders_waiting: AtomicBool,
    receivers_waiting: AtomicBool,
}

/// `waker.rs`'s `WaitGuard`: publishes the hints when released.
struct WaitGuard<'a> {
    owner: &'a WaitLock,
    guard: MutexGuard<'a, Waiters>,
}

impl WaitLock {
    fn new() -> WaitLock {
        let wl = WaitLock {
            lock: Mutex::new(Waiters::default()),
            senders_waiting: AtomicBool::new(false),
            receivers_waiting: AtomicBool::new(false),
        };
        // See the module docs (loom and SeqCst).
        wl.senders_waiting.store(false, Ordering::SeqCst);
        wl.receivers_waiting.store(false, Ordering::SeqCst);
        wl
    }

    fn lock(&self) -> WaitGuard<'_> {
        WaitGuard {
            owner: self,
            guard: self.lock.lock().unwrap(),
        }
    }

    fn senders_waiting(&self) -> bool {
        self.senders_waiting.load(Ordering::SeqCst)
    }

    fn receivers_waiting(&self) -> bool {
        self.receivers_waiting.load(Ordering::SeqCst)
    }
}

impl WaitGuard<'_> {
    /// `WaitGuard::publish`.
    fn publish(&self) {
        let o = self.owner;
        let s = !self.guard.senders.is_empty();
        let r = !self.guard.receivers.is_empty();
        if o.senders_waiting.load(Ordering::Relaxed) != s {
            o.senders_waiting.store(s, Ordering::SeqCst);
        }
        if o.receivers_waiting.load(Ordering::Relaxed) != r {
            o.receivers_waiting.store(r, Ordering::SeqCst);
        }
    }
}

impl std::ops::Deref for WaitGuard<'_> {
    type Target = Waiters;
    fn deref(&self) -> &Waiters {
        &self.guard
    }
}

impl std::ops::DerefMut for WaitGuard<'_> {
    fn deref_mut(&mut self) -> &mut Waiters {
        &mut self.guard
    }
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.publish();
    }
}

/// `select.rs`'s `run` for one case and no deadline: poll, register under
/// the lock, publish, re-check under the lock, park with the unlock as the
/// `after` step; on a wake, done if the value moved, else poll again.
/// `attempt` is the case's `try_send`/`try_recv` through `slot`; `ready`
/// its `send_ready`/`recv_ready` under the lock.
fn block_on(
    g: &Arc<G>,
    wl: &WaitLock,
    send: bool,
    slot: &Slot,
    attempt: &dyn Fn() -> bool,
    ready: &dyn Fn(&Waiters, &Arc<Cx>) -> bool,
) {
    let mut first = false;
    loop {
        // 1. Poll (the woken case first, then every case).
        if std::mem::take(&mut first) && attempt() {
            return;
        }
        if attempt() {
            return;
        }
        // 3. Register and park.
        let parking = prepare(g);
        let cx = cx();
        let mut guard = wl.lock();
        let e = Entry {
            waiter: parking.clone(),
            cx: cx.clone(),
            case: 0,
            slot: slot.clone(),
        };
        if send {
            guard.senders.push_back(e);
        } else {
            guard.receivers.push_back(e);
        }
        guard.publish();
        if ready(&guard, &cx) {
            remove(&mut guard.senders, &cx);
            remove(&mut guard.receivers, &cx);
            drop(guard);
            continue;
        }
        g.park_prepared(parking, move |_| {
            drop(guard);
            true
        });
        // 4. Woken (a lone case has no leftovers).
        let sel = cx.selected.load(Ordering::Acquire);
        assert_eq!(sel, 0, "no deadline: only a counterpart wakes it");
        if is_full(slot) != send {
            return;
        }
        first = true;
    }
}

// ---------------------------------------------------------------------
// 1. The claim protocol.

/// A select over two rendezvous channels with a deadline: one waiter, one
/// `Cx`, an entry on each channel's receivers queue, and a timer holding
/// the same waiter. Each channel's sender claims an entry, writes its
/// value into the case's slot after unlocking, then wakes; the timer
/// readies the waiter without a claim. Exactly one of the three wins; the
/// waiter is queued exactly once; if a sender won, `selected` names its
/// case and the slot holds its value (loom checks the write is ordered
/// before the read), the other slot is untouched; a stale (woken) waiter
/// can no longer be claimed.
///
/// Mutation checks: (a) `Waiter::claim` as a load then a store instead of a
/// CAS: two wakers claim, loom reports the waiter's read of its slots
/// racing a sender's write ("Causality violation: Concurrent write
/// accesses to `UnsafeCell`"); (b) a sender writing the slot after
/// `finish` instead of before: the same causality violation; (c) the
/// timer storing RUNNABLE instead of its WAITING -> RUNNABLE CAS: the
/// "exactly one waker wins" assertion fails (2 winners).
#[test]
fn select_claim_race_two_senders_and_a_timer() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(|| {
        let g = G::current();
        let queues: Arc<[Mutex<VecDeque<Entry>>; 2]> =
            Arc::new([Mutex::new(VecDeque::new()), Mutex::new(VecDeque::new())]);
        let senders: Vec<_> = (0..2u32)
            .map(|i| {
                let queues = queues.clone();
                thread::spawn(move || {
                    let mut q = queues[i as usize].lock().unwrap();
                    let e = claim_transfer(&mut q, None);
                    drop(q);
                    match e {
                        Some(e) => {
                            put(&e.slot, Some(10 + i));
                            e.finish();
                            true
                        }
                        // It would register and park itself here.
                        None => false,
                    }
                })
            })
            .collect();

        let parking = prepare(&g);
        let stale = parking.clone();
        let cx = cx();
        let slots = [slot(None), slot(None)];
        let mut q0 = queues[0].lock().unwrap();
        let mut q1 = queues[1].lock().unwrap();
        for (case, q) in [&mut q0, &mut q1].into_iter().enumerate() {
            q.push_back(Entry {
                waiter: parking.clone(),
                cx: cx.clone(),
                case,
                slot: slots[case].clone(),
            });
        }
        // No sender ever registers here, so the re-check finds nothing.
        let mut timer = None;
        g.park_prepared(parking, |w| {
            drop(q0);
            drop(q1);
            // `timers::add_wake`: the timer fires whenever it runs.
            timer = Some(thread::spawn(move || w.wake()));
            true
        });
        let sel = cx.selected.load(Ordering::Acquire);
        for q in queues.iter() {
            remove(&mut q.lock().unwrap(), &cx);
        }
        let got = [take(&slots[0]), take(&slots[1])];

        let won: Vec<bool> = senders.into_iter().map(|h| h.join().unwrap()).collect();
        let timer_won = timer.unwrap().join().unwrap();
        assert_eq!(
            won.iter().filter(|&&w| w).count() + timer_won as usize,
            1,
            "exactly one waker wins"
        );
        assert_eq!(g.readied.load(Ordering::Relaxed), 1, "queued exactly once");
        if timer_won {
            assert_eq!(sel, NONE);
            assert_eq!(got, [None, None]);
        } else {
            assert!(won[sel]);
            let mut want = [None, None];
            want[sel] = Some(10 + sel as u32);
            assert_eq!(got, want);
        }
        assert!(!stale.claim(), "a finished park cannot be claimed");
    });
}

// ---------------------------------------------------------------------
// 2. Rendezvous hand-off.

/// `zero.rs`'s channel (closing left out).
struct Zero {
    wait: WaitLock,
}

impl Zero {
    /// `try_send` through the case slot.
    fn try_send(&self, mine: &Slot) -> bool {
        let mut w = self.wait.lock();
        match claim_transfer(&mut w.receivers, None) {
            Some(e) => {
                drop(w);
                put(&e.slot, take(mine));
                e.finish();
                true
            }
            None => false,
        }
    }

    /// `try_recv` into the case slot.
    fn try_recv(&self, mine: &Slot) -> bool {
        let mut w = self.wait.lock();
        match claim_transfer(&mut w.senders, None) {
            Some(e) => {
                drop(w);
                let v = take(&e.slot).expect("a parked sender holds its value");
                e.finish();
                put(mine, Some(v));
                true
            }
            None => false,
        }
    }

    fn send(&self, g: &Arc<G>, v: u32) {
        let s = slot(Some(v));
        block_on(g, &self.wait, true, &s, &|| self.try_send(&s), &|w, me| {
            has_live(&w.receivers, me)
        });
        assert!(!is_full(&s), "the value left the sender");
    }

    fn recv(&self, g: &Arc<G>) -> u32 {
        let s = slot(None);
        block_on(g, &self.wait, false, &s, &|| self.try_recv(&s), &|w, me| {
            has_live(&w.senders, me)
        });
        take(&s).expect("the value arrived")
    }
}

/// A sender and a receiver meet on a rendezvous channel, each polling,
/// then registering under the lock with a re-check, then parking with the
/// unlock as the `after` step; the side that finds the other parked claims
/// it, moves the value after unlocking, and wakes it. The value arrives
/// exactly once and both return (loom reports a deadlock otherwise).
///
/// Mutation checks: (a) the `after` step run before the goroutine is
/// switched out (unlock, then store WAITING): a counterpart's claim of the
/// new entry fails and drops it, and loom reports a deadlock (both threads
/// parked); (b) the re-check under the lock skipped: loom reports the same
/// deadlock.
#[test]
fn zero_hand_off_registers_under_the_lock() {
    loom::model(|| {
        let ch = Arc::new(Zero {
            wait: WaitLock::new(),
        });
        let ch2 = ch.clone();
        let sender = thread::spawn(move || {
            let g = G::current();
            ch2.send(&g, 42);
            g.readied.load(Ordering::Relaxed)
        });
        let g = G::current();
        assert_eq!(ch.recv(&g), 42);
        assert!(g.readied.load(Ordering::Relaxed) <= 1);
        assert!(sender.join().unwrap() <= 1);
        let w = ch.wait.lock();
        assert!(w.senders.is_empty() && w.receivers.is_empty());
    });
}

// ---------------------------------------------------------------------
// 3. The array flavour.

/// `array.rs`'s channel with a ring of capacity 1: one atomic word, 0 when
/// empty, else the value + 1; every ring access SeqCst as the ring's
/// `head`/`tail` accesses.
struct Array {
    ring: AtomicUsize,
    wait: WaitLock,
}

impl Array {
    fn new(init: Option<u32>) -> Array {
        let word = init.map_or(0, |v| v as usize + 1);
        let a = Array {
            ring: AtomicUsize::new(word),
            wait: WaitLock::new(),
        };
        // See the module docs (loom and SeqCst).
        a.ring.store(word, Ordering::SeqCst);
        a
    }

    fn push(&self, v: u32) -> bool {
        self.ring
            .compare_exchange(0, v as usize + 1, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
    }

    fn pop(&self) -> Option<u32> {
        match self.ring.swap(0, Ordering::SeqCst) {
            0 => None,
            w => Some(w as u32 - 1),
        }
    }

    fn is_empty(&self) -> bool {
        self.ring.load(Ordering::SeqCst) == 0
    }

    /// `try_send` through the case slot.
    fn try_send(&self, mine: &Slot) -> bool {
        let v = take(mine).expect("a sender holds its value");
        if self.wait.receivers_waiting() && self.is_empty() {
            let mut w = self.wait.lock();
            if let Some(e) = claim_transfer(&mut w.receivers, None) {
                // A parked sender may have been woken for the ring slot we
                // are not using: pass the wake-up on, or it is lost.
                if !w.senders.is_empty() {
                    notify_one(&mut w.senders, None);
                }
                drop(w);
                put(&e.slot, Some(v));
                e.finish();
                return true;
            }
        }
        if !self.push(v) {
            put(mine, Some(v));
            return false;
        }
        if self.wait.receivers_waiting() {
            notify_one(&mut self.wait.lock().receivers, None);
        }
        true
    }

    /// `try_recv` into the case slot.
    fn try_recv(&self, mine: &Slot) -> bool {
        let Some(v) = self.pop() else {
            return false;
        };
        if self.wait.senders_waiting() {
            notify_one(&mut self.wait.lock().senders, None);
        }
        put(mine, Some(v));
        true
    }

    fn send(&self, g: &Arc<G>, v: u32) {
        let s = slot(Some(v));
        block_on(g, &self.wait, true, &s, &|| self.try_send(&s), &|_, _| {
            self.is_empty()
        });
        assert!(!is_full(&s), "the value left the sender");
    }

    fn recv(&self, g: &Arc<G>) -> u32 {
        let s = slot(None);
        block_on(g, &self.wait, false, &s, &|| self.try_recv(&s), &|_, _| {
            !self.is_empty()
        });
        take(&s).expect("the value arrived")
    }
}

/// The Dekker pair: a receiver finds the ring empty, registers under the
/// lock, publishes `receivers_waiting` (SeqCst), re-checks emptiness
/// (SeqCst) and parks; a sender pushes (SeqCst), then loads the hint
/// (SeqCst) and notifies under the lock (or, seeing a parked receiver and
/// an empty ring, hands the value over directly). The value arrives and
/// nobody sleeps forever.
///
/// Mutation check: the hint published only after the re-check (the
/// explicit `publish` before `ready` removed, so the guard's drop in the
/// `after` step publishes it): the sender pushes in between, reads the
/// hint false, and loom reports the receiver parked forever (deadlock).
#[test]
fn array_push_and_register_are_a_dekker_pair() {
    loom::model(|| {
        let ch = Arc::new(Array::new(None));
        let ch2 = ch.clone();
        let sender = thread::spawn(move || {
            let g = G::current();
            ch2.send(&g, 7);
        });
        let g = G::current();
        assert_eq!(ch.recv(&g), 7);
        sender.join().unwrap();
        assert!(ch.is_empty());
    });
}

/// The pass-on rule: capacity 1, full; two senders and a receiver that
/// takes three values. A receiver's pop wakes one parked sender for the
/// free slot; if that sender then finds the receiver parked again and
/// hands its value over directly, the slot stays free and the other
/// parked sender must be woken in its place. With the pass-on every
/// sender completes and all three values arrive.
///
/// Mutation check: without the pass-on (`notify_one(&mut w.senders, ..)`
/// in `Array::try_send` removed), loom finds the interleaving where the
/// receiver and the second sender both sleep forever next to an empty
/// ring (deadlock: receiver and one sender blocked, the other sender
/// done), within the preemption bound of 3 set below.
#[test]
fn array_direct_hand_off_passes_a_sender_wake_up_on() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(|| {
        let ch = Arc::new(Array::new(Some(0)));
        let senders: Vec<_> = (1..3)
            .map(|v| {
                let ch = ch.clone();
                thread::spawn(move || {
                    let g = G::current();
                    ch.send(&g, v);
                })
            })
            .collect();
        let g = G::current();
        let mut got: Vec<u32> = (0..3).map(|_| ch.recv(&g)).collect();
        for s in senders {
            s.join().unwrap();
        }
        got.sort_unstable();
        assert_eq!(got, [0, 1, 2]);
        assert!(ch.is_empty());
    });
}

// ---------------------------------------------------------------------
// 4. WaitGroup.

/// `sync/waitgroup.rs`'s `Inner`.
struct WaitGroup {
    count: AtomicI64,
    waiters: Mutex<Vec<Waiter>>,
}

impl WaitGroup {
    fn add(&self, delta: i64) {
        let new = self.count.fetch_add(delta, Ordering::AcqRel) + delta;
        assert!(new >= 0, "sync: negative WaitGroup counter");
        if new == 0 && delta != 0 {
            let waiters = std::mem::take(&mut *self.waiters.lock().unwrap());
            for w in waiters {
                w.wake();
            }
        }
    }

    fn wait(&self, g: &Arc<G>) {
        while self.count.load(Ordering::Acquire) > 0 {
            park(g, |w| {
                let mut waiters = self.waiters.lock().unwrap();
                if self.count.load(Ordering::Acquire) <= 0 {
                    return false;
                }
                waiters.push(w);
                true
            });
        }
    }
}

/// Two `done`s race with a `wait`: the `done` that reaches zero drains the
/// waiter list under the lock after its decrement, the waiter re-checks the
/// counter under that lock before it appends itself. The waiter is always
/// released (loom reports a deadlock otherwise), once at most.
///
/// Mutation checks: (a) the waiter appends itself without the re-check
/// under the lock: the last `done` drains an empty list between the
/// waiter's first check and its registration, and loom reports the
/// deadlock; (b) `add` draining the list before its decrement (deciding
/// from a prior load): loom reports the same deadlock.
#[test]
fn waitgroup_last_done_releases_the_waiter() {
    loom::model(|| {
        let wg = Arc::new(WaitGroup {
            count: AtomicI64::new(0),
            waiters: Mutex::new(Vec::new()),
        });
        wg.add(2);
        let done: Vec<_> = (0..2)
            .map(|_| {
                let wg = wg.clone();
                thread::spawn(move || wg.add(-1))
            })
            .collect();
        let g = G::current();
        wg.wait(&g);
        assert_eq!(wg.count.load(Ordering::Acquire), 0);
        for d in done {
            d.join().unwrap();
        }
        assert!(g.readied.load(Ordering::Relaxed) <= 1);
    });
}
