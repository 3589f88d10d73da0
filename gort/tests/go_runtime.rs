//! Ports of Go's own scheduler and stack tests (src/runtime/proc_test.go and
//! src/runtime/stack_test.go) to gort's public API.
//!
//! Go's `runtime.GOMAXPROCS(n)` becomes an explicit runtime with `procs(n)`
//! (or `gort::set_procs` where the test changes it while running),
//! `runtime.Gosched` is `gort::yield_now`, `runtime.LockOSThread` is
//! `gort::lock_os_thread`, a system call is a `gort::blocking` call, and
//! `runtime.GC()` (a stop-the-world that must preempt every running
//! goroutine) becomes a `set_procs` change, which must take processors
//! away from whatever runs on them. Go's `defer` is a destructor, `recover`
//! is `catch_unwind` / `join`, and `Goexit` is the cancellation that
//! unwinds goroutines still parked when their runtime's main returns.
//!
//! Every test runs under [`within`]: a hang fails the test with a message
//! after a generous bound (a liveness check, never a speed check); nothing
//! here asserts an upper bound on elapsed time.

use std::collections::HashMap;
use std::hint::black_box;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use gort::chan::{self, Receiver, Sender};
use gort::sync::WaitGroup;

/// A runtime with `procs` processors.
fn rt(procs: usize) -> gort::runtime::Runtime {
    gort::runtime::Builder::new().procs(procs).build().unwrap()
}

/// Runs `f` on its own thread and fails the test if it has not returned
/// after `secs` seconds (a liveness bound: the test hung). A panic in `f`
/// (a failed assertion) resumes here with its own message. A hung `f` is
/// left behind on its thread.
fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(what.to_string())
        .spawn(move || {
            let _ = tx.send(catch_unwind(AssertUnwindSafe(f)));
        })
        .unwrap();
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(Ok(v)) => v,
        Ok(Err(panic)) => resume_unwind(panic),
        Err(_) => panic!("{what}: did not complete within {secs} s (hung)"),
    }
}

/// Go's `preempt`: a call with a 1 KiB frame that the optimizer keeps.
#[inline(never)]
fn preempt() -> u64 {
    let a = black_box([0u64; 128]);
    a.iter().sum()
}

// ---------------------------------------------------------------------------
// TestGoroutineParallelism, TestGoroutineParallelism2

/// One round of Go's parallelism check: `n` goroutines take turns on `x`
/// (goroutine `p` waits, spinning with no scheduling point, for
/// `x == n*i + p`), 3 times each. It completes only if all `n` run at the
/// same time.
fn spin_turns(x: &AtomicU32, n: u32, p: u32) {
    for i in 0..3 {
        let expected = n * i + p;
        while x.load(Ordering::SeqCst) != expected {
            std::hint::spin_loop();
        }
        x.store(expected + 1, Ordering::SeqCst);
    }
}

/// Ports TestGoroutineParallelism: with procs 4, 4 goroutines that spin
/// waiting for each other's turn (no scheduling points) all run at once.
/// Asserts, over 10 tries, that every goroutine took its 3 turns in order
/// (`x` ends at 12 each time).
#[test]
fn goroutine_parallelism() {
    const P: u32 = 4;
    const N: usize = 10;
    within(30, "goroutine_parallelism", || {
        rt(P as usize).run(|| {
            for _ in 0..N {
                let x = Arc::new(AtomicU32::new(0));
                let (done_tx, done_rx) = chan::bounded(0);
                for p in 0..P {
                    let (x, done) = (x.clone(), done_tx.clone());
                    gort::go(move || {
                        spin_turns(&x, P, p);
                        done.send(p).unwrap();
                    });
                }
                let mut finished: Vec<u32> = (0..P).map(|_| done_rx.recv().unwrap()).collect();
                finished.sort_unstable();
                assert_eq!(finished, (0..P).collect::<Vec<_>>());
                assert_eq!(x.load(Ordering::SeqCst), 3 * P);
            }
        })
    });
}

/// Go's `testGoroutineParallelism2(load, netpoll)`.
fn goroutine_parallelism2(load: bool, netpoll: bool) {
    const P: u32 = 4;
    const N: usize = 10;
    rt(P as usize).run(move || {
        for _ in 0..N {
            if load {
                // P goroutines that spin until all of them run: afterwards
                // the threads that ran them go idle, which changes how the
                // test below gets its threads.
                let x = Arc::new(AtomicU32::new(0));
                let (done_tx, done_rx) = chan::bounded(0);
                for _ in 0..P {
                    let (x, done) = (x.clone(), done_tx.clone());
                    gort::go(move || {
                        if x.fetch_add(1, Ordering::SeqCst) + 1 == P {
                            done.send(()).unwrap();
                            return;
                        }
                        while x.load(Ordering::SeqCst) != P {
                            std::hint::spin_loop();
                        }
                    });
                }
                done_rx.recv().unwrap();
            }
            // Go only opens a listener "to enable the netpoller"; here a
            // goroutine also parks in `accept`, so the netpoller has a
            // waiter (and an idle thread may block in it) while the
            // spinners below need every processor.
            let accepter = netpoll.then(|| {
                let ln = gort::net::TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = ln.local_addr().unwrap();
                (addr, gort::go(move || ln.accept().map(|_| ()).is_ok()))
            });
            let x = Arc::new(AtomicU32::new(0));
            let (done_tx, done_rx) = chan::bounded(0);
            // Spawned nested, to differ from goroutine_parallelism.
            for p in 0..P / 2 {
                let (x, done_tx) = (x.clone(), done_tx.clone());
                gort::go(move || {
                    for p2 in 0..2 {
                        let (x, done) = (x.clone(), done_tx.clone());
                        gort::go(move || {
                            spin_turns(&x, P, p * 2 + p2);
                            done.send(()).unwrap();
                        });
                    }
                });
            }
            for _ in 0..P {
                done_rx.recv().unwrap();
            }
            assert_eq!(x.load(Ordering::SeqCst), 3 * P);
            if let Some((addr, h)) = accepter {
                let _conn = gort::net::TcpStream::connect(addr).unwrap();
                assert!(h.join().unwrap(), "the parked accept failed");
            }
        }
    });
}

/// Ports TestGoroutineParallelism2 (load, no netpoll): as
/// `goroutine_parallelism` after P goroutines ran and left their threads
/// idle, with the spinners spawned nested; asserts all turns taken.
#[test]
fn goroutine_parallelism2_after_load() {
    within(30, "goroutine_parallelism2(load)", || {
        goroutine_parallelism2(true, false)
    });
}

/// Ports TestGoroutineParallelism2 (netpoll, no load): the spinners all run
/// at once while a goroutine is parked on the netpoller (a loopback
/// listener's `accept`, released at the end); asserts all turns taken and
/// the accept completed.
#[test]
fn goroutine_parallelism2_with_netpoll() {
    within(30, "goroutine_parallelism2(netpoll)", || {
        goroutine_parallelism2(false, true)
    });
}

/// Ports TestGoroutineParallelism2 (load and netpoll together).
#[test]
fn goroutine_parallelism2_after_load_with_netpoll() {
    within(30, "goroutine_parallelism2(load, netpoll)", || {
        goroutine_parallelism2(true, true)
    });
}

// ---------------------------------------------------------------------------
// TestPingPongHog

/// One member of a ping-pong pair: on each wake it does `limit` units of
/// work, then wakes its buddy over the same unbuffered channel.
fn ping_pong_member(
    limit: u64,
    counter: Arc<AtomicU64>,
    wake: (Sender<()>, Receiver<()>),
    done: Receiver<()>,
) {
    let (wake_tx, wake_rx) = wake;
    loop {
        gort::select! {
            recv(done) -> _ => return,
            recv(wake_rx) -> _ => {
                let mut n = counter.load(Ordering::Relaxed);
                for _ in 0..limit {
                    n = black_box(n + 1);
                }
                counter.store(n, Ordering::Relaxed);
                if wake_tx.send(()).is_err() {
                    return;
                }
            }
        }
    }
}

/// Ports TestPingPongHog: on one processor, a "hog" pair doing 10^6 units
/// of work per hand-off and a "light" pair doing 10^3 share the processor
/// for 100 ms. Each pair hands off within a time slice (the buddy is
/// readied into `runnext` and inherits the slice), so the scheduler must
/// still alternate the pairs slice by slice. Asserts Go's bound: the two
/// pairs' work counts are within a factor of 20 of each other (a scheduler
/// that lets a ping-pong pair keep the processor gives ~1000x).
#[test]
fn ping_pong_hog() {
    let (hog, light) = within(30, "ping_pong_hog", || {
        rt(1).run(|| {
            let (done_tx, done_rx) = chan::bounded::<()>(0);
            let hog_chan = chan::bounded::<()>(0);
            let light_chan = chan::bounded::<()>(0);
            let hog_count = Arc::new(AtomicU64::new(0));
            let light_count = Arc::new(AtomicU64::new(0));
            let mut members = Vec::new();
            for _ in 0..2 {
                let (c, w, d) = (hog_count.clone(), hog_chan.clone(), done_rx.clone());
                members.push(gort::go(move || ping_pong_member(1_000_000, c, w, d)));
            }
            for _ in 0..2 {
                let (c, w, d) = (light_count.clone(), light_chan.clone(), done_rx.clone());
                members.push(gort::go(move || ping_pong_member(1_000, c, w, d)));
            }
            hog_chan.0.send(()).unwrap();
            light_chan.0.send(()).unwrap();
            gort::time::sleep(Duration::from_millis(100));
            done_tx.close();
            // One member of each pair is left sending to its buddy.
            hog_chan.1.recv().unwrap();
            light_chan.1.recv().unwrap();
            for m in members {
                m.join().unwrap();
            }
            (
                hog_count.load(Ordering::Relaxed),
                light_count.load(Ordering::Relaxed),
            )
        })
    });
    const FACTOR: u64 = 20;
    assert!(
        hog / FACTOR <= light && light / FACTOR <= hog,
        "want hog/light work in [1/{FACTOR}, {FACTOR}]; got {hog}/{light} = {}",
        hog as f64 / light as f64
    );
}

// ---------------------------------------------------------------------------
// TestPreemption, TestPreemptionGC, testPreemptionAfterSyscall

/// Ports TestPreemption: two goroutines alternate on `x`, each spinning
/// (calling `preempt`, never a scheduling point) until it is its turn, 5
/// turns each. On one processor this completes only if sysmon preempts the
/// spinning goroutine so its partner runs; run with procs 1 and 2. Asserts
/// each goroutine took all its turns (`x` flipped 10 times).
#[test]
fn preemption() {
    const N: u32 = 5;
    for procs in [1, 2] {
        let flips = within(30, &format!("preemption(procs {procs})"), move || {
            rt(procs).run(|| {
                let x = Arc::new(AtomicU32::new(0));
                let flips = Arc::new(AtomicU32::new(0));
                let hs: Vec<_> = (0..2u32)
                    .map(|g| {
                        let (x, flips) = (x.clone(), flips.clone());
                        gort::go(move || {
                            for _ in 0..N {
                                while x.load(Ordering::SeqCst) != g {
                                    black_box(preempt());
                                }
                                flips.fetch_add(1, Ordering::SeqCst);
                                x.store(1 - g, Ordering::SeqCst);
                            }
                        })
                    })
                    .collect();
                for h in hs {
                    h.join().unwrap();
                }
                flips.load(Ordering::SeqCst)
            })
        });
        assert_eq!(flips, 2 * N, "procs {procs}");
    }
}

/// Records the intervals during which the calling goroutine executed,
/// as nanoseconds since `origin`: it reads the clock in a loop with no
/// scheduling point until `stop`, and a gap of more than 50 µs between two
/// readings means it was not executing (preempted by gort, or by the OS).
fn record_runs(stop: &AtomicBool, origin: Instant) -> Vec<(u64, u64)> {
    const GAP: u64 = 50_000;
    let mut runs = Vec::with_capacity(1024);
    let now = || origin.elapsed().as_nanos() as u64;
    let (mut start, mut last) = (now(), now());
    while !stop.load(Ordering::Relaxed) {
        let t = now();
        if t - last > GAP {
            runs.push((start, last));
            start = t;
        }
        last = t;
    }
    runs.push((start, last));
    runs
}

/// Nanoseconds during which more than `limit` of the goroutines' recorded
/// execution intervals overlap.
fn time_above(runs: &[Vec<(u64, u64)>], limit: usize) -> u64 {
    let mut events: Vec<(u64, i32)> = runs
        .iter()
        .flatten()
        .flat_map(|&(s, e)| [(s, 1), (e, -1)])
        .collect();
    events.sort_unstable();
    let (mut depth, mut since, mut above) = (0i32, 0u64, 0u64);
    for (t, d) in events {
        if depth as usize > limit {
            above += t - since;
        }
        depth += d;
        since = t;
    }
    above
}

/// Not a Go test: the half of TestPreemption that Go gets for free. Go's
/// preemption stops a hog before its processor runs anything else, so
/// GOMAXPROCS stays a bound (DESIGN.md rule 7). Here procs + 1 goroutines
/// spin (no scheduling points) for 300 ms on `procs` processors, each
/// recording when it was executing, and this asserts that more than `procs`
/// of them executed at once for at most 10% of that time (preemption
/// hand-offs may overlap by microseconds). The check is sound under load
/// (the OS descheduling a thread only shortens its intervals); it detects a
/// violation only where the machine has more than `procs` cores free.
#[test]
fn preemption_keeps_procs_a_bound() {
    for procs in [1, 2] {
        let (above, window, runs) =
            within(30, &format!("procs bound (procs {procs})"), move || {
                rt(procs).run(move || {
                    let stop = Arc::new(AtomicBool::new(false));
                    let origin = Instant::now();
                    let hogs: Vec<_> = (0..=procs)
                        .map(|_| {
                            let stop = stop.clone();
                            gort::go(move || record_runs(&stop, origin))
                        })
                        .collect();
                    gort::time::sleep(Duration::from_millis(300));
                    stop.store(true, Ordering::Relaxed);
                    let runs: Vec<_> = hogs.into_iter().map(|h| h.join().unwrap()).collect();
                    let window = origin.elapsed().as_nanos() as u64;
                    (time_above(&runs, procs), window, runs)
                })
            });
        let executed: Vec<u64> = runs
            .iter()
            .map(|r| r.iter().map(|(s, e)| e - s).sum())
            .collect();
        assert!(
            executed.iter().all(|&e| e > 0),
            "procs {procs}: a hog never executed: {executed:?}"
        );
        assert!(
            above <= window / 10,
            "procs {procs}: more than {procs} goroutines executed at once for {} ms of {} ms \
             (each executed for {:?} ms)",
            above / 1_000_000,
            window / 1_000_000,
            executed.iter().map(|e| e / 1_000_000).collect::<Vec<_>>()
        );
    }
}

/// Ports TestPreemptionGC: 5 goroutines spin (calling `preempt`) on 6
/// processors while main, 10 times, yields and then does the
/// stop-the-world-like work that in Go is `runtime.GC()`: here it shrinks
/// to 1 processor (which takes the processors away from the spinners),
/// spawns and joins a goroutine there, and grows back to 6. Asserts every
/// round completed, every spinner runs again once the processors are back,
/// and all spinners stop when asked.
#[test]
fn preemption_gc() {
    const P: usize = 5;
    const N: usize = 10;
    within(30, "preemption_gc", || {
        rt(P + 1).run(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let spins: Arc<Vec<AtomicU64>> = Arc::new((0..P).map(|_| AtomicU64::new(0)).collect());
            let hs: Vec<_> = (0..P)
                .map(|i| {
                    let (stop, spins) = (stop.clone(), spins.clone());
                    gort::go(move || {
                        while !stop.load(Ordering::SeqCst) {
                            black_box(preempt());
                            spins[i].fetch_add(1, Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            let mut rounds = 0;
            for _ in 0..N {
                gort::yield_now();
                assert_eq!(gort::set_procs(1), P + 1);
                assert_eq!(gort::go(|| 7).join().unwrap(), 7);
                assert_eq!(gort::set_procs(P + 1), 1);
                rounds += 1;
            }
            // Every spinner runs again once the processors are back.
            let before: Vec<u64> = spins.iter().map(|s| s.load(Ordering::Relaxed)).collect();
            let deadline = Instant::now() + Duration::from_secs(20);
            while spins
                .iter()
                .zip(&before)
                .any(|(s, &b)| s.load(Ordering::Relaxed) == b)
            {
                assert!(
                    Instant::now() < deadline,
                    "a spinner never ran again: {before:?}"
                );
                gort::time::sleep(Duration::from_millis(1));
            }
            stop.store(true, Ordering::SeqCst);
            for h in hs {
                h.join().unwrap();
            }
            assert_eq!(rounds, N);
            assert_eq!(gort::procs(), P + 1);
        })
    });
}

/// Go's `testPreemptionAfterSyscall(d)`: on 2 processors, 8 goroutines
/// loop on `blocking` calls that each take `d` (Go's `fakeSyscall`, a spin
/// between entersyscall and exitsyscall) until main sets `stop`; main can
/// only set it if it gets to run, i.e. if goroutines returning from their
/// calls are preemptible. 10 iterations. Go also bounds each iteration at
/// 5 s; here that is only the liveness bound.
fn preemption_after_syscall(d: Duration) {
    const NROUTINES: usize = 8;
    const ITERATIONS: usize = 10;
    rt(2).run(move || {
        for _ in 0..ITERATIONS {
            let (c_tx, c_rx) = chan::bounded(NROUTINES);
            let stop = Arc::new(AtomicBool::new(false));
            for _ in 0..NROUTINES {
                let (c, stop) = (c_tx.clone(), stop.clone());
                gort::go(move || {
                    c.send(0).unwrap();
                    let mut calls = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        gort::blocking(|| {
                            let start = Instant::now();
                            while start.elapsed() < d {
                                std::hint::spin_loop();
                            }
                        });
                        calls += 1;
                    }
                    c.send(calls).unwrap();
                });
            }
            for _ in 0..NROUTINES {
                assert_eq!(c_rx.recv().unwrap(), 0);
            }
            stop.store(true, Ordering::SeqCst);
            for _ in 0..NROUTINES {
                c_rx.recv().unwrap();
            }
        }
    });
}

/// Ports TestPreemptionAfterSyscall/10µs: calls shorter than the ~20 µs
/// hand-off threshold, so the processor is never taken during a call;
/// asserts all 8 goroutines start and stop in each of 10 iterations.
#[test]
fn preemption_after_syscall_10us() {
    within(30, "preemption_after_syscall(10µs)", || {
        preemption_after_syscall(Duration::from_micros(10))
    });
}

/// Ports TestPreemptionAfterSyscall/100µs (as the 10 µs case).
#[test]
fn preemption_after_syscall_100us() {
    within(30, "preemption_after_syscall(100µs)", || {
        preemption_after_syscall(Duration::from_micros(100))
    });
}

/// Ports TestPreemptionAfterSyscall/1ms (as the 10 µs case).
#[test]
fn preemption_after_syscall_1ms() {
    within(30, "preemption_after_syscall(1ms)", || {
        preemption_after_syscall(Duration::from_millis(1))
    });
}

// ---------------------------------------------------------------------------
// TestTimerFairness, TestTimerFairness2

/// Ports TestTimerFairness: two goroutines always ready to send on `c`
/// while main selects between `c` and a 20 ms timer. Asserts, on 1, 2 and
/// 4 processors, that the timer's case is chosen (main returns) after main
/// received from `c` at least once, and not before 20 ms (never early).
#[test]
fn timer_fairness() {
    for procs in [1, 2, 4] {
        let (received, waited) = within(30, &format!("timer_fairness(procs {procs})"), move || {
            rt(procs).run(|| {
                let (done_tx, done_rx) = chan::bounded::<()>(0);
                let (c_tx, c_rx) = chan::bounded(0);
                let senders: Vec<_> = (0..2)
                    .map(|_| {
                        let (c, done) = (c_tx.clone(), done_rx.clone());
                        gort::go(move || loop {
                            gort::select! {
                                send(c, true) -> r => r.unwrap(),
                                recv(done) -> _ => return,
                            }
                        })
                    })
                    .collect();
                let start = Instant::now();
                let timer = gort::time::after(Duration::from_millis(20));
                let mut received = 0u64;
                loop {
                    gort::select! {
                        recv(c_rx) -> v => { assert!(v.unwrap()); received += 1; },
                        recv(timer) -> _ => break,
                    }
                }
                let waited = start.elapsed();
                done_tx.close();
                for s in senders {
                    s.join().unwrap();
                }
                (received, waited)
            })
        });
        assert!(received > 0, "procs {procs}: nothing received from c");
        assert!(
            waited >= Duration::from_millis(20),
            "procs {procs}: the timer fired early: {waited:?}"
        );
    }
}

/// Ports TestTimerFairness2: two goroutines, each with its own 20 ms timer,
/// loop on a zero-length `read(0)` system call (through `gort::blocking`)
/// then a select that sends to, receives from, or sees its timer. Asserts,
/// on 1, 2 and 4 processors, that both timers are seen (both goroutines
/// finish), not before 20 ms, and that the goroutines exchanged values.
#[test]
fn timer_fairness2() {
    for procs in [1, 2, 4] {
        let results = within(30, &format!("timer_fairness2(procs {procs})"), move || {
            rt(procs).run(|| {
                let (done_tx, done_rx) = chan::bounded(0);
                let (c_tx, c_rx) = chan::bounded(0);
                for _ in 0..2 {
                    let (c_tx, c_rx, done) = (c_tx.clone(), c_rx.clone(), done_tx.clone());
                    gort::go(move || {
                        let start = Instant::now();
                        let timer = gort::time::after(Duration::from_millis(20));
                        let mut exchanged = 0u64;
                        let mut buf = [0u8; 1];
                        loop {
                            gort::blocking(|| {
                                // SAFETY: a zero-length read into a valid
                                // buffer; the result (even EBADF) is unused.
                                unsafe { libc::read(0, buf.as_mut_ptr().cast(), 0) };
                            });
                            gort::select! {
                                send(c_tx, true) -> r => { r.unwrap(); exchanged += 1; },
                                recv(c_rx) -> v => { assert!(v.unwrap()); exchanged += 1; },
                                recv(timer) -> _ => {
                                    done.send((exchanged, start.elapsed())).unwrap();
                                    return;
                                },
                            }
                        }
                    });
                }
                [done_rx.recv().unwrap(), done_rx.recv().unwrap()]
            })
        });
        let exchanged: u64 = results.iter().map(|r| r.0).sum();
        assert!(
            exchanged > 0,
            "procs {procs}: the goroutines never exchanged a value"
        );
        for (_, waited) in results {
            assert!(
                waited >= Duration::from_millis(20),
                "procs {procs}: a timer fired early: {waited:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// TestStopTheWorldDeadlock

/// Go's `perpetuumMobile`: each goroutine spawns its successor and exits,
/// until one of them receives the stop token.
fn perpetuum_mobile(stop: Receiver<()>, spawned: Arc<AtomicUsize>) {
    gort::select! {
        recv(stop) -> v => v.unwrap(),
        default => {
            spawned.fetch_add(1, Ordering::Relaxed);
            gort::go(move || perpetuum_mobile(stop, spawned));
        },
    }
}

/// Ports TestStopTheWorldDeadlock: on 3 processors, one goroutine does 1000
/// stop-the-world-like operations (Go: `runtime.GC()`; here `set_procs`
/// toggling between 2 and 3), another calls `set_procs(3)` 1000 times, and
/// a chain of goroutines keeps spawning its successor. Asserts both loops
/// finish, the chain was alive throughout (it spawned, and a member of it
/// took the stop token afterwards), and procs ends at 3.
#[test]
fn stop_the_world_deadlock() {
    within(30, "stop_the_world_deadlock", || {
        rt(3).run(|| {
            let base = gort::num_goroutines();
            let (stop_tx, stop_rx) = chan::bounded(1);
            let (compl_tx, compl_rx) = chan::bounded(2);
            let c = compl_tx.clone();
            gort::go(move || {
                for _ in 0..1000 {
                    gort::set_procs(2);
                    gort::set_procs(3);
                }
                c.send(()).unwrap();
            });
            gort::go(move || {
                for _ in 0..1000 {
                    gort::set_procs(3);
                }
                compl_tx.send(()).unwrap();
            });
            let spawned = Arc::new(AtomicUsize::new(0));
            let s = spawned.clone();
            gort::go(move || perpetuum_mobile(stop_rx, s));
            compl_rx.recv().unwrap();
            compl_rx.recv().unwrap();
            let spawned_before_stop = spawned.load(Ordering::Relaxed);
            stop_tx.send(()).unwrap();
            assert!(spawned_before_stop > 0, "the chain never spawned");
            // The chain consumes the token, then its last member exits.
            let deadline = Instant::now() + Duration::from_secs(20);
            while !stop_tx.is_empty() || gort::num_goroutines() > base {
                assert!(
                    Instant::now() < deadline,
                    "the chain did not stop (token pending: {}, goroutines {} > {base})",
                    !stop_tx.is_empty(),
                    gort::num_goroutines()
                );
                gort::time::sleep(Duration::from_millis(1));
            }
            assert_eq!(gort::procs(), 3);
        })
    });
}

// ---------------------------------------------------------------------------
// TestYieldProgress, TestYieldLockedProgress, TestYieldLocked, TestBlockLocked

/// Go's `testYieldProgress(locked)`: a goroutine loops on a select whose
/// default case yields, until main (after sleeping 10 ms) sends on `c`.
/// Returns how many times it yielded.
fn yield_progress(procs: usize, locked: bool) -> u64 {
    rt(procs).run(move || {
        let (c_tx, c_rx) = chan::bounded::<bool>(0);
        let (ack_tx, ack_rx) = chan::bounded(0);
        gort::go(move || {
            if locked {
                gort::lock_os_thread();
            }
            let mut yields = 0u64;
            loop {
                gort::select! {
                    recv(c_rx) -> v => {
                        assert!(v.unwrap());
                        ack_tx.send(yields).unwrap();
                        return;
                    },
                    default => {
                        yields += 1;
                        gort::yield_now();
                    },
                }
            }
        });
        gort::time::sleep(Duration::from_millis(10));
        c_tx.send(true).unwrap();
        ack_rx.recv().unwrap()
    })
}

/// Ports TestYieldProgress: a goroutine that only yields does not keep main
/// (sleeping on a timer) from running, on 1 and 2 processors. Asserts the
/// goroutine saw main's send and had yielded meanwhile.
#[test]
fn yield_progress_unlocked() {
    for procs in [1, 2] {
        let yields = within(30, &format!("yield_progress(procs {procs})"), move || {
            yield_progress(procs, false)
        });
        assert!(yields > 0, "procs {procs}");
    }
}

/// Ports TestYieldLockedProgress: as `yield_progress_unlocked` with the
/// yielding goroutine locked to its OS thread (each yield hands its
/// processor to another thread and back).
#[test]
fn yield_locked_progress() {
    for procs in [1, 2] {
        let yields = within(
            30,
            &format!("yield_locked_progress(procs {procs})"),
            move || yield_progress(procs, true),
        );
        assert!(yields > 0, "procs {procs}");
    }
}

/// Ports TestYieldLocked: a goroutine locked to its thread (and exiting
/// still locked) yields and sleeps 1 ms, 10 times. Asserts it finishes and
/// stayed on one OS thread throughout.
#[test]
fn yield_locked() {
    const N: usize = 10;
    for procs in [1, 2] {
        let threads = within(30, &format!("yield_locked(procs {procs})"), move || {
            rt(procs).run(|| {
                let h = gort::go(|| {
                    gort::lock_os_thread();
                    let mut threads = vec![std::thread::current().id()];
                    for _ in 0..N {
                        gort::yield_now();
                        gort::time::sleep(Duration::from_millis(1));
                        threads.push(std::thread::current().id());
                    }
                    threads
                    // unlock_os_thread deliberately omitted, as in Go.
                });
                h.join().unwrap()
            })
        });
        assert_eq!(threads.len(), N + 1);
        assert!(
            threads.iter().all(|t| *t == threads[0]),
            "procs {procs}: {threads:?}"
        );
    }
}

/// Ports TestBlockLocked: a goroutine locked to its thread sends 10 values
/// on an unbuffered channel (parking at each send until main receives).
/// Asserts main receives all 10 in order and the sender stayed on one OS
/// thread for every send.
#[test]
fn block_locked() {
    const N: usize = 10;
    for procs in [1, 2] {
        within(30, &format!("block_locked(procs {procs})"), move || {
            rt(procs).run(|| {
                let (tx, rx) = chan::bounded(0);
                let h = gort::go(move || {
                    gort::lock_os_thread();
                    let me = std::thread::current().id();
                    for i in 0..N {
                        tx.send(i).unwrap();
                        assert_eq!(std::thread::current().id(), me, "moved after send {i}");
                    }
                    gort::unlock_os_thread();
                });
                for i in 0..N {
                    assert_eq!(rx.recv().unwrap(), i);
                }
                h.join().unwrap();
            })
        });
    }
}

// ---------------------------------------------------------------------------
// stack_test.go

/// The address of a local of the caller's frame: where its stack is now.
#[inline(always)]
fn stack_pointer() -> usize {
    let here = 0u8;
    black_box(&here) as *const u8 as usize
}

/// Go's `useStackAndCall`: uses about `kib` KiB of stack (measured by
/// address, so debug and release builds use the same amount), then calls
/// `f`.
fn use_stack_and_call(kib: usize, f: &mut dyn FnMut()) {
    #[inline(never)]
    fn rec(top: usize, bytes: usize, f: &mut dyn FnMut()) {
        let b = black_box([0u8; 1024]); // makes the frame about 1 KiB
        if top - b.as_ptr() as usize >= bytes {
            f();
        } else {
            rec(top, bytes + b[99] as usize, f);
        }
        black_box(&b);
    }
    rec(stack_pointer(), kib * 1024, f)
}

fn use_stack(kib: usize) {
    use_stack_and_call(kib, &mut || {});
}

/// Recurses with 1 KiB frames until about `kib` KiB of stack are in use,
/// each frame filled with its own depth and `seed`, calls `bottom` there,
/// and checks on the way back that every frame still holds its values.
/// Returns false if one was overwritten (by a neighbour's stack, or by a
/// stack reuse).
fn deep_stack_intact(kib: usize, seed: u64, bottom: &mut dyn FnMut()) -> bool {
    #[inline(never)]
    fn rec(top: usize, bytes: usize, depth: u64, seed: u64, bottom: &mut dyn FnMut()) -> bool {
        let frame = black_box([depth ^ seed; 128]);
        let below = if top - frame.as_ptr() as usize >= bytes {
            bottom();
            true
        } else {
            rec(top, bytes, depth + 1, seed, bottom)
        };
        below && black_box(&frame).iter().all(|&v| v == depth ^ seed)
    }
    rec(stack_pointer(), kib * 1024, 0, seed, bottom)
}

/// Ports TestStackMem (in a child process, so that no other test's memory
/// is counted): 64 batches (Go: 256) of 32 goroutines on 32 processors,
/// each using 128 KiB of stack in 1 KiB frames (Go: 128 calls passing a
/// 1 KiB array) and sleeping 1 ms at the bottom. Asserts every frame kept
/// its values and the process's resident memory grew by at most Go's bound,
/// 8 × 32 × 1 KiB × 128 = 32 MiB: stacks are reused, not accumulated. (Go
/// also bounds the stack memory still in use afterwards; gort exposes no
/// such count.)
#[test]
fn stack_mem() {
    const BATCH_SIZE: usize = 32;
    const BATCH_COUNT: usize = 64;
    const ARRAY_SIZE: usize = 1024;
    const RECURSION_DEPTH: usize = 128; // KiB, in 1 KiB frames
    const CHILD: &str = "GORT_GO_RUNTIME_STACK_MEM_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let rss0 = rss();
        rt(BATCH_SIZE).run(|| {
            for _ in 0..BATCH_COUNT {
                let (c_tx, c_rx) = chan::bounded(BATCH_SIZE);
                for i in 0..BATCH_SIZE as u64 {
                    let c = c_tx.clone();
                    gort::go(move || {
                        let ok = deep_stack_intact(RECURSION_DEPTH, i, &mut || {
                            gort::time::sleep(Duration::from_millis(1))
                        });
                        c.send(ok).unwrap();
                    });
                }
                for _ in 0..BATCH_SIZE {
                    assert!(c_rx.recv().unwrap(), "a deep stack was corrupted");
                }
                // Let them exit, so the next batch can reuse their stacks.
                gort::time::sleep(Duration::from_millis(10));
            }
        });
        let rss1 = rss();
        println!("rss_growth={}", rss1.saturating_sub(rss0));
        return;
    }
    let out = within(60, "stack_mem (child)", || {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "stack_mem", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .unwrap()
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    let growth: usize = stdout
        .split("rss_growth=")
        .nth(1)
        .and_then(|s| s.lines().next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("child printed no rss_growth:\n{stdout}\n{stderr}"));
    let estimate = 8 * BATCH_SIZE * ARRAY_SIZE * RECURSION_DEPTH;
    assert!(
        growth <= estimate,
        "stack memory: want at most {estimate} bytes, resident memory grew by {growth}"
    );
}

/// Resident memory of this process in bytes (/proc/self/statm).
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    pages * page
}

/// Go's `growStackIter`: recursion `n` deep where every frame writes
/// through a pointer into its caller's frame and checks its own afterwards.
#[inline(never)]
fn grow_stack_iter(p: &mut usize, n: usize, bottom: &mut dyn FnMut()) {
    *p = n + 1;
    if n == 0 {
        bottom();
        return;
    }
    let mut x = 0usize;
    grow_stack_iter(black_box(&mut x), n - 1, bottom);
    assert_eq!(x, n, "stack is corrupted");
}

/// Go's `growStack`: 1024 recursions of depth 0 to 1023, each checked.
fn grow_stack(bottom: &mut dyn FnMut()) -> usize {
    let n = 1 << 10;
    for i in 0..n {
        let mut x = 0usize;
        grow_stack_iter(&mut x, i, bottom);
        assert_eq!(x, i + 1, "stack is corrupted");
    }
    n
}

/// Ports TestStackGrowth: Go's `growStack` (1024 recursions up to 1023
/// deep, every frame checking a value written through a pointer by its
/// callee) in a plain goroutine that yields at the bottom of each (Go runs
/// a GC there), in a goroutine locked to its thread, and in a goroutine
/// inside a `blocking` call (Go's third case, a finalizer, has no gort
/// counterpart). Asserts no frame was corrupted and, on 2 processors with a
/// busy neighbour, that every run completed.
#[test]
fn stack_growth() {
    within(30, "stack_growth", || {
        rt(2).run(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let s = stop.clone();
            let neighbour = gort::go(move || {
                let mut n = 0u64;
                while !s.load(Ordering::Relaxed) {
                    n += deep_stack_intact(16, n, &mut || {}) as u64;
                    gort::yield_now();
                }
                n
            });
            let plain = gort::go(|| grow_stack(&mut gort::yield_now));
            let locked = gort::go(|| {
                gort::lock_os_thread();
                let n = grow_stack(&mut gort::yield_now);
                gort::unlock_os_thread();
                n
            });
            let in_blocking = gort::go(|| gort::blocking(|| grow_stack(&mut || {})));
            assert_eq!(plain.join().unwrap(), 1024);
            assert_eq!(locked.join().unwrap(), 1024);
            assert_eq!(in_blocking.join().unwrap(), 1024);
            stop.store(true, Ordering::Relaxed);
            assert!(neighbour.join().unwrap() > 0);
        })
    });
}

/// Go's `growStackWithCallback`: calls `cb` at every depth from 0 to 1023.
fn grow_stack_with_callback(cb: &mut dyn FnMut()) {
    fn f(n: usize, cb: &mut dyn FnMut()) {
        if n == 0 {
            cb();
            return;
        }
        let pad = black_box([n as u8; 64]);
        f(n - 1, cb);
        black_box(&pad);
    }
    for i in 0..1 << 10 {
        f(i, cb);
    }
}

/// Ports TestStackGrowthCallback: at every depth from 0 to 1023, one
/// goroutine does a channel send and receive, another a map insert and
/// lookup, a third spawns a goroutine and waits for it. Asserts all 1024
/// operations of each kind took effect.
#[test]
fn stack_growth_callback() {
    within(30, "stack_growth_callback", || {
        rt(2).run(|| {
            let chan_ops = gort::go(|| {
                let (tx, rx) = chan::bounded(1);
                let mut n = 0usize;
                grow_stack_with_callback(&mut || {
                    tx.send(n).unwrap();
                    assert_eq!(rx.recv().unwrap(), n);
                    n += 1;
                });
                n
            });
            let map_ops = gort::go(|| {
                let mut m: HashMap<usize, usize> = HashMap::new();
                let mut n = 0usize;
                grow_stack_with_callback(&mut || {
                    let _ = m.get(&1);
                    *m.entry(n % 7).or_default() += 1;
                    n += 1;
                });
                m.values().sum::<usize>()
            });
            let spawns = gort::go(|| {
                let mut n = 0usize;
                grow_stack_with_callback(&mut || {
                    let (done_tx, done_rx) = chan::bounded(0);
                    gort::go(move || done_tx.send(true).unwrap());
                    assert!(done_rx.recv().unwrap());
                    n += 1;
                });
                n
            });
            assert_eq!(chan_ops.join().unwrap(), 1024);
            assert_eq!(map_ops.join().unwrap(), 1024);
            assert_eq!(spawns.join().unwrap(), 1024);
        })
    });
}

/// Go's `growing`: for each request `n`, uses `n` KiB of stack and reports.
fn growing(c: Receiver<usize>, done: Sender<usize>) {
    for n in &c {
        use_stack(n);
        done.send(n).unwrap();
    }
    done.send(0).unwrap();
}

/// Ports TestStackCache: 4 rounds of 200 goroutines that each use 1, 2, 4,
/// 8, then 16 KiB of stack on request (stacks grown, freed at exit, then
/// reused by the next round). Asserts every request was served, in every
/// round, and every goroutine exited.
#[test]
fn stack_cache() {
    const R: usize = 4;
    const G: usize = 200;
    const S: u32 = 5;
    within(30, "stack_cache", || {
        rt(2).run(|| {
            for _ in 0..R {
                let (done_tx, done_rx) = chan::unbounded();
                let reqs: Vec<Sender<usize>> = (0..G)
                    .map(|_| {
                        let (tx, rx) = chan::bounded(0);
                        let done = done_tx.clone();
                        gort::go(move || growing(rx, done));
                        tx
                    })
                    .collect();
                for s in 0..S {
                    for r in &reqs {
                        r.send(1 << s).unwrap();
                    }
                    for _ in 0..G {
                        assert_eq!(done_rx.recv().unwrap(), 1 << s);
                    }
                }
                drop(reqs); // closes every request channel
                for _ in 0..G {
                    assert_eq!(done_rx.recv().unwrap(), 0);
                }
            }
        })
    });
}

/// Sets `*p = 42` when dropped, with a 4 KiB value in its frame (Go's
/// `setBig(&y, 42, bigBuf{})` deferred).
struct SetBig<'a> {
    p: &'a AtomicU32,
    buf: [u8; 4096],
}

impl Drop for SetBig<'_> {
    fn drop(&mut self) {
        black_box(&mut self.buf);
        self.p.store(42, Ordering::SeqCst);
    }
}

/// Sends the value of `y` when dropped (Go's `defer func() { c <- y }()`).
struct Report<'a> {
    y: &'a AtomicU32,
    c: mpsc::Sender<(usize, u32)>,
    i: usize,
}

impl Drop for Report<'_> {
    fn drop(&mut self) {
        let _ = self.c.send((self.i, self.y.load(Ordering::SeqCst)));
    }
}

/// Go's `testDeferPtrsGoexit` / `testDeferPtrsPanic` body: destructors
/// registered at the top, then `i` KiB of stack used before `end` unwinds.
fn defer_ptrs(c: mpsc::Sender<(usize, u32)>, i: usize, end: &mut dyn FnMut()) {
    let y = AtomicU32::new(0);
    let _report = Report { y: &y, c, i };
    let _set = SetBig {
        p: &y,
        buf: [i as u8; 4096],
    };
    use_stack_and_call(i, end);
}

/// Ports TestDeferPtrsPanic: 100 goroutines, the i-th panicking at about
/// i KiB deep, with a destructor holding a 4 KiB value registered at its
/// top. Asserts each destructor ran during the unwind (the reported value is
/// 42) and each panic came back through `join`.
#[test]
fn defer_ptrs_panic() {
    within(30, "defer_ptrs_panic", || {
        rt(2).run(|| {
            for i in 0..100 {
                let (c, r) = mpsc::channel();
                let h = gort::go(move || {
                    defer_ptrs(c, i, &mut || resume_unwind(Box::new(1)));
                });
                assert!(h.join().is_err(), "i={i}: the panic did not come back");
                let (_, n) = r.recv().unwrap();
                assert_eq!(n, 42, "i={i}: the destructor did not run");
            }
        })
    });
}

/// Ports TestDeferPtrsGoexit: 100 goroutines, the i-th parked forever at
/// about i KiB deep, with the same destructors; when main returns they are
/// cancelled (gort's `Goexit`: they unwind from the depth they parked at).
/// Asserts all 100 destructors ran and saw 42.
#[test]
fn defer_ptrs_goexit() {
    let (c, r) = mpsc::channel();
    within(30, "defer_ptrs_goexit", move || {
        rt(2).run(move || {
            let parked = WaitGroup::new();
            for i in 0..100 {
                let (c, parked) = (c.clone(), parked.clone());
                parked.add(1);
                gort::go(move || {
                    defer_ptrs(c, i, &mut || {
                        let (_tx, rx) = chan::bounded::<()>(0);
                        parked.done();
                        let _ = rx.recv(); // never ready: cancelled here
                        unreachable!("a receive with its sender alive returned");
                    });
                });
            }
            parked.wait();
        })
    });
    let mut seen: Vec<(usize, u32)> = r.try_iter().collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..100).map(|i| (i, 42)).collect::<Vec<_>>());
}

/// Ports TestPanicUseStack and TestStackPanic: a panic whose handler uses
/// 50 KiB of stack and panics again inside it, whose handler uses 100 KiB
/// more and panics a third time (Go uses 100 and 200 KiB, which Go's
/// growable stacks allow; gort's default stack is 256 KiB), all caught, in
/// a goroutine. Asserts each panic is caught by its own handler with its
/// own payload, in order.
#[test]
fn panic_use_stack() {
    let caught = within(30, "panic_use_stack", || {
        rt(1).run(|| {
            gort::go(|| {
                let mut caught = Vec::new();
                // TestStackPanic: use 32 KiB, then panic, and recover.
                let r = catch_unwind(|| {
                    use_stack(32);
                    resume_unwind(Box::new(0u32));
                });
                caught.push(*r.unwrap_err().downcast::<u32>().unwrap());
                let r = catch_unwind(|| resume_unwind(Box::new(1u32)));
                caught.push(*r.unwrap_err().downcast::<u32>().unwrap());
                use_stack_and_call(50, &mut || {
                    let r = catch_unwind(|| resume_unwind(Box::new(2u32)));
                    caught.push(*r.unwrap_err().downcast::<u32>().unwrap());
                    use_stack_and_call(100, &mut || {
                        let r = catch_unwind(|| resume_unwind(Box::new(3u32)));
                        caught.push(*r.unwrap_err().downcast::<u32>().unwrap());
                    });
                });
                caught
            })
            .join()
            .unwrap()
        })
    });
    assert_eq!(caught, [0, 1, 2, 3]);
}

/// Many goroutines with deep stacks at once (not a Go test; the
/// simultaneous case of TestStackMem): 1000 goroutines each use 64 KiB of
/// stack in 1 KiB frames (64 MB in all), park at
/// the bottom until all are there, then unwind. Asserts every goroutine's
/// frames held their own values (no stack overlaps a neighbour's).
#[test]
fn many_goroutines_with_deep_stacks() {
    const G: u64 = 1000;
    const DEPTH: usize = 64; // KiB
    within(30, "many_goroutines_with_deep_stacks", || {
        rt(2).run(|| {
            let all_deep = WaitGroup::new();
            all_deep.add(G as isize);
            let (release_tx, release_rx) = chan::bounded::<()>(0);
            let hs: Vec<_> = (0..G)
                .map(|i| {
                    let (all_deep, release) = (all_deep.clone(), release_rx.clone());
                    gort::go(move || {
                        deep_stack_intact(DEPTH, i * 0x9e37_79b9, &mut || {
                            all_deep.done();
                            assert!(release.recv().is_err()); // closed below
                        })
                    })
                })
                .collect();
            all_deep.wait();
            release_tx.close();
            let bad: Vec<usize> = hs
                .into_iter()
                .map(|h| h.join().unwrap())
                .enumerate()
                .filter(|&(_, ok)| !ok)
                .map(|(i, _)| i)
                .collect();
            assert!(bad.is_empty(), "goroutines with corrupted stacks: {bad:?}");
        })
    });
}

/// Ports TestPreemptSplitBig: on 2 processors a goroutine spins (no
/// scheduling point), then calls a function with an 8 KiB frame, then waits
/// for `stop`, while main 3 times sleeps 10 µs and does the
/// stop-the-world-like `set_procs(1)` / `set_procs(2)`. Asserts the big
/// frame's contents were intact (its checksum) and the goroutine stopped.
#[test]
fn preempt_split_big() {
    #[inline(never)]
    fn bigframe(stop: &Receiver<()>) -> u64 {
        let mut x = black_box([0u8; 8192]);
        for (i, b) in x.iter_mut().enumerate() {
            *b = i as u8;
        }
        let x = black_box(x);
        let sum = x.iter().map(|&b| b as u64).sum();
        black_box(nonleaf(stop));
        sum
    }
    #[inline(never)]
    fn nonleaf(stop: &Receiver<()>) -> bool {
        gort::select! {
            recv(stop) -> _ => true,
            default => false,
        }
    }
    within(30, "preempt_split_big", || {
        rt(2).run(|| {
            let (stop_tx, stop_rx) = chan::bounded::<()>(0);
            let big = gort::go(move || {
                let mut n = 0u64;
                for _ in 0..10_000_000u64 {
                    n = black_box(n + 1);
                }
                let sum = bigframe(&stop_rx);
                assert!(stop_rx.recv().is_err()); // closed by main
                (n, sum)
            });
            for _ in 0..3 {
                gort::time::sleep(Duration::from_micros(10));
                gort::set_procs(1);
                gort::set_procs(2);
            }
            stop_tx.close();
            let (n, sum) = big.join().unwrap();
            assert_eq!(n, 10_000_000);
            assert_eq!(sum, 32 * (0..256u64).sum::<u64>());
        })
    });
}

/// A goroutine spawned with `Builder::stack_size` (Go has no per-goroutine
/// size, its stacks grow; this is the gort counterpart of growing one past
/// the default): with a 2 MiB stack it uses 1 MiB of it (4x the default
/// 256 KiB), yielding at the bottom, then, on the same processor, 100
/// default goroutines use 64 KiB each (reusing whatever stack the big one
/// left). Asserts every frame kept its values and that the default
/// goroutines spawn at all.
#[test]
fn a_big_stack_size_goroutine_then_default_ones() {
    within(30, "a_big_stack_size_goroutine_then_default_ones", || {
        rt(1).run(|| {
            let big = gort::Builder::new()
                .name("big")
                .stack_size(2 << 20)
                .spawn(|| deep_stack_intact(1024, 5, &mut gort::yield_now))
                .unwrap();
            assert!(big.join().unwrap(), "the big stack was corrupted");
            let hs: Vec<_> = (0..100)
                .map(|i| gort::go(move || deep_stack_intact(64, i, &mut || {})))
                .collect();
            for h in hs {
                assert!(h.join().unwrap(), "a default stack was corrupted");
            }
        })
    });
}
