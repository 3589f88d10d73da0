//! A socket registered with the netpoller (Go's `internal/poll.FD`).
//!
//! Every gort socket wraps a std socket in non-blocking mode plus its
//! netpoller registration. An operation first makes the system call; only
//! if it would block does the caller wait for readiness. Waiting readers
//! (and writers) are serialised by a gort mutex per direction, because a
//! poll descriptor holds one parked waiter per direction; the call that
//! succeeds at once takes no lock. Timeouts are per socket, as std's, and
//! turn into a deadline per operation.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::runtime::netpoll::{Dir, Registration};
use crate::sync::Mutex;

/// No timeout.
const NONE: u64 = u64::MAX;

pub(crate) struct Fd<S: AsRawFd> {
    // Field order: the registration is dropped (deregistered) before the
    // socket closes.
    reg: Registration,
    io: S,
    readers: Mutex<()>,
    writers: Mutex<()>,
    read_timeout: AtomicU64,
    write_timeout: AtomicU64,
}

impl<S: AsRawFd> Fd<S> {
    /// Registers `io`, which the caller has made non-blocking.
    pub(crate) fn new(io: S) -> io::Result<Fd<S>> {
        Ok(Fd {
            reg: Registration::new(io.as_raw_fd())?,
            io,
            readers: Mutex::new(()),
            writers: Mutex::new(()),
            read_timeout: AtomicU64::new(NONE),
            write_timeout: AtomicU64::new(NONE),
        })
    }

    /// The std socket (non-blocking: calling it directly may fail with
    /// `WouldBlock`).
    pub(crate) fn get(&self) -> &S {
        &self.io
    }

    /// Runs a reading operation, waiting for readability as needed.
    #[track_caller]
    pub(crate) fn read<R>(&self, mut op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        self.run(Dir::Read, &mut op)
    }

    /// Runs a writing operation, waiting for writability as needed.
    #[track_caller]
    pub(crate) fn write<R>(&self, mut op: impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        self.run(Dir::Write, &mut op)
    }

    #[track_caller]
    fn run<R>(&self, dir: Dir, op: &mut impl FnMut(&S) -> io::Result<R>) -> io::Result<R> {
        crate::runtime::park::preempt_point();
        match op(&self.io) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            r => return r,
        }
        let deadline = match dir {
            Dir::Read => &self.read_timeout,
            Dir::Write => &self.write_timeout,
        }
        .load(Ordering::Relaxed);
        let deadline = (deadline != NONE).then(|| Instant::now() + Duration::from_nanos(deadline));
        let _serial = match dir {
            Dir::Read => self.readers.lock(),
            Dir::Write => self.writers.lock(),
        };
        self.reg.io(dir, deadline, || op(&self.io))
    }

    /// Waits until the socket is writable (a non-blocking connect
    /// finished); false if `deadline` passed first.
    #[track_caller]
    pub(crate) fn wait_writable(&self, deadline: Option<Instant>) -> bool {
        let _serial = self.writers.lock();
        self.reg.wait(Dir::Write, deadline)
    }

    pub(crate) fn set_timeout(&self, dir: Dir, d: Option<Duration>) -> io::Result<()> {
        let v = match d {
            Some(d) if d.is_zero() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "cannot set a 0 duration timeout",
                ))
            }
            Some(d) => u64::try_from(d.as_nanos()).unwrap_or(NONE - 1),
            None => NONE,
        };
        match dir {
            Dir::Read => &self.read_timeout,
            Dir::Write => &self.write_timeout,
        }
        .store(v, Ordering::Relaxed);
        Ok(())
    }

    /// A clone's socket registered, with this socket's timeouts (std's
    /// clones share them through the kernel; ours live here).
    pub(crate) fn clone_with(&self, io: S) -> io::Result<Fd<S>> {
        let fd = Fd::new(io)?;
        for t in [
            (&fd.read_timeout, &self.read_timeout),
            (&fd.write_timeout, &self.write_timeout),
        ] {
            t.0.store(t.1.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        Ok(fd)
    }

    pub(crate) fn timeout(&self, dir: Dir) -> Option<Duration> {
        let v = match dir {
            Dir::Read => &self.read_timeout,
            Dir::Write => &self.write_timeout,
        }
        .load(Ordering::Relaxed);
        (v != NONE).then(|| Duration::from_nanos(v))
    }
}

impl<S: AsRawFd> Fd<S> {
    /// The same registered socket as another type (same fd).
    pub(crate) fn map<T: AsRawFd>(self, f: impl FnOnce(S) -> T) -> Fd<T> {
        let io = f(self.io);
        debug_assert_eq!(io.as_raw_fd(), self.reg.fd());
        Fd {
            reg: self.reg,
            io,
            readers: self.readers,
            writers: self.writers,
            read_timeout: self.read_timeout,
            write_timeout: self.write_timeout,
        }
    }
}

impl<S: AsRawFd> Fd<S> {
    /// The descriptor back, deregistered from the netpoller.
    pub(crate) fn into_inner(self) -> S {
        let Fd { reg, io, .. } = self;
        drop(reg); // deregisters before `io` may be closed
        io
    }
}

impl<S: AsRawFd> AsRawFd for Fd<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

impl<S: AsRawFd + AsFd> AsFd for Fd<S> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.as_fd()
    }
}

/// Connects a new non-blocking socket to `addr`, waiting (until `deadline`)
/// for the connection to complete; returns it registered.
#[track_caller]
pub(crate) fn connect(
    domain: socket2::Domain,
    protocol: Option<socket2::Protocol>,
    addr: &socket2::SockAddr,
    deadline: Option<Instant>,
) -> io::Result<Fd<socket2::Socket>> {
    // A Unix socket whose listener's backlog is full fails with EAGAIN
    // here, which is returned as is (as Go does).
    let sock = socket2::Socket::new(
        domain,
        socket2::Type::STREAM.nonblocking().cloexec(),
        protocol,
    )?;
    let fd = Fd::new(sock)?;
    match fd.get().connect(addr) {
        Ok(()) => return Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    loop {
        if !fd.wait_writable(deadline) {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "gort: connection timed out",
            ));
        }
        if let Some(e) = fd.get().take_error()? {
            return Err(e);
        }
        match fd.get().peer_addr() {
            Ok(_) => return Ok(fd),
            // Not connected yet (a spurious wake-up): wait again.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => continue,
            Err(e) => return Err(e),
        }
    }
}
