//! Stack overflow reporting: a SIGSEGV/SIGBUS handler on an alternate
//! signal stack.
//!
//! The scheduler publishes, per thread, which goroutine is running and
//! where its guard page is (`set_current`). A fault inside that guard page
//! is a goroutine stack overflow: the handler prints
//! `goroutine 17 "worker" overflowed its 256 KiB stack` and aborts. Any
//! other fault is passed to the handler that was installed before ours
//! (std's own overflow detector for thread stacks, or the default action).
//!
//! The handler runs on an alternate stack (the overflowed stack has no room)
//! and is async-signal-safe: it reads a thread-local pointer, formats into a
//! fixed buffer and calls `write(2)` and `abort(3)`.

use std::cell::Cell;
use std::mem::MaybeUninit;
use std::sync::Once;

/// What the handler needs to know about the running goroutine.
#[derive(Debug)]
pub(crate) struct StackInfo {
    pub(crate) guard_lo: usize,
    pub(crate) guard_hi: usize,
    pub(crate) size: usize,
    pub(crate) id: u64,
    /// The goroutine's name; must outlive its registration.
    pub(crate) name: Option<&'static str>,
}

thread_local! {
    static CURRENT: Cell<*const StackInfo> = const { Cell::new(std::ptr::null()) };
}

/// Publishes the goroutine about to run on this thread (null: none).
#[inline]
pub(crate) fn set_current(info: *const StackInfo) {
    CURRENT.with(|c| c.set(info));
}

static mut PREV_SEGV: MaybeUninit<libc::sigaction> = MaybeUninit::zeroed();
static mut PREV_BUS: MaybeUninit<libc::sigaction> = MaybeUninit::zeroed();
static INSTALL: Once = Once::new();

/// Installs the handler once per process and an alternate signal stack on
/// the calling thread if it has none. Called by every runtime thread.
pub(crate) fn install() {
    INSTALL.call_once(|| {
        // SAFETY: we build a valid sigaction for our extern "C" handler and
        // store the previous actions before any fault can reach the handler
        // (the Once orders this before any goroutine runs).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(
                libc::SIGSEGV,
                &sa,
                (&raw mut PREV_SEGV).cast::<libc::sigaction>(),
            );
            libc::sigaction(
                libc::SIGBUS,
                &sa,
                (&raw mut PREV_BUS).cast::<libc::sigaction>(),
            );
        }
    });
    ensure_altstack();
}

fn ensure_altstack() {
    const ALT: usize = 64 * 1024;
    // SAFETY: querying and setting this thread's signal stack; the new
    // stack is a fresh mapping that is never unmapped (threads that run
    // goroutines live as long as their runtime, and the mapping is small).
    unsafe {
        let mut old: libc::stack_t = std::mem::zeroed();
        libc::sigaltstack(std::ptr::null(), &mut old);
        if old.ss_flags & libc::SS_DISABLE == 0 {
            return;
        }
        let p = libc::mmap(
            std::ptr::null_mut(),
            ALT,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return;
        }
        let st = libc::stack_t {
            ss_sp: p,
            ss_flags: 0,
            ss_size: ALT,
        };
        libc::sigaltstack(&st, std::ptr::null_mut());
    }
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    let cur = CURRENT.with(|c| c.get());
    if !cur.is_null() {
        // SAFETY: the scheduler keeps the StackInfo alive while it is
        // published for this thread.
        let g = unsafe { &*cur };
        if addr >= g.guard_lo && addr < g.guard_hi {
            report(g);
        }
    }
    // Not ours: hand over to whoever was installed before us.
    let prev = if sig == libc::SIGBUS {
        &raw const PREV_BUS
    } else {
        &raw const PREV_SEGV
    };
    // SAFETY: PREV_* were written once by `install` before the handler was
    // installed and are only read afterwards.
    unsafe {
        let prev = &*(*prev).as_ptr();
        let action = prev.sa_sigaction;
        if action == libc::SIG_IGN {
            return;
        }
        if action == libc::SIG_DFL {
            // Restore the default action and return: the faulting
            // instruction runs again and the process dies as it would have.
            libc::sigaction(sig, prev, std::ptr::null_mut());
            return;
        }
        if prev.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(action);
            f(sig, info, ctx);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(action);
            f(sig);
        }
    }
}

/// Writes the overflow message and aborts. Async-signal-safe.
fn report(g: &StackInfo) -> ! {
    let mut buf = Buf::default();
    buf.push(b"\ngoroutine ");
    buf.num(g.id);
    if let Some(name) = g.name {
        buf.push(b" \"");
        buf.push(name.as_bytes());
        buf.push(b"\"");
    }
    buf.push(b" overflowed its ");
    if g.size % (1024 * 1024) == 0 {
        buf.num((g.size >> 20) as u64);
        buf.push(b" MiB stack\n");
    } else {
        buf.num((g.size / 1024) as u64);
        buf.push(b" KiB stack\n");
    }
    buf.push(b"fatal error: stack overflow (raise it with gort::Builder::stack_size or runtime::Builder::stack_size)\n");
    // SAFETY: write(2) and abort(3) are async-signal-safe; the buffer is
    // initialised up to `len`.
    unsafe {
        libc::write(2, buf.bytes.as_ptr().cast(), buf.len);
        libc::abort();
    }
}

struct Buf {
    bytes: [u8; 512],
    len: usize,
}

impl Default for Buf {
    fn default() -> Self {
        Buf {
            bytes: [0; 512],
            len: 0,
        }
    }
}

impl Buf {
    fn push(&mut self, s: &[u8]) {
        let n = s.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }
    fn num(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }
}
