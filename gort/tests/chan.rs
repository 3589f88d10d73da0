//! Behaviour tests of channels and select: hand-off, close, timeouts
//! racing deliveries, exactly-one-case selects, goroutines and threads on
//! one channel, and cancellation of goroutines parked in a select.

mod common;
use common::{rt, watchdog};

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gort::chan::{self, RecvTimeoutError, SendTimeoutError, TryRecvError};
use gort::sync::WaitGroup;

const CAPS: [usize; 4] = [0, 1, 16, usize::MAX];

fn make<T>(cap: usize) -> (chan::Sender<T>, chan::Receiver<T>) {
    if cap == usize::MAX {
        chan::unbounded()
    } else {
        chan::bounded(cap)
    }
}

#[test]
fn ping_pong_hands_values_back_and_forth() {
    let _w = watchdog("ping_pong");
    for procs in [1, 2] {
        for cap in CAPS {
            let last = rt(procs).run(move || {
                let (ping_tx, ping_rx) = make::<u64>(cap);
                let (pong_tx, pong_rx) = make::<u64>(cap);
                gort::go(move || {
                    for v in ping_rx {
                        pong_tx.send(v + 1).unwrap();
                    }
                });
                let mut v = 0;
                for _ in 0..10_000 {
                    ping_tx.send(v).unwrap();
                    v = pong_rx.recv().unwrap();
                }
                v
            });
            assert_eq!(last, 10_000, "procs {procs} cap {cap}");
        }
    }
}

#[test]
fn every_value_arrives_exactly_once_with_many_senders_and_receivers() {
    let _w = watchdog("mpmc");
    for cap in CAPS {
        let seen = rt(2).run(move || {
            let (tx, rx) = make::<u32>(cap);
            let wg = WaitGroup::new();
            for s in 0..4u32 {
                let tx = tx.clone();
                wg.go(move || {
                    for i in 0..5_000 {
                        tx.send(s * 1_000_000 + i).unwrap();
                    }
                });
            }
            drop(tx);
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    let rx = rx.clone();
                    gort::go(move || rx.iter().collect::<Vec<u32>>())
                })
                .collect();
            wg.wait();
            hs.into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect::<Vec<u32>>()
        });
        assert_eq!(seen.len(), 20_000, "cap {cap}");
        let set: HashSet<u32> = seen.into_iter().collect();
        assert_eq!(set.len(), 20_000, "cap {cap}: duplicates");
    }
}

#[test]
fn one_sender_one_receiver_keeps_fifo_order() {
    for cap in CAPS {
        let got = rt(2).run(move || {
            let (tx, rx) = make::<u32>(cap);
            gort::go(move || {
                for i in 0..20_000 {
                    tx.send(i).unwrap();
                }
            });
            rx.iter().collect::<Vec<_>>()
        });
        assert_eq!(got, (0..20_000).collect::<Vec<_>>(), "cap {cap}");
    }
}

#[test]
fn close_wakes_parked_receivers_and_senders_with_their_values() {
    for cap in [0, 1] {
        let (recv_errs, send_back) = rt(2).run(move || {
            let (tx, rx) = make::<u32>(cap);
            if cap == 1 {
                tx.send(99).unwrap();
            }
            // Parked senders (the buffer, if any, is full).
            let senders: Vec<_> = (0..3)
                .map(|i| {
                    let tx = tx.clone();
                    gort::go(move || tx.send(i).map_err(|e| e.into_inner()))
                })
                .collect();
            let rx2 = rx.clone();
            while gort::num_goroutines() < 4 {
                gort::yield_now();
            }
            for _ in 0..50 {
                gort::yield_now();
            }
            assert!(rx2.close());
            let mut back: Vec<u32> = senders
                .into_iter()
                .filter_map(|h| h.join().unwrap().err())
                .collect();
            back.sort();
            // Buffered values are drained after close, then errors.
            let mut drained = vec![];
            while let Ok(v) = rx.recv() {
                drained.push(v);
            }
            let errs = (
                rx.recv().is_err(),
                rx.try_recv() == Err(TryRecvError::Disconnected),
            );
            (errs, (back, drained))
        });
        assert_eq!(recv_errs, (true, true));
        let (back, drained) = send_back;
        let mut all = back.clone();
        all.extend(&drained);
        all.sort();
        let expect: Vec<u32> = if cap == 1 {
            vec![0, 1, 2, 99]
        } else {
            vec![0, 1, 2]
        };
        assert_eq!(
            all, expect,
            "cap {cap}: every value came back or was drained"
        );
        assert_eq!(
            back,
            vec![0, 1, 2],
            "cap {cap}: parked senders got their values back"
        );
    }
}

#[test]
fn dropping_every_receiver_fails_sends_with_the_value() {
    let (tx, rx) = chan::bounded::<String>(0);
    drop(rx);
    assert_eq!(tx.send("kept".into()).unwrap_err().into_inner(), "kept");
    let (tx, rx) = chan::unbounded::<u8>();
    tx.send(1).unwrap();
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(tx.try_send(2).unwrap_err().into_inner(), 2);
}

#[test]
fn threads_and_goroutines_share_channels() {
    let _w = watchdog("threads");
    let r = rt(2);
    let (to_g, from_t) = chan::bounded::<u32>(0);
    let (to_t, from_g) = chan::bounded::<u32>(0);
    let t = std::thread::spawn(move || {
        for i in 0..2_000 {
            to_g.send(i).unwrap();
            assert_eq!(from_g.recv().unwrap(), i * 2);
        }
        // Timeouts from a plain thread: never back before the timeout.
        let t = Instant::now();
        assert_eq!(
            from_g.recv_timeout(Duration::from_millis(5)),
            Err(RecvTimeoutError::Timeout)
        );
        assert!(t.elapsed() >= Duration::from_millis(5));
    });
    let h = r.go(move || {
        for v in from_t.iter() {
            to_t.send(v * 2).unwrap();
        }
        7
    });
    t.join().unwrap();
    assert_eq!(h.join().unwrap(), 7);
}

#[test]
fn timeouts_racing_deliveries_lose_nothing() {
    let _w = watchdog("timeouts");
    for cap in [0, 4] {
        let (sent_ok, sent_back, got) = rt(2).run(move || {
            let (tx, rx) = chan::bounded::<u32>(cap);
            let sender = gort::go(move || {
                let (mut ok, mut back) = (0u64, 0u64);
                for i in 0..3_000u32 {
                    match tx.send_timeout(i, Duration::from_micros(50)) {
                        Ok(()) => ok += u64::from(i),
                        Err(SendTimeoutError::Timeout(v)) => back += u64::from(v),
                        Err(SendTimeoutError::Disconnected(v)) => back += u64::from(v),
                    }
                }
                (ok, back)
            });
            let mut got = 0u64;
            loop {
                match rx.recv_timeout(Duration::from_micros(30)) {
                    Ok(v) => got += u64::from(v),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            let (ok, back) = sender.join().unwrap();
            (ok, back, got)
        });
        let total: u64 = (0..3_000u64).sum();
        assert_eq!(sent_ok + sent_back, total, "cap {cap}");
        assert_eq!(
            got, sent_ok,
            "cap {cap}: every delivered value was received once"
        );
    }
}

#[test]
fn select_runs_exactly_one_case_and_leaves_the_other_channels_alone() {
    let _w = watchdog("select one");
    let counts = rt(2).run(|| {
        let (a_tx, a_rx) = chan::bounded::<u32>(0);
        let (b_tx, b_rx) = chan::bounded::<u32>(0);
        let producers = [(a_tx, 0u32), (b_tx, 1_000_000)].map(|(tx, base)| {
            gort::go(move || {
                for i in 0..5_000 {
                    tx.send(base + i).unwrap();
                }
            })
        });
        let mut got = Vec::new();
        // Go's idiom: a closed channel is swapped for a nil (never) one.
        let never = chan::never::<u32>();
        let (mut a, mut b) = (&a_rx, &b_rx);
        while !(std::ptr::eq(a, &never) && std::ptr::eq(b, &never)) {
            gort::select! {
                recv(a) -> v => match v { Ok(v) => got.push(v), Err(_) => a = &never },
                recv(b) -> v => match v { Ok(v) => got.push(v), Err(_) => b = &never },
            }
        }
        for p in producers {
            p.join().unwrap();
        }
        // Drain anything left.
        got.extend(a_rx.try_iter());
        got.extend(b_rx.try_iter());
        got
    });
    assert_eq!(counts.len(), 10_000);
    let set: HashSet<u32> = counts.iter().copied().collect();
    assert_eq!(set.len(), 10_000);
}

#[test]
fn select_with_send_and_recv_on_one_unbuffered_channel_pairs_with_others_only() {
    let _w = watchdog("self pairing");
    let (sent, recvd) = rt(2).run(|| {
        let (tx, rx) = chan::bounded::<u32>(0);
        let sent = Arc::new(AtomicUsize::new(0));
        let recvd = Arc::new(AtomicUsize::new(0));
        let wg = WaitGroup::new();
        for _ in 0..2 {
            let (tx, rx, s, r) = (tx.clone(), rx.clone(), sent.clone(), recvd.clone());
            wg.go(move || {
                for i in 0..2_000 {
                    gort::select! {
                        send(tx, i) -> res => { res.unwrap(); s.fetch_add(1, Ordering::Relaxed); },
                        recv(rx) -> v => { v.unwrap(); r.fetch_add(1, Ordering::Relaxed); },
                    }
                }
            });
        }
        wg.wait();
        (sent.load(Ordering::Relaxed), recvd.load(Ordering::Relaxed))
    });
    // Every send met a receive of the other goroutine.
    assert_eq!(sent, recvd);
    assert_eq!(sent + recvd, 4_000);
}

#[test]
fn select_default_and_timeout() {
    let (_tx, rx) = chan::bounded::<u32>(1);
    let never = chan::never::<u32>();
    let hit = gort::select! {
        recv(rx) -> _ => 1,
        recv(never) -> _ => 2,
        default => 3,
    };
    assert_eq!(hit, 3);
    let d = Duration::from_millis(3);
    // On a plain thread, then in a goroutine.
    let t = Instant::now();
    let hit = gort::select! {
        recv(rx) -> _ => 1,
        recv(never) -> _ => 2,
        default(d) => 4,
    };
    assert_eq!(hit, 4);
    assert!(
        t.elapsed() >= d,
        "default({d:?}) fired after {:?}",
        t.elapsed()
    );
    let (hit, waited) = rt(1).run(move || {
        let t = Instant::now();
        let hit = gort::select! {
            recv(rx) -> _ => 1,
            default(d) => 4,
        };
        (hit, t.elapsed())
    });
    assert_eq!(hit, 4);
    assert!(waited >= d, "default({d:?}) fired after {waited:?}");
}

#[test]
fn select_picks_uniformly_among_ready_cases() {
    let (a_tx, a_rx) = chan::bounded::<()>(1);
    let (b_tx, b_rx) = chan::bounded::<()>(1);
    let (c_tx, c_rx) = chan::bounded::<()>(1);
    let mut hits = [0u32; 3];
    for _ in 0..30_000 {
        let _ = a_tx.try_send(());
        let _ = b_tx.try_send(());
        let _ = c_tx.try_send(());
        let i = gort::select! {
            recv(a_rx) -> _ => 0,
            recv(b_rx) -> _ => 1,
            recv(c_rx) -> _ => 2,
        };
        hits[i] += 1;
    }
    for h in hits {
        assert!((8_000..12_000).contains(&h), "{hits:?}");
    }
}

#[test]
fn dynamic_select_reports_ready_cases() {
    let _w = watchdog("dynamic select");
    let got = rt(2).run(|| {
        let chans: Vec<_> = (0..5).map(|_| chan::bounded::<usize>(0)).collect();
        for (i, (tx, _)) in chans.iter().enumerate() {
            let tx = tx.clone();
            gort::go(move || {
                for k in 0..100 {
                    tx.send(i * 1000 + k).unwrap();
                }
            });
        }
        let mut rxs: Vec<_> = chans.into_iter().map(|(_, rx)| rx).collect();
        let mut got = Vec::new();
        while !rxs.is_empty() {
            let mut sel = chan::Select::new();
            for rx in &rxs {
                sel.recv(rx);
            }
            let op = sel.select();
            let i = op.index();
            match op.recv(&rxs[i]) {
                Ok(v) => got.push(v),
                // Closed (its sender finished): a closed channel is ready.
                Err(_) => {
                    rxs.remove(i);
                }
            }
        }
        got
    });
    let set: HashSet<usize> = got.into_iter().collect();
    assert_eq!(set.len(), 500);
}

#[test]
fn goroutines_parked_in_select_are_unwound_when_the_runtime_ends() {
    struct Flag(Arc<AtomicUsize>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = chan::bounded::<u32>(0);
    let (tx2, rx2) = (tx.clone(), rx.clone());
    {
        let r = rt(2);
        let d = dropped.clone();
        r.run(move || {
            let started = Arc::new(AtomicUsize::new(0));
            for _ in 0..50 {
                let (tx, rx, d, st) = (tx.clone(), rx.clone(), d.clone(), started.clone());
                gort::go(move || {
                    let _f = Flag(d);
                    st.fetch_add(1, Ordering::SeqCst);
                    let never = chan::never::<u32>();
                    gort::select! {
                        recv(rx) -> _ => {},
                        send(tx, 1) -> _ => {},
                        recv(never) -> _ => {},
                    }
                });
            }
            while started.load(Ordering::SeqCst) < 50 {
                gort::yield_now();
            }
            for _ in 0..100 {
                gort::yield_now();
            }
        });
    }
    // Every goroutine paired up (25 sends met 25 receives) or was unwound;
    // either way its destructor ran, and no registration of theirs is
    // left to take a value.
    assert_eq!(dropped.load(Ordering::SeqCst), 50);
    assert_eq!(tx2.try_send(1), Err(chan::TrySendError::Full(1)));
    assert_eq!(rx2.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn never_blocks_until_the_deadline() {
    let d = Duration::from_millis(2);
    let rx = chan::never::<()>();
    let t = Instant::now();
    assert_eq!(rx.recv_timeout(d), Err(RecvTimeoutError::Timeout));
    assert!(t.elapsed() >= d);
    let (r, waited) = rt(1).run(move || {
        let t = Instant::now();
        (chan::never::<()>().recv_timeout(d), t.elapsed())
    });
    assert_eq!(r, Err(RecvTimeoutError::Timeout));
    assert!(waited >= d);
}
