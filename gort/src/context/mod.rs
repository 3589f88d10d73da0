//! Contexts: cancellation and deadlines that flow down a tree of work
//! (Go's `context` package, without values).
//!
//! A context is a node with a `done` channel that is closed when the node
//! is cancelled, so a goroutine waits for cancellation with `recv` or in
//! `select!` next to its real work. Each cancellable node keeps its live
//! children; cancelling a node records its error (first error wins),
//! closes its channel, cancels every child with the same error, stops its
//! deadline timer and unlinks itself from its parent, so a long-lived
//! parent does not accumulate dead children. A child created under an
//! already cancelled parent starts cancelled. Deadlines are timers
//! (`time::after_func`) that cancel with `DeadlineExceeded`; a child's
//! deadline is never later than its parent's.
//!
//! ```
//! use std::time::Duration;
//! use gort::context::{self, ContextError};
//! gort::run(|| {
//!     let (ctx, cancel) = context::background().with_cancel();
//!     let (child, _c) = ctx.with_timeout(Duration::from_secs(60));
//!     let h = gort::go(move || {
//!         child.done().recv().unwrap_err(); // parks until cancelled
//!         child.err()
//!     });
//!     cancel.cancel();
//!     assert_eq!(h.join().unwrap(), Some(ContextError::Canceled));
//! });
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::chan::{self, Receiver, Sender};
use crate::runtime::lock::Lock;
use crate::time::{after_func, FuncTimer};

/// Why a context was cancelled.
///
/// ```
/// use gort::context::{background, ContextError};
/// let (ctx, cancel) = background().with_cancel();
/// drop(cancel);
/// assert_eq!(ctx.err(), Some(ContextError::Canceled));
/// assert_eq!(ContextError::Canceled.to_string(), "context canceled");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContextError {
    /// Cancelled by a `CancelFn` (its own or an ancestor's).
    Canceled,
    /// Its deadline (or an ancestor's) passed.
    DeadlineExceeded,
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContextError::Canceled => "context canceled",
            ContextError::DeadlineExceeded => "context deadline exceeded",
        })
    }
}

impl std::error::Error for ContextError {}

struct Node {
    id: u64,
    done: Receiver<()>,
    /// Closing it cancels; `None` for the background context.
    closer: Option<Sender<()>>,
    err: OnceLock<ContextError>,
    deadline: Option<Instant>,
    parent: Option<Arc<Node>>,
    children: Lock<HashMap<u64, Arc<Node>>>,
    timer: Lock<Option<FuncTimer>>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Node {
    /// Cancels this node and every descendant with `err` (first error
    /// wins); `unlink` removes it from its parent. Iterative, so a deep
    /// chain of contexts cannot overflow the caller's stack.
    fn cancel(self: &Arc<Self>, err: ContextError, unlink: bool) {
        if !self.cancel_one(err) {
            return;
        }
        if unlink {
            if let Some(p) = &self.parent {
                p.children.lock().remove(&self.id);
            }
        }
        let mut work: Vec<Arc<Node>> = self.take_children();
        while let Some(n) = work.pop() {
            if n.cancel_one(err) {
                work.extend(n.take_children());
            }
        }
    }

    /// Records `err`, closes `done` and stops the deadline timer; false if
    /// the node was already cancelled. Its children are taken only after
    /// the error is set, so a child linking concurrently either sees the
    /// error or is in the list.
    fn cancel_one(&self, err: ContextError) -> bool {
        if self.err.set(err).is_err() {
            return false;
        }
        if let Some(c) = &self.closer {
            c.close();
        }
        if let Some(t) = self.timer.lock().take() {
            t.stop();
        }
        true
    }

    fn take_children(&self) -> Vec<Arc<Node>> {
        std::mem::take(&mut *self.children.lock())
            .into_values()
            .collect()
    }
}

/// A cancellation scope. `Clone` shares it.
///
/// ```
/// let ctx = gort::context::background();
/// assert!(ctx.err().is_none());
/// assert!(ctx.deadline().is_none());
/// ```
#[derive(Clone)]
pub struct Context {
    node: Arc<Node>,
}

/// Cancels its context: by [`cancel`](Self::cancel), or when dropped, so a
/// forgotten cancel cannot leak the context.
///
/// ```
/// let (ctx, cancel) = gort::context::background().with_cancel();
/// cancel.cancel();
/// assert!(ctx.done().recv().is_err()); // closed
/// ```
pub struct CancelFn {
    node: Arc<Node>,
}

/// The root context: never cancelled, no deadline (Go's
/// `context.Background()`).
///
/// ```
/// use std::time::Duration;
/// let bg = gort::context::background();
/// assert!(bg.done().recv_timeout(Duration::from_millis(1)).is_err());
/// ```
pub fn background() -> Context {
    static BACKGROUND: OnceLock<Context> = OnceLock::new();
    BACKGROUND
        .get_or_init(|| Context {
            node: Arc::new(Node {
                id: 0,
                done: chan::never(),
                closer: None,
                err: OnceLock::new(),
                deadline: None,
                parent: None,
                children: Lock::new(HashMap::new()),
                timer: Lock::new(None),
            }),
        })
        .clone()
}

impl Context {
    fn child(&self, deadline: Option<Instant>) -> (Context, CancelFn) {
        let (tx, rx) = chan::bounded(0);
        let parent = &self.node;
        let node = Arc::new(Node {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            done: rx,
            closer: Some(tx),
            err: OnceLock::new(),
            deadline,
            parent: parent.closer.is_some().then(|| parent.clone()),
            children: Lock::new(HashMap::new()),
            timer: Lock::new(None),
        });
        if parent.closer.is_some() {
            let mut kids = parent.children.lock();
            match parent.err.get() {
                Some(&err) => {
                    drop(kids);
                    node.cancel(err, false);
                }
                None => {
                    kids.insert(node.id, node.clone());
                }
            }
        }
        (Context { node: node.clone() }, CancelFn { node })
    }

    /// A child context cancelled by the returned [`CancelFn`] or with its
    /// parent.
    ///
    /// ```
    /// use gort::context::{background, ContextError};
    /// let (parent, cancel_parent) = background().with_cancel();
    /// let (child, _cancel_child) = parent.with_cancel();
    /// cancel_parent.cancel();
    /// assert_eq!(child.err(), Some(ContextError::Canceled));
    /// ```
    pub fn with_cancel(&self) -> (Context, CancelFn) {
        self.child(self.node.deadline)
    }

    /// A child context that is also cancelled `d` from now, with
    /// [`ContextError::DeadlineExceeded`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use gort::context::{background, ContextError};
    /// gort::run(|| {
    ///     let (ctx, _cancel) = background().with_timeout(Duration::from_millis(2));
    ///     assert!(ctx.done().recv().is_err());
    ///     assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
    /// });
    /// ```
    pub fn with_timeout(&self, d: Duration) -> (Context, CancelFn) {
        match Instant::now().checked_add(d) {
            Some(at) => self.with_deadline(at),
            None => self.with_cancel(),
        }
    }

    /// A child context that is also cancelled at `at` (or at the parent's
    /// deadline, if that is earlier).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use gort::context::background;
    /// let at = Instant::now() + Duration::from_secs(60);
    /// let (ctx, _cancel) = background().with_deadline(at);
    /// assert_eq!(ctx.deadline(), Some(at));
    /// let (inner, _c) = ctx.with_deadline(at + Duration::from_secs(60));
    /// assert_eq!(inner.deadline(), Some(at)); // never later than the parent's
    /// ```
    pub fn with_deadline(&self, at: Instant) -> (Context, CancelFn) {
        if self.node.deadline.is_some_and(|p| p <= at) {
            // The parent's earlier deadline cancels this child too.
            return self.with_cancel();
        }
        let (ctx, cancel) = self.child(Some(at));
        let now = Instant::now();
        if at <= now {
            ctx.node.cancel(ContextError::DeadlineExceeded, true);
        } else {
            let weak: Weak<Node> = Arc::downgrade(&ctx.node);
            let t = after_func(at - now, move || {
                if let Some(n) = weak.upgrade() {
                    n.cancel(ContextError::DeadlineExceeded, true);
                }
            });
            let mut slot = ctx.node.timer.lock();
            if ctx.node.err.get().is_some() {
                t.stop();
            } else {
                *slot = Some(t);
            }
        }
        (ctx, cancel)
    }

    /// A receiver that is closed when the context is cancelled: `recv`
    /// returns `Err` then, and in `select!` its case becomes ready. The
    /// background context's never is.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gort::context::background;
    /// gort::run(|| {
    ///     let (ctx, cancel) = background().with_cancel();
    ///     let (_tx, work) = gort::chan::bounded::<u32>(0);
    ///     gort::go(move || cancel.cancel());
    ///     let why = gort::select! {
    ///         recv(work) -> _ => "work",
    ///         recv(ctx.done()) -> _ => "cancelled",
    ///     };
    ///     assert_eq!(why, "cancelled");
    /// });
    /// ```
    pub fn done(&self) -> &Receiver<()> {
        &self.node.done
    }

    /// `None` while the context is live; afterwards why it was cancelled.
    ///
    /// ```
    /// use gort::context::{background, ContextError};
    /// let (ctx, cancel) = background().with_cancel();
    /// assert_eq!(ctx.err(), None);
    /// cancel.cancel();
    /// assert_eq!(ctx.err(), Some(ContextError::Canceled));
    /// ```
    pub fn err(&self) -> Option<ContextError> {
        self.node.err.get().copied()
    }

    /// When the context will be cancelled by a deadline, if it has one.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (ctx, _c) = gort::context::background().with_timeout(Duration::from_secs(5));
    /// assert!(ctx.deadline().is_some());
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.node.deadline
    }

    /// Live child contexts linked to this one (for tests and diagnostics:
    /// cancelled children unlink themselves).
    ///
    /// ```
    /// let (ctx, _c) = gort::context::background().with_cancel();
    /// let (_child, cancel) = ctx.with_cancel();
    /// assert_eq!(ctx.children(), 1);
    /// drop(cancel);
    /// assert_eq!(ctx.children(), 0);
    /// ```
    pub fn children(&self) -> usize {
        self.node.children.lock().len()
    }
}

impl CancelFn {
    /// Cancels the context (and all derived from it) with
    /// [`ContextError::Canceled`]; later calls do nothing.
    ///
    /// ```
    /// let (ctx, cancel) = gort::context::background().with_cancel();
    /// cancel.cancel();
    /// cancel.cancel();
    /// assert!(ctx.err().is_some());
    /// ```
    pub fn cancel(&self) {
        self.node.cancel(ContextError::Canceled, true);
    }
}

impl Drop for CancelFn {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("err", &self.err())
            .field("deadline", &self.deadline())
            .finish()
    }
}

impl fmt::Debug for CancelFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelFn").finish_non_exhaustive()
    }
}
