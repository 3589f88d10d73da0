//! The one switch between real atomics and loom's model-checked ones.
//!
//! Lock-free parts of the runtime (the run queue, the spinning/wake
//! protocol) import their atomics and cells from here, so the same code runs
//! in production and under `RUSTFLAGS="--cfg loom" cargo test --lib loom`.

#[cfg(loom)]
pub(crate) use loom::{cell::UnsafeCell, sync::atomic, thread};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic;

/// `UnsafeCell` with loom's closure-based access API, so shared code is
/// written once for both builds.
#[cfg(not(loom))]
#[derive(Debug, Default)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(v: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(v))
    }
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
