//! Ports of Go's sync tests (src/sync/{mutex,rwmutex,once,cond,waitgroup}_test.go,
//! behaviour tests only, not benchmarks) to `gort::sync`, plus tests of the
//! Semaphore's FIFO hand-off and of plain OS threads sharing the primitives
//! with goroutines.

mod common;
use common::{rt, watchdog};

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::chan;
use gort::sync::{Condvar, Mutex, Once, RwLock, Semaphore, WaitGroup};

/// On a one-processor runtime, spawns `f` and returns once it has run up to
/// the point where it set its flag and then parked (it cannot be preempted
/// in between: it runs for microseconds and there is no other processor).
/// Used to make "A parks before B" deterministic.
fn spawn_until_parked<T, F>(f: F) -> gort::JoinHandle<T>
where
    F: FnOnce(&AtomicBool) -> T + Send + 'static,
    T: Send + 'static,
{
    assert_eq!(gort::procs(), 1, "spawn_until_parked needs procs = 1");
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    let h = gort::go(move || f(&s));
    while !started.load(Ordering::SeqCst) {
        gort::yield_now();
    }
    gort::yield_now();
    h
}

// ---------------------------------------------------------------------------
// mutex_test.go

#[gort::test(procs = 4)]
fn mutex_hammer() {
    // TestMutex, with a non-atomic read-modify-write under the lock so that
    // a broken mutex loses increments.
    let _w = watchdog("TestMutex");
    let m = Arc::new(Mutex::new(0u64));
    let wg = WaitGroup::new();
    for g in 0..10 {
        let m = m.clone();
        wg.go(move || {
            for i in 0..1000 {
                let mut guard = m.lock();
                let v = *guard;
                if (i + g) % 97 == 0 {
                    gort::yield_now(); // hold the lock across a reschedule
                }
                *guard = v + 1;
            }
        });
    }
    wg.wait();
    assert_eq!(*m.lock(), 10_000);
}

#[gort::test(procs = 2)]
fn mutex_fairness() {
    // TestMutexFairness: one goroutine re-locks immediately after unlocking
    // (holding the lock across a 100µs sleep); another must still get the lock
    // 10 times. Go's starvation mode guarantees it; the hog gives up after
    // 20000 rounds (>= 2 s of holding), and the assertion is that the other
    // goroutine got its 10 turns before that.
    let _w = watchdog("TestMutexFairness");
    let mu = Arc::new(Mutex::new(()));
    let stop = Arc::new(AtomicBool::new(false));
    let (mu1, stop1) = (mu.clone(), stop.clone());
    let hog = gort::go(move || {
        for _ in 0..20_000 {
            let g = mu1.lock();
            gort::time::sleep(Duration::from_micros(100));
            drop(g);
            if stop1.load(Ordering::SeqCst) {
                return true;
            }
        }
        false
    });
    let (mu2, stop2) = (mu.clone(), stop.clone());
    let other = gort::go(move || {
        for _ in 0..10 {
            gort::time::sleep(Duration::from_micros(100));
            drop(mu2.lock());
        }
        stop2.store(true, Ordering::SeqCst);
    });
    other.join().unwrap();
    assert!(
        hog.join().unwrap(),
        "a waiter could not get the Mutex 10 times while another goroutine re-locked it 20000 times"
    );
}

#[gort::test]
fn mutex_try_lock_into_inner_and_get_mut() {
    let m = Arc::new(Mutex::new(vec![1]));
    let g = m.lock();
    let m1 = m.clone();
    assert!(
        gort::go(move || m1.try_lock().is_none()).join().unwrap(),
        "try_lock succeeded on a locked Mutex"
    );
    drop(g);
    m.try_lock().expect("try_lock on an unlocked Mutex").push(2);
    let mut m = Arc::try_unwrap(m).unwrap();
    m.get_mut().push(3);
    assert_eq!(m.into_inner(), [1, 2, 3]);
}

#[gort::test(procs = 1)]
fn a_goroutine_waiting_for_a_mutex_parks_and_does_not_hold_the_thread() {
    let m = Arc::new(Mutex::new(0));
    let guard = m.lock();
    let m1 = m.clone();
    let waiter = spawn_until_parked(move |started| {
        started.store(true, Ordering::SeqCst);
        *m1.lock() += 1;
    });
    // On the only processor, another goroutine still runs.
    let ran = gort::go(|| 42).join().unwrap();
    assert_eq!(ran, 42);
    assert!(!waiter.is_finished());
    drop(guard);
    waiter.join().unwrap();
    assert_eq!(*m.lock(), 1);
}

#[test]
fn mutex_shared_by_plain_threads_and_goroutines() {
    let _w = watchdog("mutex threads+goroutines");
    let r = rt(2);
    let m = Arc::new(Mutex::new(0u64));
    let gs: Vec<_> = (0..4)
        .map(|_| {
            let m = m.clone();
            r.go(move || {
                for i in 0..2000 {
                    let mut g = m.lock();
                    let v = *g;
                    if i % 50 == 0 {
                        gort::yield_now();
                    }
                    *g = v + 1;
                }
            })
        })
        .collect();
    let ts: Vec<_> = (0..2)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || {
                for i in 0..2000 {
                    let mut g = m.lock();
                    let v = *g;
                    if i % 50 == 0 {
                        std::thread::yield_now();
                    }
                    *g = v + 1;
                }
            })
        })
        .collect();
    for g in gs {
        g.join().unwrap();
    }
    for t in ts {
        t.join().unwrap();
    }
    assert_eq!(*m.lock(), 12_000);
}

// ---------------------------------------------------------------------------
// rwmutex_test.go

fn parallel_readers(num_readers: usize, procs: usize) {
    // All readers must hold the read lock at the same time, or this hangs.
    rt(procs).run(move || {
        let m = Arc::new(RwLock::new(7));
        let locked = WaitGroup::new();
        locked.add(num_readers as isize);
        let unlock = WaitGroup::new();
        unlock.add(1);
        let hs: Vec<_> = (0..num_readers)
            .map(|_| {
                let (m, locked, unlock) = (m.clone(), locked.clone(), unlock.clone());
                gort::go(move || {
                    let g = m.read();
                    locked.done();
                    unlock.wait();
                    *g
                })
            })
            .collect();
        locked.wait();
        unlock.done();
        for h in hs {
            assert_eq!(h.join().unwrap(), 7);
        }
    });
}

#[test]
fn rwmutex_parallel_readers() {
    let _w = watchdog("TestParallelReaders");
    parallel_readers(1, 4);
    parallel_readers(3, 4);
    parallel_readers(4, 2);
}

fn hammer_rwmutex(procs: usize, num_readers: usize, iterations: usize) {
    // activity = number of active readers + 10000 * number of active writers
    rt(procs).run(move || {
        let activity = Arc::new(AtomicI32::new(0));
        let rwm = Arc::new(RwLock::new(()));
        let writer = {
            let (rwm, activity) = (rwm.clone(), activity.clone());
            move || {
                for _ in 0..iterations {
                    let g = rwm.write();
                    let n = activity.fetch_add(10000, Ordering::SeqCst) + 10000;
                    assert_eq!(n, 10000, "wlock({n})");
                    for _ in 0..100 {
                        std::hint::spin_loop();
                    }
                    activity.fetch_sub(10000, Ordering::SeqCst);
                    drop(g);
                }
            }
        };
        let reader = {
            let (rwm, activity) = (rwm.clone(), activity.clone());
            move || {
                for _ in 0..iterations {
                    let g = rwm.read();
                    let n = activity.fetch_add(1, Ordering::SeqCst) + 1;
                    assert!((1..10000).contains(&n), "rlock({n})");
                    for _ in 0..100 {
                        std::hint::spin_loop();
                    }
                    activity.fetch_sub(1, Ordering::SeqCst);
                    drop(g);
                }
            }
        };
        let mut hs = vec![gort::go(writer.clone())];
        for _ in 0..num_readers / 2 {
            hs.push(gort::go(reader.clone()));
        }
        hs.push(gort::go(writer));
        for _ in num_readers / 2..num_readers {
            hs.push(gort::go(reader.clone()));
        }
        for h in hs {
            h.join().unwrap();
        }
    });
}

#[test]
fn rwmutex_hammer() {
    let _w = watchdog("TestRWMutex");
    let n = 1000;
    for (procs, readers) in [
        (1, 1),
        (1, 3),
        (1, 10),
        (4, 1),
        (4, 3),
        (4, 10),
        (10, 1),
        (10, 3),
        (10, 10),
        (10, 5),
    ] {
        hammer_rwmutex(procs, readers, n);
    }
}

#[gort::test]
fn rwmutex_readers_exclude_the_writer_and_the_writer_excludes_all() {
    // TestRLocker: two read locks held; the writer gets in only after both
    // are released; while it holds the lock no reader gets in.
    let _w = watchdog("TestRLocker");
    let l = Arc::new(RwLock::new(0));
    for i in 0..10 {
        let r1 = l.read();
        let r2 = l.read();
        let wlocked = Arc::new(AtomicBool::new(false));
        let (l1, wl) = (l.clone(), wlocked.clone());
        let (release_tx, release_rx) = chan::bounded::<()>(0);
        let writer = gort::go(move || {
            let mut g = l1.write();
            wl.store(true, Ordering::SeqCst);
            *g += 1;
            release_rx.recv().unwrap(); // hold the write lock until told
        });
        gort::time::sleep(Duration::from_millis(2));
        assert!(
            !wlocked.load(Ordering::SeqCst),
            "writer got in past two readers"
        );
        assert!(l.try_write().is_none());
        drop(r1);
        gort::time::sleep(Duration::from_millis(2));
        assert!(
            !wlocked.load(Ordering::SeqCst),
            "writer got in past one reader"
        );
        drop(r2);
        while !wlocked.load(Ordering::SeqCst) {
            gort::time::sleep(Duration::from_micros(100));
        }
        assert!(
            l.try_read().is_none(),
            "RwLock didn't respect the write lock"
        );
        assert!(l.try_write().is_none());
        release_tx.send(()).unwrap();
        writer.join().unwrap();
        assert_eq!(*l.read(), i + 1);
    }
}

#[gort::test]
fn rwmutex_try_read_and_try_write() {
    let l = RwLock::new(String::from("x"));
    {
        let r = l.read();
        let r2 = l.try_read().expect("a second reader gets in");
        assert_eq!((r.as_str(), r2.as_str()), ("x", "x"));
        assert!(l.try_write().is_none());
    }
    {
        let mut w = l.try_write().expect("unlocked");
        w.push('y');
        assert!(l.try_read().is_none());
        assert!(l.try_write().is_none());
    }
    let mut l = l;
    l.get_mut().push('z');
    assert_eq!(l.into_inner(), "xyz");
}

#[gort::test(procs = 1)]
fn rwmutex_a_waiting_writer_blocks_new_readers() {
    // Go's RWMutex: "If any goroutine calls Lock while the lock is already
    // held by one or more readers, concurrent calls to RLock will block until
    // the writer has acquired (and released) the lock" — so readers cannot
    // starve a writer.
    let l = Arc::new(RwLock::new(()));
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let r1 = l.read();
    let (lw, logw) = (l.clone(), log.clone());
    let writer = spawn_until_parked(move |started| {
        started.store(true, Ordering::SeqCst);
        let _g = lw.write();
        logw.lock().unwrap().push("writer");
    });
    let (lr, logr) = (l.clone(), log.clone());
    let reader = spawn_until_parked(move |started| {
        started.store(true, Ordering::SeqCst);
        let _g = lr.read();
        logr.lock().unwrap().push("reader");
    });
    drop(r1);
    writer.join().unwrap();
    reader.join().unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        ["writer", "reader"],
        "a reader that arrived after a waiting writer got in first"
    );
}

// ---------------------------------------------------------------------------
// once_test.go

#[gort::test(procs = 4)]
fn once_runs_exactly_once_and_callers_wait_for_it() {
    let _w = watchdog("TestOnce");
    let once = Arc::new(Once::new());
    let o = Arc::new(AtomicUsize::new(0));
    assert!(!once.is_completed());
    let hs: Vec<_> = (0..10)
        .map(|_| {
            let (once, o) = (once.clone(), o.clone());
            gort::go(move || {
                once.call_once(|| {
                    // a slow initialiser: every other caller must wait for it
                    gort::time::sleep(Duration::from_millis(10));
                    o.fetch_add(1, Ordering::SeqCst);
                });
                o.load(Ordering::SeqCst)
            })
        })
        .collect();
    for h in hs {
        assert_eq!(h.join().unwrap(), 1, "once failed inside run");
    }
    assert_eq!(o.load(Ordering::SeqCst), 1, "once failed outside run");
    assert!(once.is_completed());
    once.call_once(|| panic!("Once called twice"));
}

#[gort::test]
fn once_panic_leaves_it_incomplete_and_the_next_caller_runs() {
    // TestOncePanic. Go counts a panicking f as done; gort's documented
    // choice (sync/once.rs) is that the Once stays incomplete, unpoisoned,
    // and the next caller runs its own closure. Either way the Once is
    // usable after the panic and runs exactly one successful closure.
    let once = Once::new();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        once.call_once(|| panic!("failed"));
    }));
    assert!(r.is_err(), "call_once did not propagate the first panic");
    assert!(!once.is_completed());
    let mut ran = 0;
    once.call_once(|| ran += 1);
    assert_eq!(ran, 1, "the call after a panic did not run its closure");
    assert!(once.is_completed());
    once.call_once(|| panic!("Once called twice"));
}

#[gort::test(procs = 2)]
fn once_a_waiter_takes_over_after_the_runner_panics() {
    let _w = watchdog("once takeover");
    let once = Arc::new(Once::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let (o1, r1) = (once.clone(), runs.clone());
    let first = gort::go(move || {
        o1.call_once(|| {
            r1.fetch_add(1, Ordering::SeqCst);
            gort::time::sleep(Duration::from_millis(20)); // others queue up
            panic!("first closure fails");
        })
    });
    gort::time::sleep(Duration::from_millis(5));
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let (o, r) = (once.clone(), runs.clone());
            gort::go(move || {
                o.call_once(|| {
                    r.fetch_add(1, Ordering::SeqCst);
                });
                o.is_completed()
            })
        })
        .collect();
    assert!(first.join().is_err());
    for w in waiters {
        assert!(w.join().unwrap(), "call_once returned before completion");
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "one failed run, one successful run"
    );
}

// ---------------------------------------------------------------------------
// cond_test.go

#[gort::test]
fn cond_signal() {
    let _w = watchdog("TestCondSignal");
    let m = Arc::new(Mutex::new(()));
    let c = Arc::new(Condvar::new());
    let mut n = 2;
    let (running_tx, running) = chan::bounded::<()>(n);
    let (awake_tx, awake) = chan::bounded::<()>(n);
    for _ in 0..n {
        let (m, c, running_tx, awake_tx) =
            (m.clone(), c.clone(), running_tx.clone(), awake_tx.clone());
        gort::go(move || {
            let g = m.lock();
            running_tx.send(()).unwrap();
            let g = c.wait(g);
            awake_tx.send(()).unwrap();
            drop(g);
        });
    }
    for _ in 0..n {
        running.recv().unwrap(); // Wait for everyone to run.
    }
    while n > 0 {
        assert!(awake.try_recv().is_err(), "goroutine not asleep");
        let g = m.lock();
        c.notify_one();
        drop(g);
        awake.recv().unwrap(); // Will deadlock if no goroutine wakes up
        assert!(awake.try_recv().is_err(), "too many goroutines awake");
        n -= 1;
    }
    c.notify_one();
}

#[gort::test]
fn cond_signal_generations_wake_in_fifo_order() {
    let _w = watchdog("TestCondSignalGenerations");
    let m = Arc::new(Mutex::new(()));
    let c = Arc::new(Condvar::new());
    let n = 100;
    let (running_tx, running) = chan::bounded::<()>(n);
    let (awake_tx, awake) = chan::bounded::<usize>(n);
    for i in 0..n {
        let (m1, c1, running_tx, awake_tx) =
            (m.clone(), c.clone(), running_tx.clone(), awake_tx.clone());
        gort::go(move || {
            let g = m1.lock();
            running_tx.send(()).unwrap();
            let g = c1.wait(g);
            awake_tx.send(i).unwrap();
            drop(g);
        });
        if i > 0 {
            let a = awake.recv().unwrap();
            assert_eq!(a, i - 1, "wrong goroutine woke up");
        }
        running.recv().unwrap();
        let g = m.lock();
        c.notify_one();
        drop(g);
    }
    assert_eq!(awake.recv(), Ok(n - 1));
}

#[gort::test]
fn cond_broadcast() {
    let _w = watchdog("TestCondBroadcast");
    let m = Arc::new(Mutex::new(false)); // the guarded bool is Go's `exit`
    let c = Arc::new(Condvar::new());
    let n = 200;
    let (running_tx, running) = chan::bounded::<usize>(n);
    let (awake_tx, awake) = chan::bounded::<usize>(n);
    for g in 0..n {
        let (m, c, running_tx, awake_tx) =
            (m.clone(), c.clone(), running_tx.clone(), awake_tx.clone());
        gort::go(move || {
            let mut exit = m.lock();
            while !*exit {
                running_tx.send(g).unwrap();
                exit = c.wait(exit);
                awake_tx.send(g).unwrap();
            }
        });
    }
    for i in 0..n {
        for _ in 0..n {
            running.recv().unwrap(); // Will deadlock unless n are running.
        }
        if i == n - 1 {
            *m.lock() = true;
        }
        assert!(awake.try_recv().is_err(), "goroutine not asleep");
        let g = m.lock();
        c.notify_all();
        drop(g);
        let mut seen = vec![false; n];
        for _ in 0..n {
            let g = awake.recv().unwrap();
            assert!(!seen[g], "goroutine woke up twice");
            seen[g] = true;
        }
    }
    // every goroutine exits after the last broadcast
    drop(running_tx);
    gort::time::sleep(Duration::from_millis(10));
    assert!(running.try_recv().is_err(), "goroutine did not exit");
    c.notify_all();
}

#[gort::test(procs = 4)]
fn cond_race() {
    // TestRace: x goes 0 -> 1 -> 2 -> 3 through signals under the lock.
    let _w = watchdog("TestRace (cond)");
    let m = Arc::new(Mutex::new(0));
    let c = Arc::new(Condvar::new());
    let (m1, c1) = (m.clone(), c.clone());
    let a = gort::go(move || {
        let mut x = m1.lock();
        *x = 1;
        x = c1.wait(x);
        let seen = *x;
        *x = 3;
        c1.notify_one();
        seen
    });
    let (m2, c2) = (m.clone(), c.clone());
    let b = gort::go(move || {
        let mut x = m2.lock();
        loop {
            if *x == 1 {
                *x = 2;
                c2.notify_one();
                break;
            }
            drop(x);
            gort::yield_now();
            x = m2.lock();
        }
    });
    let (m3, c3) = (m.clone(), c.clone());
    let d = gort::go(move || {
        let mut x = m3.lock();
        loop {
            if *x == 2 {
                x = c3.wait(x);
                return Some(*x);
            }
            if *x == 3 {
                return None;
            }
            drop(x);
            gort::yield_now();
            x = m3.lock();
        }
    });
    assert_eq!(a.join().unwrap(), 2, "want 2");
    b.join().unwrap();
    if let Some(x) = d.join().unwrap() {
        assert_eq!(x, 3, "want 3");
    }
}

#[gort::test(procs = 4)]
fn cond_signal_stealing() {
    // A broadcast must wake the waiter that was already waiting, even if a
    // new waiter races with the broadcast.
    let _w = watchdog("TestCondSignalStealing");
    for _ in 0..1000 {
        let m = Arc::new(Mutex::new(false)); // the guarded bool is Go's `done`
        let cond = Arc::new(Condvar::new());
        let (ch_tx, ch) = chan::bounded::<()>(0);
        let (m1, c1) = (m.clone(), cond.clone());
        gort::go(move || {
            let g = m1.lock();
            ch_tx.send(()).unwrap();
            let g = c1.wait(g);
            drop(g);
            ch_tx.send(()).unwrap();
        });
        ch.recv().unwrap();
        drop(m.lock());
        // The waiter is in wait() now. Race a broadcast with a new waiter.
        let c2 = cond.clone();
        gort::go(move || c2.notify_all());
        let (m3, c3) = (m.clone(), cond.clone());
        gort::go(move || {
            let mut done = m3.lock();
            while !*done {
                done = c3.wait(done);
            }
        });
        // the first waiter does get the broadcast
        ch.recv().unwrap();
        *m.lock() = true;
        cond.notify_all();
    }
}

#[gort::test]
fn cond_wait_timeout_reports_timeouts_and_notifications() {
    let m = Arc::new(Mutex::new(0));
    let c = Arc::new(Condvar::new());
    let d = Duration::from_millis(20);
    let g = m.lock();
    let t = Instant::now();
    let (g, timed_out) = c.wait_timeout(g, d);
    assert!(timed_out);
    assert!(
        t.elapsed() >= d,
        "wait_timeout timed out after {:?}",
        t.elapsed()
    );
    assert_eq!(*g, 0, "the guard comes back locked");
    drop(g);
    let (m1, c1) = (m.clone(), c.clone());
    gort::go(move || {
        gort::time::sleep(Duration::from_millis(5));
        *m1.lock() = 5;
        c1.notify_one();
    });
    let mut g = m.lock();
    while *g != 5 {
        let (g2, timed_out) = c.wait_timeout(g, Duration::from_secs(60));
        assert!(!timed_out, "a notification was reported as a timeout");
        g = g2;
    }
}

#[test]
fn condvar_between_a_plain_thread_and_goroutines() {
    let _w = watchdog("condvar thread");
    let r = rt(2);
    let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
    let p = pair.clone();
    let h = r.go(move || {
        for i in 1..=100 {
            let mut g = p.0.lock();
            while *g != 2 * i - 1 {
                g = p.1.wait(g);
            }
            *g += 1;
            p.1.notify_all();
        }
    });
    for i in 1..=100 {
        let mut g = pair.0.lock();
        while *g != 2 * (i - 1) {
            g = pair.1.wait(g); // blocks this OS thread
        }
        *g += 1;
        pair.1.notify_all();
    }
    h.join().unwrap();
    assert_eq!(*pair.0.lock(), 200);
}

// ---------------------------------------------------------------------------
// waitgroup_test.go

#[gort::test(procs = 4)]
fn waitgroup_is_a_reusable_barrier() {
    let _w = watchdog("TestWaitGroup");
    let wg1 = WaitGroup::new();
    let wg2 = WaitGroup::new();
    for _ in 0..8 {
        let n = 16;
        wg1.add(n);
        wg2.add(n);
        let (exited_tx, exited) = chan::bounded::<()>(n as usize);
        for _ in 0..n {
            let (wg1, wg2, exited_tx) = (wg1.clone(), wg2.clone(), exited_tx.clone());
            gort::go(move || {
                wg1.done();
                wg2.wait();
                exited_tx.send(()).unwrap();
            });
        }
        wg1.wait();
        for _ in 0..n {
            assert!(
                exited.try_recv().is_err(),
                "WaitGroup released group too soon"
            );
            wg2.done();
        }
        for _ in 0..n {
            exited.recv().unwrap(); // Will block if barrier fails to unlock someone.
        }
    }
}

#[gort::test]
fn waitgroup_misuse_panics_with_gos_message() {
    let wg = WaitGroup::new();
    wg.add(1);
    wg.done();
    let err = std::panic::catch_unwind(|| wg.done()).unwrap_err();
    let msg = err
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| err.downcast_ref::<String>().cloned())
        .unwrap();
    assert_eq!(msg, "sync: negative WaitGroup counter");
}

#[gort::test(procs = 4)]
fn waitgroup_race_no_spurious_wakeup() {
    let _w = watchdog("TestWaitGroupRace");
    for _ in 0..1000 {
        let wg = WaitGroup::new();
        let n = Arc::new(AtomicUsize::new(0));
        for _ in 0..2 {
            wg.add(1);
            let (wg, n) = (wg.clone(), n.clone());
            gort::go(move || {
                n.fetch_add(1, Ordering::SeqCst);
                wg.done();
            });
        }
        wg.wait();
        assert_eq!(n.load(Ordering::SeqCst), 2, "spurious wakeup from wait");
    }
}

#[test]
fn waitgroup_wait_from_a_plain_thread() {
    let _w = watchdog("waitgroup thread");
    let r = rt(2);
    let wg = WaitGroup::new();
    let hits = Arc::new(AtomicUsize::new(0));
    for _ in 0..50 {
        wg.add(1);
        let (wg, hits) = (wg.clone(), hits.clone());
        r.go(move || {
            gort::time::sleep(Duration::from_millis(2));
            hits.fetch_add(1, Ordering::SeqCst);
            wg.done();
        });
    }
    wg.wait();
    assert_eq!(hits.load(Ordering::SeqCst), 50);
}

// ---------------------------------------------------------------------------
// Semaphore

#[gort::test(procs = 1)]
fn semaphore_hands_a_released_permit_to_the_first_waiter_without_barging() {
    let sem = Arc::new(Semaphore::new(1));
    let held = sem.acquire();
    assert_eq!(sem.available_permits(), 0);
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let gate = WaitGroup::new();
    gate.add(1);
    let mut hs = Vec::new();
    for name in ["A", "B"] {
        let (sem, order, gate) = (sem.clone(), order.clone(), gate.clone());
        hs.push(spawn_until_parked(move |started| {
            started.store(true, Ordering::SeqCst);
            let p = sem.acquire();
            order.lock().unwrap().push(name);
            gate.wait();
            drop(p);
        }));
    }
    assert!(order.lock().unwrap().is_empty());
    drop(held); // releasing one permit hands it to A, the first waiter
    assert!(
        sem.try_acquire().is_none(),
        "try_acquire barged past a parked acquirer"
    );
    assert_eq!(sem.available_permits(), 0);
    while order.lock().unwrap().is_empty() {
        gort::yield_now();
    }
    assert_eq!(*order.lock().unwrap(), ["A"], "B overtook A");
    gate.done();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(*order.lock().unwrap(), ["A", "B"]);
    assert_eq!(sem.available_permits(), 1);
}

#[gort::test(procs = 1)]
fn semaphore_waiters_are_served_in_arrival_order() {
    let sem = Arc::new(Semaphore::new(1));
    let held = sem.acquire();
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let hs: Vec<_> = (0..10)
        .map(|i| {
            let (sem, order) = (sem.clone(), order.clone());
            spawn_until_parked(move |started| {
                started.store(true, Ordering::SeqCst);
                let _p = sem.acquire();
                order.lock().unwrap().push(i);
                gort::yield_now(); // give later waiters a chance to barge
            })
        })
        .collect();
    drop(held);
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..10).collect::<Vec<_>>());
}

#[gort::test(procs = 1)]
fn semaphore_a_large_request_at_the_head_is_not_starved_by_small_ones() {
    // Go's x/sync/semaphore.Weighted: strictly FIFO, so a waiter asking
    // for 2 at the head of the queue blocks a later waiter asking for 1
    // even when 1 permit is free.
    let sem = Arc::new(Semaphore::new(0));
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (s, o) = (sem.clone(), order.clone());
    let big = spawn_until_parked(move |started| {
        started.store(true, Ordering::SeqCst);
        let p = s.acquire_many(2);
        o.lock().unwrap().push("big");
        drop(p);
    });
    let (s, o) = (sem.clone(), order.clone());
    let small = spawn_until_parked(move |started| {
        started.store(true, Ordering::SeqCst);
        let _p = s.acquire();
        o.lock().unwrap().push("small");
    });
    sem.add_permits(1);
    for _ in 0..10 {
        gort::yield_now();
    }
    assert!(order.lock().unwrap().is_empty(), "the small request barged");
    assert!(
        sem.try_acquire().is_none(),
        "try_acquire barged past the queue"
    );
    sem.add_permits(1);
    big.join().unwrap();
    small.join().unwrap();
    assert_eq!(*order.lock().unwrap(), ["big", "small"]);
    assert_eq!(sem.available_permits(), 2);
}

#[gort::test(procs = 4)]
fn semaphore_limits_concurrency() {
    let _w = watchdog("semaphore limit");
    let sem = Arc::new(Semaphore::new(3));
    let active = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let wg = WaitGroup::new();
    for _ in 0..20 {
        let (sem, active, max) = (sem.clone(), active.clone(), max.clone());
        wg.go(move || {
            let _p = sem.acquire();
            let now = active.fetch_add(1, Ordering::SeqCst) + 1;
            max.fetch_max(now, Ordering::SeqCst);
            gort::time::sleep(Duration::from_millis(2));
            active.fetch_sub(1, Ordering::SeqCst);
        });
    }
    wg.wait();
    let max = max.load(Ordering::SeqCst);
    assert!(
        (1..=3).contains(&max),
        "{max} goroutines held a permit of 3"
    );
    assert_eq!(sem.available_permits(), 3);
}

#[gort::test]
fn semaphore_try_acquire_and_permit_drop() {
    let sem = Semaphore::new(2);
    let a = sem.try_acquire().expect("2 free");
    let b = sem.try_acquire().expect("1 free");
    assert_eq!(sem.available_permits(), 0);
    assert!(sem.try_acquire().is_none());
    drop(a);
    assert_eq!(sem.available_permits(), 1);
    let c = sem.try_acquire().expect("one was released");
    drop((b, c));
    assert_eq!(sem.available_permits(), 2);
    let zero = Semaphore::new(0);
    assert!(zero.try_acquire().is_none());
}

#[test]
fn semaphore_acquire_from_a_plain_thread_waits_for_a_goroutine() {
    let _w = watchdog("semaphore thread");
    let r = rt(2);
    let sem = Arc::new(Semaphore::new(1));
    let released = Arc::new(AtomicBool::new(false));
    let (s, rel) = (sem.clone(), released.clone());
    let (ready_tx, ready) = chan::bounded::<()>(0);
    let h = r.go(move || {
        let p = s.acquire();
        ready_tx.send(()).unwrap();
        gort::time::sleep(Duration::from_millis(20));
        rel.store(true, Ordering::SeqCst);
        drop(p);
    });
    ready.recv().unwrap();
    let _p = sem.acquire(); // blocks this thread until the goroutine drops its permit
    assert!(released.load(Ordering::SeqCst));
    h.join().unwrap();
}
