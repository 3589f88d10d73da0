//! Asymmetric fences for the runtime's Dekker-style handshakes.
//!
//! Three handshakes pair a hot side with a rare side: spawning (hot) vs
//! `begin_cancel` (rare), parking (hot) vs cancelling, and goroutine exit
//! (hot) vs `wait_idle` (rare). Each needs a StoreLoad barrier on both sides
//! ("I store my flag, then load yours"). With Linux's
//! `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` the rare side makes every
//! running thread of the process execute a full barrier, so the hot side
//! needs only a compiler fence (the technique of folly's
//! `asymmetricHeavyBarrier` and userspace RCU). Where membarrier is not
//! available, both sides use a real `fence(SeqCst)`.

use std::sync::atomic::{compiler_fence, fence, AtomicU8, Ordering};

const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

const UNKNOWN: u8 = 0;
const EXPEDITED: u8 = 1;
const FENCES: u8 = 2;
static MODE: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Registers the process for expedited membarriers; called when a runtime
/// is built, before any of its goroutines run.
pub(crate) fn init() {
    if MODE.load(Ordering::Acquire) != UNKNOWN {
        return;
    }
    // SAFETY: membarrier takes no pointers; an unsupported command fails
    // with an error code, which we check.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_membarrier,
            MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
            0,
            0,
        )
    };
    let mode = if rc == 0 { EXPEDITED } else { FENCES };
    let _ = MODE.compare_exchange(UNKNOWN, mode, Ordering::AcqRel, Ordering::Acquire);
}

/// The hot side's barrier.
#[inline(always)]
pub(crate) fn light() {
    if MODE.load(Ordering::Relaxed) == EXPEDITED {
        compiler_fence(Ordering::SeqCst);
    } else {
        fence(Ordering::SeqCst);
    }
}

/// The rare side's barrier: a full barrier on every running thread.
pub(crate) fn heavy() {
    fence(Ordering::SeqCst);
    if MODE.load(Ordering::Relaxed) == EXPEDITED {
        // SAFETY: as in `init`; the process is registered.
        let rc =
            unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) };
        assert_eq!(rc, 0, "gort: membarrier failed after registration");
    }
    fence(Ordering::SeqCst);
}
