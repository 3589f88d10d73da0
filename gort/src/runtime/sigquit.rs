//! SIGQUIT: the report of every goroutine, then exit status 2 (Go's
//! behaviour for `kill -QUIT` or Ctrl-\).
//!
//! The signal handler only writes a byte to a pipe (async-signal-safe);
//! a thread of ours blocked reading the pipe writes the report of every
//! runtime to stderr and exits the process. That thread can never wake a
//! goroutine, so it counts as one of gort's own for deadlock detection.

use std::io::Write;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Once;

static WRITE_END: AtomicI32 = AtomicI32::new(-1);

/// Installs the handler and starts the reporting thread, once per process.
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let mut fds = [0i32; 2];
        // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            eprintln!(
                "gort: cannot set up the SIGQUIT report ({}); SIGQUIT keeps its default action",
                std::io::Error::last_os_error()
            );
            return;
        }
        let (rd, wr) = (fds[0], fds[1]);
        let started = std::thread::Builder::new()
            .name("gort-sigquit".into())
            .spawn(move || report_thread(rd));
        if let Err(e) = started {
            eprintln!("gort: cannot start the SIGQUIT report thread ({e}); SIGQUIT keeps its default action");
            return;
        }
        WRITE_END.store(wr, Ordering::SeqCst);
        // SAFETY: a valid sigaction for our extern "C" handler, which only
        // does async-signal-safe things (an atomic load, write(2), errno).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGQUIT, &sa, std::ptr::null_mut());
        }
    });
}

extern "C" fn handler(_sig: libc::c_int) {
    // SAFETY: errno is this thread's; restored below.
    let errno = unsafe { *libc::__errno_location() };
    let fd = WRITE_END.load(Ordering::SeqCst);
    if fd >= 0 {
        let b = 1u8;
        // SAFETY: write(2) of one byte from a live local to our pipe.
        let _ = unsafe { libc::write(fd, (&raw const b).cast(), 1) };
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

fn report_thread(rd: i32) {
    let _counted = super::deadlock::GortThread::enter();
    let mut b = 0u8;
    loop {
        // SAFETY: read(2) of one byte into a live local from our pipe.
        let n = unsafe { libc::read(rd, (&raw mut b).cast(), 1) };
        if n == 1 {
            break;
        }
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        return; // the pipe is gone: nothing more to do
    }
    let mut out = b"SIGQUIT: quit\n\n".to_vec();
    for s in super::deadlock::runtimes() {
        let _ = crate::debug::write_report(&mut out, &s.goroutine_infos());
        out.extend_from_slice(b"\n");
    }
    let _ = std::io::stderr().lock().write_all(&out);
    std::process::exit(2);
}
