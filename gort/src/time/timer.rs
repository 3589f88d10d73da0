//! `Timer` and `Ticker`: timers that deliver on a channel, on the per-P
//! timer heaps (`runtime/timers.rs`), with Go 1.23's semantics.
//!
//! A timer's state (deadline, period, whether it is armed) sits behind a
//! small lock, with a sequence number that every `stop` and `reset` bumps.
//! A heap entry carries the sequence it was armed with; when it comes due
//! it fires only if the sequence is still current (so a stopped or reset
//! timer's old entry is a dead "zombie", swept from the heap lazily). The
//! channel has room for one value. `stop` and `reset` bump the sequence
//! and drain the channel under the same lock that `fire` holds while it
//! sends, so once they return no value of the old timer can be received:
//! Go 1.23's guarantee. A ticker whose receiver is slow finds the slot
//! full and drops the tick (ticks are lost, never queued).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::chan::{self, Receiver, Sender, TrySendError};
use crate::runtime::lock::Lock;
use crate::runtime::sched::Sched;
use crate::runtime::timers::{self, TimerTask};

/// What a due timer does.
pub(crate) enum Action {
    /// Send the time on a channel (Timer, Ticker, `after`, `tick`).
    Send(Sender<Instant>),
    /// Run a function on the timer's thread (`after_func`).
    Func(Box<dyn Fn() + Send + Sync>),
}

struct State {
    when: Instant,
    period: Option<Duration>,
    armed: bool,
}

/// The shared part of a timer: what the heap entries point at.
pub(crate) struct Inner {
    state: Lock<State>,
    seq: AtomicU64,
    action: Action,
    sched: Arc<Sched>,
}

impl Inner {
    pub(crate) fn new(action: Action) -> Arc<Inner> {
        Arc::new(Inner {
            state: Lock::new(State {
                when: Instant::now(),
                period: None,
                armed: false,
            }),
            seq: AtomicU64::new(0),
            action,
            sched: crate::runtime::current_sched().arc(),
        })
    }

    /// Arms (or re-arms) the timer for `at`, repeating every `period`;
    /// `drain` empties its channel first. Returns whether it was armed.
    pub(crate) fn arm(
        self: &Arc<Self>,
        at: Instant,
        period: Option<Duration>,
        drain: Option<&Receiver<Instant>>,
    ) -> bool {
        let mut st = self.state.lock();
        let was = self.disarm_locked(&mut st, drain);
        st.when = at;
        st.period = period;
        st.armed = true;
        let seq = self.seq.load(Ordering::Relaxed);
        timers::add_task(&self.sched, timers::nanos(at), self.clone(), seq);
        was
    }

    /// Stops the timer; returns whether it was armed (or had fired with
    /// its value still unreceived, which `drain` then removes).
    pub(crate) fn disarm(&self, drain: Option<&Receiver<Instant>>) -> bool {
        let mut st = self.state.lock();
        self.disarm_locked(&mut st, drain)
    }

    fn disarm_locked(&self, st: &mut State, drain: Option<&Receiver<Instant>>) -> bool {
        let mut was = st.armed;
        st.armed = false;
        self.seq.fetch_add(1, Ordering::Relaxed);
        if let Some(rx) = drain {
            while rx.try_recv().is_ok() {
                was = true;
            }
        }
        was
    }
}

impl TimerTask for Inner {
    fn fire(self: Arc<Self>, seq: u64) {
        let mut st = self.state.lock();
        if self.seq.load(Ordering::Relaxed) != seq || !st.armed {
            return;
        }
        let now = Instant::now();
        match &self.action {
            Action::Send(tx) => {
                if let Err(TrySendError::Disconnected(_)) = tx.try_send(now) {
                    // Nobody can receive any more: stop for good.
                    st.armed = false;
                    return;
                }
            }
            Action::Func(f) => {
                st.armed = false;
                drop(st);
                f();
                return;
            }
        }
        match st.period {
            Some(p) => {
                // Next tick after `now`, skipping the ones missed meanwhile.
                let mut next = st.when + p;
                if next <= now {
                    let behind = (now - st.when).as_nanos() / p.as_nanos().max(1);
                    next = st.when + p * (behind.min(u32::MAX as u128) as u32 + 1);
                }
                st.when = next;
                timers::add_task(&self.sched, timers::nanos(next), self.clone(), seq);
            }
            None => st.armed = false,
        }
    }

    fn is_stale(&self, seq: u64) -> bool {
        self.seq.load(Ordering::Relaxed) != seq
    }
}

fn deadline(d: Duration) -> Instant {
    // A deadline beyond the clock's range is as good as never.
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// A single event, delivered on a channel after a duration (Go's
/// `time.Timer`, with Go 1.23's semantics: after [`stop`](Self::stop) or
/// [`reset`](Self::reset) returns, no value from before is received).
///
/// Dropping a `Timer` stops it.
///
/// ```
/// use std::time::{Duration, Instant};
/// use gort::time::Timer;
/// gort::run(|| {
///     let start = Instant::now();
///     let t = Timer::new(Duration::from_millis(2));
///     let fired_at = t.chan().recv().unwrap();
///     // Never early: the value is the time it fired, at or past its deadline.
///     assert!(fired_at >= start + Duration::from_millis(2));
///     assert!(start.elapsed() >= Duration::from_millis(2));
///     // A stopped timer delivers nothing.
///     let t = Timer::new(Duration::from_millis(1));
///     t.stop();
///     assert!(t.chan().recv_timeout(Duration::from_millis(5)).is_err());
/// });
/// ```
pub struct Timer {
    inner: Arc<Inner>,
    rx: Receiver<Instant>,
}

impl Timer {
    /// A timer that sends the current time on [`chan`](Self::chan) after `d`.
    pub fn new(d: Duration) -> Timer {
        let (tx, rx) = chan::bounded(1);
        let inner = Inner::new(Action::Send(tx));
        inner.arm(deadline(d), None, None);
        Timer { inner, rx }
    }

    /// Re-arms the timer to fire `d` from now. Returns true if it was
    /// still pending (armed, or fired but not yet received: that value is
    /// discarded).
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = gort::time::Timer::new(Duration::from_secs(3600));
    /// assert!(t.reset(Duration::from_millis(1)));
    /// assert!(t.chan().recv().is_ok());
    /// ```
    pub fn reset(&self, d: Duration) -> bool {
        self.inner.arm(deadline(d), None, Some(&self.rx))
    }

    /// Stops the timer. Returns true if this call prevented a delivery
    /// (the timer was armed, or had fired without being received).
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = gort::time::Timer::new(Duration::from_secs(3600));
    /// assert!(t.stop());
    /// assert!(!t.stop());
    /// ```
    pub fn stop(&self) -> bool {
        self.inner.disarm(Some(&self.rx))
    }

    /// The channel the timer delivers on.
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = gort::time::Timer::new(Duration::from_millis(1));
    /// assert!(t.chan().recv().is_ok());
    /// ```
    pub fn chan(&self) -> &Receiver<Instant> {
        &self.rx
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        self.inner.disarm(None);
    }
}

impl std::fmt::Debug for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timer").finish_non_exhaustive()
    }
}

/// Periodic ticks on a channel (Go's `time.Ticker`). A receiver that falls
/// behind loses ticks rather than queueing them. Dropping a `Ticker`
/// stops it.
///
/// ```
/// use std::time::Duration;
/// gort::run(|| {
///     let t = gort::time::Ticker::new(Duration::from_millis(1));
///     let a = t.chan().recv().unwrap();
///     let b = t.chan().recv().unwrap();
///     assert!(b > a);
///     t.stop();
/// });
/// ```
pub struct Ticker {
    inner: Arc<Inner>,
    rx: Receiver<Instant>,
}

impl Ticker {
    /// A ticker that sends the time every `period`.
    ///
    /// # Panics
    /// If `period` is zero (Go: "non-positive interval for NewTicker").
    pub fn new(period: Duration) -> Ticker {
        assert!(
            !period.is_zero(),
            "gort::time::Ticker::new: the period must be positive (got zero)"
        );
        let (tx, rx) = chan::bounded(1);
        let inner = Inner::new(Action::Send(tx));
        inner.arm(deadline(period), Some(period), None);
        Ticker { inner, rx }
    }

    /// Restarts the ticker with a new period; no tick from before is
    /// received afterwards.
    ///
    /// # Panics
    /// If `period` is zero.
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = gort::time::Ticker::new(Duration::from_secs(3600));
    /// t.reset(Duration::from_millis(1));
    /// assert!(t.chan().recv().is_ok());
    /// ```
    pub fn reset(&self, period: Duration) {
        assert!(
            !period.is_zero(),
            "gort::time::Ticker::reset: the period must be positive (got zero)"
        );
        self.inner
            .arm(deadline(period), Some(period), Some(&self.rx));
    }

    /// Stops the ticker; no tick is received afterwards.
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = gort::time::Ticker::new(Duration::from_millis(1));
    /// t.stop();
    /// assert!(t.chan().recv_timeout(Duration::from_millis(5)).is_err());
    /// ```
    pub fn stop(&self) {
        self.inner.disarm(Some(&self.rx));
    }

    /// The channel the ticks arrive on.
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = gort::time::Ticker::new(Duration::from_millis(1));
    /// assert!(t.chan().recv().is_ok());
    /// ```
    pub fn chan(&self) -> &Receiver<Instant> {
        &self.rx
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.inner.disarm(None);
    }
}

impl std::fmt::Debug for Ticker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticker").finish_non_exhaustive()
    }
}

/// Go's `time.After`: a channel that receives the time once, after `d`.
pub(crate) fn after(d: Duration) -> Receiver<Instant> {
    let (tx, rx) = chan::bounded(1);
    Inner::new(Action::Send(tx)).arm(deadline(d), None, None);
    rx
}

/// Go's `time.Tick`: ticks every `d` until the receiver is dropped.
pub(crate) fn tick(d: Duration) -> Receiver<Instant> {
    if d.is_zero() {
        return chan::never();
    }
    let (tx, rx) = chan::bounded(1);
    Inner::new(Action::Send(tx)).arm(deadline(d), Some(d), None);
    rx
}

/// Go's `time.AfterFunc`: runs `f` on a scheduler thread after `d`
/// (it must not block). Dropping the returned handle does not stop it;
/// [`FuncTimer::stop`] does.
pub(crate) fn after_func(d: Duration, f: impl Fn() + Send + Sync + 'static) -> FuncTimer {
    let inner = Inner::new(Action::Func(Box::new(f)));
    inner.arm(deadline(d), None, None);
    FuncTimer { inner }
}

/// Handle of an [`after_func`] timer.
pub(crate) struct FuncTimer {
    inner: Arc<Inner>,
}

impl FuncTimer {
    /// Stops the timer; true if `f` had not run yet.
    pub(crate) fn stop(&self) -> bool {
        self.inner.disarm(None)
    }
}
