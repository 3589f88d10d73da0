//! The shared reaper: ONE thread per process, started on first need, that
//! collects the exit status of children no goroutine is parked on a pidfd
//! for. It serves two cases:
//!
//! - a `Child` dropped while its process still runs (the zombie policy:
//!   the process keeps running, as with std and Go, and is reaped here when
//!   it exits, so it never stays a zombie);
//! - `wait` where the kernel has no pidfds (before Linux 5.3, or a seccomp
//!   filter refusing `pidfd_open`): the waiter registers a channel and
//!   parks on it; the reaper sends the status.
//!
//! The thread blocks in `poll(2)` on a wake-up socket plus the pidfd of
//! each watched child that has one; a child without a pidfd is polled with
//! `waitpid(WNOHANG)` on a timeout backing off from 1 ms to 50 ms.
//!
//! No lost wake-up (DESIGN.md rule 1): a watch is pushed under the list's
//! lock and then a byte is written to the wake-up socket. The thread builds
//! its poll set under the same lock and polls after unlocking: a watch
//! pushed after that snapshot has made the socket readable (level
//! triggered), so the poll returns at once; one pushed before is in the
//! snapshot. A pidfd is level triggered too, so a child that exited before
//! the poll makes it return. A goroutine waiting for a status parks on a
//! gort channel, whose own protocol keeps its wake-up. Reaping happens
//! under the list's lock, and so does `kill` of a watched child
//! ([`kill`]), so a signal never reaches a pid the reaper has already
//! freed for reuse.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::ExitStatus;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::chan;

/// Where a watched child's status goes: nowhere (a dropped child), or a
/// waiting `Child`.
pub(super) type Notify = Option<chan::Sender<io::Result<ExitStatus>>>;

struct Watch {
    pid: libc::pid_t,
    pidfd: Option<OwnedFd>,
    notify: Notify,
}

struct Reaper {
    state: Mutex<State>,
    /// Written to wake the thread; the thread reads the other end.
    wake: UnixStream,
    wake_rx: UnixStream,
}

struct State {
    watches: Vec<Watch>,
    started: bool,
}

static REAPER: OnceLock<io::Result<Reaper>> = OnceLock::new();

fn reaper() -> io::Result<&'static Reaper> {
    let r = REAPER.get_or_init(|| {
        let (wake, wake_rx) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        Ok(Reaper {
            state: Mutex::new(State {
                watches: Vec::new(),
                started: false,
            }),
            wake,
            wake_rx,
        })
    });
    r.as_ref()
        .map_err(|e| io::Error::new(e.kind(), format!("gort: reaper setup failed: {e}")))
}

fn lock(r: &Reaper) -> MutexGuard<'_, State> {
    // The lock guards a list; a panic elsewhere leaves it consistent.
    r.state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Hands `pid` (an unreaped child of this process) to the reaper thread,
/// starting it if needed. The watch is kept even if the thread cannot
/// start now (the next watch retries), but the error comes back.
pub(super) fn watch(pid: libc::pid_t, pidfd: Option<OwnedFd>, notify: Notify) -> io::Result<()> {
    let r = reaper()?;
    let mut st = lock(r);
    st.watches.push(Watch { pid, pidfd, notify });
    if !st.started {
        std::thread::Builder::new()
            .name("gort-reaper".into())
            .spawn(move || run(r))
            .map_err(|e| io::Error::new(e.kind(), format!("gort: reaper thread refused: {e}")))?;
        st.started = true;
    }
    drop(st);
    // Full means a wake-up is pending already.
    let _ = (&r.wake).write(&[1]);
    Ok(())
}

/// Sends SIGKILL to a watched child while holding the list's lock (so the
/// reaper cannot free the pid meanwhile); `None` if `pid` is not watched
/// (it was reaped and its status sent, or never watched).
pub(super) fn kill(pid: libc::pid_t) -> Option<io::Result<()>> {
    let r = reaper().ok()?;
    let st = lock(r);
    st.watches.iter().any(|w| w.pid == pid).then(|| {
        // SAFETY: kill(2) takes plain integers; `pid` is our unreaped child
        // (still in the list, and only the list's holder reaps it).
        if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    })
}

fn run(r: &'static Reaper) {
    let mut backoff = Duration::from_millis(1);
    let mut fds: Vec<libc::pollfd> = Vec::new();
    loop {
        let timeout = {
            let st = lock(r);
            fds.clear();
            fds.push(pollfd(r.wake_rx.as_raw_fd()));
            let mut polling = false;
            for w in &st.watches {
                match &w.pidfd {
                    Some(fd) => fds.push(pollfd(fd.as_raw_fd())),
                    None => polling = true,
                }
            }
            if polling {
                backoff.as_millis() as libc::c_int
            } else {
                -1
            }
        };
        // SAFETY: `fds` is a live, initialised array of `fds.len()`
        // pollfds; poll(2) writes only their `revents`. The pidfds stay
        // open meanwhile: only this thread removes (and closes) watches.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            std::thread::sleep(backoff); // cannot happen with valid fds; do not spin
        }
        if fds[0].revents != 0 {
            let mut buf = [0u8; 64];
            while matches!((&r.wake_rx).read(&mut buf), Ok(1..)) {}
            backoff = Duration::from_millis(1); // something new: look soon
        } else {
            backoff = (backoff * 2).min(Duration::from_millis(50));
        }
        let mut st = lock(r);
        st.watches.retain_mut(|w| {
            let done = match super::reap(w.pid) {
                Ok(None) => return true,
                Ok(Some(status)) => Ok(status),
                Err(e) => Err(e), // ECHILD: reaped by someone else (SIGCHLD ignored?)
            };
            if let Some(tx) = w.notify.take() {
                let _ = tx.send(done); // the waiter may be gone: nothing to tell
            }
            false
        });
    }
}

fn pollfd(fd: libc::c_int) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}
