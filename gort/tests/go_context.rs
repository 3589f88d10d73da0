//! Ports of Go's src/context/context_test.go to `gort::context`:
//! cancellation propagates to every descendant and never to the parent,
//! `err()` distinguishes Canceled from DeadlineExceeded (the first cause
//! wins), a child's deadline is the earlier of its own and its parent's,
//! `done()` works in `select!`, and dropping a `CancelFn` cancels.
//!
//! Rust note: `let (ctx, _) = parent.with_cancel();` drops the CancelFn at
//! once and so cancels `ctx` at once; Go's `ctx, _ := ...` idiom becomes
//! `let (ctx, _cancel) = ...` here.

mod common;
use common::watchdog;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use gort::chan::{self, RecvTimeoutError, TryRecvError};
use gort::context::{background, CancelFn, Context, ContextError};
use gort::runtime::Builder as RtBuilder;
use gort::sync::WaitGroup;

const HOUR: Duration = Duration::from_secs(3600);

/// `ctx.done()` would block right now, and `err()` is None.
#[track_caller]
fn assert_live(ctx: &Context, name: &str) {
    assert_eq!(
        ctx.done().try_recv(),
        Err(TryRecvError::Empty),
        "<-{name}.done() should block"
    );
    assert_eq!(ctx.err(), None, "{name}.err()");
}

/// `ctx.done()` is closed right now and `err()` is `want`.
#[track_caller]
fn assert_finished(ctx: &Context, name: &str, want: ContextError) {
    assert_eq!(
        ctx.done().try_recv(),
        Err(TryRecvError::Disconnected),
        "<-{name}.done() blocked, but shouldn't have"
    );
    assert!(ctx.done().is_closed());
    assert_eq!(ctx.err(), Some(want), "{name}.err()");
}

/// Observes `ctx` now: if `err()` is set or `done()` is closed, the clock
/// read AFTER the observation must be at or past `not_before` (a deadline
/// never fires early). Returns whether `done()` was closed.
#[track_caller]
fn observe_not_early(ctx: &Context, not_before: Instant, name: &str) -> bool {
    let err = ctx.err();
    let closed = ctx.done().try_recv() == Err(TryRecvError::Disconnected);
    let now = Instant::now();
    if err.is_some() || closed {
        assert!(
            now >= not_before,
            "{name}: err() {err:?}, done closed {closed}, {:?} before the deadline",
            not_before - now
        );
    }
    closed
}

/// Go's testDeadline: waits for `done` (the watchdog turns a hang into a
/// failure), then checks the error. `not_before` is a lower bound of the
/// context's deadline: until then `err()` stays None and `done()` open
/// (checked by polling until shortly before it), and `done()` closes no
/// earlier than it.
#[track_caller]
fn wait_deadline(ctx: &Context, not_before: Instant, name: &str) {
    while Instant::now() + Duration::from_millis(2) < not_before {
        if observe_not_early(ctx, not_before, name) {
            break;
        }
        gort::time::sleep(Duration::from_millis(1));
    }
    assert!(
        ctx.done().recv().is_err(),
        "{name}: done() delivered a value"
    );
    let now = Instant::now();
    assert!(
        now >= not_before,
        "{name}: done() closed {:?} before the deadline",
        not_before - now
    );
    assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded), "{name}");
}

#[gort::test]
fn background_is_never_done() {
    let c = background();
    assert_live(&c, "background");
    assert_eq!(c.deadline(), None);
    let r = gort::select! {
        recv(c.done()) -> _ => "done",
        default => "blocked",
    };
    assert_eq!(r, "blocked");
    let t = Instant::now();
    assert_eq!(
        c.done().recv_timeout(Duration::from_millis(10)),
        Err(RecvTimeoutError::Timeout)
    );
    assert!(t.elapsed() >= Duration::from_millis(10));
}

#[gort::test]
fn with_cancel_cancels_the_context_its_clones_and_its_children() {
    let (c1, cancel) = background().with_cancel();
    let o = c1.clone();
    let (c2, _cancel2) = o.with_cancel();
    let contexts = [("c1", &c1), ("clone", &o), ("c2", &c2)];
    for (name, c) in contexts {
        assert_live(c, name);
    }
    cancel.cancel();
    for (name, c) in contexts {
        assert_finished(c, name, ContextError::Canceled);
    }
}

#[gort::test]
fn parent_finishes_child() {
    // Context tree:
    //   parent -> cancel_child
    //   parent -> timer_child
    let (parent, cancel) = background().with_cancel();
    let (cancel_child, _stop1) = parent.with_cancel();
    let (timer_child, _stop2) = parent.with_timeout(10_000 * HOUR);
    let (grandchild, _stop3) = timer_child.with_cancel();
    for (name, c) in [
        ("parent", &parent),
        ("cancel_child", &cancel_child),
        ("timer_child", &timer_child),
        ("grandchild", &grandchild),
    ] {
        assert_live(c, name);
    }
    cancel.cancel();
    // parent and children are all finished when cancel returns.
    for (name, c) in [
        ("parent", &parent),
        ("cancel_child", &cancel_child),
        ("timer_child", &timer_child),
        ("grandchild", &grandchild),
    ] {
        assert_finished(c, name, ContextError::Canceled);
    }
    // Deriving from a cancelled parent gives a cancelled context.
    let (pre1, _c1) = parent.with_cancel();
    assert_finished(&pre1, "precanceled with_cancel", ContextError::Canceled);
    let (pre2, _c2) = parent.with_timeout(HOUR);
    assert_finished(&pre2, "precanceled with_timeout", ContextError::Canceled);
    let (pre3, _c3) = parent.with_deadline(Instant::now() - Duration::from_secs(1));
    assert_finished(&pre3, "precanceled with_deadline", ContextError::Canceled);
}

#[gort::test]
fn child_finishes_first_and_the_parent_lives_on() {
    let (cancelable, _stop) = background().with_cancel();
    for parent in [background(), cancelable] {
        let (child, cancel) = parent.with_cancel();
        assert_live(&parent, "parent");
        assert_live(&child, "child");
        cancel.cancel();
        assert_finished(&child, "child", ContextError::Canceled);
        assert_live(&parent, "parent");
    }
    // also for timeout children, which are cancelled or expire
    let (parent, _stop) = background().with_cancel();
    let (child, cancel) = parent.with_timeout(HOUR);
    cancel.cancel();
    assert_finished(&child, "timeout child", ContextError::Canceled);
    assert_live(&parent, "parent");
    let t = Instant::now();
    let (child, _c) = parent.with_timeout(Duration::from_millis(5));
    wait_deadline(&child, t + Duration::from_millis(5), "expired child");
    assert_live(&parent, "parent of an expired child");
}

#[gort::test]
fn deadline_expires_and_a_child_keeps_the_earlier_one() {
    let _w = watchdog("TestDeadline");
    let at = Instant::now() + Duration::from_millis(50);
    let (c, _cancel) = background().with_deadline(at);
    assert_eq!(c.deadline(), Some(at));
    wait_deadline(&c, at, "with_deadline");

    // a child with a later deadline inherits the parent's earlier one
    let at = Instant::now() + Duration::from_millis(50);
    let (p, _cp) = background().with_deadline(at);
    let (c, _cc) = p.with_deadline(Instant::now() + Duration::from_secs(4));
    assert_eq!(
        c.deadline(),
        Some(at),
        "the child's deadline is the earlier one"
    );
    wait_deadline(&c, at, "with_deadline+with_deadline");
    wait_deadline(&p, at, "the parent");

    // deadlines in the past or now are already exceeded
    let (c, _cancel) = background().with_deadline(Instant::now() - Duration::from_millis(1));
    assert_finished(
        &c,
        "with_deadline in the past",
        ContextError::DeadlineExceeded,
    );
    let (c, _cancel) = background().with_deadline(Instant::now());
    assert_finished(&c, "with_deadline now", ContextError::DeadlineExceeded);
}

#[gort::test]
fn timeout_expires_with_deadline_exceeded() {
    let _w = watchdog("TestTimeout");
    let start = Instant::now();
    let (c, _cancel) = background().with_timeout(Duration::from_millis(50));
    let dl = c.deadline().expect("a timeout context has a deadline");
    assert!(dl >= start + Duration::from_millis(50));
    wait_deadline(&c, start + Duration::from_millis(50), "with_timeout");
    assert!(start.elapsed() >= Duration::from_millis(50));

    // nested: the child's later timeout inherits the parent's deadline
    let start = Instant::now();
    let (p, _cp) = background().with_timeout(Duration::from_millis(50));
    let (c, _cc) = p.with_timeout(Duration::from_secs(3));
    assert_eq!(c.deadline(), p.deadline());
    wait_deadline(
        &c,
        start + Duration::from_millis(50),
        "with_timeout+with_timeout",
    );
    assert_eq!(p.err(), Some(ContextError::DeadlineExceeded));
}

#[gort::test]
fn a_child_with_an_earlier_deadline_expires_alone() {
    let _w = watchdog("earlier child deadline");
    let (p, _cp) = background().with_timeout(HOUR);
    let t = Instant::now();
    let (c, _cc) = p.with_timeout(Duration::from_millis(20));
    assert!(c.deadline().unwrap() < p.deadline().unwrap());
    wait_deadline(&c, t + Duration::from_millis(20), "child");
    assert_live(&p, "parent");
}

#[gort::test]
fn canceled_timeout_reports_canceled() {
    let (c, _c0) = background().with_timeout(Duration::from_secs(1));
    let (c, cancel) = c.with_timeout(Duration::from_secs(2));
    cancel.cancel();
    assert_finished(&c, "cancelled timeout", ContextError::Canceled);
}

#[gort::test]
fn the_first_cause_wins() {
    let _w = watchdog("first cause");
    // cancelled, then the deadline passes: still Canceled
    let (c, cancel) = background().with_timeout(Duration::from_millis(10));
    cancel.cancel();
    gort::time::sleep(Duration::from_millis(30));
    assert_finished(&c, "cancelled before its deadline", ContextError::Canceled);
    // expired, then cancelled: still DeadlineExceeded
    let t = Instant::now();
    let (c, cancel) = background().with_timeout(Duration::from_millis(5));
    wait_deadline(&c, t + Duration::from_millis(5), "expired");
    cancel.cancel();
    assert_finished(&c, "cancelled after expiry", ContextError::DeadlineExceeded);
}

#[gort::test]
fn dropping_the_cancel_fn_cancels() {
    let (c, cancel) = background().with_cancel();
    let (child, _cc) = c.with_cancel();
    assert_live(&c, "c");
    drop(cancel);
    assert_finished(&c, "c", ContextError::Canceled);
    assert_finished(&child, "child", ContextError::Canceled);

    let (c, cancel) = background().with_timeout(HOUR);
    drop(cancel);
    assert_finished(&c, "timeout c", ContextError::Canceled);

    // `_` drops the CancelFn at once
    let (c, _) = background().with_deadline(Instant::now() + HOUR);
    assert_finished(&c, "let (c, _)", ContextError::Canceled);

    // a clone of the context does not keep it alive: only the CancelFn does
    let (c, cancel) = background().with_cancel();
    let keep = c.clone();
    drop(c);
    assert_live(&keep, "clone");
    drop(cancel);
    assert_finished(&keep, "clone", ContextError::Canceled);
}

#[gort::test(procs = 4)]
fn simultaneous_cancels() {
    let _w = watchdog("TestSimultaneousCancels");
    let (root, cancel) = background().with_cancel();
    let mut all: Vec<(Context, CancelFn)> = vec![(root.clone(), cancel)];
    let mut q = VecDeque::from([root]);
    // Create a tree of contexts.
    while let Some(parent) = q.pop_front() {
        if all.len() >= 100 {
            break;
        }
        for _ in 0..4 {
            let (ctx, cancel) = parent.with_cancel();
            q.push_back(ctx.clone());
            all.push((ctx, cancel));
        }
    }
    let ctxs: Vec<Context> = all.iter().map(|(c, _)| c.clone()).collect();
    // Start all the cancels, in reverse creation order.
    let wg = WaitGroup::new();
    for (_, cancel) in all.into_iter().rev() {
        wg.go(move || cancel.cancel());
    }
    // Wait on all the contexts.
    for (i, ctx) in ctxs.iter().enumerate() {
        assert!(ctx.done().recv().is_err(), "context {i}");
        assert_eq!(ctx.err(), Some(ContextError::Canceled), "context {i}");
    }
    wg.wait();
}

#[gort::test(procs = 4)]
fn interlocked_cancels() {
    let _w = watchdog("TestInterlockedCancels");
    let (parent, cancel_parent) = background().with_cancel();
    let (child, cancel_child) = parent.with_cancel();
    let p = parent.clone();
    gort::go(move || {
        let _ = p.done().recv();
        cancel_child.cancel();
    });
    cancel_parent.cancel();
    assert!(child.done().recv().is_err());
    assert_eq!(child.err(), Some(ContextError::Canceled));
}

fn lcg(x: &mut u64) -> u64 {
    *x = x
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *x >> 33
}

fn test_layers(seed: u64, test_timeout: bool) {
    let mut rng = seed;
    let timeout = Duration::from_millis(200);
    let min_layers = 30;
    let mut cancels: Vec<CancelFn> = Vec::new();
    let mut num_timers = 0;
    let start = Instant::now();
    let mut ctx = background();
    let mut i = 0;
    while i < min_layers || num_timers == 0 || cancels.is_empty() {
        let (c, cancel) = if lcg(&mut rng) % 2 == 0 {
            ctx.with_cancel()
        } else {
            num_timers += 1;
            ctx.with_timeout(timeout)
        };
        ctx = c;
        cancels.push(cancel);
        i += 1;
    }
    assert_live(
        &ctx,
        &format!("seed={seed}: ctx should not be canceled yet"),
    );
    if test_timeout {
        wait_deadline(
            &ctx,
            start + timeout,
            &format!("seed={seed}: ctx should have timed out"),
        );
    } else {
        let k = lcg(&mut rng) as usize % cancels.len();
        cancels.swap_remove(k).cancel();
        assert_finished(&ctx, &format!("seed={seed}"), ContextError::Canceled);
    }
}

#[gort::test]
fn layers_cancel() {
    for seed in 1..20 {
        test_layers(seed, false);
    }
}

#[gort::test]
fn layers_timeout() {
    let _w = watchdog("TestLayersTimeout");
    test_layers(7, true);
    test_layers(8, true);
}

#[gort::test]
fn deep_and_wide_descendants_are_all_cancelled() {
    let (root, cancel) = background().with_cancel();
    let mut keep = Vec::new();
    let mut ctx = root.clone();
    for depth in 0..1000 {
        let (c, cf) = if depth % 3 == 0 {
            ctx.with_timeout(HOUR)
        } else {
            ctx.with_cancel()
        };
        keep.push((c.clone(), cf));
        ctx = c;
    }
    for _ in 0..1000 {
        let (c, cf) = root.with_cancel();
        keep.push((c, cf));
    }
    for (c, _) in &keep {
        assert_live(c, "descendant");
    }
    cancel.cancel();
    for (i, (c, _)) in keep.iter().enumerate() {
        assert_finished(c, &format!("descendant {i}"), ContextError::Canceled);
    }
}

#[gort::test(procs = 2)]
fn done_is_usable_in_select() {
    let _w = watchdog("done in select");
    let (ctx, cancel) = background().with_cancel();
    let (work_tx, work) = chan::bounded::<u32>(0);
    let c = ctx.clone();
    let worker = gort::go(move || {
        let mut sum = 0;
        loop {
            gort::select! {
                recv(c.done()) -> _ => return (sum, c.err()),
                recv(work) -> v => sum += v.unwrap(),
            }
        }
    });
    for i in 1..=10 {
        work_tx.send(i).unwrap();
    }
    cancel.cancel();
    assert_eq!(worker.join().unwrap(), (55, Some(ContextError::Canceled)));

    // and a timeout wins over a channel that never delivers, not early
    let t = Instant::now();
    let (ctx, _cancel) = background().with_timeout(Duration::from_millis(10));
    let (_idle_tx, idle) = chan::bounded::<u32>(0);
    let r = gort::select! {
        recv(idle) -> _ => None,
        recv(ctx.done()) -> _ => ctx.err(),
    };
    assert!(
        t.elapsed() >= Duration::from_millis(10),
        "done before the deadline"
    );
    assert_eq!(r, Some(ContextError::DeadlineExceeded));
}

#[gort::test]
fn context_error_is_a_std_error() {
    fn as_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> Box<dyn std::error::Error> {
        Box::new(e)
    }
    let a = as_error(ContextError::Canceled).to_string();
    let b = as_error(ContextError::DeadlineExceeded).to_string();
    assert!(!a.is_empty() && !b.is_empty());
    assert_ne!(a, b);
}

#[test]
fn a_plain_thread_waits_on_done_while_a_goroutine_cancels() {
    let _w = watchdog("context thread");
    let r = RtBuilder::new().procs(2).build().unwrap();
    let (ctx, cancel) = background().with_cancel();
    r.go(move || {
        gort::time::sleep(Duration::from_millis(10));
        cancel.cancel();
    });
    assert!(ctx.done().recv().is_err()); // blocks this OS thread
    assert_eq!(ctx.err(), Some(ContextError::Canceled));
    // a timeout context expires for a thread too, not before its deadline
    let start = Instant::now();
    let (ctx, _cancel) = background().with_timeout(Duration::from_millis(10));
    assert!(ctx.done().recv().is_err());
    assert!(start.elapsed() >= Duration::from_millis(10));
    assert_eq!(ctx.err(), Some(ContextError::DeadlineExceeded));
    // and goroutines wait on a context a thread cancels
    let (ctx, cancel) = background().with_cancel();
    let hs: Vec<_> = (0..10)
        .map(|_| {
            let c = ctx.clone();
            r.go(move || {
                let _ = c.done().recv();
                c.err()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(5));
    cancel.cancel();
    for h in hs {
        assert_eq!(h.join().unwrap(), Some(ContextError::Canceled));
    }
}
