//! The one switch between real atomics and loom's model-checked ones.
//!
//! Lock-free parts of the runtime (the run queue, the spinning/wake
//! protocol) import their atomics and cells from here, so the same code runs
//! in production and under `RUSTFLAGS="--cfg loom" cargo test --lib loom`.

#[cfg(loom)]
pub(crate) use loom::sync::atomic;

#[cfg(not(loom))]
pub(crate) use std::sync::atomic;
