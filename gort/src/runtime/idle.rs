//! Idle Ps and Ms, spinning and waking (Go's `pidleget`/`pidleput`,
//! `wakep`, `startm`, `handoffp`, `stopm` in proc.go).
//!
//! `ready` and `go` put work on a P and call `wakep`, which starts (or
//! wakes) one *spinning* M only if there is an idle P and no M is already
//! spinning. A spinning M that finds work stops spinning and calls `wakep`
//! again, so wake-ups cascade only as far as there is work. A spinning M
//! that finds nothing releases its P, decrements the spinning count, and
//! then re-checks every run queue before sleeping: either the submitter
//! saw it spinning (and it sees the work on re-check) or the submitter saw
//! no spinner and woke an M.
//!
//! A P travels between owners as a value: the idle list, one M, or an idle
//! M's one-slot hand-off mailbox (`nextp`), which is written and read under
//! the scheduler lock so a P in transit cannot be lost (DESIGN.md rule 8).
//! The counters' steps are `spinning.rs`'s and the mailbox's
//! `mailbox.rs`'s (each loom-checked there).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::g::GRef;
use super::m::{MCtx, MShared, NO_P};
use super::mailbox;
use super::p::{PToken, P_IDLE, P_RETIRED, P_RUNNING};
use super::sched::{Inner, Sched};
use super::spinning;
use super::throw::throw;
use super::timers;

impl MShared {
    /// Puts P `p` in this M's one-slot mailbox (the caller then wakes it).
    /// The slot must be empty: a P is owned by exactly one of an M, the
    /// idle list or one mailbox (DESIGN.md rule 8). Idle Ms' mailboxes are
    /// written and read under the scheduler lock, together with the idle
    /// M list, so a P in transit cannot be lost to an M that woke on its
    /// own (a timer) and left the list meanwhile.
    pub(crate) fn handoff(&self, p: PToken, spinning: bool) {
        mailbox::post(&self.nextp, &self.next_spinning, p.into_slot(), spinning);
    }
}

impl Sched {
    /// Takes an idle P (lock held).
    pub(crate) fn pidleget(&self, inner: &mut Inner) -> Option<PToken> {
        let id = inner.idle_ps.pop()?;
        if self.p(id).status() != P_IDLE {
            throw("pidleget: a P on the idle list is not idle");
        }
        self.npidle.fetch_sub(1, Ordering::SeqCst);
        self.sysmon.p_busy();
        // A P going busy: the coarse clock parks read is fresh again.
        self.clock.store(timers::now(), Ordering::Relaxed);
        self.p(id).status.store(P_RUNNING, Ordering::Release);
        Some(PToken::claim(id))
    }

    /// Puts P `p` on the idle list, or retires it if `set_procs` removed
    /// it (lock held).
    pub(crate) fn pidleput(&self, inner: &mut Inner, p: PToken) {
        let id = p.into_slot();
        if id >= self.nprocs.load(Ordering::Acquire) {
            // Out of service (`set_procs` shrank). What its queue still
            // holds goes to the global queue (Go's `pp.destroy`): no M
            // schedules from a retired P, so it would wait there until
            // procs grew again (a hog's P that sysmon handed on, a
            // `blocking` call's). The caller wakes a P if it moved any.
            let p = self.p(id);
            if let Some(g) = p.runq.take_runnext() {
                // SAFETY: run queues hold GRef pointers.
                inner.global.push_back(unsafe { GRef::from_ptr(g) });
            }
            while let Some((g, _)) = p.runq.get() {
                // SAFETY: as above.
                inner.global.push_back(unsafe { GRef::from_ptr(g) });
            }
            self.global_len.store(inner.global.len(), Ordering::Release);
            p.status.store(P_RETIRED, Ordering::Release);
            return;
        }
        if self.p(id).status() != P_RUNNING {
            throw("pidleput: the P is not held (already idle or retired)");
        }
        self.p(id).status.store(P_IDLE, Ordering::Release);
        inner.idle_ps.push(id);
        self.npidle.fetch_add(1, Ordering::SeqCst);
    }

    /// Starts one spinning M if there is an idle P and no M spinning
    /// (Go's `wakep`).
    #[inline]
    pub(crate) fn wakep(&self) {
        if spinning::wanted(&self.npidle, &self.nmspinning) {
            self.wakep_slow();
        }
    }

    #[cold]
    pub(crate) fn wakep_slow(&self) {
        if !spinning::claim(&self.nmspinning) {
            return;
        }
        let p = {
            let mut inner = self.inner.lock();
            self.pidleget(&mut inner)
        };
        match p {
            Some(p) => self.startm(p, true),
            None => spinning::leave(&self.nmspinning),
        }
    }

    /// Like `wakep`, but also when an M is already spinning (used when
    /// work is queued from outside the runtime in bulk).
    pub(crate) fn wakep_force(&self) {
        let p = {
            let mut inner = self.inner.lock();
            self.pidleget(&mut inner)
        };
        if let Some(p) = p {
            self.startm(p, false);
        }
    }

    /// Hands P `p` to an idle M, or to a new thread.
    pub(crate) fn startm(&self, p: PToken, spinning: bool) {
        let mut inner = self.inner.lock();
        match inner.idle_ms.pop() {
            Some(m) => {
                m.handoff(p, spinning);
                drop(inner);
                m.note.wakeup();
            }
            None => {
                drop(inner);
                self.newm(p, spinning);
            }
        }
    }

    /// Places a P that its M gave up or sysmon took (Go's `handoffp`): to
    /// a thread if there is work for it (its queue, the global queue, its
    /// timers, an unwatched netpoller, or no one looking for work), else
    /// on the idle list.
    pub(crate) fn handoffp(&self, id: PToken) {
        super::trace::handoff(self.id, id.id());
        let p = self.p(id.id());
        if id.id() < self.nprocs.load(Ordering::Acquire) {
            if !p.runq.is_empty() || self.global_len() > 0 || p.timers.len() > 0 {
                self.startm(id, false);
                return;
            }
            if self.nmspinning.load(Ordering::SeqCst) + self.npidle.load(Ordering::SeqCst) == 0
                && self
                    .nmspinning
                    .compare_exchange(0, 1, Ordering::SeqCst, Ordering::Relaxed)
                    .is_ok()
            {
                self.startm(id, true);
                return;
            }
            if self
                .netpoll
                .get()
                .is_some_and(|np| np.has_waiters() && !np.is_blocked())
            {
                self.startm(id, false);
                return;
            }
        }
        let mut inner = self.inner.lock();
        self.pidleput(&mut inner, id);
        drop(inner);
        // Work may have been queued while the P was in transit.
        if self.global_len() > 0 {
            self.wakep();
        }
    }
}

/// Sleeps until handed a P. The M that finds the netpoller unwatched
/// blocks in `epoll_wait` instead (until an event, the earliest timer or
/// a wake-up) and runs what it readied; otherwise one M sleeps until the
/// earliest timer. Either then takes an idle P if one is free.
pub(crate) fn stopm(ctx: &MCtx) {
    let sched = &*ctx.sched;
    let m = &ctx.shared;
    // An M without a P is outside any window (sysmon may be waiting).
    debug_assert!(!m.using.load(Ordering::Relaxed) && m.p.load(Ordering::Relaxed) == NO_P);
    if sched.npidle.load(Ordering::SeqCst) == sched.nprocs.load(Ordering::SeqCst) {
        // The last P went idle: is anyone left who could wake anyone?
        super::deadlock::check(sched);
    }
    let np = sched.netpoll.get();
    let poll = np.is_some_and(|np| np.has_waiters() && !np.is_blocked());
    let timeout = {
        let mut inner = sched.inner.lock();
        if sched.shutdown.load(Ordering::Acquire) {
            return;
        }
        m.note.clear();
        if !poll {
            inner.idle_ms.push(m.clone());
        }
        match sched.next_timer() {
            Some(when) if inner.timer_sleeper.is_none() => {
                inner.timer_sleeper = Some(m.id);
                inner.timer_sleeper_polls = poll;
                sched.sleeper_until.store(when, Ordering::SeqCst);
                Some(Duration::from_nanos(when.saturating_sub(timers::now())))
            }
            Some(when) if poll => Some(Duration::from_nanos(when.saturating_sub(timers::now()))),
            _ => None,
        }
    };
    let polled = match np {
        Some(np) if poll => np.poll_blocking(timeout),
        _ => None,
    };
    if !poll {
        m.note.sleep(timeout);
    }
    let mut inner = sched.inner.lock();
    if inner.timer_sleeper == Some(m.id) {
        inner.timer_sleeper = None;
        inner.timer_sleeper_polls = false;
        sched.sleeper_until.store(u64::MAX, Ordering::SeqCst);
    }
    if let Some(pos) = inner.idle_ms.iter().position(|x| Arc::ptr_eq(x, m)) {
        inner.idle_ms.swap_remove(pos);
    }
    if let Some((p, spinning)) = mailbox::collect(&m.nextp, &m.next_spinning) {
        drop(inner);
        ctx.acquire(PToken::claim(p));
        ctx.spinning.set(spinning);
    } else if timeout.is_some() || poll {
        // Timers came due or the poller readied goroutines (onto the
        // global queue): run them if a P is free.
        if polled.is_some() || timeout.is_some() {
            if let Some(id) = sched.pidleget(&mut inner) {
                drop(inner);
                ctx.acquire(id);
            }
        }
    }
}
