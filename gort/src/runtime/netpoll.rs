//! The netpoller: readiness of sockets, and the goroutines waiting for it
//! (Go's runtime/netpoll.go and netpoll_epoll.go).
//!
//! Each runtime has one epoll instance (through mio), created on first use.
//! A socket is registered once, edge-triggered for reading and writing,
//! with a *poll descriptor* ([`PollDesc`], `polldesc.rs`) that records per
//! direction whether readiness arrived and at most one parked waiter. An
//! I/O call tries the system call first; on `EAGAIN` it waits on the
//! descriptor, which the poller marks ready and whose waiter it wakes (the
//! descriptor's state machine, and its loom models, are in `polldesc.rs`).
//!
//! Descriptors are type-stable (never freed, recycled through a free
//! list), so an epoll token can be the descriptor's address, tagged in its
//! unused top 16 bits with a sequence number bumped on every reuse: an
//! event collected for a socket that has since closed finds a different
//! sequence and is dropped (Go's `taggedPointer` with `fdseq`). Dispatching
//! an event takes no lock but the descriptor's own.
//!
//! Scheduler integration, as Go's: an M looking for work polls without
//! blocking before it steals (`m.rs`); when every P is idle, exactly one M
//! blocks in `epoll_wait` with the earliest timer as its timeout (it is then
//! the runtime's timer sleeper too) and is woken through a [`mio::Waker`]
//! when a nearer timer appears or the runtime shuts down; sysmon polls if
//! no one has for 10 ms.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use crate::loom::atomic::AtomicUsize;

use super::lock::Lock;
use super::park::Waiter;
pub(crate) use super::polldesc::Dir;
use super::polldesc::PollDesc;
use super::sched::Sched;
use super::timers;

/// The token of the runtime's waker.
const WAKE_TOKEN: Token = Token(usize::MAX);
/// Events taken per `epoll_wait`.
const EVENTS: usize = 256;

/// One runtime's epoll instance.
pub(crate) struct Netpoll {
    state: Lock<PollState>,
    registry: mio::Registry,
    waker: mio::Waker,
    /// Waiters recorded in descriptors of this runtime.
    waiters: AtomicUsize,
    /// A thread is blocked in `epoll_wait`.
    blocked: AtomicBool,
    /// Events are being delivered: their waiters are off the descriptors
    /// (`waiters` no longer counts them) but not yet readied. Deadlock
    /// detection must not take that moment for "nobody waits on I/O".
    delivering: AtomicUsize,
    /// When someone last polled (timers::now() nanoseconds).
    last_poll: AtomicU64,
}

struct PollState {
    poll: Poll,
    events: Events,
    woken: Vec<Waiter>,
}

impl Netpoll {
    fn new() -> io::Result<Netpoll> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = mio::Waker::new(&registry, WAKE_TOKEN)?;
        Ok(Netpoll {
            state: Lock::new(PollState {
                poll,
                events: Events::with_capacity(EVENTS),
                woken: Vec::with_capacity(EVENTS),
            }),
            registry,
            waker,
            waiters: AtomicUsize::new(0),
            blocked: AtomicBool::new(false),
            delivering: AtomicUsize::new(0),
            last_poll: AtomicU64::new(timers::now()),
        })
    }

    /// Whether any goroutine or thread waits on a descriptor.
    pub(crate) fn has_waiters(&self) -> bool {
        self.waiters.load(Ordering::SeqCst) > 0
    }

    /// Waiters registered, or being readied by a poll right now.
    pub(crate) fn may_wake(&self) -> bool {
        self.has_waiters() || self.delivering.load(Ordering::SeqCst) > 0
    }

    /// Whether a thread is blocked in `epoll_wait` now.
    pub(crate) fn is_blocked(&self) -> bool {
        self.blocked.load(Ordering::SeqCst)
    }

    /// Nanoseconds (timers::now) of the last poll.
    pub(crate) fn last_poll(&self) -> u64 {
        self.last_poll.load(Ordering::Relaxed)
    }

    /// Interrupts a blocked `epoll_wait`.
    pub(crate) fn wake(&self) {
        if let Err(e) = self.waker.wake() {
            // An eventfd write fails only if the counter would overflow,
            // in which case the poller is awake anyway.
            debug_assert!(false, "gort: netpoll waker failed: {e}");
        }
    }

    /// Polls without blocking and wakes the waiters whose sockets are
    /// ready; returns how many were woken. Skips if another thread polls.
    pub(crate) fn poll_now(&self) -> usize {
        if !self.has_waiters() {
            return 0;
        }
        match self.state.try_lock() {
            Some(mut st) => self.poll_locked(&mut st, Some(Duration::ZERO)),
            None => 0,
        }
    }

    /// Blocks in `epoll_wait` until an event, the waker or `timeout`;
    /// wakes the waiters of ready sockets. Returns `None` without
    /// blocking if another thread is already the blocked poller.
    pub(crate) fn poll_blocking(&self, timeout: Option<Duration>) -> Option<usize> {
        if self.blocked.swap(true, Ordering::SeqCst) {
            return None;
        }
        let n = self
            .state
            .try_lock()
            .map(|mut st| self.poll_locked(&mut st, timeout));
        self.blocked.store(false, Ordering::SeqCst);
        n
    }

    fn poll_locked(&self, st: &mut PollState, timeout: Option<Duration>) -> usize {
        let PollState {
            poll,
            events,
            woken,
        } = st;
        if let Err(e) = poll.poll(events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                eprintln!("gort: epoll_wait failed: {e}");
            }
            return 0;
        }
        self.last_poll.store(timers::now(), Ordering::Relaxed);
        if events.is_empty() {
            return 0;
        }
        // Before any waiter leaves a descriptor, until all are readied.
        self.delivering.fetch_add(1, Ordering::SeqCst);
        for ev in events.iter() {
            if ev.token() == WAKE_TOKEN {
                continue;
            }
            let (desc, tag) = untoken(ev.token());
            let read = ev.is_readable() || ev.is_read_closed() || ev.is_error();
            let write = ev.is_writable() || ev.is_write_closed() || ev.is_error();
            desc.notify(tag, read, write, &self.waiters, woken);
        }
        let n = woken.len();
        for w in woken.drain(..) {
            // Queued behind the others: a batch of readied goroutines must
            // not each kick the previous one out of `runnext`.
            w.wake_fifo();
        }
        self.delivering.fetch_sub(1, Ordering::SeqCst);
        n
    }
}

/// The netpoller of `sched`, created on first use.
pub(crate) fn get(sched: &Sched) -> io::Result<&Netpoll> {
    if let Some(np) = sched.netpoll.get() {
        return Ok(np);
    }
    let np = Netpoll::new()?;
    Ok(sched.netpoll.get_or_init(|| np))
}

/// Descriptors not in use (all of them leaked, never freed).
static FREE: Lock<Vec<&'static PollDesc>> = Lock::new(Vec::new());

/// Bits of a token holding the descriptor's address (user-space addresses
/// on x86_64 and aarch64 Linux fit in 48 bits); the top 16 hold the tag.
const ADDR_BITS: u32 = 48;

fn token(desc: &'static PollDesc, seq: u32) -> Token {
    let addr = desc as *const PollDesc as usize;
    debug_assert_eq!(addr >> ADDR_BITS, 0, "a user-space address fits in 48 bits");
    Token(addr | ((seq as u16 as usize) << ADDR_BITS))
}

fn untoken(t: Token) -> (&'static PollDesc, u16) {
    let addr = t.0 & ((1 << ADDR_BITS) - 1);
    // SAFETY: every token but the waker's (skipped by the caller) was made
    // by `token` from a leaked, never-freed descriptor, so the address is
    // valid for ever, however stale the event.
    let desc = unsafe { &*(addr as *const PollDesc) };
    (desc, (t.0 >> ADDR_BITS) as u16)
}

/// A socket registered with its runtime's netpoller; deregisters on drop.
pub(crate) struct Registration {
    desc: &'static PollDesc,
    seq: u32,
    fd: RawFd,
    sched: Arc<Sched>,
}

impl Registration {
    /// Registers `fd` (already non-blocking) with the netpoller of the
    /// current goroutine's runtime (the default runtime on a plain thread).
    pub(crate) fn new(fd: RawFd) -> io::Result<Registration> {
        let sched = super::current_sched().arc();
        let np = get(&sched)?;
        let free = FREE.lock().pop();
        let desc = free.unwrap_or_else(|| Box::leak(Box::new(PollDesc::new())));
        let seq = desc.reuse();
        if let Err(e) = np.registry.register(
            &mut SourceFd(&fd),
            token(desc, seq),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            release(desc);
            return Err(e);
        }
        Ok(Registration {
            desc,
            seq,
            fd,
            sched,
        })
    }

    /// The registered file descriptor.
    pub(crate) fn fd(&self) -> RawFd {
        self.fd
    }

    /// Runs `op` (a non-blocking system call) until it does not fail with
    /// `WouldBlock`, waiting for readiness in between; gives up at
    /// `deadline` with a `WouldBlock` error saying it timed out (std's
    /// kind for a socket timeout on Unix).
    #[track_caller]
    pub(crate) fn io<R>(
        &self,
        dir: Dir,
        deadline: Option<Instant>,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        loop {
            match op() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
            if !self.wait(dir, deadline) {
                return Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    match dir {
                        Dir::Read => "gort: read timed out",
                        Dir::Write => "gort: write timed out",
                    },
                ));
            }
        }
    }

    /// Waits until the socket may be ready for `dir`; false if `deadline`
    /// passed first.
    #[track_caller]
    pub(crate) fn wait(&self, dir: Dir, deadline: Option<Instant>) -> bool {
        let sched: &Sched = &self.sched;
        let np = get(sched).expect("registered, so the netpoller exists");
        // A waiter that is not one of this runtime's goroutines (a plain
        // thread, or a goroutine of another runtime using a socket
        // registered here) has no M of this runtime looking for work on its
        // behalf, so it must make sure one polls.
        let foreign = |me: &Waiter| match me {
            Waiter::Thread { .. } => true,
            Waiter::G { g, .. } => !std::ptr::eq(g.sched(), sched),
        };
        self.desc
            .wait(self.seq, dir, deadline, &np.waiters, foreign, || {
                np_kick(sched, np)
            })
    }
}

/// Makes sure some thread of this runtime will poll for a waiter from
/// outside it: an idle P gets a spinning M, which ends up as the blocked
/// poller.
fn np_kick(sched: &Sched, np: &Netpoll) {
    if !np.is_blocked() {
        sched.wakep();
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(np) = self.sched.netpoll.get() {
            // Fails only if the fd was closed already; the descriptor is
            // retired by its sequence number either way.
            let _ = np.registry.deregister(&mut SourceFd(&self.fd));
        }
        release(self.desc);
    }
}

/// Retires a descriptor: bump its sequence (late events are dropped) and
/// return it to the free list.
fn release(desc: &'static PollDesc) {
    desc.retire();
    FREE.lock().push(desc);
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("fd", &self.fd)
            .field("desc", &(self.desc as *const PollDesc))
            .finish()
    }
}
