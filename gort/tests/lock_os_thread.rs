//! Behaviour tests of `gort::lock_os_thread` / `gort::unlock_os_thread`
//! (Go's LockOSThread): a locked goroutine resumes on the same OS thread
//! after every park (channel receive, sleep, yield, a wake from a plain
//! thread, a blocking call); while it is parked its thread runs no other
//! goroutine, and the others still run, also on one processor; locks nest
//! (two locks need two unlocks; an unlock without a lock does nothing);
//! a goroutine, or the main goroutine, that exits still locked leaves the
//! runtime working.

mod common;
use common::{rt, watchdog};

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gort::chan;
use gort::sync::WaitGroup;

fn tid() -> libc::pid_t {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::gettid() }
}

#[derive(Debug)]
struct Report {
    /// The locked goroutine's thread.
    tid: libc::pid_t,
    /// Times the locked goroutine woke up on another thread.
    moved: usize,
    /// Steps the other goroutines took on the locked goroutine's thread.
    others_on_locked_thread: usize,
    /// Steps the other goroutines took in all.
    other_steps: usize,
}

/// Called by a goroutine wired to its thread: starts a feeder and `workers`
/// goroutines that record the threads they run on, parks `parks` times
/// (receiving from the feeder, sleeping, yielding in turn), then waits for
/// the workers (parking again). All the others' steps fall inside this
/// call, so none of them may be on this goroutine's thread.
fn park_alongside_others(parks: usize, workers: usize) -> Report {
    let me = tid();
    let steps: Arc<Mutex<HashMap<libc::pid_t, usize>>> = Arc::default();
    let (tx, rx) = chan::bounded::<usize>(0);
    let wg = WaitGroup::new();
    let s = steps.clone();
    wg.go(move || {
        for i in 0..parks.div_ceil(3) {
            *s.lock().unwrap().entry(tid()).or_default() += 1;
            tx.send(i).unwrap();
        }
    });
    for w in 0..workers {
        let s = steps.clone();
        wg.go(move || {
            let mut mine: HashMap<libc::pid_t, usize> = HashMap::new();
            for k in 0..100 {
                *mine.entry(tid()).or_default() += 1;
                if (k + w) % 4 == 0 {
                    gort::time::sleep(Duration::from_micros(20));
                } else {
                    gort::yield_now();
                }
            }
            let mut s = s.lock().unwrap();
            for (t, n) in mine {
                *s.entry(t).or_default() += n;
            }
        });
    }
    let mut moved = 0;
    let mut received = 0;
    for i in 0..parks {
        match i % 3 {
            0 => {
                assert_eq!(rx.recv().unwrap(), received);
                received += 1;
            }
            1 => gort::time::sleep(Duration::from_micros(50)),
            _ => gort::yield_now(),
        }
        moved += usize::from(tid() != me);
    }
    wg.wait();
    moved += usize::from(tid() != me);
    let steps = steps.lock().unwrap();
    Report {
        tid: me,
        moved,
        others_on_locked_thread: steps.get(&me).copied().unwrap_or(0),
        other_steps: steps.values().sum(),
    }
}

#[track_caller]
fn assert_wired(r: &Report, workers: usize) {
    assert_eq!(r.moved, 0, "the goroutine locked to {} moved: {r:?}", r.tid);
    assert_eq!(
        r.others_on_locked_thread, 0,
        "others ran on the locked thread: {r:?}"
    );
    assert!(r.other_steps >= workers * 100, "{r:?}");
}

#[test]
fn a_locked_goroutine_stays_on_its_thread_across_a_thousand_parks() {
    let _w = watchdog("locked across parks");
    let (report, from_thread) = rt(2).run(|| {
        gort::go(|| {
            gort::lock_os_thread();
            let report = park_alongside_others(1000, 20);
            // Woken from a plain OS thread, it still resumes at home.
            let me = tid();
            let (tx, rx) = chan::bounded::<u32>(0);
            let sender = std::thread::spawn(move || {
                for i in 0..100 {
                    tx.send(i).unwrap();
                }
            });
            let mut moved = 0;
            for i in 0..100 {
                assert_eq!(rx.recv().unwrap(), i);
                moved += usize::from(tid() != me);
            }
            sender.join().unwrap();
            gort::unlock_os_thread();
            (report, moved)
        })
        .join()
        .unwrap()
    });
    assert_wired(&report, 20);
    assert_eq!(from_thread, 0, "moved after a wake from a plain thread");
}

#[test]
fn nested_locks_need_as_many_unlocks() {
    let _w = watchdog("nested locks");
    let (twice_once, after) = rt(2).run(|| {
        gort::go(|| {
            gort::lock_os_thread();
            gort::lock_os_thread();
            gort::unlock_os_thread();
            // Still locked once.
            let twice_once = park_alongside_others(300, 8);
            gort::unlock_os_thread();
            // Now unlocked: it may move; only check everything completes.
            gort::unlock_os_thread(); // not locked: does nothing
            let after = park_alongside_others(300, 8);
            (twice_once, after)
        })
        .join()
        .unwrap()
    });
    assert_wired(&twice_once, 8);
    assert!(after.other_steps >= 800, "{after:?}");
}

#[test]
fn unlock_without_lock_does_nothing_and_everything_completes() {
    let _w = watchdog("unlock without lock");
    let done = rt(2).run(|| {
        gort::unlock_os_thread();
        gort::unlock_os_thread();
        let wg = WaitGroup::new();
        let n = Arc::new(AtomicUsize::new(0));
        for _ in 0..50 {
            let n = n.clone();
            wg.go(move || {
                gort::unlock_os_thread();
                gort::lock_os_thread();
                gort::time::sleep(Duration::from_micros(100));
                gort::unlock_os_thread();
                gort::yield_now();
                n.fetch_add(1, Ordering::SeqCst);
            });
        }
        wg.wait();
        n.load(Ordering::SeqCst)
    });
    assert_eq!(done, 50);
}

#[test]
fn locking_on_one_proc_does_not_stop_the_others() {
    let _w = watchdog("locked on procs=1");
    let r = rt(1);
    // A locked goroutine.
    let report = r.run(|| {
        gort::go(|| {
            gort::lock_os_thread();
            let r = park_alongside_others(300, 5);
            gort::unlock_os_thread();
            r
        })
        .join()
        .unwrap()
    });
    assert_wired(&report, 5);
    // The main goroutine locked.
    let report = r.run(|| {
        gort::lock_os_thread();
        let r = park_alongside_others(300, 5);
        gort::unlock_os_thread();
        r
    });
    assert_wired(&report, 5);
    // A locked goroutine and an unlocked one ping-pong.
    let (a, b) = r.run(|| {
        let (ping_tx, ping_rx) = chan::bounded::<u32>(0);
        let (pong_tx, pong_rx) = chan::bounded::<u32>(0);
        let locked = gort::go(move || {
            gort::lock_os_thread();
            let me = tid();
            let mut moved = 0;
            for i in 0..1000 {
                ping_tx.send(i).unwrap();
                assert_eq!(pong_rx.recv().unwrap(), i + 1);
                moved += usize::from(tid() != me);
            }
            (me, moved)
        });
        let partner = gort::go(move || {
            let mut tids = Vec::new();
            for v in ping_rx {
                tids.push(tid());
                pong_tx.send(v + 1).unwrap();
            }
            tids
        });
        (locked.join().unwrap(), partner.join().unwrap())
    });
    let ((me, moved), partner_tids) = (a, b);
    assert_eq!(moved, 0);
    assert_eq!(partner_tids.len(), 1000);
    assert!(
        !partner_tids.contains(&me),
        "the partner ran on the locked thread"
    );
}

#[test]
fn blocking_in_a_locked_goroutine_runs_and_resumes_on_its_thread() {
    let _w = watchdog("blocking while locked");
    let (me, inside, after, others) = rt(2).run(|| {
        let h = gort::go(|| {
            gort::lock_os_thread();
            let me = tid();
            let inside = gort::blocking(|| {
                std::thread::sleep(Duration::from_millis(5)); // past the hand-off
                tid()
            });
            let after = park_alongside_others(100, 4);
            gort::unlock_os_thread();
            (me, inside, after)
        });
        let others = gort::go(|| {
            (0..100)
                .map(|_| {
                    gort::yield_now();
                    1
                })
                .sum::<usize>()
        });
        let (me, inside, after) = h.join().unwrap();
        (me, inside, after, others.join().unwrap())
    });
    assert_eq!(inside, me);
    assert_eq!(after.tid, me);
    assert_wired(&after, 4);
    assert_eq!(others, 100);
}

#[test]
fn goroutines_exiting_while_locked_do_not_break_the_runtime() {
    let _w = watchdog("exit while locked");
    for procs in [1, 2] {
        let r = rt(procs);
        let (finished, base_again) = r.run(|| {
            let base = gort::num_goroutines();
            for round in 0..5 {
                // Exit locked once, locked twice, and panicking while locked.
                let hs: Vec<_> = (0..6)
                    .map(|i| {
                        gort::go(move || {
                            gort::lock_os_thread();
                            if i % 2 == 0 {
                                gort::lock_os_thread();
                            }
                            gort::time::sleep(Duration::from_micros(50));
                            round * 10 + i
                        })
                    })
                    .collect();
                for (i, h) in hs.into_iter().enumerate() {
                    assert_eq!(h.join().unwrap(), round * 10 + i);
                }
                let err = gort::go(|| -> u8 {
                    gort::lock_os_thread();
                    gort::yield_now();
                    panic!("locked and panicking")
                })
                .join()
                .unwrap_err();
                assert_eq!(*err.downcast_ref::<&str>().unwrap(), "locked and panicking");
            }
            // Later goroutines still run: sleeps, yields and a ping-pong.
            let wg = WaitGroup::new();
            let finished = Arc::new(AtomicUsize::new(0));
            let (tx, rx) = chan::bounded::<usize>(0);
            for i in 0..100 {
                let (f, tx, rx) = (finished.clone(), tx.clone(), rx.clone());
                wg.go(move || {
                    gort::yield_now();
                    gort::time::sleep(Duration::from_micros(100));
                    if i % 2 == 0 {
                        tx.send(i).unwrap();
                    } else {
                        rx.recv().unwrap();
                    }
                    f.fetch_add(1, Ordering::SeqCst);
                });
            }
            drop((tx, rx));
            wg.wait();
            while gort::num_goroutines() != base {
                gort::yield_now();
            }
            (
                finished.load(Ordering::SeqCst),
                gort::num_goroutines() == base,
            )
        });
        assert_eq!(finished, 100, "procs={procs}");
        assert!(base_again);
        // The main goroutine returns while locked; the next run still works.
        assert_eq!(
            r.run(|| {
                gort::lock_os_thread();
                7
            }),
            7
        );
        assert_eq!(r.run(|| gort::go(|| 8).join().unwrap()), 8, "procs={procs}");
    }
}

#[test]
fn a_locked_goroutine_yielding_on_one_proc_hands_off_cleanly_many_times() {
    // Each yield of a locked goroutine hands the P to another M, which finds
    // the goroutine and hands it (and the P) back: many short runtimes make
    // many such round trips, with and without another goroutine in the queue.
    let _w = watchdog("locked yields");
    for i in 0..200 {
        let (moved, others) = rt(1).run(move || {
            let other = gort::go(move || {
                for _ in 0..(i % 3) * 20 {
                    gort::yield_now();
                }
            });
            let locked = gort::go(|| {
                gort::lock_os_thread();
                let me = tid();
                let mut moved = 0;
                for _ in 0..100 {
                    gort::yield_now();
                    moved += usize::from(tid() != me);
                }
                moved
            });
            let moved = locked.join().unwrap();
            other.join().unwrap();
            (moved, gort::go(|| 1).join().unwrap())
        });
        assert_eq!(moved, 0, "round {i}");
        assert_eq!(others, 1, "round {i}");
    }
}
