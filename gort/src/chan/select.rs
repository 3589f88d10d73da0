//! Select: wait on several channel operations, run exactly one (Go's
//! `selectgo`). Every blocking channel operation is a select of one case.
//!
//! 1. Poll the cases in a random order (uniform choice among the ready
//!    ones, Go's rule); run the first that can proceed.
//! 2. With `default`, stop there; with a deadline that has passed, too.
//!    Giving up must be right for one instant across all the channels (Go
//!    decides under all their locks; our buffered flavours are lock-free),
//!    so such a poll is bracketed by reading every channel's change stamp
//!    before and after: if any moved, poll again.
//! 3. Otherwise lock the wait queues of every channel involved (in address
//!    order, once each), register one entry per case, all sharing one
//!    waiter and one `Cx`, and re-check every case under the locks. If one
//!    became ready, unregister and go back to 1. Else park; the park's
//!    `after` step releases the locks once the caller can be claimed (Go's
//!    `selparkcommit`).
//! 4. The counterpart that claims the waiter moves the value and records
//!    the case in the `Cx` (`waker.rs`); a close, a buffered channel's
//!    "space/data appeared", or a dynamic `Select`'s readiness wake records
//!    the case without moving anything. On waking, remove the leftover
//!    entries; if the value moved, that case is done; else poll again,
//!    that case first (it was offered first, and a buffered value must not
//!    be stranded while another parked receiver sleeps).
//!
//! A goroutine cancelled while parked here unwinds through [`Leftovers`],
//! which unregisters its entries before its frame goes away.

use std::marker::PhantomData;
use std::time::Duration;

use smallvec::SmallVec;

use super::error::{RecvError, SelectTimeoutError, SendError, TrySelectError};
use super::waker::{self, Cx, Entry, WaitLock, Waiters};
use super::{Receiver, Sender};
use crate::loom::time::Instant;
use crate::runtime::g::WaitReason;
use crate::runtime::{park, rand};

/// Outcome of one poll of a case.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Attempt {
    /// The operation ran (or, readiness only, could run).
    Done,
    /// The channel is closed (for a receive: closed and drained).
    Closed,
    /// It would block.
    NotReady,
}

/// A channel as select sees it (type-erased over `T`). A slot is a
/// `*mut Option<T>`: `Some(value)` to send, `None` to receive into; null
/// asks only whether the operation could proceed.
pub(crate) trait Handle: Sync {
    /// The channel's wait queues (`None` for `never()`, which never wakes).
    fn wait_lock(&self) -> Option<&WaitLock>;
    fn try_send(&self, slot: *mut ()) -> Attempt;
    fn try_recv(&self, slot: *mut ()) -> Attempt;
    /// Under the wait lock: could the operation proceed now?
    fn ready(&self, w: &Waiters, send: bool, me: *const Cx) -> bool;
    /// Whether the slot holds a value.
    fn slot_full(&self, slot: *mut ()) -> bool;
    /// A value that changes whenever the channel's readiness may have
    /// (buffer indices, wait-queue changes, closing).
    fn stamp(&self) -> [u64; 3];
}

/// One case of a select.
pub struct Case<'a> {
    pub(crate) handle: &'a dyn Handle,
    pub(crate) send: bool,
    pub(crate) slot: *mut (),
}

impl Case<'_> {
    fn attempt(&self) -> Attempt {
        if self.send {
            self.handle.try_send(self.slot)
        } else {
            self.handle.try_recv(self.slot)
        }
    }

    /// Polls this case (case number `i`): `Some((i, closed))` if it ran.
    fn poll(&self, i: usize) -> Option<(usize, bool)> {
        match self.attempt() {
            Attempt::Done => Some((i, false)),
            Attempt::Closed => Some((i, true)),
            Attempt::NotReady => None,
        }
    }

    /// Queues `e` on this case's side of the channel.
    fn enqueue(&self, w: &mut Waiters, e: Entry) {
        if self.send {
            w.senders.push(e);
        } else {
            w.receivers.push(e);
        }
    }

    /// After a wake for this case: did the value move?
    fn transferred(&self) -> bool {
        !self.slot.is_null() && (self.handle.slot_full(self.slot) != self.send)
    }
}

/// How long a select may wait.
#[derive(Clone, Copy, Debug)]
pub enum Wait {
    /// Until a case is ready.
    Forever,
    /// Not at all (`default`).
    Never,
    /// Until this instant.
    Until(Instant),
}

impl Wait {
    /// Whether a deadline has passed (a select may give up now).
    fn expired(&self) -> bool {
        match self {
            Wait::Never => true,
            Wait::Until(at) => Instant::now() >= *at,
            Wait::Forever => false,
        }
    }

    /// The deadline to park with, or `Err` if the select gives up now.
    fn deadline(&self) -> Result<Option<Instant>, ()> {
        match self {
            _ if self.expired() => Err(()),
            Wait::Until(at) => Ok(Some(*at)),
            _ => Ok(None),
        }
    }

    pub(crate) fn timeout(d: Duration) -> Wait {
        match Instant::now().checked_add(d) {
            Some(at) => Wait::Until(at),
            None => Wait::Forever,
        }
    }
}

type Locks<'a> = SmallVec<[&'a WaitLock; 4]>;

/// Polls a giving-up select repeats while its channels keep changing under
/// it; past that it gives up on the last poll (a channel that changes this
/// often is being served by others anyway).
const MAX_COLLECTS: u32 = 1000;

/// Removes a select's entries from its channels' queues on every way out
/// of a park (a normal wake, a deadline, a cancellation unwinding).
struct Leftovers<'l, 'a> {
    locks: &'l Locks<'a>,
    cx: *const Cx,
    armed: bool,
}

impl Drop for Leftovers<'_, '_> {
    fn drop(&mut self) {
        if self.armed {
            for wl in self.locks.iter() {
                wl.lock().remove(self.cx);
            }
        }
    }
}

/// Runs a select over `cases`; returns the case that ran and whether its
/// channel was closed, or `None` when `wait` ran out first.
/// `polled`: the caller has just polled every case itself (a blocking
/// `send`/`recv` tries its fast path first), so the first round skips it.
#[track_caller]
pub(crate) fn run(
    cases: &[Case<'_>],
    wait: Wait,
    reason: WaitReason,
    mut polled: bool,
) -> Option<(usize, bool)> {
    if let [case] = cases {
        return run_one(case, wait, reason, polled);
    }
    let n = cases.len();
    let mut first: Option<usize> = None;
    let mut retries = 0;
    loop {
        // 1. Poll.
        if let Some(i) = first.take() {
            if let Some(r) = cases[i].poll(i) {
                return Some(r);
            }
        }
        // A select that may give up after this poll (default, or a passed
        // deadline) must see all its channels at one instant, as Go's does
        // under all their locks: stamps taken before and after the poll
        // that match prove no case changed meanwhile (a double collect).
        let may_give_up = wait.expired();
        let stamps = |cases: &[Case<'_>]| -> SmallVec<[[u64; 3]; 8]> {
            cases.iter().map(|c| c.handle.stamp()).collect()
        };
        let before = (may_give_up && n > 1).then(|| stamps(cases));
        let mut order: SmallVec<[usize; 8]> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, rand::below(i + 1));
        }
        if !std::mem::take(&mut polled) {
            for &i in &order {
                if let Some(r) = cases[i].poll(i) {
                    return Some(r);
                }
            }
        }
        // 2. Give up?
        if let Some(before) = before {
            if before != stamps(cases) && retries < MAX_COLLECTS {
                retries += 1;
                continue;
            }
        }
        if may_give_up {
            return None;
        }
        let Ok(deadline) = wait.deadline() else {
            return None;
        };
        // 3. Register and park.
        let mut locks: Locks<'_> = cases.iter().filter_map(|c| c.handle.wait_lock()).collect();
        locks.sort_by_key(|l| l.order());
        locks.dedup_by(|a, b| std::ptr::eq(*a, *b));
        let parking = park::prepare();
        let cx = Cx::new();
        let me: *const Cx = &cx;
        let mut guards: SmallVec<[waker::WaitGuard<'_>; 4]> =
            locks.iter().map(|l| l.lock()).collect();
        let guard_of = |wl: &WaitLock| {
            locks
                .iter()
                .position(|l| std::ptr::eq(*l, wl))
                .expect("every case's lock is held")
        };
        // Enqueue in the poll order, so that when several cases wait on one
        // channel, the counterpart's pick among them is random too.
        for &i in &order {
            let c = &cases[i];
            if let Some(wl) = c.handle.wait_lock() {
                let e = Entry {
                    waiter: parking.waiter().clone(),
                    cx: me,
                    case: i,
                    slot: c.slot,
                };
                c.enqueue(&mut guards[guard_of(wl)], e);
            }
        }
        for g in guards.iter() {
            g.publish();
        }
        let ready = cases.iter().any(|c| {
            c.handle
                .wait_lock()
                .is_some_and(|wl| c.handle.ready(&guards[guard_of(wl)], c.send, me))
        });
        if ready {
            for g in guards.iter_mut() {
                g.remove(me);
            }
            drop(guards);
            continue;
        }
        let mut leftovers = Leftovers {
            locks: &locks,
            cx: me,
            armed: true,
        };
        parking.park(reason, deadline, move || drop(guards));
        // 4. Woken.
        let sel = cx.selected();
        if sel == waker::NONE {
            // Woken by the deadline (a cancellation unwinds in `park`).
            drop(leftovers);
            if wait.expired() {
                return None;
            }
            continue;
        }
        // The chosen entry left its queue with the claim: a lone case has
        // nothing left to remove.
        leftovers.armed = n > 1;
        drop(leftovers);
        if cases[sel].transferred() {
            return Some((sel, false));
        }
        if cases[sel].slot.is_null() {
            // Readiness only: report the case; the caller completes it.
            return Some((sel, false));
        }
        first = Some(sel);
    }
}

/// [`run`] for one case (every blocking `send` and `recv`): the same
/// steps without the bookkeeping for several channels.
#[track_caller]
fn run_one(
    case: &Case<'_>,
    wait: Wait,
    reason: WaitReason,
    mut polled: bool,
) -> Option<(usize, bool)> {
    loop {
        if !std::mem::take(&mut polled) {
            if let Some(r) = case.poll(0) {
                return Some(r);
            }
        }
        let Ok(deadline) = wait.deadline() else {
            return None;
        };
        let parking = park::prepare();
        let Some(wl) = case.handle.wait_lock() else {
            // `never()`: nothing can wake this but the deadline.
            parking.park(reason, deadline, || {});
            if wait.expired() {
                return None;
            }
            continue;
        };
        let cx = Cx::new();
        let me: *const Cx = &cx;
        let mut g = wl.lock();
        let e = Entry {
            waiter: parking.waiter().clone(),
            cx: me,
            case: 0,
            slot: case.slot,
        };
        case.enqueue(&mut g, e);
        if !crate::loom::mutant("select_publish_late") {
            g.publish();
        }
        if !crate::loom::mutant("select_skip_recheck") && case.handle.ready(&g, case.send, me) {
            g.remove(me);
            drop(g);
            continue;
        }
        let locks: Locks<'_> = smallvec::smallvec![wl];
        let mut leftovers = Leftovers {
            locks: &locks,
            cx: me,
            armed: true,
        };
        parking.park(reason, deadline, move || drop(g));
        let sel = cx.selected();
        if sel == waker::NONE {
            // Woken by the deadline (a cancellation unwinds in `park`).
            drop(leftovers);
            if wait.expired() {
                return None;
            }
            continue;
        }
        // The claimer took the entry out of the queue.
        leftovers.armed = false;
        if case.transferred() || case.slot.is_null() {
            return Some((0, false));
        }
    }
}

/// Waits on a number of channel operations known only at run time
/// (crossbeam-channel's `Select`): register cases with [`send`](Self::send)
/// and [`recv`](Self::recv), then [`select`](Self::select) blocks until one
/// of them can proceed and returns it; complete it with
/// [`SelectedOperation::send`] or [`SelectedOperation::recv`].
///
/// Unlike `select!`, which moves the value inside the select, a dynamic
/// select reports readiness; completing the operation can still block
/// briefly if another goroutine took the chance first.
///
/// ```
/// use gort::chan::{bounded, Select};
/// gort::run(|| {
///     let (tx1, rx1) = bounded::<i32>(1);
///     let (_tx2, rx2) = bounded::<i32>(1);
///     tx1.send(10).unwrap();
///     let mut sel = Select::new();
///     let a = sel.recv(&rx1);
///     let _b = sel.recv(&rx2);
///     let oper = sel.select();
///     assert_eq!(oper.index(), a);
///     assert_eq!(oper.recv(&rx1), Ok(10));
/// });
/// ```
#[derive(Default)]
pub struct Select<'a> {
    cases: Vec<(&'a dyn Handle, bool, *const ())>,
}

// SAFETY: the raw pointer is only an identity used for comparisons; the
// handles are `Sync`.
unsafe impl Send for Select<'_> {}
// SAFETY: as above.
unsafe impl Sync for Select<'_> {}

impl<'a> Select<'a> {
    /// An empty select.
    pub fn new() -> Select<'a> {
        Select { cases: Vec::new() }
    }

    /// Adds a send case; returns its index.
    pub fn send<T: Send>(&mut self, tx: &'a Sender<T>) -> usize {
        let h = tx.handle();
        self.cases.push((h, true, tx.identity()));
        self.cases.len() - 1
    }

    /// Adds a receive case; returns its index.
    pub fn recv<T: Send>(&mut self, rx: &'a Receiver<T>) -> usize {
        let h = rx.handle();
        self.cases.push((h, false, rx.identity()));
        self.cases.len() - 1
    }

    #[track_caller]
    fn run(&self, wait: Wait) -> Option<SelectedOperation<'a>> {
        let cases: SmallVec<[Case<'_>; 8]> = self
            .cases
            .iter()
            .map(|&(handle, send, _)| Case {
                handle,
                send,
                slot: std::ptr::null_mut(),
            })
            .collect();
        let reason = if cases.is_empty() {
            WaitReason::SelectNoCases
        } else {
            WaitReason::Select
        };
        run(&cases, wait, reason, false).map(|(index, _)| SelectedOperation {
            index,
            identity: self.cases[index].2,
            send: self.cases[index].1,
            _marker: PhantomData,
        })
    }

    /// Blocks until one case can proceed. With no cases, blocks forever
    /// (Go's `select {}`).
    #[track_caller]
    pub fn select(&mut self) -> SelectedOperation<'a> {
        self.run(Wait::Forever)
            .expect("a select without deadline returns a case")
    }

    /// Returns a case that can proceed now, if any.
    pub fn try_select(&mut self) -> Result<SelectedOperation<'a>, TrySelectError> {
        self.run(Wait::Never).ok_or(TrySelectError)
    }

    /// As [`select`](Self::select), giving up after `timeout`.
    #[track_caller]
    pub fn select_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<SelectedOperation<'a>, SelectTimeoutError> {
        self.run(Wait::timeout(timeout)).ok_or(SelectTimeoutError)
    }

    /// As [`select`](Self::select), giving up at `deadline`.
    #[track_caller]
    pub fn select_deadline(
        &mut self,
        deadline: Instant,
    ) -> Result<SelectedOperation<'a>, SelectTimeoutError> {
        self.run(Wait::Until(deadline)).ok_or(SelectTimeoutError)
    }
}

impl std::fmt::Debug for Select<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Select")
            .field("cases", &self.cases.len())
            .finish()
    }
}

/// The case a [`Select`] chose; complete it with [`send`](Self::send) or
/// [`recv`](Self::recv) on the same channel.
#[must_use = "a selected operation should be completed"]
#[derive(Debug)]
pub struct SelectedOperation<'a> {
    index: usize,
    identity: *const (),
    send: bool,
    _marker: PhantomData<&'a ()>,
}

impl SelectedOperation<'_> {
    /// The chosen case's index (as returned when it was added).
    pub fn index(&self) -> usize {
        self.index
    }

    /// Completes a chosen send case.
    ///
    /// # Panics
    /// If `tx` is not the channel of the chosen case, or the case was a
    /// receive.
    pub fn send<T: Send>(self, tx: &Sender<T>, v: T) -> Result<(), SendError<T>> {
        assert!(
            self.send && tx.identity() == self.identity,
            "SelectedOperation::send: not the selected send case's channel"
        );
        tx.send(v)
    }

    /// Completes a chosen receive case.
    ///
    /// # Panics
    /// If `rx` is not the channel of the chosen case, or the case was a
    /// send.
    pub fn recv<T: Send>(self, rx: &Receiver<T>) -> Result<T, RecvError> {
        assert!(
            !self.send && rx.identity() == self.identity,
            "SelectedOperation::recv: not the selected receive case's channel"
        );
        rx.recv()
    }
}
