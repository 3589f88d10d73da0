//! Channels: Go's `chan`, with crossbeam-channel's Rust shape.
//!
//! Three flavours, one module each: `zero` (rendezvous, `bounded(0)`),
//! `array` (a lock-free ring, `bounded(n)`) and `list` (`unbounded()`),
//! plus `never()` (Go's nil channel). All share the wait queues of
//! `waker.rs` (Go's `sudog` lists, with direct hand-off to a parked
//! counterpart) and the select loop of `select.rs`: a blocking `send` or
//! `recv` is a select of one case. A blocked goroutine parks (its thread
//! runs other goroutines); a blocked plain thread sleeps on a futex; the
//! two can talk over one channel.
//!
//! Closing: `close()` from either end, or dropping the last `Sender` (or
//! the last `Receiver`). Receivers drain what is buffered, then get
//! `RecvError`; a send that cannot deliver returns its value in the error.
//!
//! ```
//! use gort::chan;
//! gort::run(|| {
//!     let (tx, rx) = chan::bounded(0);
//!     gort::go(move || {
//!         for i in 0..3 {
//!             tx.send(i).unwrap();
//!         }
//!     }); // tx dropped at the end: the channel closes
//!     let got: Vec<i32> = rx.iter().collect();
//!     assert_eq!(got, [0, 1, 2]);
//! });
//! ```

mod array;
mod error;
mod list;
mod select;
mod waker;
mod zero;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::loom::atomic::{AtomicUsize, Ordering};
use crate::loom::time::Instant;

pub use error::{
    RecvError, RecvTimeoutError, SelectTimeoutError, SendError, SendTimeoutError, TryRecvError,
    TrySelectError, TrySendError,
};
pub use select::{Select, SelectedOperation};

use crate::runtime::g::WaitReason;
use select::{Attempt, Case, Handle, Wait};
use waker::{Cx, WaitLock, Waiters};

// The array flavour's cache-padded indices make it the largest; a channel
// is allocated once, behind an `Arc`, so the padding costs nothing per use.
#[allow(clippy::large_enum_variant)]
enum Flavour<T> {
    Zero(zero::Channel<T>),
    Array(array::Channel<T>),
    List(list::Channel<T>),
    Never,
}

struct Chan<T> {
    flavour: Flavour<T>,
    senders: AtomicUsize,
    receivers: AtomicUsize,
}

// SAFETY: a channel moves `T`s between threads (hence `T: Send`) and never
// hands out `&T`, so sharing it needs no `T: Sync`; the flavours
// synchronise all access to their buffers and wait queues.
unsafe impl<T: Send> Send for Chan<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Chan<T> {}

impl<T> Chan<T> {
    fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        match &self.flavour {
            Flavour::Zero(c) => c.try_send(v),
            Flavour::Array(c) => c.try_send(v),
            Flavour::List(c) => c.try_send(v),
            Flavour::Never => Err(TrySendError::Full(v)),
        }
    }

    fn try_recv(&self) -> Result<T, TryRecvError> {
        match &self.flavour {
            Flavour::Zero(c) => c.try_recv(),
            Flavour::Array(c) => c.try_recv(),
            Flavour::List(c) => c.try_recv(),
            Flavour::Never => Err(TryRecvError::Empty),
        }
    }

    fn close(&self) -> bool {
        match &self.flavour {
            Flavour::Zero(c) => c.close(),
            Flavour::Array(c) => c.close(),
            Flavour::List(c) => c.close(),
            Flavour::Never => false,
        }
    }

    fn is_closed(&self) -> bool {
        match &self.flavour {
            Flavour::Zero(c) => c.is_closed(),
            Flavour::Array(c) => c.is_closed(),
            Flavour::List(c) => c.is_closed(),
            Flavour::Never => false,
        }
    }

    fn len(&self) -> usize {
        match &self.flavour {
            Flavour::Zero(_) | Flavour::Never => 0,
            Flavour::Array(c) => c.len(),
            Flavour::List(c) => c.len(),
        }
    }

    fn capacity(&self) -> Option<usize> {
        match &self.flavour {
            Flavour::Zero(_) | Flavour::Never => Some(0),
            Flavour::Array(c) => Some(c.capacity()),
            Flavour::List(_) => None,
        }
    }
}

impl<T: Send> Handle for Chan<T> {
    fn wait_lock(&self) -> Option<&WaitLock> {
        match &self.flavour {
            Flavour::Zero(c) => Some(&c.wait),
            Flavour::Array(c) => Some(&c.wait),
            Flavour::List(c) => Some(&c.wait),
            Flavour::Never => None,
        }
    }

    fn try_send(&self, slot: *mut ()) -> Attempt {
        if slot.is_null() {
            return self.poll_ready(true);
        }
        let slot = slot.cast::<Option<T>>();
        // SAFETY: select passes a slot of this channel's type that lives in
        // its caller's frame, which is running this very call.
        let v = unsafe { (*slot).take() }.expect("a send case holds its value");
        match Chan::try_send(self, v) {
            Ok(()) => Attempt::Done,
            Err(TrySendError::Full(v)) => {
                // SAFETY: as above.
                unsafe { *slot = Some(v) };
                Attempt::NotReady
            }
            Err(TrySendError::Disconnected(v)) => {
                // SAFETY: as above.
                unsafe { *slot = Some(v) };
                Attempt::Closed
            }
        }
    }

    fn try_recv(&self, slot: *mut ()) -> Attempt {
        if slot.is_null() {
            return self.poll_ready(false);
        }
        match Chan::try_recv(self) {
            Ok(v) => {
                // SAFETY: as in `try_send`.
                unsafe { *slot.cast::<Option<T>>() = Some(v) };
                Attempt::Done
            }
            Err(TryRecvError::Empty) => Attempt::NotReady,
            Err(TryRecvError::Disconnected) => Attempt::Closed,
        }
    }

    fn ready(&self, w: &Waiters, send: bool, me: *const Cx) -> bool {
        match (&self.flavour, send) {
            (Flavour::Zero(c), true) => c.send_ready(w, me),
            (Flavour::Zero(c), false) => c.recv_ready(w, me),
            (Flavour::Array(c), true) => c.send_ready(w, me),
            (Flavour::Array(c), false) => c.recv_ready(w, me),
            (Flavour::List(c), true) => c.send_ready(w, me),
            (Flavour::List(c), false) => c.recv_ready(w, me),
            (Flavour::Never, _) => false,
        }
    }

    fn stamp(&self) -> [u64; 3] {
        match &self.flavour {
            Flavour::Zero(c) => c.stamp(),
            Flavour::Array(c) => c.stamp(),
            Flavour::List(c) => c.stamp(),
            Flavour::Never => [0; 3],
        }
    }

    fn slot_full(&self, slot: *mut ()) -> bool {
        // SAFETY: a slot of this channel's type in the select's frame.
        unsafe { (*slot.cast::<Option<T>>()).is_some() }
    }
}

impl<T: Send> Chan<T> {
    /// Readiness of a dynamic `Select` case.
    fn poll_ready(&self, send: bool) -> Attempt {
        match self.wait_lock() {
            None => Attempt::NotReady,
            Some(wl) => {
                let w = wl.lock();
                if self.ready(&w, send, std::ptr::null()) {
                    Attempt::Done
                } else {
                    Attempt::NotReady
                }
            }
        }
    }
}

fn new_chan<T>(flavour: Flavour<T>) -> (Sender<T>, Receiver<T>) {
    let chan = Arc::new(Chan {
        flavour,
        senders: AtomicUsize::new(1),
        receivers: AtomicUsize::new(1),
    });
    (Sender { chan: chan.clone() }, Receiver { chan })
}

/// A channel with room for `cap` values; `bounded(0)` is unbuffered: a
/// send waits for a receiver and hands the value over directly (Go's
/// `make(chan T)`).
///
/// ```
/// gort::run(|| {
///     let (tx, rx) = gort::chan::bounded(2);
///     tx.send('a').unwrap();
///     tx.send('b').unwrap();
///     assert!(tx.try_send('c').is_err()); // full
///     assert_eq!(rx.recv(), Ok('a'));
/// });
/// ```
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    if cap == 0 {
        new_chan(Flavour::Zero(zero::Channel::new()))
    } else {
        new_chan(Flavour::Array(array::Channel::with_capacity(cap)))
    }
}

/// A channel without a bound: a send never waits.
///
/// ```
/// let (tx, rx) = gort::chan::unbounded();
/// for i in 0..1000 {
///     tx.send(i).unwrap();
/// }
/// assert_eq!(rx.len(), 1000);
/// ```
pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    new_chan(Flavour::List(list::Channel::new()))
}

/// A receiver that never receives (Go's nil channel): `recv` blocks
/// forever, and in a select its case is never ready.
///
/// ```
/// use std::time::Duration;
/// let rx = gort::chan::never::<i32>();
/// assert!(rx.recv_timeout(Duration::from_millis(1)).is_err());
/// ```
pub fn never<T>() -> Receiver<T> {
    let chan = Arc::new(Chan {
        flavour: Flavour::Never,
        senders: AtomicUsize::new(0),
        receivers: AtomicUsize::new(1),
    });
    Receiver { chan }
}

/// The sending side of a channel. `Clone` adds a sender; the channel
/// closes when the last one is dropped.
///
/// ```
/// let (tx, rx) = gort::chan::unbounded();
/// let tx2 = tx.clone();
/// tx.send(1).unwrap();
/// tx2.send(2).unwrap();
/// drop((tx, tx2));
/// assert_eq!(rx.iter().collect::<Vec<_>>(), [1, 2]);
/// ```
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
}

/// The receiving side of a channel. `Clone` adds a receiver (each value
/// goes to exactly one of them).
///
/// ```
/// let (tx, rx) = gort::chan::bounded(4);
/// tx.send("hi").unwrap();
/// assert_eq!(rx.try_recv(), Ok("hi"));
/// ```
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
}

impl<T: Send> Sender<T> {
    /// Sends `v`, waiting for room (or, unbuffered, for a receiver). Fails
    /// with the value if the channel is or becomes closed.
    ///
    /// ```
    /// gort::run(|| {
    ///     let (tx, rx) = gort::chan::bounded(0);
    ///     let h = gort::go(move || rx.recv().unwrap());
    ///     tx.send(42).unwrap();
    ///     assert_eq!(h.join().unwrap(), 42);
    /// });
    /// ```
    #[track_caller]
    pub fn send(&self, v: T) -> Result<(), SendError<T>> {
        self.send_wait(v, Wait::Forever)
            .map_err(|e| SendError(e.into_inner()))
    }

    /// Sends `v` only if that needs no waiting.
    ///
    /// ```
    /// use gort::chan::TrySendError;
    /// let (tx, rx) = gort::chan::bounded(1);
    /// assert_eq!(tx.try_send(1), Ok(()));
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    /// rx.close();
    /// assert_eq!(tx.try_send(3), Err(TrySendError::Disconnected(3)));
    /// ```
    pub fn try_send(&self, v: T) -> Result<(), TrySendError<T>> {
        self.chan.try_send(v)
    }

    /// As [`send`](Self::send), giving up after `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (tx, _rx) = gort::chan::bounded(0);
    /// assert!(tx.send_timeout(1, Duration::from_millis(2)).unwrap_err().is_timeout());
    /// ```
    #[track_caller]
    pub fn send_timeout(&self, v: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.send_wait(v, Wait::timeout(timeout))
    }

    /// As [`send`](Self::send), giving up at `deadline`.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (tx, _rx) = gort::chan::bounded(0);
    /// let at = Instant::now() + Duration::from_millis(2);
    /// assert!(tx.send_deadline(1, at).is_err());
    /// ```
    #[track_caller]
    pub fn send_deadline(&self, v: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.send_wait(v, Wait::Until(deadline))
    }

    #[track_caller]
    fn send_wait(&self, v: T, wait: Wait) -> Result<(), SendTimeoutError<T>> {
        let v = match self.chan.try_send(v) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Disconnected(v)) => return Err(SendTimeoutError::Disconnected(v)),
            Err(TrySendError::Full(v)) => v,
        };
        let mut slot = Some(v);
        let case = Case {
            handle: &*self.chan,
            send: true,
            slot: (&mut slot as *mut Option<T>).cast(),
        };
        let r = select::run(
            std::slice::from_ref(&case),
            wait,
            WaitReason::ChanSend,
            true,
        );
        match r {
            Some((_, false)) => Ok(()),
            Some((_, true)) => Err(SendTimeoutError::Disconnected(
                slot.take().expect("an unsent value stays in its slot"),
            )),
            None => Err(SendTimeoutError::Timeout(
                slot.take().expect("an unsent value stays in its slot"),
            )),
        }
    }

    fn handle(&self) -> &dyn Handle {
        &*self.chan
    }
}

impl<T> Sender<T> {
    /// Closes the channel; true if this call closed it. Receivers drain
    /// what is buffered, then see it closed; sends fail.
    ///
    /// ```
    /// let (tx, rx) = gort::chan::bounded(2);
    /// tx.send(1).unwrap();
    /// assert!(tx.close());
    /// assert!(!tx.close());
    /// assert_eq!(rx.recv(), Ok(1));
    /// assert!(rx.recv().is_err());
    /// ```
    pub fn close(&self) -> bool {
        self.chan.close()
    }

    /// Whether the channel is closed.
    ///
    /// ```
    /// let (tx, rx) = gort::chan::bounded::<()>(1);
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.chan.is_closed()
    }

    /// Values buffered now.
    ///
    /// ```
    /// let (tx, _rx) = gort::chan::bounded(3);
    /// tx.send(0).unwrap();
    /// assert_eq!(tx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether nothing is buffered.
    ///
    /// ```
    /// let (tx, _rx) = gort::chan::bounded::<u8>(3);
    /// assert!(tx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer's size (`Some(0)` unbuffered, `None` unbounded).
    ///
    /// ```
    /// assert_eq!(gort::chan::bounded::<u8>(3).0.capacity(), Some(3));
    /// assert_eq!(gort::chan::unbounded::<u8>().0.capacity(), None);
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.chan.capacity()
    }

    /// Whether both are senders of the same channel.
    ///
    /// ```
    /// let (tx, _rx) = gort::chan::bounded::<u8>(1);
    /// assert!(tx.same_channel(&tx.clone()));
    /// ```
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }

    fn identity(&self) -> *const () {
        Arc::as_ptr(&self.chan).cast()
    }
}

impl<T: Send> Receiver<T> {
    /// Receives a value, waiting until one arrives. Fails once the
    /// channel is closed and drained.
    ///
    /// ```
    /// gort::run(|| {
    ///     let (tx, rx) = gort::chan::bounded(0);
    ///     gort::go(move || tx.send("ping").unwrap());
    ///     assert_eq!(rx.recv(), Ok("ping"));
    /// });
    /// ```
    #[track_caller]
    pub fn recv(&self) -> Result<T, RecvError> {
        self.recv_wait(Wait::Forever).map_err(|_| RecvError)
    }

    /// Receives a value only if one is there now.
    ///
    /// ```
    /// use gort::chan::TryRecvError;
    /// let (tx, rx) = gort::chan::bounded(1);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(5).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(5));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.chan.try_recv()
    }

    /// As [`recv`](Self::recv), giving up after `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (_tx, rx) = gort::chan::bounded::<i32>(0);
    /// assert!(rx.recv_timeout(Duration::from_millis(2)).unwrap_err().is_timeout());
    /// ```
    #[track_caller]
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_wait(Wait::timeout(timeout))
    }

    /// As [`recv`](Self::recv), giving up at `deadline`.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let (_tx, rx) = gort::chan::bounded::<i32>(0);
    /// assert!(rx.recv_deadline(Instant::now() + Duration::from_millis(2)).is_err());
    /// ```
    #[track_caller]
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.recv_wait(Wait::Until(deadline))
    }

    #[track_caller]
    fn recv_wait(&self, wait: Wait) -> Result<T, RecvTimeoutError> {
        match self.chan.try_recv() {
            Ok(v) => return Ok(v),
            Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
            Err(TryRecvError::Empty) => {}
        }
        let mut slot: Option<T> = None;
        let case = Case {
            handle: &*self.chan,
            send: false,
            slot: (&mut slot as *mut Option<T>).cast(),
        };
        let reason = match self.chan.flavour {
            Flavour::Never => WaitReason::SelectNoCases,
            _ => WaitReason::ChanReceive,
        };
        match select::run(std::slice::from_ref(&case), wait, reason, true) {
            Some((_, false)) => Ok(slot.take().expect("a received value is in the slot")),
            Some((_, true)) => Err(RecvTimeoutError::Disconnected),
            None => Err(RecvTimeoutError::Timeout),
        }
    }

    /// A blocking iterator over received values; ends when the channel is
    /// closed and drained (Go's `for v := range ch`).
    ///
    /// ```
    /// let (tx, rx) = gort::chan::unbounded();
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// drop(tx);
    /// assert_eq!(rx.iter().sum::<i32>(), 3);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the values available now, without waiting.
    ///
    /// ```
    /// let (tx, rx) = gort::chan::unbounded();
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.try_iter().count(), 2);
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }

    fn handle(&self) -> &dyn Handle {
        &*self.chan
    }
}

impl<T> Receiver<T> {
    /// Closes the channel from the receiving side; true if this call
    /// closed it. Buffered values can still be received.
    ///
    /// ```
    /// let (tx, rx) = gort::chan::bounded(1);
    /// assert!(rx.close());
    /// assert!(tx.send(1).is_err());
    /// ```
    pub fn close(&self) -> bool {
        self.chan.close()
    }

    /// Whether the channel is closed (values may still be buffered).
    ///
    /// ```
    /// let (tx, rx) = gort::chan::bounded::<()>(1);
    /// drop(tx);
    /// assert!(rx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.chan.is_closed()
    }

    /// Values buffered now.
    ///
    /// ```
    /// let (tx, rx) = gort::chan::unbounded();
    /// tx.send(()).unwrap();
    /// assert_eq!(rx.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.chan.len()
    }

    /// Whether nothing is buffered.
    ///
    /// ```
    /// let (_tx, rx) = gort::chan::unbounded::<()>();
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer's size (`Some(0)` unbuffered, `None` unbounded).
    ///
    /// ```
    /// assert_eq!(gort::chan::bounded::<u8>(0).1.capacity(), Some(0));
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.chan.capacity()
    }

    /// Whether both are receivers of the same channel.
    ///
    /// ```
    /// let (_tx, rx) = gort::chan::bounded::<u8>(1);
    /// assert!(rx.same_channel(&rx.clone()));
    /// ```
    pub fn same_channel(&self, other: &Receiver<T>) -> bool {
        Arc::ptr_eq(&self.chan, &other.chan)
    }

    fn identity(&self) -> *const () {
        Arc::as_ptr(&self.chan).cast()
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.chan.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.chan.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.chan.close();
        }
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.chan.receivers.fetch_add(1, Ordering::Relaxed);
        Receiver {
            chan: self.chan.clone(),
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if self.chan.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.chan.close();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Blocking iterator returned by [`Receiver::iter`].
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T: Send> Iterator for Iter<'_, T> {
    type Item = T;
    #[track_caller]
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// Non-blocking iterator returned by [`Receiver::try_iter`].
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T: Send> Iterator for TryIter<'_, T> {
    type Item = T;
    #[track_caller]
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// Owning blocking iterator (`for v in rx`).
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T: Send> Iterator for IntoIter<T> {
    type Item = T;
    #[track_caller]
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<'a, T: Send> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T: Send> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

/// Support for the `select!` macro; not a public interface.
#[doc(hidden)]
pub mod __private {
    pub use super::select::{Case, Wait};
    use super::{Receiver, RecvError, SendError, Sender};
    use crate::runtime::g::WaitReason;
    use std::time::Duration;

    /// What `recv(..)` accepts: a receiver or a reference to one.
    pub trait AsReceiver {
        type Item;
        fn as_receiver(&self) -> &Receiver<Self::Item>;
    }
    impl<T> AsReceiver for Receiver<T> {
        type Item = T;
        fn as_receiver(&self) -> &Receiver<T> {
            self
        }
    }
    impl<T> AsReceiver for &Receiver<T> {
        type Item = T;
        fn as_receiver(&self) -> &Receiver<T> {
            self
        }
    }

    /// What `send(..)` accepts: a sender or a reference to one.
    pub trait AsSender {
        type Item;
        fn as_sender(&self) -> &Sender<Self::Item>;
    }
    impl<T> AsSender for Sender<T> {
        type Item = T;
        fn as_sender(&self) -> &Sender<T> {
            self
        }
    }
    impl<T> AsSender for &Sender<T> {
        type Item = T;
        fn as_sender(&self) -> &Sender<T> {
            self
        }
    }

    pub fn recv_slot<R: AsReceiver>(_: &R) -> Option<R::Item> {
        None
    }

    pub fn send_slot<S: AsSender>(_: &S, v: S::Item) -> Option<S::Item> {
        Some(v)
    }

    pub fn recv_case<R: AsReceiver>(r: &R, slot: *mut Option<R::Item>) -> Case<'_>
    where
        R::Item: Send,
    {
        Case {
            handle: r.as_receiver().handle(),
            send: false,
            slot: slot.cast(),
        }
    }

    pub fn send_case<S: AsSender>(s: &S, slot: *mut Option<S::Item>) -> Case<'_>
    where
        S::Item: Send,
    {
        Case {
            handle: s.as_sender().handle(),
            send: true,
            slot: slot.cast(),
        }
    }

    pub fn recv_result<T>(closed: bool, slot: &mut Option<T>) -> Result<T, RecvError> {
        match slot.take() {
            Some(v) if !closed => Ok(v),
            _ => Err(RecvError),
        }
    }

    pub fn send_result<T>(closed: bool, slot: &mut Option<T>) -> Result<(), SendError<T>> {
        match (closed, slot.take()) {
            (true, Some(v)) => Err(SendError(v)),
            _ => Ok(()),
        }
    }

    pub fn forever() -> Wait {
        Wait::Forever
    }
    pub fn now() -> Wait {
        Wait::Never
    }
    pub fn timeout(d: Duration) -> Wait {
        Wait::timeout(d)
    }

    #[track_caller]
    pub fn run(cases: &[Case<'_>], wait: Wait) -> Option<(usize, bool)> {
        let reason = if cases.is_empty() {
            WaitReason::SelectNoCases
        } else {
            WaitReason::Select
        };
        super::select::run(cases, wait, reason, false)
    }
}

#[cfg(all(test, loom))]
mod loom_models;
