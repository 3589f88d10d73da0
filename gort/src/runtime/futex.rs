//! Linux futex wait/wake: the only way a runtime thread sleeps.
//!
//! Idle machines (`m`), plain threads blocked on a gort primitive
//! (`park`) and the runtime's internal `lock` all sleep here, never on a std
//! `Mutex`/`Condvar` (DESIGN.md rule 2). Under `cfg(loom)` the futex is
//! `crate::loom::futex`, an emulation on loom's atomics.

#[cfg(loom)]
pub(crate) use crate::loom::futex::{wait, wake};

#[cfg(not(loom))]
use std::sync::atomic::AtomicU32;
#[cfg(not(loom))]
use std::time::Duration;

/// Sleeps while `*word == expected`, at most `timeout`. Returns on wake-up,
/// on timeout, on a signal, or at once if the word already differs; callers
/// re-check their condition in a loop.
#[cfg(not(loom))]
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts;
    let ts_ptr = match timeout {
        Some(d) => {
            ts = libc::timespec {
                tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            };
            &ts as *const libc::timespec
        }
        None => std::ptr::null(),
    };
    // SAFETY: `word` is a live, aligned u32 for the duration of the call; the
    // kernel only reads it and `ts_ptr` is null or points at a live timespec.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            ts_ptr,
        );
    }
}

/// Wakes up to `n` threads sleeping in [`wait`] on `word`.
#[cfg(not(loom))]
pub(crate) fn wake(word: &AtomicU32, n: i32) {
    // SAFETY: FUTEX_WAKE only uses the address as a key; it never dereferences
    // memory we do not own.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            n,
        );
    }
}
