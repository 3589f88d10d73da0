//! A one-shot sleep/wake-up flag for an OS thread (Go's `note`).
//!
//! An idle machine sleeps on its note until another thread hands it a P
//! (`startm`) or a timer comes due. Wake-ups may be stale (sent to an M that
//! already woke for another reason); sleepers treat every return as "look
//! again", so a stale wake-up costs one extra loop and is never lost.
//! Its atomic and clock come from `crate::loom`: the hand-off models
//! (`mailbox.rs`, `stop.rs`) sleep on it.

use std::time::Duration;

use crate::loom::atomic::{AtomicU32, Ordering};
use crate::loom::time::Instant;

use super::futex;

#[derive(Default)]
pub(crate) struct Note {
    state: AtomicU32,
}

impl Note {
    /// Sleeps until [`wakeup`](Self::wakeup) or until `timeout` passes.
    pub(crate) fn sleep(&self, timeout: Option<Duration>) {
        let deadline = timeout.map(|d| Instant::now() + d);
        while self.state.load(Ordering::Acquire) == 0 {
            let remaining = match deadline {
                Some(at) => match at.checked_duration_since(Instant::now()) {
                    Some(d) if !d.is_zero() => Some(d),
                    _ => return,
                },
                None => None,
            };
            futex::wait(&self.state, 0, remaining);
        }
    }

    pub(crate) fn wakeup(&self) {
        if self.state.swap(1, Ordering::Release) == 0 && !crate::loom::mutant("note_no_wake") {
            futex::wake(&self.state, 1);
        }
    }

    pub(crate) fn clear(&self) {
        self.state.store(0, Ordering::Release);
    }
}
