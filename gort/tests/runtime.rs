//! Behaviour tests of the core runtime: spawning, joining, panics, scopes,
//! scheduling, procs, cancellation, WaitGroup and sleep.

mod common;
use common::{rt, watchdog};

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gort::runtime::Builder as RtBuilder;
use gort::sync::WaitGroup;

#[test]
fn join_returns_each_goroutines_value() {
    let sum = rt(2).run(|| {
        let hs: Vec<_> = (0..1000u64).map(|i| gort::go(move || i * i)).collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert_eq!(sum, (0..1000u64).map(|i| i * i).sum());
}

#[test]
fn go_macro_moves_its_captures() {
    fn add(a: u32, b: u32) -> u32 {
        a + b
    }
    let (a, b) = (40, 2);
    let v = rt(1).run(move || gort::go!(add(a, b)).join().unwrap());
    assert_eq!(v, 42);
}

#[test]
fn a_panic_comes_back_through_join_and_the_runtime_survives() {
    let r = rt(2);
    let (msg, after) = r.run(|| {
        let n = std::hint::black_box(7);
        let err = gort::go(move || -> u32 { panic!("boom {n}") })
            .join()
            .unwrap_err();
        let msg = err.downcast_ref::<String>().cloned().unwrap();
        (msg, gort::go(|| 5).join().unwrap())
    });
    assert_eq!(msg, "boom 7");
    assert_eq!(after, 5);
    assert_eq!(
        r.run(|| 11),
        11,
        "runtime usable after a goroutine panicked"
    );
}

#[test]
fn a_panic_in_main_resumes_in_the_caller_of_run() {
    let r = rt(1);
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        r.run(|| panic!("main failed"));
    }))
    .unwrap_err();
    assert_eq!(*err.downcast_ref::<&str>().unwrap(), "main failed");
}

#[test]
fn goroutines_can_be_spawned_and_joined_from_plain_threads() {
    let r = Arc::new(rt(2));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let r = r.clone();
            std::thread::spawn(move || {
                let hs: Vec<_> = (0..100).map(|i| r.go(move || t * 1000 + i)).collect();
                hs.into_iter().map(|h| h.join().unwrap()).sum::<usize>()
            })
        })
        .collect();
    let total: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let expect: usize = (0..4)
        .map(|t| (0..100).map(|i| t * 1000 + i).sum::<usize>())
        .sum();
    assert_eq!(total, expect);
}

#[test]
fn go_outside_any_runtime_uses_the_default_runtime() {
    let h = gort::go(gort::procs);
    assert!(h.join().unwrap() >= 1);
    let id = gort::go(|| ()).id();
    assert!(id.as_u64() > 0);
}

#[test]
fn join_handle_reports_finished_and_unique_ids() {
    rt(2).run(|| {
        let wg = WaitGroup::new();
        wg.add(1);
        let w2 = wg.clone();
        let h = gort::go(move || w2.wait());
        assert!(!h.is_finished());
        let ids: HashSet<_> = (0..100).map(|_| gort::go(|| ()).id()).collect();
        assert_eq!(ids.len(), 100);
        wg.done();
        let id = h.id();
        h.join().unwrap();
        assert!(!ids.contains(&id));
    });
}

#[test]
fn builder_names_sizes_and_rejects_bad_stack_sizes() {
    rt(1).run(|| {
        let h = gort::Builder::new()
            .name("deep")
            .stack_size(4 << 20)
            .spawn(|| {
                // ~1 MiB of frames: needs the bigger stack.
                fn recurse(n: u32) -> u64 {
                    let buf = [n as u8; 1024];
                    if n == 0 {
                        return buf[0] as u64;
                    }
                    std::hint::black_box(&buf);
                    recurse(n - 1) + buf[1] as u64
                }
                recurse(1000)
            })
            .unwrap();
        assert_eq!(
            h.join().unwrap(),
            (1..=1000u64).map(|n| n % 256).sum::<u64>()
        );
        let err = gort::Builder::new()
            .stack_size(100)
            .spawn(|| ())
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("stack_size"), "{err}");
    });
}

#[test]
fn runtime_builder_rejects_invalid_settings_with_named_errors() {
    let err = RtBuilder::new().procs(0).build().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("procs"), "{err}");
    let err = RtBuilder::new().stack_size(1).build().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("stack_size"), "{err}");
    let r = RtBuilder::new()
        .procs(3)
        .stack_size(20_000)
        .build()
        .unwrap();
    assert_eq!(r.procs(), 3);
}

#[test]
fn scoped_goroutines_borrow_and_are_all_joined() {
    rt(2).run(|| {
        let mut data = vec![1u64, 2, 3, 4];
        let factor = 10;
        let seen = AtomicUsize::new(0);
        let total = gort::scope(|s| {
            for x in data.iter_mut() {
                let seen = &seen;
                s.go(move || {
                    *x *= factor;
                    seen.fetch_add(1, Ordering::Relaxed);
                });
            }
            s.go(|| 5).join().unwrap()
        });
        assert_eq!(total, 5);
        assert_eq!(seen.load(Ordering::Relaxed), 5 - 1);
        assert_eq!(data, [10, 20, 30, 40]);
    });
}

#[test]
fn scope_from_a_plain_thread_blocks_it_until_all_finish() {
    let counter = AtomicUsize::new(0);
    gort::scope(|s| {
        for _ in 0..50 {
            s.go(|| {
                gort::time::sleep(Duration::from_millis(1));
                counter.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    assert_eq!(counter.load(Ordering::SeqCst), 50);
}

#[test]
fn an_unjoined_scoped_panic_makes_scope_panic_after_joining_all() {
    let finished = Arc::new(AtomicUsize::new(0));
    let f2 = finished.clone();
    let err = rt(2).run(move || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            gort::scope(|s| {
                s.go(|| panic!("scoped boom"));
                for _ in 0..10 {
                    let f = &f2;
                    s.go(move || {
                        gort::time::sleep(Duration::from_millis(2));
                        f.fetch_add(1, Ordering::SeqCst);
                    });
                }
            })
        }))
        .unwrap_err()
    });
    assert_eq!(
        finished.load(Ordering::SeqCst),
        10,
        "all joined before the panic"
    );
    assert_eq!(
        *err.downcast_ref::<&str>().unwrap(),
        "a scoped goroutine panicked"
    );
}

#[test]
fn a_joined_scoped_panic_does_not_propagate() {
    let v = rt(1).run(|| {
        gort::scope(|s| {
            let h = s.go(|| panic!("handled"));
            h.join().is_err()
        })
    });
    assert!(v);
}

#[test]
fn yield_now_interleaves_goroutines_on_one_processor() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l2 = log.clone();
    rt(1).run(move || {
        // All three join the rotation together: main can be preempted
        // between two spawns (its thread descheduled for 10 ms on a busy
        // machine), and a goroutine that already yielded is then rightly
        // ahead of one spawned after it.
        let gate = Arc::new(AtomicBool::new(false));
        let hs: Vec<_> = (0..3)
            .map(|id| {
                let log = l2.clone();
                let gate = gate.clone();
                gort::go(move || {
                    while !gate.load(Ordering::Acquire) {
                        gort::yield_now();
                    }
                    for step in 0..3 {
                        log.lock().unwrap().push((id, step));
                        gort::yield_now();
                    }
                })
            })
            .collect();
        gate.store(true, Ordering::Release);
        for h in hs {
            h.join().unwrap();
        }
    });
    let log = log.lock().unwrap();
    // Round-robin: no goroutine takes two steps while another waits.
    let steps: Vec<usize> = log.iter().map(|&(_, s)| s).collect();
    assert_eq!(steps, [0, 0, 0, 1, 1, 1, 2, 2, 2], "{log:?}");
}

#[test]
fn goroutines_run_in_parallel_on_two_processors() {
    // Each goroutine spins until the other has started: this completes only
    // if two Ms run them at once, i.e. the idle P was woken and stole work.
    let _w = watchdog("parallel goroutines");
    rt(2).run(|| {
        let a = Arc::new(AtomicBool::new(false));
        let b = Arc::new(AtomicBool::new(false));
        let (a2, b2) = (a.clone(), b.clone());
        let h1 = gort::go(move || {
            a2.store(true, Ordering::SeqCst);
            while !b2.load(Ordering::SeqCst) {
                std::hint::spin_loop();
            }
            std::thread::current().id()
        });
        let h2 = gort::go(move || {
            b.store(true, Ordering::SeqCst);
            while !a.load(Ordering::SeqCst) {
                std::hint::spin_loop();
            }
            std::thread::current().id()
        });
        assert_ne!(h1.join().unwrap(), h2.join().unwrap());
    });
}

#[test]
fn set_procs_returns_previous_and_zero_queries() {
    rt(2).run(|| {
        assert_eq!(gort::procs(), 2);
        assert_eq!(gort::set_procs(0), 2);
        assert_eq!(gort::set_procs(4), 2);
        assert_eq!(gort::procs(), 4);
        assert_eq!(gort::set_procs(1), 4);
        assert_eq!(gort::procs(), 1);
        assert_eq!(gort::set_procs(0), 1);
    });
}

#[test]
fn shrinking_and_growing_procs_under_load_loses_no_goroutine() {
    let _w = watchdog("set_procs under load");
    let count = Arc::new(AtomicUsize::new(0));
    let c2 = count.clone();
    rt(4).run(move || {
        let wg = WaitGroup::new();
        for i in 0..400 {
            let c = c2.clone();
            wg.go(move || {
                for _ in 0..20 {
                    gort::yield_now();
                }
                if i % 3 == 0 {
                    gort::time::sleep(Duration::from_micros(100));
                }
                c.fetch_add(1, Ordering::SeqCst);
            });
            if i == 100 {
                gort::set_procs(1);
            }
            if i == 250 {
                gort::set_procs(3);
            }
        }
        wg.wait();
        assert_eq!(gort::procs(), 3);
    });
    assert_eq!(count.load(Ordering::SeqCst), 400);
}

#[test]
fn num_goroutines_counts_live_ones() {
    let _w = watchdog("goroutine count settling");
    rt(2).run(|| {
        let base = gort::num_goroutines();
        assert!(base >= 1, "main counts");
        let release = WaitGroup::new();
        release.add(1);
        let started = WaitGroup::new();
        let hs: Vec<_> = (0..10)
            .map(|_| {
                let (r, s) = (release.clone(), started.clone());
                s.add(1);
                gort::go(move || {
                    s.done();
                    r.wait();
                })
            })
            .collect();
        started.wait();
        assert_eq!(gort::num_goroutines(), base + 10);
        release.done();
        for h in hs {
            h.join().unwrap();
        }
        // A goroutine is counted out just after it hands over its result
        // (as in Go); the count must settle at the base.
        while gort::num_goroutines() != base {
            gort::yield_now();
        }
        assert_eq!(gort::num_goroutines(), base);
    });
}

struct CountOnDrop(Arc<AtomicUsize>);
impl Drop for CountOnDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn run_cancels_parked_goroutines_and_runs_their_destructors() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let d2 = dropped.clone();
    let r = rt(2);
    let v = r.run(move || {
        let never = WaitGroup::new();
        never.add(1);
        let started = WaitGroup::new();
        for _ in 0..20 {
            let (n, s, d) = (never.clone(), started.clone(), d2.clone());
            s.add(1);
            gort::go(move || {
                let _guard = CountOnDrop(d);
                s.done();
                n.wait(); // never released
                unreachable!("a cancelled goroutine does not resume normally");
            });
        }
        // Sleepers with long timers.
        for _ in 0..5 {
            let (s, d) = (started.clone(), d2.clone());
            s.add(1);
            gort::go(move || {
                let _guard = CountOnDrop(d);
                s.done();
                gort::time::sleep(Duration::from_secs(3600));
            });
        }
        started.wait();
        "main done"
    });
    assert_eq!(v, "main done");
    assert_eq!(dropped.load(Ordering::SeqCst), 25);
    assert_eq!(r.run(gort::num_goroutines), 1, "only the new main is alive");
}

#[test]
fn dropping_a_runtime_cancels_its_goroutines_and_joins_report_it() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let r = rt(2);
    let wg = WaitGroup::new();
    wg.add(1);
    let started = WaitGroup::new();
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let (w, s, d) = (wg.clone(), started.clone(), dropped.clone());
            s.add(1);
            r.go(move || {
                let _g = CountOnDrop(d);
                s.done();
                w.wait();
            })
        })
        .collect();
    started.wait();
    drop(r);
    assert_eq!(dropped.load(Ordering::SeqCst), 10);
    for h in handles {
        let err = h.join().unwrap_err();
        assert_eq!(*err.downcast_ref::<&str>().unwrap(), gort::CANCELLED);
    }
}

#[test]
fn goroutines_cancelled_before_they_ran_report_it_through_join() {
    // One processor busy with main: the spawned goroutines are still queued
    // when main returns, so they are cancelled without running.
    let ran = Arc::new(AtomicUsize::new(0));
    let r2 = ran.clone();
    let handles = rt(1).run(move || {
        (0..5)
            .map(|_| {
                let r = r2.clone();
                gort::go(move || r.fetch_add(1, Ordering::SeqCst))
            })
            .collect::<Vec<_>>()
    });
    for h in handles {
        let err = h.join().unwrap_err();
        assert_eq!(*err.downcast_ref::<&str>().unwrap(), gort::CANCELLED);
    }
    assert_eq!(ran.load(Ordering::SeqCst), 0);
}

#[test]
fn waitgroup_negative_counter_panics_like_go() {
    let wg = WaitGroup::new();
    let err = std::panic::catch_unwind(|| wg.done()).unwrap_err();
    assert_eq!(
        *err.downcast_ref::<&str>().unwrap(),
        "sync: negative WaitGroup counter"
    );
}

#[test]
fn waitgroup_connects_goroutines_and_threads() {
    let r = rt(2);
    let wg = WaitGroup::new();
    let n = Arc::new(AtomicUsize::new(0));
    for _ in 0..100 {
        wg.add(1);
        let (w, n) = (wg.clone(), n.clone());
        r.go(move || {
            gort::time::sleep(Duration::from_micros(50));
            n.fetch_add(1, Ordering::SeqCst);
            w.done();
        });
    }
    wg.wait(); // a plain thread blocks
    assert_eq!(n.load(Ordering::SeqCst), 100);
    assert_eq!(wg.count(), 0);
    // And a goroutine waits for threads.
    let wg2 = WaitGroup::new();
    wg2.add(3);
    for _ in 0..3 {
        let w = wg2.clone();
        std::thread::spawn(move || w.done());
    }
    let w = wg2.clone();
    r.run(move || w.wait());
    assert_eq!(wg2.count(), 0);
}

#[test]
fn waitgroup_go_marks_done_even_on_panic() {
    rt(2).run(|| {
        let wg = WaitGroup::new();
        let ok = wg.go(|| 1);
        let bad = wg.go(|| -> i32 { panic!("x") });
        wg.wait();
        assert_eq!(ok.join().unwrap(), 1);
        assert!(bad.join().is_err());
        assert_eq!(wg.count(), 0);
    });
}

#[test]
fn sleepers_wake_in_deadline_order_and_sleep_at_least_as_asked() {
    // Deadlines are absolute from one base, so a sleeper that starts late
    // (a loaded machine) still has its place in the order. The base lies
    // 50 ms ahead so every sleeper is parked before the first deadline:
    // from then on the order is the timer heap's, even if the machine
    // stalls past several deadlines at once (timers that come due together
    // fire in deadline order; next test). With the base at "now", a stall
    // of 10 ms before the 0 ms sleeper first ran let the 10 ms one finish
    // first (seen once with two test suites in parallel on 2 cores).
    let order = Arc::new(Mutex::new(Vec::new()));
    let early = Arc::new(Mutex::new(Vec::new()));
    let (o2, e2) = (order.clone(), early.clone());
    rt(1).run(move || {
        let base = Instant::now() + Duration::from_millis(50);
        let wg = WaitGroup::new();
        for ms in [60u64, 20, 40, 0, 10] {
            let (o, e) = (o2.clone(), e2.clone());
            wg.go(move || {
                let at = base + Duration::from_millis(ms);
                gort::time::sleep_until(at);
                let now = Instant::now();
                if now < at {
                    e.lock().unwrap().push((ms, at - now));
                }
                o.lock().unwrap().push(ms);
            });
        }
        wg.wait();
    });
    assert_eq!(
        *early.lock().unwrap(),
        [],
        "sleep_until woke early (deadline ms, how early)"
    );
    assert_eq!(*order.lock().unwrap(), [0, 10, 20, 40, 60]);
}

#[test]
fn timers_that_fire_together_wake_in_deadline_order() {
    // All deadlines pass while the only processor is busy, so one timer
    // check finds them all due: they must run in deadline order.
    let order = Arc::new(Mutex::new(Vec::new()));
    let o2 = order.clone();
    rt(1).run(move || {
        // Far enough ahead that every goroutine parks before its deadline
        // even when the machine is busy (a goroutine reaching
        // `sleep_until` late returns at once, in run order, not deadline
        // order: 5 ms was not enough under load).
        let base = Instant::now() + Duration::from_millis(50);
        let parked = WaitGroup::new();
        let finished = WaitGroup::new();
        for k in [3u64, 1, 4, 0, 2] {
            let (o, p, f) = (o2.clone(), parked.clone(), finished.clone());
            p.add(1);
            f.add(1);
            gort::go(move || {
                p.done();
                let at = base + Duration::from_micros(k * 10);
                gort::time::sleep_until(at);
                let early = Instant::now() < at;
                o.lock().unwrap().push(if early { 100 + k } else { k });
                f.done();
            });
        }
        parked.wait();
        // Hold the processor past every deadline without a scheduling point.
        let past = base + Duration::from_millis(20);
        std::thread::sleep(past.saturating_duration_since(Instant::now()));
        finished.wait();
    });
    // (a sleeper that woke before its deadline shows as 100 + k)
    assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4]);
}

#[test]
fn sleep_does_not_hold_the_thread() {
    // On one processor, a goroutine that sleeps lets another run meanwhile:
    // the counter advances while the sleeper is parked.
    let progressed = rt(1).run(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicUsize::new(0));
        let (s, c) = (stop.clone(), count.clone());
        let spinner = gort::go(move || {
            while !s.load(Ordering::SeqCst) {
                c.fetch_add(1, Ordering::SeqCst);
                gort::yield_now();
            }
        });
        let before = count.load(Ordering::SeqCst);
        let t = Instant::now();
        gort::time::sleep(Duration::from_millis(20));
        assert!(t.elapsed() >= Duration::from_millis(20), "woke early");
        let after = count.load(Ordering::SeqCst);
        stop.store(true, Ordering::SeqCst);
        spinner.join().unwrap();
        after - before
    });
    assert!(progressed > 0);
}

#[test]
fn sleep_until_a_past_instant_returns_immediately_and_threads_can_sleep() {
    gort::time::sleep_until(Instant::now() - Duration::from_millis(1));
    // A plain thread sleeps (std's sleep), then wakes a parked goroutine.
    let r = rt(1);
    let (tx, rx) = gort::chan::bounded::<u32>(0);
    let h = r.go(move || rx.recv().unwrap() + 1);
    let t = Instant::now();
    gort::time::sleep(Duration::from_millis(3)); // plain thread
    assert!(t.elapsed() >= Duration::from_millis(3));
    let at = Instant::now() + Duration::from_millis(3);
    gort::time::sleep_until(at); // plain thread
    assert!(Instant::now() >= at);
    tx.send(41).unwrap();
    assert_eq!(h.join().unwrap(), 42);
}

#[test]
fn hundred_thousand_parked_goroutines() {
    parked(100_000);
}

#[test]
#[ignore = "a million goroutines: ~2 GB RSS; run with --ignored"]
fn a_million_parked_goroutines_with_guard_pages() {
    parked(1_000_000);
}

fn parked(n: usize) {
    let _w = watchdog("parked goroutines");
    let r = rt(2);
    let alive = r.run(move || {
        let release = WaitGroup::new();
        release.add(1);
        let parked = WaitGroup::new();
        parked.add(n as isize);
        let finished = WaitGroup::new();
        finished.add(n as isize);
        for _ in 0..n {
            let (r, p, f) = (release.clone(), parked.clone(), finished.clone());
            gort::go(move || {
                p.done();
                r.wait();
                f.done();
            });
        }
        parked.wait();
        let alive = gort::num_goroutines();
        release.done();
        finished.wait();
        alive
    });
    assert_eq!(alive, n + 1);
}

#[test]
fn gomaxprocs_environment_variable_sets_default_procs() {
    if std::env::var("GORT_TEST_CHILD").is_ok() {
        let expect: usize = std::env::var("GORT_TEST_EXPECT").unwrap().parse().unwrap();
        assert_eq!(RtBuilder::new().build().unwrap().procs(), expect);
        return;
    }
    let exe = std::env::current_exe().unwrap();
    for (val, expect) in [("3", 3usize), ("bogus", cores())] {
        let out = std::process::Command::new(&exe)
            .args([
                "--exact",
                "gomaxprocs_environment_variable_sets_default_procs",
                "--nocapture",
            ])
            .env("GORT_TEST_CHILD", "1")
            .env("GOMAXPROCS", val)
            .env("GORT_TEST_EXPECT", expect.to_string())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "GOMAXPROCS={val}: {stderr}");
        if val == "bogus" {
            assert!(stderr.contains("ignoring GOMAXPROCS=\"bogus\""), "{stderr}");
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().unwrap().get()
}

#[test]
fn a_destructor_that_waits_while_its_goroutine_unwinds_stays_on_its_thread() {
    // DESIGN.md rule 3: while a goroutine unwinds a panic, a park inside a
    // destructor blocks the thread instead of migrating the goroutine (std's
    // per-thread panic count must stay with it).
    struct WaitOnDrop(
        WaitGroup,
        Arc<Mutex<Option<(std::thread::ThreadId, std::thread::ThreadId)>>>,
    );
    impl Drop for WaitOnDrop {
        fn drop(&mut self) {
            let before = std::thread::current().id();
            self.0.wait();
            *self.1.lock().unwrap() = Some((before, std::thread::current().id()));
        }
    }
    let seen = Arc::new(Mutex::new(None));
    let s2 = seen.clone();
    let err = rt(2).run(move || {
        let wg = WaitGroup::new();
        wg.add(1);
        let w2 = wg.clone();
        let h = gort::go(move || {
            let _d = WaitOnDrop(w2, s2);
            panic!("unwinding");
        });
        gort::time::sleep(Duration::from_millis(5));
        wg.done();
        h.join().unwrap_err()
    });
    assert_eq!(*err.downcast_ref::<&str>().unwrap(), "unwinding");
    let (before, after) = seen.lock().unwrap().expect("destructor ran");
    assert_eq!(before, after);
}

#[test]
fn a_run_cancels_only_its_own_goroutines() {
    // Two overlapping `gort::run`s on the default runtime (as parallel tests
    // make them) and a goroutine spawned from a plain thread: the first run
    // ending cancels its own parked goroutine, and nothing of the others.
    let _w = watchdog("overlapping runs");
    let release_b = WaitGroup::new();
    release_b.add(1);
    let b_parked = WaitGroup::new();
    b_parked.add(1);
    let (rb, bp) = (release_b.clone(), b_parked.clone());
    let run_b = std::thread::spawn(move || {
        gort::run(move || {
            let child = gort::go({
                let rb = rb.clone();
                move || {
                    rb.wait();
                    "b's child finished normally"
                }
            });
            bp.done();
            rb.wait();
            child.join().unwrap()
        })
    });
    b_parked.wait();
    let detached_release = WaitGroup::new();
    detached_release.add(1);
    let dr = detached_release.clone();
    let detached = gort::go(move || {
        dr.wait();
        "detached finished normally"
    });
    let dropped = Arc::new(AtomicUsize::new(0));
    let d2 = dropped.clone();
    gort::run(move || {
        let never = WaitGroup::new();
        never.add(1);
        let started = WaitGroup::new();
        started.add(1);
        let (n, s) = (never.clone(), started.clone());
        gort::go(move || {
            let _g = CountOnDrop(d2);
            s.done();
            n.wait();
        });
        started.wait();
    });
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "run A's goroutine was cancelled"
    );
    release_b.done();
    assert_eq!(run_b.join().unwrap(), "b's child finished normally");
    detached_release.done();
    assert_eq!(detached.join().unwrap(), "detached finished normally");
}

#[test]
fn dropping_a_runtime_from_its_own_goroutine_is_a_clear_panic() {
    let r = Arc::new(rt(1));
    let last = r.clone();
    let main_dropped = WaitGroup::new();
    main_dropped.add(1);
    let md = main_dropped.clone();
    let h = r.go(move || {
        md.wait();
        drop(last); // the last reference: this goroutine would wait for itself
    });
    drop(r);
    main_dropped.done();
    let err = h.join().unwrap_err();
    let msg = err.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(
        msg.contains("cannot be dropped by one of its own goroutines"),
        "{msg}"
    );
}

#[test]
fn a_runnext_ping_pong_pair_does_not_starve_the_run_queue() {
    // On one processor, A and B hand off to each other through `runnext`
    // (each readies the other, then parks) forever, until C has run. C sits
    // in the local queue: it runs only if the scheduler demotes a long
    // `runnext` streak to the back of the queue.
    let _w = watchdog("runnext starvation");
    let rounds = rt(1).run(|| {
        let c_ran = Arc::new(AtomicBool::new(false));
        let (wa, wb) = (WaitGroup::new(), WaitGroup::new());
        wa.add(1);
        wb.add(1);
        let rounds = Arc::new(AtomicUsize::new(0));
        let a = {
            let (wa, wb, c_ran, rounds) = (wa.clone(), wb.clone(), c_ran.clone(), rounds.clone());
            gort::go(move || loop {
                wa.wait();
                wa.add(1);
                rounds.fetch_add(1, Ordering::Relaxed);
                let stop = c_ran.load(Ordering::SeqCst);
                wb.done();
                if stop {
                    return;
                }
            })
        };
        let b = {
            let (wa, wb, c_ran) = (wa.clone(), wb.clone(), c_ran.clone());
            gort::go(move || loop {
                wb.wait();
                wb.add(1);
                let stop = c_ran.load(Ordering::SeqCst);
                wa.done();
                if stop {
                    return;
                }
            })
        };
        // C yields first, which puts it at the tail of the queue; then the
        // pair starts ping-ponging through `runnext` in front of it.
        let c = {
            let c_ran = c_ran.clone();
            gort::go(move || {
                gort::yield_now();
                c_ran.store(true, Ordering::SeqCst)
            })
        };
        wa.done(); // start the ping-pong
        c.join().unwrap();
        a.join().unwrap();
        b.join().unwrap();
        rounds.load(Ordering::Relaxed)
    });
    assert!(rounds >= 1);
}

/// xorshift64: a deterministic source of choices for the stress test.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
fn randomized_scheduler_stress_runs_every_goroutine_exactly_once() {
    // Goroutines that spawn children, yield, sleep and join, while another
    // goroutine keeps changing procs: every node of the spawn tree must run
    // exactly once and every join must see its child's value.
    let _w = watchdog("scheduler stress");
    fn node(seed: u64, depth: u32, ran: Arc<AtomicUsize>) -> u64 {
        ran.fetch_add(1, Ordering::Relaxed);
        let mut x = seed | 1;
        let mut sum = 1;
        let mut kids = Vec::new();
        let fanout = if depth == 0 { 0 } else { next(&mut x) % 5 };
        for i in 0..fanout {
            let (s, r) = (next(&mut x) ^ i, ran.clone());
            kids.push(gort::go(move || node(s, depth - 1, r)));
            match next(&mut x) % 5 {
                0 => gort::yield_now(),
                1 => gort::time::sleep(Duration::from_micros(next(&mut x) % 300)),
                _ => {}
            }
        }
        for k in kids {
            sum += k.join().unwrap();
        }
        sum
    }
    let ran = Arc::new(AtomicUsize::new(0));
    let r2 = ran.clone();
    let total = rt(3).run(move || {
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let changer = gort::go(move || {
            let mut x = 7u64;
            while !s2.load(Ordering::Relaxed) {
                gort::set_procs(1 + (next(&mut x) % 4) as usize);
                gort::time::sleep(Duration::from_micros(200));
            }
        });
        let roots: Vec<_> = (0..64u64)
            .map(|i| {
                let r = r2.clone();
                gort::go(move || node(0x9E37_79B9 * (i + 1), 8, r))
            })
            .collect();
        let total: u64 = roots.into_iter().map(|h| h.join().unwrap()).sum();
        stop.store(true, Ordering::Relaxed);
        changer.join().unwrap();
        total
    });
    assert_eq!(total as usize, ran.load(Ordering::SeqCst));
    eprintln!("stress: {total} goroutines");
    assert!(total > 8, "the tree branched");
}

#[test]
fn a_goroutine_is_woken_by_a_goroutine_of_another_runtime() {
    let (a, b) = (rt(1), rt(2));
    let wg = WaitGroup::new();
    wg.add(1);
    let w = wg.clone();
    let waiter = a.go(move || {
        w.wait();
        "woken across runtimes"
    });
    let w = wg.clone();
    b.run(move || {
        gort::time::sleep(Duration::from_millis(2));
        w.done();
    });
    assert_eq!(waiter.join().unwrap(), "woken across runtimes");
}
