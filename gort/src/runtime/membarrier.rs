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
//!
//! Under loom both sides are loom `fence(SeqCst)`s, the fallback mode.
//! That is the sound stand-in, and the only one: membarrier makes every
//! running thread execute a full barrier at some point of its program
//! order during the call, and the light side's compiler fence keeps the
//! compiler from moving its flag store past its load, so the pair acts as
//! a SeqCst fence on each side (the pairing Linux documents for
//! `barrier()` with `membarrier()`). C11 has no one-sided fence that
//! orders the other thread, so a model with `light()` as a no-op would
//! report the very store-buffering race membarrier rules out.

#[cfg(not(loom))]
use std::sync::atomic::{compiler_fence, fence, AtomicU8, Ordering};

#[cfg(not(loom))]
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
#[cfg(not(loom))]
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

#[cfg(not(loom))]
const UNKNOWN: u8 = 0;
#[cfg(not(loom))]
const EXPEDITED: u8 = 1;
#[cfg(not(loom))]
const FENCES: u8 = 2;
#[cfg(not(loom))]
static MODE: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Registers the process for expedited membarriers; called when a runtime
/// is built, before any of its goroutines run.
#[cfg(not(loom))]
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
#[cfg(not(loom))]
#[inline(always)]
pub(crate) fn light() {
    if MODE.load(Ordering::Relaxed) == EXPEDITED {
        compiler_fence(Ordering::SeqCst);
    } else {
        fence(Ordering::SeqCst);
    }
}

/// The rare side's barrier: a full barrier on every running thread.
#[cfg(not(loom))]
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

/// The hot side's barrier (under loom: a SeqCst fence, see the module docs).
#[cfg(loom)]
pub(crate) fn light() {
    crate::loom::atomic::fence(crate::loom::atomic::Ordering::SeqCst);
}

/// The rare side's barrier (under loom: a SeqCst fence, see the module docs).
#[cfg(loom)]
pub(crate) fn heavy() {
    crate::loom::atomic::fence(crate::loom::atomic::Ordering::SeqCst);
}
