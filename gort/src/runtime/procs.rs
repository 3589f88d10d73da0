//! `set_procs` (Go's `GOMAXPROCS(n)`, `procresize`): growing adds Ps to
//! the idle list; shrinking retires idle Ps beyond `n` at once and running
//! ones when their M next schedules; whoever puts a P out of service moves
//! its queue to the global one (`pidleput`).

use std::sync::atomic::Ordering;

use super::m::MCtx;
use super::p::{P, P_IDLE, P_RETIRED};
use super::sched::{Sched, MAX_PROCS};
use super::schedule::reset_spinning;

impl Sched {
    /// Go's GOMAXPROCS(n): returns the old value; 0 only queries.
    pub(crate) fn set_procs(&self, n: usize) -> usize {
        let mut inner = self.inner.lock();
        let old = self.nprocs.load(Ordering::Acquire);
        if n == 0 || n == old {
            return old;
        }
        let n = n.min(MAX_PROCS);
        if n > old {
            for id in old..n {
                if id >= self.created() {
                    // Born out of service; the loop below puts it in.
                    let p = P::new(id);
                    p.status.store(P_RETIRED, Ordering::Relaxed);
                    let _ = self.allp[id].set(p);
                    self.created.store(id + 1, Ordering::Release);
                }
            }
            self.nprocs.store(n, Ordering::Release);
            for id in old..n {
                let p = self.p(id);
                if p.status() == P_RETIRED {
                    p.status.store(P_IDLE, Ordering::Release);
                    inner.idle_ps.push(id);
                    self.npidle.fetch_add(1, Ordering::SeqCst);
                }
            }
            drop(inner);
            self.wakep();
        } else {
            self.nprocs.store(n, Ordering::Release);
            // Idle Ps beyond n retire now; running ones when their M next
            // schedules (`retire` moves their queue to the global one).
            let mut removed = 0;
            inner.idle_ps.retain(|&id| {
                if id >= n {
                    self.allp[id]
                        .get()
                        .expect("idle P exists")
                        .status
                        .store(P_RETIRED, Ordering::Release);
                    removed += 1;
                    false
                } else {
                    true
                }
            });
            self.npidle.fetch_sub(removed, Ordering::SeqCst);
        }
        old
    }
}

/// Moves a P that `set_procs` removed out of service.
pub(crate) fn retire(ctx: &MCtx, p: &P) {
    let sched = &*ctx.sched;
    // SAFETY: this M holds `p`.
    let local = unsafe { p.local() };
    let cached = std::mem::take(&mut local.gfree);
    for g in cached {
        sched.put_g(g, None);
    }
    let mut inner = sched.inner.lock();
    if let Some(p) = ctx.release() {
        // Moves its queue to the global one (or sysmon, which took the P,
        // does when it hands the P on).
        sched.pidleput(&mut inner, p);
    }
    if let Some(p) = sched.pidleget(&mut inner) {
        drop(inner);
        ctx.acquire(p);
    } else {
        drop(inner);
    }
    if ctx.spinning.get() {
        reset_spinning(ctx);
    }
    sched.wakep();
}
