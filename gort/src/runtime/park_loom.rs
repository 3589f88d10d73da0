//! `runtime::park` under `cfg(loom)`: the loom-friendly waiter.
//!
//! The same interface as `park.rs` (`Waiter`, `park`, `park_thread`,
//! `prepare`, `Parking`) for callers that are all plain threads (a model
//! runs each goroutine as a `loom::thread`), built on the real
//! `ThreadParker` of `claim.rs`, so a model exercises production's claim
//! state machine and its futex waits (loom's emulation). Each method is the
//! `Waiter::Thread` arm of its `park.rs` namesake; keep them in step.
//!
//! `WaitReason` lives in `g.rs`, which loom does not compile: [`g`] holds
//! the variants the modelled modules name.

use std::sync::Arc;

use super::claim::ThreadParker;
use crate::loom::time::Instant;

/// The variants of `g.rs`'s `WaitReason` that modelled code names.
pub(crate) mod g {
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum WaitReason {
        WaitGroup,
        ChanReceive,
        ChanSend,
        Select,
        SelectNoCases,
        MutexLock,
        Semacquire,
        IoWait,
    }
}

use g::WaitReason;

/// `park.rs`'s `Waiter` with its `Thread` arm only.
#[derive(Debug, Clone)]
pub(crate) enum Waiter {
    Thread { parker: Arc<ThreadParker>, gen: u32 },
}

impl Waiter {
    pub(crate) fn wake(self) -> bool {
        let Waiter::Thread { parker, gen } = self;
        parker.wake(gen)
    }

    pub(crate) fn wake_fifo(self) -> bool {
        self.wake()
    }

    pub(crate) fn claim(&self) -> bool {
        let Waiter::Thread { parker, gen } = self;
        parker.claim(*gen)
    }

    pub(crate) fn wake_claimed(self) {
        let Waiter::Thread { parker, gen } = self;
        parker.wake_claimed(gen)
    }

    pub(crate) fn is_stale(&self) -> bool {
        let Waiter::Thread { parker, gen } = self;
        parker.is_stale(*gen)
    }

    pub(crate) fn same(&self, o: &Waiter) -> bool {
        let (
            Waiter::Thread { parker, gen },
            Waiter::Thread {
                parker: p2,
                gen: g2,
            },
        ) = (self, o);
        Arc::ptr_eq(parker, p2) && gen == g2
    }
}

loom::thread_local! {
    static THREAD_PARKER: Arc<ThreadParker> = Arc::new(ThreadParker::default());
}

fn thread_parker() -> Arc<ThreadParker> {
    THREAD_PARKER.with(|p| p.clone())
}

/// `park.rs`'s `park` on a plain thread.
pub(crate) fn park<F: FnOnce(Waiter) -> bool>(_reason: WaitReason, after: F) {
    park_thread(after, None);
}

/// `park.rs`'s `park_thread`.
pub(crate) fn park_thread<F: FnOnce(Waiter) -> bool>(after: F, deadline: Option<Instant>) -> bool {
    let parker = thread_parker();
    let gen = parker.prepare();
    if !after(Waiter::Thread {
        parker: parker.clone(),
        gen,
    }) {
        return true;
    }
    parker.wait(gen, deadline)
}

/// `park.rs`'s `Parking`.
pub(crate) struct Parking {
    waiter: Waiter,
}

/// `park.rs`'s `prepare` on a plain thread.
pub(crate) fn prepare() -> Parking {
    let parker = thread_parker();
    let gen = parker.prepare();
    Parking {
        waiter: Waiter::Thread { parker, gen },
    }
}

impl Parking {
    pub(crate) fn waiter(&self) -> &Waiter {
        &self.waiter
    }

    /// `after` runs just before the thread sleeps, as in `park.rs`.
    pub(crate) fn park<F: FnOnce()>(
        self,
        _reason: WaitReason,
        deadline: Option<Instant>,
        after: F,
    ) {
        let Waiter::Thread { parker, gen } = self.waiter;
        after();
        parker.wait(gen, deadline);
    }
}
