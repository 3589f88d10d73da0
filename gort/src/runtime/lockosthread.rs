//! `lock_os_thread` / `unlock_os_thread` (Go's `LockOSThread`).
//!
//! A locked goroutine is wired to its M: whenever it stops running (parks
//! or yields), its M hands its P to another thread and sleeps; an M that
//! later takes the goroutine off a run queue hands it, with that M's P,
//! back to the wired M and goes idle itself (`startlockedm` /
//! `stoplockedm` in `m.rs`). So the goroutine always runs on the same OS
//! thread, the thread runs nothing else meanwhile, and other goroutines
//! keep every P busy. A goroutine that exits still locked takes its thread
//! with it (the thread ends), as in Go, since it may have changed
//! per-thread state.

use super::g;
use super::m;

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
        let m = m::current_shared().expect("a goroutine runs on an M");
        g.locked_m.set(m);
        m::lock_to(m, g);
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
        m::unlock_from(g.locked_m.get());
        g.locked_m.set(std::ptr::null());
    }
}
