//! Child processes for goroutines: `std::process`'s `Command` and `Child`,
//! with pipes and waits that park the goroutine instead of holding a
//! thread (Go's `os/exec`).
//!
//! Design.
//! - **Spawning** is std's `Command::spawn` (fork/exec, environment, the
//!   missing-program error) under [`blocking`](crate::blocking).
//! - **Pipes** (`Stdio::piped()`) are made non-blocking and registered
//!   with the netpoller exactly as sockets are (`net/fd.rs`): a read of an
//!   empty pipe parks the goroutine until the child writes or exits; a
//!   write to a full one parks until the child reads.
//! - **`wait`** opens a pidfd for the child at spawn (`pidfd_open`, Linux
//!   5.3+) and registers it with the netpoller too: a pidfd is readable
//!   once the child has exited, so `wait` is "`waitpid(WNOHANG)`; if still
//!   running, park on the pidfd; retry", the socket loop (its lost-wake-up
//!   argument is the netpoller's). No thread per child. Where pidfds are
//!   missing, one shared reaper thread (`reaper.rs`) waits for every such
//!   child and hands each status to its parked waiter through a channel.
//! - **Zombies.** A `Child` dropped without `wait` while its process
//!   still runs is *not* killed (as with std and Go); its pipes close, and
//!   the shared reaper reaps it when it exits, so no zombie is left behind.
//!   (std leaves the zombie until the parent exits; so does Go if `Wait`
//!   is never called: `os.Process`'s finalizer releases its handle but does
//!   not reap.) A status already collected is kept, so `kill` after it is
//!   `Ok(())` and never signals a recycled pid, as std's.
//!
//! Pipes and pidfds register with the runtime of the goroutine that spawns
//! the child (the default runtime from a plain thread, where the same calls
//! block the thread), as sockets do. [`ExitStatus`], [`Output`] and
//! [`Stdio`] are std's.
//!
//! ```
//! gort::run(|| {
//!     let out = gort::process::Command::new("echo").arg("hello").output().unwrap();
//!     assert!(out.status.success());
//!     assert_eq!(out.stdout, b"hello\n");
//! });
//! ```

mod reaper;

use std::ffi::OsStr;
use std::fmt;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use crate::blocking;
use crate::chan;
use crate::net::fd::Fd;

pub use std::process::{ExitStatus, Output, Stdio};

/// A process builder (std's [`std::process::Command`]); [`spawn`],
/// [`output`] and [`status`] start the child without holding the
/// goroutine's thread while it runs.
///
/// [`spawn`]: Command::spawn
/// [`output`]: Command::output
/// [`status`]: Command::status
///
/// ```
/// gort::run(|| {
///     let status = gort::process::Command::new("sh").args(["-c", "exit 3"]).status().unwrap();
///     assert_eq!(status.code(), Some(3));
/// });
/// ```
pub struct Command {
    inner: std::process::Command,
    // Whether stdin/stdout/stderr were set (std's `output` picks other
    // defaults for those that were not; std does not say which were).
    set: [bool; 3],
}

impl Command {
    /// A command running `program`, found on `PATH` unless it contains a
    /// `/` (std's [`std::process::Command::new`]); stdio inherited by
    /// default.
    ///
    /// ```
    /// gort::run(|| assert!(gort::process::Command::new("true").status().unwrap().success()));
    /// ```
    pub fn new<S: AsRef<OsStr>>(program: S) -> Command {
        Command {
            inner: std::process::Command::new(program),
            set: [false; 3],
        }
    }

    /// Adds one argument.
    ///
    /// ```
    /// gort::run(|| {
    ///     let out = gort::process::Command::new("echo").arg("-n").arg("x").output().unwrap();
    ///     assert_eq!(out.stdout, b"x");
    /// });
    /// ```
    pub fn arg<S: AsRef<OsStr>>(&mut self, arg: S) -> &mut Command {
        self.inner.arg(arg);
        self
    }

    /// Adds several arguments.
    ///
    /// ```
    /// gort::run(|| {
    ///     let out = gort::process::Command::new("echo").args(["a", "b"]).output().unwrap();
    ///     assert_eq!(out.stdout, b"a b\n");
    /// });
    /// ```
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.inner.args(args);
        self
    }

    /// Sets an environment variable for the child.
    ///
    /// ```
    /// gort::run(|| {
    ///     let out = gort::process::Command::new("sh").args(["-c", "echo $GREETING"])
    ///         .env("GREETING", "hi").output().unwrap();
    ///     assert_eq!(out.stdout, b"hi\n");
    /// });
    /// ```
    pub fn env<K: AsRef<OsStr>, V: AsRef<OsStr>>(&mut self, key: K, val: V) -> &mut Command {
        self.inner.env(key, val);
        self
    }

    /// Sets several environment variables.
    ///
    /// ```
    /// gort::run(|| {
    ///     let out = gort::process::Command::new("sh").args(["-c", "echo $A$B"])
    ///         .envs([("A", "1"), ("B", "2")]).output().unwrap();
    ///     assert_eq!(out.stdout, b"12\n");
    /// });
    /// ```
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.inner.envs(vars);
        self
    }

    /// Removes a variable from the child's environment.
    ///
    /// ```
    /// gort::run(|| {
    ///     let out = gort::process::Command::new("sh").args(["-c", "echo ${HOME-unset}"])
    ///         .env_remove("HOME").output().unwrap();
    ///     assert_eq!(out.stdout, b"unset\n");
    /// });
    /// ```
    pub fn env_remove<K: AsRef<OsStr>>(&mut self, key: K) -> &mut Command {
        self.inner.env_remove(key);
        self
    }

    /// Clears the child's environment (variables set later still apply).
    ///
    /// ```
    /// gort::run(|| {
    ///     let out = gort::process::Command::new("/usr/bin/env").env_clear().env("ONLY", "me")
    ///         .output().unwrap();
    ///     assert_eq!(out.stdout, b"ONLY=me\n");
    /// });
    /// ```
    pub fn env_clear(&mut self) -> &mut Command {
        self.inner.env_clear();
        self
    }

    /// Sets the child's working directory.
    ///
    /// ```
    /// gort::run(|| {
    ///     let out = gort::process::Command::new("pwd").current_dir("/").output().unwrap();
    ///     assert_eq!(out.stdout, b"/\n");
    /// });
    /// ```
    pub fn current_dir<P: AsRef<Path>>(&mut self, dir: P) -> &mut Command {
        self.inner.current_dir(dir);
        self
    }

    /// Sets the child's standard input (inherited by `spawn` and `status`
    /// unless set; `/dev/null` for `output`).
    ///
    /// ```
    /// use gort::process::{Command, Stdio};
    /// gort::run(|| {
    ///     let out = Command::new("cat").stdin(Stdio::null()).output().unwrap();
    ///     assert!(out.stdout.is_empty());
    /// });
    /// ```
    pub fn stdin<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.inner.stdin(cfg);
        self.set[0] = true;
        self
    }

    /// Sets the child's standard output (inherited by `spawn` and
    /// `status` unless set; captured by `output`).
    ///
    /// ```
    /// use gort::process::{Command, Stdio};
    /// gort::run(|| {
    ///     let out = Command::new("echo").arg("dropped").stdout(Stdio::null()).output().unwrap();
    ///     assert!(out.stdout.is_empty());
    /// });
    /// ```
    pub fn stdout<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.inner.stdout(cfg);
        self.set[1] = true;
        self
    }

    /// Sets the child's standard error (inherited by `spawn` and `status`
    /// unless set; captured by `output`).
    ///
    /// ```
    /// use gort::process::{Command, Stdio};
    /// gort::run(|| {
    ///     let out = Command::new("sh").args(["-c", "echo oops >&2"]).stderr(Stdio::piped())
    ///         .output().unwrap();
    ///     assert_eq!(out.stderr, b"oops\n");
    /// });
    /// ```
    pub fn stderr<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.inner.stderr(cfg);
        self.set[2] = true;
        self
    }

    /// The program this command runs.
    ///
    /// ```
    /// assert_eq!(gort::process::Command::new("ls").get_program(), "ls");
    /// ```
    pub fn get_program(&self) -> &OsStr {
        self.inner.get_program()
    }

    /// The arguments given so far.
    ///
    /// ```
    /// let mut c = gort::process::Command::new("ls");
    /// c.args(["-l", "/"]);
    /// assert_eq!(c.get_args().collect::<Vec<_>>(), ["-l", "/"]);
    /// ```
    pub fn get_args(&self) -> std::process::CommandArgs<'_> {
        self.inner.get_args()
    }

    /// The environment changes given so far (`None`: removed).
    ///
    /// ```
    /// let mut c = gort::process::Command::new("ls");
    /// c.env("A", "1");
    /// assert_eq!(c.get_envs().count(), 1);
    /// ```
    pub fn get_envs(&self) -> std::process::CommandEnvs<'_> {
        self.inner.get_envs()
    }

    /// The working directory set, if any.
    ///
    /// ```
    /// let mut c = gort::process::Command::new("ls");
    /// c.current_dir("/tmp");
    /// assert_eq!(c.get_current_dir(), Some(std::path::Path::new("/tmp")));
    /// ```
    pub fn get_current_dir(&self) -> Option<&Path> {
        self.inner.get_current_dir()
    }

    /// The std command underneath, for what only std has (its
    /// `std::os::unix::process::CommandExt`: `uid`, `process_group`,
    /// `pre_exec`, ...). Setting stdio through it is not seen by
    /// [`output`](Command::output)'s defaults.
    ///
    /// ```
    /// use std::os::unix::process::CommandExt;
    /// gort::run(|| {
    ///     let mut c = gort::process::Command::new("true");
    ///     c.as_std_mut().process_group(0);
    ///     assert!(c.status().unwrap().success());
    /// });
    /// ```
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        &mut self.inner
    }

    /// Starts the child (stdio inherited unless set). A program that is
    /// missing or not executable is std's error (`NotFound`,
    /// `PermissionDenied`).
    ///
    /// ```
    /// use gort::process::{Command, Stdio};
    /// use std::io::Read;
    /// gort::run(|| {
    ///     let mut child = Command::new("echo").arg("hi").stdout(Stdio::piped()).spawn().unwrap();
    ///     let mut s = String::new();
    ///     child.stdout.take().unwrap().read_to_string(&mut s).unwrap(); // parks until output
    ///     assert_eq!(s, "hi\n");
    ///     assert!(child.wait().unwrap().success());
    ///
    ///     let e = Command::new("no-such-program-gort").spawn().unwrap_err();
    ///     assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    /// });
    /// ```
    #[track_caller]
    pub fn spawn(&mut self) -> io::Result<Child> {
        let mut std_child = blocking(|| self.inner.spawn())?;
        let (stdin, stdout, stderr) = (
            std_child.stdin.take(),
            std_child.stdout.take(),
            std_child.stderr.take(),
        );
        // Built first, so that an error below drops it: then the child is
        // reaped in the background like any dropped one.
        let mut child = Child::new(std_child.id() as libc::pid_t);
        child.stdin = stdin.map(ChildStdin::from_std).transpose()?;
        child.stdout = stdout.map(ChildStdout::from_std).transpose()?;
        child.stderr = stderr.map(ChildStderr::from_std).transpose()?;
        Ok(child)
    }

    /// Runs the child to completion, capturing its stdout and stderr
    /// (read concurrently, so a child that fills one pipe while the other is
    /// read cannot deadlock) unless set otherwise; stdin is `/dev/null`
    /// unless set.
    ///
    /// ```
    /// gort::run(|| {
    ///     let out = gort::process::Command::new("sh").args(["-c", "echo out; echo err >&2"])
    ///         .output().unwrap();
    ///     assert_eq!((&out.stdout[..], &out.stderr[..]), (&b"out\n"[..], &b"err\n"[..]));
    /// });
    /// ```
    #[track_caller]
    pub fn output(&mut self) -> io::Result<Output> {
        // Only the streams the caller left alone get `output`'s defaults.
        let unset = self.set.map(|set| !set);
        self.set_stdio(unset, [Stdio::null, Stdio::piped, Stdio::piped]);
        let child = self.spawn();
        // Back to `spawn`'s defaults for a later `spawn` or `status`.
        self.set_stdio(unset, [Stdio::inherit; 3]);
        child?.wait_with_output()
    }

    /// Sets stdin, stdout, stderr (those `which` says) to `to`'s, without
    /// marking them set.
    fn set_stdio(&mut self, which: [bool; 3], to: [fn() -> Stdio; 3]) {
        let c = &mut self.inner;
        let [i, o, e] = to;
        if which[0] {
            c.stdin(i());
        }
        if which[1] {
            c.stdout(o());
        }
        if which[2] {
            c.stderr(e());
        }
    }

    /// Runs the child to completion with stdio inherited (unless set) and
    /// returns its status; the goroutine parks meanwhile.
    ///
    /// ```
    /// gort::run(|| {
    ///     let st = gort::process::Command::new("false").status().unwrap();
    ///     assert_eq!(st.code(), Some(1));
    /// });
    /// ```
    #[track_caller]
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        self.spawn()?.wait()
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

/// A running (or exited, not yet waited for) child process (std's
/// [`std::process::Child`]).
///
/// Dropping a `Child` neither kills nor waits for it; its pipes close, and
/// if it is still running the shared reaper reaps it when it exits, so it
/// is never left a zombie (module docs).
///
/// ```
/// use gort::process::{Command, Stdio};
/// use std::io::{BufRead, BufReader, Write};
/// gort::run(|| {
///     let mut child = Command::new("cat")
///         .stdin(Stdio::piped())
///         .stdout(Stdio::piped())
///         .spawn()
///         .unwrap();
///     let mut stdin = child.stdin.take().unwrap();
///     let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
///     stdin.write_all(b"ping\n").unwrap();
///     assert_eq!(lines.next().unwrap().unwrap(), "ping"); // parks on the pipe
///     drop(stdin); // cat sees EOF and exits
///     assert!(child.wait().unwrap().success());
/// });
/// ```
pub struct Child {
    /// The child's standard input, if it was `Stdio::piped()`.
    pub stdin: Option<ChildStdin>,
    /// The child's standard output, if it was `Stdio::piped()`.
    pub stdout: Option<ChildStdout>,
    /// The child's standard error, if it was `Stdio::piped()`.
    pub stderr: Option<ChildStderr>,
    pid: libc::pid_t,
    /// Collected status: once set, the pid may be reused by someone else.
    status: Option<ExitStatus>,
    exit: Exit,
}

/// How this child's exit is waited for.
enum Exit {
    /// A pidfd registered with the netpoller (readable once exited).
    Pidfd(Fd<OwnedFd>),
    /// No pidfd: the shared reaper, once a wait has asked it.
    Shared(Option<chan::Receiver<io::Result<ExitStatus>>>),
}

impl Child {
    fn new(pid: libc::pid_t) -> Child {
        let exit = match pidfd_open(pid).and_then(Fd::new) {
            Ok(fd) => Exit::Pidfd(fd),
            Err(_) => Exit::Shared(None), // ENOSYS (before 5.3), seccomp, EMFILE
        };
        Child {
            stdin: None,
            stdout: None,
            stderr: None,
            pid,
            status: None,
            exit,
        }
    }

    /// The child's process id.
    ///
    /// ```
    /// gort::run(|| {
    ///     let mut child = gort::process::Command::new("true").spawn().unwrap();
    ///     assert!(child.id() > 0);
    ///     child.wait().unwrap();
    /// });
    /// ```
    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    /// Sends SIGKILL; `Ok(())` if the child has already been waited for
    /// (its pid may belong to someone else by then), as std's.
    ///
    /// ```
    /// use std::os::unix::process::ExitStatusExt;
    /// gort::run(|| {
    ///     let mut child = gort::process::Command::new("sleep").arg("10").spawn().unwrap();
    ///     child.kill().unwrap();
    ///     assert_eq!(child.wait().unwrap().signal(), Some(9));
    ///     child.kill().unwrap(); // already reaped: nothing to do
    /// });
    /// ```
    pub fn kill(&mut self) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        if let Exit::Shared(Some(_)) = self.exit {
            // The reaper may reap it any moment: signal under its lock.
            return reaper::kill(self.pid).unwrap_or(Ok(()));
        }
        // SAFETY: kill(2) takes plain integers; the pid is our unreaped
        // child (no one else reaps it), so it names no other process.
        if unsafe { libc::kill(self.pid, libc::SIGKILL) } == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Waits for the child to exit and returns its status, parking the
    /// goroutine meanwhile (on a plain thread, blocking it). Closes the
    /// child's stdin first, as std's, so a child reading it sees EOF.
    ///
    /// ```
    /// gort::run(|| {
    ///     let mut child = gort::process::Command::new("sleep").arg("0.01").spawn().unwrap();
    ///     assert!(child.wait().unwrap().success());
    ///     assert!(child.wait().unwrap().success()); // the status is kept
    /// });
    /// ```
    #[track_caller]
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        if let Some(s) = self.status {
            return Ok(s);
        }
        let pid = self.pid;
        let status = match &mut self.exit {
            Exit::Pidfd(fd) => {
                fd.read(|_| reap(pid)?.ok_or_else(|| io::Error::from(io::ErrorKind::WouldBlock)))?
            }
            Exit::Shared(rx) => {
                if rx.is_none() {
                    let (tx, r) = chan::bounded(1);
                    reaper::watch(pid, None, Some(tx))?;
                    *rx = Some(r);
                }
                match rx.as_ref().unwrap().recv() {
                    Ok(r) => r?,
                    Err(_) => unreachable!("the reaper sends before dropping its sender"),
                }
            }
        };
        self.status = Some(status);
        Ok(status)
    }

    /// The status if the child has exited, else `None`, without waiting.
    ///
    /// ```
    /// gort::run(|| {
    ///     let mut child = gort::process::Command::new("sleep").arg("10").spawn().unwrap();
    ///     assert!(child.try_wait().unwrap().is_none());
    ///     child.kill().unwrap();
    ///     child.wait().unwrap();
    ///     assert!(child.try_wait().unwrap().is_some());
    /// });
    /// ```
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_some() {
            return Ok(self.status);
        }
        self.status = match &self.exit {
            Exit::Shared(Some(rx)) => match rx.try_recv() {
                Ok(r) => Some(r?),
                Err(_) => None,
            },
            _ => reap(self.pid)?,
        };
        Ok(self.status)
    }

    /// Waits for the child while reading its stdout and stderr to the end
    /// concurrently (std's [`std::process::Child::wait_with_output`]);
    /// stdin is closed first.
    ///
    /// ```
    /// use gort::process::{Command, Stdio};
    /// gort::run(|| {
    ///     let child = Command::new("echo").arg("x").stdout(Stdio::piped()).spawn().unwrap();
    ///     let out = child.wait_with_output().unwrap();
    ///     assert_eq!(out.stdout, b"x\n");
    /// });
    /// ```
    #[track_caller]
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let err = match self.stderr.take() {
            // stderr in a goroutine of its own while this one reads stdout.
            Some(mut e) => Some(crate::Builder::new().spawn(move || {
                let mut v = Vec::new();
                e.read_to_end(&mut v).map(|_| v)
            })?),
            None => None,
        };
        let mut stdout = Vec::new();
        let out = match self.stdout.take() {
            Some(mut o) => o.read_to_end(&mut stdout).map(drop),
            None => Ok(()),
        };
        let stderr = match err {
            Some(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?,
            None => Vec::new(),
        };
        out?;
        let status = self.wait()?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.status.is_some() {
            return;
        }
        let pidfd = match std::mem::replace(&mut self.exit, Exit::Shared(None)) {
            // Already watched for a wait: the reaper reaps it.
            Exit::Shared(Some(_)) => return,
            Exit::Shared(None) => None,
            Exit::Pidfd(fd) => Some(fd.into_inner()),
        };
        if let Ok(None) = reap(self.pid) {
            // Still running: the reaper reaps it when it exits. If the
            // reaper cannot start now, the watch waits for the next one.
            let _ = reaper::watch(self.pid, pidfd, None);
        }
    }
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.pid)
            .field("status", &self.status)
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish_non_exhaustive()
    }
}

/// `waitpid(pid, WNOHANG)`: the status if `pid` (our child) has exited,
/// reaping it.
fn reap(pid: libc::pid_t) -> io::Result<Option<ExitStatus>> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes one int through a valid, exclusive pointer.
        match unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } {
            0 => return Ok(None),
            -1 => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            _ => return Ok(Some(ExitStatus::from_raw(status))),
        }
    }
}

/// A pidfd for `pid`, non-blocking and close-on-exec (pidfds always are).
fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    #[cfg(test)]
    if tests::NO_PIDFD.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(io::Error::from_raw_os_error(libc::ENOSYS));
    }
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new fd
    // or -1; it touches no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor, and nothing else
    // owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sets or clears `O_NONBLOCK` on `fd`.
fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: fcntl(F_GETFL/F_SETFL) on a descriptor borrowed for the
    // call; it takes and returns integers only.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        let new = if on {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        if new != flags && libc::fcntl(fd, libc::F_SETFL, new) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A pipe end made non-blocking and registered with the netpoller.
fn register(fd: OwnedFd) -> io::Result<Fd<std::fs::File>> {
    set_nonblocking(fd.as_fd(), true)?;
    Fd::new(std::fs::File::from(fd))
}

/// The pipe's descriptor back in blocking mode (for another child's stdio).
fn unregister(fd: Fd<std::fs::File>) -> OwnedFd {
    let fd = OwnedFd::from(fd.into_inner());
    // fcntl on an open descriptor we own does not fail; if it did, the
    // next reader would see EAGAIN, not lose data.
    let _ = set_nonblocking(fd.as_fd(), false);
    fd
}

macro_rules! pipe {
    ($(#[$doc:meta])* $t:ident, $field:ident) => {
        $(#[$doc])*
        pub struct $t {
            fd: Fd<std::fs::File>,
        }

        impl $t {
            /// Takes over a std pipe end: non-blocking, on the netpoller.
            ///
            /// ```
            /// use std::process::Stdio;
            /// gort::run(|| {
            #[doc = concat!("    let mut c = std::process::Command::new(\"true\")",
                ".stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();")]
            #[doc = concat!("    let end = c.", stringify!($field), ".take().unwrap();")]
            #[doc = concat!("    let _ours = gort::process::", stringify!($t), "::from_std(end).unwrap();")]
            ///     c.wait().unwrap();
            /// });
            /// ```
            pub fn from_std(end: std::process::$t) -> io::Result<$t> {
                Ok($t { fd: register(OwnedFd::from(end))? })
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($t)).field("fd", &self.fd.as_raw_fd()).finish()
            }
        }

        impl AsRawFd for $t {
            fn as_raw_fd(&self) -> RawFd {
                self.fd.as_raw_fd()
            }
        }

        impl AsFd for $t {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.fd.as_fd()
            }
        }

        /// The pipe end as another child's stdio (blocking again, off the
        /// netpoller), as std's `Stdio::from(ChildStdout)`.
        impl From<$t> for Stdio {
            fn from(p: $t) -> Stdio {
                Stdio::from(unregister(p.fd))
            }
        }

        /// The pipe end's descriptor, blocking again and off the netpoller.
        impl From<$t> for OwnedFd {
            fn from(p: $t) -> OwnedFd {
                unregister(p.fd)
            }
        }
    };
}

pipe!(
    /// The writing end of a child's stdin: `Write` (also for `&ChildStdin`)
    /// parks the goroutine while the pipe is full. Dropping it closes the
    /// pipe: the child reads EOF.
    ///
    /// ```
    /// use gort::process::{Command, Stdio};
    /// use std::io::Write;
    /// gort::run(|| {
    ///     let mut c = Command::new("wc").arg("-c").stdin(Stdio::piped()).stdout(Stdio::piped())
    ///         .spawn().unwrap();
    ///     c.stdin.take().unwrap().write_all(&[0; 100_000]).unwrap(); // 100 KB > pipe buffer
    ///     let out = c.wait_with_output().unwrap();
    ///     assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "100000");
    /// });
    /// ```
    ChildStdin,
    stdin
);
pipe!(
    /// The reading end of a child's stdout: `Read` (also for
    /// `&ChildStdout`) parks the goroutine until the child writes; EOF once
    /// the child (and everything it passed the pipe to) has closed it.
    ///
    /// ```
    /// use gort::process::{Command, Stdio};
    /// use std::io::{BufRead, BufReader};
    /// gort::run(|| {
    ///     let mut c = Command::new("seq").arg("3").stdout(Stdio::piped()).spawn().unwrap();
    ///     let lines: Vec<String> = BufReader::new(c.stdout.take().unwrap())
    ///         .lines().map(Result::unwrap).collect();
    ///     assert_eq!(lines, ["1", "2", "3"]);
    ///     c.wait().unwrap();
    /// });
    /// ```
    ChildStdout,
    stdout
);
pipe!(
    /// The reading end of a child's stderr, as [`ChildStdout`].
    ///
    /// ```
    /// use gort::process::{Command, Stdio};
    /// use std::io::Read;
    /// gort::run(|| {
    ///     let mut c = Command::new("sh").args(["-c", "echo e >&2"]).stderr(Stdio::piped())
    ///         .spawn().unwrap();
    ///     let mut s = String::new();
    ///     c.stderr.take().unwrap().read_to_string(&mut s).unwrap();
    ///     assert_eq!(s, "e\n");
    ///     c.wait().unwrap();
    /// });
    /// ```
    ChildStderr,
    stderr
);

crate::net::stream_write!(ChildStdin);
crate::net::stream_read!(ChildStdout);
crate::net::stream_read!(ChildStderr);

#[cfg(test)]
mod tests {
    //! The shared-reaper path, forced by pretending pidfds are missing.
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    pub(super) static NO_PIDFD: AtomicBool = AtomicBool::new(false);

    #[test]
    fn without_pidfds_one_shared_thread_waits_for_all() {
        NO_PIDFD.store(true, Ordering::Relaxed);
        let rt = crate::runtime::Builder::new().procs(1).build().unwrap();
        let (codes, signal, dropped) = rt.run(|| {
            let hs: Vec<_> = (0..20)
                .map(|i| {
                    crate::go(move || {
                        let mut c = Command::new("sh")
                            .args(["-c", &format!("sleep 0.2; exit {i}")])
                            .spawn()
                            .unwrap();
                        assert!(matches!(c.exit, Exit::Shared(None)));
                        c.wait().unwrap().code().unwrap()
                    })
                })
                .collect();
            let mut killed = Command::new("sleep").arg("10").spawn().unwrap();
            assert!(killed.try_wait().unwrap().is_none());
            killed.kill().unwrap();
            let signal = killed.wait().unwrap().signal();
            // Dropped while running: the reaper reaps it once it exits.
            let dropped = Command::new("sleep").arg("0.1").spawn().unwrap();
            let pid = dropped.id();
            drop(dropped);
            let codes: Vec<i32> = hs.into_iter().map(|h| h.join().unwrap()).collect();
            (codes, signal, pid)
        });
        NO_PIDFD.store(false, Ordering::Relaxed);
        assert_eq!(codes, (0..20).collect::<Vec<_>>());
        assert_eq!(signal, Some(9));
        // Reaped: /proc has no process `dropped` whose parent is us.
        let gone = (0..300).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            std::fs::read_to_string(format!("/proc/{dropped}/stat")).map_or(true, |s| {
                let ppid = s.rsplit(')').next().unwrap().split_whitespace().nth(1);
                ppid != Some(&std::process::id().to_string())
            })
        });
        assert!(gone, "the dropped child was not reaped");
        // One reaper thread in the whole process, for all of them.
        let n = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter(|t| {
                let p = t.as_ref().unwrap().path().join("comm");
                std::fs::read_to_string(p).is_ok_and(|c| c.trim() == "gort-reaper")
            })
            .count();
        assert_eq!(n, 1);
    }
}
