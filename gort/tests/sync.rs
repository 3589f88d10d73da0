//! Behaviour tests of `gort::sync`: Mutex, RwLock, Once, Condvar and
//! Semaphore, used from goroutines and plain threads together. Orders and
//! counts are asserted, never timings; a hang aborts through the watchdog.

mod common;
use common::watchdog;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::sync::{Condvar, Mutex, Once, RwLock, Semaphore, WaitGroup};

/// Yields until `f` holds (lets other goroutines reach a parked state).
fn until(mut f: impl FnMut() -> bool) {
    while !f() {
        gort::yield_now();
    }
}

// ---------------------------------------------------------------- Mutex

#[gort::test]
fn mutex_counts_exactly_under_goroutines_and_threads_mixed() {
    let _w = watchdog("mutex mixed");
    const N: u64 = 10_000;
    let m = Arc::new(Mutex::new(0u64));
    let wg = WaitGroup::new();
    for _ in 0..8 {
        let m = m.clone();
        wg.go(move || {
            for i in 0..N {
                *m.lock() += 1;
                if i % 100 == 0 {
                    gort::yield_now();
                }
            }
        });
    }
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || {
                for _ in 0..N {
                    *m.lock() += 1;
                }
            })
        })
        .collect();
    wg.wait();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*m.lock(), 10 * N);
}

#[gort::test(procs = 1)]
fn mutex_counts_exactly_on_one_proc_with_a_thread() {
    let _w = watchdog("mutex one proc");
    let m = Arc::new(Mutex::new(0u64));
    let m2 = m.clone();
    let t = std::thread::spawn(move || {
        for _ in 0..20_000 {
            *m2.lock() += 1;
        }
    });
    let hs: Vec<_> = (0..4)
        .map(|_| {
            let m = m.clone();
            gort::go(move || {
                for _ in 0..5_000 {
                    let mut g = m.lock();
                    *g += 1;
                    // Park-worthy critical sections: yield while holding.
                    gort::yield_now();
                    drop(g);
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    t.join().unwrap();
    assert_eq!(*m.lock(), 40_000);
}

#[gort::test]
fn mutex_try_lock_results() {
    let m = Arc::new(Mutex::new(5));
    let g = m.try_lock().expect("free lock");
    assert!(m.try_lock().is_none(), "held by us");
    let m2 = m.clone();
    assert!(
        gort::go(move || m2.try_lock().is_none()).join().unwrap(),
        "held, seen from another goroutine"
    );
    let m3 = m.clone();
    assert!(std::thread::spawn(move || m3.try_lock().is_none())
        .join()
        .unwrap());
    drop(g);
    let m4 = m.clone();
    assert_eq!(
        gort::go(move || m4.try_lock().map(|g| *g)).join().unwrap(),
        Some(5)
    );
    let mut m = Arc::try_unwrap(m).unwrap();
    *m.get_mut() += 1;
    assert_eq!(m.into_inner(), 6);
}

/// Starvation mode: a waiter that has waited more than 1 ms gets the lock
/// handed to it directly, and the rest follow in FIFO order. One P, so the
/// order in which the waiters queue and run is deterministic.
#[gort::test(procs = 1)]
fn mutex_starvation_mode_hands_the_lock_over_in_fifo_order() {
    let _w = watchdog("mutex starvation");
    let m = Arc::new(Mutex::new(Vec::new()));
    let wg = WaitGroup::new();
    let g = m.lock();
    for i in 0..5 {
        let m = m.clone();
        wg.go(move || m.lock().push(i));
        gort::yield_now(); // goroutine i runs and queues behind the lock
    }
    std::thread::sleep(Duration::from_millis(3)); // the waiters wait > 1 ms
    drop(g); // normal mode: waiter 0 is woken...
    let g = m.lock(); // ...but this running goroutine barges in
    gort::yield_now(); // waiter 0 loses, and starving, queues at the front
    drop(g); // starvation mode: the lock goes straight to waiter 0
    assert!(
        m.try_lock().is_none(),
        "in starvation mode an unlock hands the lock over; newcomers do not get it"
    );
    wg.wait();
    assert_eq!(*m.lock(), [0, 1, 2, 3, 4], "FIFO hand-off");
    // The last waiter left starvation mode: a free lock is free again.
    assert!(m.try_lock().is_some());
}

/// In normal mode a woken waiter competes with newcomers (and a running
/// newcomer usually wins): the lock is not handed over.
#[gort::test(procs = 1)]
fn mutex_normal_mode_lets_a_running_goroutine_barge() {
    let _w = watchdog("mutex normal");
    let m = Arc::new(Mutex::new(Vec::new()));
    let g = m.lock();
    let m2 = m.clone();
    let h = gort::go(move || m2.lock().push("waiter"));
    gort::yield_now(); // the waiter queues
    drop(g); // wakes the waiter, which has waited (far) less than 1 ms...
    m.try_lock()
        .expect("normal mode: the lock is free")
        .push("barger");
    h.join().unwrap();
    assert_eq!(*m.lock(), ["barger", "waiter"]);
}

#[gort::test]
fn mutex_is_usable_as_a_static() {
    static M: Mutex<Vec<u32>> = Mutex::new(Vec::new());
    let hs: Vec<_> = (0..10)
        .map(|i| gort::go(move || M.lock().push(i)))
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(M.lock().len(), 10);
}

// --------------------------------------------------------------- RwLock

#[gort::test]
fn rwlock_readers_hold_the_lock_at_the_same_time() {
    let _w = watchdog("rwlock readers");
    let l = Arc::new(RwLock::new(7));
    let both = WaitGroup::new();
    both.add(2);
    let hs: Vec<_> = (0..2)
        .map(|_| {
            let (l, both) = (l.clone(), both.clone());
            gort::go(move || {
                let g = l.read();
                both.done();
                both.wait(); // returns only once both hold a read guard
                *g
            })
        })
        .collect();
    for h in hs {
        assert_eq!(h.join().unwrap(), 7);
    }
    // A thread and a goroutine too.
    let g = l.read();
    let l2 = l.clone();
    assert_eq!(std::thread::spawn(move || *l2.read()).join().unwrap(), 7);
    drop(g);
}

#[gort::test]
fn rwlock_writer_is_not_starved_by_a_stream_of_readers() {
    let _w = watchdog("rwlock writer starvation");
    let l = Arc::new(RwLock::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let wg = WaitGroup::new();
    // Readers overlap: there is always a reader holding the lock.
    for _ in 0..6 {
        let (l, stop, reads) = (l.clone(), stop.clone(), reads.clone());
        wg.go(move || {
            while !stop.load(Ordering::SeqCst) {
                let g = l.read();
                reads.fetch_add(1, Ordering::Relaxed);
                gort::yield_now();
                drop(g);
            }
        });
    }
    let reader_thread = {
        let (l, stop) = (l.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let _g = l.read();
                std::thread::yield_now();
            }
        })
    };
    until(|| reads.load(Ordering::Relaxed) > 100);
    for _ in 0..10 {
        *l.write() += 1;
        gort::yield_now();
    }
    stop.store(true, Ordering::SeqCst);
    wg.wait();
    reader_thread.join().unwrap();
    assert_eq!(*l.read(), 10);
}

#[gort::test]
fn rwlock_mixed_readers_and_writers_count_exactly() {
    let _w = watchdog("rwlock mixed");
    let l = Arc::new(RwLock::new((0u64, 0u64)));
    let wg = WaitGroup::new();
    for i in 0..8 {
        let l = l.clone();
        wg.go(move || {
            for k in 0..2_000u64 {
                if (k + i) % 3 == 0 {
                    let mut g = l.write();
                    g.0 += 1;
                    g.1 += 1;
                } else {
                    let g = l.read();
                    assert_eq!(g.0, g.1, "a reader never sees a half-done write");
                }
            }
        });
    }
    let threads: Vec<_> = (0..2u64)
        .map(|i| {
            let l = l.clone();
            std::thread::spawn(move || {
                for k in 0..2_000u64 {
                    if (k + i) % 3 == 0 {
                        let mut g = l.write();
                        g.0 += 1;
                        g.1 += 1;
                    } else {
                        let g = l.read();
                        assert_eq!(g.0, g.1);
                    }
                }
            })
        })
        .collect();
    wg.wait();
    for t in threads {
        t.join().unwrap();
    }
    let writes = |i: u64| (0..2_000u64).filter(|k| (k + i) % 3 == 0).count() as u64;
    let writes: u64 = (0..8).map(writes).sum::<u64>() + (0..2).map(writes).sum::<u64>();
    assert_eq!(l.read().0, writes);
}

#[gort::test(procs = 1)]
fn rwlock_try_results_and_readers_released_together() {
    let _w = watchdog("rwlock try");
    let l = Arc::new(RwLock::new(0));
    let w = l.try_write().unwrap();
    assert!(l.try_read().is_none());
    assert!(l.try_write().is_none());
    let done = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..3)
        .map(|_| {
            let (l, done) = (l.clone(), done.clone());
            gort::go(move || {
                let g = l.read();
                done.fetch_add(1, Ordering::SeqCst);
                // Every queued reader got in together: wait for the others
                // while holding the read lock.
                until(|| done.load(Ordering::SeqCst) == 3);
                *g
            })
        })
        .collect();
    gort::yield_now(); // all three queue behind the writer
    drop(w);
    for h in hs {
        assert_eq!(h.join().unwrap(), 0);
    }
    assert!(l.try_write().is_some());
}

// ----------------------------------------------------------------- Once

#[gort::test]
fn once_runs_once_under_100_racing_callers() {
    let _w = watchdog("once");
    let once = Arc::new(Once::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(AtomicUsize::new(0));
    let wg = WaitGroup::new();
    let call = {
        let (once, runs, seen) = (once.clone(), runs.clone(), seen.clone());
        move || {
            once.call_once(|| {
                gort::yield_now(); // a slow initialiser: the others wait
                runs.fetch_add(1, Ordering::SeqCst);
            });
            // Everything the closure did is visible once call_once returns.
            assert_eq!(runs.load(Ordering::SeqCst), 1);
            seen.fetch_add(1, Ordering::SeqCst);
        }
    };
    for _ in 0..90 {
        wg.go(call.clone());
    }
    let threads: Vec<_> = (0..10).map(|_| std::thread::spawn(call.clone())).collect();
    wg.wait();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(seen.load(Ordering::SeqCst), 100);
    assert!(once.is_completed());
}

#[gort::test]
fn once_after_a_panic_runs_the_next_closure() {
    let once = Arc::new(Once::new());
    let o = once.clone();
    let err = gort::go(move || o.call_once(|| panic!("init failed")))
        .join()
        .unwrap_err();
    assert_eq!(*err.downcast_ref::<&str>().unwrap(), "init failed");
    assert!(!once.is_completed());
    let mut ran = false;
    once.call_once(|| ran = true);
    assert!(ran);
    assert!(once.is_completed());
}

// -------------------------------------------------------------- Condvar

/// A bounded queue built from a Mutex and two Condvars.
struct Bounded {
    q: Mutex<VecDeque<u64>>,
    not_empty: Condvar,
    not_full: Condvar,
    cap: usize,
}

impl Bounded {
    fn push(&self, v: u64) {
        let mut q = self
            .not_full
            .wait_while(self.q.lock(), |q| q.len() == self.cap);
        q.push_back(v);
        drop(q);
        self.not_empty.notify_one();
    }

    fn pop(&self) -> u64 {
        let mut q = self.not_empty.wait_while(self.q.lock(), |q| q.is_empty());
        let v = q.pop_front().unwrap();
        drop(q);
        self.not_full.notify_one();
        v
    }
}

#[gort::test]
fn condvar_producers_and_consumers_lose_nothing() {
    let _w = watchdog("condvar producer/consumer");
    let b = Arc::new(Bounded {
        q: Mutex::new(VecDeque::new()),
        not_empty: Condvar::new(),
        not_full: Condvar::new(),
        cap: 4,
    });
    const PER: u64 = 2_000;
    let wg = WaitGroup::new();
    // 3 producer goroutines and 1 producer thread; 3 consumer goroutines
    // and 1 consumer thread, each consuming PER items.
    for p in 0..3 {
        let b = b.clone();
        wg.go(move || (0..PER).for_each(|i| b.push(p * PER + i)));
    }
    let producer = {
        let b = b.clone();
        std::thread::spawn(move || (0..PER).for_each(|i| b.push(3 * PER + i)))
    };
    let sums: Vec<_> = (0..3)
        .map(|_| {
            let b = b.clone();
            gort::go(move || (0..PER).map(|_| b.pop()).sum::<u64>())
        })
        .collect();
    let consumer = {
        let b = b.clone();
        std::thread::spawn(move || (0..PER).map(|_| b.pop()).sum::<u64>())
    };
    let mut total: u64 = sums.into_iter().map(|h| h.join().unwrap()).sum();
    total += consumer.join().unwrap();
    wg.wait();
    producer.join().unwrap();
    let n = 4 * PER;
    assert_eq!(total, n * (n - 1) / 2);
    assert!(b.q.lock().is_empty());
}

#[gort::test]
fn condvar_wait_timeout_reports_timeout_and_notification() {
    let _w = watchdog("condvar timeout");
    let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
    let (m, cv) = &*pair;
    // Nobody notifies: times out, in a goroutine and in a thread.
    let d = Duration::from_millis(5);
    let g = m.lock();
    let t = Instant::now();
    let (g, timed_out) = cv.wait_timeout(g, d);
    assert!(timed_out);
    assert!(t.elapsed() >= d, "timed out after {:?}", t.elapsed());
    assert_eq!(*g, 0);
    drop(g);
    let p2 = pair.clone();
    let (timed_out, waited) = std::thread::spawn(move || {
        let g = p2.0.lock();
        let t = Instant::now();
        let timed_out = p2.1.wait_timeout(g, d).1;
        (timed_out, t.elapsed())
    })
    .join()
    .unwrap();
    assert!(timed_out);
    assert!(waited >= d, "a thread timed out after {waited:?}");
    // Notified well before the deadline: not timed out.
    let woke = Arc::new(AtomicUsize::new(0));
    let waiter = |p: Arc<(Mutex<u32>, Condvar)>, woke: Arc<AtomicUsize>| {
        move || {
            let (m, cv) = &*p;
            let mut g = m.lock();
            *g += 1; // registered (under the lock)
            let (g, timed_out) = cv.wait_timeout(g, Duration::from_secs(3600));
            woke.fetch_add(1, Ordering::SeqCst);
            drop(g);
            timed_out
        }
    };
    let h = gort::go(waiter(pair.clone(), woke.clone()));
    let t = std::thread::spawn(waiter(pair.clone(), woke.clone()));
    // Both are waiting once both counted themselves and released the lock.
    until(|| *m.lock() == 2);
    cv.notify_one();
    until(|| woke.load(Ordering::SeqCst) == 1);
    cv.notify_one();
    assert!(!h.join().unwrap());
    assert!(!t.join().unwrap());
}

#[gort::test]
fn condvar_notify_all_wakes_every_waiter() {
    let _w = watchdog("condvar notify_all");
    let pair = Arc::new((Mutex::new((0u32, false)), Condvar::new()));
    let hs: Vec<_> = (0..10)
        .map(|_| {
            let p = pair.clone();
            gort::go(move || {
                let (m, cv) = &*p;
                let mut g = m.lock();
                g.0 += 1;
                let _g = cv.wait_while(g, |s| !s.1);
            })
        })
        .collect();
    let (m, cv) = &*pair;
    until(|| m.lock().0 == 10);
    m.lock().1 = true;
    cv.notify_all();
    for h in hs {
        h.join().unwrap();
    }
}

// ------------------------------------------------------------ Semaphore

#[gort::test(procs = 1)]
fn semaphore_serves_waiters_in_fifo_order() {
    let _w = watchdog("semaphore fifo");
    let sem = Arc::new(Semaphore::new(0));
    let order = Arc::new(Mutex::new(Vec::new()));
    let wg = WaitGroup::new();
    for i in 0..6 {
        let (sem, order) = (sem.clone(), order.clone());
        wg.go(move || {
            let _p = sem.acquire();
            order.lock().push(i);
        });
        gort::yield_now(); // goroutine i queues
    }
    sem.add_permits(1);
    // Nobody barges past the queue, not even try_acquire with a permit free.
    assert!(sem.try_acquire().is_none());
    wg.wait();
    assert_eq!(*order.lock(), [0, 1, 2, 3, 4, 5]);
    assert_eq!(sem.available_permits(), 1);
}

#[gort::test(procs = 1)]
fn semaphore_a_large_request_at_the_head_is_not_starved() {
    let _w = watchdog("semaphore head");
    let sem = Arc::new(Semaphore::new(2));
    let order = Arc::new(Mutex::new(Vec::new()));
    let held = sem.acquire_many(2);
    let big = {
        let (sem, order) = (sem.clone(), order.clone());
        gort::go(move || {
            let p = sem.acquire_many(3);
            order.lock().push("big");
            p.num_permits()
        })
    };
    gort::yield_now();
    let small = {
        let (sem, order) = (sem.clone(), order.clone());
        gort::go(move || {
            let _p = sem.acquire();
            order.lock().push("small");
        })
    };
    gort::yield_now();
    drop(held); // 2 free: not enough for the head, and small must wait
    assert_eq!(sem.available_permits(), 2);
    gort::yield_now();
    assert!(order.lock().is_empty(), "nobody got past the head");
    sem.add_permits(1);
    assert_eq!(big.join().unwrap(), 3);
    small.join().unwrap();
    assert_eq!(*order.lock(), ["big", "small"]);
    assert_eq!(sem.available_permits(), 3);
}

#[gort::test]
fn semaphore_bounds_concurrency_and_returns_every_permit() {
    let _w = watchdog("semaphore counts");
    let sem = Arc::new(Semaphore::new(3));
    let now = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let work = {
        let (sem, now, max) = (sem.clone(), now.clone(), max.clone());
        move |n: usize| {
            for _ in 0..500 {
                let p = sem.acquire_many(n);
                let c = now.fetch_add(n, Ordering::SeqCst) + n;
                max.fetch_max(c, Ordering::SeqCst);
                assert!(c <= 3, "{c} permits out of 3 in use");
                gort::yield_now();
                now.fetch_sub(n, Ordering::SeqCst);
                drop(p);
            }
        }
    };
    let wg = WaitGroup::new();
    for i in 0..8 {
        let work = work.clone();
        wg.go(move || work(1 + i % 2));
    }
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let work = work.clone();
            std::thread::spawn(move || work(1))
        })
        .collect();
    wg.wait();
    for t in threads {
        t.join().unwrap();
    }
    assert!(max.load(Ordering::SeqCst) <= 3);
    assert_eq!(sem.available_permits(), 3);
    let p = sem.try_acquire_many(3).unwrap();
    p.forget();
    assert_eq!(sem.available_permits(), 0);
}
