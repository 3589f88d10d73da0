//! Behaviour tests of `gort::blocking` (Go's syscall hand-off), sysmon's
//! preemption of CPU hogs, and `runtime::Builder::max_threads` (Go's
//! thread exhaustion): values and panics come back from `blocking`; a
//! goroutine inside a long blocking call or a CPU hog on one processor does
//! not stop a ticker, a channel ping-pong or a sleeper; many concurrent
//! blocking calls each get a thread; a plain thread just runs `f`.
//!
//! No wall-clock assertions: progress is asserted as counts observed while
//! the blocking call (or the hog) is still inside, and "concurrent" as the
//! number of calls inside at once. The only durations are a sleep that is
//! the blocking work itself and generous bounds that turn a missing hand-off
//! into a clean failure instead of a hang.

mod common;
use common::{rt, watchdog};

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::chan;
use gort::runtime::Builder as RtBuilder;
use gort::sync::WaitGroup;

/// A failure bound, not a timing check: a wait that has not seen the
/// progress it waits for after this long reports what it saw instead.
const GIVE_UP: Duration = Duration::from_secs(30);

/// Polls `done` from a plain blocking context (inside `blocking` or a hog)
/// until it holds or GIVE_UP passes.
fn wait_on_thread(done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() && start.elapsed() < GIVE_UP {
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn blocking_returns_the_value_of_f() {
    let _w = watchdog("blocking values");
    let r = rt(2);
    let (a, b, c) = r.run(|| {
        let a = gort::blocking(|| 6 * 7);
        let b = gort::blocking(|| {
            std::thread::sleep(Duration::from_millis(5)); // past the hand-off
            vec![String::from("long"), String::from("call")]
        });
        let owned = String::from("moved in");
        let c = gort::go(move || gort::blocking(move || owned + " and out"))
            .join()
            .unwrap();
        (a, b, c)
    });
    assert_eq!(a, 42);
    assert_eq!(b, ["long", "call"]);
    assert_eq!(c, "moved in and out");
    // The runtime goes on normally after the calls.
    assert_eq!(r.run(|| gort::go(|| 5).join().unwrap()), 5);
}

#[test]
fn a_panic_in_f_resumes_in_the_caller_and_the_runtime_survives() {
    let _w = watchdog("blocking panics");
    let r = rt(1);
    r.run(|| {
        // Caught by the goroutine itself, short and past the hand-off.
        for sleep_ms in [0u64, 5] {
            let err = std::panic::catch_unwind(|| -> u32 {
                gort::blocking(move || {
                    std::thread::sleep(Duration::from_millis(sleep_ms));
                    panic!("in blocking {sleep_ms}")
                })
            })
            .unwrap_err();
            assert_eq!(
                err.downcast_ref::<String>().unwrap(),
                &format!("in blocking {sleep_ms}")
            );
            // The goroutine has its processor back: it parks and resumes.
            let (tx, rx) = chan::bounded::<u32>(0);
            let h = gort::go(move || tx.send(sleep_ms as u32 + 1).unwrap());
            assert_eq!(rx.recv().unwrap(), sleep_ms as u32 + 1);
            h.join().unwrap();
            gort::time::sleep(Duration::from_millis(1));
        }
        // Uncaught: it comes back through join with its payload.
        let err = gort::go(|| -> u8 {
            gort::blocking(|| {
                std::thread::sleep(Duration::from_millis(5));
                std::panic::panic_any(17u32)
            })
        })
        .join()
        .unwrap_err();
        assert_eq!(err.downcast_ref::<u32>(), Some(&17));
        // Everything still runs on the single processor.
        let wg = WaitGroup::new();
        let n = Arc::new(AtomicUsize::new(0));
        for _ in 0..100 {
            let n = n.clone();
            wg.go(move || {
                gort::yield_now();
                n.fetch_add(1, Ordering::SeqCst);
            });
        }
        wg.wait();
        assert_eq!(n.load(Ordering::SeqCst), 100);
    });
}

/// Progress of three kinds of goroutine, counted only while `open`.
#[derive(Default)]
struct Progress {
    open: AtomicBool,
    stop: AtomicBool,
    rounds: AtomicUsize,
    ticks: AtomicUsize,
    sleeps: AtomicUsize,
}

const ROUNDS: usize = 500;
const TICKS: usize = 5;
const SLEEPS: usize = 5;

impl Progress {
    fn enough(&self) -> bool {
        self.rounds.load(Ordering::SeqCst) >= ROUNDS
            && self.ticks.load(Ordering::SeqCst) >= TICKS
            && self.sleeps.load(Ordering::SeqCst) >= SLEEPS
    }
    fn snapshot(&self) -> (usize, usize, usize) {
        (
            self.rounds.load(Ordering::SeqCst),
            self.ticks.load(Ordering::SeqCst),
            self.sleeps.load(Ordering::SeqCst),
        )
    }
}

/// Starts a channel ping-pong pair, a ticker reader and a sleeper. Each waits
/// (yielding) until `open`, then counts its progress until `stop`.
fn start_progress(p: &Arc<Progress>) -> Vec<gort::JoinHandle<()>> {
    let wait_open = |p: &Progress| {
        while !p.open.load(Ordering::SeqCst) {
            gort::yield_now();
        }
    };
    let mut hs = Vec::new();
    let (ping_tx, ping_rx) = chan::bounded::<usize>(0);
    let (pong_tx, pong_rx) = chan::bounded::<usize>(0);
    hs.push(gort::go(move || {
        for v in ping_rx {
            pong_tx.send(v + 1).unwrap();
        }
    }));
    let q = p.clone();
    hs.push(gort::go(move || {
        wait_open(&q);
        for i in 0..ROUNDS {
            ping_tx.send(i).unwrap();
            assert_eq!(pong_rx.recv().unwrap(), i + 1);
            q.rounds.fetch_add(1, Ordering::SeqCst);
        }
    }));
    let q = p.clone();
    hs.push(gort::go(move || {
        wait_open(&q);
        let ticker = gort::time::Ticker::new(Duration::from_millis(1));
        while !q.stop.load(Ordering::SeqCst) {
            ticker.chan().recv().unwrap();
            q.ticks.fetch_add(1, Ordering::SeqCst);
        }
        ticker.stop();
    }));
    let q = p.clone();
    hs.push(gort::go(move || {
        wait_open(&q);
        while !q.stop.load(Ordering::SeqCst) {
            gort::time::sleep(Duration::from_millis(1));
            q.sleeps.fetch_add(1, Ordering::SeqCst);
        }
    }));
    hs
}

#[test]
fn a_long_blocking_call_does_not_stop_others_on_one_proc() {
    let _w = watchdog("blocking hand-off on procs=1");
    let seen = rt(1).run(|| {
        let p = Arc::new(Progress::default());
        let q = p.clone();
        let blocker = gort::go(move || {
            gort::blocking(move || {
                q.open.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(200));
                // On a slow machine give the others more time; the result is
                // the progress they made while this call was still inside.
                wait_on_thread(|| q.enough());
                q.snapshot()
            })
        });
        let others = start_progress(&p);
        let seen = blocker.join().unwrap();
        p.stop.store(true, Ordering::SeqCst);
        for h in others {
            h.join().unwrap();
        }
        seen
    });
    let (rounds, ticks, sleeps) = seen;
    assert_eq!(rounds, ROUNDS, "ping-pong rounds while blocked");
    assert!(ticks >= TICKS, "ticks while blocked: {ticks}");
    assert!(sleeps >= SLEEPS, "sleeps while blocked: {sleeps}");
}

#[test]
fn many_concurrent_blocking_calls_each_get_a_thread() {
    // 50 goroutines on 2 processors each enter a blocking call that waits
    // until all 50 are inside at once (then sleeps 50 ms): only a hand-off
    // of the processor from every blocked goroutine lets all 50 in.
    let _w = watchdog("50 concurrent blocking calls");
    const N: usize = 50;
    let (sum, most_inside, threads) = rt(2).run(|| {
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..N)
            .map(|i| {
                let (inside, most) = (inside.clone(), most.clone());
                gort::go(move || {
                    gort::blocking(move || {
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        wait_on_thread(|| most.load(Ordering::SeqCst) >= N);
                        std::thread::sleep(Duration::from_millis(50));
                        inside.fetch_sub(1, Ordering::SeqCst);
                        (i * 3, std::thread::current().id())
                    })
                })
            })
            .collect();
        let mut sum = 0;
        let mut threads = std::collections::HashSet::new();
        for h in hs {
            let (v, t) = h.join().unwrap();
            sum += v;
            threads.insert(t);
        }
        (sum, most.load(Ordering::SeqCst), threads.len())
    });
    assert_eq!(sum, 3 * (0..N).sum::<usize>());
    assert_eq!(most_inside, N, "blocking calls inside at once");
    assert_eq!(threads, N, "each concurrent call ran on its own thread");
}

#[test]
fn blocking_from_a_plain_thread_just_runs_f() {
    let me = std::thread::current().id();
    let (v, on) = gort::blocking(|| (String::from("plain"), std::thread::current().id()));
    assert_eq!(v, "plain");
    assert_eq!(on, me, "f runs on the calling thread");
    let err = std::panic::catch_unwind(|| -> u8 { gort::blocking(|| panic!("plain panic")) })
        .unwrap_err();
    assert_eq!(*err.downcast_ref::<&str>().unwrap(), "plain panic");
    // Nested, on a plain thread.
    assert_eq!(gort::blocking(|| gort::blocking(|| 1) + 1), 2);
}

#[test]
fn nested_blocking_returns_and_still_hands_off() {
    let _w = watchdog("nested blocking");
    let seen = rt(1).run(|| {
        assert_eq!(gort::blocking(|| gort::blocking(|| 5) + 1), 6);
        let p = Arc::new(Progress::default());
        let q = p.clone();
        let blocker = gort::go(move || {
            let outer = gort::blocking(move || {
                std::thread::sleep(Duration::from_millis(5));
                gort::blocking(move || {
                    q.open.store(true, Ordering::SeqCst);
                    wait_on_thread(|| q.enough());
                    q.snapshot()
                })
            });
            // After both calls return the goroutine runs normally again.
            let (tx, rx) = chan::bounded::<u8>(1);
            tx.send(9).unwrap();
            assert_eq!(rx.recv().unwrap(), 9);
            gort::time::sleep(Duration::from_millis(1));
            outer
        });
        let others = start_progress(&p);
        let seen = blocker.join().unwrap();
        p.stop.store(true, Ordering::SeqCst);
        for h in others {
            h.join().unwrap();
        }
        seen
    });
    let (rounds, ticks, sleeps) = seen;
    assert_eq!(rounds, ROUNDS, "ping-pong rounds while blocked");
    assert!(ticks >= TICKS, "ticks while blocked: {ticks}");
    assert!(sleeps >= SLEEPS, "sleeps while blocked: {sleeps}");
}

#[test]
fn a_cpu_hog_does_not_stop_others_on_one_proc() {
    // The hog loops on an AtomicBool with no scheduling point. sysmon takes
    // the processor from it, so a ticker, a ping-pong and a sleeper progress;
    // the hog observes their progress from inside its loop, then stops when
    // told.
    let _w = watchdog("cpu hog on procs=1");
    let (seen, spins) = rt(1).run(|| {
        let p = Arc::new(Progress::default());
        let release = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(std::sync::Mutex::new(None));
        let (q, rel, s2) = (p.clone(), release.clone(), seen.clone());
        let hog = gort::go(move || {
            q.open.store(true, Ordering::SeqCst);
            let start = Instant::now();
            let mut spins = 0u64;
            while !rel.load(Ordering::SeqCst) {
                spins += 1;
                std::hint::spin_loop();
                if spins % 1024 == 0
                    && s2.lock().unwrap().is_none()
                    && (q.enough() || start.elapsed() > GIVE_UP)
                {
                    *s2.lock().unwrap() = Some(q.snapshot());
                }
            }
            spins
        });
        let others = start_progress(&p);
        // Main parks until the others are done with their rounds, then
        // tells the hog to stop.
        let mut others = others.into_iter();
        for h in others.by_ref().take(2) {
            h.join().unwrap(); // the ping-pong pair
        }
        while seen.lock().unwrap().is_none() {
            gort::time::sleep(Duration::from_millis(1));
        }
        release.store(true, Ordering::SeqCst);
        let spins = hog.join().unwrap();
        p.stop.store(true, Ordering::SeqCst);
        for h in others {
            h.join().unwrap(); // the ticker and the sleeper
        }
        let seen = seen.lock().unwrap().unwrap();
        (seen, spins)
    });
    let (rounds, ticks, sleeps) = seen;
    assert_eq!(rounds, ROUNDS, "ping-pong rounds while the hog ran");
    assert!(ticks >= TICKS, "ticks while the hog ran: {ticks}");
    assert!(sleeps >= SLEEPS, "sleeps while the hog ran: {sleeps}");
    assert!(spins > 0);
}

#[test]
fn a_spinning_main_goroutine_lets_a_spawned_one_run_on_one_proc() {
    // Go's TestPreemption shape: main spins, with no scheduling point, on a
    // flag only a goroutine queued behind it can set.
    let _w = watchdog("spinning main on procs=1");
    let v = rt(1).run(|| {
        let flag = Arc::new(AtomicUsize::new(0));
        let f2 = flag.clone();
        let h = gort::go(move || f2.store(42, Ordering::SeqCst));
        while flag.load(Ordering::SeqCst) == 0 {
            std::hint::spin_loop();
        }
        h.join().unwrap();
        flag.load(Ordering::SeqCst)
    });
    assert_eq!(v, 42);
}

#[test]
fn max_threads_zero_is_an_invalid_input_error() {
    let err = RtBuilder::new().max_threads(0).build().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("max_threads"), "{err}");
}

#[test]
fn a_generous_max_threads_lets_blocking_calls_run() {
    let _w = watchdog("max_threads 64");
    let r = RtBuilder::new().procs(1).max_threads(64).build().unwrap();
    let sum = r.run(|| {
        let hs: Vec<_> = (0..20u64)
            .map(|i| {
                gort::go(move || {
                    gort::blocking(move || {
                        std::thread::sleep(Duration::from_millis(20));
                        i
                    })
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    assert_eq!(sum, (0..20).sum());
}

const CHILD_ENV: &str = "GORT_BLOCKING_TEST_CHILD";
const BUILT: &str = "child: runtime built";

#[test]
fn exceeding_max_threads_panics_naming_it() {
    // Go's "thread exhaustion" is fatal, so the runtime may panic on any of
    // its threads: run it in a child process (this test binary, this test
    // alone) and check the child failed saying why.
    if std::env::var(CHILD_ENV).is_ok() {
        let _w = watchdog("max_threads child");
        let r = RtBuilder::new().procs(1).max_threads(3).build().unwrap();
        eprintln!("{BUILT}");
        r.run(|| {
            // 30 goroutines each wait in a blocking call: each hand-off needs
            // another thread, far beyond 3.
            let hs: Vec<_> = (0..30)
                .map(|_| {
                    gort::go(|| gort::blocking(|| std::thread::sleep(Duration::from_millis(200))))
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
        });
        eprintln!("child: all blocking calls returned");
        return;
    }
    let _w = watchdog("max_threads parent");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "exceeding_max_threads_panics_naming_it",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the child succeeded:\n{stderr}");
    let after_build = stderr
        .split_once(BUILT)
        .unwrap_or_else(|| panic!("the child did not build its runtime:\n{stderr}"))
        .1;
    assert!(after_build.contains("max_threads"), "{stderr}");
    assert!(
        !after_build.contains("all blocking calls returned"),
        "{stderr}"
    );
}
