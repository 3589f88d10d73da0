//! Creating goroutines and recycling them (Go's `newproc`, `gfget`,
//! `gfput`).
//!
//! A G and its stack come from the spawning P's cache of finished
//! goroutines (refilled from the runtime's list in batches), then from the
//! process-wide pool of G shells, then new. G structs are type-stable: they
//! are never freed, only recycled, so a stale waiter always points at a G.

use std::io;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering};

use super::g::{self, pack, unpack, GRef, RUNNABLE};
use super::group;
use super::lock::Lock;
use super::p::P;
use super::sched::Sched;
use super::throw::throw;
use crate::stack;

/// Process-wide goroutine ids (Go numbers goroutines from 1).
static NEXT_GOID: AtomicU64 = AtomicU64::new(1);
/// G shells released by dropped runtimes.
pub(crate) static SHELLS: Lock<Vec<GRef>> = Lock::new(Vec::new());

impl Sched {
    /// Creates a goroutine running `f` and queues it (Go's `newproc`).
    /// `f` must not unwind (the public layer catches panics).
    pub(crate) fn spawn<F>(&self, f: F, opts: SpawnOpts) -> io::Result<GRef>
    where
        F: FnOnce() + Send + 'static,
    {
        if self.shutdown.load(Ordering::Acquire) {
            return Err(io::Error::other("gort: the runtime has shut down"));
        }
        let size = opts.stack_size.unwrap_or(self.stack_size);
        // The P window closes before anything below can switch.
        let window = super::window::current_p(self);
        let here = window.as_deref();
        let g = self.get_g(size, here)?;
        // SAFETY: `g` was just taken from a free list or allocated: no one
        // else owns it until it is queued below.
        let stack = unsafe { g.stack_mut().take() }.expect("get_g returns a G with a stack");
        let id = next_goid(here);
        match here {
            // Holder only: a plain load and store, no locked instruction.
            Some(p) => p
                .spawned
                .store(p.spawned.load(Ordering::Relaxed) + 1, Ordering::Relaxed),
            None => {
                self.spawned.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Release: see `GRef::set_spawned_at`.
        g.id.store(id, Ordering::Release);
        g.preempt.store(false, Ordering::Relaxed);
        g.unwinding.store(false, Ordering::Relaxed);
        let group = match (opts.group, g::current()) {
            (Some(group), _) => group,
            (None, Some(cur)) if std::ptr::eq(cur.sched(), self) => {
                cur.group.load(Ordering::Relaxed)
            }
            _ => group::DETACHED,
        };
        g.group.store(group, Ordering::Relaxed);
        g.set_spawned_at(opts.location);
        g.waiting_at_clear();
        let name: Option<&'static str> = opts.name.map(|name| {
            let mut slot = g.name.lock();
            let name: &str = slot.insert(name.into_boxed_str());
            // SAFETY: the name lives in the immortal G until `put_g` clears
            // it after the goroutine finished; the overflow handler reads it
            // only while this goroutine runs.
            unsafe { std::mem::transmute::<&str, &'static str>(name) }
        });
        let (guard_lo, guard_hi) = stack.guard_range();
        // SAFETY: we own `g` (see above).
        unsafe {
            *g.info.get() = stack::overflow::StackInfo {
                guard_lo,
                guard_hi,
                size: stack.size(),
                id,
                name,
            };
        }
        g.sched
            .store(self as *const Sched as *mut Sched, Ordering::Release);
        let ctx = g::Context::with_stack(stack, move |y: &g::GYielder, ()| {
            /// The public layer catches every panic; one escaping `f` would
            /// be a gort bug, and unwinding into the scheduler worse.
            struct AbortOnUnwind(u64);
            impl Drop for AbortOnUnwind {
                fn drop(&mut self) {
                    eprintln!("gort: fatal: a panic escaped goroutine {}", self.0);
                    std::process::abort();
                }
            }
            let guard = AbortOnUnwind(id);
            let g = g::current().expect("a goroutine runs with CURRENT set");
            g.yielder.set(y as *const g::GYielder);
            if g.must_unwind() {
                // Cancelled before it ever ran: its closure (which reports
                // the cancellation to its JoinHandle) is dropped here, on
                // its own stack, where a destructor may park.
                g.unwinding
                    .store(true, std::sync::atomic::Ordering::Release);
                let dropped =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(f)));
                if dropped.is_err() {
                    eprintln!(
                        "gort: a destructor of goroutine {id}, cancelled before it ran, panicked"
                    );
                }
            } else {
                f();
            }
            std::mem::forget(guard);
        });
        // SAFETY: we own `g`.
        unsafe { *g.ctx_mut() = Some(ctx) };
        self.groups.count(here.map(|p| &p.counts), group, 1);
        let (gen, status) = unpack(g.state.load(Ordering::Relaxed));
        if status != super::g::IDLE && status != super::g::DEAD {
            throw("spawn: a G from the free list is still in use");
        }
        // A goroutine spawned into a cancelled group is dropped unrun by
        // `execute`, which checks the group (see group.rs).
        g.state.store(pack(gen, RUNNABLE), Ordering::Release);
        match here {
            Some(p) => {
                if let Some(batch) = p.runq.put(g.as_ptr(), true) {
                    self.global_put_batch(batch);
                }
            }
            None => self.global_put(g),
        }
        drop(window);
        self.wakep();
        super::park::preempt_point();
        Ok(g)
    }

    /// A G with a stack of `size` bytes: for the default size from the
    /// P's cache (refilled from the runtime's list in batches, as Go's
    /// `gfget`); otherwise a stackless G of this runtime (a finished one
    /// whose custom-size stack was freed), a shell from the process-wide
    /// pool, or a new one, given a fresh stack.
    pub(crate) fn get_g(&self, size: usize, here: Option<&P>) -> io::Result<GRef> {
        if size == self.stack_size {
            let cached = match here {
                Some(p) => {
                    // SAFETY: `current_p` returned our own P, held by this thread.
                    let local = unsafe { p.local() };
                    if local.gfree.is_empty() {
                        let mut global = self.gfree.lock();
                        let n = global.len().min(super::p::GFREE_REFILL);
                        let at = global.len() - n;
                        local.gfree.extend(global.drain(at..));
                    }
                    local.gfree.pop()
                }
                None => self.gfree.lock().pop(),
            };
            if let Some(g) = cached {
                // SAFETY: a G on a free list is owned by the list; we took it.
                debug_assert!(unsafe { g.stack_mut() }.is_some());
                return Ok(g);
            }
        }
        let (g, fresh) = match self.gfree_nostack.lock().pop() {
            Some(g) => (g, false),
            None => (SHELLS.lock().pop().unwrap_or_else(GRef::alloc), true),
        };
        let stack = match stack::alloc(size) {
            Ok(s) => s,
            Err(e) => {
                if fresh {
                    SHELLS.lock().push(g);
                } else {
                    self.gfree_nostack.lock().push(g);
                }
                return Err(e);
            }
        };
        // SAFETY: the G came off a free list or the pool: we own it, and it
        // holds no stack (free lists of stackless Gs hold only those).
        let slot = unsafe { g.stack_mut() };
        if slot.is_some() {
            throw("a stackless free G has a stack");
        }
        *slot = Some(stack);
        if fresh {
            self.allgs.lock().push(g);
        }
        Ok(g)
    }

    /// Recycles a finished G into the caches (Go's `gfput`): with its
    /// stack if that is the runtime's default size, else without (the
    /// stack is freed). The G is cleared before it is published: from the
    /// moment it is on a list, another thread may take it.
    pub(crate) fn put_g(&self, g: GRef, here: Option<&P>) {
        // SAFETY: the G is dead; the M that ran it owns it.
        if unsafe { (*g.info.get()).name.is_some() } {
            *g.name.lock() = None;
        }
        // SAFETY: as above.
        let stack = unsafe { g.stack_mut() };
        let default = stack.as_ref().is_some_and(|s| s.size() == self.stack_size);
        if !default {
            if let Some(s) = stack.take() {
                stack::free(s);
            }
            self.gfree_nostack.lock().push(g);
            return;
        }
        match here {
            Some(p) => {
                // SAFETY: `here` is the P held by this thread.
                let local = unsafe { p.local() };
                local.gfree.push(g);
                if local.gfree.len() > super::p::GFREE_MAX {
                    let half = local.gfree.len() / 2;
                    let moved: Vec<GRef> = local.gfree.drain(..half).collect();
                    self.gfree.lock().extend(moved);
                }
            }
            None => self.gfree.lock().push(g),
        }
    }
}

/// Per-goroutine spawn options.
pub(crate) struct SpawnOpts {
    pub(crate) name: Option<String>,
    pub(crate) stack_size: Option<usize>,
    pub(crate) location: &'static Location<'static>,
    /// The group to start in (a run's main goroutine); `None` inherits.
    pub(crate) group: Option<u32>,
}

/// Go's per-P goid cache: take ids from the global counter in batches of
/// 16, so spawning on many Ps does not contend on one cache line.
fn next_goid(here: Option<&P>) -> u64 {
    const BATCH: u64 = 16;
    let Some(p) = here else {
        return NEXT_GOID.fetch_add(1, Ordering::Relaxed);
    };
    // SAFETY: `here` is the P this thread holds.
    let local = unsafe { p.local() };
    if local.goid_next == local.goid_end {
        local.goid_next = NEXT_GOID.fetch_add(BATCH, Ordering::Relaxed);
        local.goid_end = local.goid_next + BATCH;
    }
    local.goid_next += 1;
    local.goid_next - 1
}

/// Gives back the deep pages of cached stacks whose goroutines exited since
/// they were last checked (Go's scavenger for stacks): a burst of deep
/// goroutines must not keep its memory for as long as its Gs sit in the
/// caches. The caller owns the Gs (it holds their P, or took them off the
/// runtime's list).
pub(crate) fn scavenge(gs: &[GRef]) {
    for g in gs {
        if g.stack_dirty.replace(false) {
            // SAFETY: a cached G is owned by its list, which the caller holds.
            if let Some(s) = unsafe { g.stack_mut() }.as_ref() {
                s.trim();
            }
        }
    }
}

impl Sched {
    /// sysmon, about once a second: scavenges the runtime's list of cached
    /// Gs and the caches of idle Ps, and asks the holders of busy Ps to
    /// scavenge theirs at their next scheduling round.
    pub(crate) fn scavenge_stacks(&self) {
        let list = std::mem::take(&mut *self.gfree.lock());
        scavenge(&list);
        self.gfree.lock().extend(list);
        for p in self.all_ps() {
            p.scavenge.store(true, Ordering::Relaxed);
        }
        let n = self.inner.lock().idle_ps.len();
        for _ in 0..n {
            // Hold one idle P at a time (its cache is its holder's).
            let Some(held) = self.pidleget(&mut self.inner.lock()) else {
                break;
            };
            let p = self.p(held.id());
            p.scavenge.store(false, Ordering::Relaxed);
            // SAFETY: we hold P `held` (taken off the idle list above).
            scavenge(&unsafe { p.local() }.gfree);
            self.pidleput(&mut self.inner.lock(), held);
            if self.global_len() > 0 || !p.runq.is_empty() {
                self.wakep();
            }
        }
    }
}
