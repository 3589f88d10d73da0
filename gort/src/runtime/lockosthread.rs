//! `lock_os_thread` / `unlock_os_thread` (Go's `LockOSThread`).
//!
//! A locked goroutine is wired to its M: whenever it stops running (parks
//! or yields), its M hands its P to another thread and sleeps; an M that
//! later takes the goroutine off a run queue hands it, with that M's P,
//! back to the wired M and goes idle itself (`startlockedm` /
//! `stoplockedm` below). So the goroutine always runs on the same OS
//! thread, the thread runs nothing else meanwhile, and other goroutines
//! keep every P busy. A goroutine that exits still locked takes its thread
//! with it (the thread ends), as in Go, since it may have changed
//! per-thread state.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::g::{self, GRef};
use super::m::{mctx, MCtx, MShared, NO_P};
use super::p::PToken;

/// Wires the calling goroutine to its current OS thread until a matching
/// [`unlock_os_thread`] (calls nest: each lock needs an unlock). Use it for
/// thread-local state that must stay put across blocking calls
/// (DESIGN.md rule 3), or for thread-affine foreign libraries. On a plain
/// thread it does nothing (that thread is already its own).
///
/// ```
/// gort::run(|| {
///     gort::lock_os_thread();
///     let before = std::thread::current().id();
///     gort::time::sleep(std::time::Duration::from_millis(1)); // parks
///     assert_eq!(std::thread::current().id(), before);
///     gort::unlock_os_thread();
/// });
/// ```
pub fn lock_os_thread() {
    let Some(g) = g::current() else { return };
    let n = g.lock_count.get();
    let n1 = n
        .checked_add(1)
        .expect("gort: lock_os_thread nested more than u32::MAX times");
    g.lock_count.set(n1);
    if n == 0 {
        let m = current_shared().expect("a goroutine runs on an M");
        g.locked_m.set(m);
        lock_to(m, g);
    }
}

/// Undoes one [`lock_os_thread`]; after the last one the goroutine may
/// migrate again. Without a matching lock it does nothing (as in Go).
///
/// ```
/// gort::run(|| {
///     gort::lock_os_thread();
///     gort::lock_os_thread();
///     gort::unlock_os_thread(); // still locked: one level left
///     gort::unlock_os_thread();
/// });
/// ```
pub fn unlock_os_thread() {
    let Some(g) = g::current() else { return };
    let n = g.lock_count.get();
    if n == 0 {
        return;
    }
    g.lock_count.set(n - 1);
    if n == 1 {
        unlock_from(g.locked_m.get());
        g.locked_m.set(std::ptr::null());
    }
}

/// The running goroutine's M, for `lock_os_thread`.
#[inline(never)] // a thread-local read: see `g::current`
pub(crate) fn current_shared() -> Option<*const MShared> {
    mctx().map(|m| Arc::as_ptr(&m.shared))
}

/// Wires goroutine `g` to this M (`lock_os_thread`'s first level).
pub(crate) fn lock_to(m: *const MShared, g: GRef) {
    // SAFETY: `m` is the running M's shared part (alive while it runs `g`).
    unsafe { &*m }.locked_g.store(g.as_ptr(), Ordering::Release);
}

/// Unwires the M (`unlock_os_thread`'s last level).
pub(crate) fn unlock_from(m: *const MShared) {
    // SAFETY: as in `lock_to`: `m` runs the calling goroutine.
    unsafe { &*m }
        .locked_g
        .store(std::ptr::null_mut(), Ordering::Release);
}

/// Another M found `g`, which is locked to a different M: hand that M our
/// P and the goroutine, and go idle (Go's `startlockedm`).
pub(crate) fn startlockedm(ctx: &MCtx, g: GRef) {
    let sched = &*ctx.sched;
    if ctx.p().is_none() {
        sched.global_put(g);
        return;
    }
    let Some(p) = ctx.release() else {
        // Sysmon took our P at this very moment: let someone else try.
        sched.global_put(g);
        sched.wakep();
        return;
    };
    // SAFETY: a locked goroutine's M lives until the goroutine unlocks it
    // or exits, and `g` is neither running nor finished.
    let target = unsafe { &*g.locked_m.get() };
    target.nextg.store(g.as_ptr(), Ordering::Release);
    target.handoff(p, false);
    target.note.wakeup();
}

/// The goroutine locked to this M stopped running: give the P away and
/// sleep until some M hands the goroutine back with a P (Go's
/// `stoplockedm`). Returns holding a P, ready to resume `g`.
pub(crate) fn stoplockedm(ctx: &MCtx, g: GRef) {
    let sched = &*ctx.sched;
    if let Some(p) = ctx.release() {
        sched.handoffp(p);
    }
    let m = &ctx.shared;
    loop {
        // `startlockedm` stores the goroutine, then hands the P over: the
        // P is the signal (its Acquire makes the goroutine visible).
        let p = m.nextp.swap(NO_P, Ordering::Acquire);
        if p != NO_P {
            let next = m.nextg.swap(std::ptr::null_mut(), Ordering::Relaxed);
            assert_eq!(
                next,
                g.as_ptr(),
                "gort: a locked M was handed another goroutine"
            );
            m.note.clear();
            ctx.acquire(PToken::claim(p));
            return;
        }
        m.note.sleep(None);
        if m.nextp.load(Ordering::Acquire) == NO_P {
            // A stale wake-up (or shutdown, whose cancellation readies the
            // goroutine through the queues, so the hand-off still comes).
            m.note.clear();
        }
    }
}
