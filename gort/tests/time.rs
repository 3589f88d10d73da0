//! Timers at scale and their Go 1.23 guarantees: many sleeping goroutines
//! each woken by its own timer, stale-value freedom after stop/reset, a
//! slow ticker receiver losing ticks, and stopped timers not piling up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::runtime::Builder as RtBuilder;
use gort::sync::WaitGroup;
use gort::time::{Ticker, Timer};

fn sleepers(n: usize) {
    let woke = RtBuilder::new().procs(2).build().unwrap().run(move || {
        let woke = Arc::new(AtomicUsize::new(0));
        let early = Arc::new(AtomicUsize::new(0));
        let wg = WaitGroup::new();
        for i in 0..n {
            let (woke, early) = (woke.clone(), early.clone());
            // Deadlines spread over 0..200 ms, in a scrambled order.
            let d = Duration::from_micros(((i * 7919) % 200_000) as u64);
            wg.go(move || {
                let at = Instant::now() + d;
                gort::time::sleep_until(at);
                if Instant::now() < at {
                    early.fetch_add(1, Ordering::Relaxed);
                }
                woke.fetch_add(1, Ordering::Relaxed);
            });
        }
        wg.wait();
        assert_eq!(
            early.load(Ordering::Relaxed),
            0,
            "a sleeper woke before its deadline"
        );
        woke.load(Ordering::Relaxed)
    });
    assert_eq!(woke, n);
}

#[test]
fn a_hundred_thousand_sleepers_each_wake_after_their_deadline() {
    sleepers(100_000);
}

#[test]
#[ignore = "a million goroutines: run with --ignored"]
fn a_million_sleepers_each_wake_after_their_deadline() {
    sleepers(1_000_000);
}

#[gort::test]
fn stop_and_reset_leave_no_stale_value() {
    for _ in 0..200 {
        let t = Timer::new(Duration::from_micros(50));
        gort::time::sleep(Duration::from_micros(200)); // it has fired by now
                                                       // Fired but not received: stop reports it prevented the delivery.
        assert!(t.stop());
        assert!(t.chan().try_recv().is_err(), "a stale value after stop");
        // A reset timer delivers only its new deadline's value.
        let before = Instant::now();
        assert!(!t.reset(Duration::from_millis(1)));
        let v = t.chan().recv().unwrap();
        assert!(v >= before + Duration::from_millis(1));
    }
}

#[gort::test]
fn a_slow_ticker_receiver_loses_ticks_instead_of_queueing_them() {
    let t = Ticker::new(Duration::from_micros(200));
    gort::time::sleep(Duration::from_millis(20)); // ~100 periods pass unreceived
                                                  // At most one tick was kept (plus perhaps one that came due just now);
                                                  // queued ticks would number about a hundred.
    let kept = t.chan().try_iter().count();
    assert!((1..=2).contains(&kept), "{kept} ticks were waiting");
    let a = t.chan().recv().unwrap();
    let b = t.chan().recv().unwrap();
    assert!(b > a);
    t.stop();
    assert!(t.chan().try_recv().is_err());
}

#[gort::test]
fn stopped_timers_do_not_fire_and_timer_goroutines_can_select_on_them() {
    let fired = Arc::new(AtomicUsize::new(0));
    let wg = WaitGroup::new();
    for i in 0..1_000u64 {
        let fired = fired.clone();
        wg.go(move || {
            let t = Timer::new(Duration::from_millis(1 + i % 5));
            if i % 2 == 0 {
                assert!(t.stop());
                let (_keep, never) = gort::chan::bounded::<()>(0);
                gort::select! {
                    recv(t.chan()) -> _ => { fired.fetch_add(1, Ordering::Relaxed); },
                    recv(never) -> _ => unreachable!(),
                    default(Duration::from_millis(10)) => {},
                }
            } else {
                t.chan().recv().unwrap();
            }
        });
    }
    wg.wait();
    assert_eq!(fired.load(Ordering::Relaxed), 0);
}

#[test]
fn context_deadline_cancels_a_tree_of_goroutines() {
    let errs = RtBuilder::new().procs(2).build().unwrap().run(|| {
        let (root, _cancel) = gort::context::background().with_timeout(Duration::from_millis(5));
        let hs: Vec<_> = (0..100)
            .map(|i| {
                let (ctx, cancel) = if i % 2 == 0 {
                    root.with_cancel()
                } else {
                    root.with_timeout(Duration::from_secs(3600))
                };
                gort::go(move || {
                    let _cancel = cancel;
                    let _ = ctx.done().recv();
                    ctx.err()
                })
            })
            .collect();
        let errs: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            root.children(),
            0,
            "cancelled children unlink from the parent"
        );
        errs
    });
    assert!(errs
        .iter()
        .all(|e| *e == Some(gort::context::ContextError::DeadlineExceeded)));
}
